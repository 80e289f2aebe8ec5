"""Split a solution text into reasoning steps.

The split feeds three consumers: the stepwise reward scores each step of a model's own text, the hint
builder reveals a fraction of a reference solution's steps, and the rollout injects hints at paragraph
breaks mid-generation. Hence the rules below are *local*: whether a line starts a step is decided from
the text up to that line, so a growing response keeps its earlier steps (only the last one may change),
and a blank line outside display math is always a boundary.

Rules, applied line by line (a "line" here is extended to the end of any display-math block that starts
on it, so display math is never split):

1. A step starts at every non-empty line, except that
2. a step opened by a heading ("Step k", "**Step k:**", "### ...") or a numbered list item ("1.", "2)",
   "(3)") at line start runs on over the following lines until the next blank line, heading or list item.
3. Beyond ``max_steps`` the rest of the text merges into the last step.

Lines end at "\n" ("\r\n" works: "\r" is trailing whitespace); a lone "\r" does not end a line.
Everything is linear in the text length: display blocks are found with one forward scan whose closer
look-ups are cached, and no regular expression here can backtrack over more than a line's leading
whitespace.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

__all__ = ["Step", "segment_steps"]

# A display block longer than this is taken for a stray delimiter: a real align/equation block in a math
# solution is far shorter, and a stray "$$" must not swallow the rest of a 16k-token response.
MAX_DISPLAY_CHARS = 4096
# Opening delimiters examined per text: keeps adversarial input ("\[" x 500k) linear with a small constant.
MAX_DISPLAY_OPENERS = 8192

_ENVIRONMENTS = "align|equation|gather|multline|eqnarray|flalign|alignat|displaymath"
_DISPLAY_OPEN = re.compile(r"\$\$|\\\[|\\begin\{(" + _ENVIRONMENTS + r")(\*?)\}")
_NON_SPACE = re.compile(r"\S")
# Both patterns are matched at the first non-space character of a line. They are prefix-closed (a line that
# matches keeps matching as more text is appended), which is what makes the split stable under appending.
_HEADING_BODY = r"(?:#{1,6}(?=\s)|(?:\*{1,2}|_{1,2})?[ \t]*(?:\\textbf\{)?[ \t]*step[ \t]*[0-9])"
_ITEM_BODY = r"(?:[0-9]{1,3}[.)]|\([0-9]{1,3}\))(?=\s)"
_SECTION_START = re.compile(_HEADING_BODY + "|" + _ITEM_BODY, re.IGNORECASE)
# End of a heading/list section: a blank line, or a line that starts a new heading or list item.
_SECTION_BREAK = re.compile(r"\n[^\S\n]*(?:\n|(?=" + _HEADING_BODY + "|" + _ITEM_BODY + "))", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    """One reasoning step; ``source[start:end] == text`` and ``text`` has no surrounding whitespace."""

    index: int
    start: int  # char offset in the given text, inclusive
    end: int  # exclusive
    text: str


def segment_steps(text: str, *, max_steps: int = 512) -> list[Step]:
    """Split ``text`` into non-overlapping, trimmed steps covering all of its non-whitespace characters."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    blocks = _display_blocks(text)
    starts = [start for start, _ in blocks]
    spans: list[tuple[int, int]] = []
    pos = 0
    while (match := _NON_SPACE.search(text, pos)) is not None:
        start = match.start()
        if len(spans) == max_steps - 1:
            spans.append((start, len(text.rstrip())))
            break
        if _SECTION_START.match(text, start):
            stop = _section_end(text, start, blocks, starts)
        else:
            stop = _line_end(text, start, blocks, starts)
        spans.append((start, start + len(text[start:stop].rstrip())))
        pos = stop
    return [Step(index=i, start=a, end=b, text=text[a:b]) for i, (a, b) in enumerate(spans)]


def _line_end(text: str, start: int, blocks: list[tuple[int, int]], starts: list[int]) -> int:
    """End of the line at ``start``, pushed past every display block that begins on it."""
    stop = _find_or_end(text, "\n", start)
    k = bisect_left(starts, start)
    while k < len(blocks) and blocks[k][0] < stop:
        if blocks[k][1] > stop:
            stop = _find_or_end(text, "\n", blocks[k][1])
        k += 1
    return stop


def _section_end(text: str, start: int, blocks: list[tuple[int, int]], starts: list[int]) -> int:
    """Position of the first section break after ``start`` that is not inside display math."""
    pos = start
    while (match := _SECTION_BREAK.search(text, pos)) is not None:
        brk = match.start()
        k = bisect_right(starts, brk) - 1
        if k < 0 or blocks[k][1] <= brk:
            return brk
        pos = blocks[k][1]
    return len(text)


def _find_or_end(text: str, token: str, start: int) -> int:
    found = text.find(token, start)
    return len(text) if found < 0 else found


def _display_blocks(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(start, end)`` spans of display math.

    A block still open at the end of the text (within MAX_DISPLAY_CHARS) runs to the end: it may yet be
    closed by text that a growing response appends, and keeping it whole keeps the earlier steps stable.
    """
    blocks: list[tuple[int, int]] = []
    closers: dict[str, int] = {}  # closer token -> its next unescaped position at or after the last query
    pos = 0
    for _ in range(MAX_DISPLAY_OPENERS):
        match = _DISPLAY_OPEN.search(text, pos)
        if match is None:
            break
        opened = match.start()
        if _escaped(text, opened):
            pos = opened + 1
            continue
        if match.group(1):
            closer = "\\end{" + match.group(1) + match.group(2) + "}"
        else:
            closer = "$$" if match.group(0) == "$$" else "\\]"
        found = _next_closer(text, closer, match.end(), closers)
        if found >= 0 and found + len(closer) - opened <= MAX_DISPLAY_CHARS:
            blocks.append((opened, found + len(closer)))
            pos = found + len(closer)
        elif found < 0 and len(text) - opened <= MAX_DISPLAY_CHARS:
            blocks.append((opened, len(text)))
            break
        else:  # closed too far away, or never: a stray delimiter
            pos = match.end()
    return blocks


def _next_closer(text: str, closer: str, start: int, cache: dict[str, int]) -> int:
    """Next unescaped ``closer`` at or after ``start`` (-1: none); queries per closer only move forward."""
    cached = cache.get(closer)
    if cached is not None and (cached < 0 or cached >= start):
        return cached
    found = text.find(closer, start)
    while found >= 0 and _escaped(text, found):
        found = text.find(closer, found + 1)
    cache[closer] = found
    return found


def _escaped(text: str, index: int) -> bool:
    """True when an odd run of backslashes precedes ``index`` (``\\$$`` is a literal dollar, ``\\\\[`` a
    line break followed by a bracket). Runs before distinct tokens are disjoint, so the total cost is linear."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1
