"""Hints from a reference solution: the first fraction of its steps, guarded against answer leaks.

Pure module (no verl, no sympy). The rollout injects a hint mid-generation at a "\\n\\n" step boundary
inside the model's thinking, so a hint text is ``prefix + steps joined by "\\n\\n" + suffix`` and always
ends with "\\n\\n": the model continues at a step boundary.

Rules (tests pin them):

* **Steps.** The reference is split by :func:`segment_steps` with ``sentences=True`` (a MATH-style
  one-paragraph solution becomes one step per sentence). Its L steps minus the last one (which states the
  answer) are the candidates; every ``\\boxed{...}``/``\\fbox{...}`` is cut out of them (content included:
  a box marks a result), together with ``$``/``\\(``/``\\[`` delimiters left empty around it, and
  ``<think>``/``</think>`` tags are dropped (they would end the thinking part the hint is injected into).
* **Levels.** Level h reveals the first ``ceil(f_h * L)`` reference steps, at least 1 when ``f_h > 0`` and at
  most L - 1. A level whose text exceeds ``max_chars`` reveals fewer steps (cut at a step boundary).
* **Leak guard.** A level whose text leaks the answer (see :class:`AnswerGuard`) or contains a box reveals
  fewer steps until it does not; if even one step leaks, the level is empty and :meth:`HintSet.for_level`
  maps it to the next lower usable level. Lowered levels are named in ``HintSet.reason``.
* **Unusable problems** (no reference, no answer, one step only, nothing left after cleaning, every level
  leaking or too long) give ``usable=False`` with a short reason code; every level then yields the empty hint.

The guard is conservative (a false alarm only costs hint steps); it cannot see an answer restated in a
different form (``\\frac{6}{4}`` for 3/2 is caught as a number, ``\\sqrt{12}`` for ``2\\sqrt{3}`` is not).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from verl_pdai.core.answers import ground_truth_candidates, normalize_answer
from verl_pdai.core.step_checks import quantities_in
from verl_pdai.core.steps import segment_steps

__all__ = [
    "ANSWER_LEAK",
    "EMPTY_STEPS",
    "NO_ANSWER",
    "NO_LEVELS",
    "NO_REFERENCE",
    "SINGLE_STEP",
    "TOO_LONG",
    "AnswerGuard",
    "DEFAULT_FRACTIONS",
    "Hint",
    "HintSet",
    "RECOMMENDED_PREFIX",
    "answer_leaks",
    "build_hints",
    "count_unusable",
    "validate_fractions",
]

DEFAULT_FRACTIONS = (0.0, 0.25, 0.5, 0.75)
# A neutral marker that reads naturally inside a <think> trace and says what follows. It holds no digit, so it
# can never itself leak a numeric answer. The default prefix stays "" (plain steps); recipes opt in.
RECOMMENDED_PREFIX = "Hint (the first steps of a reference solution):\n\n"

# Reason codes of unusable hint sets (count_unusable groups by these).
NO_REFERENCE = "no_reference"
NO_ANSWER = "no_answer"
NO_LEVELS = "no_hint_levels"
SINGLE_STEP = "single_step"
EMPTY_STEPS = "empty_steps"
TOO_LONG = "too_long"
ANSWER_LEAK = "answer_leak"

_CEIL_SLACK = 1e-9  # 0.3 * 10 is 3.0000000000000004 in floats: ceil must still give 3
_MAX_LEAK_CHECKS = 48  # guard evaluations per hint set beyond the binary search: bounds odd references
_MAX_OCCURRENCES = 256  # substring hits examined per needle; more near-misses count as a leak
_MAX_ANSWER_DIGITS = 60  # longer numbers are compared as strings only
_SMALL_INTEGER = 9  # |answer| <= this: the digit is everywhere ("x^2"), only result positions count


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Hint:
    """One hint level. ``text`` is "" for the empty hint (level 0, or a level that had to be dropped)."""

    level: int
    fraction: float
    text: str
    steps_revealed: int  # reference steps shown (steps left empty by box removal included)
    total_steps: int  # L, the reference's step count (0 when there is no usable reference)


@dataclass(frozen=True)
class HintSet:
    """Hints of one problem; ``hints[h]`` is level h and ``hints[0]`` is the empty no-hint."""

    hints: tuple[Hint, ...]
    usable: bool
    reason: str  # unusable: a reason code; usable: "" or which levels were lowered and why
    lowered: tuple[int, ...] = ()  # levels that reveal fewer steps than their fraction asked for

    def for_level(self, level: int) -> Hint:
        """The hint for ``level``, clamped to the highest non-empty level at or below it (0: the empty hint)."""
        h = min(max(int(level), 0), len(self.hints) - 1)
        while h > 0 and not self.hints[h].text:
            h -= 1
        return self.hints[h]

    @property
    def num_levels(self) -> int:
        return len(self.hints)


def count_unusable(hint_sets: Iterable[HintSet]) -> dict[str, int]:
    """Unusable hint sets counted by reason code, plus ``"lowered"``: usable sets with a lowered level."""
    counts: Counter[str] = Counter()
    for hint_set in hint_sets:
        if not hint_set.usable:
            counts[hint_set.reason] += 1
        elif hint_set.lowered:
            counts["lowered"] += 1
    return dict(counts)


def validate_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """The fractions as floats; ValueError unless they start at 0, increase strictly and stay below 1."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Iterable):
        raise ValueError(f"hint fractions must be a sequence of numbers like (0.0, 0.25, 0.5), got {fractions!r}")
    values: list[float] = []
    for i, value in enumerate(fractions):
        if isinstance(value, (bool, str, bytes)):  # float("0.5") would pass: reject strings outright
            raise ValueError(f"hint fractions[{i}] must be a real number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"hint fractions[{i}] must be a real number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"hint fractions[{i}] must be finite, got {value!r}")
        values.append(number)
    if not values or values[0] != 0.0:
        raise ValueError(f"hint fractions must start at 0.0 (level 0 is the no-hint level), got {fractions!r}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"hint fractions must be strictly increasing, got {fractions!r}")
    if values[-1] >= 1.0:
        raise ValueError(
            f"hint fractions must stay below 1.0 (a hint never reveals the whole solution), got {fractions!r}"
        )
    return tuple(values)


# ------------------------------------------------------------------------------------------- leak guard

_NUMERIC = re.compile(r"(-?)(?:(\d+(?:\.\d+)?)|\\frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# What precedes a value that is stated as a result: "= 2", "is $2", "are two", "answer: 2" (sign allowed), with any
# markdown or LaTeX emphasis around it ("is **2**", "**Answer:** 2", "is $\mathbf{2}$", "is `2`"): an LLM's own
# concise solution (a harvested reference) states results that way.
# one character or one LaTeX command per alternative, no two alternatives matching the same text: linear matching
_FORMATTING = r"(?:[ \t*_`${]|\\\(|\\\[|\\(?:mathbf|textbf|boldsymbol|bm|mathrm|text|emph)\{)*"
_RESULT_CUE = re.compile(
    r"(?:=|≈|\\approx|\\boxed\{|\\fbox\{|\b(?:is|are|was|were|be|equals?|gets?|got|gives?|yields?|obtains?"
    r"|answer)\b(?:\*{1,3}|_{1,2})?:?)" + _FORMATTING + r"(?P<minus>-|−)?" + _FORMATTING + r"\Z",
    re.IGNORECASE,
)
# A value in bold is a stated result even without a cue ("**3**", "$\mathbf{3}$").
_BOLD_OPENER = re.compile(r"(?:\*\*|__|\\(?:mathbf|textbf|boldsymbol|bm)\{)[ \t]*(?P<minus>-|−)?[ \t]*\Z")
_CUE_REACH = 32
# After a value, these mean it is only part of an expression ("2x", "2^3", "2 + 1", "2 \cdot 3", "2(x+1)"); an
# emphasis closer ("**", "__") or a parenthetical after a space ("3 (apples)") does not.
_CONTINUES = re.compile(
    r"(?:\(|_(?!_)|[0-9])|[ \t]*(?:[-+/^!×·−]|\*(?!\*)|\\(?:cdot|times|div|pm|mp|frac|sqrt)(?![A-Za-z]))"
)


def _numeric_value(normalized: str) -> Fraction | None:
    """Value of a plain rational answer ("24", "-2.5", "\\frac{3}{4}", "3/4"), else None."""
    match = _NUMERIC.fullmatch(normalized)
    if match is None or len(normalized) > _MAX_ANSWER_DIGITS:
        return None
    sign, decimal, fnum, fden, snum, sden = match.groups()
    if decimal is not None:
        value = Fraction(decimal)
    else:
        num, den = int(fnum or snum), int(fden or sden)
        if den == 0:
            return None
        value = Fraction(num, den)
    return -value if sign else value


def _contains_token(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` not as part of a longer number or word (24 is not in 240 or 2.4)."""
    start = 0
    for _ in range(_MAX_OCCURRENCES):
        i = haystack.find(needle, start)
        if i < 0:
            return False
        if _edges_ok(haystack, i, i + len(needle), needle):
            return True
        start = i + 1
    return True  # pathological number of near-misses: call it a leak


def _edges_ok(text: str, i: int, j: int, needle: str) -> bool:
    before = text[i - 1] if i > 0 else ""
    after = text[j] if j < len(text) else ""
    if needle[0].isdigit() and (before.isdigit() or before == "."):
        return False
    if needle[0].isalpha() and (before.isalpha() or before == "\\"):
        return False
    if needle[-1].isdigit() and (after.isdigit() or (after == "." and text[j + 1 : j + 2].isdigit())):
        return False
    return not (needle[-1].isalpha() and after.isalpha())


def _in_result_position(text: str, needle: str, *, word: bool, negative: bool = False) -> bool:
    """``needle`` appears as a stated result: after a cue ("=", "is", "are"), with a minus sign exactly when
    ``negative``, and not continued by an operator."""
    pattern = (r"\b" if word else r"(?<![0-9.])") + re.escape(needle) + (r"\b" if word else r"(?![0-9]|\.[0-9])")
    flags = re.IGNORECASE if word else 0
    for count, match in enumerate(re.finditer(pattern, text, flags)):
        if count >= _MAX_OCCURRENCES:
            return True
        window = text[max(0, match.start() - _CUE_REACH) : match.start()]
        cue = _RESULT_CUE.search(window) or _BOLD_OPENER.search(window)
        if cue is None or (cue.group("minus") is not None) != negative:
            continue
        after = match.end()
        if _CONTINUES.match(text, after) or (after < len(text) and text[after].isalpha()):
            continue
        return True
    return False


class AnswerGuard:
    """Decides whether a text reveals a ground-truth answer; built once per problem.

    For each candidate answer (``ground_truth_candidates``), normalized with ``normalize_answer``:

    * **Numbers** (a plain rational after normalization). Values |v| >= 10 and non-integers leak, whatever
      their sign (a magnitude gives the answer away), when the value is among the text's quantities
      (``quantities_in``: numerals, fractions, numeric sides of equalities, so 0.5, 1/2 and ``\\frac{1}{2}``
      are one value, and "6 \\cdot 4 = " holds 24) or the normalized number occurs as a whole token (24 leaks
      in "24" and "\\frac{24}{5}", not in 240, 124, 2.4 or 24.5).
      Single digits occur in almost any solution ("x^2", "2x", "2x + 9 = 3" for the answer -3); they leak only
      in a result position with the same sign: after "=", "is", "are", "equals", "answer", ... and not
      continued by an operator ("x = 2." leaks, "x^2 + 2x" does not); the number word ("two") counts too.
    * **Other answers** of 2+ characters leak when they occur (case-folded, as a whole token at letter/digit
      edges) in the raw or the normalized text. One-character answers ("A", "x") are not searched: such a
      symbol occurs in any math text, so containment says nothing; only dropping the last step protects them.
    """

    def __init__(self, answer: object) -> None:
        self.needles: list[str] = []  # case-folded strings searched as whole tokens
        self.values: set[str] = set()  # canonical quantities (str(Fraction)) searched via quantities_in
        self.small: list[tuple[str, str, bool]] = []  # (digit, number word, negative): result positions only
        self.candidates = ground_truth_candidates(answer)
        for candidate in self.candidates:
            self._add(candidate)
        # False when every candidate is a single symbol: hints are then built unguarded (see above)
        self.guardable = bool(self.needles or self.values or self.small)

    def _add(self, candidate: str) -> None:
        normalized = normalize_answer(candidate).strip()
        if not normalized:
            return
        value = _numeric_value(normalized)
        if value is None:
            if len(normalized) >= 2:
                # normalization drops spaces ("north east" -> "northeast"): search the spaced form too
                spaced = " ".join(candidate.replace("$", "").split()).casefold()
                self.needles.extend(dict.fromkeys((normalized.casefold(), spaced)))
            return
        magnitude = abs(value)
        if magnitude.denominator == 1 and magnitude <= _SMALL_INTEGER:
            self.small.append((str(magnitude), _NUMBER_WORDS[int(magnitude)], value < 0))
            return
        self.values.update({str(magnitude), str(-magnitude)})
        self.needles.append(normalized.lstrip("-").casefold())

    def leaks(self, text: str) -> bool:
        """True when ``text`` reveals any candidate answer (see the class docstring)."""
        if not text:
            return False
        raw = text.casefold()
        normalized = normalize_answer(text).casefold() if self.needles else ""
        for needle in self.needles:
            if _contains_token(raw, needle) or _contains_token(normalized, needle):
                return True
        if self.values and self.values & quantities_in(text):
            return True
        return any(
            _in_result_position(text, digit, word=False, negative=negative)
            or (not negative and _in_result_position(text, word, word=True))
            for digit, word, negative in self.small
        )


def answer_leaks(text: str, answer: object) -> bool:
    """Convenience: ``AnswerGuard(answer).leaks(text)``."""
    return AnswerGuard(answer).leaks(text)


# ------------------------------------------------------------------------------------------- cleaning

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_THINK_TAG = re.compile(r"</?think>", re.IGNORECASE)
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
_BOX_OPENERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def _box_end(text: str, j: int) -> int:
    """End of the argument of a box command whose name ends at ``j``: a balanced ``{...}`` (unclosed: the
    rest of the text), or a braceless token (``\\boxed 5``, the MATH convention)."""
    k = j
    while k < len(text) and text[k] in " \t":
        k += 1
    if k < len(text) and text[k] == "{":
        depth = 0
        for match in _BRACE_TOKEN.finditer(text, k):
            if match.group() == "{":
                depth += 1
            elif match.group() == "}":
                depth -= 1
                if depth == 0:
                    return match.end()
        return len(text)
    while k < len(text) and not text[k].isspace() and text[k] not in "$.,;":
        k += 1
    return k


def _remove_boxes(text: str) -> str:
    """Cut every box out of ``text``, with math delimiters that would be left around nothing, and without
    leaving a doubled space or a space before punctuation ("we get $\\boxed{5}$." -> "we get.")."""
    out: list[str] = []
    pos = 0
    while (match := _BOX.search(text, pos)) is not None:
        start, end = match.start(), _box_end(text, match.end())
        head = text[pos:start]
        trimmed = head.rstrip(" \t")
        after = end
        while after < len(text) and text[after] in " \t":
            after += 1
        for opener, closer in _BOX_OPENERS:
            if trimmed.endswith(opener) and text.startswith(closer, after):
                head, end = trimmed[: -len(opener)], after + len(closer)
                break
        if end >= len(text) or text[end] in " \t.,;:":
            head = head.rstrip(" \t")
        out.append(head)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _clean_step(text: str) -> str:
    cleaned = _THINK_TAG.sub("", text)
    for _ in range(4):  # removing a box can assemble another ("\bo\boxed{}xed{5}"); the final text is checked too
        if _BOX.search(cleaned) is None:
            break
        cleaned = _remove_boxes(cleaned)
    return cleaned.strip()


# ------------------------------------------------------------------------------------------- building


def build_hints(
    reference_solution: str | None,
    answer: object,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    prefix: str = "",
    suffix: str = "\n\n",
    max_chars: int = 4000,
) -> HintSet:
    """Hints of every level for one problem (see the module docstring for the rules). Raises only on bad
    settings (``fractions``, ``prefix``, ``suffix``, ``max_chars``), never on the reference or the answer."""
    levels = validate_fractions(fractions)
    if not isinstance(prefix, str) or not isinstance(suffix, str):
        raise ValueError("hint prefix and suffix must be strings")
    if not suffix.endswith("\n\n"):
        raise ValueError(
            f"hint suffix must end with a blank line ('\\n\\n') so the model resumes at a step boundary, got {suffix!r}"
        )
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")

    if not isinstance(reference_solution, str) or not reference_solution.strip():
        return _unusable(levels, NO_REFERENCE, 0)
    steps = segment_steps(reference_solution, sentences=True)
    total = len(steps)
    guard = AnswerGuard(answer)
    if not guard.candidates:
        return _unusable(levels, NO_ANSWER, total)
    if len(levels) == 1:
        return _unusable(levels, NO_LEVELS, total)
    if total < 2:
        return _unusable(levels, SINGLE_STEP, total)

    planner = _Planner([_clean_step(step.text) for step in steps[:-1]], guard, prefix, suffix, max_chars)
    if planner.content_at(total - 1) == 0:
        return _unusable(levels, EMPTY_STEPS, total)
    hints = [Hint(level=0, fraction=0.0, text="", steps_revealed=0, total_steps=total)]
    notes: list[str] = []
    lowered: list[int] = []
    for level, fraction in enumerate(levels[1:], start=1):
        wanted = min(max(math.ceil(fraction * total - _CEIL_SLACK), 1), total - 1)
        revealed = planner.largest_safe(wanted)
        if revealed < wanted:
            lowered.append(level)
            if planner.content_at(wanted) == 0:
                why = "only boxes"
            elif revealed == planner.fit_limit(wanted):
                why = "max_chars"
            else:
                why = "answer leak"
            notes.append(f"level {level}: {wanted} -> {revealed} steps ({why})")
        text = planner.text(revealed) if revealed else ""
        hints.append(Hint(level=level, fraction=fraction, text=text, steps_revealed=revealed, total_steps=total))
    if not any(hint.text for hint in hints):
        reason = TOO_LONG if planner.fit_limit(total - 1) == 0 else ANSWER_LEAK
        return _unusable(levels, reason, total)
    return HintSet(hints=tuple(hints), usable=True, reason="; ".join(notes), lowered=tuple(lowered))


def _unusable(levels: tuple[float, ...], reason: str, total: int) -> HintSet:
    hints = tuple(Hint(level=h, fraction=f, text="", steps_revealed=0, total_steps=total) for h, f in enumerate(levels))
    return HintSet(hints=hints, usable=False, reason=reason)


class _Planner:
    """Finds, for a wanted step count, the largest safe one below it: fits ``max_chars``, shows some
    content, has no box and does not leak. Leaks grow with the revealed text, so a binary search finds
    the boundary; each answer is still verified, walking down (within a budget) if the search was fooled."""

    def __init__(self, steps: list[str], guard: AnswerGuard, prefix: str, suffix: str, max_chars: int) -> None:
        self.steps = steps
        self.guard = guard
        self.prefix = prefix
        self.suffix = suffix
        self._content = [0]  # _content[n]: non-empty steps among the first n
        self._length = [0]  # _length[n]: len of the joined non-empty steps among the first n
        for step in steps:
            added = len(step) + (2 if self._content[-1] and step else 0)
            self._content.append(self._content[-1] + (1 if step else 0))
            self._length.append(self._length[-1] + (added if step else 0))
        self._max_body = max_chars - len(prefix) - len(suffix)
        self._safe: dict[int, bool] = {}
        self._budget = _MAX_LEAK_CHECKS

    def content_at(self, n: int) -> int:
        return self._content[n]

    def fit_limit(self, wanted: int) -> int:
        """Largest n <= wanted whose text fits max_chars (0 when not even the first step fits)."""
        n = wanted
        while n > 0 and self._length[n] > self._max_body:
            n -= 1
        return n

    def text(self, n: int) -> str:
        return self.prefix + "\n\n".join(step for step in self.steps[:n] if step) + self.suffix

    def _is_safe(self, n: int) -> bool:
        if n not in self._safe:
            text = self.text(n)
            self._safe[n] = "\\boxed" not in text and "\\fbox" not in text and not self.guard.leaks(text)
        return self._safe[n]

    def largest_safe(self, wanted: int) -> int:
        top = self.fit_limit(wanted)
        lo, hi = 0, top  # invariant: the boundary lies in [lo, hi]; n <= lo with content are presumed safe
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._content[mid] == 0 or self._is_safe(mid):
                lo = mid
            else:
                hi = mid - 1
        for n in range(lo, 0, -1):
            if self._content[n] == 0:  # nothing shown here or below
                return 0
            if n not in self._safe:
                if self._budget <= 0:
                    return 0
                self._budget -= 1
            if self._is_safe(n):
                return n
        return 0
