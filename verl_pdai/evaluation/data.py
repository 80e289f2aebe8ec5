"""Evaluation rows: the verl parquet schema of the project (prompt chat messages, reward_model.ground_truth,
extra_info.problem_id), one ``<benchmark>.parquet`` per benchmark. Bad input fails here, before any model loads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The five benchmarks of the DeepScaleR protocol, by the file stem data preparation writes.
BENCHMARKS: tuple[str, ...] = ("aime2024", "math500", "amc", "minerva", "olympiadbench")

GroundTruth = str | float | list[str] | None


class EvalInputError(ValueError):
    """Bad command-line input or data file; the message says what to fix."""


@dataclass(frozen=True)
class EvalProblem:
    benchmark: str
    problem_id: str
    prompt: list[dict[str, str]]  # chat messages
    ground_truth: GroundTruth
    data_source: str

    @property
    def problem(self) -> str:
        """The last user message: what the model was asked (with the instruction suffix)."""
        users = [m.get("content", "") for m in self.prompt if m.get("role") == "user"]
        return users[-1] if users else ""


def parse_benchmarks(text: str) -> list[str]:
    """``"aime2024,math500"`` -> names; unknown or repeated names fail with the known ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise EvalInputError(f"--benchmarks is empty; choose from {', '.join(BENCHMARKS)}")
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise EvalInputError(
            f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)} "
            "(for another data set pass its parquet file with --data FILE.parquet)"
        )
    if len(set(names)) != len(names):
        raise EvalInputError(f"--benchmarks names a benchmark twice: {text}")
    return names


def data_files(data_dir: Path | None, benchmarks: Sequence[str], files: Sequence[Path]) -> dict[str, Path]:
    """benchmark name -> parquet file: ``<data_dir>/<name>.parquet`` per benchmark, or each ``--data`` file
    named by its stem. Missing files fail with the list of what is there."""
    if files:
        found = {Path(f).stem: Path(f) for f in files}
        if len(found) != len(files):
            raise EvalInputError("two --data files have the same name; benchmarks are named by the file stem")
        missing = [str(f) for f in found.values() if not f.is_file()]
        if missing:
            raise EvalInputError(f"data file(s) not found: {', '.join(missing)}")
        return found
    if data_dir is None:
        raise EvalInputError("give --data-dir DIR (with <benchmark>.parquet files) or --data FILE.parquet ...")
    if not data_dir.is_dir():
        raise EvalInputError(f"--data-dir {data_dir} is not a directory")
    paths = {name: data_dir / f"{name}.parquet" for name in benchmarks}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        present = sorted(p.name for p in data_dir.glob("*.parquet")) or ["no parquet files"]
        raise EvalInputError(
            f"missing data file(s): {', '.join(missing)} ({data_dir} holds: {', '.join(present)}); "
            "run data preparation or choose --benchmarks"
        )
    return paths


def _plain(value: object) -> object:
    """numpy arrays/scalars (pandas-read parquet) to plain Python."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def ground_truth_of(reward_model: object, extra_info: object = None) -> GroundTruth:
    """The row's ground truth; with the other accepted answers of ``extra_info.answers`` (docs/data.md) a list of
    every one of them, the ground truth first, so that any of them is graded correct, as in training."""
    from verl_pdai.core.answers import ANSWERS_FIELD, accepted_answers

    truth = _ground_truth(reward_model)
    more = _plain(extra_info.get(ANSWERS_FIELD)) if isinstance(extra_info, Mapping) else None
    if more is None:
        return truth
    answers = accepted_answers(truth, {ANSWERS_FIELD: more})
    if answers == accepted_answers(truth):  # nothing new: keep the ground truth as the file gives it
        return truth
    return answers


def _ground_truth(reward_model: object) -> GroundTruth:
    if not isinstance(reward_model, Mapping):
        return None
    value = _plain(reward_model.get("ground_truth"))
    if value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def _prompt_of(value: object, where: str) -> list[dict[str, str]]:
    value = _plain(value)
    if isinstance(value, str):  # a bare problem text: one user message
        return [{"role": "user", "content": value}]
    if isinstance(value, list | tuple) and value and all(isinstance(m, Mapping) for m in value):
        messages = [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in value]
        if any(m["role"] == "user" for m in messages):
            return messages
    raise EvalInputError(f"{where}: 'prompt' must be a list of chat messages with a user message, got {value!r:.120}")


def read_problems(
    benchmark: str, path: Path, limit: int | None = None, *, ids_by_source: bool = False
) -> list[EvalProblem]:
    """Rows of one benchmark file; the first ``limit`` rows when given. Without a ``problem_id`` a row is
    ``<benchmark>/<index>``, or with ``ids_by_source`` ``<data_source>/<index>`` as the trainer keys a training
    file that merges several sources (each with its own indices)."""
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:
        raise EvalInputError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    if rows and "prompt" not in rows[0]:
        raise EvalInputError(f"{path}: no 'prompt' column (columns: {', '.join(rows[0])}); see docs/evaluation.md")
    problems: list[EvalProblem] = []
    seen: set[str] = set()
    for index, row in enumerate(rows[:limit] if limit else rows):
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), Mapping) else {}
        prefix = row.get("data_source") if ids_by_source and row.get("data_source") else benchmark
        problem_id = str(extra.get("problem_id") or f"{prefix}/{extra.get('index', index)}")
        if problem_id in seen:
            raise EvalInputError(f"{path}: problem_id {problem_id!r} occurs twice")
        seen.add(problem_id)
        problems.append(
            EvalProblem(
                benchmark=benchmark,
                problem_id=problem_id,
                prompt=_prompt_of(row.get("prompt"), f"{path} row {index}"),
                ground_truth=ground_truth_of(row.get("reward_model"), extra),
                data_source=str(row.get("data_source") or benchmark),
            )
        )
    if not problems:
        raise EvalInputError(f"{path}: no rows")
    return problems
