"""Atomic files: ``write_bytes_atomic`` writes any file so that a reader sees the old one or the whole new one;
``save_atomic`` writes a JSON state with it and ``load_state`` reads one back (a missing file gives None).

Used for the difficulty store's ``save`` / ``load``, the trainer's ``pdai_state.json``, the report's pictures and
page, and the prepared data files. Pure standard library.

A save killed between creating its temporary file and the rename leaves ``.<name>.XXXXXXXX.tmp`` behind; the next
save of the same file removes such leftovers once they are ``STALE_TMP_AGE_S`` old (never one that a save of this
process is still writing). ``load_state`` refuses JSON nested deeper than ``MAX_STATE_DEPTH`` before parsing it, so a
hostile or garbled file is a clear corrupt-state error (which ``on_corrupt="fresh"`` honours), not a RecursionError.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["load_state", "nested_deeper_than", "remove_stale_temps", "save_atomic", "write_bytes_atomic"]

logger = logging.getLogger(__name__)

# The states written here nest a few levels (trainer state > store > problems > row); json.loads recurses once per
# level and raises RecursionError near the interpreter's limit (~1000, less in a deep call stack).
MAX_STATE_DEPTH = 64
# A temporary file this old is a dead save's: a live one is written, fsynced and renamed within seconds.
STALE_TMP_AGE_S = 600.0
# mkstemp's random part: 8 characters from tempfile's alphabet. Matching it exactly means that the leftovers of
# another file (".a.json.XXXXXXXX.tmp" next to "a") never match ".a.XXXXXXXX.tmp".
_TMP_RANDOM = r"[a-z0-9_]{8}"

_live_tmp: set[str] = set()  # temporary files that saves of this process are writing now
_live_tmp_lock = threading.Lock()


def _new_lock_in_child() -> None:
    """After ``fork()`` the lock may have been copied held by a thread that does not exist in the child."""
    global _live_tmp_lock
    _live_tmp_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_new_lock_in_child)

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OBJECTS_AS_ARRAYS = bytes.maketrans(b"{}", b"[]")  # depth only: one kind of bracket, so "[]" is every empty pair


def save_atomic(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Write ``state`` as JSON to ``path`` so that a reader sees either the old file or the whole new one.

    The text is built first (a state that is not strict JSON, e.g. with NaN, fails before anything is written),
    then written by ``write_bytes_atomic``.
    """
    try:
        data = json.dumps(state, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as err:
        raise ValueError(f"state for {Path(path)} is not JSON-serializable: {err}") from None
    if nested_deeper_than(data, MAX_STATE_DEPTH):  # load_state would refuse it
        raise ValueError(f"state for {Path(path)} nests deeper than {MAX_STATE_DEPTH} levels")
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory (os.replace is atomic only within
    one file system), fsynced, then renamed over ``path``; the directory is fsynced so the rename survives a crash.
    On any failure the temporary file is removed and the previous file is left as it was. Missing parent
    directories are created. Temporary files of ``path`` left by dead saves are removed (see the module doc)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with _live_tmp_lock:
        _live_tmp.add(os.path.abspath(tmp_name))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; keep the old file's mode, else an ordinary readable file.
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    finally:
        with _live_tmp_lock:
            _live_tmp.discard(os.path.abspath(tmp_name))
    remove_stale_temps(target)
    _fsync_dir(target.parent)


def remove_stale_temps(path: str | os.PathLike[str], max_age_s: float | None = None) -> list[str]:
    """Remove the temporary files of ``path`` that dead saves left (``.<name>.XXXXXXXX.tmp`` at least ``max_age_s``
    old, default ``STALE_TMP_AGE_S``, and not being written by this process); return the names removed.
    Best effort: a file that cannot be inspected or removed is left alone."""
    target = Path(path)
    age = STALE_TMP_AGE_S if max_age_s is None else max_age_s
    pattern = re.compile(re.escape(f".{target.name}.") + _TMP_RANDOM + r"\.tmp")
    prefix = f".{target.name}."
    now = time.time()  # mtimes are wall-clock times
    removed: list[str] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not pattern.fullmatch(entry.name):
            continue
        with _live_tmp_lock:
            live = os.path.abspath(entry.path) in _live_tmp
        try:
            if live or not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < age:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    if removed:
        logger.info("removed %d temporary file(s) of %s left by interrupted saves: %s", len(removed), target, removed)
    return removed


def nested_deeper_than(data: bytes, limit: int) -> bool:
    """True when the JSON text ``data`` nests arrays/objects more than ``limit`` levels deep. No recursion and no
    per-character Python loop: strings are dropped, then everything but brackets, then each pass strips the
    innermost empty pairs (one level). Text that is not balanced JSON stops early and is left to the parser."""
    brackets = _JSON_STRING.sub(b"", data).translate(_OBJECTS_AS_ARRAYS, _NOT_BRACKET)
    for level in range(limit):
        if not brackets:
            return False
        if b"[" * (limit - level + 1) in brackets:  # shortcut: that many opening brackets in a row nest that deep
            return True
        stripped = brackets.replace(b"[]", b"")
        if stripped == brackets:  # unbalanced: json.loads says what is wrong
            return False
        brackets = stripped
    return b"[" in brackets  # still open after limit levels (closing brackets left over are the parser's)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on this platform / file system: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_state(path: str | os.PathLike[str], on_corrupt: str = "fail") -> dict[str, Any] | None:
    """Read a JSON object written by ``save_atomic``; None when the file does not exist.

    A corrupt or truncated file (not UTF-8, not JSON, not a JSON object, nested deeper than ``MAX_STATE_DEPTH``)
    raises ValueError naming the path with ``on_corrupt="fail"``; with ``on_corrupt="fresh"`` it logs a warning and
    returns None (start over).
    """
    if on_corrupt not in ("fail", "fresh"):
        raise ValueError(f"on_corrupt must be 'fail' or 'fresh', got {on_corrupt!r}")
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    try:
        text = raw.decode("utf-8")
        if nested_deeper_than(raw, MAX_STATE_DEPTH):
            raise ValueError(f"JSON nested deeper than {MAX_STATE_DEPTH} levels")
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if on_corrupt == "fresh":
            logger.warning(
                "state file %s is corrupt or truncated (%s); starting fresh as on_corrupt='fresh'", target, err
            )
            return None
        raise ValueError(
            f"state file {target} is corrupt or truncated ({err}); repair or delete it, "
            "or pass on_corrupt='fresh' to start over"
        ) from None
    return data
