"""Build verl reward-loop inputs the way verl's agent loop does (``AgentLoopWorker._compute_score``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig


def reward_config(tokenizer_dir: Path, overrides: list[str] | None = None) -> DictConfig:
    """verl's real ppo_trainer config, composed with hydra, reward settings migrated as main_ppo does."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            "ppo_trainer",
            overrides=[
                f"actor_rollout_ref.model.path={tokenizer_dir}",
                "reward.reward_manager.name=pdai_stepwise",
                *(overrides or []),
            ],
        )
    return migrate_legacy_reward_impl(config)


def agent_loop_sample(
    tokenizer,
    prompt: str,
    response_ids: list[int],
    ground_truth: object,
    extra_info: dict | None = None,
    rollout_fields: dict | None = None,
):
    """One sample as verl's agent loop hands it to a reward-loop worker (a DataProto of length 1)."""
    from verl import DataProto

    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    prompts = torch.tensor([prompt_ids], dtype=torch.int64)
    responses = torch.tensor([response_ids], dtype=torch.int64)
    input_ids = torch.cat([prompts, responses], dim=1)
    batch = {
        "prompts": prompts,
        "responses": responses,
        "attention_mask": torch.ones_like(input_ids),
        "input_ids": input_ids,
        "position_ids": torch.arange(input_ids.shape[1]).unsqueeze(0),
    }
    kwargs = {
        "data_source": "pdai_test",
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": extra_info or {},
        "raw_prompt": [{"role": "user", "content": prompt}],
    }
    non_tensor = {k: np.array([v], dtype=object) for k, v in kwargs.items()}
    non_tensor["tool_extra_fields"] = np.array([rollout_fields or {}], dtype=object)
    non_tensor["__num_turns__"] = np.array([2])
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)
