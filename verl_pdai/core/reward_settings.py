"""The reward's settings on every route, and which checker grades which ``data_source`` (pure: no verl).

Three routes use the checker (docs/reward.md): the ``pdai_stepwise`` manager reads ``reward.reward_kwargs``; verl's
stock managers call ``verl_pdai.api.compute_score`` with ``reward.custom_reward_function.reward_kwargs`` (verl
hands ``reward.reward_kwargs`` to no custom function); plain Python passes a mapping to ``verl_pdai.api.score``.
The keys are the same everywhere: the ``StepwiseConfig`` fields plus the routing key ``verl_sources``.

Routing (``pdai_stepwise`` and ``compute_score``): a row whose ``data_source`` matches ``verl_sources`` (name
prefixes; by default the non-math sources verl's own ``default_compute_score`` grades: code and search QA) gets that
grader, as verl's stock ``naive`` manager would grade it; every other row gets the stepwise checker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.scoring import StepwiseConfig

__all__ = [
    "CUSTOM_KWARGS_SECTION",
    "DEFAULT_VERL_SOURCES",
    "REWARD_KWARGS_SECTION",
    "RewardSettings",
    "SourceRouting",
    "manager_settings",
    "stock_route_problems",
]

REWARD_KWARGS_SECTION = "reward.reward_kwargs"  # what the pdai_stepwise manager reads
CUSTOM_KWARGS_SECTION = "reward.custom_reward_function.reward_kwargs"  # what verl passes to compute_score

# Name prefixes of the data sources verl's own default_compute_score grades that are not math (code run against
# tests, search QA by exact match), matched case-insensitively against the whole name and against its part after
# the last "/". Every other source, named or not, is graded by the stepwise checker: an unlisted math set (gsm8k,
# NuminaMath, OpenR1-Math, ...) can never be sent to a grader that wants another answer format.
DEFAULT_VERL_SOURCES = ("codecontests", "apps", "codeforces", "taco", "searchr1_")


def _prefixes(value: object) -> tuple[str, ...]:
    """``verl_sources`` as lower-case prefixes: a list of names, or one comma-separated string ("" or []: none)."""
    items = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise ConfigError(f"verl_sources={value!r}: use a list of data_source names or prefixes")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"verl_sources={value!r}: every entry must be a non-empty string, got {item!r}")
        out.append(item.strip().lower())
    return tuple(out)


@dataclass(frozen=True)
class SourceRouting:
    """Which grader a row gets, by its ``data_source``: verl's ``default_compute_score`` for the ``verl_sources``
    (name prefixes), the stepwise checker for every other row."""

    verl_sources: tuple[str, ...] = DEFAULT_VERL_SOURCES

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> SourceRouting:
        """From the routing key of a reward section (the others are ignored here)."""
        if "verl_sources" in values:
            return cls(verl_sources=_prefixes(values["verl_sources"]))
        return cls()

    def uses_stepwise(self, data_source: object) -> bool:
        """Whether the stepwise checker grades this row (a row without a data_source: yes)."""
        name = str(data_source).strip().lower() if isinstance(data_source, str) else ""
        if not name:
            return True
        tail = name.rsplit("/", 1)[-1]
        return not any(name.startswith(p) or tail.startswith(p) for p in self.verl_sources)


ROUTING_KEYS = tuple(f.name for f in fields(SourceRouting))
STEPWISE_KEYS = tuple(f.name for f in fields(StepwiseConfig))


@dataclass(frozen=True)
class RewardSettings:
    """Everything a reward section configures: the checker and the routing."""

    stepwise: StepwiseConfig = field(default_factory=StepwiseConfig)
    routing: SourceRouting = field(default_factory=SourceRouting)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None, section: str) -> RewardSettings:
        """Parse a reward section; every error names ``section`` and the key (unknown keys list the valid ones)."""
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{section} must be a mapping of keys to values, got {type(values).__name__}")
        values = {str(k): v for k, v in (values or {}).items()}
        unknown = sorted(set(values) - set(STEPWISE_KEYS) - set(ROUTING_KEYS))
        if unknown:
            valid = sorted((*STEPWISE_KEYS, *ROUTING_KEYS))
            raise ConfigError(f"{section}: unknown key(s) {unknown}; valid keys are {valid}")
        try:
            stepwise = StepwiseConfig.from_mapping({k: v for k, v in values.items() if k in STEPWISE_KEYS})
            routing = SourceRouting.from_mapping(values)
        except ConfigError as exc:
            raise ConfigError(f"{section}: {exc}") from None
        return cls(stepwise, routing)


def _set_keys(values: object) -> list[str]:
    return sorted(str(k) for k in values) if isinstance(values, Mapping) else []


def manager_settings(reward_kwargs: object, custom_reward_kwargs: object) -> RewardSettings:
    """The ``pdai_stepwise`` manager's settings (``reward.reward_kwargs``), checked when the manager is built.

    The manager never calls a custom reward function, so keys under ``reward.custom_reward_function.reward_kwargs``
    would have no effect: refused, naming where they go.
    """
    misplaced = _set_keys(custom_reward_kwargs)
    if misplaced:
        where = ", ".join(f"{REWARD_KWARGS_SECTION}.{k}" for k in misplaced)
        raise ConfigError(
            f"{CUSTOM_KWARGS_SECTION} has no effect with reward.reward_manager.name=pdai_stepwise (verl passes them "
            f"to a custom reward function, which pdai_stepwise never calls): set {where} instead"
        )
    return RewardSettings.from_mapping(reward_kwargs if reward_kwargs is not None else {}, REWARD_KWARGS_SECTION)


def stock_route_problems(reward_kwargs: object) -> str:
    """For start-up checks that see verl's config on the stock route (verl's manager + ``compute_score``): why
    checker keys under ``reward.reward_kwargs`` do nothing there ("" when none are set)."""
    ours = [k for k in _set_keys(reward_kwargs) if k in STEPWISE_KEYS or k in ROUTING_KEYS]
    if not ours:
        return ""
    where = ", ".join(f"{CUSTOM_KWARGS_SECTION}.{k}" for k in ours)
    return (
        f"{REWARD_KWARGS_SECTION} {ours} has no effect on verl_pdai.api.compute_score: verl's stock managers pass "
        f"it only {CUSTOM_KWARGS_SECTION}; set {where} instead"
    )
