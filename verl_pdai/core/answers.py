"""Mathematical equivalence of answers for outcome rewards and answer-leak checks.

The answer API in one place: :func:`quick_equivalent` and :func:`answers_equivalent` live here; the
extraction (:func:`split_thinking`, :func:`extract_final_answer`, in :mod:`verl_pdai.core.extraction`) and the
normalization (:func:`normalize_answer`, :func:`ground_truth_candidates`, in :mod:`verl_pdai.core.normalization`)
they build on are re-exported, so callers import everything from this module.

Pure module: it imports neither verl nor sympy; ``math_verify`` (which pulls in sympy) is imported lazily by
:func:`answers_equivalent` only when the string fast path cannot decide.

Model outputs are untrusted (1 MB responses, 10,000 nested braces, unclosed ``\\boxed{``, NUL bytes), so every
function here runs in linear time (no backtracking-prone regex, no recursion on nesting depth) and never raises.

Decisions (tests pin them; the extraction decision, "last box wins", is in :mod:`verl_pdai.core.extraction`):

* **Percent.** A percent sign allows two readings of that side: ``50\\%`` equals ``50`` (MATH-style ground
  truths omit the sign) and also ``0.5`` (what the sign means). Without a sign ``50`` and ``0.5`` differ.
* **Units, degrees, currency.** Trailing ``\\text{cm}``-style units, degree marks and ``\\$`` are dropped;
  degrees are not converted to radians (``90^\\circ`` is not ``\\frac{\\pi}{2}``).
* **Assignments.** ``x=3`` equals ``3``; ``x=3`` and ``y=3`` are left to math-verify, which says they differ.
* **Intervals vs inequalities.** ``0<x\\le 1`` equals ``(0,1]`` in both directions.
* **Sets, tuples, lists.** ``\\{3,1,2\\}`` equals ``\\{1,2,3\\}`` (a set: order and repeats ignored); ``(a,b)`` and
  ``[a,b]`` are ordered (tuples, intervals). A set never equals a tuple or an interval, in either direction
  (``\\{1,2,3\\}`` and ``(1,2,3)`` are different objects; math-verify alone calls ``\\{1,2\\}`` equal to the
  interval ``(1,2)``, see :func:`_shapes_conflict`). A bare list ``1, 2, 3`` in the ground truth is the list of all
  answers (MATH's form), so any order counts; a bare list answer against a tuple ground truth must keep its order.
* **Cost guard.** Answers longer than :data:`MAX_VERIFY_CHARS`, nested deeper than :data:`MAX_NESTING`, or
  with power towers / huge factorials never reach sympy (they would hang it); they are compared as strings only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from verl_pdai.core.extraction import _BOX_COMMANDS, ThinkingSplit, extract_final_answer, split_thinking
from verl_pdai.core.normalization import (
    _DECIMAL_RE,
    _DEGREE_RE,
    _MAX_NUMBER_CHARS,
    _clean_text,
    _normalize,
    _Normalized,
    _strip_math_delimiters,
    _strip_percent,
    _strip_trailing_units,
    _unwrap_text_answer,
    _unwrap_whole,
    ground_truth_candidates,
    normalize_answer,
)

__all__ = [
    "ThinkingSplit",
    "split_thinking",
    "extract_final_answer",
    "ground_truth_candidates",
    "accepted_answers",
    "ANSWERS_FIELD",
    "normalize_answer",
    "quick_equivalent",
    "answers_equivalent",
    "MAX_VERIFY_CHARS",
    "MAX_NESTING",
]

# Longer answers are compared as strings only: sympy time grows quickly with size and is not interruptible
# outside the main thread.
MAX_VERIFY_CHARS = 1_000
# Deeper brace/paren nesting is never sent to the LaTeX parser (recursive descent).
MAX_NESTING = 40
# Longer predictions skip normalization and math-verify entirely (nothing that long is a final answer).
_MAX_ANSWER_CHARS = 50_000

# extra_info key of every accepted answer of a prepared row (docs/data.md): reward_model.ground_truth holds only the
# first, as a string, so that every data file has the same column types and verl can concatenate them.
ANSWERS_FIELD = "answers"


def accepted_answers(ground_truth: object, extra_info: object = None) -> list[str]:
    """Every accepted answer of a row: ``ground_truth``'s candidates, then ``extra_info["answers"]``'s new ones.

    Rows written before ``extra_info.answers`` existed (a list ``ground_truth``) give the same candidates as
    before; a row without either gives []. Never raises.
    """
    out = ground_truth_candidates(ground_truth)
    more = extra_info.get(ANSWERS_FIELD) if isinstance(extra_info, Mapping) else None
    for candidate in ground_truth_candidates(more) if more is not None else []:
        if candidate not in out:
            out.append(candidate)
    return out


# Plain rational literals the fast path reads exactly (plain decimals use normalization's _DECIMAL_RE).
_SCI_RE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]([+-]?\d{1,3})")
_FRAC_INT_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_SLASH_INT_RE = re.compile(r"([+-]?\d+)/([+-]?\d+)")


# --------------------------------------------------------------------------------------------------------------
# Fast equivalence
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rational:
    value: Fraction
    exact: bool  # written without a decimal point (math-verify compares these exactly, floats to 6 places)


def _as_rational(s: str) -> _Rational | None:
    """Value of a plain rational literal: int, decimal, scientific, ``\\frac{a}{b}`` or ``a/b``."""
    if not s or len(s) > _MAX_NUMBER_CHARS:
        return None
    m = _DECIMAL_RE.fullmatch(s)
    if m is not None and (m.group(2) or m.group(3)):
        return _Rational(Fraction(s), exact="." not in s)
    m = _SCI_RE.fullmatch(s)
    if m is not None:
        return _Rational(Fraction(m.group(1)) * Fraction(10) ** int(m.group(2)), exact=False)
    m = _FRAC_INT_RE.fullmatch(s)
    if m is not None:
        num, den = int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        value = Fraction(num, den)
        return _Rational(-value if m.group(1) == "-" else value, exact=True)
    m = _SLASH_INT_RE.fullmatch(s)
    if m is not None:
        den = int(m.group(2))
        return _Rational(Fraction(int(m.group(1)), den), exact=True) if den else None
    return None


def _numbers_compare(a: _Rational, b: _Rational) -> bool | None:
    if a.value == b.value:
        return True
    if a.exact and b.exact:
        return False
    # math-verify rounds floats to 6 decimals (and keeps ~15 significant digits): a gap far above both is
    # certainly "different" for it too.
    scale = max(Fraction(1), abs(a.value), abs(b.value))
    if abs(a.value - b.value) > Fraction(1, 100_000) * scale:
        return False
    return None


def _readings(n: _Normalized) -> list[_Rational]:
    """Numeric readings of a normalized answer: both ``p`` and ``p/100`` when a percent sign was dropped."""
    r = _as_rational(n.text)
    if r is None:
        return []
    if not n.percent:
        return [r]
    return [r, _Rational(r.value / 100, exact=r.exact)]


def quick_equivalent(pred: str, gt: str) -> bool | None:
    """Fast, sympy-free verdict: True/False when certain, None when math-verify must decide.

    True when the normalized strings are equal or both are plain rationals of equal value (AIME "025" == 25);
    False only for plain rationals math-verify would also call different (two exact values that differ, or
    decimals far apart).
    """
    try:
        return _quick(_normalize(pred), _normalize(gt))
    except Exception:
        return None


def _quick(p: _Normalized, g: _Normalized) -> bool | None:
    try:
        if not p.text or not g.text:
            return None
        if p.variable and g.variable and p.variable != g.variable:
            return None  # "x=1" vs "y=1": math-verify's call
        if p.text == g.text:
            return True
        pr, gr = _readings(p), _readings(g)
        if not pr or not gr:
            return None
        verdicts = [_numbers_compare(a, b) for a in pr for b in gr]
        if any(v is True for v in verdicts):
            return True
        if all(v is False for v in verdicts):
            return False
        return None
    except Exception:
        return None


# --------------------------------------------------------------------------------------------------------------
# Full equivalence (math-verify)
# --------------------------------------------------------------------------------------------------------------


def answers_equivalent(pred: str, gt: object, *, timeout_s: float | None = 2.0) -> bool:
    """True when ``pred`` is mathematically equivalent to any candidate of ``gt``. Never raises.

    Fast path first (:func:`quick_equivalent`), then ``math_verify.parse``/``verify`` with light
    normalization. math-verify's timeouts use SIGALRM, which only works in the main thread: elsewhere they are
    disabled and the cost guard (:data:`MAX_VERIFY_CHARS`, towers, nesting) is the only protection, so callers
    running this in worker threads should bound it themselves (e.g. a process pool with a deadline).
    """
    try:
        if not isinstance(pred, str):
            return False
        candidates = ground_truth_candidates(gt)
        if not candidates or not pred.strip():
            return False
        if len(pred) > _MAX_ANSWER_CHARS:  # a runaway "answer": only an exact copy of the ground truth counts
            return pred.strip() in candidates
        pred_norm = _normalize(pred)
        undecided: list[str] = []
        for cand in candidates:
            cand_norm = _normalize(cand)
            verdict = _quick(pred_norm, cand_norm)
            if verdict is True:
                return True
            if verdict is None and not _shapes_conflict(_bracket_shape(pred_norm.text), _bracket_shape(cand_norm.text)):
                undecided.append(cand)
        if not undecided:
            return False
        return _math_verify_any(pred, undecided, timeout_s)
    except Exception:
        return False


def _bracket_shape(norm: str) -> str | None:
    """Shape of a normalized answer: "set" (explicit ``\\{a,b\\}``), "seq" (``(a,b)``, ``[a,b]``) or None."""
    if norm.startswith("\\{") and norm.endswith("\\}") and "(" not in norm and "[" not in norm:
        return "set"
    if len(norm) >= 2 and norm[0] in "([" and norm[-1] in ")]" and "," in norm:
        return "seq"
    return None


def _shapes_conflict(a: str | None, b: str | None) -> bool:
    # math-verify calls the interval (1,2) equal to the set {1,2}; an explicit set never equals a tuple/interval.
    return {a, b} == {"set", "seq"}


def _prepare_for_verify(s: str) -> list[str]:
    """Light rewrites for what math-verify gets wrong; returns the readings to try (two for percents)."""
    s = _clean_text(s)
    s = _strip_math_delimiters(s).rstrip(". ")
    s = _unwrap_whole(s, _BOX_COMMANDS)
    s = _DEGREE_RE.sub("", s)
    s, percent = _strip_percent(s)
    s = _strip_trailing_units(s)
    s = _unwrap_text_answer(s)
    m = _SCI_RE.fullmatch(s)
    if m is not None:  # math-verify reads "1.5e3" as 1.5*e*3
        s = f"{m.group(1)}\\times 10^{{{m.group(2)}}}"
    if not s:
        return []
    return [s, f"\\frac{{{s}}}{{100}}"] if percent else [s]


def _too_costly(s: str) -> bool:
    """Answers sympy could hang on: too long, too deep, power towers, huge exponents or factorials."""
    if len(s) > MAX_VERIFY_CHARS:
        return True
    depth = 0
    exponent_depths: list[int] = []  # depths of the open "^{" groups
    prev = ""  # previous non-space character
    run = longest_run = 0  # digit runs
    bang_after_group = False
    for c in s:
        if c.isspace():
            continue
        if c.isdigit():
            run += 1
            longest_run = max(longest_run, run)
            if exponent_depths and run > 5:
                return True  # 2^{1000000}
        else:
            if c == "!":
                if run > 5:
                    return True  # 1000000!
                bang_after_group = bang_after_group or (prev != "" and prev in ")}]")
            run = 0
        if c in "{([":
            depth += 1
            if depth > MAX_NESTING:
                return True
            if c == "{" and prev == "^":
                exponent_depths.append(depth)
        elif c in "})]":
            if exponent_depths and exponent_depths[-1] == depth:
                exponent_depths.pop()
            depth = max(0, depth - 1)
        elif c == "^" and exponent_depths:
            return True  # a^{b^{c}}
        prev = c
    if bang_after_group and ("^" in s or longest_run > 3):
        return True  # (10^{100})!
    return _TOWER_RE.search(s) is not None


# a^b^c without braces, a^{b}^{c}, Knuth arrows. Bounded repeats keep it linear.
_TOWER_RE = re.compile(r"\^ ?\w{1,40} ?\^|\^ ?\{[^{}]{0,200}\} ?\^|\\uparrow")


def _math_verify_any(pred: str, candidates: list[str], timeout_s: float | None) -> bool:
    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except Exception:
        return False
    in_main = threading.current_thread() is threading.main_thread()
    seconds = max(1, int(-(-timeout_s // 1))) if (timeout_s is not None and timeout_s > 0 and in_main) else None

    def parsed(text: str) -> list[object]:
        out: list[object] = []
        if len(text) > 2 * MAX_VERIFY_CHARS:  # far over the limit: not worth even the rewrites
            return out
        for variant in _prepare_for_verify(text):
            if _too_costly(variant):
                continue
            out.extend(parse("$" + variant + "$", parsing_timeout=seconds))
        return out

    try:
        target = parsed(pred)
        if not target:
            return False
        for cand in candidates:
            gold = parsed(cand)
            if gold and verify(gold, target, timeout_seconds=seconds, allow_set_relation_comp=True):
                return True
        return False
    except (Exception, TimeoutException):
        return False
