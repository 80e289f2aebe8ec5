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
==================== =========== ===============================================================================

Without any of them ``epgrpo`` is verl's ``grpo``: outcome score ``token_level_rewards.sum(-1)``, baseline the
group mean, std of the group. ``pdai_stepwise``'s scalar reward is outcome + sum(step scores): a trainer that
passes the step rewards must pass ``pdai_outcome_scores`` without them, or the process part counts twice;
``epgrpo_inputs`` does this.

Config (read with defaults; ``AlgoConfig`` has no ``pdai`` field, so set it in a recipe yaml or with
``+algorithm.pdai.process_weight=...``):

* ``algorithm.norm_adv_by_std_in_grpo`` (default True), as for verl's ``grpo``;
* ``algorithm.pdai.process_weight`` (beta_proc, default 1.0): weight of the process part;
* ``algorithm.pdai.pre_hint_weight`` (default 0.0): outcome weight on a hinted response's tokens before its hint;
* ``algorithm.pdai.epsilon`` (default 1e-6, verl's): added to every std.

``algorithm.pdai`` may hold other verl_pdai components' keys too; a key that looks like a misspelling of one of
these (``proces_weight``) fails loudly, since it would otherwise silently train with the default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import register_adv_est

from verl_pdai.core.advantage import compute_epgrpo_advantage, dense_step_rewards
from verl_pdai.plugin.fields import HINT_LEVEL_FIELD, HINT_SPANS_FIELD, decode_list

NAME = "epgrpo"
CONFIG_DEFAULTS: dict[str, float] = {"process_weight": 1.0, "pre_hint_weight": 0.0, "epsilon": 1e-6}
STEP_SCORES_FIELD = "step_scores"
STEP_TOKEN_ENDS_FIELD = "step_token_ends"

__all__ = ["NAME", "compute_epgrpo_advantage_verl", "epgrpo_inputs", "epgrpo_settings"]


def _get(config: Any, key: str, default: Any = None) -> Any:
    if config is None:
        return default
    if hasattr(config, "get"):  # DictConfig, dict, verl's BaseConfig (a Mapping)
        return config.get(key, default)
    return getattr(config, key, default)


def epgrpo_settings(config: Any) -> dict[str, Any]:
    """``norm_adv_by_std_in_grpo``, ``process_weight``, ``pre_hint_weight``, ``epsilon`` from ``config.algorithm``."""
    pdai = _get(config, "pdai", None) or {}
    if not hasattr(pdai, "get") or not hasattr(pdai, "keys"):
        raise ValueError(f"algorithm.pdai must be a mapping, got {type(pdai).__name__}")
    for key in pdai.keys():
        close = difflib.get_close_matches(str(key), CONFIG_DEFAULTS, n=1, cutoff=0.8)
        if key not in CONFIG_DEFAULTS and close:
            raise ValueError(f"algorithm.pdai.{key}: unknown key, did you mean algorithm.pdai.{close[0]}?")
    settings: dict[str, Any] = {"norm_adv_by_std_in_grpo": bool(_get(config, "norm_adv_by_std_in_grpo", True))}
    for key, default in CONFIG_DEFAULTS.items():
        value = pdai.get(key, default)
        try:
            settings[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"algorithm.pdai.{key} must be a number, got {value!r}") from exc
    return settings


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
    outcome = token_level_rewards.sum(dim=-1) if pdai_outcome_scores is None else pdai_outcome_scores
    return compute_epgrpo_advantage(
        outcome,
        response_mask,
        index,
        pdai_hint_level,
        pdai_hint_start,
        pdai_step_rewards,
        pdai_step_mask,
        epsilon=settings["epsilon"],
        norm_adv_by_std_in_grpo=settings["norm_adv_by_std_in_grpo"],
        process_weight=settings["process_weight"],
        pre_hint_weight=settings["pre_hint_weight"],
    )


def _first_hint_start(spans: object) -> int:
    starts = [
        int(span[0])
        for span in decode_list(spans)
        if isinstance(span, Sequence | np.ndarray) and len(span) == 2 and isinstance(span[0], int | np.integer)
    ]
    return min(starts) if starts else -1


def epgrpo_inputs(fields: Mapping[str, Any], token_level_rewards: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ``pdai_*`` keywords of ``compute_epgrpo_advantage_verl`` from per-sample fields of a batch (e.g. a
    ``DataProto.non_tensor_batch``): ``pdai_hint_level`` and ``pdai_hint_spans`` from the ``pdai_hint`` agent
    loop, ``step_scores`` and ``step_token_ends`` (JSON lists) from the ``pdai_stepwise`` reward manager. Absent
    fields are left out. With step rewards, ``pdai_outcome_scores`` is ``token_level_rewards.sum(-1)`` minus the
    sum of the sample's well-formed step scores (``pdai_stepwise``'s reward is outcome + process; any
    KL-in-reward term stays in the outcome, as in ``grpo``).
    """
    bsz, seq_len = token_level_rewards.shape
    device = token_level_rewards.device
    out: dict[str, torch.Tensor] = {}

    def column(key: str) -> list:
        values = list(fields[key])
        if len(values) != bsz:
            raise ValueError(f"field {key!r} has {len(values)} entries for a batch of {bsz}")
        return values

    if HINT_LEVEL_FIELD in fields:
        out["pdai_hint_level"] = torch.as_tensor(np.asarray(column(HINT_LEVEL_FIELD), dtype=np.int64), device=device)
    if HINT_SPANS_FIELD in fields:
        starts = [_first_hint_start(spans) for spans in column(HINT_SPANS_FIELD)]
        out["pdai_hint_start"] = torch.tensor(starts, dtype=torch.long, device=device)
    if STEP_SCORES_FIELD in fields and STEP_TOKEN_ENDS_FIELD in fields:
        scores = [decode_list(v) for v in column(STEP_SCORES_FIELD)]
        ends = [decode_list(v) for v in column(STEP_TOKEN_ENDS_FIELD)]
        rewards, mask = dense_step_rewards(scores, ends, seq_len, dtype=token_level_rewards.dtype, device=device)
        # what the dense tensor holds is exactly what the scalar reward carried as process part
        process = rewards.sum(dim=-1)
        out["pdai_step_rewards"] = rewards
        out["pdai_step_mask"] = mask
        out["pdai_outcome_scores"] = token_level_rewards.sum(dim=-1) - process
    return out
