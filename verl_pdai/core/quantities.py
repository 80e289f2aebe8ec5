"""Key quantities: the numeric results a reference solution reaches, and the numbers a text mentions.

The input is untrusted model output, so everything here is bounded: scans are linear, values are evaluated
exactly by :mod:`verl_pdai.core.arithmetic` within its bounds, and the numerals, relations and candidates
looked at per call are capped. Nothing raises on any string. :mod:`verl_pdai.core.step_checks` re-exports
:func:`key_quantities` and :func:`quantities_in`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction

from verl_pdai.core.arithmetic import MAX_LITERAL_CHARS, Value, _analyse, _div, _literal, _Parsed
from verl_pdai.core.claims import _RELATION, _RUN, ArithmeticClaim, _links, _parsed_span, _prev_non_space, _right_side

__all__ = [
    "derived_quantities",
    "key_quantities",
    "quantities_in",
]

MAX_KEY_BITS = 200  # ~60 digits: larger values make no useful quantity keys
MAX_NUMERALS = 20_000  # numerals examined per text by quantities_in
MAX_QUANTITIES = 4096

_TRIVIAL_KEYS = frozenset({"0", "1", "2", "-1"})


# -------------------------------------------------------------------------------------------- quantities


def _canonical(value: Value) -> str | None:
    """``str(Fraction)``: 0.5, 1/2 and \\frac{1}{2} all become "1/2"."""
    if value is None or value.numerator.bit_length() > MAX_KEY_BITS or value.denominator.bit_length() > MAX_KEY_BITS:
        return None
    return str(value)


_PLAIN_NUMBER = r"[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3}(?![0-9]))+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_NUMERAL = re.compile(
    r"(?=[\\0-9])(?:\\[dt]?frac[ \t]*\{[ \t]*(?P<fnum>"
    + _PLAIN_NUMBER
    + r")[ \t]*\}[ \t]*\{[ \t]*(?P<fden>"
    + _PLAIN_NUMBER
    + r")[ \t]*\}"
    r"|\\[dt]?frac[ \t]*(?P<snum>[0-9])(?P<sden>[0-9])(?![0-9])"
    r"|(?<![0-9.])(?P<num>" + _PLAIN_NUMBER + r")(?:[ \t]*/[ \t]*(?P<den>" + _PLAIN_NUMBER + r")(?![0-9.]))?)"
)
_UNARY_CONTEXT = frozenset("=([{,;:$&<>\n")


def _numeral_value(text: str, match: re.Match[str]) -> Value:
    groups = match.groupdict()
    if groups["fnum"] is not None:
        return _div(_literal(groups["fnum"]), _literal(groups["fden"]))
    if groups["snum"] is not None:
        return _div(Fraction(int(groups["snum"])), Fraction(int(groups["sden"])))
    value = _literal(groups["num"])
    if groups["den"] is not None:
        value = _div(value, _literal(groups["den"]))
    if value is not None and _negated(text, match.start()):
        value = -value
    return value


def _negated(text: str, index: int) -> bool:
    """A minus right before a numeral is a sign when nothing that could be an operand precedes it."""
    k = index - 1
    while k >= 0 and index - k < 8 and text[k] in " \t":
        k -= 1
    if k < 0 or text[k] not in "-−":
        return False
    before = _prev_non_space(text, k)
    return before == "" or before in _UNARY_CONTEXT


def quantities_in(text: str) -> set[str]:
    """Canonical numbers in ``text``: numerals, fractions, and the values of numeric sides of equalities."""
    if not isinstance(text, str):
        return set()
    found: set[str] = set()
    for count, match in enumerate(_NUMERAL.finditer(text)):
        if count >= MAX_NUMERALS or len(found) >= MAX_QUANTITIES:
            return found
        if match.end() - match.start() > 2 * MAX_LITERAL_CHARS:
            continue
        key = _canonical(_numeral_value(text, match))
        if key is not None:
            found.add(key)
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if len(found) >= MAX_QUANTITIES:
            break
        for span in (link.left, link.right):
            parsed = None if span is None else _parsed_span(text, span, cache)
            key = None if parsed is None else _canonical(parsed.value)
            if key is not None:
                found.add(key)
    return found


_LITERAL = re.compile(r"-?[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3}(?![0-9]))+(?:\.[0-9]+)?|-?[0-9]+(?:\.[0-9]+)?")
_SPACES = re.compile(r"\s+")


def derived_quantities(claims: Sequence[ArithmeticClaim]) -> set[str]:
    """Canonical values that correct claims *derive*: the claimed (right) side of an exact claim (``=``, not ``≈``)
    that holds, unless the value is already written on the computed side (``12 + 0 = 12``, ``12 = 3 \\cdot 4``,
    ``\\frac{3}{4} + 0 = \\frac{3}{4}``, ``1{,}200 \\cdot 1 = 1{,}200``).

    This is what earns key credit in the stepwise reward: a bare number, a list of numbers, the left side of a
    false claim, an approximation or ``x = x`` derive nothing.
    """
    found: set[str] = set()
    for claim in claims:
        if claim.holds is not True or claim.approximate:
            continue
        parsed = _analyse(claim.claimed)
        key = None if parsed is None else _canonical(parsed.value)
        if key is None:
            continue
        if _SPACES.sub("", claim.claimed) in _SPACES.sub("", claim.expression):
            continue  # the claimed text is written on the computed side
        written = {
            _canonical(_literal(m.group().replace("{,}", "").replace(",", "")))
            for m in _LITERAL.finditer(claim.expression)
        }
        if key not in written:
            found.add(key)
    return found


_BOXED = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
# "so/therefore ... is N": find "is N" first (a cheap literal-led scan), then look back within the sentence.
_IS_NUMBER = re.compile(r"\b(?:is|equals|are|be)[ \t]+(?:\$\$?[ \t]*|\\[(\[][ \t]*)?(?=[-−0-9(\[{\\])", re.IGNORECASE)
_CONCLUDES = re.compile(r"\b(?:so|therefore|thus|hence)\b", re.IGNORECASE)
_CONCLUSION_REACH = 120
_MAX_CONCLUSIONS = 1024
_MAX_BOXED = 64
_MAX_BOXED_CHARS = 512


def key_quantities(reference_solution: str, *, max_keys: int = 16) -> list[str]:
    """Numeric results a reference solution reaches, canonical, de-duplicated in order of appearance.

    Sources: right-hand sides of equalities (``x = 3 \\cdot 4 = 12`` gives 12), ``\\boxed{}`` contents, and
    "so/therefore/thus/hence ... is N". The trivial values 0, 1, 2 and -1 are left out.
    """
    if max_keys < 0:
        raise ValueError(f"max_keys must be >= 0, got {max_keys}")
    if not isinstance(reference_solution, str):
        return []
    text = reference_solution
    found: list[tuple[int, str]] = []
    cache: dict[tuple[int, int], _Parsed | None] = {}
    for link in _links(text):
        if link.relation == "=" and link.right is not None:
            _add_key(found, link.right[0], _parsed_span(text, link.right, cache))
    for count, match in enumerate(_BOXED.finditer(text)):
        if count >= _MAX_BOXED:
            break
        content = _braced(text, match.end())
        if content is not None:
            _add_key(found, match.start(), _boxed_value(text, content))
    for count, match in enumerate(_IS_NUMBER.finditer(text)):
        if count >= _MAX_CONCLUSIONS:
            break
        span = _conclusion(text, match)
        if span is not None:
            _add_key(found, span[0], _parsed_span(text, span, cache))
    found.sort(key=lambda item: item[0])
    keys: list[str] = []
    for _, key in found:
        if len(keys) >= max_keys:
            break
        if key not in keys:
            keys.append(key)
    return keys


def _conclusion(text: str, match: re.Match[str]) -> tuple[int, int] | None:
    """Span of N in "so/therefore/thus/hence ... is N" (same sentence), or None."""
    lo = max(0, match.start() - _CONCLUSION_REACH)
    lo = max(lo, text.rfind(".", lo, match.start()) + 1, text.rfind("\n", lo, match.start()) + 1)
    if _CONCLUDES.search(text, lo, match.start()) is None:
        return None
    run = _RUN.match(text, match.end())
    if run is None:
        return None
    relation = _RELATION.search(text, run.start(), run.end())
    if relation is None:
        return _right_side(text, run.start(), run.end(), run.end())
    return _right_side(text, run.start(), relation.start(), -1)


def _add_key(found: list[tuple[int, str]], position: int, parsed: _Parsed | None) -> None:
    key = None if parsed is None else _canonical(parsed.value)
    if key is not None and key not in _TRIVIAL_KEYS:
        found.append((position, key))


def _braced(text: str, start: int) -> tuple[int, int] | None:
    """Span of the brace group content that starts at ``start`` (just after "{"), scanning a bounded prefix."""
    depth = 1
    for k in range(start, min(len(text), start + _MAX_BOXED_CHARS)):
        ch = text[k]
        if ch == "{" and text[k - 1] != "\\":
            depth += 1
        elif ch == "}" and text[k - 1] != "\\":
            depth -= 1
            if depth == 0:
                return start, k
    return None


def _boxed_value(text: str, span: tuple[int, int]) -> _Parsed | None:
    content = text[span[0] : span[1]].strip()
    parsed = _analyse(content)
    if parsed is None and "=" in content:  # \boxed{x = 5}: the value after the last "="
        parsed = _analyse(content.rpartition("=")[2])
    return parsed
