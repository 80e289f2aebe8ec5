"""Advantage estimator ``epgrpo`` for verl (``algorithm.adv_estimator=epgrpo``); the math is
``verl_pdai.core.advantage.compute_epgrpo_advantage``.

verl 0.9.1's ``compute_advantage`` (``verl.trainer.ppo.ray_trainer``, used by the v1 trainer through
``compute_advantage_for_multi_trajectories``) calls a registered estimator with ``token_level_rewards``,
``response_mask``, ``config`` (``config.algorithm``), ``index`` (the ``uid`` array, when present) and
``reward_baselines`` (when present), nothing else: not even ``norm_adv_by_std_in_grpo`` or ``epsilon``.
So the hint and step tensors come as keyword arguments from a trainer that calls the estimator itself:

==================== =========== ===============================================================================
keyword              shape       meaning
==================== =========== ===============================================================================
pdai_hint_level      [B] int     hint level of each response, 0 = unhinted
pdai_hint_start      [B] int     response index of the first hint token; -1 (or anything) on unhinted rows
pdai_step_rewards    [B, T]      a step's reward on the token where the step ends (see ``dense_step_rewards``)
pdai_step_mask       [B, T] bool which positions hold a step reward (required with ``pdai_step_rewards``)
pdai_outcome_scores  [B]         outcome score per response; default ``token_level_rewards.sum(-1)``
pdai_hint_fraction   [B] float   share of the reference revealed to each response (for ``discount``)
pdai_valid           [B] bool    rows that take part; the others get 0 and leave the group statistics
pdai_process_cap     float       the reward's bound on a response's process score (default: the reward's default)
==================== =========== ===============================================================================

Without any of them ``epgrpo`` is verl's ``grpo``: outcome score ``token_level_rewards.sum(-1)``, baseline the
group mean, std of the group. ``pdai_stepwise``'s scalar reward is outcome + sum(step scores): a trainer that
passes the step rewards must pass the reward's explicit ``outcome`` field as ``pdai_outcome_scores``, or the
process part counts twice; ``epgrpo_inputs`` does this (and refuses step rewards without it).

Config (read with defaults; ``AlgoConfig`` has no ``pdai`` field, so set it in a recipe yaml or with
``+algorithm.pdai.process_weight=...``):

* ``algorithm.norm_adv_by_std_in_grpo`` (default True), as for verl's ``grpo``;
* ``algorithm.pdai.process_weight`` (beta_proc, default 1.0): weight of the process part;
* ``algorithm.pdai.pre_hint_weight`` (default 0.0): outcome weight on a hinted response's tokens before its hint;
* ``algorithm.pdai.epsilon`` (default 1e-6, verl's): added to every std;
* ``algorithm.pdai.discount`` (lambda, default 0.0): a helped success counts r * (1 - lambda * f);
* ``algorithm.pdai.baseline`` (``group``, default, or ``level`` for the ablation): the outcome baseline;
* ``algorithm.pdai.process_clip_ratio`` (rho, default 0.5): the process part stays below rho times the group's
  smallest non-zero outcome magnitude.

``algorithm.pdai`` may hold other verl_pdai components' keys too; a key that looks like a misspelling of one of
these (``proces_weight``) fails loudly, since it would otherwise silently train with the default.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
from verl.trainer.ppo.core_algos import register_adv_est

from verl_pdai.core.advantage import compute_epgrpo_advantage
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.plugin.advantage_inputs import NAME, epgrpo_settings

logger = logging.getLogger("verl_pdai")


@functools.cache
def _warn_once_total_as_outcome() -> None:
    logger.warning(
        "epgrpo without pdai_outcome_scores: the outcome is token_level_rewards.sum(-1). With the pdai_stepwise reward "
        "that total includes the process part, which is then normalised with the outcome; run the pdai_sync or "
        "pdai_colocate_async trainer mode (it passes the reward's outcome field), or a reward with no process part"
    )


@register_adv_est(NAME)
def compute_epgrpo_advantage_verl(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    epsilon: float | None = None,
    norm_adv_by_std_in_grpo: bool | None = None,
    config: Any = None,
    *,
    pdai_hint_level: torch.Tensor | None = None,
    pdai_hint_start: torch.Tensor | None = None,
    pdai_step_rewards: torch.Tensor | None = None,
    pdai_step_mask: torch.Tensor | None = None,
    pdai_outcome_scores: torch.Tensor | None = None,
    pdai_hint_fraction: torch.Tensor | None = None,
    pdai_valid: torch.Tensor | None = None,
    pdai_process_cap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's estimator interface for ``epgrpo``. Explicit ``epsilon`` / ``norm_adv_by_std_in_grpo`` arguments
    win over the config (verl's ``compute_advantage`` passes neither); other verl keywords
    (``reward_baselines``, ...) are accepted and unused, as by verl's ``grpo``."""
    if index is None:
        raise ValueError("epgrpo needs the group index: verl passes non_tensor_batch['uid'] as `index`")
    settings = epgrpo_settings(config)
    if norm_adv_by_std_in_grpo is not None:
        settings["norm_adv_by_std_in_grpo"] = bool(norm_adv_by_std_in_grpo)
    if epsilon is not None:
        settings["epsilon"] = float(epsilon)
    if pdai_outcome_scores is None:
        _warn_once_total_as_outcome()
    outcome = token_level_rewards.sum(dim=-1) if pdai_outcome_scores is None else pdai_outcome_scores
    return compute_epgrpo_advantage(
        outcome,
        response_mask,
        index,
        pdai_hint_level,
        pdai_hint_start,
        pdai_step_rewards,
        pdai_step_mask,
        hint_fraction=pdai_hint_fraction,
        valid=pdai_valid,
        process_cap=StepwiseConfig().process_cap if pdai_process_cap is None else float(pdai_process_cap),
        **settings,
    )
