"""Answer checks of many responses, in parallel, each with a hard time bound (pure; imports no verl).

Each response goes to the project's :class:`~verl_pdai.core.bounded.BoundedScorer` with ``outcome_only`` set:
the same worker processes, the same ``outcome_of`` (thinking split, last box, ``answers_equivalent``) and the
same ``StepwiseConfig`` as the ``pdai_stepwise`` reward manager, minus the step checks the metric does not need.
A response that overruns its bound or crashes a worker counts as wrong and is counted in ``failures``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from verl_pdai.core.answers import ground_truth_candidates
from verl_pdai.core.bounded import BoundedScorer
from verl_pdai.core.scoring import StepwiseConfig


@dataclass(frozen=True)
class Verdict:
    correct: bool | None  # None: the problem has no ground truth
    extracted: str  # the final answer the checker read, "" if none
    failed: bool = False  # the check timed out or its worker failed (then correct is False)


@dataclass(frozen=True)
class CheckJob:
    response: str
    ground_truth: object


def check_all(
    jobs: Sequence[CheckJob],
    config: StepwiseConfig,
    progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    """Verdicts in the order of ``jobs``; ``config.num_workers`` processes, ``config.timeout_s`` per response."""
    scorer = BoundedScorer(config)
    try:
        return asyncio.run(_check_all(scorer, jobs, config.num_workers, progress))
    finally:
        scorer.close()


async def _check_all(
    scorer: BoundedScorer,
    jobs: Sequence[CheckJob],
    parallel: int,
    progress: Callable[[int, int], None] | None,
) -> list[Verdict]:
    # At most one waiting call per worker: the pool's acquire timeout never runs out on a long queue, and the
    # default executor (which runs the blocking calls) is never flooded.
    gate = asyncio.Semaphore(parallel)
    done = 0

    async def check(job: CheckJob) -> Verdict:
        nonlocal done
        async with gate:  # without a ground truth the answer is still extracted, for samples.jsonl
            result = await scorer.ascore([job.response], job.ground_truth, None, outcome_only=True)
        has_truth = bool(ground_truth_candidates(job.ground_truth))
        failed = result.timed_out or bool(result.error)
        verdict = Verdict(correct=(result.acc == 1.0) if has_truth else None, extracted=result.pred, failed=failed)
        done += 1
        if progress is not None:
            progress(done, len(jobs))
        return verdict

    return list(await asyncio.gather(*(check(job) for job in jobs)))
