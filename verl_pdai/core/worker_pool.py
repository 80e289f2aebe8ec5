"""A small pool of killable worker processes for untrusted, possibly runaway work (stdlib only).

Scoring model output with sympy can hang or eat memory on adversarial text (``9^{9^{9^{9}}}``, huge factorials,
thousands of nested braces). The scorer runs in threads of verl's async Ray actors, where signal-based timeouts do
not work and a C-level big-int operation cannot be interrupted anyway. So each call runs in a separate process that
the parent kills (SIGKILL) at a hard wall-clock bound and replaces.

Design:

* Workers are ``subprocess.Popen([sys.executable, "-m", "verl_pdai.core.pool_worker", handler, ...])``: no fork of
  the (threaded, Ray-owned) parent and no ``multiprocessing`` spawn, which would re-import the parent's ``__main__``.
* Protocol: one line of ASCII JSON per message (``ensure_ascii=True`` on both sides), read with ``poll`` and a
  deadline, never a blocking ``readline``. No pickle. See :mod:`verl_pdai.core.pool_worker`.
* Timeouts: ``timeout_s`` bounds a call from the moment it holds a *ready* worker (sending, handling, replying).
  Worker start-up (importing sympy takes 1-2 s) is bounded separately by ``startup_timeout_s``, and waiting for a
  free worker by ``acquire_timeout_s``; each of those returns an error result instead of hanging.
* On timeout, crash (non-zero exit, signal, OOM kill) or garbled output, the worker's process group gets SIGKILL,
  the process is reaped (no zombie), a replacement is started at once in the background, and the call returns an
  error :class:`PoolResult`. ``call`` never raises.
* Workers are started from one long-lived "spawner" thread per pool: ``PR_SET_PDEATHSIG`` (set by the worker)
  fires when the *thread* that forked it exits, so forking from short-lived caller threads would kill workers.
* No leaks: ``close()``, ``weakref.finalize`` (runs on garbage collection and at interpreter exit), stdin EOF in
  the worker when the parent dies, and ``PR_SET_PDEATHSIG`` for a worker busy in a handler.
* ``fork()`` (e.g. a ``multiprocessing`` pool with the fork start method): the child inherits the pool's objects
  but not its threads, and maybe a lock another thread held. An ``os.register_at_fork`` hook resets every pool in
  the child (fresh locks, slots and spawner, the parent's workers forgotten, its pipe ends closed there), so the
  child's first call starts workers of its own. The parent's pool is untouched.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import math
import os
import select
import signal
import site
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from verl_pdai.core.pool_worker import DEFAULT_RECURSION_LIMIT, EXTRA_PATH_ENV

__all__ = ["PoolResult", "WorkerPool"]

_WORKER_MODULE = "verl_pdai.core.pool_worker"
# A reply larger than this is treated as garbage: it protects the parent's memory from a runaway handler.
_MAX_REPLY_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 1 << 20
# After EOF or a "fatal" reply the worker is exiting by itself; give it this long before SIGKILL, to report its code.
_EXIT_GRACE_S = 0.5
_REAP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PoolResult:
    ok: bool  # handler returned a value
    value: dict | None
    timed_out: bool  # killed at the wall-clock bound
    error: str | None  # handler exception text, worker crash, etc.
    elapsed_s: float  # total wall time of the call, including any wait for a worker and its start-up
    queue_wait_s: float = 0.0  # of which waiting for a free worker (acall: from submission, executor queue included)


def _failed(t0: float, error: str, *, timed_out: bool = False) -> PoolResult:
    return PoolResult(False, None, timed_out, error, time.monotonic() - t0)


class _WorkerDied(Exception):
    """The worker closed its end of a pipe (it exited or was killed)."""


class _Garbled(Exception):
    """The worker wrote something that is not a valid protocol message."""


def _exit_text(returncode: int | None) -> str:
    if returncode is None:
        return "unknown exit status"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class _Worker:
    """One worker process. Owned by one caller at a time; ``lock`` only guards process state (poll/kill/wait)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.pid = proc.pid
        self.ready = False
        self.lock = threading.Lock()
        self._in_fd = proc.stdin.fileno()
        self._out_fd = proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no newline
        self._read_poll = select.poll()
        self._read_poll.register(self._out_fd, select.POLLIN)
        self._write_poll = select.poll()
        self._write_poll.register(self._in_fd, select.POLLOUT)

    @property
    def has_pending_output(self) -> bool:
        return bool(self._buf)

    def is_alive(self) -> bool:
        with self.lock:
            return self.proc.poll() is None

    def write(self, data: bytes, deadline: float) -> bool:
        """Write all of ``data``; False if the deadline passed first. Raises _WorkerDied on a broken pipe."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._in_fd, view)
            except BlockingIOError:
                written = 0
            except (BrokenPipeError, ConnectionResetError, ValueError, OSError) as exc:
                raise _WorkerDied(str(exc)) from exc
            view = view[written:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._write_poll.poll(math.ceil(remaining * 1000))
        return True

    def read_line(self, deadline: float) -> bytes | None:
        """Next line without its newline; None if the deadline passed first. Raises _WorkerDied on EOF."""
        while True:
            idx = self._buf.find(b"\n", self._scanned)
            if idx >= 0:
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buf)
            if len(self._buf) > _MAX_REPLY_BYTES:
                raise _Garbled(f"reply longer than {_MAX_REPLY_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._read_poll.poll(math.ceil(remaining * 1000)):
                continue  # re-check the deadline
            try:
                chunk = os.read(self._out_fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            except (ValueError, OSError) as exc:
                raise _WorkerDied(str(exc)) from exc
            if not chunk:
                raise _WorkerDied("end of output")
            self._buf += chunk

    def kill(self, grace_s: float = 0.0, *, close_pipes: bool = True) -> int | None:
        """Stop the process (SIGKILL to its process group, after ``grace_s`` to exit by itself) and reap it."""
        with self.lock:
            if grace_s > 0 and self.proc.returncode is None:
                try:
                    self.proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.returncode is None:
                # The worker leads its own session, so this also reaches anything the handler started. The pid
                # cannot have been reused: the process is not reaped yet.
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                except OSError:
                    self.proc.kill()
                try:
                    self.proc.wait(timeout=_REAP_TIMEOUT_S)
                except subprocess.TimeoutExpired:  # e.g. stuck in uninterruptible I/O: reap it later
                    threading.Thread(target=self.proc.wait, name="pool-reaper", daemon=True).start()
            for pipe in (self.proc.stdin, self.proc.stdout) if close_pipes else ():
                try:
                    if pipe is not None:
                        pipe.close()
                except OSError:
                    pass
            return self.proc.returncode

    def forget(self) -> None:
        """In a forked child: close this process's copies of the pipes; never signal, wait for or read the worker,
        which belongs to the parent. Not under ``lock``: the fork may have copied it held."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        # Kept for good: Popen.__del__ would warn about, and try to reap, a process that is not our child.
        _FORGOTTEN.append(self.proc)


_FORGOTTEN: list[subprocess.Popen[bytes]] = []


class _Slot:
    """A place for one worker. A caller owns a slot from acquire to release."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.worker: _Worker | None = None
        self.pending: Future[_Worker] | None = None  # a worker being started for this slot


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    """Environment of the workers: ours, overridden by ``env``, plus what is needed to import the worker module.

    The directory holding ``verl_pdai`` goes on PYTHONPATH unless it is a site directory (adding site-packages to
    PYTHONPATH would let it shadow the stdlib). The parent's other sys.path entries (e.g. a Ray working_dir) are
    passed in EXTRA_PATH_ENV and *appended* by the worker, so a handler importable here is importable there.
    """
    child = dict(os.environ)
    if env:
        child.update(env)
    pkg_root = str(Path(__file__).resolve().parents[2])
    site_dirs = {str(Path(p).resolve()) for p in getattr(site, "getsitepackages", list)()}
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        site_dirs.add(str(Path(site.getusersitepackages()).resolve()))
    python_path = [p for p in child.get("PYTHONPATH", "").split(os.pathsep) if p]
    if pkg_root not in site_dirs and pkg_root not in python_path:
        python_path.append(pkg_root)
    if python_path:
        child["PYTHONPATH"] = os.pathsep.join(python_path)
    extra = [p for p in sys.path if p and p not in python_path]
    child[EXTRA_PATH_ENV] = os.pathsep.join(extra)
    return child


class _PoolState:
    """Everything the pool owns. Kept apart from WorkerPool so that the finalizer and threads do not keep the
    WorkerPool object alive (which would defeat ``weakref.finalize``)."""

    def __init__(
        self,
        handler: str,
        num_workers: int,
        memory_limit_mb: int | None,
        startup_timeout_s: float,
        acquire_timeout_s: float,
        env: dict[str, str],
    ) -> None:
        self.handler = handler
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout_s = startup_timeout_s
        self.acquire_timeout_s = acquire_timeout_s
        self.env = env
        self.cond = threading.Condition()
        self.slots = [_Slot(i) for i in range(num_workers)]
        # Slots not owned by a caller; pop() takes the hot end (see _release).
        self.idle: deque[_Slot] = deque(self.slots)
        self.waiting: deque[object] = deque()  # callers waiting for a slot, first come first served
        self.workers: set[_Worker] = set()
        self.spawner: ThreadPoolExecutor | None = None
        self.closed = False
        self.owner_pid = os.getpid()
        self.prewarmed = False
        self.request_ids = itertools.count(1)
        self.counts = dict.fromkeys(
            ("calls", "ok", "errors", "timeouts", "crashes", "start_failures", "starts", "restarts"), 0
        )
        _track(self)

    # ---- spawning -------------------------------------------------------------------------------------------

    def _argv(self) -> list[str]:
        argv = [sys.executable, "-m", _WORKER_MODULE, self.handler, "--parent-pid", str(os.getpid())]
        argv += ["--recursion-limit", str(DEFAULT_RECURSION_LIMIT)]
        if self.memory_limit_mb is not None:
            argv += ["--memory-limit-mb", str(self.memory_limit_mb)]
        return argv

    def _spawn(self) -> _Worker:
        """Runs in the spawner thread only (see PR_SET_PDEATHSIG in the module docstring)."""
        proc = subprocess.Popen(
            self._argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # inherited: tracebacks and handler prints land in the actor's log
            bufsize=0,
            close_fds=True,
            start_new_session=True,  # own process group: killpg reaches grandchildren; no terminal SIGINT
            env=self.env,
        )
        worker = _Worker(proc)
        with self.cond:
            closed = self.closed
            if not closed:
                self.workers.add(worker)
                self.counts["starts"] += 1
        if closed:  # close() ran while we were starting it
            worker.kill()
            raise RuntimeError("pool is closed")
        return worker

    def _request_spawn(self) -> Future[_Worker]:
        """Start a worker in the background. Called with ``cond`` held."""
        try:
            if self.spawner is None:
                self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-spawner")
            return self.spawner.submit(self._spawn)
        except RuntimeError as exc:  # interpreter shutting down
            failed: Future[_Worker] = Future()
            failed.set_exception(exc)
            return failed

    def _retire(self, slot: _Slot, worker: _Worker, *, replace: bool, grace_s: float = 0.0) -> int | None:
        """Kill and reap ``worker`` (owned by the caller through ``slot``); optionally start its replacement."""
        returncode = worker.kill(grace_s)
        with self.cond:
            self.workers.discard(worker)
            if slot.worker is worker:
                slot.worker = None
            if replace and not self.closed and slot.pending is None:
                slot.pending = self._request_spawn()
                self.counts["restarts"] += 1
        return returncode

    # ---- slots ----------------------------------------------------------------------------------------------

    def _acquire(self, deadline: float) -> _Slot | str:
        with self.cond:
            if not self.prewarmed and not self.closed:
                # First call: start every worker now, so their imports overlap instead of hitting later calls.
                self.prewarmed = True
                for slot in self.slots:
                    if slot.worker is None and slot.pending is None:
                        slot.pending = self._request_spawn()
            if self.idle and not self.waiting:
                return self.idle.pop()
            # First come, first served: a caller that just released a slot must not take it again ahead of the
            # threads already waiting (a plain condition let two busy callers starve the rest past their bound).
            ticket = object()
            self.waiting.append(ticket)
            try:
                while True:
                    if self.closed:
                        return "pool is closed"
                    if self.idle and self.waiting[0] is ticket:
                        return self.idle.pop()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return f"no free worker within the queue bound of {self.acquire_timeout_s:g}s"
                    self.cond.wait(remaining)
            finally:
                self.waiting.remove(ticket)
                self.cond.notify_all()  # the next in line may take a free slot now

    def _release(self, slot: _Slot) -> None:
        with self.cond:
            # A ready worker goes on the hot end (LIFO reuse, warm caches); a slot whose replacement is still
            # starting goes on the cold end, so the next call takes a ready spare instead of waiting for imports.
            if slot.worker is not None and slot.worker.ready:
                self.idle.append(slot)
            else:
                self.idle.appendleft(slot)
            self.cond.notify_all()  # only the first waiter in line takes it

    def _ready_worker(self, slot: _Slot) -> _Worker | str:
        """The slot's worker, started and past its ready line; or an error text."""
        worker = slot.worker
        if worker is not None and not worker.is_alive():  # died while idle (e.g. OOM killer): replace quietly
            with self.cond:
                self.counts["crashes"] += 1
            self._retire(slot, worker, replace=False)
            worker = None
        if worker is None:
            with self.cond:
                if self.closed:
                    return "pool is closed"
                if slot.pending is None:
                    slot.pending = self._request_spawn()
                pending = slot.pending
            try:
                worker = pending.result(timeout=self.startup_timeout_s)
            except FutureTimeoutError:  # keep slot.pending: the next caller waits on the same start
                return f"worker was not started within startup_timeout_s={self.startup_timeout_s:g}s"
            except Exception as exc:
                with self.cond:
                    slot.pending = None
                    if self.closed:
                        return "pool is closed"
                    self.counts["start_failures"] += 1
                return f"cannot start worker: {type(exc).__name__}: {exc}"
            with self.cond:
                slot.pending = None
                slot.worker = worker
        if worker.ready:
            return worker
        # Start-up (handler import) is bounded by startup_timeout_s, not by the call's timeout.
        try:
            line = worker.read_line(time.monotonic() + self.startup_timeout_s)
            message = json.loads(line.decode("ascii")) if line is not None else None
        except (_WorkerDied, _Garbled, ValueError, RecursionError) as exc:
            message = exc
        if isinstance(message, dict) and message.get("ready") is True:
            worker.ready = True
            return worker
        with self.cond:
            closed = self.closed
            if not closed:
                self.counts["start_failures"] += 1
        if closed:  # close() killed it while it was starting
            self._retire(slot, worker, replace=False)
            return "pool is closed"
        if message is None:
            self._retire(slot, worker, replace=False)
            return f"worker did not start within startup_timeout_s={self.startup_timeout_s:g}s"
        returncode = self._retire(slot, worker, replace=False, grace_s=_EXIT_GRACE_S)
        if isinstance(message, dict) and isinstance(message.get("error"), str):
            return f"worker start-up failed: {message['error']}"
        return f"worker start-up failed ({_exit_text(returncode)}): {message!r}"

    # ---- calls ----------------------------------------------------------------------------------------------

    def call(self, payload: dict, timeout_s: float, submitted: float | None = None) -> PoolResult:
        """``submitted``: when the call was queued (``acall``), so the wait in an executor counts as queueing."""
        t0 = time.monotonic() if submitted is None else submitted
        with self.cond:
            self.counts["calls"] += 1
        if not isinstance(timeout_s, int | float) or not timeout_s > 0 or math.isinf(timeout_s):
            return _failed(t0, f"timeout_s must be a finite number > 0, got {timeout_s!r}")
        request_id = next(self.request_ids)
        try:
            data = json.dumps({"id": request_id, "payload": payload}, ensure_ascii=True).encode("ascii") + b"\n"
        except Exception as exc:  # TypeError (unknown type), ValueError (circular), RecursionError (too deep)
            return _failed(t0, f"payload is not JSON-encodable: {type(exc).__name__}: {exc}")

        slot = self._acquire(t0 + self.acquire_timeout_s)
        queue_wait_s = time.monotonic() - t0
        if isinstance(slot, str):
            return replace(_failed(t0, slot), queue_wait_s=queue_wait_s)
        try:
            worker = self._ready_worker(slot)
            if isinstance(worker, str):
                result = _failed(t0, worker)
            else:
                result = self._call_on(slot, worker, request_id, data, timeout_s, t0)
        finally:
            self._release(slot)
        return replace(result, queue_wait_s=queue_wait_s)

    def _call_on(
        self, slot: _Slot, worker: _Worker, request_id: int, data: bytes, timeout_s: float, t0: float
    ) -> PoolResult:
        # The call's own clock starts here: the worker is ready and ours.
        deadline = time.monotonic() + timeout_s
        try:
            line = worker.read_line(deadline) if worker.write(data, deadline) else None
        except (_WorkerDied, _Garbled) as exc:
            closed = self.closed
            if not closed:
                with self.cond:
                    self.counts["crashes"] += 1
            returncode = self._retire(slot, worker, replace=True, grace_s=_EXIT_GRACE_S)
            if closed or self.closed:
                return _failed(t0, "pool was closed during the call")
            what = "wrote garbage" if isinstance(exc, _Garbled) else "died"
            return _failed(t0, f"worker {worker.pid} {what} during the call ({_exit_text(returncode)}): {exc}")
        if line is None:
            with self.cond:
                self.counts["timeouts"] += 1
            self._retire(slot, worker, replace=True)
            return _failed(t0, f"timed out after {timeout_s:g}s; worker {worker.pid} killed", timed_out=True)

        try:
            reply = json.loads(line.decode("ascii"))
        except RecursionError:  # our own stack, not the worker's fault: keep the worker
            return _failed(t0, "reply too deeply nested to decode")
        except ValueError:  # includes UnicodeDecodeError: the protocol is ASCII only
            reply = None
        if not isinstance(reply, dict) or reply.get("id") != request_id or not isinstance(reply.get("ok"), bool):
            with self.cond:
                self.counts["crashes"] += 1
            self._retire(slot, worker, replace=True)
            return _failed(t0, f"worker {worker.pid} wrote garbage: {line[:200]!r}")
        if worker.has_pending_output:  # more than one line per request: out of sync, start afresh
            with self.cond:
                self.counts["crashes"] += 1
            self._retire(slot, worker, replace=True)
        if reply["ok"] and isinstance(reply.get("value"), dict):
            with self.cond:
                self.counts["ok"] += 1
            return PoolResult(True, reply["value"], False, None, time.monotonic() - t0)
        with self.cond:
            self.counts["errors"] += 1
        if reply.get("fatal"):  # the worker exits after this reply (e.g. MemoryError)
            self._retire(slot, worker, replace=True, grace_s=_EXIT_GRACE_S)
        return _failed(t0, str(reply.get("error") or "handler failed without a message"))

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def reset_after_fork(self) -> None:
        """In a forked child: start over as a pool of this process with no worker yet (the next call starts them).

        Nothing inherited is trusted: locks may have been copied held by threads that do not exist here, the spawner
        thread is gone, and the slots' workers and the calls that owned them belong to the parent.
        """
        for worker in self.workers:
            worker.forget()
        self.cond = threading.Condition()
        self.slots = [_Slot(i) for i in range(len(self.slots))]
        self.idle = deque(self.slots)
        self.waiting = deque()
        self.workers = set()
        self.spawner = None
        self.owner_pid = os.getpid()
        self.prewarmed = False
        self.counts = dict.fromkeys(self.counts, 0)

    def stats(self) -> dict[str, int]:
        with self.cond:
            counts = dict(self.counts)
            workers = list(self.workers)
        counts["alive"] = sum(1 for w in workers if w.is_alive())
        return counts

    def close(self) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            workers = list(self.workers)
            self.workers.clear()
            # Idle slots can no longer be acquired once closed, so nobody reads their pipes any more.
            unowned = {slot.worker for slot in self.idle if slot.worker is not None}
            for slot in self.idle:
                if slot.pending is not None and slot.pending.done() and slot.pending.exception() is None:
                    unowned.add(slot.pending.result())
            spawner = self.spawner
            self.cond.notify_all()
        if os.getpid() != self.owner_pid:  # a forked copy of this pool: the workers belong to the parent
            return
        for worker in workers:
            # A worker owned by a caller keeps its pipes open: closing an fd another thread polls could let it read
            # a reused fd number. The owner sees EOF from the killed process and closes them in _retire.
            worker.kill(close_pipes=worker in unowned)
        if spawner is not None:
            spawner.shutdown(wait=False, cancel_futures=True)


# Every live pool of this process, for the fork hook below.
_pools: weakref.WeakSet[_PoolState] = weakref.WeakSet()
_pools_lock = threading.Lock()


def _track(state: _PoolState) -> None:
    with _pools_lock:
        _pools.add(state)


def _reset_pools_in_child() -> None:
    """``os.register_at_fork`` hook: runs in the child right after ``fork()``, in its only thread."""
    global _pools_lock
    _pools_lock = threading.Lock()  # may have been copied held by another thread of the parent
    for state in list(_pools):
        state.reset_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_reset_pools_in_child)


class WorkerPool:
    """Run ``handler(payload) -> dict`` in killable worker processes, with a hard wall-clock bound per call.

    ``handler`` is ``"package.module:function"``, imported once in each worker. The worker sees this process's
    environment (overridden by ``env``) and sys.path. ``memory_limit_mb`` sets RLIMIT_AS in each worker, so a
    runaway allocation raises MemoryError there (the worker is then replaced); ``None`` disables it.

    Time limits: ``timeout_s`` of a call starts when the call holds a ready worker. Starting a worker is bounded by
    ``startup_timeout_s`` and waiting for a free one by ``acquire_timeout_s`` (for ``acall``, from the moment it is
    submitted); both return an error result. ``PoolResult.queue_wait_s`` says how long a call waited.
    ``call`` is thread-safe and never raises; all failures are :class:`PoolResult` with ``ok=False``.
    """

    def __init__(
        self,
        handler: str,
        *,
        num_workers: int = 2,
        memory_limit_mb: int | None = 2048,
        startup_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
        acquire_timeout_s: float = 600.0,
    ) -> None:
        module_name, sep, attr = handler.partition(":")
        if not (module_name and sep and attr):
            raise ValueError(f"handler must look like 'package.module:function', got {handler!r}")
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if memory_limit_mb is not None and memory_limit_mb < 1:
            raise ValueError(f"memory_limit_mb must be >= 1 or None, got {memory_limit_mb}")
        if not startup_timeout_s > 0 or not acquire_timeout_s > 0:
            raise ValueError("startup_timeout_s and acquire_timeout_s must be > 0")
        self.handler = handler
        self.num_workers = num_workers
        self._state = _PoolState(
            handler, num_workers, memory_limit_mb, startup_timeout_s, acquire_timeout_s, _child_env(env)
        )
        # Runs close on garbage collection and, being atexit=True by default, at interpreter exit.
        self._finalizer = weakref.finalize(self, _PoolState.close, self._state)

    def call(self, payload: dict, timeout_s: float) -> PoolResult:
        """Run the handler on ``payload`` in a worker; blocks at most about ``timeout_s`` once a worker is ready."""
        return self._state.call(payload, timeout_s)

    async def acall(self, payload: dict, timeout_s: float) -> PoolResult:
        """``call`` in the loop's default executor. Cancelling the await does not stop the (bounded) call."""
        loop = asyncio.get_running_loop()
        # The time queued in the executor (busy with other calls) counts against acquire_timeout_s.
        call = functools.partial(self._state.call, payload, timeout_s, time.monotonic())
        return await loop.run_in_executor(None, call)

    def close(self) -> None:
        """Kill and reap all workers. Idempotent; later calls return an error result."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def stats(self) -> dict[str, int]:
        """Counters: calls, ok, errors (handler raised), timeouts, crashes (worker died or wrote garbage),
        start_failures, starts (processes started), restarts (replacements after a kill), alive (live workers)."""
        return self._state.stats()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
