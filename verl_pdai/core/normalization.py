"""Answer normalization: canonical answer strings and the acceptable answers of a ground truth.

Pure module: it imports neither verl nor sympy. Like the rest of the answer code it runs in linear time on
untrusted text (no backtracking-prone regex, no recursion on nesting depth), and its public functions never
raise. :mod:`verl_pdai.core.answers` builds its equivalence checks on these helpers (the percent, unit and
assignment decisions they implement are listed there) and re-exports :func:`normalize_answer` and
:func:`ground_truth_candidates`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from numbers import Integral, Rational, Real

from verl_pdai.core.extraction import _BOX_COMMANDS, _BRACE_TOKEN_RE

__all__ = [
    "ground_truth_candidates",
    "normalize_answer",
]

# Numbers with more digits than this are not turned into Fractions (int() has a 4300-digit limit anyway).
_MAX_NUMBER_CHARS = 400
# Ground truths with more candidates than this are truncated (a list ground truth is a handful of strings).
_MAX_CANDIDATES = 32


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
