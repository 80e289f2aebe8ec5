"""Routing decisions: per-problem records, the calibrated threshold and what it gives on the held-out split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from verl_pdai.confidence.inputs import ProblemInput
from verl_pdai.confidence.selective import (
    CoveragePoint,
    SelectiveStats,
    choose_threshold,
    coverage_curve,
    in_calibration,
    selective_stats,
)
from verl_pdai.core.confidence import ProblemConfidence

__all__ = ["DEFAULT_THRESHOLD", "ProblemRecord", "ThresholdDecision", "decide_threshold", "needs_review"]

# Used only when no threshold can be calibrated (no ground truths) and none is given: review answers that fewer
# than half of the weighted votes support.
DEFAULT_THRESHOLD = 0.5
CALIBRATION = "calibration"
EVALUATION = "evaluation"


@dataclass
class ProblemRecord:
    source: ProblemInput
    result: ProblemConfidence
    split: str  # CALIBRATION | EVALUATION

    def to_dict(self) -> dict[str, object]:
        r = self.result
        return {
            "problem_id": self.source.problem_id,
            "benchmark": self.source.benchmark,
            "confidence": r.confidence,
            "answer": r.answer,
            "agreement": r.agreement,
            "step_factor": r.step_factor,
            "k": r.k,
            "answered": r.answered,
            "num_clusters": len(r.clusters),
            "correct": r.correct,
            "split": self.split,
            "candidates": [c.to_dict() for c in r.clusters],
            "equivalence_budget_exhausted": r.budget_exhausted,
            "notes": list(self.source.notes),
        }


@dataclass(frozen=True)
class ThresholdDecision:
    threshold: float | None  # accept confidence >= threshold; None: nothing reaches the target, review everything
    source: str  # "calibration" | "manual" | "default"
    target_accuracy: float
    reached: bool | None  # the target was reached on the calibration split (None: not calibrated)
    calibration: SelectiveStats | None  # what the threshold gives on each labeled split
    evaluation: SelectiveStats | None
    labeled: SelectiveStats | None
    note: str

    def to_dict(self) -> dict[str, object]:
        def stats(s: SelectiveStats | None) -> dict[str, object] | None:
            return s.to_dict() if s is not None else None

        return {
            "threshold": self.threshold,
            "source": self.source,
            "target_accuracy": self.target_accuracy,
            "reached_on_calibration": self.reached,
            "calibration": stats(self.calibration),
            "evaluation": stats(self.evaluation),
            "all_labeled": stats(self.labeled),
            "note": self.note,
        }


def assign_splits(
    sources: Sequence[ProblemInput], results: Sequence[ProblemConfidence], fraction: float, seed: int
) -> list[ProblemRecord]:
    return [
        ProblemRecord(s, r, CALIBRATION if in_calibration(s.problem_id, fraction, seed) else EVALUATION)
        for s, r in zip(sources, results, strict=True)
    ]


def labeled_curve(records: Sequence[ProblemRecord], split: str | None = None) -> list[CoveragePoint]:
    """Accuracy-coverage curve of the labeled problems (of one split, or all)."""
    chosen = [r.result for r in records if r.result.correct is not None and (split is None or r.split == split)]
    return coverage_curve([r.confidence for r in chosen], [bool(r.correct) for r in chosen])


def _stats(records: Sequence[ProblemRecord], threshold: float | None, split: str | None) -> SelectiveStats | None:
    chosen = [r.result for r in records if r.result.correct is not None and (split is None or r.split == split)]
    if not chosen:
        return None
    return selective_stats([r.confidence for r in chosen], [bool(r.correct) for r in chosen], threshold)


def decide_threshold(
    records: Sequence[ProblemRecord], target_accuracy: float, manual: float | None = None
) -> ThresholdDecision:
    """Lowest calibration-split threshold whose accepted answers reach ``target_accuracy`` (largest coverage)."""
    note = ""
    reached: bool | None = None
    if manual is not None:
        threshold, source = manual, "manual"
    elif not any(r.result.correct is not None for r in records):
        threshold, source = DEFAULT_THRESHOLD, "default"
        note = (
            "no ground truths: the accuracy-coverage curve and a calibrated threshold need them; "
            f"the review uses the default threshold {DEFAULT_THRESHOLD} (set one with --threshold)"
        )
    else:
        curve = labeled_curve(records, CALIBRATION)
        if not curve:
            threshold, source = DEFAULT_THRESHOLD, "default"
            note = "no labeled problem fell in the calibration split: raise --calibration-fraction or add problems"
        else:
            point = choose_threshold(curve, target_accuracy)
            source = "calibration"
            reached = point is not None
            threshold = point.threshold if point is not None else None
            if point is None:
                note = "no threshold reaches the target accuracy on the calibration split: every problem is reviewed"
    return ThresholdDecision(
        threshold=threshold,
        source=source,
        target_accuracy=target_accuracy,
        reached=reached,
        calibration=_stats(records, threshold, CALIBRATION),
        evaluation=_stats(records, threshold, EVALUATION),
        labeled=_stats(records, threshold, None),
        note=note,
    )


def needs_review(record: ProblemRecord, threshold: float | None) -> bool:
    return threshold is None or record.result.confidence < threshold
