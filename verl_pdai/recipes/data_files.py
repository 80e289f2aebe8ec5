"""Training and validation parquet files: present, with the columns of a verl row (INTERFACES' row schema), one
schema across the files verl concatenates, and loaded the way ``main_ppo`` loads them.

Three levels, cheapest first: each file's footer (schema and row count); the first row of every file of a group
concatenated with ``datasets.concatenate_datasets`` (what verl does to ``data.val_files``: files of different
column types fail there, at start-up); then, when ``MODEL_PATH`` is a local model folder, verl's own
``create_rl_dataset`` with the recipe's data config and the model's tokenizer and chat template (reading,
concatenation, over-long prompt filtering) and verl's ``collate_fn`` on a few rows, as the trainer's data loaders
call it."""

from __future__ import annotations

import contextlib
import io
import uuid
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from verl_pdai.recipes.findings import Findings

REQUIRED_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")
REMOTE_PREFIXES = ("hdfs://", "s3://", "gs://", "http://", "https://")
PREPARE_FIX = "write the files with `verl-pdai prepare-data --out $DATA_DIR`, or point DATA_DIR at them"
SCHEMA_FIX = (
    "write every file again with `verl-pdai prepare-data --out $DATA_DIR` (one schema for all files: "
    "reward_model.ground_truth a string, every accepted answer in extra_info.answers; docs/data.md), or give "
    "the files the same column types"
)
COLLATE_ROWS = 8  # rows collated like one batch: enough to mix every source, cheap


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip() or repr(exc)).splitlines()[0]
    return f"{type(exc).__name__}: {text[:600]}"


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


def _one_row(path: Path) -> Any:
    """The first row of a parquet file as a datasets.Dataset (its schema as the file stores it)."""
    import datasets
    import pyarrow.parquet as pq
    from datasets.table import InMemoryTable

    table = pq.ParquetFile(path).read_row_group(0).slice(0, 1)
    return datasets.Dataset(InMemoryTable(table))


def _type_differences(ours: Any, theirs: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(column path, our type, their type) wherever two arrow types differ, struct fields followed by name."""
    import pyarrow as pa

    if ours == theirs:
        return []
    if isinstance(ours, pa.Schema) or (pa.types.is_struct(ours) and pa.types.is_struct(theirs)):
        mine = {f.name: f.type for f in ours}
        other = {f.name: f.type for f in theirs}
        out = []
        for name in dict.fromkeys([*mine, *other]):
            where = f"{path}.{name}" if path else name
            out += _type_differences(mine.get(name, "missing"), other.get(name, "missing"), where)
        return out
    return [(path, str(ours), str(theirs))]


def check_concatenation(paths: list[str], key: str, findings: Findings) -> bool:
    """One row of each file through ``datasets.concatenate_datasets`` (verl's step for a list of files); every file
    that does not align with the first is named, with the columns whose types differ. True when they concatenate."""
    import datasets

    if len(paths) < 2:
        return True
    rows = [(Path(path).expanduser(), _one_row(Path(path).expanduser())) for path in paths]
    first_path, first = rows[0]
    try:
        datasets.concatenate_datasets([row for _, row in rows])
        return True
    except Exception as exc:
        whole = exc
    failing = []
    for path, row in rows[1:]:
        try:
            datasets.concatenate_datasets([first, row])
        except Exception as exc:
            diffs = _type_differences(row.features.arrow_schema, first.features.arrow_schema)
            said = ", ".join(
                f"{column} is {mine} there, {theirs} in {first_path.name}" for column, mine, theirs in diffs
            )
            failing.append(f"{path.name} ({said or _first_line(exc)})")
    findings.problem(
        "data",
        f"{key}: the files do not concatenate as verl concatenates them (datasets.concatenate_datasets), so "
        f"main_ppo fails at start-up: {'; '.join(failing) if failing else _first_line(whole)}",
        SCHEMA_FIX,
    )
    return False


def _local_model(config: DictConfig) -> Path | None:
    path = Path(str(OmegaConf.select(config, "actor_rollout_ref.model.path"))).expanduser()
    return path if (path / "config.json").is_file() else None


def _collate_rows(dataset: Any) -> list[int]:
    """Indices of the first row of each data source (up to COLLATE_ROWS), so one batch mixes the files."""
    sources = dataset.dataframe["data_source"] if "data_source" in dataset.dataframe.column_names else []
    first: dict[object, int] = {}
    for index, source in enumerate(sources):
        first.setdefault(source, index)
        if len(first) >= COLLATE_ROWS:
            break
    return list(first.values()) or list(range(min(COLLATE_ROWS, len(dataset))))


def check_verl_load(config: DictConfig, groups: list[tuple[str, list[str], int]], findings: Findings) -> None:
    """Each group (key, files, rows in their footers) through verl's ``create_rl_dataset`` and ``collate_fn``."""
    model_path = _local_model(config)
    if model_path is None:
        findings.skip(
            "data: loading through verl's RLHFDataset (it needs the model's tokenizer and chat template: "
            "set MODEL_PATH to a local model folder)"
        )
        return
    import numpy as np
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils import tensordict_utils as tu
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.dataset.rl_dataset import collate_fn

    try:  # as trainer_base._init_tokenizer: the tokenizer, processor and custom chat template of the model config
        model = omega_conf_to_dataclass(config.actor_rollout_ref.model)
    except Exception:  # check_model reports why; without a tokenizer there is nothing to load with
        findings.skip("data: loading through verl's RLHFDataset (the model config does not build, see [verl-config])")
        return
    data = config.data
    max_prompt = OmegaConf.select(config, "data.max_prompt_length")
    for key, files, footer_rows in groups:
        is_train = key == "data.train_files"
        max_samples = int(data.get("train_max_samples" if is_train else "val_max_samples", -1) or -1)
        logs = io.StringIO()
        try:  # verl prints lengths and progress bars; the findings say what matters
            with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
                dataset = create_rl_dataset(
                    files, data, model.tokenizer, model.processor, is_train=is_train, max_samples=max_samples
                )
        except Exception as exc:
            aligned = "can't be aligned" in str(exc) or "concatenat" in str(exc)
            findings.problem(
                "data",
                f"{key}: verl's RLHFDataset (as main_ppo builds it) fails: {_first_line(exc)}",
                SCHEMA_FIX if aligned else f"fix the file or data.* setting named above; {PREPARE_FIX}",
            )
            continue
        expected = min(footer_rows, max_samples) if max_samples > 0 else footer_rows
        kept = len(dataset)
        if kept == 0:
            findings.problem(
                "data",
                f"{key}: verl drops all {expected} prompts: each is longer than data.max_prompt_length={max_prompt} "
                "tokens with the chat template, or the template fails on it (filter_overlong_prompts)",
                "raise data.max_prompt_length, or check the prompt column (a list of chat messages)",
            )
            continue
        if kept < expected:
            findings.warn(
                "data",
                f"{key}: verl drops {expected - kept} of {expected} prompts longer than data.max_prompt_length="
                f"{max_prompt} tokens with the chat template (filter_overlong_prompts)",
                "raise data.max_prompt_length to keep them" + ("" if is_train else " (benchmark scores need all)"),
            )
        batch_size = data.get("train_batch_size")
        if is_train and isinstance(batch_size, int) and expected >= batch_size > kept:
            findings.problem(
                "data",
                f"{kept} training rows are left after verl's prompt filter < data.train_batch_size={batch_size}: "
                "the data loader (drop_last) yields no batch",
                "raise data.max_prompt_length or use more training rows",
            )
        try:  # as the trainer's data loaders: collate_fn, a uid per row, then a TensorDict
            batch = collate_fn([dataset[i] for i in _collate_rows(dataset)])
            batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(len(batch["raw_prompt"]))], dtype=object)
            tu.get_tensordict(batch)
        except Exception as exc:
            findings.problem(
                "data",
                f"{key}: verl's collate_fn fails on rows of these files: {_first_line(exc)}",
                f"make every row's columns the same shape; {SCHEMA_FIX}",
            )
            continue
        findings.summary[f"verl load ({'train' if is_train else 'val'})"] = (
            f"{kept} of {expected} rows after the prompt filter; {len(batch['raw_prompt'])} rows collated"
        )


def check_data(config: DictConfig, findings: Findings) -> None:
    problems_before = len(findings.problems)
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
    val_rows = 0
    for path in val_files:
        val_rows += check_file(path, "data.val_files", prompt_key, findings, training=False)
    # verl loads only when every file is there and readable: otherwise the findings above already say why it fails
    readable = len(findings.problems) == problems_before and not any(
        p.startswith(REMOTE_PREFIXES) for p in (*train_files, *val_files)
    )
    if readable:
        aligned = check_concatenation(train_files, "data.train_files", findings)
        aligned = check_concatenation(val_files, "data.val_files", findings) and aligned
        if aligned:
            check_verl_load(
                config,
                [("data.train_files", train_files, train_rows), ("data.val_files", val_files, val_rows)],
                findings,
            )
    local = [
        p for p in (*train_files, *val_files) if not p.startswith(REMOTE_PREFIXES) and Path(p).expanduser().is_file()
    ]
    check_sources(config, local, findings)
    batch = OmegaConf.select(config, "data.train_batch_size")
    if train_rows and isinstance(batch, int) and train_rows < batch:
        findings.problem(
            "data",
            f"{train_rows} training rows < data.train_batch_size={batch}: the data loader (drop_last) yields no batch",
            "use more training rows or a smaller data.train_batch_size",
        )
    findings.summary["data"] = f"{len(train_files)} train file(s), {train_rows} rows; {len(val_files)} val file(s)"


def _reward_routing(config: DictConfig) -> Any:
    """The data_source routing of verl_pdai's reward as this config sets it; None when the reward is not ours or
    its settings do not parse (the pdai check reports those)."""
    from verl_pdai.core.config_values import ConfigError
    from verl_pdai.core.reward_settings import CUSTOM_KWARGS_SECTION, REWARD_KWARGS_SECTION, RewardSettings

    if OmegaConf.select(config, "reward.reward_manager.name") == "pdai_stepwise":
        section = REWARD_KWARGS_SECTION
    elif "verl_pdai" in str(OmegaConf.select(config, "reward.custom_reward_function.path") or ""):
        section = CUSTOM_KWARGS_SECTION
    else:
        return None
    values = OmegaConf.select(config, section)
    values = OmegaConf.to_container(values, resolve=True) if isinstance(values, DictConfig) else values
    try:
        return RewardSettings.from_mapping(values or {}, section).routing
    except ConfigError:
        return None


def check_sources(config: DictConfig, paths: list[str], findings: Findings) -> None:
    """Say at start-up which data sources verl_pdai's reward hands to verl's default grader (``verl_sources``)
    instead of the stepwise checker: a math set under such a name would be graded by another rule."""
    import pyarrow.parquet as pq

    routing = _reward_routing(config)
    if routing is None:
        return
    sources: set[str] = set()
    for path in paths:
        try:
            column = pq.read_table(Path(path).expanduser(), columns=["data_source"]).column("data_source")
        except Exception:  # no such column or unreadable: check_file reports the file
            continue
        sources.update(str(value) for value in column.unique().to_pylist())
    to_verl = sorted(source for source in sources if not routing.uses_stepwise(source))
    if to_verl:
        findings.warn(
            "data",
            f"data_source {to_verl} match the reward's verl_sources: verl's default_compute_score grades those rows "
            "(or fails at their first sample if it has no grader for them), not the stepwise checker",
            "if they are math problems, remove their prefix from verl_sources (docs/reward.md, data_source routing)",
        )
