"""verl's ``ppo_trainer`` config for the demo: hydra compose of ``pkg://verl.trainer.config``, every pdai component
selected by its registered name, sizes small enough for two CPU cores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_pdai.actor.settings import apply_cpu_actor_settings
from verl_pdai.core.hints import RECOMMENDED_PREFIX

GROUP_SIZE = 4  # n sessions per prompt
PREVIEW_SIZE = 2  # k of them preview
BATCH_PROMPTS = 4
RESPONSE_LENGTH = 160
PROMPT_LENGTH = 192
MIN_TOKENS = 8  # the injection point: the first "\n\n" after this many tokens
HINT_PREFIX = RECOMMENDED_PREFIX
BOUNDARY = "\n\n"
# sampling temperature: low enough that the taught paths are followed, > 0 so that branches taught with
# weights (right / wrong continuation after a hint) split a group the way the weights say
TEMPERATURE = 0.6
ACTOR_LR = 1e-4  # Adam on a 10M-parameter model (5e-4 undid the easy problems in 3 steps; a 1.5B recipe uses 1e-6)


@dataclass(frozen=True)
class DemoPaths:
    model_path: Path  # what actor_rollout_ref.model.path names (tokenizer folder for the built-in model)
    train_file: Path
    out_dir: Path


def compose_config(paths: DemoPaths, steps: int, seed: int) -> Any:
    """The composed config, reward settings migrated as ``verl.trainer.main_ppo`` does."""
    from omegaconf import open_dict

    overrides = [
        f"actor_rollout_ref.model.path={paths.model_path}",
        "trainer.v1.trainer_mode=pdai_sync",
        "algorithm.adv_estimator=epgrpo",
        "actor_rollout_ref.rollout.agent.default_agent_loop=pdai_hint",
        "reward.reward_manager.name=pdai_stepwise",
        f"data.train_files={paths.train_file}",
        f"data.val_files={paths.train_file}",
        f"data.train_batch_size={BATCH_PROMPTS}",
        "data.dataloader_num_workers=0",
        f"data.seed={seed}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH_PROMPTS}",
        f"actor_rollout_ref.rollout.n={GROUP_SIZE}",
        f"actor_rollout_ref.rollout.response_length={RESPONSE_LENGTH}",
        f"actor_rollout_ref.rollout.prompt_length={PROMPT_LENGTH}",
        f"actor_rollout_ref.rollout.temperature={TEMPERATURE}",
        # old log-probs = the rollout's own (verl's bypass mode): no actor log-prob forward
        "algorithm.rollout_correction.bypass_mode=true",
        f"actor_rollout_ref.actor.optim.lr={ACTOR_LR}",
        f"trainer.total_training_steps={steps}",
        "trainer.total_epochs=1000",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        f"trainer.save_freq={steps}",
        f"trainer.default_local_dir={paths.out_dir / 'checkpoints'}",
        "trainer.logger=[file]",
        "trainer.project_name=verl_pdai_demo",
        "trainer.experiment_name=demo",
        f"+pdai.rollout.preview_size={PREVIEW_SIZE}",
        f"+pdai.rollout.min_tokens={MIN_TOKENS}",
        # wait for the previews at the injection point: on two CPU cores the main sessions reach it long before
        # a preview finishes, so the default (decide from what is published so far) would decide from the prior
        "+pdai.rollout.blocking=true",
        f"+pdai.rollout.seed={seed}",
        "+pdai.store.decay=0.9",
        "+pdai.advantage.process_weight=0.1",
    ]
    config = compose_ppo_trainer(overrides)
    with open_dict(config):
        config.pdai.rollout.hint_prefix = HINT_PREFIX  # newlines do not survive a command-line override
    apply_cpu_actor_settings(config.actor_rollout_ref)
    return config


def compose_ppo_trainer(overrides: list[str]) -> Any:
    """verl's ``ppo_trainer`` config with ``overrides``, reward settings migrated as ``verl.trainer.main_ppo`` does."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose("ppo_trainer", overrides=overrides)
    GlobalHydra.instance().clear()
    return migrate_legacy_reward_impl(config)
