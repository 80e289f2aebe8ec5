"""Scoring keeps working in processes forked from a process that already scores (issue 13, finding 6).

Python 3.11 on Linux forks by default: a ``multiprocessing.Pool`` over ``verl_pdai.api.compute_score`` copies the
parent's scoring pools, without their threads and with any lock another thread held. The child must start
workers of its own instead of waiting for the parent's (the bug: 60 s per call, then score 0).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from verl_pdai.api import compute_score
from verl_pdai.core import bounded
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.core.worker_pool import WorkerPool

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(REPO)}
DISPATCH = "tests.core.pool_handlers:dispatch"
# Generous for a busy 2-core machine (each child imports sympy in its scoring worker); the bug took >= 60 s per call.
POOL_BOUND_S = 50.0
CHILD_BOUND_S = 30.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def _items() -> list[tuple[str, str, str]]:
    """(data_source, solution, ground truth): even ones right, odd ones wrong."""
    return [("math", f"Adding up gives the result. The answer is \\boxed{{{n}}}.", str(n + n % 2)) for n in range(8)]


def _expected() -> list[float]:
    return [1.0 if n % 2 == 0 else 0.0 for n in range(8)]


def _score_tuple(item: tuple[str, str, str]) -> tuple[float, str]:
    """Runs in the pool's children: one worker per child is enough and keeps the test light."""
    out = compute_score(*item, num_workers=1)
    return float(out["score"]), str(out["error"])


def _wait_pid(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def in_forked_child(fn: Callable[[], Any], timeout_s: float = CHILD_BOUND_S) -> Any:
    """Run ``fn`` in a child made by a bare ``os.fork()``; its JSON result, or a failure after ``timeout_s``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read_fd)
            try:
                data = json.dumps({"value": fn()})
            except BaseException as exc:  # noqa: BLE001 - report anything to the parent
                data = json.dumps({"exception": repr(exc)})
            os.write(write_fd, data.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_fd], [], [], remaining)[0]:
                pytest.fail(f"the forked child did not finish within {timeout_s} s")
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _wait_pid(pid, 5.0)
    reply = json.loads(b"".join(chunks) or b"{}")
    assert "exception" not in reply, reply
    return reply["value"]


# ---- compute_score through multiprocessing pools -------------------------------------------------------------


def test_compute_score_in_a_fork_pool_after_the_parent_scored():
    config = {"num_workers": 1}
    assert compute_score("math", "So \\boxed{4}.", "4", **config)["score"] == 1.0  # the parent's pool exists
    stop = threading.Event()

    def keep_scoring() -> None:  # the parent is scoring while the pool forks its children
        while not stop.is_set():
            compute_score("math", "Thus \\boxed{9}.", "9", **config)

    scorer_thread = threading.Thread(target=keep_scoring, daemon=True)
    scorer_thread.start()
    start = time.monotonic()
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map_async(_score_tuple, _items()).get(timeout=POOL_BOUND_S)
    finally:
        stop.set()
        scorer_thread.join(30)
    assert time.monotonic() - start < POOL_BOUND_S
    assert [score for score, _ in results] == _expected()
    assert all(error == "" for _, error in results), results
    # the parent's pool is untouched by its children
    assert compute_score("math", "So \\boxed{4}.", "4", **config)["score"] == 1.0


def test_compute_score_in_a_spawn_pool():
    start = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map_async(_score_tuple, _items()).get(timeout=POOL_BOUND_S)
    assert time.monotonic() - start < POOL_BOUND_S
    assert [score for score, _ in results] == _expected()
    assert all(error == "" for _, error in results), results


# ---- bare os.fork() -------------------------------------------------------------------------------------------


@pytest.fixture
def pool() -> Any:
    pool = WorkerPool(DISPATCH, num_workers=1, env=ENV, acquire_timeout_s=120)
    yield pool
    pool.close()


def _pid_of(pool: WorkerPool) -> int:
    result = pool.call({"op": "pid"}, 10)
    assert result.ok, result
    return result.value["pid"]


def _child_call(pool: WorkerPool) -> Callable[[], dict]:
    def run() -> dict:
        result = pool.call({"op": "pid"}, 10)
        stats = pool.stats
        pool.close()  # the child's own workers
        return {"ok": result.ok, "pid": (result.value or {}).get("pid"), "error": result.error, "stats": stats}

    return run


def test_a_forked_child_starts_its_own_workers_and_leaves_the_parents_alone(pool):
    parent_worker = _pid_of(pool)
    out = in_forked_child(_child_call(pool))
    assert out["ok"], out
    assert out["pid"] != parent_worker
    assert out["stats"]["starts"] == 1 and out["stats"]["calls"] == 1  # counters start over in the child
    # the child neither read from nor killed the parent's worker: it still serves the parent
    assert _pid_of(pool) == parent_worker
    assert pool.stats["alive"] == 1


def test_fork_while_a_parent_thread_holds_the_only_worker_and_the_lock(pool):
    parent_worker = _pid_of(pool)
    busy = threading.Thread(target=pool.call, args=({"op": "sleep", "s": 3}, 10))
    busy.start()
    deadline = time.monotonic() + 10
    while pool._state.idle and time.monotonic() < deadline:  # the busy call owns the only worker
        time.sleep(0.01)
    assert not pool._state.idle
    holding, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with pool._state.cond:
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert holding.wait(10)
    try:
        # In the child no thread will ever release that lock or that worker.
        out = in_forked_child(_child_call(pool))
    finally:
        release.set()
        holder.join()
        busy.join()
    assert out["ok"], out
    assert out["pid"] != parent_worker
    assert _pid_of(pool) == parent_worker


def test_shared_scorer_lock_held_at_fork():
    config = StepwiseConfig(num_workers=1)
    bounded.shared_scorer(config)
    holding, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with bounded._shared_lock:
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert holding.wait(10)
    try:
        score = functools.partial(compute_score, "math", "So \\boxed{6}.", "6", num_workers=1)
        out = in_forked_child(lambda: score()["score"])
    finally:
        release.set()
        holder.join()
    assert out == 1.0
