"""The stepwise reward as plain Python, for projects with or without verl.

    >>> from verl_pdai.api import score
    >>> result = score("Step 1: 3 \\cdot 4 = 12.\n\nSo the answer is \\boxed{12}.", "12")
    >>> result.acc, result.num_steps
    (1.0, 2)

``compute_score`` has the signature of verl's custom reward functions, so verl's stock managers can use the
same checker: ``reward.custom_reward_function.path=pkg://verl_pdai.api`` and
``reward.custom_reward_function.name=compute_score``.
"""

from __future__ import annotations

from collections.abc import Mapping

from verl_pdai.core.answers import accepted_answers
from verl_pdai.core.bounded import shared_scorer
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig
from verl_pdai.plugin.fields import extra_info_of, reference_solution_of

__all__ = ["ScoreResult", "StepwiseConfig", "compute_score", "score"]

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
    Runs in a shared pool of worker processes with a hard time bound per phase (``config.timeout_s``); never
    raises on any response text.
    """
    if not isinstance(config, StepwiseConfig):
        config = StepwiseConfig.from_mapping(config)
    given = [str(problem)] if problem else []
    return shared_scorer(config).score([str(response)], ground_truth, reference_solution, given_texts=given)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: object,
    extra_info: Mapping[str, object] | None = None,
    **kwargs: object,
) -> dict[str, object]:
    """verl's custom reward function signature; ``score`` is the reward, the rest goes to reward_extra_info.

    Extra keyword arguments (from ``custom_reward_function.reward_kwargs``) are StepwiseConfig fields.
    verl's stock managers score the decoded text, so injected hints cannot be excluded here: use the
    ``pdai_stepwise`` manager for hinted rollouts.
    """
    del data_source  # one checker for every source: the point is that the baseline uses the same one
    for name in VERL_REWARD_MODEL_KWARGS:  # verl's naive manager adds these when a reward model is configured
        kwargs.pop(name, None)
    problem = None
    if isinstance(extra_info, Mapping):  # verl's stock managers pass no prompt: a row may carry its question
        problem = next((str(extra_info[k]) for k in ("question", "problem") if extra_info.get(k)), None)
    # any accepted answer counts: prepared rows keep the first in ground_truth, all in extra_info.answers
    truth = accepted_answers(ground_truth, extra_info) or ground_truth
    result = score(solution_str, truth, reference_solution_of(extra_info), config=kwargs or None, problem=problem)
    return {"score": result.score, **extra_info_of(result, None)}
