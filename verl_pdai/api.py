"""The stepwise reward as plain Python, for projects with or without verl.

    >>> from verl_pdai.api import score
    >>> result = score("Step 1: 3 \\cdot 4 = 12.\n\nSo the answer is \\boxed{12}.", "12")
    >>> result.acc, result.num_steps
    (1.0, 2)

``compute_score`` has the signature of verl's custom reward functions, so verl's stock managers can use the
same checker: ``reward.custom_reward_function.path=pkg://verl_pdai.api`` and
``reward.custom_reward_function.name=compute_score``, configured under
``reward.custom_reward_function.reward_kwargs`` (see ``verl_pdai.core.reward_settings``).
"""

from __future__ import annotations

from collections.abc import Mapping

from verl_pdai.core.answers import accepted_answers
from verl_pdai.core.bounded import shared_scorer
from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.reward_settings import CUSTOM_KWARGS_SECTION, ROUTING_KEYS, RewardSettings
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig
from verl_pdai.plugin.fields import extra_info_of, reference_solution_of
from verl_pdai.plugin.verl_default import verl_default_result

__all__ = ["ScoreResult", "StepwiseConfig", "compute_score", "score"]

# verl's naive manager adds these when a reward model is configured (reward.reward_model.enable); the checker uses
# no reward model, so they are accepted by name and ignored
VERL_REWARD_MODEL_KWARGS = ("reward_router_address", "reward_model_tokenizer")


def score(
    response: str,
    ground_truth: object,
    reference_solution: str | None = None,
    *,
    config: StepwiseConfig | Mapping[str, object] | None = None,
    problem: str | None = None,
) -> ScoreResult:
    """Score one response text against ``ground_truth`` (str, number or list of accepted answers).

    ``problem``: the problem statement, when known; key quantities it already gives earn no step credit.
    Runs in a shared pool of worker processes with a hard time bound per phase (``config.timeout_s``). Never
    raises on any response, ground truth, reference or problem (an input that cannot be read as text scores 0,
    with the reason in ``error``); an invalid ``config`` raises ``ConfigError`` naming the key.
    """
    config = _stepwise_config(config)
    try:
        texts = [_text(response)]
        statement = _text(problem) if problem is not None else ""
        reference = _text(reference_solution) if reference_solution is not None else None
    except Exception as exc:  # a str() that raises, or returns no str
        return ScoreResult.failed(error=f"input is not readable as text: {type(exc).__name__}: {exc}")
    try:
        return shared_scorer(config).score(texts, ground_truth, reference, given_texts=[statement] if statement else [])
    except Exception as exc:  # the scorer is built not to raise; the API promises it whatever happens below it
        return ScoreResult.failed(error=f"scoring failed: {type(exc).__name__}: {exc}")


def _text(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if not isinstance(text, str):
        raise TypeError(f"str() returned {type(text).__name__}")
    return text


def _stepwise_config(config: StepwiseConfig | Mapping[str, object] | None) -> StepwiseConfig:
    """``score``'s config: a StepwiseConfig or its keys; the routing keys belong to ``compute_score``."""
    if isinstance(config, StepwiseConfig):
        return config
    routing = sorted(k for k in (config or {}) if k in ROUTING_KEYS)
    if routing:
        raise ConfigError(
            f"score() config {routing}: score() grades with the stepwise checker whatever the source; data_source "
            "routing is compute_score's (pass these keys to compute_score)"
        )
    return RewardSettings.from_mapping(config, "score() config").stepwise


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: object,
    extra_info: Mapping[str, object] | None = None,
    **kwargs: object,
) -> dict[str, object]:
    """verl's custom reward function signature; ``score`` is the reward, the rest goes to reward_extra_info.

    Extra keyword arguments (``reward.custom_reward_function.reward_kwargs``) are the StepwiseConfig fields and the
    routing key ``verl_sources``: a ``data_source`` it lists (code, search QA by default) gets verl's
    ``default_compute_score``, every other one the stepwise checker. verl builds this function
    with its kwargs without calling it, so they are checked at the first call (a ``ConfigError`` naming the key)
    and cached. verl's stock managers score the decoded text: injected hints cannot be excluded and
    ``step_token_ends`` is always "[]" (use the ``pdai_stepwise`` manager for both).
    """
    for name in VERL_REWARD_MODEL_KWARGS:
        kwargs.pop(name, None)
    settings = _settings(kwargs)
    if not settings.routing.uses_stepwise(data_source):
        result = verl_default_result(data_source, solution_str, ground_truth, extra_info)
        return {"score": result.score, **extra_info_of(result, None)}
    problem = None
    if isinstance(extra_info, Mapping):  # verl's stock managers pass no prompt: a row may carry its question
        problem = next((extra_info[k] for k in ("question", "problem") if extra_info.get(k)), None)
    # any accepted answer counts: prepared rows keep the first in ground_truth, all in extra_info.answers
    truth = accepted_answers(ground_truth, extra_info) or ground_truth
    result = score(solution_str, truth, reference_solution_of(extra_info), config=settings.stepwise, problem=problem)
    return {"score": result.score, **extra_info_of(result, None)}


_settings_cache: dict[str, RewardSettings] = {}
_MAX_CACHED = 32


def _settings(kwargs: Mapping[str, object]) -> RewardSettings:
    """The settings of one kwargs set, parsed once (verl passes the same ones on every call). No lock: dict reads
    and writes are atomic, a race parses twice, and a lock could be inherited held by a forked child."""
    key = repr(sorted((str(k), repr(v)) for k, v in kwargs.items()))
    cached = _settings_cache.get(key)
    if cached is not None:
        return cached
    settings = RewardSettings.from_mapping(kwargs, f"{CUSTOM_KWARGS_SECTION} (the keywords of compute_score)")
    if len(_settings_cache) >= _MAX_CACHED:
        _settings_cache.clear()
    _settings_cache[key] = settings
    return settings
