"""Tests for verl_pdai.core.steps: segmentation rules, span invariants, stability, bounds."""

from __future__ import annotations

import ast
import dataclasses
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bounds import HANG_GUARD_S
from verl_pdai.core import steps as steps_module
from verl_pdai.core.steps import MAX_DISPLAY_CHARS, Step, segment_steps


def texts_of(text: str, **kwargs: int) -> list[str]:
    return [step.text for step in segment_steps(text, **kwargs)]


def assert_invariants(text: str, steps: list[Step]) -> None:
    """Increasing, non-overlapping, trimmed, exact slices, covering every non-whitespace character."""
    previous_end = 0
    covered = bytearray(len(text))
    for i, step in enumerate(steps):
        assert step.index == i
        assert previous_end <= step.start < step.end <= len(text)
        assert text[step.start : step.end] == step.text
        assert step.text == step.text.strip() and step.text
        covered[step.start : step.end] = b"\x01" * (step.end - step.start)
        previous_end = step.end
    assert all(covered[k] or text[k].isspace() for k in range(len(text)))


# ------------------------------------------------------------------------------------------ rule table

SEGMENTATION_CASES = [
    # (id, text, expected step texts)
    ("empty", "", []),
    ("whitespace only", " \n\t\r\n  \n", []),
    ("one line", "Just one line of reasoning.", ["Just one line of reasoning."]),
    ("trimmed", "   padded line \t \n\n", ["padded line"]),
    (
        "blank lines",
        "First paragraph.\n\nSecond paragraph.\n\n\nThird.",
        ["First paragraph.", "Second paragraph.", "Third."],
    ),
    ("blank line with spaces", "a\n   \t\nb", ["a", "b"]),
    ("unstructured lines", "compute a\ncompute b\ncompute c", ["compute a", "compute b", "compute c"]),
    ("crlf paragraphs", "one\r\n\r\ntwo\r\nthree\r\n", ["one", "two", "three"]),
    (
        "step headings plain",
        "Step 1: add\nthe numbers\nStep 2: check",
        ["Step 1: add\nthe numbers", "Step 2: check"],
    ),
    (
        "step headings bold",
        "**Step 1:** Factor.\nWe get (x-1)(x-2).\n**Step 2:** Solve.\nx = 1 or x = 2.",
        ["**Step 1:** Factor.\nWe get (x-1)(x-2).", "**Step 2:** Solve.\nx = 1 or x = 2."],
    ),
    (
        "step headings markdown",
        "### Step 1\nSet up.\n### Step 2\nFinish.",
        ["### Step 1\nSet up.", "### Step 2\nFinish."],
    ),
    ("lowercase step", "step 3 divide\nby two", ["step 3 divide\nby two"]),
    ("markdown heading", "## Solution\nWe start.\n## Answer\n42", ["## Solution\nWe start.", "## Answer\n42"]),
    (
        "heading section ends at blank line",
        "**Step 1:** A\nB\n\nC\nD",
        ["**Step 1:** A\nB", "C", "D"],
    ),
    (
        "numbered list dot",
        "Plan:\n1. Expand.\n   carefully\n2. Collect terms.\n3. Solve.",
        ["Plan:", "1. Expand.\n   carefully", "2. Collect terms.", "3. Solve."],
    ),
    ("numbered list paren", "1) first\n2) second", ["1) first", "2) second"]),
    ("numbered list parenthesised", "(1) first\n(2) second\nmore", ["(1) first", "(2) second\nmore"]),
    ("decimal is not a list item", "Step 1: value\n1.5 is the ratio", ["Step 1: value\n1.5 is the ratio"]),
    ("step mid-line is not a boundary", "We do Step 2: now", ["We do Step 2: now"]),
    (
        "dollar display not split",
        "We have\n$$\na = 1\n\nb = 2\n$$\nso done",
        ["We have", "$$\na = 1\n\nb = 2\n$$", "so done"],
    ),
    (
        "bracket display not split",
        "Compute:\n\\[\n3 + 4\n\n= 7\n\\]\nNext.",
        ["Compute:", "\\[\n3 + 4\n\n= 7\n\\]", "Next."],
    ),
    (
        "align star not split",
        "\\begin{align*}\nx &= 1 \\\\\n\ny &= 2\n\\end{align*}\nafter",
        ["\\begin{align*}\nx &= 1 \\\\\n\ny &= 2\n\\end{align*}", "after"],
    ),
    (
        "equation not split",
        "\\begin{equation}\nE = mc^2\n\n\\end{equation}",
        ["\\begin{equation}\nE = mc^2\n\n\\end{equation}"],
    ),
    (
        "gather not split",
        "\\begin{gather}\na\n\n1. b\n\\end{gather}\nc",
        ["\\begin{gather}\na\n\n1. b\n\\end{gather}", "c"],
    ),
    (
        "display block mid-line takes the whole line",
        "so $$x\n\ny$$ and more\nnext",
        ["so $$x\n\ny$$ and more", "next"],
    ),
    (
        "display inside heading section",
        "Step 1: compute\n\\[\n1\n\n2\n\\]\nthus 3\n\nStep 2: end",
        ["Step 1: compute\n\\[\n1\n\n2\n\\]\nthus 3", "Step 2: end"],
    ),
    ("unclosed display runs to the end", "a\n\n$$ x\n\ny", ["a", "$$ x\n\ny"]),
    ("escaped dollars are not display", "costs \\$$5\n\nnext", ["costs \\$$5", "next"]),
    ("latex line break is not display", "a \\\\[2pt]\n\nb", ["a \\\\[2pt]", "b"]),
    (
        "mixed",
        "Let me think.\n\n**Step 1:** Expand $(a+b)^2$.\n$$\n(a+b)^2 = a^2 + 2ab + b^2\n$$\n\n"
        "**Step 2:** Plug in.\n1. a = 1\n2. b = 2\n\nSo the answer is $\\boxed{9}$.",
        [
            "Let me think.",
            "**Step 1:** Expand $(a+b)^2$.\n$$\n(a+b)^2 = a^2 + 2ab + b^2\n$$",
            "**Step 2:** Plug in.",
            "1. a = 1",
            "2. b = 2",
            "So the answer is $\\boxed{9}$.",
        ],
    ),
    ("nul bytes are content", "\x00\n\n\x00x", ["\x00", "\x00x"]),
    ("unicode whitespace trimmed", "\u00a0a\u2003\n\u3000\nb", ["a", "b"]),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in SEGMENTATION_CASES], ids=[c[0] for c in SEGMENTATION_CASES]
)
def test_segmentation_rules(text: str, expected: list[str]) -> None:
    steps = segment_steps(text)
    assert [s.text for s in steps] == expected
    assert_invariants(text, steps)


def test_offsets_point_into_the_original_text() -> None:
    text = "  alpha\n\n  beta gamma\r\n"
    steps = segment_steps(text)
    assert [(s.start, s.end) for s in steps] == [(2, 7), (11, 21)]


def test_stray_display_delimiter_does_not_swallow_the_text() -> None:
    text = "price $$5\n\n" + "filler line\n\n" * (MAX_DISPLAY_CHARS // 10) + "closing $$ here\n\nlast"
    steps = segment_steps(text)
    assert steps[0].text == "price $$5"
    assert steps[1].text == "filler line"
    assert len(steps) > MAX_DISPLAY_CHARS // 10
    # the second "$$" opens a block that is still open near the end: it may yet close, so it runs to the end
    assert steps[-1].text == "closing $$ here\n\nlast"


def test_display_closed_within_bound_is_one_step() -> None:
    body = "\n\n".join(f"a_{i} = {i}" for i in range(100))
    text = f"intro\n\n$$\n{body}\n$$\n\noutro"
    assert texts_of(text) == ["intro", f"$$\n{body}\n$$", "outro"]


# ------------------------------------------------------------------------------------------ max_steps


@pytest.mark.parametrize(
    ("text", "max_steps", "expected"),
    [
        ("a\nb\nc\nd", 2, ["a", "b\nc\nd"]),
        ("a\n\nb\n\nc  \n", 1, ["a\n\nb\n\nc"]),
        ("a\nb", 5, ["a", "b"]),
        ("a\nb\nc", 3, ["a", "b", "c"]),
        ("   ", 1, []),
    ],
)
def test_max_steps_merges_the_rest(text: str, max_steps: int, expected: list[str]) -> None:
    steps = segment_steps(text, max_steps=max_steps)
    assert [s.text for s in steps] == expected
    assert_invariants(text, steps)


def test_default_cap_is_512() -> None:
    text = "\n".join(f"line {i}" for i in range(2000))
    steps = segment_steps(text)
    assert len(steps) == 512
    assert steps[-1].text.startswith("line 511\n") and steps[-1].text.endswith("line 1999")


@pytest.mark.parametrize("bad", [0, -1])
def test_max_steps_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_steps"):
        segment_steps("a", max_steps=bad)


def test_step_is_frozen() -> None:
    step = segment_steps("a")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.text = "b"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ stability

STABILITY_TEXTS = [
    "Okay, so I need to find x.\n\nFirst, 3 + 4 = 7.\n\nWait, let me check.\n\nSo x = 7.",
    "**Step 1:** Set up.\nWe have $$x = 1$$\n\n**Step 2:** Solve.\n1. a\n2. b\n\nDone.",
    "We have\n\\[\n3 + 4\n\n= 7\n\\]\nthen\n\\begin{align*}\na &= b\n\\end{align*}\nend",
    "line one\nline two\nline three",
    "Step 1\nStep 12\n1. x\n12) y\n(3) z\n# h\n",
]


@pytest.mark.parametrize("text", STABILITY_TEXTS)
def test_appending_only_changes_the_last_step(text: str) -> None:
    full = segment_steps(text)
    for cut in range(len(text) + 1):
        prefix = segment_steps(text[:cut])
        keep = max(len(prefix) - 1, 0)
        assert prefix[:keep] == full[:keep], (cut, prefix, full)


def test_same_text_same_steps() -> None:
    text = STABILITY_TEXTS[1] * 3
    assert segment_steps(text) == segment_steps(str(text))


def test_hint_injection_at_paragraph_break_is_a_boundary() -> None:
    # the rollout appends a hint after "\n\n": the model's text before it must end a step
    before = "**Step 1:** We start.\nSome work 3 + 4 = 7"
    hint = "Hint: consider the parity of n."
    steps = segment_steps(before + "\n\n" + hint + "\n\nThen we go on.")
    assert [s.text for s in steps] == [before, hint, "Then we go on."]


# ---------------------------------------------------------------------------------------- properties

STRUCTURE_TOKENS = [
    "$$",
    "\\[",
    "\\]",
    "\\begin{align*}",
    "\\end{align*}",
    "\\begin{equation}",
    "\\end{equation}",
    "\n",
    "\n\n",
    " ",
    "\r\n",
    "\t",
    "Step 1:",
    "**Step 2:**",
    "### Step 3",
    "# ",
    "1. ",
    "2) ",
    "(3) ",
    "12.",
    "x = 1",
    "text",
    "\\",
    "$",
    "\x00",
    "\u2028",
    "\u00a0",
    "é",
]
structured_text = st.lists(st.sampled_from(STRUCTURE_TOKENS), max_size=60).map("".join)
any_text = structured_text | st.text(max_size=300)
no_display_text = st.lists(
    st.sampled_from([t for t in STRUCTURE_TOKENS if "$" not in t and "\\" not in t]),
    max_size=60,
).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, max_steps=st.integers(min_value=1, max_value=8))
def test_property_invariants(text: str, max_steps: int) -> None:
    for cap in (512, max_steps):
        steps = segment_steps(text, max_steps=cap)
        assert len(steps) <= cap
        assert_invariants(text, steps)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_text, cut=st.integers(min_value=0, max_value=400))
def test_property_stable_under_appending(text: str, cut: int) -> None:
    full = segment_steps(text)
    prefix = segment_steps(text[:cut])
    keep = max(len(prefix) - 1, 0)
    assert prefix[:keep] == full[:keep]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=no_display_text)
def test_property_blank_line_outside_display_math_is_a_boundary(text: str) -> None:
    for step in segment_steps(text):
        lines = step.text.split("\n")
        assert all(line.strip() for line in lines), step.text


@settings(max_examples=300)
@given(text=st.text())
def test_property_never_raises(text: str) -> None:
    segment_steps(text)
    segment_steps(text, max_steps=1)


# ---------------------------------------------------------------------------------------- adversarial

MB = 1_000_000
ADVERSARIAL = {
    "1 MB prose": "The quick brown fox jumps over the lazy dog. " * (MB // 45),
    "1 MB paragraphs": "So 3 + 4 = 7 and we continue.\n\n" * (MB // 31),
    "1 MB newlines": "\n" * MB,
    "1 MB single lines": "a\n" * (MB // 2),
    "1 MB in one heading section": "Step 1:\n" + "a\n" * (MB // 2),
    "display blocks in one section": "Step 1:\n" + "$$a\n\nb$$\n" * (MB // 10),
    "1 MB dollars": "$" * MB,
    "unclosed brackets": "\\[" * (MB // 2),
    "unclosed environments": "\\begin{align}" * (MB // 13),
    "1 MB backslashes": "\\" * MB,
    "10k nested braces": "{" * 10_000 + "1" + "}" * 10_000,
    "10k nested parens": "(" * 10_000 + "1" + ")" * 10_000,
    "1 MB NUL": "\x00" * MB,
    "1 MB no newline": "x" * MB,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_input_is_fast(name: str) -> None:
    text = ADVERSARIAL[name]
    started = time.perf_counter()
    steps = segment_steps(text)
    elapsed = time.perf_counter() - started
    assert elapsed < HANG_GUARD_S, f"{name}: {elapsed:.3f}s"
    assert len(steps) <= 512
    if len(text) <= 30_000:
        assert_invariants(text, steps)


def test_is_pure_stdlib() -> None:
    tree = ast.parse(Path(steps_module.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "re", "bisect", "dataclasses"}


# ------------------------------------------------------------------------------------ sentence splitting

SENTENCE_CASES = [
    # (id, text, expected step texts with sentences=True)
    (
        "math paragraph",
        "We have $x + y = 10$. Since $x = 3$, we get $y = 7$. Thus $xy = 21$.",
        ["We have $x + y = 10$.", "Since $x = 3$, we get $y = 7$.", "Thus $xy = 21$."],
    ),
    ("next sentence starts with math", "So $a = 2$. $b$ is odd.", ["So $a = 2$.", "$b$ is odd."]),
    ("period closing inline math", "Then $x = 3.$ Next we add.", ["Then $x = 3.$", "Next we add."]),
    ("period inside inline math", "Take $a. B$ here. Done.", ["Take $a. B$ here.", "Done."]),
    ("inline paren math", "Let \\(a. B\\) hold. Then stop.", ["Let \\(a. B\\) hold.", "Then stop."]),
    ("next sentence opens paren math", "First. \\(x\\) is big.", ["First.", "\\(x\\) is big."]),
    ("bracket display kept whole", "We get \\[x. Y\\] and so. Next.", ["We get \\[x. Y\\] and so.", "Next."]),
    ("dollar display kept whole", "so $$x. Y$$ and. More", ["so $$x. Y$$ and.", "More"]),
    (
        "multi-line display kept whole",
        "A. We see\n$$\nx. Y\n\nZ\n$$ ok. Then",
        ["A. We see", "$$\nx. Y\n\nZ\n$$ ok.", "Then"],
    ),
    ("abbreviation e.g.", "Use a trick, e.g. The one above. Done.", ["Use a trick, e.g. The one above.", "Done."]),
    ("abbreviation i.e.", "The root, i.e. The value. Next.", ["The root, i.e. The value.", "Next."]),
    ("abbreviation etc.", "Sums, products, etc. Then more.", ["Sums, products, etc. Then more."]),
    ("abbreviation Fig.", "See Fig. Two. Then.", ["See Fig. Two.", "Then."]),
    (
        "decimal",
        "The ratio is 3.5 and 2.25. Then x = 1.5. Done.",
        ["The ratio is 3.5 and 2.25.", "Then x = 1.5.", "Done."],
    ),
    ("ellipsis", "So on... Then we stop.", ["So on... Then we stop."]),
    ("lowercase next word", "It is 3. then we go.", ["It is 3. then we go."]),
    ("no space after period", "It is 3.Then", ["It is 3.Then"]),
    ("enumeration marker", "A. First option. Then.", ["A. First option.", "Then."]),
    ("escaped dollar is not math", "It costs \\$5. Then more.", ["It costs \\$5.", "Then more."]),
    ("number ends a sentence", "The total is 24. Then we halve it.", ["The total is 24.", "Then we halve it."]),
    ("lines split as before", "One. Two.\nThree. four.", ["One.", "Two.", "Three. four."]),
    (
        "heading section not split",
        "Step 1: Add. Then carry.\nStep 2: Done. Yes.",
        ["Step 1: Add. Then carry.", "Step 2: Done. Yes."],
    ),
    ("list item not split", "1. Expand. Then collect.\n2. Solve.", ["1. Expand. Then collect.", "2. Solve."]),
    ("trailing period", "Just one sentence.", ["Just one sentence."]),
    ("unicode capital", "Fin. Élan follows.", ["Fin.", "Élan follows."]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in SENTENCE_CASES], ids=[c[0] for c in SENTENCE_CASES])
def test_sentence_rules(text: str, expected: list[str]) -> None:
    steps = segment_steps(text, sentences=True)
    assert [s.text for s in steps] == expected
    assert_invariants(text, steps)


@pytest.mark.parametrize("case", SEGMENTATION_CASES, ids=[c[0] for c in SEGMENTATION_CASES])
def test_sentences_false_is_the_default(case: tuple[str, str, list[str]]) -> None:
    text = case[1]
    assert segment_steps(text, sentences=False) == segment_steps(text)


def test_math_style_reference_splits_into_sentences() -> None:
    text = (
        "Since $\\triangle ABC$ is isosceles, $\\angle B = \\angle C = 40^\\circ$. The angles sum to $180^\\circ$, "
        "so $\\angle A = 180^\\circ - 80^\\circ = 100^\\circ$. Hence the answer is $\\boxed{100}$."
    )
    assert len(segment_steps(text)) == 1
    steps = texts_of_sentences(text)
    assert len(steps) == 3
    assert steps[-1] == "Hence the answer is $\\boxed{100}$."


def texts_of_sentences(text: str, **kwargs: int) -> list[str]:
    return [step.text for step in segment_steps(text, sentences=True, **kwargs)]


@pytest.mark.parametrize(
    ("text", "max_steps", "expected"),
    [
        ("One. Two. Three.\nD\nE", 2, ["One.", "Two. Three.\nD\nE"]),
        ("One. Two. Three. Four.", 3, ["One.", "Two.", "Three. Four."]),
        ("One. Two.", 1, ["One. Two."]),
        ("One. Two.\nThree", 3, ["One.", "Two.", "Three"]),
    ],
)
def test_sentences_respect_max_steps(text: str, max_steps: int, expected: list[str]) -> None:
    steps = segment_steps(text, max_steps=max_steps, sentences=True)
    assert [s.text for s in steps] == expected
    assert_invariants(text, steps)


def test_sentences_cap_on_one_long_line() -> None:
    text = "Sentence number one is here. " * 2000
    steps = segment_steps(text, sentences=True)
    assert len(steps) == 512
    assert steps[0].text == "Sentence number one is here."
    assert steps[-1].end == len(text.rstrip())
    assert_invariants(text, steps)


SENTENCE_TOKENS = [
    *STRUCTURE_TOKENS,
    ". ",
    ".",
    " A",
    " The",
    "e.g. ",
    "3.5",
    "...",
    "\\(",
    "\\)",
    "\\$",
    ".$ ",
    "$. ",
    "\u00c9",
]
sentence_text = st.lists(st.sampled_from(SENTENCE_TOKENS), max_size=60).map("".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=sentence_text | st.text(max_size=200), max_steps=st.integers(min_value=1, max_value=8))
def test_property_sentence_invariants(text: str, max_steps: int) -> None:
    for cap in (512, max_steps):
        steps = segment_steps(text, max_steps=cap, sentences=True)
        assert len(steps) <= cap
        assert_invariants(text, steps)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=sentence_text, cut=st.integers(min_value=0, max_value=400))
def test_property_sentences_stable_under_appending(text: str, cut: int) -> None:
    full = segment_steps(text, sentences=True)
    prefix = segment_steps(text[:cut], sentences=True)
    keep = max(len(prefix) - 1, 0)
    assert prefix[:keep] == full[:keep]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=sentence_text)
def test_property_sentences_refine_the_default_steps(text: str) -> None:
    # every sentence piece lies inside one default step, and the pieces of a step span exactly that step
    coarse = segment_steps(text)
    fine = segment_steps(text, sentences=True)
    for step in coarse:
        inside = [s for s in fine if step.start <= s.start and s.end <= step.end]
        assert inside and inside[0].start == step.start and inside[-1].end == step.end
    assert sum(1 for s in fine if any(c.start <= s.start and s.end <= c.end for c in coarse)) == len(fine)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_input_is_fast_with_sentences(name: str) -> None:
    text = ADVERSARIAL[name]
    started = time.perf_counter()
    steps = segment_steps(text, sentences=True)
    elapsed = time.perf_counter() - started
    assert elapsed < HANG_GUARD_S, f"{name}: {elapsed:.3f}s"
    assert len(steps) <= 512


def test_sentence_adversarial_periods_are_fast() -> None:
    for text in ("e.g. " * 200_000, ". A" * 300_000, "$. $" * 250_000, "x." * 500_000):
        started = time.perf_counter()
        steps = segment_steps(text, sentences=True)
        assert time.perf_counter() - started < HANG_GUARD_S
        assert len(steps) <= 512
