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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verl_pdai.ledger.records import COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "NULLABLE_COLUMNS",
    "PART_PATTERN",
    "DamagedPart",
    "LedgerRead",
    "LedgerWriter",
    "StepWrite",
    "part_name",
    "read_ledger",
    "read_parts",
    "schema",
]

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


# columns whose NaN means "none" (no valid prior, no previewed decision); a null anywhere else is damage
NULLABLE_COLUMNS = frozenset({"prior_alpha", "prior_beta", "prior_mean", "previewed_difficulty"})


@dataclass(frozen=True)
class DamagedPart:
    """A part file a query cannot trust: ``step`` from its name (None when the name has none), ``reason`` in
    one line."""

    path: str
    step: int | None
    reason: str

    def describe(self) -> str:
        return f"{Path(self.path).name} ({self.reason})"


@dataclass
class LedgerRead:
    """What :func:`read_parts` found: the good parts' rows, and the damaged parts left out of them."""

    frame: pd.DataFrame | None
    damaged: list[DamagedPart]
    parts: int

    @property
    def missing_steps(self) -> list[int]:
        return sorted({d.step for d in self.damaged if d.step is not None})


def _step_of(path: Path) -> int | None:
    match = _PART_RE.match(path.name)
    return int(match.group(1)) if match else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _part_problem(table: pa.Table, required: Sequence[str]) -> str | None:
    """Why a readable part cannot answer a query that reads ``required``: missing columns, null counts."""
    import pyarrow.compute as pc
    import pyarrow.types as types

    missing = [c for c in required if c not in table.column_names]
    if missing:
        return f"no column {', '.join(missing)}"
    nulls = []
    for name in required:
        if name in NULLABLE_COLUMNS:
            continue
        column = table.column(name)
        count = column.null_count
        if types.is_floating(column.type):
            count += int(pc.sum(pc.is_nan(column)).as_py() or 0)
        elif types.is_list(column.type):
            count += pc.list_flatten(column).null_count
        if count:
            nulls.append(f"{name} ({count})")
    if nulls:
        return f"null values in {', '.join(nulls)}"
    return None


def read_parts(path: str | os.PathLike[str], required: Sequence[str] = ()) -> LedgerRead:
    """Every part of the ledger at ``path`` (a folder of ``step_*.parquet`` parts, temporary files ignored, or one
    parquet file), good parts concatenated in part order. A part that cannot be read, lacks a column of
    ``required`` or holds a null (or NaN) in one of them (``NULLABLE_COLUMNS`` aside) is listed in ``damaged``
    and left out whole: a query over it would give wrong answers without saying so. Nothing is logged."""
    import pandas as pd
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ledger not found: {path} (the trainer writes <default_local_dir>/pdai_ledger/)")
    parts = sorted(path.glob(PART_PATTERN)) if path.is_dir() else [path]
    if not parts:
        raise ValueError(f"no ledger part files ({PART_PATTERN}) in {path}")
    frames, damaged = [], []
    for part in parts:
        try:
            names = set(pq.read_schema(part).names)
            table = pq.read_table(part, columns=[c for c in COLUMNS if c in names])
            problem = _part_problem(table, required)
            frame = None if problem else table.to_pandas()
        except Exception as exc:  # a truncated or corrupt file: named, never raised from here
            problem, frame = f"unreadable: {_first_line(exc)}", None
        if problem:
            damaged.append(DamagedPart(str(part), _step_of(part), problem))
        else:
            frames.append(frame)
    joined = None
    if frames:
        joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return LedgerRead(joined, damaged, len(parts))


def read_ledger(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A folder of ``step_*.parquet`` parts (temporary files ignored) or one parquet file, as one DataFrame in
    part order. An unreadable part is skipped, logged and listed in ``frame.attrs["skipped_files"]`` (the report
    draws what it can); ``verl-pdai ledger`` uses :func:`read_parts`, which refuses damaged parts unless asked."""
    read = read_parts(path)
    for part in read.damaged:
        logger.warning("verl_pdai ledger: skipping unreadable part %s: %s", part.path, part.reason)
    if read.frame is None:
        first = read.damaged[0].path
        raise ValueError(f"no readable ledger part in {path}: {len(read.damaged)} file(s) failed, first {first}")
    read.frame.attrs["skipped_files"] = [part.path for part in read.damaged]
    return read.frame
