"""Confidence of a problem's answer from its k sampled responses (pure: imports no verl, no sympy at import).

Each sample votes for its extracted final answer with a weight that its step checks lower:

    w_i        = exp(-lambda * f_i)               (f_i: false arithmetic claims in sample i; 0 votes if no answer)
    support(c) = sum of w_i over the samples i whose answer is in cluster c
    answer     = the cluster with the largest support (ties: more samples, then first seen)
    confidence = support(answer) / k  =  agreement * step_factor
    agreement  = |answer cluster| / k,   step_factor = mean w_i over the answer's supporting samples

Equivalent answers share a cluster: a normalized-string lookup first (O(1) per sample), then the project's
equivalence checks against one representative per cluster (quick rational check, then math-verify within a
budget), so the work is O(k * clusters). ``lambda = 0`` gives plain majority voting (maj@k) and its vote share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from verl_pdai.core.answers import answers_equivalent, normalize_answer, quick_equivalent

__all__ = [
    "DEFAULT_FALSE_CLAIM_PENALTY",
    "AnswerCluster",
    "EquivalenceBudget",
    "ProblemConfidence",
    "SampleEvidence",
    "cluster_answers",
    "problem_confidence",
    "sample_weight",
]

# lambda: each false arithmetic claim halves a sample's vote (exp(-ln 2 * f) = 2^-f).
DEFAULT_FALSE_CLAIM_PENALTY = math.log(2)
# Confidences are rounded so that equal vote sets give equal confidences whatever the summation order: ties
# then fall on the same side of every threshold.
CONFIDENCE_DECIMALS = 6


@dataclass(frozen=True)
class SampleEvidence:
    """What the checker says about one sampled response."""

    answer: str  # extracted final answer, "" when none (or when scoring failed)
    false_claims: int = 0  # false arithmetic claims found by the step checks
    correct: bool | None = None  # answer equivalent to the ground truth; None without a ground truth


@dataclass(frozen=True)
class EquivalenceBudget:
    """Bounds on the math-verify comparisons of one problem (the quick checks are cheap and unbounded)."""

    max_full_checks: int = 256
    time_budget_s: float = 5.0  # after this, remaining answers are compared by the quick checks only
    timeout_s: float = 1.0  # per math-verify call (SIGALRM: effective in the main thread)


@dataclass
class AnswerCluster:
    """Samples whose answers are equivalent; ``answer`` is the first sample's form."""

    answer: str
    members: list[int] = field(default_factory=list)  # sample indices
    false_claims: list[int] = field(default_factory=list)  # per member, same order
    support: float = 0.0  # weighted votes

    @property
    def count(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, object]:
        return {
            "answer": self.answer,
            "count": self.count,
            "support": round(self.support, CONFIDENCE_DECIMALS),
            "false_claims": list(self.false_claims),
            "samples": list(self.members),
        }


@dataclass(frozen=True)
class ProblemConfidence:
    confidence: float  # in [0, 1]
    answer: str  # the predicted answer, "" when no sample has one
    agreement: float  # share of the k samples in the answer's cluster
    step_factor: float  # mean vote weight of the answer's supporting samples (1.0 when there are none)
    k: int
    answered: int  # samples with an extracted answer
    clusters: tuple[AnswerCluster, ...]  # sorted: predicted answer first, then by support
    correct: bool | None  # the predicted answer is right; None when correctness is unknown
    budget_exhausted: bool = False  # some comparisons fell back to the quick checks


def sample_weight(false_claims: int, penalty: float = DEFAULT_FALSE_CLAIM_PENALTY) -> float:
    """Vote weight of a sample with ``false_claims`` false arithmetic claims: ``exp(-penalty * false_claims)``."""
    return math.exp(-penalty * max(0, int(false_claims)))


def cluster_answers(answers: Sequence[str], budget: EquivalenceBudget | None = None) -> tuple[list[list[int]], bool]:
    """Group the indices of non-empty ``answers`` by equivalence, in order of first appearance.

    Returns (groups, budget_exhausted). An answer joins the first cluster whose representative it matches.
    """
    budget = budget or EquivalenceBudget()
    representatives: list[str] = []
    groups: list[list[int]] = []
    by_form: dict[str, int] = {}  # normalized form -> cluster (the exact fast path)
    full_checks = 0
    exhausted = False
    deadline = time.monotonic() + budget.time_budget_s
    for index, answer in enumerate(answers):
        if not answer:
            continue
        form = normalize_answer(answer)
        found = by_form.get(form)
        if found is not None and quick_equivalent(answer, representatives[found]) is not True:
            found = None  # same string after normalization, but e.g. "x=3" vs "y=3": compare properly
        if found is None:
            for cluster, representative in enumerate(representatives):
                verdict = quick_equivalent(answer, representative)
                if verdict is None:
                    if full_checks >= budget.max_full_checks or time.monotonic() > deadline:
                        exhausted = True
                        continue
                    full_checks += 1
                    verdict = answers_equivalent(answer, representative, timeout_s=budget.timeout_s)
                if verdict:
                    found = cluster
                    break
        if found is None:
            found = len(groups)
            representatives.append(answer)
            groups.append([])
        groups[found].append(index)
        by_form.setdefault(form, found)
    return groups, exhausted


def problem_confidence(
    samples: Sequence[SampleEvidence],
    *,
    penalty: float = DEFAULT_FALSE_CLAIM_PENALTY,
    budget: EquivalenceBudget | None = None,
) -> ProblemConfidence:
    """Predicted answer and confidence of one problem from the evidence of its k samples."""
    if not math.isfinite(penalty) or penalty < 0:
        raise ValueError(f"false-claim penalty must be a finite number >= 0, got {penalty!r}")
    k = len(samples)
    groups, exhausted = cluster_answers([s.answer for s in samples], budget)
    clusters = []
    for members in groups:
        cluster = AnswerCluster(answer=samples[members[0]].answer, members=list(members))
        cluster.false_claims = [max(0, int(samples[i].false_claims)) for i in members]
        cluster.support = sum(sample_weight(f, penalty) for f in cluster.false_claims)
        clusters.append(cluster)
    # stable sort: ties in support and count keep the order of first appearance
    clusters.sort(key=lambda c: (-round(c.support, CONFIDENCE_DECIMALS), -c.count))
    labeled = any(s.correct is not None for s in samples)
    if not clusters:
        return ProblemConfidence(0.0, "", 0.0, 1.0, k, 0, (), False if labeled else None, exhausted)
    top = clusters[0]
    return ProblemConfidence(
        confidence=round(min(1.0, top.support / k), CONFIDENCE_DECIMALS),
        answer=top.answer,
        agreement=round(top.count / k, CONFIDENCE_DECIMALS),
        step_factor=round(top.support / top.count, CONFIDENCE_DECIMALS),
        k=k,
        answered=sum(c.count for c in clusters),
        clusters=tuple(clusters),
        correct=samples[top.members[0]].correct,
        budget_exhausted=exhausted,
    )
