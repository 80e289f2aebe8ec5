"""Selective prediction: accuracy against coverage as a confidence threshold moves (pure, stdlib only).

A threshold t accepts every problem with confidence >= t, so problems with equal confidence are always accepted
or rejected together (ties never split). The curve has one point per distinct confidence, highest first:

    coverage(t) = |{conf >= t}| / N,   accuracy(t) = correct among {conf >= t} / |{conf >= t}|,   risk = 1 - accuracy
    AURC        = sum over points of (newly accepted / N) * risk(t)      (area under the risk-coverage steps)
    oracle AURC = the same for a ranking that puts every correct answer first;  E-AURC = AURC - oracle AURC
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CoveragePoint",
    "SelectiveStats",
    "aurc",
    "choose_threshold",
    "coverage_curve",
    "in_calibration",
    "oracle_aurc",
    "read_coverage_csv",
    "selective_stats",
    "write_coverage_csv",
]

_EPS = 1e-12  # float slack when comparing an accuracy with the target
CSV_FIELDS = ("threshold", "accepted", "total", "correct", "coverage", "accuracy", "risk")


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # accept conf >= threshold
    accepted: int
    total: int
    correct: int  # correct among the accepted

    @property
    def coverage(self) -> float:
        return self.accepted / self.total if self.total else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.accepted if self.accepted else 1.0

    @property
    def risk(self) -> float:
        return 1.0 - self.accuracy


@dataclass(frozen=True)
class SelectiveStats:
    """What one threshold gives on a set of labeled problems."""

    problems: int
    accepted: int
    correct: int

    @property
    def coverage(self) -> float | None:
        return self.accepted / self.problems if self.problems else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.accepted if self.accepted else None

    def to_dict(self) -> dict[str, object]:
        return {
            "problems": self.problems,
            "accepted": self.accepted,
            "correct": self.correct,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
        }


def coverage_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[CoveragePoint]:
    """One point per distinct confidence, threshold descending (coverage non-decreasing along the list)."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness labels")
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    total = len(order)
    points: list[CoveragePoint] = []
    accepted = right = 0
    for position, index in enumerate(order):
        accepted += 1
        right += bool(correct[index])
        last_of_tie = position + 1 == total or confidences[order[position + 1]] != confidences[index]
        if last_of_tie:
            points.append(CoveragePoint(float(confidences[index]), accepted, total, right))
    return points


def aurc(points: Sequence[CoveragePoint]) -> float | None:
    """Area under the risk-coverage curve (lower is better); None for an empty curve."""
    if not points:
        return None
    area = 0.0
    previous = 0
    for point in points:
        area += (point.accepted - previous) / point.total * point.risk
        previous = point.accepted
    return area


def oracle_aurc(total: int, correct: int) -> float | None:
    """AURC of the best possible ranking (all correct answers first), with one problem accepted per step."""
    if total <= 0:
        return None
    return sum((i - correct) / i for i in range(correct + 1, total + 1)) / total


def choose_threshold(points: Sequence[CoveragePoint], target_accuracy: float) -> CoveragePoint | None:
    """The point of largest coverage (lowest threshold) whose accuracy reaches the target; None if none does."""
    reaching = [p for p in points if p.accepted and p.accuracy >= target_accuracy - _EPS]
    return max(reaching, key=lambda p: p.accepted) if reaching else None


def selective_stats(confidences: Sequence[float], correct: Sequence[bool], threshold: float | None) -> SelectiveStats:
    """Problems, accepted and correct-accepted at ``threshold`` (None accepts nothing)."""
    accepted = right = 0
    for confidence, is_correct in zip(confidences, correct, strict=True):
        if threshold is not None and confidence >= threshold:
            accepted += 1
            right += bool(is_correct)
    return SelectiveStats(len(confidences), accepted, right)


def in_calibration(problem_id: str, fraction: float, seed: int = 0) -> bool:
    """Deterministic split: a problem is in the calibration part when its id's hash falls below ``fraction``."""
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode("utf-8", errors="replace")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def write_coverage_csv(points: Sequence[CoveragePoint], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for p in points:
            writer.writerow(
                [p.threshold, p.accepted, p.total, p.correct, f"{p.coverage:.6f}", f"{p.accuracy:.6f}", f"{p.risk:.6f}"]
            )


def read_coverage_csv(path: Path) -> list[CoveragePoint]:
    """The curve written to ``coverage.csv`` (what the report draws)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [
            CoveragePoint(float(row["threshold"]), int(row["accepted"]), int(row["total"]), int(row["correct"]))
            for row in csv.DictReader(handle)
        ]
