"""Reading raw data sets (local files or the Hugging Face hub) and writing verl parquet files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from verl_pdai.data.sources import Schema

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "raw"
SAMPLE_FILES = {
    "deepscaler": "deepscaler.json",
    "aime2024": "aime2024.jsonl",
    "math500": "math500.jsonl",
    "amc": "amc.jsonl",
    "minerva": "minerva.jsonl",
    "olympiadbench": "olympiadbench.jsonl",
}
LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")


def _read_local(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:  # JSON lines (a .json file of one object per line too, as `datasets` writes them)
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{path}: expected a JSON list of objects or JSON lines of objects")
    return rows


def read_raw(name: str, location: str, schema: Schema) -> list[Mapping[str, object]]:
    """The raw rows of one data set: a local file (.json, .jsonl, .parquet) or a Hugging Face data set id."""
    path = Path(location).expanduser()
    if path.suffix in LOCAL_SUFFIXES or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"{name}: no file at {path}")
        rows: Sequence[Mapping[str, object]] = _read_local(path)
        where = str(path)
    else:
        import datasets

        rows = datasets.load_dataset(location, schema.config, split=schema.split)
        where = f"{location} (split {schema.split})"
    columns = set(rows.column_names) if hasattr(rows, "column_names") else set().union(*(r.keys() for r in rows))
    missing = [c for c in schema.columns if c not in columns]
    if rows and missing:
        raise ValueError(
            f"{name}: {where} lacks the columns {missing} of its schema (has {sorted(columns)}); "
            f"give a file in the raw schema of docs/data.md"
        )
    return list(rows)


def write_parquet(rows: list[dict[str, object]], path: Path) -> None:
    """One parquet file, written atomically (a reader never sees half a file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from verl_pdai.core.persistence import write_bytes_atomic

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    write_bytes_atomic(path, buffer.getvalue().to_pybytes())
