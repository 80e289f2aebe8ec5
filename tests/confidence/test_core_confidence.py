"""Confidence from k samples: agreement, step checks, clustering of equivalent answers."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from tests.bounds import HANG_GUARD_S
from verl_pdai.confidence.evidence import evidence_from_result
from verl_pdai.core import confidence as core
from verl_pdai.core.bounded import BoundedScorer
from verl_pdai.core.confidence import EquivalenceBudget, SampleEvidence, cluster_answers, problem_confidence


def test_modules_import_no_verl():
    code = (
        "import sys, verl_pdai.core.confidence, verl_pdai.confidence, verl_pdai.confidence.command, "
        "verl_pdai.confidence.routing, verl_pdai.confidence.review, verl_pdai.confidence.evidence, "
        "verl_pdai.cli; "
        "bad = [m for m in ('verl', 'torch', 'sympy', 'math_verify', 'matplotlib') if m in sys.modules]; "
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _votes(*answers: str, false_claims: tuple[int, ...] | None = None) -> list[SampleEvidence]:
    claims = false_claims or (0,) * len(answers)
    return [SampleEvidence(answer=a, false_claims=f) for a, f in zip(answers, claims, strict=True)]


def test_unanimous_beats_split_vote():
    unanimous = problem_confidence(_votes("7", "7", "7", "7"))
    split = problem_confidence(_votes("7", "7", "8", "9"))
    assert unanimous.confidence == 1.0
    assert split.confidence == pytest.approx(0.5)
    assert unanimous.confidence > split.confidence
    assert split.answer == "7" and split.agreement == pytest.approx(0.5)


def test_false_claims_lower_confidence_at_equal_agreement():
    clean = problem_confidence(_votes("12", "12", "12", "5"))
    flawed = problem_confidence(_votes("12", "12", "12", "5", false_claims=(1, 2, 0, 0)))
    assert clean.agreement == flawed.agreement == pytest.approx(0.75)
    # w = 2^-f with the default lambda = ln 2: (1/2 + 1/4 + 1) / 4
    assert flawed.confidence == pytest.approx((0.5 + 0.25 + 1.0) / 4)
    assert flawed.step_factor == pytest.approx((0.5 + 0.25 + 1.0) / 3)
    assert flawed.confidence < clean.confidence == pytest.approx(0.75)


def test_penalty_zero_is_plain_majority_share():
    result = problem_confidence(_votes("12", "12", "12", "5", false_claims=(3, 3, 3, 0)), penalty=0.0)
    assert result.answer == "12" and result.confidence == pytest.approx(0.75)
    with pytest.raises(ValueError, match="penalty"):
        problem_confidence(_votes("1"), penalty=-1.0)
    with pytest.raises(ValueError, match="penalty"):
        problem_confidence(_votes("1"), penalty=math.nan)


def test_weighted_votes_pick_the_answer():
    # two samples riddled with false claims (1/8 each) against one clean sample: the clean answer wins
    result = problem_confidence(_votes("3", "3", "4", false_claims=(3, 3, 0)))
    assert result.answer == "4"
    assert result.confidence == pytest.approx(1 / 3)
    assert [c.answer for c in result.clusters] == ["4", "3"]
    assert result.clusters[1].false_claims == [3, 3]


def test_tie_in_votes_goes_to_the_first_seen_answer():
    result = problem_confidence(_votes("b", "a", "a", "b"))
    assert result.answer == "b" and result.confidence == pytest.approx(0.5)


def test_no_extracted_answer_gives_zero():
    result = problem_confidence([SampleEvidence(answer="", correct=False)] * 4)
    assert result.confidence == 0.0 and result.answer == "" and result.answered == 0
    assert result.correct is False  # labeled problem, no prediction: counted as wrong
    assert problem_confidence([SampleEvidence(answer="")] * 2).correct is None  # unlabeled: unknown


def test_missing_answers_count_in_the_denominator():
    result = problem_confidence(_votes("5", "5", "", ""))
    assert result.confidence == pytest.approx(0.5) and result.answered == 2 and result.k == 4


def test_equivalent_forms_share_a_cluster():
    result = problem_confidence(_votes("1/2", "0.5", "\\frac{1}{2}", "\\dfrac12", "2"))
    assert result.answer == "1/2"
    assert result.clusters[0].count == 4 and result.clusters[0].members == [0, 1, 2, 3]
    assert result.confidence == pytest.approx(4 / 5)
    assert [c.answer for c in result.clusters] == ["1/2", "2"]


def test_math_verify_merges_within_budget_and_is_bounded():
    answers = ["\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"]
    merged, exhausted = cluster_answers(answers)
    assert merged == [[0, 1]] and not exhausted
    apart, exhausted = cluster_answers(answers, EquivalenceBudget(max_full_checks=0))
    assert apart == [[0], [1]] and exhausted


def test_assignments_to_different_variables_stay_apart():
    groups, _ = cluster_answers(["x=3", "y=3", "x = 3"])
    assert groups == [[0, 2], [1]]


def test_clustering_cost_is_linear_in_samples_times_clusters(monkeypatch):
    calls = []
    monkeypatch.setattr(core, "answers_equivalent", lambda *a, **k: calls.append(a) or False)
    groups, _ = cluster_answers([str(i % 4) for i in range(64)])
    assert [len(g) for g in groups] == [16] * 4
    assert calls == []  # integers are decided by the quick checks, identical forms by the lookup
    start = time.monotonic()
    roots = [f"\\sqrt{{{i}}}" for i in range(64)]  # every pair needs the full check
    groups, exhausted = cluster_answers(roots, EquivalenceBudget(max_full_checks=10_000))
    assert len(groups) == 64 and not exhausted
    assert len(calls) == 64 * 63 // 2  # each new form against each existing cluster once
    calls.clear()
    groups, exhausted = cluster_answers(roots, EquivalenceBudget(max_full_checks=100))
    assert len(calls) == 100 and exhausted and len(groups) == 64
    assert time.monotonic() - start < HANG_GUARD_S


@pytest.fixture(scope="module")
def scorer():
    # its own pool, closed after the module (the shared one would leave workers alive for later tests)
    bounded = BoundedScorer()
    yield bounded
    bounded.close()


def test_step_checks_through_the_real_scorer(scorer: BoundedScorer):
    """Hand-made responses scored by the project's bounded checker: the false claims reach the confidence."""
    clean = "Step 1: 3 \\cdot 4 = 12.\n\nStep 2: 12 + 1 = 13.\n\nSo the answer is \\boxed{13}."
    wrong = "Step 1: 3 \\cdot 4 = 11.\n\nStep 2: 11 + 2 = 13.\n\nSo the answer is \\boxed{13}."
    other = "Step 1: 3 + 4 = 7.\n\nSo the answer is \\boxed{7}."

    def evidence(responses: list[str]) -> list[SampleEvidence]:
        return [evidence_from_result(scorer.score([r], "13"), labeled=True, given_correct=None) for r in responses]

    good = problem_confidence(evidence([clean, clean, clean, other]))
    bad = problem_confidence(evidence([wrong, wrong, clean, other]))
    assert good.answer == bad.answer == "13" and good.correct is True and bad.correct is True
    assert good.agreement == bad.agreement == pytest.approx(0.75)
    assert bad.clusters[0].false_claims == [1, 1, 0]
    assert bad.confidence < good.confidence


def test_unscored_sample_votes_for_nothing():
    from verl_pdai.core.scoring import ScoreResult

    failed = evidence_from_result(ScoreResult.failed(timed_out=True), labeled=True, given_correct=None)
    assert failed.answer == "" and failed.correct is False
    given = evidence_from_result(ScoreResult(pred="4", num_false_claims=2), labeled=False, given_correct=True)
    assert given == SampleEvidence(answer="4", false_claims=2, correct=True)
