"""Write and read the ledger's parquet part files (pyarrow; no verl).

:class:`LedgerWriter` writes one part per step, ``step_%06d.parquet``, first to a hidden ``.step_%06d.parquet.tmp``
then ``os.replace``: a reader (or a crash) sees whole parts only, so a crash loses at most the current step. The
folder is size-bounded: once a part would take the total past ``max_bytes`` the writer stops (one warning) and
counts the rows it drops. Write errors are logged and counted, never raised: the ledger must not stop training.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verl_pdai.ledger.records import COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["PART_PATTERN", "LedgerWriter", "StepWrite", "part_name", "read_ledger", "schema"]

logger = logging.getLogger("verl_pdai")

PART_PATTERN = "step_*.parquet"
_PART_RE = re.compile(r"^step_(\d+)\.parquet$")


def part_name(step: int) -> str:
    return f"step_{int(step):06d}.parquet"


def schema() -> pa.Schema:
    """The ledger's arrow schema, from ``COLUMNS``."""
    import pyarrow as pa

    scalar = {"int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(), "string": pa.string()}

    def arrow(kind: str) -> pa.DataType:
        if kind.startswith("list<"):
            return pa.list_(scalar[kind[5:-1]])
        return scalar[kind]

    return pa.schema([(name, arrow(kind)) for name, kind in COLUMNS.items()])


@dataclass(frozen=True)
class StepWrite:
    """What one ``LedgerWriter.write`` did: rows written (0 when dropped or failed), the folder's bytes after it,
    seconds spent, rows dropped so far by the size bound, write errors so far."""

    rows: int
    bytes: int
    write_s: float
    dropped_rows: int
    errors: int


class LedgerWriter:
    """Appends one parquet part per step to ``directory``, up to ``max_bytes`` in all (parts already there count)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = 1 << 30) -> None:
        if int(max_bytes) <= 0:
            raise ValueError(f"ledger max_bytes must be > 0, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.dropped_rows = 0
        self.errors = 0
        self.full = False
        self._schema: pa.Schema | None = None
        self._first_write = True
        self._bytes = 0

    def _parts(self) -> dict[int, Path]:
        out = {}
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                match = _PART_RE.match(path.name)
                if match:
                    out[int(match.group(1))] = path
        return out

    def bytes_on_disk(self) -> int:
        total = 0
        for path in self._parts().values():
            try:
                total += path.stat().st_size
            except OSError:  # removed meanwhile
                pass
        return total

    def _start(self, step: int) -> None:
        """First write of this process: parts of later steps are from a run this one resumed before; they go."""
        self._first_write = False
        self.directory.mkdir(parents=True, exist_ok=True)
        later = sorted(s for s in self._parts() if s > step)
        for s in later:
            (self.directory / part_name(s)).unlink(missing_ok=True)
        if later:
            logger.info(
                "verl_pdai ledger: removed %d part(s) after step %d left by an earlier attempt", len(later), step
            )
        self._bytes = self.bytes_on_disk()

    def write(self, step: int, columns: Mapping[str, list[Any]]) -> StepWrite:
        """Write ``columns`` (``build_records`` output) as the part of ``step``; never raises."""
        started = time.perf_counter()
        n = len(columns.get("step", []))
        written = 0
        try:
            if self._first_write:
                self._start(step)
            if self.full:
                self.dropped_rows += n
            else:
                written = self._write_part(step, columns, n)
        except Exception as exc:  # the ledger must never stop training
            self.errors += 1
            logger.warning("verl_pdai ledger: could not write step %d to %s: %r", step, self.directory, exc)
        return StepWrite(written, self._bytes, time.perf_counter() - started, self.dropped_rows, self.errors)

    def _write_part(self, step: int, columns: Mapping[str, list[Any]], n: int) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._schema is None:
            self._schema = schema()
        table = pa.Table.from_pydict({name: columns[name] for name in COLUMNS}, schema=self._schema)
        final = self.directory / part_name(step)
        tmp = self.directory / f".{part_name(step)}.tmp"
        pq.write_table(table, tmp)
        size = tmp.stat().st_size
        replaced = final.stat().st_size if final.exists() else 0  # the same step again (a retried step)
        if self._bytes - replaced + size > self.max_bytes:
            tmp.unlink(missing_ok=True)
            self.full = True
            self.dropped_rows += n
            logger.warning(
                "verl_pdai ledger: %s reached its size bound (pdai.ledger.max_bytes=%d); no more records are written, "
                "dropped rows are counted in pdai/ledger/dropped_rows",
                self.directory,
                self.max_bytes,
            )
            return 0
        with open(tmp, "rb+") as handle:  # on disk before the rename: a crash leaves a whole part or none
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        self._bytes += size - replaced
        return n


def read_ledger(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A folder of ``step_*.parquet`` parts (temporary files ignored) or one parquet file, as one DataFrame in
    part order. An unreadable part is skipped, logged and listed in ``frame.attrs["skipped_files"]``."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ledger not found: {path} (the trainer writes <default_local_dir>/pdai_ledger/)")
    parts = sorted(path.glob(PART_PATTERN)) if path.is_dir() else [path]
    if not parts:
        raise ValueError(f"no ledger part files ({PART_PATTERN}) in {path}")
    frames, skipped = [], []
    for part in parts:
        try:
            names = set(pq.read_schema(part).names)
            frames.append(pq.read_table(part, columns=[c for c in COLUMNS if c in names]).to_pandas())
        except Exception as exc:  # one bad part must not hide the rest of the run
            logger.warning("verl_pdai ledger: skipping unreadable part %s: %s", part, exc)
            skipped.append(str(part))
    if not frames:
        raise ValueError(f"no readable ledger part in {path}: {len(skipped)} file(s) failed, first {skipped[0]}")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.attrs["skipped_files"] = skipped
    return frame
