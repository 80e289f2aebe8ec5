"""The files of ``--out`` (format fixed in INTERFACES.md) and the terminal table.

* ``samples.jsonl``: one line per problem: benchmark, problem_id, problem, ground_truth, responses, correct,
  extracted, num_tokens (k entries each).
* ``summary.json``: model, k, temperature, top_p, max_tokens, benchmarks {name: metrics}, average {metrics}.
* ``summary.csv``: one row per benchmark, then "average".
Metric values are fractions in [0, 1]; the table prints percent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from verl_pdai.evaluation.checking import Verdict
from verl_pdai.evaluation.data import EvalProblem


@dataclass(frozen=True)
class ProblemRecord:
    problem: EvalProblem
    responses: list[str]
    num_tokens: list[int]
    verdicts: list[Verdict]

    def to_json(self) -> dict[str, object]:
        return {
            "benchmark": self.problem.benchmark,
            "problem_id": self.problem.problem_id,
            "problem": self.problem.problem,
            "ground_truth": self.problem.ground_truth,
            "responses": self.responses,
            "correct": [v.correct for v in self.verdicts],
            "extracted": [v.extracted for v in self.verdicts],
            "num_tokens": self.num_tokens,
        }


def write_samples(path: Path, records: Sequence[ProblemRecord]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")


def write_summary(path: Path, summary: Mapping[str, object]) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def write_csv(path: Path, per_benchmark: Mapping[str, Mapping[str, object]], average: Mapping[str, object]) -> None:
    rows = [{"benchmark": name, **metrics} for name, metrics in per_benchmark.items()]
    rows.append({"benchmark": "average", **average})
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})


def _percent(value: object) -> str:
    return f"{100 * value:6.1f}" if isinstance(value, int | float) else f"{'-':>6}"


def format_table(per_benchmark: Mapping[str, Mapping[str, object]], average: Mapping[str, object], k: int) -> str:
    """Benchmarks as rows: problems, avg@k, pass@k (percent), mean response tokens."""
    header = f"{'benchmark':<16} {'problems':>8} {f'avg@{k}':>7} {f'pass@{k}':>7} {'tokens':>8}"
    lines = [header, "-" * len(header)]
    for name, metrics in [*per_benchmark.items(), ("average", average)]:
        tokens = metrics.get("mean_tokens")
        shown_tokens = f"{tokens:8.0f}" if isinstance(tokens, int | float) else f"{'-':>8}"
        lines.append(
            f"{name:<16} {metrics.get('problems', 0):>8} {_percent(metrics.get('avg_at_k')):>7} "
            f"{_percent(metrics.get('pass_at_k')):>7} {shown_tokens}"
        )
    return "\n".join(lines)
