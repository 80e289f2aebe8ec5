"""The "sum chains" task family of the learning benchmark. Pure: imports no verl, no torch (pyarrow only inside
``write_parquet``).

A problem adds ``n`` single-digit operands (1..9), ``n`` in {2, 3, 4, 5}; its kind is ``f"sum{n}"``::

    Add the numbers 3, 5, 8 and 2. Let's think step by step and output the final answer within \\boxed{}.

Its reference solution is the chain of running sums, one step per addition, then the answer step, joined by
"\\n\\n"::

    3 + 5 = 8.        8 + 8 = 16.        16 + 2 = 18.        The answer is $\\boxed{18}$.

Splits are drawn per kind from a stream seeded by (seed, n) and hold distinct operand tuples: train first, then
held-out, so they are disjoint; the teaching set (``teaching_problems``) comes from a stream of its own and skips
every tuple it is told to exclude (train + held-out). ``problem_id`` is ``"sum<n>-<operands>"`` (``sum3-3-5-8``):
unique per tuple, and it carries the kind (``kind_of``).

Rows follow ``verl_pdai.data.io.verl_row_schema()`` exactly: that schema has no ``kind`` field (the kind is in
``problem_id``, see ``kind_of``), and ``level`` is null: every row has the same neutral prior
``pdai_prior = {"alpha": 1, "beta": 1}``, so nothing about a problem's difficulty is planted in the data; the store
has to find it out from the model's attempts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."  # as demo/problems.py
DATA_SOURCE = "pdai_sumchain"
SIZES = (2, 3, 4, 5)
KINDS = tuple(f"sum{n}" for n in SIZES)
DIGITS = tuple(range(1, 10))
NEUTRAL_PRIOR = {"alpha": 1.0, "beta": 1.0}
_MAX_DRAWS = 200_000  # rejection-sampling bound per draw (a space too small to hold the request fails, not spins)


@dataclass(frozen=True)
class SumProblem:
    operands: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.operands) not in SIZES or any(d not in DIGITS for d in self.operands):
            raise ValueError(f"a sum chain adds 2..5 digits 1..9, got {self.operands!r}")

    @property
    def n(self) -> int:
        return len(self.operands)

    @property
    def kind(self) -> str:
        return f"sum{self.n}"

    @property
    def problem_id(self) -> str:
        return f"{self.kind}-" + "-".join(str(d) for d in self.operands)

    @property
    def question(self) -> str:
        *head, last = (str(d) for d in self.operands)
        return f"Add the numbers {', '.join(head)} and {last}."

    @property
    def prompt(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{self.question} {INSTRUCTION}"}]

    @property
    def answer(self) -> str:
        return str(sum(self.operands))

    @property
    def steps(self) -> list[str]:
        out, total = [], self.operands[0]
        for d in self.operands[1:]:
            out.append(f"{total} + {d} = {total + d}.")
            total += d
        out.append(f"The answer is $\\boxed{{{total}}}$.")
        return out

    @property
    def reference_solution(self) -> str:
        return "\n\n".join(self.steps)


def kind_of(problem_id: str) -> str:
    """The kind of a problem id (``"sum3-3-5-8"`` -> ``"sum3"``)."""
    return str(problem_id).split("-", 1)[0]


def _per_kind(total: int) -> dict[int, int]:
    """``total`` spread over the kinds as evenly as possible (the first kinds take the remainder)."""
    base, extra = divmod(int(total), len(SIZES))
    return {n: base + (i < extra) for i, n in enumerate(SIZES)}


def _draw(rng: random.Random, n: int, count: int, taken: set[tuple[int, ...]]) -> list[SumProblem]:
    """``count`` new operand tuples of length ``n`` (added to ``taken``), in draw order."""
    out: list[SumProblem] = []
    for _ in range(_MAX_DRAWS):
        if len(out) >= count:
            break
        ops = tuple(rng.choice(DIGITS) for _ in range(n))
        if ops not in taken:
            taken.add(ops)
            out.append(SumProblem(ops))
    if len(out) < count:
        raise ValueError(f"cannot draw {count} distinct sum{n} problems (only {len(out)} left)")
    return out


def generate_problems(
    seed: int, train_size: int = 48, heldout_size: int = 32
) -> tuple[list[SumProblem], list[SumProblem]]:
    """(train, held-out): sizes spread evenly over the four kinds, disjoint operand tuples, ordered by kind."""
    train_counts, heldout_counts = _per_kind(train_size), _per_kind(heldout_size)
    train: list[SumProblem] = []
    heldout: list[SumProblem] = []
    for n in SIZES:
        rng = random.Random(f"pdai-sumchain:{seed}:{n}")
        taken: set[tuple[int, ...]] = set()
        train += _draw(rng, n, train_counts[n], taken)
        heldout += _draw(rng, n, heldout_counts[n], taken)
    return train, heldout


def teaching_problems(
    seed: int,
    per_kind: Mapping[int, int | None],
    exclude: Iterable[SumProblem],
    *,
    first_step_cover: int = 1,
) -> list[SumProblem]:
    """Problems to teach from, disjoint from ``exclude`` (pass train + held-out).

    ``per_kind``: n -> how many (None: every tuple of that size left, only sensible for n = 2), drawn in order of n.
    Then every ordered digit pair (a, b) that no drawn problem starts with gets ``first_step_cover`` sum3 problems
    ``(a, b, x)`` (x drawn): every single-digit addition fact occurs in some taught first
    step (the way a base LLM knows its one-digit sums), while no train or held-out tuple is taught.
    """
    taken = {tuple(p.operands) for p in exclude}
    out: list[SumProblem] = []
    for n in sorted(per_kind):
        if n not in SIZES:
            raise ValueError(f"no sum{n} kind (sizes are {SIZES})")
        count = per_kind[n]
        rng = random.Random(f"pdai-sumchain-teach:{seed}:{n}")
        if count is None:
            left = [ops for ops in _all_tuples(n) if ops not in taken]
            rng.shuffle(left)
            taken.update(left)
            out += [SumProblem(ops) for ops in left]
        else:
            out += _draw(rng, n, int(count), taken)
    rng = random.Random(f"pdai-sumchain-cover:{seed}")
    started = {p.operands[:2] for p in out}
    for a in DIGITS:
        for b in DIGITS:
            missing = 0 if (a, b) in started else int(first_step_cover)
            thirds = [x for x in DIGITS if (a, b, x) not in taken]
            if missing > len(thirds):
                raise ValueError(f"not enough sum3 problems starting with {a} + {b} are left to teach")
            for x in rng.sample(thirds, missing):
                taken.add((a, b, x))
                out.append(SumProblem((a, b, x)))
    return out


def _all_tuples(n: int) -> list[tuple[int, ...]]:
    tuples: list[tuple[int, ...]] = [()]
    for _ in range(n):
        tuples = [t + (d,) for t in tuples for d in DIGITS]
    return tuples


def verl_row(problem: SumProblem, index: int, split: str = "train") -> dict[str, Any]:
    """One row in the project's one verl schema (``verl_pdai.data.io.verl_row_schema``)."""
    return {
        "data_source": DATA_SOURCE,
        "prompt": problem.prompt,
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {
            "split": split,
            "index": int(index),
            "problem_id": problem.problem_id,
            "reference_solution": problem.reference_solution,
            "level": None,  # no difficulty label: the kind is in problem_id, the prior is neutral
            "answers": [problem.answer],
            "pdai_prior": dict(NEUTRAL_PRIOR),
            "reference_source": None,  # the reference is the task's own (not backfilled)
            "reference_provenance": None,
        },
    }


def write_parquet(
    problems: Sequence[SumProblem], path: Path, split: str = "train", without_reference: Sequence[int] = ()
) -> Path:
    """The problems as a verl parquet file in ``verl_row_schema()`` (the data pipeline's own writer: unknown keys
    fail, the schema is explicit, the write is atomic). Rows at ``without_reference`` carry no reference solution
    (as most rows of a public data set: the hint then has to come from somewhere else)."""
    from verl_pdai.data.io import write_parquet as write_rows

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [verl_row(p, i, split) for i, p in enumerate(problems)]
    for index in without_reference:
        rows[index]["extra_info"]["reference_solution"] = ""
    write_rows(rows, path)
    return path


def rows_without_reference(count: int, share_with_reference: float, seed: int) -> list[int]:
    """Which of ``count`` rows lose their reference so that ``share_with_reference`` of them keep one: drawn by
    ``seed``, the same rows for every method of a seed."""
    keep = round(count * share_with_reference)
    order = random.Random(f"references-{seed}").sample(range(count), count)
    return sorted(order[keep:])
