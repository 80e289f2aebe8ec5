"""Resume settings, checked as verl's ``PPOTrainer._load_checkpoint`` reads them (and the pdai trainer's
``pdai_state.json`` next to verl's checkpoint)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from verl_pdai.recipes.findings import Findings

RESUME_MODES = ("auto", "disable", "resume_path")


def check_resume(config: DictConfig, findings: Findings) -> None:
    mode = OmegaConf.select(config, "trainer.resume_mode")
    if mode not in RESUME_MODES:
        findings.problem(
            "resume",
            f"trainer.resume_mode={mode!r} is not one of {list(RESUME_MODES)}",
            "use auto (latest checkpoint in default_local_dir), disable, or resume_path",
        )
        return
    if mode != "resume_path":
        return
    path_text = OmegaConf.select(config, "trainer.resume_from_path")
    if not isinstance(path_text, str) or "global_step_" not in path_text:
        findings.problem(
            "resume",
            f"trainer.resume_from_path={path_text!r} must name a .../global_step_N folder",
            "pass the checkpoint folder to resume from (stage 2: a stage-1 global_step_N folder)",
        )
        return
    folder = Path(path_text).expanduser()
    if not folder.is_dir():
        findings.problem(
            "resume",
            f"trainer.resume_from_path {folder} does not exist",
            "run the previous stage first, or pass an existing global_step_N folder",
        )
        return
    if (
        str(OmegaConf.select(config, "trainer.v1.trainer_mode")).startswith("pdai_")
        and not (folder / "pdai_state.json").is_file()
    ):
        findings.warn(
            "resume",
            f"{folder} has no pdai_state.json: the difficulty store and the policy start fresh",
            "resume from a checkpoint written by a pdai trainer mode to keep them",
        )
    findings.summary["resume from"] = str(folder)
