"""Accuracy against coverage, AURC, the calibration split and the threshold search."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from verl_pdai.confidence.inputs import ProblemInput
from verl_pdai.confidence.routing import CALIBRATION, EVALUATION, ProblemRecord, decide_threshold
from verl_pdai.confidence.selective import (
    aurc,
    choose_threshold,
    coverage_curve,
    in_calibration,
    oracle_aurc,
    read_coverage_csv,
    selective_stats,
    write_coverage_csv,
)
from verl_pdai.core.confidence import ProblemConfidence


@pytest.mark.parametrize("seed", range(20))
def test_coverage_grows_as_the_threshold_falls(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 60)
    confidences = [rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, rng.random()]) for _ in range(n)]
    correct = [rng.random() < 0.6 for _ in range(n)]
    points = coverage_curve(confidences, correct)
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(set(confidences), reverse=True)  # one point per distinct confidence
    coverages = [p.coverage for p in points]
    assert all(a < b for a, b in zip(coverages, coverages[1:], strict=False))
    assert points[-1].accepted == n and points[-1].correct == sum(correct)
    for p in points:  # ties accepted together: exactly the problems at or above the threshold
        assert p.accepted == sum(c >= p.threshold for c in confidences)


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_never_rises_when_confidence_ranks_correct_first(seed):
    rng = random.Random(seed)
    n_right, n_wrong = rng.randint(0, 30), rng.randint(0, 30)
    confidences = [rng.uniform(0.5, 1.0) for _ in range(n_right)] + [rng.uniform(0.0, 0.49) for _ in range(n_wrong)]
    correct = [True] * n_right + [False] * n_wrong
    accuracies = [p.accuracy for p in coverage_curve(confidences, correct)]
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:], strict=False))
    curve = coverage_curve(confidences, correct)
    if curve:  # a perfect ranking is the oracle
        assert aurc(curve) == pytest.approx(oracle_aurc(n_right + n_wrong, n_right))


def test_ties_never_split():
    points = coverage_curve([0.5, 0.5, 0.5, 0.9], [True, False, False, True])
    assert [(p.threshold, p.accepted, p.correct) for p in points] == [(0.9, 1, 1), (0.5, 4, 2)]
    # the order of tied items does not change the curve
    assert coverage_curve([0.5, 0.9, 0.5, 0.5], [False, True, False, True]) == points


def test_aurc_by_hand():
    points = coverage_curve([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    # risks at coverage 1/4..4/4: 0, 1/2, 1/3, 1/2
    assert aurc(points) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    # best ranking of 2 right, 2 wrong: risks 0, 0, 1/3, 1/2
    assert oracle_aurc(4, 2) == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert aurc([]) is None and oracle_aurc(0, 0) is None
    with pytest.raises(ValueError):
        coverage_curve([0.1], [True, False])


CALIBRATION_SET = [(0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.5, True), (0.4, False)]


def test_threshold_search_by_hand():
    points = coverage_curve([c for c, _ in CALIBRATION_SET], [r for _, r in CALIBRATION_SET])
    # accuracies going down: 1/1, 2/2, 2/3, 3/4, 4/5, 4/6 -> the largest coverage with accuracy >= 0.8 is t=0.5
    chosen = choose_threshold(points, 0.8)
    assert chosen is not None and chosen.threshold == 0.5 and (chosen.accepted, chosen.correct) == (5, 4)
    assert choose_threshold(points, 0.75).threshold == 0.5
    assert choose_threshold(points, 0.81).threshold == 0.8
    assert choose_threshold(points, 1.0).threshold == 0.8
    never = coverage_curve([0.9, 0.5], [False, False])
    assert choose_threshold(never, 0.5) is None


def _record(problem_id: str, confidence: float, correct: bool | None, split: str) -> ProblemRecord:
    source = ProblemInput(problem_id, "bench", f"problem {problem_id}", "1" if correct is not None else None, ["x"])
    result = ProblemConfidence(confidence, "1", confidence, 1.0, 4, 4, (), correct)
    return ProblemRecord(source, result, split)


def test_decide_threshold_on_the_calibration_split_and_reports_the_other():
    records = [_record(f"c{i}", c, r, CALIBRATION) for i, (c, r) in enumerate(CALIBRATION_SET)]
    held_out = [(0.95, True), (0.55, False), (0.5, True), (0.45, True), (0.1, False)]
    records += [_record(f"e{i}", c, r, EVALUATION) for i, (c, r) in enumerate(held_out)]
    records.append(_record("u", 0.2, None, EVALUATION))  # unlabeled: in no statistic
    decision = decide_threshold(records, target_accuracy=0.8)
    assert decision.source == "calibration" and decision.reached is True
    assert decision.threshold == 0.5
    assert (decision.calibration.accepted, decision.calibration.correct, decision.calibration.problems) == (5, 4, 6)
    # held out at t=0.5: 0.95 T, 0.55 F, 0.5 T accepted -> accuracy 2/3, coverage 3/5
    assert decision.evaluation.accuracy == pytest.approx(2 / 3)
    assert decision.evaluation.coverage == pytest.approx(3 / 5)
    assert decision.labeled.problems == 11


def test_decide_threshold_without_labels_or_reach():
    unlabeled = [_record("a", 0.3, None, CALIBRATION), _record("b", 0.9, None, EVALUATION)]
    decision = decide_threshold(unlabeled, 0.9)
    assert decision.source == "default" and decision.threshold == 0.5 and "ground truth" in decision.note
    assert decision.calibration is None and decision.evaluation is None
    hopeless = [_record("a", 0.9, False, CALIBRATION), _record("b", 0.4, True, EVALUATION)]
    decision = decide_threshold(hopeless, 0.9)
    assert decision.threshold is None and decision.reached is False
    assert decision.evaluation.accepted == 0 and decision.evaluation.accuracy is None
    manual = decide_threshold(hopeless, 0.9, manual=0.3)
    assert manual.source == "manual" and manual.evaluation.accepted == 1


def test_split_is_deterministic_and_follows_the_fraction():
    ids = [f"math500/test/{i}.json" for i in range(4000)]
    first = [in_calibration(i, 0.3, seed=1) for i in ids]
    assert first == [in_calibration(i, 0.3, seed=1) for i in ids]
    assert 0.26 < sum(first) / len(ids) < 0.34
    assert first != [in_calibration(i, 0.3, seed=2) for i in ids]
    assert all(in_calibration(i, 1.0) for i in ids[:50])


def test_selective_stats_and_csv_round_trip(tmp_path: Path):
    stats = selective_stats([0.9, 0.5, 0.2], [True, False, True], 0.5)
    assert (stats.accepted, stats.correct, stats.problems) == (2, 1, 3)
    assert selective_stats([0.9], [True], None).accepted == 0
    points = coverage_curve([0.9, 0.5, 0.5, 0.2], [True, False, True, True])
    write_coverage_csv(points, tmp_path / "coverage.csv")
    assert read_coverage_csv(tmp_path / "coverage.csv") == points
