"""The demo's sample problems and their rows in verl's training schema. Pure: imports no verl, no torch.

``verl_pdai/samples/demo_problems.jsonl`` holds eight small original problems with a four-step reference solution
each. ``tier`` says what the demo teaches its tiny model (see ``lessons.py``): ``easy`` problems are solved
unassisted, ``tricky`` and ``hard`` ones are not (the model writes a wrong guess) until a hint is injected. The
``level`` is what a data source would say about a problem; it becomes the row's ``extra_info.pdai_prior``, so a
``tricky`` problem looks easier to the store than it is for the model: its preview has to show otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBLEMS_FILE = Path(__file__).resolve().parent.parent / "samples" / "demo_problems.jsonl"
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
DATA_SOURCE = "pdai_demo"
TIERS = ("easy", "tricky", "hard")
# source level -> Beta prior of the unassisted success rate (what a data set with levels would give the store)
LEVEL_PRIORS: dict[int, tuple[float, float]] = {
    1: (3.0, 1.0),
    2: (2.0, 1.0),
    3: (1.0, 1.0),
    4: (1.0, 2.0),
    5: (1.0, 3.0),
}


@dataclass(frozen=True)
class DemoProblem:
    problem_id: str
    tier: str
    level: int
    question: str
    answer: str
    reference_solution: str
    wrong_answer: str

    @property
    def prompt(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{self.question} {INSTRUCTION}"}]

    @property
    def kind(self) -> str:
        return self.tier  # what the learning benchmark's evaluator groups by

    @property
    def prior(self) -> tuple[float, float]:
        return LEVEL_PRIORS[self.level]

    @property
    def steps(self) -> list[str]:
        return self.reference_solution.split("\n\n")


def load_problems(path: Path = PROBLEMS_FILE) -> list[DemoProblem]:
    """The problems of a demo JSONL file; a malformed row fails with its line number."""
    problems: list[DemoProblem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            problem = DemoProblem(**json.loads(line))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: not a demo problem row ({exc})") from None
        if problem.tier not in TIERS or problem.level not in LEVEL_PRIORS:
            raise ValueError(f"{path}:{number}: tier must be one of {TIERS} and level one of {sorted(LEVEL_PRIORS)}")
        problems.append(problem)
    ids = [p.problem_id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate problem ids")
    return problems


def verl_row(problem: DemoProblem, index: int, split: str = "train") -> dict[str, Any]:
    """One row in verl's RL data schema, as the project's data preparation writes it."""
    alpha, beta = problem.prior
    return {
        "data_source": DATA_SOURCE,
        "prompt": problem.prompt,
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {
            "split": split,
            "index": index,
            "problem_id": problem.problem_id,
            "reference_solution": problem.reference_solution,
            "pdai_prior": {"alpha": alpha, "beta": beta},
            "level": problem.level,
            "source": problem.tier,
        },
    }


def write_parquet(problems: list[DemoProblem], path: Path, split: str = "train") -> Path:
    """The problems as a verl parquet file (pandas/pyarrow are imported here, not at module import)."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([verl_row(p, i, split) for i, p in enumerate(problems)]).to_parquet(path)
    return path
