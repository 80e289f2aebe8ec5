"""Final-answer extraction and mathematical equivalence for outcome rewards and answer-leak checks.

Pure module: it imports neither verl nor sympy; ``math_verify`` (which pulls in sympy) is imported lazily by
:func:`answers_equivalent` only when the string fast path cannot decide.

Model outputs are untrusted (1 MB responses, 10,000 nested braces, unclosed ``\\boxed{``, NUL bytes), so every
function here runs in linear time (no backtracking-prone regex, no recursion on nesting depth) and never raises.

Decisions (tests pin them):

* **Last box wins.** :func:`extract_final_answer` returns the content of the last *complete* ``\\boxed{...}`` /
  ``\\fbox{...}`` (or braceless ``\\boxed 5``). An unclosed ``\\boxed{`` (truncated output) and an empty
  ``\\boxed{}`` (an echoed instruction) are skipped, so an earlier complete box is returned if there is one.
  Only when no box is usable does it fall back to the last "Answer: ..." / "The answer is ..." line.
* **Percent.** A percent sign allows two readings of that side: ``50\\%`` equals ``50`` (MATH-style ground
  truths omit the sign) and also ``0.5`` (what the sign means). Without a sign ``50`` and ``0.5`` differ.
* **Units, degrees, currency.** Trailing ``\\text{cm}``-style units, degree marks and ``\\$`` are dropped;
  degrees are not converted to radians (``90^\\circ`` is not ``\\frac{\\pi}{2}``).
* **Assignments.** ``x=3`` equals ``3``; ``x=3`` and ``y=3`` are left to math-verify, which says they differ.
* **Intervals vs inequalities.** ``0<x\\le 1`` equals ``(0,1]`` in both directions.
* **Cost guard.** Answers longer than :data:`MAX_VERIFY_CHARS`, nested deeper than :data:`MAX_NESTING`, or
  with power towers / huge factorials never reach sympy (they would hang it); they are compared as strings only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from numbers import Integral, Rational, Real

__all__ = [
    "ThinkingSplit",
    "split_thinking",
    "extract_final_answer",
    "ground_truth_candidates",
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
# Numbers with more digits than this are not turned into Fractions (int() has a 4300-digit limit anyway).
_MAX_NUMBER_CHARS = 400
# Longer predictions skip normalization and math-verify entirely (nothing that long is a final answer).
_MAX_ANSWER_CHARS = 50_000
# Ground truths with more candidates than this are truncated (a list ground truth is a handful of strings).
_MAX_CANDIDATES = 32

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


# --------------------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------------------


def ground_truth_candidates(ground_truth: object) -> list[str]:
    """All acceptable answer strings of a ground truth (str, int, float, list/tuple/array of those).

    Floats print without a spurious ``.0`` (142.0 -> "142"); ``$...$``, ``\\boxed{}`` and surrounding
    whitespace are stripped (OlympiadBench ``'$69$,$84$'`` -> ``'69,84'``). Empty or None -> [].
    """
    try:
        out: list[str] = []
        for item in _flatten(ground_truth):
            cand = _scalar_to_str(item)
            if cand is None:
                continue
            cand = _clean_ground_truth(cand)
            if cand and cand not in out:
                out.append(cand)
                if len(out) >= _MAX_CANDIDATES:
                    break
        return out
    except Exception:
        return []


def _flatten(obj: object) -> Iterable[object]:
    """Depth-first leaves of nested lists/tuples/arrays, with an explicit stack (no recursion)."""
    stack: list[object] = [obj]
    seen = 0
    while stack and seen < 10_000:
        seen += 1
        item = stack.pop()
        if hasattr(item, "tolist") and not isinstance(item, (str, bytes)):  # numpy arrays and scalars
            item = item.tolist()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            yield item


def _scalar_to_str(item: object) -> str | None:
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, str):
        return item
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, Integral):
        return str(int(item))
    if isinstance(item, Rational):  # Fraction: keep it exact
        return f"\\frac{{{item.numerator}}}{{{item.denominator}}}"
    if isinstance(item, Decimal):
        return format(item, "f") if item.is_finite() else None
    if isinstance(item, Real):
        x = float(item)
        if x != x:  # NaN
            return None
        if x in (float("inf"), float("-inf")):
            return "\\infty" if x > 0 else "-\\infty"
        if x.is_integer():
            return str(int(x))
        text = repr(x)
        return format(Decimal(text), "f") if "e" in text else text  # 1e-05 -> 0.00001 (math-verify misreads "e")
    return None


def _clean_ground_truth(s: str) -> str:
    s = _clean_text(s)
    s = _strip_math_delimiters(s)
    return _unwrap_whole(s, _BOX_COMMANDS).strip()


# --------------------------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------------------------

# C0 controls except tab/newline, DEL, zero-width characters, BOM.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_UNICODE_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2013": "-",
        "\u00d7": "\\times ",
        "\u22c5": "\\cdot ",
        "\u00b7": "\\cdot ",
        "\u03c0": "\\pi ",
        "\u221e": "\\infty ",
        "\u2264": "\\le ",
        "\u2265": "\\ge ",
        "\u00a0": " ",
        "\uff0c": ",",
        "\u3000": " ",
    }
)
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
# "\!" and "\," vanish ("3\,000" is 3000); wider spaces become a blank.
_THIN_SPACE_RE = re.compile(r"\\[!,]")
_SPACING_RE = re.compile(r"\\[;: ]|\\q?quad(?![A-Za-z])|~|\\displaystyle(?![A-Za-z])")
# Not a bare "\circ": that is also function composition.
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|\u00b0")
_PERCENT_RE = re.compile(r"\\?%")
_CONNECTIVE_RE = re.compile(r"\\(?:text|mbox|textrm|mathrm)\s*\{\s*(?:or|and)\s*\}|\s+(?:or|and)\s+")
_UNIT_COMMANDS = ("\\text", "\\textrm", "\\textnormal", "\\mbox", "\\mathrm")
_TEXT_COMMANDS = (*_UNIT_COMMANDS, "\\textbf")
# "\text{5 cm}" style: a number followed by words (units or nouns).
_NUMBER_WORDS_RE = re.compile(r"([+-]?\d[\d.,/]*)[ \t]+[A-Za-z][A-Za-z. \t]*")
# A unit body: letters, spaces, "/", "^" and digits (km/h, m^2), no braces.
_UNIT_BODY_RE = re.compile(r"[A-Za-z][A-Za-z0-9/^. \t-]*")
_ASSIGN_RE = re.compile(r"([A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?|\\[a-z]{2,8})[ \t]*=(?!=)")
_GREEK = frozenset(
    (
        "alpha beta gamma delta epsilon varepsilon theta vartheta lambda mu nu rho sigma tau phi varphi chi psi omega"
    ).split()
)
_WS_RE = re.compile(r"\s+")
_FRAC_DIGITS_RE = re.compile(r"\\frac(\d)(\d)")
_FRAC_DIGIT_BRACE_RE = re.compile(r"\\frac(\d)\{")
_FRAC_BRACE_DIGIT_RE = re.compile(r"\\frac\{([^{}]{0,50})\}(\d)")
_SQRT_TOKEN_RE = re.compile(r"\\sqrt ?([0-9A-Za-z])")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_RE = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
_SCI_RE = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))[eE]([+-]?\d{1,3})")
_FRAC_INT_RE = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}")
_SLASH_INT_RE = re.compile(r"([+-]?\d+)/([+-]?\d+)")


@dataclass(frozen=True)
class _Normalized:
    text: str  # canonical string
    variable: str | None  # "x" when a leading "x=" was dropped
    percent: bool  # a percent sign was dropped


def normalize_answer(answer: str) -> str:
    """Canonical string of an answer, for fast equality and for answer-leak checks. Deterministic.

    Drops ``$``, ``\\left``/``\\right``, thin spaces, whitespace (one space kept between digits and after a
    control word), degree marks, percent signs, ``\\$``, trailing units in ``\\text{}``/``\\mbox{}``, a
    surrounding ``\\text{}``, a leading ``x=`` of a single answer and a trailing period; rewrites
    ``\\dfrac``/``\\tfrac`` to ``\\frac``, ``\\frac12`` to ``\\frac{1}{2}``, and plain numbers to a canonical
    form ("025" -> "25", "18.90" -> "18.9", "1,000" -> "1000").
    """
    try:
        return _normalize(answer).text
    except Exception:
        return ""


def _normalize(answer: str) -> _Normalized:
    s = _clean_text(answer if isinstance(answer, str) else "")
    s = _strip_math_delimiters(s).rstrip(". ")
    s = _unwrap_whole(s, _BOX_COMMANDS)
    s = _LEFT_RIGHT_RE.sub("", s)
    s = _SPACING_RE.sub(" ", _THIN_SPACE_RE.sub("", s))
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    s = _DEGREE_RE.sub("", s)
    s, percent = _strip_percent(s)
    s = _CONNECTIVE_RE.sub(",", s)
    s = _strip_trailing_units(s)
    s = _unwrap_text_answer(s)
    s, variable = _strip_assignment(s)
    s = _collapse_whitespace(s)
    s = s.rstrip(".").strip()
    s = _brace_single_arguments(s)
    s = _canonical_number(s)
    return _Normalized(text=s, variable=variable, percent=percent)


def _clean_text(s: str) -> str:
    """Drop control/zero-width characters, map unicode math to LaTeX, collapse whitespace runs.

    Collapsing first keeps every later ``\\s+`` pattern linear (a long run can no longer be rescanned from
    each of its positions).
    """
    return _WS_RE.sub(" ", _CONTROL_RE.sub("", s).translate(_UNICODE_MAP)).strip()


def _strip_math_delimiters(s: str) -> str:
    s = s.replace("\\$", "").replace("$", "")
    for open_, close in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(open_) and s.endswith(close) and len(s) >= len(open_) + len(close):
            s = s[len(open_) : len(s) - len(close)]
    return s.strip()


def _whole_group_end(s: str, k: int) -> int | None:
    """Index of the ``}`` matching the ``{`` at ``k``, or None; escapes are skipped, one linear pass."""
    depth = 0
    for m in _BRACE_TOKEN_RE.finditer(s, k):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return None


def _unwrap_whole(s: str, commands: tuple[str, ...]) -> str:
    """``\\cmd{X}`` -> ``X`` when the command's group spans the whole string; otherwise unchanged."""
    for cmd in commands:
        if not s.startswith(cmd):
            continue
        k = len(cmd)
        if k < len(s) and s[k].isalpha():
            continue
        while k < len(s) and s[k] in " \t":
            k += 1
        if k < len(s) and s[k] == "{" and _whole_group_end(s, k) == len(s) - 1:
            return s[k + 1 : -1].strip()
    return s


def _strip_percent(s: str) -> tuple[str, bool]:
    stripped = _PERCENT_RE.sub("", s)
    return stripped.strip(), len(stripped) != len(s)


def _strip_trailing_units(s: str) -> str:
    """Drop up to three trailing ``\\text{unit}`` groups (with an optional ``^2``) after a non-empty value."""
    for _ in range(3):
        t = s.rstrip()
        power = re.search(r"\^\s*(?:\d|\{\s*\d\s*\})$", t[-12:]) if "^" in t[-12:] else None
        body_end = len(t) - (len(power.group()) if power else 0)
        if body_end <= 0 or t[body_end - 1] != "}":
            return s
        start = _matching_open(t, body_end - 1)
        if start is None:
            return s
        cmd = next((c for c in _UNIT_COMMANDS if t.endswith(c, 0, start)), None)
        body = t[start + 1 : body_end - 1].strip()
        if cmd is None or not _UNIT_BODY_RE.fullmatch(body):
            return s
        if cmd == "\\mathrm" and len(body) < 2:  # \mathrm{i}, \mathrm{e} are constants, not units
            return s
        head = t[: start - len(cmd)].rstrip()
        if not head or head.endswith(("=", "+", "-", "(", ",", "\\cdot", "\\times")):
            return s
        s = head
    return s


def _matching_open(s: str, close: int) -> int | None:
    """Index of the ``{`` matching the ``}`` at ``close``, scanning backwards (escaped braces ignored)."""
    depth = 0
    i = close
    while i >= 0:
        c = s[i]
        escaped = i > 0 and s[i - 1] == "\\"
        if c == "}" and not escaped:
            depth += 1
        elif c == "{" and not escaped:
            depth -= 1
            if depth == 0:
                return i
        i -= 1
    return None


def _unwrap_text_answer(s: str) -> str:
    """``\\text{Monday}`` -> ``Monday``; ``\\text{5 cm}`` -> ``5``."""
    inner = _unwrap_whole(s, _TEXT_COMMANDS)
    if inner == s:
        return s
    m = _NUMBER_WORDS_RE.fullmatch(inner)
    return m.group(1) if m else inner


def _strip_assignment(s: str) -> tuple[str, str | None]:
    """``x = 3`` -> (``3``, ``x``) for a single answer (no comma, one ``=``); else unchanged."""
    if s.count("=") != 1 or "," in s:
        return s, None
    m = _ASSIGN_RE.match(s.strip())
    if m is None:
        return s, None
    var = m.group(1)
    if var.startswith("\\") and var[1:] not in _GREEK:
        return s, None
    rhs = s.strip()[m.end() :].strip()
    if not rhs:
        return s, None
    return rhs, var.replace("{", "").replace("}", "")


def _collapse_whitespace(s: str) -> str:
    """Remove whitespace, keeping one blank between digits ("2 3" is not "23") and after a control word
    ("\\pi r" is not "\\pir"). Regex-only (C speed); NUL, removed by ``_clean_text``, marks kept blanks."""
    s = _WS_RE.sub(" ", s)
    s = _KEEP_AFTER_COMMAND_RE.sub("\\1\x00", s)
    s = _KEEP_BETWEEN_DIGITS_RE.sub("\x00", s)
    return s.replace(" ", "").replace("\x00", " ")


_KEEP_AFTER_COMMAND_RE = re.compile(r"(\\[A-Za-z]+) (?=[A-Za-z])")
_KEEP_BETWEEN_DIGITS_RE = re.compile(r"(?<=\d) (?=\d)")


def _brace_single_arguments(s: str) -> str:
    if "\\frac" in s:
        s = _FRAC_DIGITS_RE.sub(r"\\frac{\1}{\2}", s)
        s = _FRAC_DIGIT_BRACE_RE.sub(r"\\frac{\1}{", s)
        s = _FRAC_BRACE_DIGIT_RE.sub(r"\\frac{\1}{\2}", s)
    if "\\sqrt" in s:
        s = _SQRT_TOKEN_RE.sub(r"\\sqrt{\1}", s)
    return s


def _canonical_number(s: str) -> str:
    """Canonical decimal text of a plain number; anything else unchanged."""
    if len(s) > _MAX_NUMBER_CHARS:
        return s
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    m = _DECIMAL_RE.fullmatch(s)
    if m is None or not (m.group(2) or m.group(3)):
        return s
    sign, whole, frac = m.group(1), m.group(2).lstrip("0") or "0", (m.group(3) or "").rstrip("0")
    text = f"{whole}.{frac}" if frac else whole
    return text if sign != "-" or text == "0" else "-" + text


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
