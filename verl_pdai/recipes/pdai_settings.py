"""The verl_pdai sections of a recipe, parsed by the same code the components run at start-up: the trainer's
``PdaiSettings.from_config``, the agent loop's ``InjectionConfig`` / ``PolicyConfig``, the reward's
``StepwiseConfig`` (``reward.reward_kwargs`` for ``pdai_stepwise``, ``custom_reward_function.reward_kwargs`` for
``verl_pdai.api.compute_score``) and the estimator's ``algorithm.pdai``."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from verl_pdai.recipes.findings import Findings


def _parse(findings: Findings, what: str, parse: Callable[[], object], fix: str) -> object | None:
    try:
        return parse()
    except Exception as exc:
        findings.problem("pdai", f"{what}: {exc}", fix)
        return None


def _plain(config: DictConfig, key: str) -> dict:
    value = OmegaConf.select(config, key)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else dict(value or {})


def check_pdai_settings(config: DictConfig, findings: Findings) -> None:
    from verl_pdai.core.injection import InjectionConfig
    from verl_pdai.core.policy import PolicyConfig
    from verl_pdai.core.reward_settings import (
        CUSTOM_KWARGS_SECTION,
        RewardSettings,
        manager_settings,
        stock_route_problems,
    )
    from verl_pdai.plugin.advantage_inputs import epgrpo_settings
    from verl_pdai.plugin.trainer_settings import PdaiSettings

    docs = "see docs/configuration.md for the valid keys and ranges"
    settings = _parse(findings, "pdai section (trainer)", lambda: PdaiSettings.from_config(config), docs)
    pdai = _plain(config, "pdai")
    injection = _parse(
        findings, "pdai.rollout (agent loop)", lambda: InjectionConfig.from_mapping(pdai.get("rollout")), docs
    )
    _parse(findings, "pdai.policy (agent loop)", lambda: PolicyConfig.from_dict(pdai.get("policy") or {}), docs)
    _parse(findings, "algorithm.pdai (epgrpo)", lambda: epgrpo_settings(config.algorithm), docs)
    if OmegaConf.select(config, "reward.reward_manager.name") == "pdai_stepwise":
        _parse(
            findings,
            "reward.reward_kwargs (pdai_stepwise)",
            lambda: manager_settings(
                _plain(config, "reward.reward_kwargs"), _plain(config, "reward.custom_reward_function.reward_kwargs")
            ),
            docs,
        )
    if "verl_pdai" in str(OmegaConf.select(config, "reward.custom_reward_function.path") or ""):
        _parse(
            findings,
            "reward.custom_reward_function.reward_kwargs (verl_pdai.api.compute_score)",
            lambda: RewardSettings.from_mapping(
                _plain(config, "reward.custom_reward_function.reward_kwargs"), CUSTOM_KWARGS_SECTION
            ),
            docs,
        )
        misplaced = stock_route_problems(_plain(config, "reward.reward_kwargs"))
        if misplaced:  # verl's stock managers never pass these to compute_score: they would silently do nothing
            findings.problem("pdai", misplaced, "move them; see docs/reward.md, Reuse in another verl project")
    n = int(OmegaConf.select(config, "actor_rollout_ref.rollout.n") or 1)
    uses_hints = OmegaConf.select(config, "actor_rollout_ref.rollout.agent.default_agent_loop") == "pdai_hint"
    if uses_hints and isinstance(injection, InjectionConfig):
        if injection.preview_size >= n:
            findings.warn(
                "pdai",
                f"pdai.rollout.preview_size={injection.preview_size} >= rollout.n={n}: it is "
                f"capped at n - 1 = {n - 1}, leaving one session to hint",
                "use a preview_size well below n (2 of 8, 4 of 16 in the recipes)",
            )
        findings.summary["pdai"] = (
            f"preview {min(injection.preview_size, max(n - 1, 0))} of {n}, injection after {injection.min_tokens} "
            f"tokens" + (f", store decay {settings.store.decay}" if isinstance(settings, PdaiSettings) else "")
        )
