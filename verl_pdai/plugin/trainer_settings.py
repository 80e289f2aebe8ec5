"""The ``pdai`` config section as the trainer reads it: :class:`PdaiSettings`, parsed and validated up front.

``PdaiSettings.from_config`` reads ``pdai.store``, ``pdai.policy``, ``pdai.advantage``, ``pdai.rollout``,
``pdai.on_corrupt_state`` and ``pdai.ledger`` (and ``algorithm.pdai`` / ``algorithm.norm_adv_by_std_in_grpo`` for
the advantage) from verl's config; :class:`~verl_pdai.plugin.trainer.PdaiTrainerMixin` builds it first thing, so a
bad recipe fails before verl builds anything (see ``docs/trainer.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from verl_pdai.core.injection import InjectionConfig
from verl_pdai.core.policy import PolicyConfig
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
        InjectionConfig.from_mapping(_section(pdai, "rollout"))  # the agent loop's section: fail here, not in a worker
        on_corrupt = pdai.get("on_corrupt_state", "fail")
        if on_corrupt not in ON_CORRUPT_CHOICES:
            raise ValueError(f"pdai.on_corrupt_state must be one of {list(ON_CORRUPT_CHOICES)}, got {on_corrupt!r}")
        ledger = LedgerSettings.from_mapping(_section(pdai, "ledger"))
        return cls(store, policy, _advantage_settings(config, _section(pdai, "advantage")), on_corrupt, ledger)


def _advantage_settings(config: Any, section: dict[str, Any]) -> dict[str, Any]:
    """``pdai.advantage`` over ``algorithm.pdai`` (the estimator's own section) over the defaults; a key set in both
    sections to different values is an error, so the two ways to configure ``epgrpo`` can never silently disagree."""
    unknown = sorted(str(k) for k in section if k not in ADVANTAGE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown pdai.advantage keys {unknown}; valid keys are {sorted(ADVANTAGE_DEFAULTS)}")
    algorithm = config.get("algorithm") if hasattr(config, "get") else None
    settings = epgrpo_settings(algorithm)  # validates algorithm.pdai
    algo_pdai = _plain(algorithm.get("pdai")) if algorithm is not None and hasattr(algorithm, "get") else None
    algo_pdai = algo_pdai or {}
    for key, value in section.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"pdai.advantage.{key} must be a number, got {value!r}") from None
        if key in algo_pdai and float(algo_pdai[key]) != number:
            raise ValueError(
                f"pdai.advantage.{key}={number} contradicts algorithm.pdai.{key}={algo_pdai[key]}; set it in one place"
            )
        settings[key] = number
    if not (math.isfinite(settings["process_weight"]) and settings["process_weight"] >= 0):
        raise ValueError(f"pdai.advantage.process_weight must be finite and >= 0, got {settings['process_weight']}")
    if not 0.0 <= settings["pre_hint_weight"] <= 1.0:
        raise ValueError(f"pdai.advantage.pre_hint_weight must lie in [0, 1], got {settings['pre_hint_weight']}")
    if not (math.isfinite(settings["epsilon"]) and settings["epsilon"] > 0):
        raise ValueError(f"pdai.advantage.epsilon must be finite and > 0, got {settings['epsilon']}")
    return settings
