"""The launch scripts' --dry-run: the command they would run, and the check-recipe verdict, via bash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recipes.recipe_files import RECIPE_DIR, make_data_dir, make_model_dir

REPO = RECIPE_DIR.parents[1]


def run_script(script: str, args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "VERL_PDAI": f"{sys.executable} -m verl_pdai.cli", **env_extra}
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        ["bash", str(RECIPE_DIR / script), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    return {
        "DATA_DIR": str(make_data_dir(tmp_path / "data")),
        "MODEL_PATH": str(make_model_dir(tmp_path / "model")),
        "CKPT_DIR": str(tmp_path / "ckpt"),
    }


def test_one_gpu_dry_run_checks_and_prints_the_command(paths: dict[str, str]) -> None:
    result = run_script("run_1gpu.sh", ["--method", "grpo", "--dry-run", "trainer.total_training_steps=5"], paths)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "-m verl.trainer.main_ppo --config-path" in out and "--config-name grpo_stage1" in out
    assert "+hardware=one_gpu" in out and "trainer.total_training_steps=5" in out
    assert f"data.train_files={paths['DATA_DIR']}/train.parquet" in out
    assert "OK: grpo_stage1" in out and "16 prompts x n=8" in out


def test_multinode_stage2_resumes_from_the_latest_stage1_checkpoint(paths: dict[str, str]) -> None:
    paths = {**paths, "MODEL_PATH": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}  # not local: model not checked
    stage1 = Path(paths["CKPT_DIR"]) / "verl_pdai_r1_distill_qwen_1p5b" / "eprli_stage1_8k"
    (stage1 / "global_step_40").mkdir(parents=True)
    (stage1 / "global_step_40" / "pdai_state.json").write_text("{}")
    (stage1 / "latest_checkpointed_iteration.txt").write_text("40\n")
    result = run_script("run_multinode.sh", ["--stage", "2", "--dry-run"], {**paths, "NNODES": "4"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ray job submit" in result.stdout
    assert f"trainer.resume_from_path={stage1}/global_step_40" in result.stdout
    assert "trainer.nnodes=4" in result.stdout and "OK: eprli_stage2" in result.stdout
    assert "32 GPU(s) (4 x 8)" in result.stdout


def test_dry_run_fails_with_the_problem(paths: dict[str, str]) -> None:
    paths = {**paths, "MODEL_PATH": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}
    (Path(paths["DATA_DIR"]) / "train.parquet").unlink()
    result = run_script("run_1node.sh", ["--dry-run"], paths)
    assert result.returncode == 1
    assert "train.parquet does not exist" in result.stdout and "FAILED: 1 problem(s)" in result.stdout


def test_stage2_without_stage1_checkpoint_is_a_problem(paths: dict[str, str]) -> None:
    paths = {**paths, "MODEL_PATH": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"}
    result = run_script("run_1node.sh", ["--stage", "2", "--method", "grpo", "--dry-run"], paths)
    assert result.returncode == 1
    assert "no stage-1 checkpoint" in result.stderr
    assert "global_step_NONE does not exist" in result.stdout


SCRIPTS = ("run_1node.sh", "run_1gpu.sh", "run_multinode.sh")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        # before the fix: "$2: unbound variable" from `set -u`, for every script
        (["--dry-run", "--from-checkpoint"], "error: --from-checkpoint needs a value, e.g. --from-checkpoint "),
        (["--stage", "2", "--from-checkpoint", "--dry-run"], "error: --from-checkpoint needs a value"),
        (["--method"], "error: --method needs a value, e.g. --method grpo"),
        (["--dry-run", "--stage"], "error: --stage needs a value, e.g. --stage 2"),
        (["--stage="], "error: --stage needs a value"),
        (["--dryrun"], "error: unknown option --dryrun"),
        (["--from-checkpoint", "/somewhere", "--dry-run"], "error: --from-checkpoint is for --stage 2"),
    ],
)
def test_option_errors_are_one_line_with_the_fix(script: str, args: list[str], message: str, tmp_path: Path) -> None:
    # the scripts stop before any Python runs: a PYTHON that would fail shows they never got that far
    env = {"DATA_DIR": str(tmp_path), "CKPT_DIR": str(tmp_path), "RAY_ADDRESS": "http://head:8265"}
    result = subprocess.run(
        ["bash", str(RECIPE_DIR / script), *args],
        env={**os.environ, **env, "PYTHON": "false", "VERL_PDAI": "false"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "unbound variable" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr


def test_option_equals_value_form_is_accepted(paths: dict[str, str]) -> None:
    result = run_script("run_1gpu.sh", ["--method=grpo", "--stage=1", "--dry-run"], paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--config-name grpo_stage1" in result.stdout


def test_real_stage2_launch_without_a_starting_checkpoint_stops_before_python(paths: dict[str, str]) -> None:
    missing = Path(paths["CKPT_DIR"]) / "nowhere" / "global_step_9"
    result = run_script(
        "run_1node.sh", ["--stage", "2", "--from-checkpoint", str(missing)], {**paths, "PYTHON": "false"}
    )
    assert result.returncode == 2
    assert f"error: the stage-2 starting checkpoint {missing} is not a folder" in result.stderr
