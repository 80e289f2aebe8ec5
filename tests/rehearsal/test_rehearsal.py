"""The rehearsal of the recipe's launch, end to end in subprocesses (each its own Ray and TransferQueue):
``prepare-data`` from the shipped raw samples -> ``run_1node.sh --rehearse`` (the recipe's composed config
through verl's fit loop: 2 steps, validation over all five benchmark files, a save and a resume).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "eprli_r1_distill_qwen_1p5b"
BENCHMARKS = ("aime2024", "math500", "amc", "minerva", "olympiadbench")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHON=sys.executable, VERL_PDAI=f"{sys.executable} -m verl_pdai.cli")
    for name in ("MODEL_PATH", "CKPT_DIR", "RAY_ADDRESS", "REHEARSAL_DIR"):  # the launch's defaults, whatever the shell
        env.pop(name, None)
    return {**env, **extra}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data")
    process = subprocess.run(
        [sys.executable, "-m", "verl_pdai.cli", "prepare-data", "--samples", "--out", str(out)],
        env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    return out


def rehearse(data_dir: Path, out: Path, *args: str, script: str = "run_1node.sh", **env: str):
    return subprocess.run(
        ["bash", str(RECIPE / script), "--rehearse", *args],
        env=_env(DATA_DIR=str(data_dir), REHEARSAL_DIR=str(out), **env),
        cwd=out.parent, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip


def test_the_recipe_launch_rehearses_training_validation_save_and_resume(data_dir, tmp_path):
    out = tmp_path / "rehearsal"
    process = rehearse(data_dir, out)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-4000:]
    # every departure from the launch is printed with its reason
    assert f"actor_rollout_ref.model.path: 'deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B' -> '{out / 'model'}'" in (
        process.stdout
    ), process.stdout[:3000]
    assert "data.train_batch_size: 128 -> 2" in process.stdout
    summary = next(line for line in process.stdout.splitlines() if line.startswith("rehearsal passed"))
    assert "2 training step(s)" in summary and "resumed from step 2 (pdai state restored: True)" in summary
    assert "trained 1 more" in summary
    # validation ran over every benchmark file, through verl's own loader and metric names
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    metrics = {k for r in records for k in r.get("data", r)}
    for name in BENCHMARKS:
        assert f"val-core/{name}/acc/mean@1" in metrics, name
    # the pdai trainer mode ran (its metrics) and saved its state with the checkpoint verl wrote
    assert any(k.startswith("pdai/adv/") for k in metrics)
    checkpoints = out / "checkpoints"
    assert (checkpoints / "global_step_2" / "pdai_state.json").exists()
    assert (checkpoints / "latest_checkpointed_iteration.txt").read_text().strip() == "3"


def test_the_baseline_stage_2_rehearses_its_resume_path_start_on_a_cluster_node(data_dir, tmp_path):
    """GRPO (verl's own sync mode, no pdai store), stage 2 (resume_path from a global_step folder, as the launch),
    from the multi-node script with RAY_ADDRESS pointing at a cluster: the rehearsal starts a Ray of its own."""
    out = tmp_path / "rehearsal"
    process = rehearse(data_dir, out, "--method", "grpo", "--stage", "2", script="run_multinode.sh",
                       RAY_ADDRESS="127.0.0.1:1")  # fmt: skip
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-4000:]
    assert "resuming from it (trainer.resume_from_path, as the launch)" in process.stdout
    summary = next(line for line in process.stdout.splitlines() if line.startswith("rehearsal passed"))
    assert "validation on 5 data source(s)" in summary
    assert "resumed from step 2 (pdai state restored: n/a) and trained 1 more" in summary
    assert "pdai.rollout.min_tokens" not in process.stdout  # the baseline has no pdai section to change


def test_a_folder_the_rehearsal_did_not_make_is_never_cleared(data_dir, tmp_path):
    out = tmp_path / "work"
    out.mkdir()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "precious").write_text("a real run's files")
    process = rehearse(data_dir, out)
    assert process.returncode != 0 and "non-empty folder the rehearsal did not make" in process.stderr
    assert (out / "checkpoints" / "precious").exists()
    assert "Traceback" not in process.stderr


def test_the_rehearsal_catches_validation_files_verl_cannot_concatenate(data_dir, tmp_path):
    """Issue 11, finding 1: a benchmark file whose ground truth is a list (as prepare-data once wrote Minerva's)
    next to files with string ground truths cannot be concatenated by verl; the rehearsal fails and names the fix."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for file in data_dir.glob("*.parquet"):
        frame = pd.read_parquet(file)
        if file.stem == "minerva":
            frame["reward_model"] = [
                {**row, "ground_truth": [str(row["ground_truth"])]} for row in frame["reward_model"]
            ]
        frame.to_parquet(mixed / file.name)
    process = rehearse(mixed, tmp_path / "rehearsal")
    assert process.returncode != 0
    assert "verl could not load the recipe's data files" in process.stderr
    assert "verl-pdai prepare-data" in process.stderr
    assert "Traceback" not in process.stderr
