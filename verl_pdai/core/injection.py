"""The decision a session takes at its injection point, and the rollout settings (pure, imports no verl).

At the first step boundary after ``min_tokens`` generated tokens, a non-preview session turns what it knows
(the prompt's prior Beta(alpha, beta), the preview sessions finished so far and their successes, the ones
still running) into a previewed success rate p, asks the intervention policy for a hint level, and maps
the level to a hint the reference solution can give without leaking the answer.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from verl_pdai.core.config_values import ConfigError, dataclass_from_mapping
from verl_pdai.core.hints import HintSet
from verl_pdai.core.policy import InterventionPolicy, previewed_success_rate
from verl_pdai.core.preview import PreviewSnapshot
from verl_pdai.core.reward_settings import RewardSettings
from verl_pdai.core.scoring import StepwiseConfig

# the reward managers that grade with verl_pdai's checker (``verl_pdai.plugin.reward_manager``: registered name,
# class name for ``reward.reward_manager.source=importlib``); a test pins them to the plugin's names
PDAI_REWARD_MANAGERS = ("pdai_stepwise", "PdaiStepwiseRewardManager")

# pdai.rollout keys that no longer exist, and what to do instead: a preview is graded exactly as the reward grades
REMOVED_KEYS = {
    "thinking": (
        "previews are graded exactly as the reward grades, with reward.reward_kwargs.thinking: set the thinking "
        "mode there (e.g. reward.reward_kwargs.thinking=required) and delete pdai.rollout.thinking"
    ),
    "verify_timeout_s": (
        "previews are verified with the reward's checker, bounded by reward.reward_kwargs.timeout_s: set the "
        "bound there and delete pdai.rollout.verify_timeout_s"
    ),
}


@dataclass(frozen=True)
class InjectionConfig:
    """Settings of the ``pdai_hint`` agent loop (config section ``pdai.rollout``)."""

    preview_size: int = 2  # k: sessions 0..k-1 of a group run unassisted and publish their outcome
    min_tokens: int = 512  # m: the injection point is the first step boundary after m generated tokens
    boundary: str = "\n\n"  # a step boundary (stop string); hints are injected right after one
    running_weight: float = 0.25  # a preview still running counts as this much of a failure
    min_continuation_tokens: int = 32  # inject only if the model keeps at least this budget after the hint
    blocking: bool = False  # study option: wait for the whole preview at the injection point
    blocking_timeout_s: float = 600.0
    hint_prefix: str = ""  # text placed before the revealed reference steps
    hint_max_chars: int = 4000
    prior_alpha: float = 1.0  # prior of a training prompt whose ``pdai_prior`` is unusable
    prior_beta: float = 1.0
    seed: int | None = None  # exploration rng seed (None: nondeterministic)

    def __post_init__(self) -> None:
        problems = []
        if self.preview_size < 0:
            problems.append(f"preview_size={self.preview_size}: must be >= 0")
        if self.min_tokens < 0:
            problems.append(f"min_tokens={self.min_tokens}: must be >= 0")
        if not self.boundary:
            problems.append("boundary: must be a non-empty stop string, e.g. '\\n\\n'")
        if not (0.0 <= self.running_weight <= 1.0):
            problems.append(f"running_weight={self.running_weight}: must be in [0, 1]")
        if self.min_continuation_tokens < 1:
            problems.append(f"min_continuation_tokens={self.min_continuation_tokens}: must be >= 1")
        for name in ("blocking_timeout_s", "prior_alpha", "prior_beta"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name}={value!r}: must be a finite number > 0")
        if problems:
            raise ConfigError("pdai.rollout config: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> InjectionConfig:
        """Build from a plain mapping; unknown keys and wrong types fail with the valid names, removed keys with
        what replaces them."""
        removed = sorted(key for key in values or {} if key in REMOVED_KEYS)
        if removed:
            raise ConfigError("; ".join(f"pdai.rollout.{key} was removed: {REMOVED_KEYS[key]}" for key in removed))
        return dataclass_from_mapping(cls, values, "pdai.rollout config")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def preview_checker_config(
    manager: object,
    reward_kwargs: Mapping[str, object] | None,
    custom_reward_path: object = None,
    custom_reward_kwargs: Mapping[str, object] | None = None,
) -> StepwiseConfig:
    """The checker settings of the run's reward, with which every preview is graded.

    A preview the reward would score 0 must never count as solved, so a preview uses the reward's own
    ``StepwiseConfig`` (thinking mode, time bound, ...): ``reward.reward_kwargs`` for the ``pdai_stepwise``
    manager (``manager`` is ``reward.reward_manager.name``), ``reward.custom_reward_function.reward_kwargs`` for
    verl's stock managers calling ``verl_pdai.api.compute_score``. Any other reward grades with a checker the
    agent loop cannot reproduce: refused, with the fix.
    """
    return run_reward_settings(manager, reward_kwargs, custom_reward_path, custom_reward_kwargs).stepwise


def run_reward_settings(
    manager: object,
    reward_kwargs: Mapping[str, object] | None,
    custom_reward_path: object = None,
    custom_reward_kwargs: Mapping[str, object] | None = None,
) -> RewardSettings:
    """The run's reward settings (checker and data-source routing) from the section its reward reads; ConfigError
    for a reward that is not verl_pdai's checker (see :func:`preview_checker_config`)."""
    if str(manager or "") in PDAI_REWARD_MANAGERS:
        section, values = "reward.reward_kwargs", reward_kwargs
    elif "verl_pdai" in str(custom_reward_path or ""):
        section, values = "reward.custom_reward_function.reward_kwargs", custom_reward_kwargs
    else:
        raise ConfigError(
            f"pdai_hint grades each preview exactly as the reward grades it, but reward.reward_manager.name="
            f"{manager!r} (reward.custom_reward_function.path={custom_reward_path!r}) is not verl_pdai's checker: "
            "set reward.reward_manager.name=pdai_stepwise (its settings under reward.reward_kwargs), or use "
            "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent with other rewards"
        )
    # the routing keys are the reward's too: accepted here, previews grade with the stepwise checker
    return RewardSettings.from_mapping(values, f"{section} (the reward's checker, which previews use)")


@dataclass(frozen=True)
class Decision:
    """What a session decided at its injection point, and from what."""

    level: int
    fraction: float
    difficulty: float  # the previewed success rate p the policy saw
    reason: str  # easy | hinted | no_reference | ...
    snapshot: PreviewSnapshot


def prior_of(value: object, config: InjectionConfig) -> tuple[float, float, bool]:
    """(alpha, beta, given) from a prompt's ``pdai_prior`` ({"alpha", "beta"} or a pair); config default else."""
    alpha = beta = None
    if isinstance(value, Mapping):
        alpha, beta = value.get("alpha"), value.get("beta")
    elif isinstance(value, list | tuple) and len(value) == 2:
        alpha, beta = value
    try:
        a, b = float(alpha), float(beta)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return config.prior_alpha, config.prior_beta, False
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        return config.prior_alpha, config.prior_beta, False
    return a, b, True


def decide(
    prior: tuple[float, float],
    snapshot: PreviewSnapshot,
    policy: InterventionPolicy,
    hints: HintSet | Callable[[], HintSet],
    config: InjectionConfig,
    rng: random.Random | None = None,
) -> Decision:
    """The hint level for a session at its injection point.

    ``hints`` may be a callable: it is only called when the policy wants a hint, so easy problems never pay for
    building hints from their reference solution.
    """
    p = previewed_success_rate(
        prior[0],
        prior[1],
        snapshot.finished,
        snapshot.successes,
        running=snapshot.running,
        running_weight=config.running_weight,
    )
    wanted = policy.choose_level(p, rng)
    if wanted == 0:
        return Decision(0, 0.0, p, "easy", snapshot)
    if callable(hints):
        hints = hints()
    if not hints.usable:
        return Decision(0, 0.0, p, "no_reference", snapshot)
    hint = hints.for_level(wanted)
    if hint.level == 0 or not hint.text:
        return Decision(0, 0.0, p, "no_reference", snapshot)
    reason = "hinted" if hint.level == wanted else "hinted_lowered"
    return Decision(hint.level, hint.fraction, p, reason, snapshot)
