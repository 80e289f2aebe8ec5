"""Reading raw data sets (local files or the Hugging Face hub) and writing verl parquet files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from verl_pdai.data.sources import Schema

if TYPE_CHECKING:
    import pyarrow as pa

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
OFFLINE_FIX = (
    "download it where the hub is reachable and pass NAME=PATH to the file (.json, .jsonl, .parquet), "
    "or try the pipeline with --samples"
)


class DataSourceError(ValueError):
    """A raw data set that cannot be read; the message names it and says what to do."""


def verl_row_schema() -> pa.Schema:
    """The one arrow schema of every prepared file (train and benchmarks; docs/data.md).

    Written explicitly rather than inferred from the rows: inference gives a file whose ``level`` or ``pdai_prior``
    is null in every row the type ``null``, and a source with list answers a list column, and verl's
    ``datasets.concatenate_datasets`` over ``data.val_files`` refuses such differences between files.
    """
    import pyarrow as pa

    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("split", pa.string()),
                        ("index", pa.int64()),
                        ("problem_id", pa.string()),
                        ("reference_solution", pa.string()),
                        ("level", pa.int64()),
                        ("answers", pa.list_(pa.string())),
                        ("pdai_prior", pa.struct([("alpha", pa.float64()), ("beta", pa.float64())])),
                        # where reference_solution came from when not from the data set itself (null there):
                        # "corpus" or "backfill", and the details as a JSON string (verl_pdai/data/references.py)
                        ("reference_source", pa.string()),
                        ("reference_provenance", pa.string()),
                    ]
                ),
            ),
        ]
    )


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

        try:
            rows = datasets.load_dataset(location, schema.config, split=schema.split)
        except Exception as exc:  # offline (ConnectionError), unknown id, gated: one line, not the hub's traceback
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise DataSourceError(
                f"{name}: cannot load {location!r} from the Hugging Face hub ({type(exc).__name__}: {first}); "
                + OFFLINE_FIX
            ) from exc
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
    """One parquet file in ``verl_row_schema()``, written atomically (a reader never sees half a file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from verl_pdai.core.persistence import write_bytes_atomic

    schema = verl_row_schema()
    # from_pylist drops keys its schema lacks without a word: a field added to the rows but not to the schema
    # would vanish from every file, so it fails here instead
    top, extra = set(schema.names), {f.name for f in schema.field("extra_info").type}
    for row in rows:
        unknown = sorted(set(row) - top) + sorted(set(row.get("extra_info") or {}) - extra)  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"{path.name}: row keys {unknown} are not in verl_row_schema(); add them there")
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    write_bytes_atomic(path, buffer.getvalue().to_pybytes())
