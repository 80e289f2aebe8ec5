"""Write evaluation parquet files in the project's verl row schema (INTERFACES.md), for tests."""

from __future__ import annotations

from pathlib import Path

SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."


def eval_row(benchmark: str, index: int, problem: str, ground_truth: object) -> dict[str, object]:
    return {
        "data_source": benchmark,
        "prompt": [{"role": "user", "content": problem + SUFFIX}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": {"split": "test", "index": index, "problem_id": f"{benchmark}/{index}", "reference_solution": ""},
    }


def write_benchmark(path: Path, benchmark: str, problems: list[tuple[str, object]]) -> Path:
    """``problems``: (problem text, ground truth) pairs, written as ``path`` (a parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [eval_row(benchmark, i, text, truth) for i, (text, truth) in enumerate(problems)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path
