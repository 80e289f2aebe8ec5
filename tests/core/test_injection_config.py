"""``pdai.rollout`` settings and the checker previews are graded with (pure: no verl)."""

from __future__ import annotations

import pytest

from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.injection import InjectionConfig, preview_checker_config
from verl_pdai.core.scoring import StepwiseConfig


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("thinking", "required", "reward.reward_kwargs.thinking"),
        ("verify_timeout_s", 8.0, "reward.reward_kwargs.timeout_s"),
    ],
)
def test_removed_rollout_keys_fail_with_the_key_that_replaces_them(key: str, value: object, fix: str) -> None:
    with pytest.raises(ConfigError, match=rf"pdai\.rollout\.{key} was removed") as caught:
        InjectionConfig.from_mapping({"min_tokens": 64, key: value})
    assert fix in str(caught.value) and f"delete pdai.rollout.{key}" in str(caught.value)


def test_previews_use_the_pdai_stepwise_rewards_kwargs() -> None:
    kwargs = {"thinking": "required", "timeout_s": 9.0, "max_chars": 1000}
    for manager in ("pdai_stepwise", "PdaiStepwiseRewardManager"):  # registered name, importlib class name
        assert preview_checker_config(manager, kwargs) == StepwiseConfig(**kwargs)
    # no reward_kwargs: the reward's defaults, as the reward manager itself reads them
    assert preview_checker_config("pdai_stepwise", None) == StepwiseConfig()
    # pdai_stepwise ignores a custom reward function: its own section decides
    required = preview_checker_config("pdai_stepwise", {"thinking": "required"}, "pkg://verl_pdai.api", {})
    assert required.thinking == "required"


def test_previews_use_the_custom_reward_functions_kwargs_for_verl_pdais_compute_score() -> None:
    config = preview_checker_config("naive", {"max_resp_len": 4}, "pkg://verl_pdai.api", {"thinking": "required"})
    assert config == StepwiseConfig(thinking="required")


def test_a_reward_with_another_checker_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"reward\.reward_manager\.name='dapo'") as caught:
        preview_checker_config("dapo", {"overlong_buffer_cfg": None}, None, None)
    assert "reward.reward_manager.name=pdai_stepwise" in str(caught.value)


def test_bad_reward_kwargs_name_their_section() -> None:
    with pytest.raises(ConfigError, match=r"reward\.reward_kwargs .*thinking='sometimes'"):
        preview_checker_config("pdai_stepwise", {"thinking": "sometimes"})
    with pytest.raises(ConfigError, match=r"reward\.custom_reward_function\.reward_kwargs .*unknown key"):
        preview_checker_config("naive", None, "pkg://verl_pdai.api", {"thinkin": "required"})


def test_previews_accept_the_reward_routing_keys_and_keep_the_checker_settings() -> None:
    """The routing keys are the reward's (issue 13): the agent loop must not refuse a reward config that has them."""
    config = preview_checker_config("pdai_stepwise", {"thinking": "required", "verl_sources": ["apps"]})
    assert config.thinking == "required"
    with pytest.raises(ConfigError, match="verl_sources=3"):
        preview_checker_config("pdai_stepwise", {"verl_sources": 3})
