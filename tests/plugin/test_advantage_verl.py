"""``epgrpo`` through verl: its estimator registry, ``compute_advantage`` on a ``DataProto`` (the function both the
legacy and the v1 trainer call), and the v1 trainer's multi-trajectory wrapper."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from verl_pdai.core.advantage import compute_epgrpo_advantage
from verl_pdai.plugin.advantage import compute_epgrpo_advantage_verl
from verl_pdai.plugin.advantage_inputs import NAME, epgrpo_inputs, epgrpo_settings


def batch(seed: int = 0, bsz: int = 24, seq_len: int = 10, group: int = 4):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, seq_len + 1, (bsz,), generator=gen)  # includes empty responses
    mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
    rewards = torch.zeros(bsz, seq_len)
    last = (lengths - 1).clamp_min(0)
    rewards[torch.arange(bsz), last] = torch.randint(0, 2, (bsz,), generator=gen).float()
    uid = np.array([f"uid-{i // group}" for i in range(bsz - 1)] + ["uid-alone"], dtype=object)  # + a singleton
    return rewards, mask, uid


def data_proto(rewards, mask, uid):
    from verl import DataProto

    return DataProto.from_dict(
        tensors={"token_level_rewards": rewards.clone(), "response_mask": mask.clone()},
        non_tensors={"uid": uid.copy()},
    )


def test_registered_in_verls_registry():
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    assert get_adv_estimator_fn(NAME) is compute_epgrpo_advantage_verl


@pytest.mark.parametrize("norm", [True, False])
def test_called_the_way_compute_advantage_calls_it_equals_grpo(norm):
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn

    rewards, mask, uid = batch()
    config = AlgoConfig(adv_estimator=NAME, norm_adv_by_std_in_grpo=norm)
    # exactly the keywords of verl 0.9.1's compute_advantage (reward_baselines only when the batch has it)
    adv, ret = get_adv_estimator_fn(NAME)(
        token_level_rewards=rewards, response_mask=mask, config=config, index=uid, reward_baselines=torch.zeros(24)
    )
    expected, _ = compute_grpo_outcome_advantage(rewards, mask, uid, norm_adv_by_std_in_grpo=norm)
    torch.testing.assert_close(adv, expected, rtol=1e-6, atol=1e-6)
    assert ret is adv


@pytest.mark.parametrize("norm", [True, False])
def test_compute_advantage_on_a_data_proto_equals_grpo(norm):
    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rewards, mask, uid = batch(seed=1)
    config = AlgoConfig(adv_estimator=NAME, norm_adv_by_std_in_grpo=norm)
    ours = compute_advantage(data_proto(rewards, mask, uid), adv_estimator=NAME, config=config)
    theirs = compute_advantage(
        data_proto(rewards, mask, uid), adv_estimator="grpo", norm_adv_by_std_in_grpo=norm, config=config
    )
    torch.testing.assert_close(ours.batch["advantages"], theirs.batch["advantages"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.batch["returns"], theirs.batch["returns"], rtol=1e-6, atol=1e-6)


def test_v1_trainer_path_with_a_hydra_config():
    """The v1 trainer calls compute_advantage_for_multi_trajectories with config=config.algorithm (a DictConfig);
    for any estimator but ``grpo`` it hands the whole batch to compute_advantage."""
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    rewards, mask, uid = batch(seed=2)
    algorithm = OmegaConf.create(
        {"adv_estimator": NAME, "norm_adv_by_std_in_grpo": True, "pdai": {"process_weight": 0.5}}
    )
    keys = [f"{u}_0_0" for u in uid]
    out = compute_advantage_for_multi_trajectories(
        data_proto(rewards, mask, uid), batch_keys=keys, adv_estimator=NAME, config=algorithm
    )
    expected, _ = compute_epgrpo_advantage(rewards.sum(-1), mask, uid)
    torch.testing.assert_close(out.batch["advantages"], expected)


def test_config_keys_defaults_and_errors():
    from verl.trainer.config import AlgoConfig

    assert epgrpo_settings(None) == {
        "norm_adv_by_std_in_grpo": True,
        "process_weight": 1.0,
        "pre_hint_weight": 0.0,
        "epsilon": 1e-6,
        "discount": 0.0,
        "baseline": "group",
        "process_clip_ratio": 0.5,
    }
    with pytest.raises(ValueError, match="baseline must be one of group, level"):
        epgrpo_settings({"pdai": {"baseline": "per_level"}})
    assert epgrpo_settings(AlgoConfig(norm_adv_by_std_in_grpo=False))["norm_adv_by_std_in_grpo"] is False
    cfg = OmegaConf.create({"pdai": {"process_weight": 0.2, "pre_hint_weight": 0.5}})
    assert epgrpo_settings(cfg)["process_weight"] == 0.2 and epgrpo_settings(cfg)["pre_hint_weight"] == 0.5
    with pytest.raises(ValueError, match="did you mean algorithm.pdai.process_weight"):
        epgrpo_settings({"pdai": {"proces_weight": 0.2}})
    with pytest.raises(ValueError, match="did you mean algorithm.pdai.pre_hint_weight"):
        epgrpo_settings({"pdai": {"prehint_weight": 0.2}})
    # other components' keys may share the namespace
    assert epgrpo_settings({"pdai": {"prior_alpha": 1.0, "preview_size": 4}})["process_weight"] == 1.0
    with pytest.raises(ValueError, match="must be a number"):
        epgrpo_settings({"pdai": {"process_weight": "high"}})
    with pytest.raises(ValueError, match="pre_hint_weight"):
        rewards, mask, uid = batch()
        compute_epgrpo_advantage_verl(rewards, mask, uid, config={"pdai": {"pre_hint_weight": 2.0}})
    with pytest.raises(ValueError, match="group index"):
        compute_epgrpo_advantage_verl(rewards, mask, config=None)


def test_pdai_keywords_reach_the_core():
    rewards, mask, uid = batch(seed=3, bsz=8, group=4)
    mask[:] = 1
    level = torch.tensor([0, 0, 1, 1, 0, 2, 2, 2])
    start = torch.tensor([-1, -1, 3, 4, -1, 2, 2, 5])
    step_rewards = torch.zeros(8, 10)
    step_mask = torch.zeros(8, 10, dtype=torch.bool)
    step_mask[:, 6] = True
    step_rewards[:, 6] = torch.linspace(-0.2, 0.2, 8)
    outcome = rewards.sum(-1) + 1.0
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": False, "pdai": {"process_weight": 0.3}})
    adv, _ = compute_epgrpo_advantage_verl(
        rewards,
        mask,
        uid,
        config=config,
        pdai_hint_level=level,
        pdai_hint_start=start,
        pdai_step_rewards=step_rewards,
        pdai_step_mask=step_mask,
        pdai_outcome_scores=outcome,
    )
    expected, _ = compute_epgrpo_advantage(
        outcome, mask, uid, level, start, step_rewards, step_mask, norm_adv_by_std_in_grpo=False, process_weight=0.3
    )
    torch.testing.assert_close(adv, expected)
    # an explicit argument wins over the config (verl's compute_advantage passes none)
    adv, _ = compute_epgrpo_advantage_verl(rewards, mask, uid, norm_adv_by_std_in_grpo=True, config=config)
    torch.testing.assert_close(adv, compute_epgrpo_advantage(rewards.sum(-1), mask, uid)[0])


def test_epgrpo_inputs_from_agent_loop_and_reward_fields():
    token_level_rewards = torch.zeros(3, 6)
    token_level_rewards[:, 5] = torch.tensor([1.15, 0.0, -0.05])  # pdai_stepwise: outcome + sum(step scores)
    fields = {
        "pdai_hint_level": np.array([0, 2, 1], dtype=object),
        "pdai_hint_spans": np.array([[], [[2, 4], [5, 6]], json.dumps([[3, 5]])], dtype=object),
        "step_scores": np.array([json.dumps([0.1, 0.05]), json.dumps([]), json.dumps([-0.05])], dtype=object),
        "step_token_ends": np.array([json.dumps([1, 40]), json.dumps([]), json.dumps([2])], dtype=object),
    }
    with pytest.raises(ValueError, match="without the reward's 'outcome' field"):
        epgrpo_inputs(fields, token_level_rewards)  # the total minus the steps is never trusted
    fields["outcome"] = np.array([1.0, 0.0, 0.0], dtype=object)
    kwargs = epgrpo_inputs(fields, token_level_rewards)
    assert kwargs["pdai_hint_level"].tolist() == [0, 2, 1]
    assert kwargs["pdai_hint_start"].tolist() == [-1, 2, 3]
    assert kwargs["pdai_step_mask"].tolist() == [
        [False, True, False, False, False, True],
        [False] * 6,
        [False, False, True, False, False, False],
    ]
    torch.testing.assert_close(kwargs["pdai_outcome_scores"], torch.tensor([1.0, 0.0, 0.0]))
    adv, _ = compute_epgrpo_advantage_verl(token_level_rewards, torch.ones(3, 6), ["a", "a", "a"], **kwargs)
    assert bool(torch.isfinite(adv).all())
    assert epgrpo_inputs({}, token_level_rewards) == {}
    with pytest.raises(ValueError, match="entries"):
        epgrpo_inputs({"pdai_hint_level": [0]}, token_level_rewards)
