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
3. With ``sentences=True`` a step made by rule 1 (not a heading/list section: the author's structure wins)
   is split further after each sentence end, see :func:`_sentence_ends`. MATH-style references are often
   one paragraph on one line; this is what lets a hint reveal part of them.
4. Beyond ``max_steps`` the rest of the text merges into the last step.

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


def segment_steps(text: str, *, max_steps: int = 512, sentences: bool = False) -> list[Step]:
    """Split ``text`` into non-overlapping, trimmed steps covering all of its non-whitespace characters.

    ``sentences=True`` also splits plain (non-section) steps at sentence ends; the default keeps one step per
    line/paragraph. Either way the result is stable under appending (only the last step may change).
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    blocks = _display_blocks(text)
    starts = [start for start, _ in blocks]
    spans: list[tuple[int, int]] = []
    pos = 0
    while (match := _NON_SPACE.search(text, pos)) is not None:
        start = match.start()
        if len(spans) >= max_steps - 1:
            spans.append((start, len(text.rstrip())))
            break
        if _SECTION_START.match(text, start):
            stop = _section_end(text, start, blocks, starts)
            spans.append((start, start + len(text[start:stop].rstrip())))
        else:
            stop = _line_end(text, start, blocks, starts)
            end = start + len(text[start:stop].rstrip())
            room = max_steps - 1 - len(spans)  # more cuts would be merged again by the cap
            cuts = _sentence_ends(text, start, end, blocks, starts, room) if sentences else []
            for cut in cuts:
                spans.append((start, cut))
                start = _NON_SPACE.search(text, cut).start()  # a cut is always followed by a non-space
            spans.append((start, end))
        pos = stop
    if len(spans) > max_steps:  # sentence pieces overflowed the cap: merge the rest, as rule 4 says
        spans[max_steps - 1 :] = [(spans[max_steps - 1][0], spans[-1][1])]
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


# Sentence splitting (``sentences=True``). One token per escape pair (so "\\$" and "\\." are skipped), inline
# math delimiter or period; the scan is linear and decides each cut from the text before it plus a few
# characters after, which keeps the split stable under appending.
_SENTENCE_TOKEN = re.compile(r"\\[()]|\\.|\$|\.", re.DOTALL)
# Words whose trailing period does not end a sentence ("e.g. The" is one sentence).
_ABBREVIATIONS = frozenset(
    {"eg", "ie", "etc", "vs", "cf", "resp", "approx", "viz", "al", "mr", "mrs", "ms", "dr", "prof"}
    | {"fig", "figs", "eq", "eqs", "eqn", "thm", "lem", "prop", "cor", "ex"}
)
_WORD_BEFORE = re.compile(r"[A-Za-z.]{1,12}\Z")
# A line that so far is only an enumeration marker ("A.", "2.", "iv.") is not a sentence.
_MARKER = re.compile(r"[A-Za-z]|[0-9]{1,3}|[ivxIVX]{1,4}")
_LOOK_BACK = 16


def _sentence_ends(
    text: str, start: int, end: int, blocks: list[tuple[int, int]], starts: list[int], limit: int
) -> list[int]:
    """Cut positions inside ``text[start:end]``, at most ``limit``: just after each sentence-ending period.

    A period ends a sentence when it is outside inline math (``$...$``, ``\\(...\\)``) and display math, and
    is followed by whitespace and then a capital letter, ``$``, ``\\(`` or ``\\[``. A period that closes inline
    math (``$x = 3.$ Then``) counts, cutting after the ``$``. Not cut: decimals ("3.5": no space), ellipses,
    abbreviations ("e.g.", "etc.", "Fig."), and enumeration markers at line start ("A. ", "iv. ").
    """
    cuts: list[int] = []
    in_math = False
    pos = start
    while len(cuts) < limit and (match := _SENTENCE_TOKEN.search(text, pos, end)) is not None:
        at = match.start()
        k = bisect_right(starts, at) - 1
        if k >= 0 and blocks[k][1] > at:  # inside display math: jump over the block
            pos = blocks[k][1]
            continue
        pos = match.end()
        token = match.group()
        if token == "$":
            in_math = not in_math
        elif token in ("\\(", "\\)"):
            in_math = token == "\\("
        elif token == ".":
            cut = at + 1
            if in_math:  # only a period right before the closing "$" ends a sentence from inside math
                if text.startswith("$", cut) and not text.startswith("$$", cut):
                    cut += 1
                else:
                    continue
            if cut < end and _is_sentence_end(text, start, at, cut, end):
                cuts.append(cut)
    return cuts


def _is_sentence_end(text: str, start: int, period: int, cut: int, end: int) -> bool:
    if not text[cut].isspace():
        return False
    nxt = _NON_SPACE.search(text, cut, end)
    if nxt is None:
        return False
    head = text[nxt.start() : nxt.start() + 2]
    if not (head[0].isupper() or head[0] == "$" or head in ("\\(", "\\[")):
        return False
    word = _WORD_BEFORE.search(text, max(start, period - 12), period)
    if word is not None and ("." in word.group() or word.group().lower() in _ABBREVIATIONS):
        return False
    line_start = max(start, text.rfind("\n", max(start, period - _LOOK_BACK), period) + 1)
    return period - line_start > _LOOK_BACK or _MARKER.fullmatch(text[line_start:period].strip()) is None


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
