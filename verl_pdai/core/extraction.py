"""Final-answer extraction: the thinking split and the final answer of a model response.

Pure module: it imports neither verl nor sympy. Model outputs are untrusted (1 MB responses, 10,000 nested
braces, unclosed ``\\boxed{``, NUL bytes), so every function here runs in linear time (no backtracking-prone
regex, no recursion on nesting depth) and never raises.

Decision (tests pin it):

* **Last box wins.** :func:`extract_final_answer` returns the content of the last *complete* ``\\boxed{...}`` /
  ``\\fbox{...}`` (or braceless ``\\boxed 5``). An unclosed ``\\boxed{`` (truncated output) and an empty
  ``\\boxed{}`` (an echoed instruction) are skipped, so an earlier complete box is returned if there is one.
  Only when no box is usable does it fall back to the last "Answer: ..." / "The answer is ..." line.

:mod:`verl_pdai.core.answers` re-exports the public names, so ``from verl_pdai.core.answers import
split_thinking, extract_final_answer`` keeps working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ThinkingSplit",
    "split_thinking",
    "extract_final_answer",
]

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"


# --------------------------------------------------------------------------------------------------------------
# Thinking split
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThinkingSplit:
    """A response split at its last ``</think>``."""

    thinking: str  # text before the last "</think>" (without a leading "<think>"), "" if none
    answer_text: str  # text after the last "</think>"; the whole text when there is no "</think>"
    opened: bool  # "<think>" occurs
    closed: bool  # "</think>" occurs


def split_thinking(text: str) -> ThinkingSplit:
    """Split at the last ``</think>``: graders read only what follows it (R1-style models think first)."""
    if not isinstance(text, str):
        text = ""
    opened = _THINK_OPEN in text
    cut = text.rfind(_THINK_CLOSE)
    if cut < 0:
        return ThinkingSplit(thinking="", answer_text=text, opened=opened, closed=False)
    thinking = text[:cut]
    stripped = thinking.lstrip()
    if stripped.startswith(_THINK_OPEN):
        thinking = stripped[len(_THINK_OPEN) :]
    return ThinkingSplit(thinking=thinking, answer_text=text[cut + len(_THINK_CLOSE) :], opened=opened, closed=True)


# --------------------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------------------

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# One token per escape pair (so "\{" and "\\" never count as braces) or per brace.
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)
# "Answer:", "Final answer:", "**Final Answer**:", "The answer is", "final answer is". Every quantifier is
# followed by a disjoint literal, so a failed attempt costs at most the whitespace run it scanned.
_ANSWER_RE = re.compile(
    r"(?:\b(?:the|final|my|our)[ \t]+(?:final[ \t]+)?answer[ \t]*(?:\*\*)?[ \t]*is\b[ \t]*:?"
    r"|\banswer\b[ \t]*(?:\*\*)?[ \t]*[:\uff1a])",
    re.IGNORECASE,
)


def extract_final_answer(text: str, *, max_chars: int = 20_000) -> str | None:
    """Return the final answer (inner LaTeX, stripped) of ``text``, or None.

    The last complete ``\\boxed{}``/``\\fbox{}`` wins (unclosed or empty boxes are skipped); without one, the
    last "Answer: ..." / "The answer is ..." line is used, ``$...$`` stripped. Only the last ``max_chars``
    characters are scanned, which bounds the work on runaway outputs.
    """
    try:
        if not isinstance(text, str) or max_chars <= 0:
            return None
        tail = text[-max_chars:]
        boxed = _last_box_content(tail)
        if boxed is not None:
            return boxed
        return _answer_line(tail)
    except Exception:  # never let a malformed response crash a reward worker
        return None


def _brace_matches(s: str, start: int) -> dict[int, int]:
    """Map each ``{`` at or after ``start`` to its matching ``}``, in one pass with an explicit stack."""
    matches: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN_RE.finditer(s, start):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}" and stack:
            matches[stack.pop()] = m.start()
    return matches


def _box_positions(s: str) -> list[tuple[int, int]]:
    """(position, end of command name) of every box command, sorted by position."""
    found: list[tuple[int, int]] = []
    for cmd in _BOX_COMMANDS:
        i = s.find(cmd)
        while i >= 0:
            end = i + len(cmd)
            if end >= len(s) or not s[end].isalpha():  # not a longer command such as \fboxsep
                found.append((i, end))
            i = s.find(cmd, end)
    found.sort()
    return found


def _last_box_content(s: str) -> str | None:
    boxes = _box_positions(s)
    if not boxes:
        return None
    matches = _brace_matches(s, boxes[0][0])
    n = len(s)
    for _, j in reversed(boxes):
        k = j
        while k < n and s[k].isspace():
            k += 1
        if k >= n:
            continue
        if s[k] == "{":
            end = matches.get(k)
            if end is None:  # unclosed: truncated output, try an earlier box
                continue
            content = s[k + 1 : end].strip()
        else:
            # "\boxed 5": the token up to whitespace or "$" (the MATH convention).
            stop = k
            while stop < n and not s[stop].isspace() and s[stop] != "$":
                stop += 1
            content = s[k:stop].rstrip(".,;")
        if content:
            return content
    return None


def _answer_line(s: str) -> str | None:
    lines = s.split("\n")
    following = ""  # nearest non-blank line below the current one, tracked so the scan stays linear
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        last = None
        for m in _ANSWER_RE.finditer(line):
            last = m
        if last is not None:
            cleaned = _clean_answer_text(line[last.end() :])
            if not cleaned:  # "Answer:" alone on a line: the answer is on the next one
                cleaned = _clean_answer_text(following)
            if cleaned:
                return cleaned
        elif line.strip():
            following = line
    return None


def _clean_answer_text(rest: str) -> str:
    """Strip markdown emphasis, math delimiters and a trailing period from an "Answer: ..." remainder."""
    rest = rest.strip().strip("*").strip()
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_):
            end = rest.find(close, len(open_))
            rest = rest[len(open_) : end] if end >= 0 else rest[len(open_) :]
            break
    return rest.strip().rstrip(".").strip()
