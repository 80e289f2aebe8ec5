"""Per-sample evidence through the project's bounded scorer: extracted answer, false claims, correctness.

Every response is scored in a killable worker process with a hard time bound (``BoundedScorer``), so an
adversarial response costs at most ``timeout_s``; a response that could not be scored votes for nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from verl_pdai.confidence.inputs import ProblemInput
from verl_pdai.core.bounded import BoundedScorer
from verl_pdai.core.confidence import SampleEvidence
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig

__all__ = ["evidence_from_result", "score_problems"]


def evidence_from_result(result: ScoreResult, labeled: bool, given_correct: bool | None) -> SampleEvidence:
    """Evidence of one sample; correctness from the scorer when the row has a ground truth, else the given label."""
    if result.timed_out or result.error:
        return SampleEvidence(answer="", false_claims=0, correct=False if labeled else given_correct)
    correct = result.acc >= 1.0 if labeled else given_correct
    return SampleEvidence(answer=result.pred, false_claims=result.num_false_claims, correct=correct)


def score_problems(
    problems: Sequence[ProblemInput],
    config: StepwiseConfig,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[list[SampleEvidence]], int]:
    """Evidence for every response of every problem, and the number of responses that could not be scored."""
    jobs = [(p, i) for p in problems for i in range(len(p.responses))]
    scorer = BoundedScorer(config)
    try:
        with ThreadPoolExecutor(max_workers=config.num_workers) as executor:

            def run(job: tuple[ProblemInput, int]) -> ScoreResult:
                problem, index = job
                return scorer.score([problem.responses[index]], problem.ground_truth)

            results = []
            for done, result in enumerate(executor.map(run, jobs), start=1):
                results.append(result)
                if progress and done % 500 == 0:
                    progress(f"scored {done}/{len(jobs)} responses")
    finally:
        scorer.close()
    evidence: list[list[SampleEvidence]] = []
    failed = 0
    cursor = 0
    for problem in problems:
        labeled = problem.has_ground_truth
        samples = []
        for index in range(len(problem.responses)):
            result = results[cursor]
            cursor += 1
            failed += bool(result.timed_out or result.error)
            given = problem.given_correct[index] if problem.given_correct else None
            samples.append(evidence_from_result(result, labeled, given))
        evidence.append(samples)
    return evidence, failed


def stderr_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
