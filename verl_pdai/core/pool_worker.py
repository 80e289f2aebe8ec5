"""Worker process of :class:`verl_pdai.core.worker_pool.WorkerPool` (stdlib only).

Run as ``python -m verl_pdai.core.pool_worker package.module:function [--memory-limit-mb N] ...``.

Protocol: newline-delimited JSON, ASCII only (``ensure_ascii=True``), so NUL bytes, lone surrogates and odd unicode
travel as ``\\uXXXX`` escapes and can never contain a raw newline that would break the framing.

* worker -> parent, once, after importing the handler: ``{"ready": true, "pid": N}`` or
  ``{"ready": false, "error": "..."}`` (then exit 1).
* parent -> worker: ``{"id": N, "payload": {...}}``
* worker -> parent: ``{"id": N, "ok": true, "value": {...}}`` or ``{"id": N, "ok": false, "error": "...",
  "fatal": bool}``. ``fatal`` means the worker exits right after the reply (e.g. after a MemoryError its heap may be
  in a bad state) and the parent should replace it.

The protocol runs on private duplicates of fds 0 and 1; fd 0 becomes /dev/null and fd 1 a copy of stderr, so a
handler that prints (from Python or C) cannot corrupt the channel or swallow requests.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

# Env var holding extra sys.path entries (os.pathsep-joined) from the parent; appended, so they never shadow
# what the worker would import by itself.
EXTRA_PATH_ENV = "VERL_PDAI_POOL_EXTRA_PATH"
DEFAULT_RECURSION_LIMIT = 4000
_MAX_ERROR_CHARS = 4000

# fd the replies go to; module-level so tests can deliberately garble the channel.
_proto_out_fd: int = -1


def _set_parent_death_signal() -> bool:
    """Best effort: ask Linux to SIGKILL us when the parent thread that spawned us dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0) == 0
    except Exception:
        return False


def _watch_parent(parent_pid: int) -> None:
    """Fallback for platforms without PR_SET_PDEATHSIG: exit once we are re-parented (the parent died)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _set_memory_limit(memory_limit_mb: int) -> None:
    import resource

    limit = memory_limit_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _load_handler(spec: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"handler spec must look like 'package.module:function', got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"handler {spec!r} is not callable")
    return obj


def _describe(exc: BaseException) -> str:
    try:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    except BaseException:  # str(exc) itself can fail (e.g. a huge int in the message)
        text = type(exc).__name__
    return text[:_MAX_ERROR_CHARS]


def _send(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n")
    out.flush()


def _serve(handler: Callable[[dict[str, Any]], dict[str, Any]], inp: BinaryIO, out: BinaryIO) -> int:
    while True:
        line = inp.readline()
        if not line:  # EOF: the parent closed the pipe or died
            return 0
        request_id: Any = None
        fatal = False
        try:
            request = json.loads(line)
            request_id = request["id"]
            value = handler(request["payload"])
            if not isinstance(value, dict):
                raise TypeError(f"handler returned {type(value).__name__}, expected dict")
            # Encode here, inside the try, so an unencodable value becomes an error reply, not a dead worker.
            data = json.dumps({"id": request_id, "ok": True, "value": value}, ensure_ascii=True).encode("ascii")
        except BaseException as exc:  # noqa: BLE001 - every handler failure must become a reply
            fatal = isinstance(exc, MemoryError | SystemExit)
            try:
                data = json.dumps(
                    {"id": request_id, "ok": False, "error": _describe(exc), "fatal": fatal}, ensure_ascii=True
                ).encode("ascii")
            except BaseException:
                data = json.dumps({"id": request_id, "ok": False, "error": "MemoryError", "fatal": True}).encode()
                fatal = True
        out.write(data + b"\n")
        out.flush()
        del data
        if fatal:
            return 1


def main(argv: list[str] | None = None) -> int:
    global _proto_out_fd
    import argparse  # here, so that importing this module (for its constants) stays cheap

    parser = argparse.ArgumentParser(prog="python -m verl_pdai.core.pool_worker")
    parser.add_argument("handler", help="package.module:function")
    parser.add_argument("--memory-limit-mb", type=int, default=None)
    parser.add_argument("--recursion-limit", type=int, default=DEFAULT_RECURSION_LIMIT)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)

    # Ctrl-C in a terminal hits the whole foreground group; the parent decides when workers die.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.parent_pid is not None:
        if not _set_parent_death_signal():
            threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
        if os.getppid() != args.parent_pid:  # the parent died before prctl took effect
            return 0

    # Move the protocol onto private fds before any handler code runs.
    proto_in_fd = os.dup(0)
    _proto_out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = os.fdopen(proto_in_fd, "rb")
    out = os.fdopen(_proto_out_fd, "wb")

    try:
        if args.memory_limit_mb is not None:
            _set_memory_limit(args.memory_limit_mb)
        sys.setrecursionlimit(args.recursion_limit)
        for entry in os.environ.get(EXTRA_PATH_ENV, "").split(os.pathsep):
            if entry and entry not in sys.path:
                sys.path.append(entry)
        handler = _load_handler(args.handler)
    except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the parent
        _send(out, {"ready": False, "error": f"cannot load handler {args.handler!r}: {_describe(exc)}"})
        return 1
    _send(out, {"ready": True, "pid": os.getpid()})
    return _serve(handler, inp, out)


if __name__ == "__main__":
    sys.exit(main())
