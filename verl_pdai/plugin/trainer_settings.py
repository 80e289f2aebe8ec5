"""The ``pdai`` config section as the trainer reads it: :class:`PdaiSettings`, parsed and validated up front.

``PdaiSettings.from_config`` reads ``pdai.store``, ``pdai.policy``, ``pdai.advantage``, ``pdai.rollout``,
``pdai.on_corrupt_state``, ``pdai.ledger`` and ``pdai.harvest`` (and ``algorithm.pdai`` /
``algorithm.norm_adv_by_std_in_grpo`` for the advantage, the reward's checker settings for harvesting) from verl's
config; :class:`~verl_pdai.plugin.trainer.PdaiTrainerMixin` builds it first thing, so a bad recipe fails before verl
builds anything (see ``docs/trainer.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from verl_pdai.core.advantage import check_epgrpo_settings
from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.injection import PDAI_REWARD_MANAGERS, InjectionConfig
from verl_pdai.core.policy import PolicyConfig
from verl_pdai.core.references import HarvestConfig
from verl_pdai.core.reward_settings import CUSTOM_KWARGS_SECTION, RewardSettings, manager_settings, stock_route_problems
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.core.store import StoreConfig
from verl_pdai.ledger.settings import LedgerSettings
from verl_pdai.plugin.advantage_inputs import CONFIG_DEFAULTS as ADVANTAGE_DEFAULTS
from verl_pdai.plugin.advantage_inputs import epgrpo_settings

__all__ = ["ON_CORRUPT_CHOICES", "SECTIONS", "PdaiSettings"]

SECTIONS = (
    "store",
    "policy",
    "advantage",
    "rollout",
    "on_corrupt_state",
    "ledger",
    "drop_unscored",
    "harvest",
)  # keys of the `pdai` config section
ON_CORRUPT_CHOICES = ("fail", "fresh")


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists (resolved); anything else unchanged."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _section(pdai: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _plain(pdai.get(key))
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"pdai.{key} must be a mapping, got {type(value).__name__}: {value!r}")
    return dict(value)


@dataclass(frozen=True)
class PdaiSettings:
    """The trainer's view of the ``pdai`` config section, validated (see ``docs/trainer.md``)."""

    store: StoreConfig = field(default_factory=StoreConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    # epgrpo: process_weight (beta_proc), pre_hint_weight, epsilon, norm_adv_by_std_in_grpo
    advantage: dict[str, Any] = field(default_factory=dict)
    on_corrupt_state: str = "fail"
    ledger: LedgerSettings = field(default_factory=LedgerSettings)  # the intervention ledger (docs/ledger.md)
    # responses whose outcome the reward could not decide in time leave the loss (else: scored at the floor)
    drop_unscored: bool = False
    harvest: HarvestConfig = field(default_factory=HarvestConfig)  # harvested references (docs/trainer.md)
    rollout: InjectionConfig = field(default_factory=InjectionConfig)  # how the agent loop builds hints
    # the reward's checker and routing (harvesting grades as the reward does); None: not verl_pdai's checker
    reward: RewardSettings | None = None

    @classmethod
    def from_config(cls, config: Any) -> PdaiSettings:
        """Read ``pdai.*`` (and ``algorithm.pdai`` / ``algorithm.norm_adv_by_std_in_grpo``) from verl's config."""
        pdai = _plain(config.get("pdai")) if hasattr(config, "get") else None
        pdai = {} if pdai is None else pdai
        if not isinstance(pdai, Mapping):
            raise ValueError(f"the `pdai` config section must be a mapping, got {type(pdai).__name__}")
        unknown = sorted(str(k) for k in pdai if k not in SECTIONS)
        if unknown:
            raise ValueError(f"unknown pdai config keys {unknown}; valid keys are {list(SECTIONS)}")
        try:
            store = StoreConfig.from_dict(_section(pdai, "store"))
        except ValueError as err:
            raise ValueError(f"pdai.store: {err}") from None
        try:
            policy = PolicyConfig.from_dict(_section(pdai, "policy"))
        except ValueError as err:
            raise ValueError(f"pdai.policy: {err}") from None
        rollout = InjectionConfig.from_mapping(
            _section(pdai, "rollout")
        )  # the agent loop's: fail here, not in a worker
        on_corrupt = pdai.get("on_corrupt_state", "fail")
        if on_corrupt not in ON_CORRUPT_CHOICES:
            raise ValueError(f"pdai.on_corrupt_state must be one of {list(ON_CORRUPT_CHOICES)}, got {on_corrupt!r}")
        ledger = LedgerSettings.from_mapping(_section(pdai, "ledger"))
        drop_unscored = pdai.get("drop_unscored", False)
        if not isinstance(drop_unscored, bool):
            raise ValueError(f"pdai.drop_unscored must be true or false, got {drop_unscored!r}")
        advantage = _advantage_settings(config, _section(pdai, "advantage"))
        harvest = HarvestConfig.from_mapping(_section(pdai, "harvest"))
        return cls(
            store, policy, advantage, on_corrupt, ledger, drop_unscored, harvest, rollout, _reward_settings(config)
        )


def _reward_settings(config: Any) -> RewardSettings | None:
    """The reward's checker and routing, from the section its reward reads (as the agent loop grades previews);
    None for a reward that is not verl_pdai's checker. Invalid or misplaced keys fail here, at start-up: verl builds
    the reward manager inside a Ray actor on its first call and calls ``compute_score`` only on the first sample."""
    if not isinstance(config, DictConfig):
        return None

    def select(key: str) -> Any:
        return _plain(OmegaConf.select(config, key, default=None))

    manager, custom_path = select("reward.reward_manager.name"), select("reward.custom_reward_function.path")
    if str(manager or "") in PDAI_REWARD_MANAGERS:
        return manager_settings(select("reward.reward_kwargs"), select("reward.custom_reward_function.reward_kwargs"))
    if "verl_pdai" not in str(custom_path or ""):
        return None
    misplaced = stock_route_problems(select("reward.reward_kwargs"))
    if misplaced:
        raise ConfigError(misplaced)
    return RewardSettings.from_mapping(select("reward.custom_reward_function.reward_kwargs"), CUSTOM_KWARGS_SECTION)


def _advantage_settings(config: Any, section: dict[str, Any]) -> dict[str, Any]:
    """``pdai.advantage`` over ``algorithm.pdai`` (the estimator's own section) over the defaults; a key set in both
    sections to different values is an error, so the two ways to configure ``epgrpo`` can never silently disagree.
    ``process_cap`` is the reward's (``reward.reward_kwargs.process_cap``): the process part is bounded on the scale
    the reward wrote it on."""
    unknown = sorted(str(k) for k in section if k not in ADVANTAGE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown pdai.advantage keys {unknown}; valid keys are {sorted(ADVANTAGE_DEFAULTS)}")
    algorithm = config.get("algorithm") if hasattr(config, "get") else None
    epgrpo_settings(algorithm)  # validates algorithm.pdai on its own first
    if algorithm is not None and hasattr(algorithm, "get") and algorithm.get("adv_estimator") == "epgrpo":
        if algorithm.get("use_kl_in_reward", False):
            raise ValueError(
                "algorithm.use_kl_in_reward=true with adv_estimator=epgrpo: the per-token KL penalty would enter every "
                "outcome and give every group a spurious outcome contrast; set algorithm.use_kl_in_reward=false and "
                "use actor_rollout_ref.actor.use_kl_loss=true for a KL term"
            )
    algo_pdai = _plain(algorithm.get("pdai")) if algorithm is not None and hasattr(algorithm, "get") else None
    merged = dict(algo_pdai or {})
    for key, value in section.items():
        if key in merged and merged[key] != value:
            raise ValueError(
                f"pdai.advantage.{key}={value} contradicts algorithm.pdai.{key}={merged[key]}; set it in one place"
            )
        merged[key] = value
    norm = (
        algorithm.get("norm_adv_by_std_in_grpo", True) if algorithm is not None and hasattr(algorithm, "get") else True
    )
    try:
        settings = epgrpo_settings({"pdai": merged, "norm_adv_by_std_in_grpo": norm})
    except ValueError as err:
        raise ValueError(str(err).replace("algorithm.pdai.", "pdai.advantage.")) from None
    reward_section = _plain(config.get("reward")) if hasattr(config, "get") else None
    reward_kwargs = reward_section.get("reward_kwargs") if isinstance(reward_section, Mapping) else None
    try:
        reward = RewardSettings.from_mapping(reward_kwargs if isinstance(reward_kwargs, Mapping) else {}, "").stepwise
    except ConfigError:  # the reward manager reports its own config errors; the advantage needs only the cap
        reward = StepwiseConfig()
    settings["process_cap"] = reward.process_cap
    try:
        check_epgrpo_settings(**{k: v for k, v in settings.items()})
    except ValueError as err:
        raise ValueError(f"pdai.advantage: {err}") from None
    return settings
