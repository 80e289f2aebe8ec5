"""``verl-pdai check-recipe CONFIG_DIR CONFIG_NAME [overrides...]``: compose a recipe and check it without a GPU."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from verl_pdai.recipes.findings import Findings

# what the OK summary shows: label -> config key
ESSENTIALS = {
    "trainer mode": "trainer.v1.trainer_mode",
    "agent loop": "actor_rollout_ref.rollout.agent.default_agent_loop",
    "reward manager": "reward.reward_manager.name",
    "custom reward fn": "reward.custom_reward_function.path",
    "adv estimator": "algorithm.adv_estimator",
    "model": "actor_rollout_ref.model.path",
    "lr": "actor_rollout_ref.actor.optim.lr",
    "kl loss": "actor_rollout_ref.actor.kl_loss_coef",
    "prompt / response": "data.max_prompt_length",
    "rollout temperature": "actor_rollout_ref.rollout.temperature",
    "checkpoints": "trainer.default_local_dir",
    "resume": "trainer.resume_mode",
}


def check_recipe(config_dir: Path, config_name: str, overrides: Sequence[str]) -> tuple[Findings, Any]:
    """All checks; returns the findings and the composed config (None when hydra could not compose it)."""
    from omegaconf import OmegaConf

    from verl_pdai.recipes import compose as c
    from verl_pdai.recipes.batch_sizes import check_batch_sizes
    from verl_pdai.recipes.checkpoints import check_resume
    from verl_pdai.recipes.data_files import check_data
    from verl_pdai.recipes.names import check_names
    from verl_pdai.recipes.pdai_settings import check_pdai_settings
    from verl_pdai.recipes.verl_config import check_verl_config

    findings = Findings()
    if not config_dir.is_dir():
        findings.problem(
            "compose",
            f"config folder {config_dir} does not exist",
            "pass the recipe folder, e.g. recipes/eprli_r1_distill_qwen_1p5b",
        )
        return findings, None
    try:
        config = c.compose(config_dir, config_name, overrides)
    except Exception as exc:
        c.reword_compose_error(exc, config_dir, config_name, findings)
        return findings, None
    base = c.verl_base(c.group_overrides(overrides))
    known = [key for key, _ in c.flat_keys(base)]
    for key in c.unknown_keys(config, base):
        near = c.close_keys(key, known)
        findings.problem(
            "keys",
            f"`{key}` is not a key of verl's ppo_trainer config (verl ignores or rejects it)",
            (f"did you mean {', '.join(near)}? " if near else "") + "fix the spelling or remove it",
        )
    try:
        OmegaConf.to_container(config, resolve=True)
    except Exception as exc:
        findings.problem(
            "compose", f"an interpolation does not resolve: {exc}", "set the environment variable or key it names"
        )
        return findings, config
    checks: list[tuple[str, Callable[[Any, Findings], None]]] = [
        ("names", check_names),
        ("data", check_data),
        ("batch", check_batch_sizes),
        ("pdai", check_pdai_settings),
        ("resume", check_resume),
        ("verl-config", check_verl_config),  # last: migrate_legacy_reward_impl edits the config (on a copy)
    ]
    for name, check in checks:
        try:
            check(copy.deepcopy(config), findings)
        except Exception as exc:  # one broken check must not hide the others' findings
            findings.problem(
                name,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "fix the setting it names; report a bug if the recipe is valid",
            )
    return findings, config


def render(findings: Findings, config: Any, config_name: str) -> str:
    from omegaconf import OmegaConf

    lines = []
    for problem in findings.problems:
        lines.append(f"PROBLEM {problem.render()}")
    for warning in findings.warnings:
        lines.append(f"warning {warning.render()}")
    for what in findings.not_checked:
        lines.append(f"not checked: {what}")
    if findings.ok and config is not None:
        lines.append(f"OK: {config_name} composes and passes every check that runs without a GPU")
        for label, key in ESSENTIALS.items():
            value = OmegaConf.select(config, key)
            if label == "prompt / response":
                value = f"{value} / {OmegaConf.select(config, 'data.max_response_length')} tokens"
            if value is not None:
                lines.append(f"  {label:<20} {value}")
        for label, text in findings.summary.items():
            lines.append(f"  {label:<20} {text}")
    elif findings.problems:
        lines.append(f"FAILED: {len(findings.problems)} problem(s) in {config_name}")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    findings, config = check_recipe(Path(args.config_dir), args.config_name, args.overrides)
    print(render(findings, config, args.config_name))
    return 0 if findings.ok else 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "check-recipe",
        help="compose a training recipe and check it without a GPU (keys, names, data, batch sizes)",
        description="Compose CONFIG_DIR/CONFIG_NAME.yaml with hydra as verl.trainer.main_ppo would (with the same "
        "overrides) and report every problem with its fix; exit 1 if there is one.",
    )
    parser.add_argument("config_dir", help="recipe folder, e.g. recipes/eprli_r1_distill_qwen_1p5b")
    parser.add_argument("config_name", help="config name without .yaml, e.g. eprli_stage1")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="hydra overrides, as for main_ppo")
    parser.set_defaults(func=command)
