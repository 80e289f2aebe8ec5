"""avg@k and the unbiased pass@k estimator (Chen et al. 2021), per benchmark and averaged (pure, stdlib only).

For a problem with ``n`` samples of which ``c`` are correct:

    pass@j = 1 - C(n - c, j) / C(n, j)        (probability that j samples drawn without replacement hold a correct one)
    avg@n  = c / n                            (= pass@1, the mean accuracy of the n samples)

A benchmark's value is the mean over its problems; the "average" row is the mean over benchmarks (each benchmark
weighs the same, as the published DeepScaleR table averages them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``n`` samples, ``c`` of them correct (exact integer arithmetic)."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k samples holds a correct one
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def ks_up_to(k: int) -> list[int]:
    """1, 2, 4, ... below ``k``, then ``k`` itself: the pass@j values reported for ``k`` samples."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ks, j = [], 1
    while j < k:
        ks.append(j)
        j *= 2
    ks.append(k)
    return ks


@dataclass(frozen=True)
class ProblemOutcome:
    """Verdicts of one problem's samples: True/False per sample, None where the problem has no ground truth."""

    correct: tuple[bool | None, ...]
    num_tokens: tuple[int, ...] = ()

    @property
    def scored(self) -> bool:
        return bool(self.correct) and all(v is not None for v in self.correct)


def benchmark_metrics(problems: Sequence[ProblemOutcome], k: int, max_tokens: int | None = None) -> dict[str, object]:
    """Metrics of one benchmark. Problems without a ground truth are counted but not scored.

    Values are fractions in [0, 1] (``None`` when no problem could be scored).
    """
    scored = [p for p in problems if p.scored]
    for p in scored:
        if len(p.correct) != k:
            raise ValueError(f"every problem needs k={k} samples, one has {len(p.correct)}")
    metrics: dict[str, object] = {"problems": len(problems), "scored_problems": len(scored), "samples": k}
    counts = [sum(1 for v in p.correct if v) for p in scored]
    metrics["avg_at_k"] = _mean([c / k for c in counts])
    for j in ks_up_to(k):
        metrics[f"pass_at_{j}"] = _mean([pass_at_k(k, c, j) for c in counts])
    metrics["pass_at_k"] = metrics[f"pass_at_{k}"]
    tokens = [t for p in problems for t in p.num_tokens]
    metrics["mean_tokens"] = _mean([float(t) for t in tokens])
    if max_tokens is not None:
        metrics["truncated_share"] = _mean([1.0 if t >= max_tokens else 0.0 for t in tokens])
    return metrics


def average_metrics(per_benchmark: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """Mean over benchmarks of every float metric (benchmarks weigh the same); counts are summed."""
    rows = list(per_benchmark.values())
    average: dict[str, object] = {}
    if not rows:
        return average
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        if key in ("problems", "scored_problems", "check_failures"):
            average[key] = sum(int(v) for v in values if isinstance(v, int))
        elif key == "samples":
            average[key] = values[0]
        else:
            average[key] = _mean([float(v) for v in values if isinstance(v, int | float)])
    average["benchmarks"] = len(rows)
    return average


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
