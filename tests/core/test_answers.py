"""Tests for verl_pdai.core.answers: extraction, normalization, equivalence, robustness on hostile text."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bounds import HANG_GUARD_S
from tests.core.answer_cases import EQUIVALENCE_CASES
from verl_pdai.core.answers import (
    ThinkingSplit,
    answers_equivalent,
    extract_final_answer,
    ground_truth_candidates,
    normalize_answer,
    quick_equivalent,
    split_thinking,
)

FAMILIES = {
    "fraction",
    "decimal",
    "percent",
    "interval",
    "set_tuple",
    "matrix",
    "units_text",
    "degrees",
    "sqrt",
    "pi",
    "scientific",
    "multiple",
    "variable",
    "expression",
    "negative",
    "aime_padding",
    "gt_float_list",
}


@pytest.fixture(autouse=True)
def _quiet_math_verify():
    # math-verify warns once that timeouts are off in threads; keep test output readable.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def _case_id(case: tuple[str, str, object, bool]) -> str:
    family, pred, gt, expected = case
    return f"{family}: {pred} {'==' if expected else '!='} {gt!r}"[:80]


# --------------------------------------------------------------------------------------------------------------
# The equivalence table
# --------------------------------------------------------------------------------------------------------------


def test_case_table_is_big_and_balanced():
    assert len(EQUIVALENCE_CASES) >= 90
    assert sum(1 for case in EQUIVALENCE_CASES if not case[3]) >= 30
    counts = Counter(case[0] for case in EQUIVALENCE_CASES)
    assert set(counts) == FAMILIES
    assert min(counts.values()) >= 3
    for family in FAMILIES:  # each family has both outcomes
        assert {case[3] for case in EQUIVALENCE_CASES if case[0] == family} == {True, False}, family


@pytest.mark.parametrize("case", EQUIVALENCE_CASES, ids=[_case_id(c) for c in EQUIVALENCE_CASES])
def test_answers_equivalent_table(case):
    _, pred, gt, expected = case
    assert answers_equivalent(pred, gt) is expected


@pytest.mark.parametrize("case", EQUIVALENCE_CASES, ids=[_case_id(c) for c in EQUIVALENCE_CASES])
def test_quick_path_never_contradicts_math_verify(case):
    """A quick False must be a pair raw (unassisted) math-verify also rejects; a quick True an expected match."""
    from math_verify import parse, verify

    _, pred, gt, expected = case
    verdicts = []
    for cand in ground_truth_candidates(gt):
        verdict = quick_equivalent(pred, cand)
        verdicts.append(verdict)
        if verdict is False:
            assert not verify(parse(f"${cand}$"), parse(f"${pred}$")), cand
    if True in verdicts:
        assert expected
    if verdicts and all(v is False for v in verdicts):
        assert not expected


def test_quick_path_decides_plain_numbers():
    assert quick_equivalent("025", "25") is True
    assert quick_equivalent(r"\frac{6}{8}", "3/4") is True
    assert quick_equivalent("0.5", r"\frac12") is True
    assert quick_equivalent("1.5e3", "1500") is True
    assert quick_equivalent("24", "25") is False
    assert quick_equivalent(r"\frac{1}{3}", r"\frac{2}{3}") is False
    assert quick_equivalent("3.5", "7") is False
    assert quick_equivalent("0.333333", r"\frac13") is None  # math-verify rounds floats to 6 places
    assert quick_equivalent(r"x^2+1", "(x+1)^2") is None
    assert quick_equivalent("", "5") is None


def test_answers_equivalent_rejects_empty_and_odd_inputs():
    assert answers_equivalent("", "5") is False
    assert answers_equivalent("5", None) is False
    assert answers_equivalent("5", "") is False
    assert answers_equivalent("5", []) is False
    assert answers_equivalent(None, "5") is False  # type: ignore[arg-type]
    assert answers_equivalent("5", {"answer": "5"}) is False
    assert answers_equivalent("5", 5) is True
    assert answers_equivalent("5", True) is False


def test_answers_equivalent_in_a_worker_thread():
    """Signal-based timeouts are unavailable off the main thread: it must still work (timeouts off)."""
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.extend(
            [answers_equivalent("x^2+2x+1", "(x+1)^2"), answers_equivalent(r"\frac{\sqrt2}{2}", r"\sqrt{3}")]
        )
    )
    thread.start()
    thread.join(timeout=60)
    assert results == [True, False]


def test_table_in_a_worker_thread():
    """The whole table gives the same verdicts off the main thread (math-verify timeouts disabled there)."""
    results: list[bool] = []
    thread = threading.Thread(
        target=lambda: results.extend(answers_equivalent(pred, gt) for _, pred, gt, _ in EQUIVALENCE_CASES)
    )
    thread.start()
    thread.join(timeout=120)
    assert results == [expected for *_, expected in EQUIVALENCE_CASES]


def test_module_import_is_light():
    code = (
        "import sys, verl_pdai.core.answers as a; "
        "bad = [m for m in ('sympy', 'math_verify', 'verl', 'torch') if m in sys.modules]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(r"so $\boxed{\frac{1}{\sqrt{2}}}$.", r"\frac{1}{\sqrt{2}}", id="nested-braces"),
        pytest.param(r"first \boxed{1}, then \boxed{2}", "2", id="last-box-wins"),
        pytest.param(r"\boxed{1} and finally \fbox{3}", "3", id="fbox"),
        pytest.param(r"The answer is \boxed 5.", "5", id="braceless-box"),
        pytest.param(r"$\boxed 12$", "12", id="braceless-box-dollar"),
        pytest.param(r"\boxed{ \{1,2\} }", r"\{1,2\}", id="escaped-braces-inside"),
        pytest.param(r"\boxed{\begin{pmatrix}1\\2\end{pmatrix}}", r"\begin{pmatrix}1\\2\end{pmatrix}", id="matrix"),
        pytest.param(r"\boxed{7} but wait \boxed{8", "7", id="unclosed-last-falls-back-to-complete"),
        pytest.param(r"\boxed{8", None, id="only-unclosed"),
        pytest.param(r"\boxed{7}. Remember: answers go in \boxed{}", "7", id="empty-box-skipped"),
        pytest.param("Answer: 7\nRemember to use \\boxed{ }.", "7", id="only-empty-box-then-answer-line"),
        pytest.param(r"\fboxsep=3pt Answer: 4", "4", id="longer-command-not-a-box"),
        pytest.param("Some work.\nAnswer: $42$", "42", id="answer-line"),
        pytest.param("Final answer: 3/4.", "3/4", id="final-answer-line"),
        pytest.param("**Final Answer**: $x=2$", "x=2", id="markdown-final-answer"),
        pytest.param("Thus the answer is $\\frac{1}{2}$.", r"\frac{1}{2}", id="the-answer-is"),
        pytest.param("THE ANSWER IS 9", "9", id="case-insensitive"),
        pytest.param("Answer:\n\n$17$\n", "17", id="answer-on-next-line"),
        pytest.param("\\boxed\n{4}", "4", id="box-brace-on-next-line"),
        pytest.param("Answer: 1\nmore work\nFinal answer: 2", "2", id="last-answer-line"),
        pytest.param("I think about the answer and nothing else", None, id="no-answer"),
        pytest.param("Answer:\nAnswer:\n", None, id="only-empty-answer-lines"),
        pytest.param("", None, id="empty"),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_extract_scans_only_the_tail():
    text = r"\boxed{1}" + "x" * 100
    assert extract_final_answer(text, max_chars=50) is None
    assert extract_final_answer(text, max_chars=200) == "1"
    assert extract_final_answer(text, max_chars=0) is None


# --------------------------------------------------------------------------------------------------------------
# Thinking split and ground truths
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<think>plan</think>\\boxed{1}", ThinkingSplit("plan", "\\boxed{1}", True, True), id="both"),
        pytest.param("plan</think> ans", ThinkingSplit("plan", " ans", False, True), id="prompt-opened-think"),
        pytest.param("<think>still thinking", ThinkingSplit("", "<think>still thinking", True, False), id="truncated"),
        pytest.param("no tags", ThinkingSplit("", "no tags", False, False), id="no-tags"),
        pytest.param("a</think>b</think>c", ThinkingSplit("a</think>b", "c", False, True), id="last-close-wins"),
        pytest.param("  <think>x</think>", ThinkingSplit("x", "", True, True), id="leading-space"),
    ],
)
def test_split_thinking(text, expected):
    assert split_thinking(text) == expected


@pytest.mark.parametrize(
    ("gt", "expected"),
    [
        pytest.param(142.0, ["142"], id="float-integer"),
        pytest.param(0.5, ["0.5"], id="float"),
        pytest.param(1e-05, ["0.00001"], id="float-tiny"),
        pytest.param(-3, ["-3"], id="int"),
        pytest.param("  $\\frac{1}{2}$\n", [r"\frac{1}{2}"], id="dollars-whitespace"),
        pytest.param(r"\boxed{7}", ["7"], id="boxed"),
        pytest.param(["2.5\n", r"\frac{5}{2}", "2.5"], ["2.5", r"\frac{5}{2}"], id="minerva-list-dedup"),
        pytest.param(["$69$,$84$"], ["69,84"], id="olympiadbench"),
        pytest.param(("1", 2.0), ["1", "2"], id="tuple"),
        pytest.param([["3"], ["4"]], ["3", "4"], id="nested-list"),
        pytest.param(None, [], id="none"),
        pytest.param("", [], id="empty"),
        pytest.param(["", "  "], [], id="empty-list"),
        pytest.param(float("nan"), [], id="nan"),
        pytest.param(True, [], id="bool"),
        pytest.param(Fraction(1, 3), [r"\frac{1}{3}"], id="fraction-exact"),
        pytest.param(Decimal("2.50"), ["2.50"], id="decimal"),
    ],
)
def test_ground_truth_candidates(gt, expected):
    assert ground_truth_candidates(gt) == expected


def test_ground_truth_candidates_numpy():
    np = pytest.importorskip("numpy")
    assert ground_truth_candidates(np.array(["1", "2"])) == ["1", "2"]
    assert ground_truth_candidates(np.float64(142.0)) == ["142"]
    assert ground_truth_candidates(np.int64(7)) == ["7"]


# --------------------------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (r"$\dfrac{1}{2}$", r"\frac{1}{2}"),
        (r"\tfrac12", r"\frac{1}{2}"),
        (r"\left( 1, 2 \right)", "(1,2)"),
        (r"3\!\,000", "3000"),
        (r"\boxed{5}.", "5"),
        (r"\text{Monday}", "Monday"),
        (r"5\text{ cm}", "5"),
        (r"10\mbox{ km/h}", "10"),
        (r"\text{5 apples}", "5"),
        (r"30^\circ", "30"),
        (r"30^{\circ}", "30"),
        ("30°", "30"),
        (r"50\%", "50"),
        (r"\$18.90", "18.9"),
        ("x = 3", "3"),
        ("x=2, y=3", "x=2,y=3"),
        ("025", "25"),
        ("1,000,000", "1000000"),
        ("-0.50", "-0.5"),
        ("2 3", "2 3"),
        (r"\pi r^2", r"\pi r^2"),
        (r"\sqrt2", r"\sqrt{2}"),
        (r"3 + 2\mathrm{i}", r"3+2\mathrm{i}"),
        (r"f \circ g", r"f\circ g"),
        (r"3\mathbf{v}", r"3\mathbf{v}"),
        (r"5\mathrm{km}", "5"),
        (r"\textbf{12}", "12"),
    ],
)
def test_normalize_answer(answer, expected):
    assert normalize_answer(answer) == expected


def test_normalize_is_idempotent_on_table():
    for _, pred, gt, _ in EQUIVALENCE_CASES:
        for text in [pred, *ground_truth_candidates(gt)]:
            once = normalize_answer(text)
            assert normalize_answer(once) == once, text


# --------------------------------------------------------------------------------------------------------------
# Hostile inputs
# --------------------------------------------------------------------------------------------------------------

_NESTED = "{" * 10_000 + "1" + "}" * 10_000
_HOSTILE = {
    "1MB-text": "lorem ipsum dolor " * 60_000 + r"\boxed{42}",
    "1MB-no-spaces": "a" * 1_000_000,
    "1MB-whitespace": " " * 1_000_000 + "x",
    "1MB-digits": "9" * 1_000_000,
    "nested-braces": r"\boxed" + _NESTED,
    "nested-parens": "(" * 10_000 + "1" + ")" * 10_000,
    "unclosed-boxes": r"\boxed{" * 100_000,
    "unclosed-fbox-mixed": (r"\fbox{\boxed{" * 30_000) + "}",
    "nul-bytes": "\x00" * 1000 + r"\boxed{5\x00}" + "\x00" * 1000,
    "odd-unicode": "\u202e\ufeff\u200b\U0001f600\u0301𝔸𝕓 İstanbul ß " * 5_000 + "Answer: ２",
    "answer-spam": "Answer: " * 100_000,
    "answer-lines-spam": "Answer:\n" * 200_000,
    "box-spam": r"\boxed{} " * 100_000,
    "backslashes": "\\" * 1_000_001,
    "spaces-then-answer": "the " + " " * 500_000 + "answer",
    "dollars": "$" * 1_000_000,
}


_HOSTILE_CALLS = {
    "extract-whole": lambda t: extract_final_answer(t, max_chars=len(t)),
    "extract-tail": extract_final_answer,
    "split": split_thinking,
    "normalize": normalize_answer,
    "quick-pred": lambda t: quick_equivalent(t, "1"),
    "quick-gt": lambda t: quick_equivalent("1", t),
    "equivalent-pred": lambda t: answers_equivalent(t, "1"),
    "equivalent-gt": lambda t: answers_equivalent("1", t),
    "candidates": lambda t: ground_truth_candidates([t, t]),
}


@pytest.mark.parametrize("name", sorted(_HOSTILE))
def test_hostile_inputs_are_fast_and_safe(name):
    text = _HOSTILE[name]
    for call_name, call in _HOSTILE_CALLS.items():
        start = time.perf_counter()
        call(text)  # must not raise
        # ~0.3 s at most on an idle machine: a generous bound that still catches quadratic behaviour on 1 MB
        assert time.perf_counter() - start < HANG_GUARD_S, call_name


def test_extraction_of_1mb_is_fast():
    text = "step " * 200_000 + r"\boxed{\frac{1}{2}}"
    start = time.perf_counter()
    assert extract_final_answer(text, max_chars=len(text)) == r"\frac{1}{2}"
    assert time.perf_counter() - start < HANG_GUARD_S


def test_nested_braces_box_is_extracted():
    assert extract_final_answer(r"\boxed" + _NESTED, max_chars=30_000) == _NESTED[1:-1]


@pytest.mark.parametrize(
    "bomb",
    [
        r"9^{9^{9^{9}}}",
        r"10^{10^{10}}",
        "9^9^9^9",
        r"(10^{100})!",
        "10000000!",
        r"2^{100000000}",
        r"\frac{1}{9^{9^{9}}}",
    ],
)
@pytest.mark.parametrize("in_thread", [False, True], ids=["main", "thread"])
def test_power_towers_do_not_hang(bomb, in_thread):
    results: list[bool] = []
    start = time.perf_counter()
    if in_thread:  # no signal-based timeout there: the cost guard alone must keep sympy away
        thread = threading.Thread(target=lambda: results.append(answers_equivalent(bomb, "1")), daemon=True)
        thread.start()
        thread.join(timeout=10)
    else:
        results.append(answers_equivalent(bomb, "1"))
    assert results == [False]
    assert time.perf_counter() - start < HANG_GUARD_S


def test_identical_bombs_still_match_by_string():
    assert answers_equivalent(r"2^{2^{2023}}", r"2^{2^{2023}}") is True


# --------------------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------------------

_LATEX_ALPHABET = st.sampled_from(
    list("0123456789{}()[]^_\\$%.,=+-*/ \n\t\x00abcxyz")
    + [r"\boxed{", r"\fbox", r"\frac", r"\text{", r"\left(", r"\right)", "</think>", "<think>", "Answer:", "°"]
)
_LATEX_TEXT = st.lists(_LATEX_ALPHABET, max_size=60).map("".join)
_ANY_TEXT = st.one_of(st.text(max_size=200), _LATEX_TEXT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_ANY_TEXT, other=_ANY_TEXT)
def test_string_functions_never_raise(text, other):
    answer = extract_final_answer(text)
    assert answer is None or isinstance(answer, str)
    normalized = normalize_answer(text)
    assert isinstance(normalized, str)
    assert normalize_answer(text) == normalized  # deterministic
    assert quick_equivalent(text, other) in (True, False, None)
    assert quick_equivalent(text, text) in (True, None)
    split = split_thinking(text)
    assert split.closed == ("</think>" in text)
    assert all(isinstance(c, str) and c for c in ground_truth_candidates(text))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_LATEX_TEXT)
def test_answers_equivalent_never_raises(text):
    assert answers_equivalent(text, "1") in (True, False)


@settings(max_examples=200, deadline=None)
@given(value=st.fractions(min_value=-1000, max_value=1000, max_denominator=1000))
def test_fraction_forms_agree(value):
    frac = rf"\frac{{{value.numerator}}}{{{value.denominator}}}"
    slash = f"{value.numerator}/{value.denominator}"
    assert quick_equivalent(frac, slash) is True
    assert quick_equivalent(frac, str(value.numerator + 1) + "/" + str(value.denominator)) is False


# --------------------------------------------------------------------------------------------------------------
# Sets, tuples and bare lists (docs/reward.md "Equivalence"): the ground truth's form decides
# --------------------------------------------------------------------------------------------------------------

SET_TUPLE_RULES = [
    # a set is unordered and ignores repeats
    (r"\{3,1,2\}", r"\{1,2,3\}", True),
    (r"\left\{ 2, 1, 2 \right\}", r"\{1,2\}", True),
    (r"\{1,2\}", r"\{1,2,3\}", False),
    # a tuple (or an interval) is ordered
    ("(1,2,3)", "(1,2,3)", True),
    ("(3,2,1)", "(1,2,3)", False),
    ("[1,2]", "(1,2)", False),
    # a set and a tuple are different objects, whichever is the ground truth
    (r"\{1,2,3\}", "(1,2,3)", False),
    ("(1,2,3)", r"\{1,2,3\}", False),
    (r"\{1,2\}", "[1,2]", False),
    # a bare list in the ground truth (MATH's "all solutions") is unordered, in any brackets
    ("3, 1, 2", "1,2,3", True),
    (r"\{3,1,2\}", "1,2,3", True),
    ("(3,2,1)", "1,2,3", True),
    ("1, 2", "1,2,3", False),
    # a bare list answer against a set is a set; against a tuple, a tuple written without brackets
    ("3, 1, 2", r"\{1,2,3\}", True),
    ("1, 2, 3", "(1,2,3)", True),
    ("3, 2, 1", "(1,2,3)", False),
]


@pytest.mark.parametrize(
    ("pred", "gt", "expected"), SET_TUPLE_RULES, ids=[f"{p} vs {g}" for p, g, _ in SET_TUPLE_RULES]
)
def test_sets_are_unordered_tuples_ordered_and_never_equal_to_each_other(pred, gt, expected):
    assert answers_equivalent(pred, gt) is expected
