"""Scoring with a hard wall-clock bound: each response is scored in a worker process that is killed and
replaced when it overruns (sympy can hang on adversarial LaTeX, and signal-based timeouts do not work in
the executor threads of verl's async reward actors). Imports no verl.

Fork-safe: a forked child (e.g. a ``multiprocessing`` pool over ``verl_pdai.api.compute_score``) resets the pools it
inherited (see ``verl_pdai.core.worker_pool``) and the lock of ``shared_scorer``, and starts workers of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from verl_pdai.core.answers import ground_truth_candidates
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig, merge_phases
from verl_pdai.core.worker_pool import PoolResult, WorkerPool

SCORE_HANDLER = "verl_pdai.core.scoring:score_request"


class BoundedScorer:
    """Scores responses in killable worker processes; never raises.

    Two calls per response, each bounded by ``config.timeout_s``: the outcome first, then the step checks. A step
    check that overruns gives the process floor (the outcome stands); an outcome that cannot be decided gives the
    floor score, flagged ``unscored`` (see ``verl_pdai.core.scoring``). A time-out never scores above the same
    response scored in time. A call that waits longer than ``config.queue_timeout_s`` for a free worker is scored
    the same way (an outcome that could not be decided); ``queue_wait_s`` of the result sums the waits.
    """

    def __init__(self, config: StepwiseConfig | None = None, handler: str = SCORE_HANDLER) -> None:
        self.config = config or StepwiseConfig()
        self.pool = WorkerPool(
            handler,
            num_workers=self.config.num_workers,
            memory_limit_mb=self.config.memory_limit_mb or None,
            acquire_timeout_s=self.config.queue_timeout_s,
        )

    def _payload(
        self,
        phase: str,
        pieces: Sequence[str],
        ground_truth: object,
        reference_solution: str | None,
        given_texts: Sequence[str] = (),
    ) -> dict:
        return {
            "phase": phase,
            "pieces": [str(p) for p in pieces],
            "ground_truths": ground_truth_candidates(ground_truth),
            "reference_solution": str(reference_solution or ""),
            "given_texts": [str(t) for t in given_texts],
            "config": self.config.to_dict(),
        }

    @staticmethod
    def _result(reply: PoolResult) -> ScoreResult:
        result = BoundedScorer._decode(reply)
        result.queue_wait_s = round(reply.queue_wait_s, 6)
        return result

    @staticmethod
    def _decode(reply: PoolResult) -> ScoreResult:
        if reply.timed_out:
            return ScoreResult.failed(timed_out=True, error="scoring hit its time bound")
        if not reply.ok or not isinstance(reply.value, dict):
            return ScoreResult.failed(error=str(reply.error or "scoring worker returned no result"))
        try:
            return ScoreResult(**reply.value)
        except TypeError as exc:
            return ScoreResult.failed(error=f"malformed scoring result: {exc}")

    def _combine(self, outcome: ScoreResult, process: ScoreResult | None, text_chars: int) -> ScoreResult:
        if outcome.timed_out or outcome.error:
            result = ScoreResult.floor(self.config, text_chars, timed_out=outcome.timed_out, error=outcome.error)
            result.queue_wait_s = outcome.queue_wait_s
            return result
        assert process is not None
        if process.timed_out or process.error:
            process.set_process_floor(self.config, text_chars)
        result = merge_phases(outcome, process)
        result.queue_wait_s = round(outcome.queue_wait_s + process.queue_wait_s, 6)
        return result

    def score(
        self,
        pieces: Sequence[str],
        ground_truth: object,
        reference_solution: str | None = None,
        *,
        given_texts: Sequence[str] = (),
    ) -> ScoreResult:
        """Blocking: score the model-written ``pieces`` of one response (both phases)."""
        bound = self.config.timeout_s
        outcome = self._result(self.pool.call(self._payload("outcome", pieces, ground_truth, None), bound))
        process = None
        if not (outcome.timed_out or outcome.error):
            payload = self._payload("process", pieces, ground_truth, reference_solution, given_texts)
            process = self._result(self.pool.call(payload, bound))
        return self._combine(outcome, process, _chars(pieces))

    async def ascore(
        self,
        pieces: Sequence[str],
        ground_truth: object,
        reference_solution: str | None = None,
        *,
        outcome_only: bool = False,
        given_texts: Sequence[str] = (),
    ) -> ScoreResult:
        """Async variant for reward-loop actors and agent loops: the event loop is never blocked.

        ``outcome_only`` runs the outcome phase alone (a preview or an evaluation only needs its final answer
        verified); a failure there comes back as ``ScoreResult.failed`` (no outcome, flagged), not as the floor.
        """
        bound = self.config.timeout_s
        outcome = self._result(await self.pool.acall(self._payload("outcome", pieces, ground_truth, None), bound))
        if outcome_only:
            return outcome
        process = None
        if not (outcome.timed_out or outcome.error):
            payload = self._payload("process", pieces, ground_truth, reference_solution, given_texts)
            process = self._result(await self.pool.acall(payload, bound))
        return self._combine(outcome, process, _chars(pieces))

    def close(self) -> None:
        self.pool.close()


def _chars(pieces: Sequence[str]) -> int:
    return sum(len(str(p)) for p in pieces)


_shared: dict[tuple, BoundedScorer] = {}
_shared_lock = threading.Lock()


def _new_lock_in_child() -> None:
    """After ``fork()``: the lock may have been copied held by a parent thread that does not exist in the child.
    The scorers in ``_shared`` stay: their pools reset themselves in the child."""
    global _shared_lock
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_new_lock_in_child)


def shared_scorer(config: StepwiseConfig | None = None) -> BoundedScorer:
    """One scorer per process and config: every manager instance in a reward actor shares its workers."""
    config = config or StepwiseConfig()
    key = tuple(sorted(config.to_dict().items()))
    with _shared_lock:
        scorer = _shared.get(key)
        if scorer is None:
            scorer = _shared[key] = BoundedScorer(config)
        return scorer
