"""Read verl's FileLogger JSONL (``trainer.logger=[console,file]``) into per-metric step series. Pure: no verl.

Each line is ``{"step": int, "data": {"metric/name": number, ...}}``. Reading is tolerant and bounded:

* a line that is not JSON, not an object, has no integral ``step`` or no ``data`` object, or is longer than
  ``MAX_LINE_BYTES`` is skipped and counted (a run that crashed mid-write leaves a truncated last line);
* a value that is not a finite number (strings, lists, null, NaN, booleans) is ignored;
* a step logged twice (verl logs validation and training at the same step, a resumed run repeats steps) is
  merged: for the same metric the later line wins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_REPORTED_BAD_LINES = 20


@dataclass
class MetricsLog:
    """Metrics of a run: ``values[name][step] = value``; ``bad_lines`` are the (first few) skipped line numbers."""

    path: Path
    values: dict[str, dict[int, float]] = field(default_factory=dict)
    steps: set[int] = field(default_factory=set)
    lines_read: int = 0
    bad_line_count: int = 0
    bad_lines: list[int] = field(default_factory=list)

    def names(self) -> list[str]:
        return sorted(self.values)

    def has(self, name: str) -> bool:
        return name in self.values

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric in step order; empty lists when it was never logged."""
        points = self.values.get(name, {})
        steps = sorted(points)
        return steps, [points[s] for s in steps]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _step(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """The file's lines; None for a line longer than MAX_LINE_BYTES (read past in chunks, never held whole)."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield raw


def _parse_line(raw: bytes) -> tuple[int, dict[str, float]] | None:
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
        return None
    step = _step(record.get("step"))
    if step is None:
        return None
    values = {str(name): n for name, value in record["data"].items() if (n := _number(value)) is not None}
    return step, values


def read_metrics(path: Path) -> MetricsLog:
    """Read a FileLogger JSONL file. Raises FileNotFoundError / ValueError with what to fix when there is nothing
    to report (no file, an empty file, or no valid line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"metrics file not found: {path} (verl writes it with trainer.logger='[console,file]' to "
            "$VERL_FILE_LOGGER_PATH or <VERL_FILE_LOGGER_ROOT or .>/<project_name>/<experiment_name>.jsonl)"
        )
    log = MetricsLog(path=path)
    with path.open("rb") as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            if raw is not None and not raw.strip():
                continue
            log.lines_read += 1
            parsed = None if raw is None else _parse_line(raw)
            if parsed is None:
                log.bad_line_count += 1
                if len(log.bad_lines) < MAX_REPORTED_BAD_LINES:
                    log.bad_lines.append(number)
                continue
            step, values = parsed
            log.steps.add(step)
            for name, value in values.items():
                log.values.setdefault(name, {})[step] = value
    if log.lines_read == 0:
        raise ValueError(f"metrics file is empty: {path} (did the run log a step yet?)")
    if not log.steps:
        raise ValueError(
            f"no valid metrics line in {path}: {log.bad_line_count} line(s) skipped, first at line(s) "
            f'{log.bad_lines}; expected one JSON object per line: {{"step": int, "data": {{name: number}}}}'
        )
    return log
