"""From raw problems to verl rows: dedupe, decontamination, difficulty priors, counts. Pure (no I/O, no verl).

verl row (docs/data.md): ``data_source``, ``prompt`` (one user message: the problem + DeepScaleR's instruction),
``ability``, ``reward_model`` {``style``, ``ground_truth`` (the first accepted answer, always a string)},
``extra_info`` {``split``, ``index``, ``problem_id``, ``reference_solution``, ``level`` (null without one),
``answers`` (every accepted answer, the ground truth first), ``pdai_prior`` ({alpha, beta}, null without a level),
``reference_source`` and ``reference_provenance`` (null here; ``backfill-references`` sets them, see ``references``)}.

Every file, train and benchmarks alike, has these same keys with the same types (``io.verl_row_schema()``): verl
concatenates ``data.val_files`` with ``datasets.concatenate_datasets``, which fails when one file's column has
another type (a list ground truth next to a string one).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from verl_pdai.data.sources import Adapter, RawProblem

INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."
PRIOR_STRENGTH = 4.0  # pseudo-trials: a level sets the start, a few real attempts outweigh it
LEVEL_SUCCESS = {1: 0.8, 2: 0.65, 3: 0.5, 4: 0.35, 5: 0.2}  # prior success rate of a 1.5B model by MATH level

_LATEX_SPACING = re.compile(r"\\[,;:! ]|\\(?:left|right|displaystyle|quad|qquad)\b|\$")
_PUNCTUATION = re.compile(r"[.,;:!?'\"`]")
_SPACE = re.compile(r"\s+")


def normalized_problem(text: str) -> str:
    """The text two copies of a problem share: lowercase, no LaTeX spacing or $, no punctuation, one space."""
    text = _LATEX_SPACING.sub(" ", text.lower())
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def level_prior(level: int | None) -> dict[str, float] | None:
    """Beta prior of the success rate for a source level: mean ``LEVEL_SUCCESS[level]``, ``PRIOR_STRENGTH``
    pseudo-trials; None without a level (the store's own default or per-source prior applies)."""
    if level not in LEVEL_SUCCESS:
        return None
    mean = LEVEL_SUCCESS[level]
    return {"alpha": PRIOR_STRENGTH * mean, "beta": PRIOR_STRENGTH * (1.0 - mean)}


@dataclass
class SetReport:
    """What happened to one data set's rows."""

    name: str
    read: int = 0
    written: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> rows
    with_solution: int = 0
    solutions_dropped_too_long: int = 0
    with_prior: int = 0
    decontaminated: Counter = field(default_factory=Counter)  # benchmark -> training rows removed

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "written": self.written,
            "dropped": dict(sorted(self.dropped.items())),
            "decontaminated": dict(sorted(self.decontaminated.items())),
            "with_solution": self.with_solution,
            "solution_coverage": self.with_solution / self.written if self.written else 0.0,
            "solutions_dropped_too_long": self.solutions_dropped_too_long,
            "with_prior": self.with_prior,
        }


def adapt_rows(
    name: str, adapter: Adapter, raw_rows: Iterable[Mapping[str, object]], report: SetReport
) -> list[RawProblem]:
    """Adapt every raw row; rows that cannot be used and repeats of a problem are dropped and counted."""
    problems: list[RawProblem] = []
    seen: set[str] = set()
    for index, row in enumerate(raw_rows):
        report.read += 1
        result = adapter(row, index)
        if isinstance(result, str):
            report.dropped[result] += 1
            continue
        key = normalized_problem(result.problem)
        if key in seen:
            report.dropped["duplicate"] += 1
            continue
        seen.add(key)
        report.solutions_dropped_too_long += result.solution_too_long
        problems.append(result)
    return problems


def decontaminate(
    train: list[RawProblem], eval_sets: Mapping[str, list[RawProblem]], report: SetReport
) -> list[RawProblem]:
    """Training problems whose normalized text equals an evaluation problem's are removed (counted per benchmark)."""
    owner: dict[str, str] = {}
    for name, problems in eval_sets.items():
        for problem in problems:
            owner.setdefault(normalized_problem(problem.problem), name)
    kept = []
    for problem in train:
        benchmark = owner.get(normalized_problem(problem.problem))
        if benchmark is None:
            kept.append(problem)
        else:
            report.decontaminated[benchmark] += 1
    return kept


def verl_rows(name: str, problems: list[RawProblem], split: str, report: SetReport) -> list[dict[str, object]]:
    """verl rows with unique problem ids ``<name>/<source id>`` (a repeated source id gets ``#2``, ``#3``)."""
    rows = []
    used: Counter = Counter()
    for index, problem in enumerate(problems):
        base = f"{name}/{problem.source_id}"
        used[base] += 1
        problem_id = base if used[base] == 1 else f"{base}#{used[base]}"
        # every key in every row, null where a source lacks it: a key present in some files only is a column
        # the others lack, and datasets cannot concatenate them
        prior = level_prior(problem.level)
        extra: dict[str, object] = {
            "split": split,
            "index": index,
            "problem_id": problem_id,
            "reference_solution": problem.solution,
            "level": problem.level,
            "answers": list(problem.answers),
            "pdai_prior": prior,
            "reference_source": None,  # the source's own reference (or none); backfill-references sets it
            "reference_provenance": None,
        }
        report.with_prior += prior is not None
        report.with_solution += bool(problem.solution)
        rows.append(
            {
                "data_source": name,
                "prompt": [{"role": "user", "content": f"{problem.problem} {INSTRUCTION}"}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": problem.answers[0]},
                "extra_info": extra,
            }
        )
    report.written = len(rows)
    return rows
