"""Arithmetic claims in reasoning text: equalities (and ≈) between numeric expressions, each with a verdict.

The input is untrusted model output, so the scan is bounded: it is linear (regular expressions whose
alternatives cannot backtrack over more than a few characters), at most MAX_RELATION_RUNS equality chains are
examined per text, and sides are evaluated by :mod:`verl_pdai.core.arithmetic` within its bounds. Nothing raises
on any string; what cannot be decided within the bounds comes back as ``None``.

The relation scanner (``_links``) is shared with :mod:`verl_pdai.core.quantities`;
:mod:`verl_pdai.core.step_checks` re-exports :class:`ArithmeticClaim` and :func:`find_arithmetic_claims`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from verl_pdai.core.arithmetic import _CLOSING, _analyse, _Parsed

__all__ = [
    "ArithmeticClaim",
    "find_arithmetic_claims",
]

MAX_RELATION_RUNS = 4096  # equality chains examined per text

_WINDOW = 320  # a side of a relation longer than about this is not a claim
_EDGE = 16  # a run starting this close to the window edge may be cut off: skip it


# ---------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class ArithmeticClaim:
    start: int  # char span of the claim within the text passed in
    end: int
    expression: str  # left side as written
    claimed: str  # right side as written
    holds: bool | None  # None: could not be decided within the bounds (too large, unsupported)
    approximate: bool = False  # written with ≈ / \approx: never derives a value (see derived_quantities)


# A "run": a maximal stretch of characters that can belong to a numeric expression or a relation between
# two. It starts with a non-space character; every alternative starts with a distinct character or is
# fixed-length, so the scan never backtracks more than a few characters. Escaped brackets (\( \[ \{) are not
# part of a run: they delimit math.
_RUN_CHARS = "0-9+\\-*/^!×·÷−⋅∗=≈"  # single characters that are always part of a run (tried first: fastest)
_RUN_OTHER = (
    r"(?<=[0-9])\{,\}(?=[0-9])"
    r"|(?<!\\)[()\[\]{}]"
    r"|(?<!\\)\\(?:cdot|times|div|frac|dfrac|tfrac|sqrt|binom|left|right|approx)(?![A-Za-z])"
    r"|(?<!\\)\\[,;:! ]"
    r"|\.(?=[0-9])|(?<=[0-9]),(?=[0-9]{3}(?![0-9]))"
)
_RUN = re.compile(r"(?:[" + _RUN_CHARS + r"]|" + _RUN_OTHER + r")(?:[" + _RUN_CHARS + r" \t]|" + _RUN_OTHER + r")*")
# The leading look-ahead lets the scan reject most positions on one character test.
_RELATION = re.compile(r"(?=[=≈\\])(?:=+|≈|(?<!\\)\\approx(?![A-Za-z]))")
_DIGIT = re.compile(r"[0-9]")
_BINARY_START = re.compile(r"(?:[*/^!×·÷⋅∗=≈]|\\(?:cdot|times|div|approx)(?![A-Za-z]))")
_SIGN_START = re.compile(r"[-+−]")
_OPERATOR_END = re.compile(r"(?:[-+*/^×·÷−⋅∗]|\\(?:cdot|times|div|frac|dfrac|tfrac|sqrt|binom|left|right)|[(\[{])\s*\Z")
# What may touch a side without a space: math delimiters and punctuation, never a letter or digit.
_PREV_OK = frozenset("$([{,;:&")
_NEXT_OK = frozenset("$,;:&?")
_NEXT_COMMAND_OK = re.compile(
    r"\\(?:[)\]\\]|(?:text|textrm|mathrm|mbox|quad|qquad|end|tag|label|pmod|bmod|mod|ldots|dots|cdots"
    r"|hfill|implies|Rightarrow)(?![A-Za-z]))"
)
_WORDISH_PREV = re.compile(r"[0-9A-Za-z_)\]}'|\\]")


@dataclass(frozen=True)
class _Link:
    """One relation of a run, with the validated spans of its numeric sides (None: not a numeric side)."""

    relation: str  # "=", "approx" or "other" ("==", "!=")
    left: tuple[int, int] | None
    right: tuple[int, int] | None


def _links(text: str) -> Iterator[_Link]:
    """Every relation inside a numeric run, in order, for at most MAX_RELATION_RUNS runs."""
    pos = 0
    for _ in range(MAX_RELATION_RUNS):
        match = _RELATION.search(text, pos)
        if match is None:
            return
        run = _run_around(text, match.start())
        if run is None:
            pos = match.end()
            continue
        start, end = run
        if start < 0:  # over-long run: every relation in it is skipped at once
            pos = max(end, match.end())
            continue
        relations = list(_RELATION.finditer(text, start, end))
        bounds = [start] + [x for m in relations for x in (m.start(), m.end())] + [end]
        for k, rel in enumerate(relations):
            left = _left_side(text, bounds[2 * k], rel.start(), start if k == 0 else -1)
            right = _right_side(text, rel.end(), bounds[2 * k + 3], end if k == len(relations) - 1 else -1)
            yield _Link(_relation_kind(text, rel), left, right)
        pos = end


def _relation_kind(text: str, rel: re.Match[str]) -> str:
    symbol = rel.group()
    if symbol in ("≈", "\\approx"):
        return "approx"
    if symbol == "=" and not (rel.start() > 0 and text[rel.start() - 1] == "!"):
        return "="
    return "other"  # "==", and "!=" (read as "not equal", not as a factorial)


def _run_around(text: str, index: int) -> tuple[int, int] | None:
    """The run containing ``index``; None when there is none or it has no digit nearby, and ``(-1, end)``
    when it is too long to hold a claim (``end``: where scanning may resume)."""
    hi = min(len(text), index + _WINDOW)
    if _DIGIT.search(text, max(0, index - _WINDOW), hi) is None:
        return None
    # Look back a little first, then as far as a side may reach: a run found well inside the scanned
    # range cannot have been cut by where the scan began.
    for reach in (64, _WINDOW):
        lo = max(0, index - reach)
        for match in _RUN.finditer(text, lo, hi):
            if match.end() > index:
                break
        else:
            return None
        start, end = match.span()
        if start > index:
            return None
        if hi < len(text) and end >= hi:
            tail = _RUN.match(text, index)
            return -1, tail.end() if tail is not None else index + 1
        if lo == 0 or start >= lo + _EDGE:
            return start, end
    return -1, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t":
        start += 1
    while end > start and text[end - 1] in " \t":
        end -= 1
    return start, end


def _left_side(text: str, start: int, end: int, run_start: int) -> tuple[int, int] | None:
    """Validated span of a relation's left side; ``run_start >= 0`` when the side opens its run."""
    start, end = _strip(text, start, end)
    if start >= end or _BINARY_START.match(text, start, end):
        return None
    opened = _unmatched_openers(text, start, end)
    if opened is None:
        return None
    if opened:  # "(3 + 4 = 7)": drop the opening bracket that belongs to the surrounding text
        start, end = _strip(text, opened[-1] + 1, end)
        if start >= end or _BINARY_START.match(text, start, end):
            return None
    if run_start >= 0:
        prev = text[run_start - 1] if run_start > 0 else ""
        signed = _SIGN_START.match(text, start, end) is not None
        if prev == "" or prev.isspace():  # a space before: fine, unless a sign makes it "x - 3"
            if signed and _WORDISH_PREV.match(_prev_non_space(text, run_start)):
                return None
        elif prev not in _PREV_OK:
            return None  # "f(3)", "x^2", "a_1": the run continues something that is not a number
    return start, end


def _right_side(text: str, start: int, end: int, run_end: int) -> tuple[int, int] | None:
    """Validated span of a relation's right side; ``run_end >= 0`` when the side closes its run."""
    start, end = _strip(text, start, end)
    if start >= end or _BINARY_START.match(text, start, end):
        return None
    cut = _first_unmatched_closer(text, start, end)
    if cut == -2:
        return None
    if cut >= 0:
        if text[cut:end].strip(" \t)]}") not in ("", "\\right"):
            return None
        start, end = _strip(text, start, cut)
        if end - start >= 6 and text.endswith("\\right", start, end):
            start, end = _strip(text, start, end - 6)
        if start >= end:
            return None
    if _OPERATOR_END.search(text, max(start, end - 8), end):
        return None  # "= 3 \cdot x": the expression goes on with a variable
    if run_end >= 0 and end == run_end and run_end < len(text) and not _next_ok(text, run_end):
        return None  # "= 12x", "= 0.\overline{3}", "= 50\%"
    return start, end


def _next_ok(text: str, index: int) -> bool:
    nxt = text[index]
    if nxt.isspace() or nxt in _NEXT_OK:
        return True
    if nxt == ".":  # a full stop, not "0.\overline{3}"
        after = text[index + 1 : index + 2]
        return after == "" or after.isspace() or after == "$" or text.startswith(("\\)", "\\]"), index + 1)
    return nxt == "\\" and _NEXT_COMMAND_OK.match(text, index) is not None


def _prev_non_space(text: str, index: int) -> str:
    """The character before the spaces that precede ``index`` (looks back a bounded distance)."""
    k = index - 1
    while k >= 0 and index - k < 64 and text[k] in " \t":
        k -= 1
    return text[k] if k >= 0 else ""


def _unmatched_openers(text: str, start: int, end: int) -> list[int] | None:
    """Positions of brackets left open in ``text[start:end]``; None when the brackets cannot be a prefix of
    a larger bracket (a mismatch, a stray closer, or an opener left open after other content)."""
    stack: list[int] = []
    for k in range(start, end):
        ch = text[k]
        if ch in _CLOSING:
            stack.append(k)
        elif ch in ")]}":
            if not stack or _CLOSING[text[stack[-1]]] != ch:
                return None
            stack.pop()
    if stack and text[start : stack[-1]].replace("\\left", "").strip(" \t([{"):
        return None
    return stack


def _first_unmatched_closer(text: str, start: int, end: int) -> int:
    """Position of the first closer without an opener (-1: none; -2: brackets are broken)."""
    stack: list[str] = []
    for k in range(start, end):
        ch = text[k]
        if ch in _CLOSING:
            stack.append(ch)
        elif ch in ")]}":
            if not stack:
                return k
            if _CLOSING[stack.pop()] != ch:
                return -2
    return -2 if stack else -1


APPROX_TOLERANCE = Fraction(1, 100)  # a ≈ claim off by more than 1% (relative) is false


def _judge(left: _Parsed, right: _Parsed, approx: bool) -> bool | None:
    if left.value is None or right.value is None:
        return None
    if left.value == right.value or _rounds_to(left.value, right, approx) or _rounds_to(right.value, left, approx):
        return True
    if not approx:
        return False
    # ≈ with no rounding match: close enough is undecided, far off is false (else ≈ would dodge the penalty)
    scale = max(abs(left.value), abs(right.value))
    return False if abs(left.value - right.value) > APPROX_TOLERANCE * scale else None


def _rounds_to(value: Fraction, numeral: _Parsed, approx: bool) -> bool:
    """A written decimal matches ``value`` truncated or rounded to its digits (integers only under ≈)."""
    if numeral.decimals is None or numeral.value is None or (numeral.decimals == 0 and not approx):
        return False
    scale = 10**numeral.decimals
    target = numeral.value * scale
    scaled = value * scale
    return target in (math.trunc(scaled), round(scaled), math.floor(scaled + Fraction(1, 2)))


def find_arithmetic_claims(text: str, *, max_claims: int = 64) -> list[ArithmeticClaim]:
    """Equalities (and ≈) between numeric expressions, at least one side computed, each with its verdict.

    A claim is one link ``A = B`` of a run of numeric characters (digits, operators, brackets, \\frac,
    \\sqrt, \\cdot, ...) whose sides both parse and at least one contains an operator, so each link of
    ``2+2 = 4 = 2^2`` counts. A side that touches a variable or function (``x + 2``, ``2x``, ``f(3)``,
    ``x^2``, ``= 7x``, ``= 50\\%``) is not numeric. ``holds`` is exact, except that a written decimal
    matches a value truncated or rounded to its digits (``\\frac{1}{3} = 0.333``), and ≈ is True when it rounds,
    False when off by more than 1% (relative), else None. Undecidable values (too large, irrational, division by zero,
    ``2\\frac{1}{2}``) give None. ``!=`` and ``==`` are not claims.
    """
    if max_claims < 0:
        raise ValueError(f"max_claims must be >= 0, got {max_claims}")
    if not isinstance(text, str):
        return []
    claims: list[ArithmeticClaim] = []
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if len(claims) >= max_claims:
            break
        if link.relation == "other" or link.left is None or link.right is None:
            continue
        left = _parsed_span(text, link.left, cache)
        right = _parsed_span(text, link.right, cache)
        if left is None or right is None or not (left.compound or right.compound):
            continue
        claims.append(
            ArithmeticClaim(
                start=link.left[0],
                end=link.right[1],
                expression=text[link.left[0] : link.left[1]],
                claimed=text[link.right[0] : link.right[1]],
                holds=_judge(left, right, link.relation == "approx"),
                approximate=link.relation == "approx",
            )
        )
    return claims


def _parsed_span(text: str, span: tuple[int, int], cache: dict[tuple[int, int], _Parsed | None]) -> _Parsed | None:
    if span not in cache:
        cache[span] = _analyse(text[span[0] : span[1]])
    return cache[span]
