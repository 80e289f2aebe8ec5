"""Tests for verl_pdai.core.hints: hint levels from reference solutions, the answer-leak guard, validation."""

from __future__ import annotations

import ast
import dataclasses
import math
import re
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bounds import HANG_GUARD_S
from verl_pdai.core import hints as hints_module
from verl_pdai.core.answers import ground_truth_candidates, normalize_answer
from verl_pdai.core.hints import (
    DEFAULT_FRACTIONS,
    RECOMMENDED_PREFIX,
    AnswerGuard,
    Hint,
    HintSet,
    answer_leaks,
    build_hints,
    count_unusable,
    validate_fractions,
)
from verl_pdai.core.steps import segment_steps

# ------------------------------------------------------------------------------------------ the corpus


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    reference: str | None
    answer: object
    usable: bool = True
    reason: str = ""  # unusable: the reason code; usable: "" (nothing lowered) or a substring of the reason
    revealed: tuple[int, ...] | None = None  # steps_revealed of levels 1..3, when pinned


REFERENCES = [
    Case(
        "math paragraph",
        "We have $x + y = 10$ and $x - y = 4$. Adding the equations gives $2x = 14$, so $x = 7$. "
        "Then $y = 10 - 7 = 3$. Thus $xy = \\boxed{21}$.",
        "21",
        revealed=(1, 2, 3),
    ),
    Case(
        "math paragraph, answer reached early",
        "There are $4! = 24$ orderings of the four books. Two of them must be adjacent, so we glue them "
        "together. That leaves $3! = 6$ arrangements of the blocks. The glued pair can be ordered in $2$ ways. "
        "Hence there are $6 \\cdot 2 = 12$ arrangements. So the answer is $\\boxed{12}$.",
        "12",
        reason="answer leak",
    ),
    Case(
        "answer in an intermediate step: lowered",
        "Let $n$ be the number of students. We know $3n + 5 = 77$. Subtracting gives $3n = 72$. "
        "Dividing, $n = 24$ students. Each bus seats 30, so one bus suffices. The answer is $\\boxed{24}$.",
        "24",
        reason="answer leak",
        revealed=(2, 3, 3),
    ),
    Case(
        "answer in the first step: unusable",
        "Clearly the answer is 24 by symmetry. We verify it by direct counting. Therefore $\\boxed{24}$.",
        24,
        usable=False,
        reason="answer_leak",
    ),
    Case(
        "numbered steps",
        "1. Write $f(x) = x^2 - 6x + 13$.\n2. Complete the square: $f(x) = (x-3)^2 + 4$.\n"
        "3. The square is at least $0$, with equality at $x = 3$.\n4. So the minimum is $\\boxed{4}$.",
        "4",
        revealed=(1, 2, 3),  # "(x-3)^2 + 4" is not a result position: the model must still read it off
    ),
    Case(
        "bold step headings",
        "**Step 1:** Factor $x^2 - 5x + 6 = (x-2)(x-3)$.\n**Step 2:** The roots are $2$ and $3$.\n"
        "**Step 3:** Their product is $6$.\n**Step 4:** Final answer: $\\boxed{6}$.",
        "6",
        reason="answer leak",
    ),
    Case(
        "display math heavy",
        "We expand:\n\\[\n(a+b)^2 = a^2 + 2ab + b^2.\n\\]\nWith $a + b = 9$ and $ab = 14$:\n"
        "\\[\na^2 + b^2 = 81 - 28.\n\\]\nTherefore\n\\[\na^2 + b^2 = \\boxed{53}.\n\\]",
        "53",
        reason="answer leak",  # "81 - 28" is a numeric side worth 53
        revealed=(2, 3, 3),
    ),
    Case(
        "display block with blank lines",
        "Start from the system\n$$\nx + 2y = 11\n\n3x - y = 12\n$$\nMultiply the second by 2 and add.\n"
        "We find $7x = 35$, so $x = 5$ and $y = 3$.\nHence $x^2 + y^2 = \\boxed{34}$.",
        "34",
    ),
    Case(
        "aligned environment",
        "\\begin{align*}\nS &= 1 + 2 + \\cdots + n \\\\\n&= \\frac{n(n+1)}{2}\n\\end{align*}\n"
        "Here $n = 20$, so we multiply $20$ by $21$ and halve.\nThus $S = \\boxed{210}$.",
        "210",
        revealed=(1, 2, 2),
    ),
    Case(
        "arithmetic that evaluates to the answer: unusable",
        "\\begin{align*}\nS &= 1 + 2 + \\cdots + 20 \\\\\n&= \\frac{20 \\cdot 21}{2}\n\\end{align*}\n"
        "Evaluating the product first keeps the arithmetic small.\nThus $S = \\boxed{210}$.",
        "210",
        usable=False,
        reason="answer_leak",
    ),
    Case(
        "fraction answer, decimal form leaks",
        "The probability of heads is $\\frac{1}{2}$ per toss. Three tosses are independent. "
        "The chance of no heads is $0.125$, so at least one head has chance $0.875$. "
        "As a fraction that is $\\boxed{\\frac{7}{8}}$.",
        "\\frac{7}{8}",
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "fraction answer written dfrac",
        "The slope between $(1, 2)$ and $(5, 5)$ is rise over run. The rise is $3$ and the run is $4$. "
        "So the slope is $\\boxed{\\dfrac{3}{4}}$.",
        "\\frac34",
        revealed=(1, 2, 2),  # "rise is 3 ... run is 4" is not 3/4; level 3 is capped at L - 1 = 2 steps
    ),
    Case(
        "expression answer",
        "Drop the altitude from the apex to the base. It splits the base into halves of length $2$. "
        "By Pythagoras the altitude is $\\sqrt{16 - 4} = \\sqrt{12}$. Simplifying, the height is $2\\sqrt{3}$. "
        "The height is $\\boxed{2\\sqrt{3}}$.",
        "2\\sqrt{3}",
        reason="answer leak",  # sqrt(12) is not searched for; "the height is 2 sqrt 3" is
        revealed=(2, 3, 3),
    ),
    Case(
        "text answer",
        "March 1 is a Thursday. February has 28 days in that year, so February 1 is also a Thursday. "
        "January has 31 days, three more than four weeks. So January 1 is a Monday. The answer is \\text{Monday}.",
        "\\text{Monday}",
        reason="answer leak",
        revealed=(2, 3, 3),
    ),
    Case(
        "boxed answer in the middle",
        "First we find $a$: from $2a = 10$ we get $\\boxed{a = 5}$. Next, $b = a + 2$. "
        "So $b = 7$ and we are asked for $a + b$. The sum is $\\boxed{12}$.",
        "12",
    ),
    Case(
        "fbox and boxed-only middle step",
        "We compute the first term.\n$\\fbox{9}$\nThen the second term doubles it.\nThe answer is $\\boxed{27}$.",
        "27",
    ),
    Case(
        "no structure: one line without sentences",
        "the answer follows from symmetry so it is boxed 5",
        "5",
        usable=False,
        reason="single_step",
    ),
    Case("empty", "", "3", usable=False, reason="no_reference"),
    Case("whitespace", "  \n\t \n", "3", usable=False, reason="no_reference"),
    Case("none", None, "3", usable=False, reason="no_reference"),
    Case("not a string", 1234, "3", usable=False, reason="no_reference"),
    Case("no answer", "First. Second. Third.", None, usable=False, reason="no_answer"),
    Case("empty answer", "First. Second. Third.", "  ", usable=False, reason="no_answer"),
    Case(
        "only boxes before the last step",
        "$\\boxed{4}$\n\\boxed{4}\nSo it is $\\boxed{4}$.",
        "4",
        usable=False,
        reason="empty_steps",
    ),
    Case(
        "small answer: exponents are not leaks",
        "Let $f(x) = x^2 - 4x + 7$. Its derivative is $2x - 4$. Setting it to zero gives the critical point. "
        "The critical point is $x = 2$. So $\\boxed{2}$.",
        "2",
        reason="answer leak",
        revealed=(2, 3, 3),
    ),
    Case(
        "small answer as a word",
        "Count the solutions of $x^2 = 9$ over the reals. They come in a plus and a minus pair. "
        "So there are two solutions. The count is $\\boxed{2}$.",
        2,
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "negative answer",
        "We solve $2x + 9 = 3$. Subtracting $9$ gives $2x = -6$. Dividing by $2$ we get $x = -3$. "
        "The answer is $\\boxed{-3}$.",
        "-3",
        reason="answer leak",  # "= 3" in the first step has the other sign: no leak
        revealed=(1, 2, 2),
    ),
    Case(
        "240 and 2.4 are not 24",
        "The full price is $240$ dollars. A discount of $2.4$ percent is offered on part of it. "
        "We take $10\\%$ of the price. The answer is $\\boxed{24}$.",
        "24",
        revealed=(1, 2, 3),
    ),
    Case(
        "percent answer",
        "Half of the class passed. As a percentage of the class, that is one half times one hundred. "
        "The answer is $\\boxed{50\\%}$.",
        "50\\%",
    ),
    Case(
        "multiple choice answer",
        "Option (A) fails for $n = 3$. Option (C) fails for $n = 4$. Only one option is left. "
        "The answer is $\\boxed{(B)}$.",
        "(B)",
    ),
    Case(
        "single-letter answer is not searched",
        "We test each vertex. Vertex A is too far. Vertex B is on the circle. Therefore the answer is B.",
        "B",
    ),
    Case(
        "list ground truth",
        "The quadratic is $x^2 - 7x + 12$. It factors nicely. The roots are $x = 3$ and $x = 4$.\n"
        "The larger root is $\\boxed{4}$.",
        ["4", "x = 4"],
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "interval answer",
        "We need $x^2 - x < 0$. Factor: $x(x - 1) < 0$. The product is negative between the roots. "
        "So the solution set is $\\boxed{(0, 1)}$.",
        "(0, 1)",
    ),
    Case(
        "degree answer leaks in an intermediate step",
        "Since the triangle is isosceles, $\\angle B = \\angle C = 40^\\circ$. The angles sum to $180^\\circ$. "
        "Then $\\angle A = 180^\\circ - 80^\\circ = 100^\\circ$. Hence the answer is $\\boxed{100^\\circ}$.",
        "100^\\circ",
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "decimal answer vs 25 and 5/2",
        "The total is $25$ cents per coin. Ten coins are stacked. Half of five is $5/2$. "
        "So the answer is $\\boxed{2.5}$.",
        "2.5",
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "thousands separator",
        "Each box holds $100$ items. There are $10$ boxes. The total is $1{,}000$ items. "
        "The answer is $\\boxed{1000}$.",
        "1,000",
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
    Case(
        "AIME leading zeros",
        "The remainder is computed modulo $1000$. We find $N \\equiv 25 \\pmod{1000}$. "
        "Write it with three digits. The answer is $\\boxed{025}$.",
        "025",
        reason="answer leak",
        revealed=(1, 1, 1),
    ),
    Case(
        "float ground truth",
        "Two thirds of $63$ is what we need. One third of $63$ is $21$. Doubling, we get the result. So $\\boxed{42}$.",
        42.0,
        revealed=(1, 2, 3),
    ),
    Case(
        "think tags are dropped",
        "<think>We start.</think> Then $a = 3$. Then $b = 5$. So $a + b = \\boxed{8}$.",
        "8",
    ),
    Case(
        "unclosed box in a middle step",
        "We set up the equation. We find \\boxed{x = 11 and more\nThe next line is fine.\nSo $\\boxed{11}$.",
        "11",
    ),
    Case(
        "multi-line unstructured",
        "the sum of the first n odd numbers is n squared\nhere n is 15\nso we square it\nthe answer is 225",
        "225",
        revealed=(1, 2, 3),
    ),
    Case(
        "multi-word text answer",
        "The wind blows from the south west. The boat sails against it. So the boat heads north east.\n"
        "Answer: north east",
        "north east",
        reason="answer leak",
        revealed=(1, 2, 2),
    ),
]
CASE_IDS = [c.id for c in REFERENCES]


def plain_numbers(answer: object) -> list[str]:
    """Digit strings of numeric answers of two or more digits, for a plain search that ignores normalization."""
    out = []
    for candidate in ground_truth_candidates(answer):
        norm = normalize_answer(candidate).lstrip("-")
        if re.fullmatch(r"\d+(?:\.\d+)?", norm) and len(norm.replace(".", "")) >= 2:
            out.append(norm)
    return out


def plain_number_in(text: str, number: str) -> bool:
    """A whole-number occurrence: 24 is in "x = 24." and "{24}", not in 240, 124, 2.4 or 24.5."""
    return re.search(r"(?<![0-9.])" + re.escape(number) + r"(?![0-9]|\.[0-9])", text) is not None


def assert_well_formed(hint_set: HintSet, reference: object, answer: object, fractions=DEFAULT_FRACTIONS) -> None:
    """The invariants every hint set must satisfy, whatever its inputs."""
    hints = hint_set.hints
    assert len(hints) == len(fractions)
    assert [h.level for h in hints] == list(range(len(fractions)))
    assert hints[0].text == "" and hints[0].steps_revealed == 0
    assert hint_set.for_level(0) == hints[0]
    guard = AnswerGuard(answer)
    total = hints[0].total_steps
    previous = 0
    for level, hint in enumerate(hints):
        assert hint.fraction == pytest.approx(float(fractions[level]))
        assert hint.total_steps == total
        chosen = hint_set.for_level(level)
        assert chosen.steps_revealed >= previous, "levels must be monotone"
        previous = chosen.steps_revealed
        if not hint.text:
            assert hint.steps_revealed == 0
            continue
        assert hint_set.usable
        assert 1 <= hint.steps_revealed <= min(math.ceil(hint.fraction * total - 1e-9), total - 1)
        assert hint.text.endswith("\n\n")
        assert "\\boxed" not in hint.text and "\\fbox" not in hint.text
        assert not guard.leaks(hint.text)
    if not hint_set.usable:
        assert all(not h.text for h in hints) and hint_set.reason


# ------------------------------------------------------------------------------------------ corpus tests


def test_corpus_is_large_enough() -> None:
    assert len(REFERENCES) >= 25
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", REFERENCES, ids=CASE_IDS)
def test_reference_corpus(case: Case) -> None:
    hint_set = build_hints(case.reference, case.answer)
    assert_well_formed(hint_set, case.reference, case.answer)
    assert hint_set.usable == case.usable, hint_set.reason
    if case.usable:
        assert (case.reason in hint_set.reason) if case.reason else hint_set.reason == ""
        assert bool(hint_set.lowered) == bool(case.reason)
    else:
        assert hint_set.reason == case.reason
    if case.revealed is not None:
        assert tuple(h.steps_revealed for h in hint_set.hints[1:]) == case.revealed


@pytest.mark.parametrize("case", REFERENCES, ids=CASE_IDS)
def test_hints_never_contain_the_answer(case: Case) -> None:
    hint_set = build_hints(case.reference, case.answer)
    norms = [normalize_answer(c) for c in ground_truth_candidates(case.answer)]
    for hint in hint_set.hints:
        if not hint.text:
            continue
        for number in plain_numbers(case.answer):  # plain numeric search on the raw text
            assert not plain_number_in(hint.text, number), (number, hint.text)
        normalized = normalize_answer(hint.text)
        for norm in norms:  # the same normalization as the guard, plain containment for non-numeric answers
            if len(norm) >= 2 and not re.fullmatch(r"-?\d+(?:\.\d+)?", norm):
                assert norm not in normalized, (norm, hint.text)


@pytest.mark.parametrize("case", [c for c in REFERENCES if c.usable], ids=[c.id for c in REFERENCES if c.usable])
def test_last_step_never_appears(case: Case) -> None:
    assert isinstance(case.reference, str)
    last = segment_steps(case.reference, sentences=True)[-1].text
    for hint in build_hints(case.reference, case.answer).hints:
        assert last not in hint.text


@pytest.mark.parametrize("case", [c for c in REFERENCES if c.usable], ids=[c.id for c in REFERENCES if c.usable])
def test_hint_is_the_first_reference_steps(case: Case) -> None:
    # the revealed text is the reference's first steps, in order, joined at blank lines; later steps stay hidden
    assert isinstance(case.reference, str)
    steps = [s.text for s in segment_steps(case.reference, sentences=True)]
    for hint in build_hints(case.reference, case.answer).hints[1:]:
        if not hint.text:
            continue
        n = hint.steps_revealed
        plain = [t for t in steps[:n] if not re.search(r"\\boxed|\\fbox|think>", t)]
        if len(plain) == n:
            assert hint.text == "\n\n".join(plain) + "\n\n"
        position = 0
        for text in plain:
            position = hint.text.index(text, position) + len(text)
        for text in steps[n:]:
            assert text not in hint.text or text in steps[:n]


def test_boxes_are_cut_with_their_delimiters() -> None:
    reference = (
        "First we get $\\boxed{5}$ here.\nThen \\boxed 7 and $x = \\boxed{y}$.\n"
        "Also $$\\fbox{3}$$ done, and we get \\boxed{\\frac{1}{2}}.\nThe answer is 99."
    )
    text = build_hints(reference, "99").for_level(3).text
    assert text == "First we get here.\n\nThen and $x = $.\n\nAlso done, and we get.\n\n"


def test_count_unusable_by_reason() -> None:
    sets = [build_hints(c.reference, c.answer) for c in REFERENCES]
    counts = count_unusable(sets)
    expected_unusable = [c.reason for c in REFERENCES if not c.usable]
    for reason in set(expected_unusable):
        assert counts[reason] == expected_unusable.count(reason)
    assert counts["lowered"] == sum(1 for c in REFERENCES if c.usable and c.reason)
    assert sum(v for k, v in counts.items() if k != "lowered") == len(expected_unusable)
    assert count_unusable([]) == {}


# ------------------------------------------------------------------------------------------ level rules


def test_levels_reveal_ceil_of_fraction() -> None:
    reference = " ".join(f"Sentence {i} holds some words." for i in range(1, 10)) + " The answer is $\\boxed{777}$."
    hint_set = build_hints(reference, "777")
    total = 10
    assert [h.steps_revealed for h in hint_set.hints] == [0, 3, 5, 8]  # ceil(2.5), ceil(5), ceil(7.5)
    assert all(h.total_steps == total for h in hint_set.hints)
    assert hint_set.hints[1].text == "Sentence 1 holds some words.\n\nSentence 2 holds some words.\n\n" + (
        "Sentence 3 holds some words.\n\n"
    )


def test_float_fractions_are_not_over_rounded() -> None:
    reference = "\n".join(f"line {chr(65 + i)}" for i in range(10))
    hint_set = build_hints(reference, "999", (0.0, 0.3, 0.7))
    assert [h.steps_revealed for h in hint_set.hints] == [0, 3, 7]  # 0.3 * 10 is 3.0000000000000004


def test_small_fraction_reveals_at_least_one_step() -> None:
    hint_set = build_hints("First step here.\nSecond step.\nThe answer is 77.", "77", (0.0, 0.01))
    assert hint_set.hints[1].steps_revealed == 1
    assert hint_set.hints[1].text == "First step here.\n\n"


def test_never_more_than_the_candidate_steps() -> None:
    hint_set = build_hints("Set up.\nThe answer is 77.", "77", (0.0, 0.25, 0.5, 0.99))
    assert [h.steps_revealed for h in hint_set.hints] == [0, 1, 1, 1]


def test_two_steps_is_the_smallest_usable_reference() -> None:
    assert build_hints("Set up. The answer is 77.", "77").usable
    assert build_hints("The answer is 77.", "77").reason == "single_step"


def test_prefix_and_suffix() -> None:
    reference = "We add the numbers. Then we divide. The answer is 77."
    hint_set = build_hints(reference, "77", prefix=RECOMMENDED_PREFIX, suffix="\n\nLet me continue.\n\n")
    text = hint_set.for_level(1).text
    assert text == RECOMMENDED_PREFIX + "We add the numbers.\n\nLet me continue.\n\n"
    assert RECOMMENDED_PREFIX.endswith("\n\n") and not re.search(r"[0-9]", RECOMMENDED_PREFIX)


def test_prefix_that_leaks_makes_every_level_unusable() -> None:
    hint_set = build_hints("We add. We divide. The answer is 77.", "77", prefix="Note: 77.\n\n")
    assert not hint_set.usable and hint_set.reason == "answer_leak"


def test_level_with_only_a_box_maps_down() -> None:
    # fractions count reference steps: level 1's single step is a bare box, so level 1 falls back to level 0
    hint_set = build_hints("$\\boxed{3}$\nWe double it.\nThen add one.\nThe answer is 7.", "7")
    assert [h.steps_revealed for h in hint_set.hints] == [0, 0, 2, 3]
    assert hint_set.for_level(1).text == ""
    assert hint_set.for_level(2).text == "We double it.\n\n"
    assert hint_set.usable and hint_set.lowered == (1,) and "only boxes" in hint_set.reason


def test_max_chars_truncates_at_a_step_boundary() -> None:
    reference = "\n".join(f"Line {chr(65 + i)}: " + "word " * 10 for i in range(8)) + "\nThe answer is 999."
    full = build_hints(reference, "999")
    short = build_hints(reference, "999", max_chars=130)
    for hint in short.hints:
        assert len(hint.text) <= 130
    assert short.hints[3].steps_revealed < full.hints[3].steps_revealed
    assert short.hints[3].text.endswith("\n\n")
    assert "max_chars" in short.reason and short.usable
    pieces = short.hints[3].text[:-2].split("\n\n")
    assert pieces == [line.strip() for line in reference.split("\n")[: len(pieces)]]


def test_every_step_too_long_is_unusable() -> None:
    hint_set = build_hints("A very long first sentence indeed. The answer is 77.", "77", max_chars=10)
    assert not hint_set.usable and hint_set.reason == "too_long"


def test_single_level_configuration() -> None:
    hint_set = build_hints("We add. The answer is 77.", "77", (0.0,))
    assert not hint_set.usable and hint_set.reason == "no_hint_levels"
    assert hint_set.for_level(3) == hint_set.hints[0]


def test_custom_fractions_as_a_list() -> None:
    reference = "One step. Two step. Three step. The answer is 77."
    hint_set = build_hints(reference, "77", [0, 0.5])
    assert [h.steps_revealed for h in hint_set.hints] == [0, 2]
    assert hint_set.hints[1].fraction == 0.5


# ------------------------------------------------------------------------------------------ for_level


def test_for_level_clamps() -> None:
    hint_set = build_hints(REFERENCES[0].reference, REFERENCES[0].answer)
    assert hint_set.for_level(99) == hint_set.hints[-1]
    assert hint_set.for_level(-5) == hint_set.hints[0]
    assert hint_set.for_level(0).text == ""
    assert hint_set.num_levels == 4


def test_for_level_maps_an_empty_level_to_the_next_lower_usable_one() -> None:
    def hint(level: int, text: str, n: int) -> Hint:
        return Hint(level=level, fraction=level / 4, text=text, steps_revealed=n, total_steps=5)

    hint_set = HintSet(
        hints=(hint(0, "", 0), hint(1, "a\n\n", 1), hint(2, "", 0), hint(3, "", 0)), usable=True, reason=""
    )
    assert hint_set.for_level(3) == hint_set.hints[1]
    assert hint_set.for_level(2) == hint_set.hints[1]
    assert hint_set.for_level(1) == hint_set.hints[1]


def test_unusable_set_always_gives_the_empty_hint() -> None:
    hint_set = build_hints(None, "3")
    for level in range(-1, 6):
        assert hint_set.for_level(level).text == ""


def test_results_are_frozen() -> None:
    hint_set = build_hints(REFERENCES[0].reference, "21")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hint_set.usable = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hint_set.hints[1].text = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((), "start at 0.0"),
        ((0.25, 0.5), "start at 0.0"),
        ((0.0, 0.5, 0.5), "strictly increasing"),
        ((0.0, 0.6, 0.3), "strictly increasing"),
        ((0.0, 0.5, 1.0), "below 1.0"),
        ((0.0, 1.5), "below 1.0"),
        ((0.0, float("nan")), "finite"),
        ((0.0, float("inf")), "finite"),
        ((0.0, "0.5"), "real number"),
        ((0.0, True), "real number"),
        ((0.0, None), "real number"),
        ("0.0", "sequence"),
        (0.5, "sequence"),
        (None, "sequence"),
    ],
)
def test_fraction_validation(fractions: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_fractions(fractions)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        build_hints("a. B. C.", "3", fractions)  # type: ignore[arg-type]


def test_valid_fractions_are_floats() -> None:
    assert validate_fractions([0, 0.25, Fraction(1, 2)]) == (0.0, 0.25, 0.5)
    assert validate_fractions(DEFAULT_FRACTIONS) == DEFAULT_FRACTIONS
    assert validate_fractions((0.0,)) == (0.0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"suffix": "\n"}, "suffix"),
        ({"suffix": ""}, "suffix"),
        ({"suffix": 3}, "strings"),
        ({"prefix": None}, "strings"),
        ({"max_chars": 0}, "max_chars"),
        ({"max_chars": 2.5}, "max_chars"),
        ({"max_chars": True}, "max_chars"),
    ],
)
def test_setting_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_hints("a. B. C.", "3", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ leak guard

LEAKS = [
    # (answer, text, leaks)
    ("24", "so x = 24.", True),
    ("24", "the value 24 appears", True),
    ("24", "we get 240 apples", False),
    ("24", "a rate of 2.4 per hour", False),
    ("24", "it is 24.5 long", False),
    ("24", "only 0.24 of it", False),
    ("24", "x = 124", False),
    ("24", "$x_{24}$", True),
    ("24", "$\\frac{24}{5}$", True),
    ("24", "$y = 6 \\cdot 4$", True),  # a numeric side of an equality has the value
    ("24", "$x = -24$", True),  # sign ignored: the magnitude gives it away
    ("24", "$2{,}4$", False),
    ("-24", "it drops by 24", True),
    ("1,000", "there are 1000 items", True),
    ("1000", "there are 1{,}000 items", True),
    ("025", "the remainder is 25", True),
    ("\\frac{1}{2}", "the chance is 0.5", True),
    ("\\frac{1}{2}", "the chance is $\\dfrac{1}{2}$", True),
    ("0.5", "half of it, 1/2", True),
    ("\\frac{7}{8}", "a chance of 7 out of 8", False),
    ("2.5", "worth 25 cents", False),
    ("2.5", "that is 5/2", True),
    ("50\\%", "exactly 50 of them", True),
    ("100^\\circ", "the angle is $100^\\circ$", True),
    # single digits: only result positions
    ("2", "$x^2 + 2x + 1$", False),
    ("2", "divide by 2 to get", False),
    ("2", "so $x = 2$.", True),
    ("2", "so $x = 2^3$", False),
    ("2", "so $x = 2x - y$", False),
    ("2", "there are two ways", True),
    ("2", "we need two cases here", False),
    ("2", "the answer is 2", True),
    ("-3", "$x = -3$", True),
    ("-3", "$x - 3 = 0$", False),
    ("3", "$x = -3$ or", False),  # small numbers: the sign must match
    ("-3", "so x = 3.", False),
    ("-3", "so x = −3.", True),
    ("-2", "there are two", False),
    ("0", "$f(0) = 0$ and", True),
    # other answers: token containment, raw or normalized
    ("2\\sqrt{3}", "the height is $2\\sqrt{3}$", True),
    ("2\\sqrt{3}", "the height is $2 \\sqrt 3$", True),
    ("2\\sqrt{3}", "the height is $\\sqrt{12}$", False),
    ("2\\sqrt{3}", "the height is $12\\sqrt{3}$", False),
    ("\\text{Monday}", "so it is a Monday", True),
    ("\\text{Monday}", "so it is a monday", True),
    ("\\text{Monday}", "on Mondays", False),
    ("north east", "heads north east", True),
    ("north east", "heads north-east", False),
    ("(0, 1)", "the set $(0,1)$", True),
    ("(B)", "option (B) works", True),
    ("(B)", "option B works", False),
    ("x+1", "$2x+1$", True),  # a letter edge after a digit is not a word: conservative
    ("x", "x = 5", False),  # single symbols are not searched
    ("A", "Answer A", False),
    (None, "24", False),
    ("", "24", False),
]


@pytest.mark.parametrize(("answer", "text", "leaks"), LEAKS)
def test_answer_guard(answer: object, text: str, leaks: bool) -> None:
    assert answer_leaks(text, answer) is leaks


def test_guard_accepts_typed_and_list_answers() -> None:
    assert answer_leaks("x = 142", 142.0)
    assert answer_leaks("x = 3/4", Fraction(3, 4))
    assert answer_leaks("x = 12", ["7", "12"])
    assert not answer_leaks("x = 13", ["7", "12"])
    assert not AnswerGuard("x").guardable and AnswerGuard("xy").guardable


# ------------------------------------------------------------------------------------------ properties

MATH_TOKENS = [
    "We have ",
    "Then ",
    "So ",
    "$x = ",
    "$",
    "24",
    "240",
    "2.4",
    "7",
    "2",
    "\\frac{1}{2}",
    "0.5",
    "\\boxed{",
    "\\fbox{",
    "}",
    "{",
    ". ",
    ".\n",
    "\n\n",
    "\\[",
    "\\]",
    "$$",
    "1. ",
    "**Step 1:** ",
    " = ",
    " is ",
    "two",
    "Monday",
    "\\sqrt{3}",
    "<think>",
    "</think>",
    "\\",
]
reference_text = st.lists(st.sampled_from(MATH_TOKENS), max_size=50).map("".join)
scalar_answers = st.one_of(
    st.sampled_from(["24", "2", "-3", "\\frac{1}{2}", "0.5", "Monday", "2\\sqrt{3}", "x", "", "$$", "\\boxed{7}"]),
    st.text(max_size=12),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.fractions(max_denominator=50),
    st.none(),
)
answers = scalar_answers | st.lists(scalar_answers, max_size=3)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(reference=reference_text | st.text(max_size=300), answer=answers)
def test_property_never_raises_and_never_leaks(reference: str, answer: object) -> None:
    hint_set = build_hints(reference, answer)
    assert_well_formed(hint_set, reference, answer)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    reference=reference_text,
    answer=answers,
    extra=st.lists(st.floats(min_value=0.01, max_value=0.99), min_size=1, max_size=5, unique=True),
    max_chars=st.integers(min_value=1, max_value=400),
)
def test_property_any_valid_settings(reference: str, answer: object, extra: list[float], max_chars: int) -> None:
    fractions = (0.0, *sorted(extra))
    hint_set = build_hints(reference, answer, fractions, max_chars=max_chars)
    assert_well_formed(hint_set, reference, answer, fractions)
    assert all(len(h.text) <= max_chars for h in hint_set.hints)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(reference=reference_text, answer=answers)
def test_property_deterministic(reference: str, answer: object) -> None:
    assert build_hints(reference, answer) == build_hints(reference, answer)


# ------------------------------------------------------------------------------------------ bounds

HOSTILE = {
    "1 MB paragraph": "We add the numbers and find 24. " * 30_000,
    "1 MB lines": "x = 24\n" * 150_000,
    "unclosed boxes": "Start. " + "\\boxed{" * 100_000 + " The answer is 5.",
    "nested boxes": "Start. " + "\\boxed{" * 10_000 + "5" + "}" * 10_000 + ". The end.",
    "many small boxes": "Start. " + "\\boxed{1} " * 100_000 + "\nThe end.",
    "dollars": "Start. " + "$" * 500_000 + "\nEnd.",
    "digits": "Start. " + "2" * 500_000 + ". End.",
    "many short sentences": "A. B. C. D. " * 50_000,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_references_are_fast(name: str) -> None:
    started = time.perf_counter()
    hint_set = build_hints(HOSTILE[name], "24")
    elapsed = time.perf_counter() - started
    assert elapsed < HANG_GUARD_S, f"{name}: {elapsed:.2f}s"
    assert_well_formed(hint_set, HOSTILE[name], "24")


def test_hostile_answers_are_handled() -> None:
    reference = "We start here. Then we go on. The answer is 5."
    for answer in ["2" * 5000, "{" * 5000, "\\frac{1}{0}", "1/0", "a" * 10_000, ["1"] * 1000, float("nan")]:
        hint_set = build_hints(reference, answer)
        assert_well_formed(hint_set, reference, answer)


# ------------------------------------------------------------------------------------------ purity


def test_imports_only_the_pure_core() -> None:
    tree = ast.parse(Path(hints_module.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {
        "__future__",
        "math",
        "re",
        "collections",
        "collections.abc",
        "dataclasses",
        "fractions",
        "verl_pdai.core.answers",
        "verl_pdai.core.step_checks",
        "verl_pdai.core.steps",
    }


def test_import_pulls_in_neither_verl_nor_sympy() -> None:
    code = (
        "import sys, verl_pdai.core.hints as h; h.build_hints('A. B. C.', '3'); "
        "print(sorted(m for m in ('verl', 'sympy', 'math_verify', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "text",
    [
        "so the total is **3**.",
        "**Answer:** 3",
        "Answer: **3**",
        "the result is $\\mathbf{3}$",
        "\\textbf{3}",
        "x = 3 (apples)",
        "the count is `3`",
    ],
)
def test_a_single_digit_answer_in_markdown_or_bold_is_a_leak(text):
    """A review of harvested references (an LLM's own concise solution states results in markdown): each of these
    put the answer 3 into a hint."""
    assert answer_leaks(text, "3")


@pytest.mark.parametrize("text", ["we get 3x + 1", "2^3 = 8", "3 * 4 = 12", "the 3 apples", "x_3 = 4", "it is 3(x+1)"])
def test_a_digit_inside_an_expression_is_not_the_answer(text):
    assert not answer_leaks(text, "3")
