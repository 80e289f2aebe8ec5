"""``verl-pdai eval --backend hf`` on a tiny random Qwen2 model built in code (CPU, k=2, a few tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_pdai.cli import main

from .eval_rows import write_benchmark
from .tiny_model import save_tiny_model

MAX_TOKENS = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    save_tiny_model(folder, tokenizer)
    return folder


def test_hf_backend_end_to_end_through_the_cli(model_dir: Path, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    write_benchmark(data / "aime2024.parquet", "aime2024", [("What is 2+3?", "5"), ("What is 4+4?", "008")])
    write_benchmark(data / "minerva.parquet", "minerva", [("Half of one?", ["0.5\n", "1/2"])])
    out = tmp_path / "out"
    argv = ["eval", "--model", str(model_dir), "--data-dir", str(data), "--out", str(out), "--backend", "hf"]
    argv += ["--benchmarks", "aime2024,minerva", "--k", "2", "--max-tokens", str(MAX_TOKENS), "--score-workers", "1"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in lines] == ["aime2024/0", "aime2024/1", "minerva/0"]
    for record in lines:
        assert len(record["responses"]) == 2 and all(isinstance(r, str) for r in record["responses"])
        assert all(1 <= n <= MAX_TOKENS for n in record["num_tokens"])
        # a random model does not box the answer: judged, and wrong
        assert record["correct"] == [False, False]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "hf" and summary["model"] == str(model_dir) and summary["max_tokens"] == MAX_TOKENS
    assert summary["benchmarks"]["aime2024"]["avg_at_k"] == 0.0
    assert summary["benchmarks"]["minerva"]["problems"] == 1
    assert "average" in capsys.readouterr().out


def test_hf_generation_is_reproducible_and_counts_tokens(model_dir: Path, tokenizer) -> None:
    from verl_pdai.evaluation.hf_backend import HFBackend

    backend = HFBackend(str(model_dir), batch_size=2)
    prompts = [[{"role": "user", "content": "What is 2+3?"}], [{"role": "user", "content": "A much longer question?"}]]
    first = backend.generate(prompts, 3, 0.6, 0.95, MAX_TOKENS, seed=7)
    again = backend.generate(prompts, 3, 0.6, 0.95, MAX_TOKENS, seed=7)
    other = backend.generate(prompts, 3, 0.6, 0.95, MAX_TOKENS, seed=8)
    assert first == again and first != other
    assert [len(samples) for samples in first] == [3, 3]
    for samples in first:
        for text, num_tokens in samples:
            # no EOS by chance from random weights over ~150k ids: every sample runs to the limit
            assert num_tokens == MAX_TOKENS
            assert isinstance(text, str) and text
    greedy = backend.generate(prompts[:1], 2, 0.0, 1.0, MAX_TOKENS, seed=0)
    assert greedy[0][0] == greedy[0][1]  # greedy: the k samples are the same sequence


def test_hf_prompts_are_the_token_ids_the_vllm_backend_sends(model_dir: Path, tokenizer) -> None:
    from verl_pdai.evaluation.backends import chat_prompt_ids
    from verl_pdai.evaluation.hf_backend import HFBackend

    backend = HFBackend(str(model_dir), batch_size=2)
    prompts = [[{"role": "user", "content": "What is 2+3?"}], [{"role": "user", "content": "A much longer question?"}]]
    batch = backend._encode(prompts)
    for row, mask, messages in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(), prompts, strict=True):
        expected = chat_prompt_ids(tokenizer, messages)
        pad = len(row) - len(expected)
        assert row[pad:] == expected and mask == [0] * pad + [1] * len(expected)  # left padding
