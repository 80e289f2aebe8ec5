"""Tests for verl_pdai.core.step_checks: evaluator, arithmetic claims, key quantities, repetition."""

from __future__ import annotations

import ast
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bounds import HANG_GUARD_S
from verl_pdai.core import step_checks as checks_module
from verl_pdai.core.step_checks import (
    ArithmeticClaim,
    evaluate_arithmetic,
    find_arithmetic_claims,
    key_quantities,
    quantities_in,
    repeated_steps,
)

F = Fraction

# ------------------------------------------------------------------------------------------ evaluator

EVALUATE_CASES = [
    ("3 + 4", F(7)),
    ("3 - 4 - 5", F(-6)),
    ("2 * 3 + 4", F(10)),
    ("2 + 3 * 4", F(14)),
    ("3 \\cdot 4", F(12)),
    ("7 \\times 8", F(56)),
    ("12 \\div 4", F(3)),
    ("12 ÷ 4 × 2", F(6)),
    ("6 − 2 · 2", F(2)),
    ("1/3 + 1/6", F(1, 2)),
    ("-3 + 5", F(2)),
    ("--3", F(3)),
    ("3 * -2", F(-6)),
    ("2^{10}", F(1024)),
    ("2^10", F(1024)),
    ("2^3^2", F(512)),
    ("-2^2", F(-4)),
    ("(-2)^2", F(4)),
    ("2^{-2}", F(1, 4)),
    ("2^-1", F(1, 2)),
    ("(2+3)^2", F(25)),
    ("[2+3] \\cdot 2", F(10)),
    ("{2+3} \\cdot 2", F(10)),
    ("\\left(2 + 3\\right)^2", F(25)),
    ("\\frac{6}{4}", F(3, 2)),
    ("\\dfrac{1}{3} + \\tfrac{1}{6}", F(1, 2)),
    ("\\frac12", F(1, 2)),
    ("\\frac{1}2", F(1, 2)),
    ("\\frac{\\frac{1}{2}}{\\frac{3}{4}}", F(2, 3)),
    ("\\sqrt{16}", F(4)),
    ("\\sqrt{\\frac{9}{4}}", F(3, 2)),
    ("\\sqrt[3]{27}", F(3)),
    ("\\sqrt[3]{-8}", F(-2)),
    ("4^{1/2}", F(2)),
    ("8^{2/3}", F(4)),
    ("5!", F(120)),
    ("0!", F(1)),
    ("3!^2", F(36)),
    ("7!!", F(105)),
    ("10!/(5!5!)", F(252)),
    ("\\frac{10!}{5! \\cdot 5!}", F(252)),
    ("\\binom{5}{2}", F(10)),
    ("\\binom{3}{5}", F(0)),
    ("2(3+4)", F(14)),
    ("(2)(3)(4)", F(24)),
    ("2\\sqrt{9}", F(6)),
    ("1.5 \\times 2", F(3)),
    ("0.1 + 0.2", F(3, 10)),
    ("1,000 + 1", F(1001)),
    ("1{,}000 \\cdot 2", F(2000)),
    ("1\\,000", F(1000)),
    ("3\\,\\cdot\\,4", F(12)),
    ("  42  ", F(42)),
    ("$3+4$", F(7)),
    ("\\(3+4\\)", F(7)),
    ("\\[3+4\\]", F(7)),
    ("$$2^{5}$$", F(32)),
    ("3 \\quad + 4", F(7)),
    ("9^{9^{9}} - 9^{9^{9}}", None),  # too large to decide, even though it cancels
]

NONE_CASES = [
    ("", "empty"),
    ("   ", "blank"),
    ("x + 2", "variable"),
    ("2x", "implicit variable"),
    ("\\pi", "unknown command"),
    ("3 +", "dangling operator"),
    ("(3 + 4", "unbalanced"),
    ("(3 + 4]", "mismatched brackets"),
    ("3 4", "juxtaposed numbers"),
    ("(2)3", "number after a group"),
    ("1/0", "division by zero"),
    ("\\frac{1}{0}", "division by zero in frac"),
    ("0^0", "undefined"),
    ("0^{-1}", "undefined"),
    ("\\sqrt{2}", "irrational"),
    ("\\sqrt{-4}", "imaginary"),
    ("2^{1/2}", "irrational power"),
    ("2^{1/1000}", "root index beyond the cap"),
    ("(1/2)!", "factorial of a fraction"),
    ("(-1)!", "factorial of a negative"),
    ("100000!", "factorial beyond the cap"),
    ("9^{9^{9^{9}}}", "tower beyond the cap"),
    ("10^{100000}", "power beyond the cap"),
    ("2\\frac{1}{2}", "mixed number or product: ambiguous"),
    ("50\\%", "percent is unsupported"),
    ("3 = 3", "a relation is not an expression"),
    ("1" * 500, "numeral beyond the cap"),
    ("1+" * 1500 + "1", "expression beyond the length cap"),
    ("(" * 100 + "1" + ")" * 100, "nesting beyond the depth cap"),
    ("2^" * 100 + "2", "exponent nesting beyond the depth cap"),
    ("\x00", "NUL"),
    ("٣ + ٤", "non-ASCII digits are not numerals"),
]


@pytest.mark.parametrize(("expr", "expected"), EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_arithmetic(expr: str, expected: Fraction | None) -> None:
    assert evaluate_arithmetic(expr) == expected


@pytest.mark.parametrize(("expr", "why"), NONE_CASES, ids=[c[1] for c in NONE_CASES])
def test_evaluate_arithmetic_gives_none(expr: str, why: str) -> None:
    assert evaluate_arithmetic(expr) is None, why


def test_evaluate_moderate_nesting_is_fine() -> None:
    assert evaluate_arithmetic("(" * 20 + "1+1" + ")" * 20) == 2


def test_evaluate_large_but_bounded_values_are_exact() -> None:
    assert evaluate_arithmetic("2^{1000} - 2^{1000} + 1") == 1
    assert evaluate_arithmetic("1000! / 999!") == 1000


@pytest.mark.parametrize(
    "expr",
    ["9^{9^{9^{9}}}", "100000!", "10^{10^{10}}", "\\binom{100000}{50000}", "2^{2^{2^{2^{2}}}}", "(10^{3000})^{3000}"],
)
def test_evaluate_huge_is_none_and_fast(expr: str) -> None:
    started = time.perf_counter()
    assert evaluate_arithmetic(expr) is None
    assert time.perf_counter() - started < HANG_GUARD_S


# ------------------------------------------------------------------------------------------ claims

CLAIM_CASES = [
    # (id, text, [(expression, claimed, holds), ...])
    ("product", "3 \\cdot 4 = 12", [("3 \\cdot 4", "12", True)]),
    ("power", "$2^{10}=1024$", [("2^{10}", "1024", True)]),
    ("fraction to decimal", "$\\frac{6}{4} = 1.5$", [("\\frac{6}{4}", "1.5", True)]),
    ("division", "12 \\div 4 = 3", [("12 \\div 4", "3", True)]),
    ("factorial", "so 5! = 120", [("5!", "120", True)]),
    ("false product", "$7 \\times 8 = 54$", [("7 \\times 8", "54", False)]),
    ("squared group", "(2+3)^2 = 25", [("(2+3)^2", "25", True)]),
    ("sqrt", "\\sqrt{16} = 4", [("\\sqrt{16}", "4", True)]),
    ("chain", "$2+2 = 4 = 2^2$", [("2+2", "4", True), ("4", "2^2", True)]),
    ("chain with a false link", "$2+3 = 5 = 2^3$", [("2+3", "5", True), ("5", "2^3", False)]),
    ("chain after a variable", "$x = 3 \\cdot 4 = 12$", [("3 \\cdot 4", "12", True)]),
    ("chain after x squared", "$x^2 = 9 + 16 = 25$", [("9 + 16", "25", True)]),
    ("rounded down third", "\\frac{1}{3} = 0.333", [("\\frac{1}{3}", "0.333", True)]),
    ("rounded up two thirds", "\\frac{2}{3} = 0.667", [("\\frac{2}{3}", "0.667", True)]),
    ("truncated two thirds", "\\frac{2}{3} = 0.66", [("\\frac{2}{3}", "0.66", True)]),
    ("badly rounded", "\\frac{2}{3} = 0.68", [("\\frac{2}{3}", "0.68", False)]),
    ("wrong decimal", "\\frac{1}{3} = 0.5", [("\\frac{1}{3}", "0.5", False)]),
    ("exact decimal wrong digit", "1.5 + 1 = 2.4", [("1.5 + 1", "2.4", False)]),
    ("integer rhs is not rounded", "7 / 2 = 3", [("7 / 2", "3", False)]),
    ("negative rounded", "$-\\frac{1}{3} = -0.33$", [("-\\frac{1}{3}", "-0.33", True)]),
    ("ellipsis", "1/3 = 0.333\\ldots", [("1/3", "0.333", True)]),
    ("approx true", "\\frac{22}{7} \\approx 3.14", [("\\frac{22}{7}", "3.14", True)]),
    ("approx unicode", "22/7 ≈ 3", [("22/7", "3", True)]),
    ("approx close is undecided", "7 \\times 8 \\approx 56.3", [("7 \\times 8", "56.3", None)]),
    # off by more than 1%: false, or writing ≈ would dodge the false-claim penalty
    ("approx far off is false", "7 \\times 8 \\approx 54", [("7 \\times 8", "54", False)]),
    ("approx irrational", "\\sqrt{2} \\approx 1.414", [("\\sqrt{2}", "1.414", None)]),
    ("symmetric", "$12 = 3 \\cdot 4$", [("12", "3 \\cdot 4", True)]),
    ("negative power", "10^{-3} = 0.001", [("10^{-3}", "0.001", True)]),
    ("leading sign after delimiter", "$-3 + 5 = 2$", [("-3 + 5", "2", True)]),
    ("negative result", "$1 - 3 = -2$", [("1 - 3", "-2", True)]),
    ("implicit product", "2(3+4) = 14", [("2(3+4)", "14", True)]),
    ("binomial", "$\\binom{5}{2} = 10$", [("\\binom{5}{2}", "10", True)]),
    ("thousands", "1,000 + 1 = 1,001", [("1,000 + 1", "1,001", True)]),
    ("left right", "\\left(2 + 3\\right)^2 = 25", [("\\left(2 + 3\\right)^2", "25", True)]),
    ("inline parens math", "\\(3 + 4 = 7\\)", [("3 + 4", "7", True)]),
    ("display math", "\\[\n3+4 = 7\n\\]", [("3+4", "7", True)]),
    ("inside parentheses", "(so 3 + 4 = 7)", [("3 + 4", "7", True)]),
    ("sentence end", "Adding, 3 + 4 = 7.", [("3 + 4", "7", True)]),
    ("after list marker", "1. 3 + 4 = 7", [("3 + 4", "7", True)]),
    ("units after text", "3 \\cdot 4 = 12 \\text{ cm}", [("3 \\cdot 4", "12", True)]),
    ("words after", "3 \\cdot 4 = 12 apples", [("3 \\cdot 4", "12", True)]),
    ("two claims", "$1+1=2$ and $2+2=5$", [("1+1", "2", True), ("2+2", "5", False)]),
    ("huge tower undecidable", "$9^{9^{9^{9}}} = 3$", [("9^{9^{9^{9}}}", "3", None)]),
    ("huge factorial undecidable", "100000! = 1", [("100000!", "1", None)]),
    ("division by zero undecidable", "1/0 = 5", [("1/0", "5", None)]),
    ("mixed number undecidable", "2\\frac{1}{2} = 2.5", [("2\\frac{1}{2}", "2.5", None)]),
    # not claims
    ("variable on the left", "x + 2 = 5", []),
    ("coefficient", "2x + 3 = 7", []),
    ("variable minus", "x - 3 = 2", []),
    ("function value", "f(3) = 9 + 0", []),
    ("subscripts", "a_1 + a_2 = 5", []),
    ("variable on the right", "3 + 4 = 7x", []),
    ("expression continues", "3 + 4 = 7 \\cdot x", []),
    ("repeating decimal", "1/3 = 0.\\overline{3}", []),
    ("percent", "50\\% \\times 80 = 40", []),
    ("no operator", "$12 = 12$", []),
    ("assignment", "$x = 5$", []),
    ("not equal", "3 != 4", []),
    ("comparison", "3 + 4 <= 8", []),
    ("double equals", "3 + 4 == 7", []),
    ("pi", "\\pi \\cdot 2 = 6.28", []),
    ("log", "\\log_2 8 = 3", []),
    ("gcd", "\\gcd(12, 18) = 6", []),
    ("prose", "There are three apples and four pears.", []),
    ("unbalanced", "3 + (4 = 7", []),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CLAIM_CASES], ids=[c[0] for c in CLAIM_CASES])
def test_find_arithmetic_claims(text: str, expected: list[tuple[str, str, bool | None]]) -> None:
    claims = find_arithmetic_claims(text)
    assert [(c.expression, c.claimed, c.holds) for c in claims] == expected
    for claim in claims:
        assert isinstance(claim, ArithmeticClaim)
        span = text[claim.start : claim.end]
        assert span.startswith(claim.expression) and span.endswith(claim.claimed)


def test_claim_offsets() -> None:
    text = "We get $7 \\times 8 = 54$ here."
    (claim,) = find_arithmetic_claims(text)
    assert (claim.start, claim.end) == (8, 23)
    assert text[claim.start : claim.end] == "7 \\times 8 = 54"


def test_claims_in_a_realistic_step() -> None:
    text = (
        "**Step 2:** The area is $\\frac{1}{2} \\cdot 6 \\cdot 8 = 24$, and the perimeter is "
        "$6 + 8 + 10 = 23$. Since $x^2 = 49$, we get $x = 7$."
    )
    claims = find_arithmetic_claims(text)
    assert [(c.expression, c.holds) for c in claims] == [
        ("\\frac{1}{2} \\cdot 6 \\cdot 8", True),
        ("6 + 8 + 10", False),
    ]


def test_max_claims() -> None:
    text = " ".join(f"${i}+1={i + 1}$" for i in range(100))
    assert len(find_arithmetic_claims(text)) == 64
    assert len(find_arithmetic_claims(text, max_claims=5)) == 5
    assert find_arithmetic_claims(text, max_claims=0) == []
    with pytest.raises(ValueError, match="max_claims"):
        find_arithmetic_claims(text, max_claims=-1)


def test_undecidable_claims_are_fast() -> None:
    text = " ".join(["$9^{9^{9^{9}}} = 3$", "$100000! = 1$", "$10^{10^{10}} = 7$", "$(10^{3000})^{3000} = 1$"] * 16)
    started = time.perf_counter()
    claims = find_arithmetic_claims(text)
    assert time.perf_counter() - started < HANG_GUARD_S
    assert len(claims) == 64 and all(c.holds is None for c in claims)


# ------------------------------------------------------------------------------------ key quantities

KEY_CASES = [
    ("equality results", "Let $x = 4$. Then $y = 3 \\cdot 4 = 12$.", ["4", "12"]),
    ("boxed", "The answer is $\\boxed{\\frac{7}{2}}$.", ["7/2"]),
    ("boxed equation", "$\\boxed{x = 15}$", ["15"]),
    ("conclusion", "Therefore the total is 42.", ["42"]),
    ("conclusion in math", "So the sum is $\\frac{3}{4}$.", ["3/4"]),
    ("conclusion needs a so", "The page is 42 lines long.", []),
    ("canonical forms", "$a = 0.5$, $b = \\frac{1}{2}$, $c = 1/2$, $d = 0.75$", ["1/2", "3/4"]),
    ("trivial excluded", "$a = 0$, $b = 1$, $c = 2$, $d = -1$, $e = 3$", ["3"]),
    ("negative", "$x = -3$", ["-3"]),
    ("order of appearance", "$b = 9$ then $a = 5$ then $b = 9$", ["9", "5"]),
    ("thousands", "So the total is $1{,}000$.", ["1000"]),
    ("approx is not a result", "$\\pi \\approx 3.14$", []),
    ("variables only", "$x = y + z$", []),
    ("large values skipped", "$n = 10^{100}$ and $m = 7$", ["7"]),
    ("mixed", "From $3x = 12$ we get $x = 4$, so the area is $4^2 = 16$. Thus $\\boxed{16}$.", ["12", "4", "16"]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_key_quantities(text: str, expected: list[str]) -> None:
    assert key_quantities(text) == expected


def test_key_quantities_cap() -> None:
    text = " ".join(f"$a_{{{i}}} = {i + 3}$" for i in range(40))
    assert key_quantities(text) == [str(i + 3) for i in range(16)]
    assert key_quantities(text, max_keys=3) == ["3", "4", "5"]
    assert key_quantities(text, max_keys=0) == []
    with pytest.raises(ValueError, match="max_keys"):
        key_quantities(text, max_keys=-1)


QUANTITY_CASES = [
    ("integers", "3 apples and 12 pears", {"3", "12"}),
    ("decimal", "half is 0.5", {"1/2"}),
    ("latex fraction", "$\\frac{1}{2}$ and $\\dfrac{3}{4}$ and \\frac34", {"1/2", "3/4"}),
    ("plain fraction", "take 1/2 of it", {"1/2"}),
    ("signed", "$x = -3$ and 5 - 3", {"-3", "5", "3"}),
    ("thousands", "1,000 and 1{,}500", {"1000", "1500"}),
    ("evaluated equality", "$2^{10} = 1024$", {"2", "10", "1024"}),
    ("none", "no numbers here", set()),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in QUANTITY_CASES], ids=[c[0] for c in QUANTITY_CASES])
def test_quantities_in(text: str, expected: set[str]) -> None:
    assert quantities_in(text) == expected


def test_key_reached_by_another_form() -> None:
    keys = key_quantities("So the probability is $\\frac{3}{8}$.")
    assert keys == ["3/8"]
    assert set(keys) <= quantities_in("I think it is 0.375 overall")
    assert not set(keys) & quantities_in("I think it is 0.38 overall")


def test_quantities_are_bounded() -> None:
    text = " ".join(str(i) for i in range(100_000))
    assert len(quantities_in(text)) <= checks_module.MAX_QUANTITIES


# ------------------------------------------------------------------------------------------ repetition

REPEAT_CASES = [
    ("empty", [], []),
    ("distinct", ["We compute the area first.", "Then we compute the perimeter."], [False, False]),
    (
        "exact repeat",
        ["We compute the area first.", "Then we compute the perimeter.", "We compute the area first."],
        [False, False, True],
    ),
    ("whitespace and case", ["We compute  the AREA first.", "we compute the area\nfirst."], [False, True]),
    ("short steps never marked", ["Wait.", "Wait.", "Wait."], [False, False, False]),
    (
        "near duplicate",
        [
            "a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc",
            "a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb dd",
        ],
        [False, True],
    ),
    (
        "below threshold",
        [
            "one two three four five six seven eight nine ten",
            "one two three four five six seven eight nine eleven",
        ],
        [False, False],
    ),
    ("first occurrence is false", ["Let me check the sum again."] * 4, [False, True, True, True]),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in REPEAT_CASES], ids=[c[0] for c in REPEAT_CASES])
def test_repeated_steps(steps: list[str], expected: list[bool]) -> None:
    assert repeated_steps(steps) == expected


def test_repeated_steps_min_chars() -> None:
    assert repeated_steps(["Wait.", "Wait."], min_chars=3) == [False, True]
    assert repeated_steps(["a long enough step here", "a long enough step here"], min_chars=100) == [False, False]
    with pytest.raises(ValueError, match="min_chars"):
        repeated_steps(["x"], min_chars=-1)


def test_repeated_steps_is_not_quadratic() -> None:
    identical = ["Let me recompute the sum of the first hundred integers carefully."] * 20_000
    distinct = [f"Step number {i} computes a brand new quantity q{i} from q{i - 1} and {i * 7}." for i in range(20_000)]
    near = [
        f"We check the value once more {i % 3} and find the same result as before, namely 5050." for i in range(20_000)
    ]
    for steps in (identical, distinct, near):
        started = time.perf_counter()
        result = repeated_steps(steps)
        assert time.perf_counter() - started < HANG_GUARD_S
        assert result[0] is False
    assert repeated_steps(identical)[1:] == [True] * 19_999
    assert not any(repeated_steps(distinct))


def test_repeated_steps_deterministic() -> None:
    steps = [f"variant {i % 7} of a fairly long repeated reasoning sentence here" for i in range(200)]
    assert repeated_steps(steps) == repeated_steps(list(steps))


# ---------------------------------------------------------------------------------------- properties

MATH_TOKENS = [
    "1",
    "2",
    "3",
    "0",
    "9",
    "10",
    ".",
    "5",
    ",",
    "{,}",
    "\\,",
    "+",
    "-",
    "−",
    "*",
    "/",
    "^",
    "!",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\\frac",
    "\\sqrt",
    "\\binom",
    "\\cdot",
    "\\times",
    "\\div",
    "\\left",
    "\\right",
    "=",
    "\\approx",
    "≈",
    "$",
    " ",
    "\n",
    "x",
    "\\pi",
    "\\boxed{",
    "so ",
    "is ",
    "\\(",
    "\\)",
    "\x00",
    "%",
]
math_text = st.lists(st.sampled_from(MATH_TOKENS), max_size=60).map("".join) | st.text(max_size=200)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(text=math_text)
def test_property_nothing_raises_and_outputs_are_well_formed(text: str) -> None:
    value = evaluate_arithmetic(text)
    assert value is None or isinstance(value, Fraction)
    for claim in find_arithmetic_claims(text):
        assert 0 <= claim.start < claim.end <= len(text)
        span = text[claim.start : claim.end]
        assert span.startswith(claim.expression) and span.endswith(claim.claimed)
        assert claim.holds in (True, False, None)
    keys = key_quantities(text)
    assert len(keys) == len(set(keys)) <= 16
    assert not set(keys) & {"0", "1", "2", "-1"}
    for key in keys:
        assert str(Fraction(key)) == key
    for quantity in quantities_in(text):
        assert str(Fraction(quantity)) == quantity
    assert len(repeated_steps(text.split("\n"))) == len(text.split("\n"))


@settings(max_examples=300)
@given(a=st.integers(-(10**6), 10**6), b=st.integers(-(10**6), 10**6), c=st.integers(1, 1000))
def test_property_evaluator_matches_python(a: int, b: int, c: int) -> None:
    assert evaluate_arithmetic(f"{a} + {b} \\cdot {c}") == a + b * c
    assert evaluate_arithmetic(f"\\frac{{{a}}}{{{c}}} - ({b})") == Fraction(a, c) - b
    claims = find_arithmetic_claims(f"${a} \\cdot {c} = {a * c}$")
    assert [claim.holds for claim in claims] == [True]


@settings(max_examples=200)
@given(value=st.fractions(min_value=-1000, max_value=1000, max_denominator=1000))
def test_property_canonical_keys(value: Fraction) -> None:
    text = f"$x = \\frac{{{value.numerator}}}{{{value.denominator}}}$"
    expected = [] if str(value) in {"0", "1", "2", "-1"} else [str(value)]
    assert key_quantities(text) == expected
    assert str(value) in quantities_in(text)


# ---------------------------------------------------------------------------------------- adversarial

MB = 1_000_000
ADVERSARIAL = {
    "1 MB prose": "The quick brown fox jumps over the lazy dog. " * (MB // 45),
    "1 MB claims": "So $3+4=7$ and we continue.\n\n" * (MB // 30),
    "1 MB claims in one run": "3+4=7 " * (MB // 6),
    "1 MB chain": "1=" * (MB // 2),
    "1 MB assignments": "x=1\n" * (MB // 4),
    "1 MB towers": "$9^{9^{9^{9}}} = 3$ " * (MB // 20),
    "1 MB factorials": "$100000! = 1$ " * (MB // 14),
    "1 MB digits": "1" * MB,
    "1 MB spaced digits": "1 " * (MB // 2),
    "1 MB equals": "=" * MB,
    "1 MB so is": "so so is 3 " * (MB // 11),
    "1 MB boxed": "\\boxed{" * (MB // 7),
    "1 MB fractions": "\\frac{1}{2}" * (MB // 11),
    "1 MB backslashes": "\\" * MB,
    "1 MB NUL": "\x00" * MB,
    "10k nested braces": "{" * 10_000 + "1" + "}" * 10_000 + " = 1",
    "10k nested parens": "(" * 10_000 + "1+1" + ")" * 10_000 + " = 2",
    "10k nested fractions": "\\frac{" * 10_000 + "1" + "}{2}" * 10_000 + " = 0",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_input_is_fast(name: str) -> None:
    text = ADVERSARIAL[name]
    for function in (find_arithmetic_claims, quantities_in, key_quantities, evaluate_arithmetic):
        started = time.perf_counter()
        function(text)
        elapsed = time.perf_counter() - started
        assert elapsed < HANG_GUARD_S, f"{function.__name__} on {name}: {elapsed:.3f}s"
    started = time.perf_counter()
    repeated_steps(text.split("\n\n"))
    assert time.perf_counter() - started < HANG_GUARD_S


def test_evaluate_deep_nesting_is_none_without_recursion_error() -> None:
    for depth in (33, 200, 900):
        assert evaluate_arithmetic("(" * depth + "1" + ")" * depth) is None
        assert evaluate_arithmetic("{" * depth + "1" + "}" * depth) is None


def test_is_pure_stdlib() -> None:
    """The step checks and the modules they are built from import the standard library and each other only."""
    import verl_pdai.core.arithmetic as arithmetic
    import verl_pdai.core.claims as claims
    import verl_pdai.core.quantities as quantities

    stdlib = {"__future__", "heapq", "math", "re", "collections", "dataclasses", "fractions"}
    parts = {"verl_pdai.core.arithmetic", "verl_pdai.core.claims", "verl_pdai.core.quantities"}
    for module in (checks_module, arithmetic, claims, quantities):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        outside = {name for name in imported if name not in parts and name.split(".")[0] not in stdlib}
        assert not outside, f"{module.__name__} imports {outside}"
