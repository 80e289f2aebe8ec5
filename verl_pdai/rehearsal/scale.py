"""What the rehearsal changes in a recipe's composed config, and why: only what GPUs decide.

Every change is a (key, value the recipe has, value the rehearsal uses, reason) row, printed before the run, so a
reader sees exactly where the rehearsal departs from the launch. Everything else (the reward, the agent loop,
the advantage estimator, the trainer mode, the pdai sections, the data files and their loading, checkpointing and
resume settings) is the recipe's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from verl_pdai.actor.settings import CPU_ACTOR_SETTINGS

PROMPTS = 2  # prompts per training step
GROUP = 4  # sessions per prompt (>= 2 so a group has a baseline; the recipe's preview size is capped below it)
RESPONSE_TOKENS = 96
VAL_SAMPLES = 1  # samples per validation prompt
MIN_TOKENS = 8  # injection point of the agent loop: the recipe's is sized for 8k responses


@dataclass(frozen=True)
class Change:
    key: str
    recipe: Any
    rehearsal: Any
    why: str

    def line(self) -> str:
        return f"  {self.key}: {self.recipe!r} -> {self.rehearsal!r}  ({self.why})"


def planned_changes(config: DictConfig, model_dir: Path, out_dir: Path, steps: int) -> list[Change]:
    """The changes for ``steps`` training steps, a validation pass at the last one and a checkpoint there."""
    preview = OmegaConf.select(config, "pdai.rollout.preview_size", default=None)
    prompt_length = int(OmegaConf.select(config, "data.max_prompt_length", default=1024))
    changes = [
        Change(
            "actor_rollout_ref.model.path",
            _get(config, "actor_rollout_ref.model.path"),
            str(model_dir),
            "a tiny Qwen2 built in code with the real Qwen2.5 tokenizer: no weights can be downloaded here",
        ),
        Change("data.train_batch_size", _get(config, "data.train_batch_size"), PROMPTS, "two CPU cores"),
        Change(
            "actor_rollout_ref.actor.ppo_mini_batch_size",
            _get(config, "actor_rollout_ref.actor.ppo_mini_batch_size"),
            PROMPTS,
            "one mini-batch of the scaled-down batch",
        ),
        Change("actor_rollout_ref.rollout.n", _get(config, "actor_rollout_ref.rollout.n"), GROUP, "two CPU cores"),
        Change(
            "data.max_response_length",
            _get(config, "data.max_response_length"),
            RESPONSE_TOKENS,
            "a tiny model on CPU generates ~hundreds of tokens/s",
        ),
        Change(
            "actor_rollout_ref.rollout.response_length",
            _get(config, "actor_rollout_ref.rollout.response_length"),
            RESPONSE_TOKENS,
            "as data.max_response_length",
        ),
        Change(
            "actor_rollout_ref.rollout.prompt_length",
            _get(config, "actor_rollout_ref.rollout.prompt_length"),
            prompt_length,
            "as data.max_prompt_length (the recipe's)",
        ),
        Change(
            "actor_rollout_ref.rollout.val_kwargs.n",
            _get(config, "actor_rollout_ref.rollout.val_kwargs.n"),
            VAL_SAMPLES,
            "one sample per validation prompt: the pass goes over every file, not over k",
        ),
        Change("data.dataloader_num_workers", _get(config, "data.dataloader_num_workers"), 0, "two CPU cores"),
        Change("trainer.total_training_steps", _get(config, "trainer.total_training_steps"), steps, "the rehearsal"),
        Change("trainer.save_freq", _get(config, "trainer.save_freq"), steps, "save at the last step, then resume"),
        Change("trainer.test_freq", _get(config, "trainer.test_freq"), steps, "validate at the last step"),
        Change("trainer.val_before_train", _get(config, "trainer.val_before_train"), False, "one validation pass"),
        Change(
            "trainer.default_local_dir",
            _get(config, "trainer.default_local_dir"),
            str(out_dir / "checkpoints"),
            "a scratch folder",
        ),
        Change("trainer.logger", _get(config, "trainer.logger"), ["file"], "metrics to a file in the scratch folder"),
        Change("trainer.n_gpus_per_node", _get(config, "trainer.n_gpus_per_node"), 1, "no GPU: one CPU rank"),
        Change("trainer.nnodes", _get(config, "trainer.nnodes"), 1, "one machine"),
        Change(
            "trainer.resume_mode",
            _get(config, "trainer.resume_mode"),
            "auto",
            "trains from scratch and saves; the resume then uses the launch's mode on that checkpoint",
        ),
    ]
    for key, (value, why) in CPU_ACTOR_SETTINGS.items():
        full = f"actor_rollout_ref.{key}"
        if _get(config, full) != value:
            changes.append(Change(full, _get(config, full), value, why))
    if preview is not None and int(preview) >= GROUP:
        changes.append(Change("pdai.rollout.preview_size", preview, GROUP // 2, "fits the scaled-down group"))
    if OmegaConf.select(config, "pdai", default=None) is not None:  # the baseline recipe has no pdai section
        changes.append(
            Change(
                "pdai.rollout.min_tokens",
                _get(config, "pdai.rollout.min_tokens"),
                MIN_TOKENS,
                "inside the scaled-down response",
            )
        )
    return changes


def apply_changes(config: DictConfig, changes: list[Change]) -> None:
    with open_dict(config):
        for change in changes:
            OmegaConf.update(config, change.key, change.rehearsal, merge=False, force_add=True)


def _get(config: DictConfig, key: str) -> Any:
    value = OmegaConf.select(config, key, default=None, throw_on_missing=False)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
