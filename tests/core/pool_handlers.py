"""Handlers run inside WorkerPool workers by tests/core/test_worker_pool.py (imported by the worker process)."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from typing import Any

# Lets a test make the worker's start-up slow without a second module.
time.sleep(float(os.environ.get("POOL_HANDLERS_IMPORT_DELAY_S", "0")))
if os.environ.get("POOL_HANDLERS_IMPORT_FAIL"):
    raise ImportError("import failure requested by POOL_HANDLERS_IMPORT_FAIL")


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload, "pid": os.getpid()}


def pid(payload: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid()}


def fail(payload: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"bad input: {payload.get('x')!r}")


def sleep(payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(float(payload["s"]))
    return {"slept": payload["s"], "pid": os.getpid()}


def exit_hard(payload: dict[str, Any]) -> dict[str, Any]:
    os._exit(int(payload.get("code", 3)))


def segfault(payload: dict[str, Any]) -> dict[str, Any]:
    ctypes.string_at(0)
    return {}


def big_int(payload: dict[str, Any]) -> dict[str, Any]:
    # One C-level operation that holds the GIL for a long time: no in-process timeout can stop it.
    value = 9 ** (9**9)
    return {"bits": value.bit_length()}


def allocate(payload: dict[str, Any]) -> dict[str, Any]:
    block = bytearray(int(payload["mb"]) * 1024 * 1024)
    return {"len": len(block)}


def noisy(payload: dict[str, Any]) -> dict[str, Any]:
    # Both Python-level and fd-level writes to stdout must not reach the protocol channel.
    print("noise from print\n{not json}")
    sys.stdout.flush()
    os.write(1, b"noise on fd 1\n")
    return {"quiet": True}


def garble(payload: dict[str, Any]) -> dict[str, Any]:
    # The worker runs as ``python -m``, so its module globals live in __main__.
    os.write(sys.modules["__main__"]._proto_out_fd, b"\xff\xfe not a reply\n")
    time.sleep(5)
    return {}


def not_a_dict(payload: dict[str, Any]) -> Any:
    return [1, 2, 3]


def unencodable(payload: dict[str, Any]) -> dict[str, Any]:
    return {"value": {1, 2}}


def deep_recursion(payload: dict[str, Any]) -> dict[str, Any]:
    def down(n: int) -> int:
        return 0 if n == 0 else 1 + down(n - 1)

    return {"depth": down(int(payload["n"]))}


def exit_clean(payload: dict[str, Any]) -> dict[str, Any]:
    raise SystemExit(0)


def dispatch(payload: dict[str, Any]) -> dict[str, Any]:
    """One handler for many behaviours, so a single pool can exercise them in sequence: ``{"op": name, ...}``."""
    return globals()[payload["op"]](payload)


def hang(payload: dict[str, Any]) -> dict[str, Any]:
    """Never returns: stands in for sympy hanging inside math-verify."""
    while True:
        time.sleep(1.0)


def slow_step_checks(payload: dict[str, Any]) -> dict[str, Any]:
    """The real scorer, except that the step-check phase overruns any bound (as an adversarial response can)."""
    from verl_pdai.core.scoring import score_request

    if payload.get("phase") == "process":
        time.sleep(60)
    return score_request(payload)
