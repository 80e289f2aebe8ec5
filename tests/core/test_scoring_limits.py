"""Bounds of the scorer's resources (issue 13, findings 6 and 7): the number of workers, and the wait for one."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from verl_pdai.core.bounded import BoundedScorer
from verl_pdai.core.scoring import MAX_NUM_WORKERS, ConfigError, ScoreResult, StepwiseConfig
from verl_pdai.core.worker_pool import WorkerPool

REPO = Path(__file__).resolve().parents[2]
DISPATCH = "tests.core.pool_handlers:dispatch"
HANG = "tests.core.pool_handlers:hang"


# ---- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"num_workers": 10**9}, rf"num_workers=1000000000: must be in \[1, {MAX_NUM_WORKERS}\]"),
        ({"num_workers": MAX_NUM_WORKERS + 1}, "num_workers"),
        ({"num_workers": 0}, r"num_workers=0: must be in \[1, "),
        ({"queue_timeout_s": 0}, r"queue_timeout_s=0(\.0)?: must be in \(0, 3600\] seconds"),
        ({"queue_timeout_s": -1}, "queue_timeout_s"),
        ({"queue_timeout_s": float("nan")}, "queue_timeout_s"),
        ({"queue_timeout_s": float("inf")}, "queue_timeout_s"),
    ],
)
def test_resource_bounds_fail_when_the_config_is_built(values, message):
    with pytest.raises(ConfigError, match=message):
        StepwiseConfig.from_mapping(values)
    with pytest.raises(ConfigError, match=message):
        StepwiseConfig(**values)


def test_largest_allowed_values_build():
    config = StepwiseConfig(num_workers=MAX_NUM_WORKERS, queue_timeout_s=3600)
    assert config.num_workers == MAX_NUM_WORKERS and config.to_dict()["queue_timeout_s"] == 3600
    assert StepwiseConfig().queue_timeout_s == 600.0  # the pool's old fixed bound stays the default


# ---- waiting for a free worker ---------------------------------------------------------------------------------


def _hold_the_only_worker(scorer: BoundedScorer) -> threading.Thread:
    """A call that owns the scorer's only worker (it hangs until ``timeout_s``)."""
    holder = threading.Thread(target=scorer.score, args=(["hangs"], "1"))
    holder.start()
    deadline = time.monotonic() + 10
    while scorer.pool._state.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not scorer.pool._state.idle
    return holder


def test_a_call_past_the_queue_bound_gets_the_floor_flagged_with_its_wait():
    config = StepwiseConfig(num_workers=1, timeout_s=4.0, queue_timeout_s=0.5)
    scorer = BoundedScorer(config, handler=HANG)
    try:
        holder = _hold_the_only_worker(scorer)
        start = time.monotonic()
        result = scorer.score(["\\boxed{1}"], "1")
        waited = time.monotonic() - start
        holder.join()
    finally:
        scorer.close()
    assert 0.4 <= waited < 2.5  # the queue bound, not the hanging call's 4 s
    assert "no free worker within the queue bound of 0.5s" in result.error
    assert result.unscored and not result.timed_out and result.acc == 0.0
    assert result.score == config.process_floor  # what any call that cannot be scored gets; never raises
    assert 0.4 <= result.queue_wait_s < 2.5


def test_queue_wait_is_reported_when_scored():
    scorer = BoundedScorer(StepwiseConfig(num_workers=1))
    try:
        result = scorer.score(["So \\boxed{2}."], "2")
    finally:
        scorer.close()
    assert result.acc == 1.0 and result.error == ""
    assert isinstance(result.queue_wait_s, float) and 0.0 <= result.queue_wait_s < 1.0
    assert ScoreResult(**result.to_dict()) == result


def test_acall_counts_the_time_queued_in_the_executor():
    """Many awaited calls on a small executor: the bound runs from submission, not from when a thread is free."""
    pool = WorkerPool(DISPATCH, num_workers=1, acquire_timeout_s=0.5, env={"PYTHONPATH": str(REPO)})

    async def main() -> tuple[list, list[float]]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(2))  # one thread for the busy call, one for the 30 waiting
        assert (await pool.acall({"op": "pid"}, 30)).ok  # worker started
        busy = asyncio.ensure_future(pool.acall({"op": "sleep", "s": 4}, 30))
        await asyncio.sleep(0.3)
        start = time.monotonic()

        async def timed() -> float:
            await pool.acall({"op": "echo"}, 30)
            return time.monotonic() - start

        waits = await asyncio.gather(*(timed() for _ in range(30)))
        return [await busy], waits

    try:
        (busy,), waits = asyncio.run(main())
    finally:
        pool.close()
    assert busy.ok
    # counted from when a thread picks it up, the 30th call would return after 30 * 0.5 s
    assert max(waits) < 2.5, waits


def test_pool_result_carries_the_queue_wait():
    pool = WorkerPool(DISPATCH, num_workers=1, acquire_timeout_s=0.4, env={"PYTHONPATH": str(REPO)})
    try:
        assert pool.call({"op": "pid"}, 30).ok
        holder = threading.Thread(target=pool.call, args=({"op": "sleep", "s": 1.5}, 10))
        holder.start()
        time.sleep(0.2)
        failed = pool.call({"op": "echo"}, 10)
        holder.join()
        served = pool.call({"op": "echo"}, 10)
    finally:
        pool.close()
    assert not failed.ok and "no free worker" in failed.error and 0.35 <= failed.queue_wait_s < 1.4
    assert served.ok and 0.0 <= served.queue_wait_s < 0.3


def test_callers_get_free_workers_first_come_first_served():
    """A review found two busy threads re-taking the slots they had just released while two others waited 8 s
    (and, with a queue bound, got the floor score). Four threads share two workers: each gets its turn."""
    scorer = BoundedScorer(StepwiseConfig(num_workers=2, queue_timeout_s=30))
    response = "Step 1: 3 * 4 = 12.\n\nSo the answer is \\boxed{12}."
    assert scorer.score([response], "12").acc == 1.0  # workers started
    stop = threading.Event()
    counts: dict[int, int] = {}
    waits: list[float] = []

    def hammer(index: int) -> None:
        done = 0
        while not stop.is_set():
            result = scorer.score([response], "12")
            assert result.acc == 1.0, result.error
            waits.append(result.queue_wait_s)
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        scorer.close()
    assert len(counts) == 4 and min(counts.values()) >= 0.3 * max(counts.values()), counts
    assert max(waits) < 2.0, max(waits)
