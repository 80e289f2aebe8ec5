"""Scoring with a hard wall-clock bound: each response is scored in a worker process that is killed and
replaced when it overruns (sympy can hang on adversarial LaTeX, and signal-based timeouts do not work in
the executor threads of verl's async reward actors). Imports no verl.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from verl_pdai.core.answers import ground_truth_candidates
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig
from verl_pdai.core.worker_pool import PoolResult, WorkerPool

SCORE_HANDLER = "verl_pdai.core.scoring:score_request"


class BoundedScorer:
    """Scores responses in killable worker processes; never raises, never exceeds ``config.timeout_s`` by much."""

    def __init__(self, config: StepwiseConfig | None = None, handler: str = SCORE_HANDLER) -> None:
        self.config = config or StepwiseConfig()
        self.pool = WorkerPool(
            handler,
            num_workers=self.config.num_workers,
            memory_limit_mb=self.config.memory_limit_mb or None,
        )

    def _payload(
        self, pieces: Sequence[str], ground_truth: object, reference_solution: str | None, outcome_only: bool = False
    ) -> dict:
        return {
            "outcome_only": outcome_only,
            "pieces": [str(p) for p in pieces],
            "ground_truths": ground_truth_candidates(ground_truth),
            "reference_solution": str(reference_solution or ""),
            "config": self.config.to_dict(),
        }

    @staticmethod
    def _result(reply: PoolResult) -> ScoreResult:
        if reply.timed_out:
            return ScoreResult.failed(timed_out=True, error="scoring hit its time bound")
        if not reply.ok or not isinstance(reply.value, dict):
            return ScoreResult.failed(error=str(reply.error or "scoring worker returned no result"))
        try:
            return ScoreResult(**reply.value)
        except TypeError as exc:
            return ScoreResult.failed(error=f"malformed scoring result: {exc}")

    def score(self, pieces: Sequence[str], ground_truth: object, reference_solution: str | None = None) -> ScoreResult:
        """Blocking: score the model-written ``pieces`` of one response."""
        payload = self._payload(pieces, ground_truth, reference_solution)
        return self._result(self.pool.call(payload, timeout_s=self.config.timeout_s))

    async def ascore(
        self,
        pieces: Sequence[str],
        ground_truth: object,
        reference_solution: str | None = None,
        *,
        outcome_only: bool = False,
    ) -> ScoreResult:
        """Async variant for reward-loop actors and agent loops: the event loop is never blocked.

        ``outcome_only`` skips the step checks (a preview only needs its final answer verified).
        """
        payload = self._payload(pieces, ground_truth, reference_solution, outcome_only)
        return self._result(await self.pool.acall(payload, timeout_s=self.config.timeout_s))

    def close(self) -> None:
        self.pool.close()


_shared: dict[tuple, BoundedScorer] = {}
_shared_lock = threading.Lock()


def shared_scorer(config: StepwiseConfig | None = None) -> BoundedScorer:
    """One scorer per process and config: every manager instance in a reward actor shares its workers."""
    config = config or StepwiseConfig()
    key = tuple(sorted(config.to_dict().items()))
    with _shared_lock:
        scorer = _shared.get(key)
        if scorer is None:
            scorer = _shared[key] = BoundedScorer(config)
        return scorer
