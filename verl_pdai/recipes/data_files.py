"""Training and validation parquet files: present, with the columns of a verl row (INTERFACES' row schema).
Only the parquet footer is read (schema and row count), so this is cheap on the 40k-row training set."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from verl_pdai.recipes.findings import Findings

REQUIRED_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")
REMOTE_PREFIXES = ("hdfs://", "s3://", "gs://", "http://", "https://")
PREPARE_FIX = "write the files with `verl-pdai prepare-data --out $DATA_DIR`, or point DATA_DIR at them"


def _files(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _struct_fields(schema: object, column: str) -> set[str] | None:
    import pyarrow as pa

    field_type = schema.field(column).type  # type: ignore[attr-defined]
    return {f.name for f in field_type} if pa.types.is_struct(field_type) else None


def check_file(path_text: str, key: str, prompt_key: str, findings: Findings, *, training: bool) -> int:
    """Check one parquet file; return its row count (0 if unreadable)."""
    import pyarrow.parquet as pq

    if path_text.startswith(REMOTE_PREFIXES):
        findings.skip(f"{key}: {path_text} is remote (verl copies it at start-up)")
        return 0
    path = Path(path_text).expanduser()
    if not path.is_file():
        findings.problem("data", f"{key}: {path} does not exist", PREPARE_FIX)
        return 0
    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except Exception as exc:
        findings.problem(
            "data", f"{key}: {path} is not a readable parquet file ({type(exc).__name__}: {exc})", PREPARE_FIX
        )
        return 0
    columns = set(schema.names)
    missing = [c for c in dict.fromkeys((*REQUIRED_COLUMNS, prompt_key)) if c not in columns]
    if missing:
        findings.problem(
            "data",
            f"{key}: {path} lacks column(s) {missing} (has {sorted(columns)})",
            f"every row needs {list(REQUIRED_COLUMNS)} (verl's row schema); {PREPARE_FIX}",
        )
    if "reward_model" in columns and "ground_truth" not in (_struct_fields(schema, "reward_model") or set()):
        findings.problem(
            "data",
            f"{key}: {path}: reward_model has no ground_truth field",
            f"reward_model must be {{style, ground_truth}}; {PREPARE_FIX}",
        )
    extra = _struct_fields(schema, "extra_info") if "extra_info" in columns else None
    if training and extra is not None and not {"reference_solution", "solution"} & extra:
        findings.warn(
            "data",
            f"{key}: {path}: extra_info has no reference_solution: pdai_hint can never hint",
            "add extra_info.reference_solution (prepare-data writes it where the source has one)",
        )
    if metadata.num_rows == 0:
        findings.problem("data", f"{key}: {path} has no rows", PREPARE_FIX)
    return int(metadata.num_rows)


def check_data(config: DictConfig, findings: Findings) -> None:
    prompt_key = str(OmegaConf.select(config, "data.prompt_key") or "prompt")
    train_rows = 0
    train_files = _files(OmegaConf.select(config, "data.train_files"))
    val_files = _files(OmegaConf.select(config, "data.val_files"))
    if not train_files:
        findings.problem("data", "data.train_files is empty", "set data.train_files=$DATA_DIR/train.parquet")
    if not val_files:
        findings.problem("data", "data.val_files is empty", "set data.val_files to the benchmark parquet files")
    for path in train_files:
        train_rows += check_file(path, "data.train_files", prompt_key, findings, training=True)
    for path in val_files:
        check_file(path, "data.val_files", prompt_key, findings, training=False)
    batch = OmegaConf.select(config, "data.train_batch_size")
    if train_rows and isinstance(batch, int) and train_rows < batch:
        findings.problem(
            "data",
            f"{train_rows} training rows < data.train_batch_size={batch}: the data loader (drop_last) yields no batch",
            "use more training rows or a smaller data.train_batch_size",
        )
    findings.summary["data"] = f"{len(train_files)} train file(s), {train_rows} rows; {len(val_files)} val file(s)"
