"""Tests of WorkerPool: killable worker processes with a hard wall-clock bound (CPU, real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from verl_pdai.core.worker_pool import PoolResult, WorkerPool

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": str(REPO)}
DISPATCH = "tests.core.pool_handlers:dispatch"
SLACK_S = 0.5  # allowed overshoot of a timed-out call (kill + reap take milliseconds)

psutil: Any
try:
    import psutil
except ImportError:  # pragma: no cover - the checks fall back to /proc
    psutil = None


def reaped(pid: int) -> bool:
    """True once no process (not even a zombie) has this pid: kill(pid, 0) succeeds on zombies."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def gone_or_zombie(pid: int) -> bool:
    """For orphans, whose reaping is up to init (which in a container may never do it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def worker_children(root_pid: int | None = None) -> set[int]:
    """Pids of live pool workers below ``root_pid`` (default: this process)."""
    root_pid = os.getpid() if root_pid is None else root_pid
    if psutil is not None:
        procs = psutil.Process(root_pid).children(recursive=True)
        pids = set()
        for proc in procs:
            try:
                if "verl_pdai.core.pool_worker" in " ".join(proc.cmdline()) and proc.status() != "zombie":
                    pids.add(proc.pid)
            except psutil.NoSuchProcess:
                pass
        return pids
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == root_pid and fields[0] != "Z" and b"verl_pdai.core.pool_worker" in cmdline:
            pids.add(int(entry.name))
    return pids


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def make_pool() -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(handler: str = DISPATCH, **kwargs: Any) -> WorkerPool:
        env = {**ENV, **kwargs.pop("env", {})}
        pool = WorkerPool(handler, env=env, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def pid_of(pool: WorkerPool) -> int:
    result = pool.call({"op": "pid"}, 10)
    assert result.ok, result
    return result.value["pid"]


# ---- round trips --------------------------------------------------------------------------------------------


ODD_STRINGS = [
    "nul\x00in\x00the\x00middle",
    "\x00",
    "lone high \ud800 surrogate",
    "lone low \udfff surrogate",
    "reversed pair \udc00\ud800",
    "emoji \U0001f600 astral \U0010ffff",
    "line\nbreaks\r\n\u2028\u2029 and \x85 NEL",
    "bom \ufeff rtl \u202e combining e\u0301 zwj \u200d",
    '{"id": 1, "ok": true}\n',  # protocol-looking text must stay data
    "\\u0000 escaped text, not a NUL",
    "".join(chr(c) for c in range(0, 0x800)),
]


def test_echo_round_trip_preserves_odd_text(make_pool):
    pool = make_pool()
    payload = {
        "op": "echo",
        "strings": ODD_STRINGS,
        "keys": {s: i for i, s in enumerate(ODD_STRINGS)},
        "numbers": [0, -1, 10**100, 1.5, -0.0, 1e308],
        "nested": [[[{"a": None, "b": True}]]],
    }
    result = pool.call(payload, 10)
    assert result.ok and not result.timed_out and result.error is None
    assert result.value["echo"] == payload
    assert result.value["echo"]["strings"][2] == "lone high \ud800 surrogate"


@pytest.mark.parametrize("big", ["x" * (1 << 20), "\U0001f600\ud800\x00é" * (1 << 18)])
def test_echo_round_trip_one_megabyte(make_pool, big):
    pool = make_pool()
    result = pool.call({"op": "echo", "big": big}, 20)
    assert result.ok, result.error
    assert result.value["echo"]["big"] == big


def test_handler_prints_do_not_corrupt_the_channel(make_pool):
    pool = make_pool(num_workers=1)
    pid = pid_of(pool)
    result = pool.call({"op": "noisy"}, 10)
    assert result.ok and result.value == {"quiet": True}
    assert pid_of(pool) == pid


def test_acall(make_pool):
    pool = make_pool()

    async def main() -> list[PoolResult]:
        return await asyncio.gather(*(pool.acall({"op": "echo", "i": i}, 10) for i in range(10)))

    results = asyncio.run(main())
    assert [r.value["echo"]["i"] for r in results] == list(range(10))


# ---- handler failures that leave the worker usable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"op": "fail", "x": "\ud800"}, "ValueError: bad input"),
        ({"op": "not_a_dict"}, "handler returned list, expected dict"),
        ({"op": "unencodable"}, "TypeError"),
        ({"op": "deep_recursion", "n": 100_000}, "RecursionError"),
        ({"op": "no_such_op"}, "KeyError"),
    ],
)
def test_handler_errors_become_error_results_and_keep_the_worker(make_pool, payload, expected):
    pool = make_pool(num_workers=1)
    pid = pid_of(pool)
    result = pool.call(payload, 10)
    assert not result.ok and not result.timed_out and result.value is None
    assert expected in result.error
    assert pid_of(pool) == pid
    assert pool.stats["errors"] == 1 and pool.stats["crashes"] == 0


def test_unencodable_payload_is_an_error_result(make_pool):
    pool = make_pool(num_workers=1)
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for payload in ({"x": object()}, circular, {(1, 2): "tuple key"}, {"x": {1, 2}}):
        result = pool.call(payload, 10)
        assert not result.ok and "not JSON-encodable" in result.error
    assert pool.stats["starts"] == 0  # rejected before any worker was needed


def test_invalid_arguments(make_pool):
    with pytest.raises(ValueError):
        WorkerPool("no_colon_here")
    with pytest.raises(ValueError):
        WorkerPool(DISPATCH, num_workers=0)
    pool = make_pool()
    for bad in (0, -1, float("nan"), float("inf")):
        result = pool.call({"op": "echo"}, bad)
        assert not result.ok and "timeout_s" in result.error


# ---- timeouts, crashes, memory -------------------------------------------------------------------------------


def test_timeout_kills_reaps_and_replaces(make_pool):
    pool = make_pool(num_workers=1)
    old_pid = pid_of(pool)
    start = time.monotonic()
    result = pool.call({"op": "sleep", "s": 30}, 0.5)
    wall = time.monotonic() - start
    assert result.timed_out and not result.ok and result.value is None
    assert str(old_pid) in result.error
    assert 0.5 <= wall < 0.5 + SLACK_S
    assert reaped(old_pid)  # killed and waited for: no zombie left
    # The replacement was started without waiting for the next call.
    assert wait_until(lambda: pool.stats["starts"] == 2 and pool.stats["alive"] == 1)
    new_pid = pid_of(pool)
    assert new_pid != old_pid
    stats = pool.stats
    assert stats["timeouts"] == 1 and stats["restarts"] == 1 and stats["crashes"] == 0


def test_a_ready_spare_serves_while_the_replacement_starts(make_pool):
    pool = make_pool(num_workers=2, env={"POOL_HANDLERS_IMPORT_DELAY_S": "1.0"})
    assert pool.call({"op": "echo"}, 5).ok  # both workers start (in parallel) on the first call
    assert wait_until(lambda: pool.call({"op": "echo"}, 5).ok and pool.stats["alive"] == 2)
    assert pool.call({"op": "sleep", "s": 30}, 0.2).timed_out
    start = time.monotonic()
    assert pool.call({"op": "echo"}, 5).ok
    assert time.monotonic() - start < 0.5  # did not wait ~1 s for the replacement's imports


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"op": "exit_hard", "code": 3}, "exit code 3"),
        ({"op": "segfault"}, "SIGSEGV"),
        ({"op": "exit_clean"}, "SystemExit"),
    ],
)
def test_worker_death_is_an_error_and_the_worker_is_replaced(make_pool, payload, expected):
    pool = make_pool(num_workers=1)
    old_pid = pid_of(pool)
    result = pool.call(payload, 10)
    assert not result.ok and not result.timed_out
    assert expected in result.error
    assert reaped(old_pid)
    assert pid_of(pool) not in (old_pid, None)
    assert pool.stats["restarts"] == 1


def test_garbled_output_kills_the_worker(make_pool):
    pool = make_pool(num_workers=1)
    old_pid = pid_of(pool)
    start = time.monotonic()
    result = pool.call({"op": "garble"}, 10)  # the handler would sleep 5 s after writing garbage
    assert time.monotonic() - start < 2.0
    assert not result.ok and "garbage" in result.error
    assert reaped(old_pid)
    assert pid_of(pool) != old_pid
    assert pool.stats["crashes"] == 1


def test_runaway_big_int_is_stopped(make_pool):
    # 9 ** (9 ** 9) is one C call holding the GIL for minutes; only killing the process stops it.
    pool = make_pool(num_workers=1, memory_limit_mb=2048)
    old_pid = pid_of(pool)
    start = time.monotonic()
    result = pool.call({"op": "big_int"}, 1.0)
    assert time.monotonic() - start < 1.0 + SLACK_S
    assert not result.ok and (result.timed_out or "MemoryError" in result.error)
    assert reaped(old_pid)
    assert pool.call({"op": "echo", "after": 1}, 10).ok


def test_memory_limit_turns_a_huge_allocation_into_an_error(make_pool):
    pool = make_pool(num_workers=1, memory_limit_mb=512)
    assert pool.call({"op": "allocate", "mb": 64}, 10).value == {"len": 64 << 20}
    old_pid = pid_of(pool)
    start = time.monotonic()
    result = pool.call({"op": "allocate", "mb": 4096}, 10)
    assert time.monotonic() - start < 2.0  # refused at once, not swapped
    assert not result.ok and not result.timed_out and "MemoryError" in result.error
    # A worker that hit MemoryError is retired (its heap may be damaged) and replaced.
    assert reaped(old_pid)
    assert pid_of(pool) != old_pid


def test_sigint_does_not_kill_workers(make_pool):
    pool = make_pool(num_workers=1)
    pid = pid_of(pool)
    os.kill(pid, signal.SIGINT)
    time.sleep(0.1)
    assert pid_of(pool) == pid


def test_worker_dead_while_idle_is_replaced_transparently(make_pool):
    pool = make_pool(num_workers=1)
    pid = pid_of(pool)
    os.kill(pid, signal.SIGKILL)  # e.g. the kernel OOM killer
    time.sleep(0.1)
    assert pid_of(pool) != pid
    assert reaped(pid)


# ---- start-up ----------------------------------------------------------------------------------------------


def test_startup_time_does_not_count_against_the_call_timeout(make_pool):
    pool = make_pool(num_workers=1, env={"POOL_HANDLERS_IMPORT_DELAY_S": "1.0"})
    result = pool.call({"op": "echo"}, 0.3)
    assert result.ok, result.error
    assert result.elapsed_s >= 1.0


def test_startup_timeout_is_an_error(make_pool):
    pool = make_pool(num_workers=1, startup_timeout_s=0.5, env={"POOL_HANDLERS_IMPORT_DELAY_S": "30"})
    start = time.monotonic()
    result = pool.call({"op": "echo"}, 10)
    assert time.monotonic() - start < 0.5 + SLACK_S
    assert not result.ok and not result.timed_out and "startup_timeout_s" in result.error
    assert pool.stats["start_failures"] == 1
    assert wait_until(lambda: pool.stats["alive"] == 0)


@pytest.mark.parametrize(
    ("handler", "env", "expected"),
    [
        (DISPATCH, {"POOL_HANDLERS_IMPORT_FAIL": "1"}, "import failure requested"),
        ("tests.core.pool_handlers:missing_function", {}, "missing_function"),
        ("no_such_module_xyz:f", {}, "No module named 'no_such_module_xyz'"),
    ],
)
def test_handler_import_failure_is_an_error(make_pool, handler, env, expected):
    before = worker_children()  # workers of shared scorers that earlier tests in this process left running
    pool = make_pool(handler, num_workers=1, env=env)
    for _ in range(2):  # the slot is usable again after a failed start
        result = pool.call({"op": "echo"}, 10)
        assert not result.ok and "start-up failed" in result.error and expected in result.error
    assert wait_until(lambda: not (worker_children() - before))


def test_waiting_for_a_free_worker_is_bounded(make_pool):
    pool = make_pool(num_workers=1, acquire_timeout_s=0.3)
    pid_of(pool)
    holder = threading.Thread(target=pool.call, args=({"op": "sleep", "s": 1.5}, 5))
    holder.start()
    time.sleep(0.1)
    start = time.monotonic()
    result = pool.call({"op": "echo"}, 5)
    waited = time.monotonic() - start
    holder.join()
    assert 0.15 <= waited < 1.0
    assert not result.ok and not result.timed_out and "no free worker" in result.error


# ---- concurrency -------------------------------------------------------------------------------------------


def test_many_threads_get_their_own_results(make_pool):
    pool = make_pool(num_workers=3)
    results: dict[tuple[int, int], PoolResult] = {}
    lock = threading.Lock()

    def run(thread: int) -> None:
        for i in range(20):
            result = pool.call({"op": "echo", "thread": thread, "i": i, "text": f"\x00{thread}\ud800{i}"}, 10)
            with lock:
                results[thread, i] = result

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160
    for (thread, i), result in results.items():
        assert result.ok, result.error
        assert result.value["echo"] == {"op": "echo", "thread": thread, "i": i, "text": f"\x00{thread}\ud800{i}"}
    assert len({r.value["pid"] for r in results.values()}) <= 3
    stats = pool.stats
    assert stats["calls"] == 160 and stats["ok"] == 160 and stats["starts"] == 3 and stats["alive"] == 3


def test_workers_outlive_the_thread_that_first_needed_them(make_pool):
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; workers must be forked by the pool's own thread.
    pool = make_pool(num_workers=1)
    box: list[int] = []
    starter = threading.Thread(target=lambda: box.append(pid_of(pool)))
    starter.start()
    starter.join()
    time.sleep(0.3)
    assert pid_of(pool) == box[0]


def test_concurrent_timeouts_and_crashes_do_not_mix_up_results(make_pool):
    pool = make_pool(num_workers=2)
    outcomes: list[tuple[str, PoolResult, int]] = []
    lock = threading.Lock()

    def run(thread: int) -> None:
        for i in range(8):
            kind = ("sleep", "exit_hard", "echo", "echo")[(thread + i) % 4]
            payload = {"op": kind, "s": 30, "code": 5, "tag": f"{thread}-{i}"}
            result = pool.call(payload, 0.3 if kind == "sleep" else 10)
            with lock:
                outcomes.append((kind, result, i + 100 * thread))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 64
    for kind, result, _ in outcomes:
        if kind == "echo":
            assert result.ok, result.error
            assert result.value["echo"]["op"] == "echo"
        elif kind == "sleep":
            assert result.timed_out and not result.ok
        else:
            assert not result.ok and not result.timed_out and "exit code 5" in result.error
    tags = [r.value["echo"]["tag"] for k, r, _ in outcomes if k == "echo"]
    assert len(tags) == len(set(tags)) == 32
    stats = pool.stats
    assert stats["timeouts"] == 16 and stats["crashes"] == 16 and stats["ok"] == 32
    assert stats["restarts"] == 32
    assert wait_until(lambda: pool.stats["alive"] == 2)
    assert len(worker_children()) >= 2


# ---- lifecycle: no leaked processes --------------------------------------------------------------------------


def test_stats_counters(make_pool):
    pool = make_pool(num_workers=1)
    assert pool.stats == dict.fromkeys(
        ("calls", "ok", "errors", "timeouts", "crashes", "start_failures", "starts", "restarts", "alive"), 0
    )
    assert pool.call({"op": "echo"}, 10).ok
    assert not pool.call({"op": "fail"}, 10).ok
    assert pool.call({"op": "sleep", "s": 30}, 0.2).timed_out
    assert not pool.call({"op": "exit_hard"}, 10).ok
    assert wait_until(lambda: pool.stats["alive"] == 1)
    stats = pool.stats
    assert stats == {
        "calls": 4,
        "ok": 1,
        "errors": 1,
        "timeouts": 1,
        "crashes": 1,
        "start_failures": 0,
        "starts": 3,
        "restarts": 2,
        "alive": 1,
    }


def test_close_leaves_no_child_processes():
    before = worker_children()
    with WorkerPool(DISPATCH, num_workers=2, env=ENV) as pool:
        barrier = threading.Barrier(2)

        def use() -> None:
            barrier.wait()
            assert pool.call({"op": "sleep", "s": 0.2}, 10).ok

        threads = [threading.Thread(target=use) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mine = worker_children() - before
        assert len(mine) == 2
    assert pool.closed
    assert all(reaped(pid) for pid in mine)
    assert worker_children() - before == set()
    pool.close()  # idempotent
    result = pool.call({"op": "echo"}, 10)
    assert not result.ok and "closed" in result.error
    assert worker_children() - before == set()


def test_close_while_a_call_is_running(make_pool):
    pool = make_pool(num_workers=1)
    pid = pid_of(pool)
    box: list[PoolResult] = []
    caller = threading.Thread(target=lambda: box.append(pool.call({"op": "sleep", "s": 30}, 60)))
    caller.start()
    time.sleep(0.2)
    start = time.monotonic()
    pool.close()
    caller.join(5)
    assert not caller.is_alive() and time.monotonic() - start < 2.0
    assert not box[0].ok and "closed" in box[0].error
    assert reaped(pid)


def test_garbage_collected_pool_kills_its_workers():
    before = worker_children()
    pool = WorkerPool(DISPATCH, num_workers=2, env=ENV)
    assert pool.call({"op": "echo"}, 10).ok
    assert wait_until(lambda: len(worker_children() - before) == 2)
    mine = worker_children() - before
    ref = weakref.ref(pool)
    del pool
    assert ref() is None  # no reference cycle keeps an unclosed pool alive until the next gc run
    assert wait_until(lambda: all(reaped(pid) for pid in mine), 2.0)


PARENT_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    from verl_pdai.core.worker_pool import WorkerPool

    pool = WorkerPool("tests.core.pool_handlers:dispatch", num_workers=2)
    assert pool.call({"op": "pid"}, 30).ok  # one worker idle afterwards
    threading.Thread(target=pool.call, args=({"op": "sleep", "s": 60}, 120), daemon=True).start()
    time.sleep(0.3)  # the other worker is now busy in the handler
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_workers_die_with_a_killed_parent():
    with subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
            workers = worker_children(parent.pid)
            assert len(workers) == 2
        finally:
            parent.kill()  # SIGKILL: no atexit, no finalizer runs
    # The idle worker sees EOF on stdin; the busy one gets PR_SET_PDEATHSIG.
    assert wait_until(lambda: all(gone_or_zombie(pid) for pid in workers), 5.0)
