"""Atomic files: ``write_bytes_atomic`` writes any file so that a reader sees the old one or the whole new one;
``save_atomic`` writes a JSON state with it and ``load_state`` reads one back (a missing file gives None).

Used for the difficulty store's ``save`` / ``load``, the trainer's ``pdai_state.json``, the report's pictures and
page, and the prepared data files. Pure standard library.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["load_state", "save_atomic", "write_bytes_atomic"]

logger = logging.getLogger(__name__)


def save_atomic(path: str | os.PathLike[str], state: Mapping[str, Any]) -> None:
    """Write ``state`` as JSON to ``path`` so that a reader sees either the old file or the whole new one.

    The text is built first (a state that is not strict JSON, e.g. with NaN, fails before anything is written),
    then written by ``write_bytes_atomic``.
    """
    try:
        text = json.dumps(state, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise ValueError(f"state for {Path(path)} is not JSON-serializable: {err}") from None
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory (os.replace is atomic only within
    one file system), fsynced, then renamed over ``path``; the directory is fsynced so the rename survives a crash.
    On any failure the temporary file is removed and the previous file is left as it was. Missing parent
    directories are created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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
    _fsync_dir(target.parent)


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

    A corrupt or truncated file (not UTF-8, not JSON, not a JSON object) raises ValueError naming the path with
    ``on_corrupt="fail"``; with ``on_corrupt="fresh"`` it logs a warning and returns None (start over).
    """
    if on_corrupt not in ("fail", "fresh"):
        raise ValueError(f"on_corrupt must be 'fail' or 'fresh', got {on_corrupt!r}")
    target = Path(path)
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
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
