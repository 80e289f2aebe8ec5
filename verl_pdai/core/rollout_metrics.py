"""Rollout metrics of the ``pdai_hint`` agent loop, for the trainer's logger (wandb, tensorboard). Pure: no verl.

Input: the per-sample ``pdai_*`` columns the agent loop writes (``verl_pdai.plugin.fields``; verl stacks them into
numpy object arrays in ``non_tensor_batch``), the per-sample outcome ``acc`` and the response masks.
Output: ``{"pdai/<name>": float}``.

Rules:

* **Populations.** Sessions are told apart by ``pdai_role`` (preview | main | validation). A main session is
  *hinted* when its hint level is > 0; it has *decided* when it took a decision at its injection point
  (difficulty >= 0: the agent loop writes -1 when it took none: ``ended_before_injection_point``, or
  ``past_thinking``, a session that closed its thinking before the injection point and so cannot be hinted).
* **No NaN, no made-up zeros.** A metric whose population is empty is omitted (a logger then simply has no
  point for that step) rather than logged as 0 or NaN. Within a non-empty population every known decision and
  fallback kind is logged, 0.0 when absent, so the curves are continuous; unknown kinds are logged as found.
* **Hint token share** is per token: hint tokens are the response positions with ``response_mask`` 0 inside the
  valid response (``attention_mask_response`` 1), over all valid response tokens of the batch. Without an
  attention mask the valid length is ``response_mask.sum() + pdai_hint_tokens`` per sample (the agent loop
  masks nothing but the hint).
* Missing columns drop the metrics that need them; an empty batch gives ``{}``.

Metrics (population in brackets):

* ``role/{preview,main,validation}``: share of the batch [all]; ``hint_token_share`` [all valid response tokens];
* ``preview_pass_rate`` [verified previews], ``preview_unverified_rate`` [previews];
* ``intervention_rate``, ``hint_level_mean``, ``acc_main``, ``decided_rate``, ``decision/<kind>`` [main];
* ``hint_level_mean_hinted``, ``hint_tokens_mean_hinted``, ``acc_hinted``, ``hint_source/<source>`` (share of
  the hints whose reference came from ``dataset``, ``harvested``, ``backfill``, ``corpus``) [hinted main];
  ``acc_unhinted`` [unhinted main];
* ``difficulty_mean``, ``previews_finished_at_decision``, ``fallback/<kind>``, ``fallback/any`` [decided main];
* ``acc_by_difficulty/<lo>-<hi>`` [decided main, by the difficulty ``1 - p`` each decided from, in buckets of 0.2:
  ``[lo, hi)``, the last one closed]: accuracy of the bucket's sessions, hinted or not (a bucket without sessions
  is omitted). Hard buckets climbing over training is the method working; the ledger splits it by assistance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

PREFIX = "pdai/"

# column names: the same strings as verl_pdai.plugin.fields (tests pin the equality; core imports no plugin)
ROLE = "pdai_role"
HINT_LEVEL = "pdai_hint_level"
HINT_TOKENS = "pdai_hint_tokens"
DECISION = "pdai_decision"
PREVIEWS_FINISHED = "pdai_previews_finished"
PREVIEW_SUCCESS = "pdai_preview_success"
FALLBACK = "pdai_fallback"
DIFFICULTY = "pdai_difficulty"
HINT_SOURCE = "pdai_hint_source"

# what a main session's decision can be (agent_loop and injection.decide); "none": never reached one
DECISION_KINDS = (
    "easy",
    "hinted",
    "hinted_lowered",
    "no_reference",
    "no_budget",
    "hint_removed_no_continuation",
    "ended_before_injection_point",
    "past_thinking",
)
FALLBACK_KINDS = ("no_prior", "preview_failed", "no_preview")
HINT_SOURCES = ("dataset", "harvested", "backfill", "corpus")  # core.references.SOURCES (a test pins the equality)
DIFFICULTY_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
ROLES = ("preview", "main", "validation")


def _number(value: Any, default: float) -> float:
    """A finite float, or ``default`` for None, NaN, inf and anything that is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _column(fields: Mapping[str, Sequence[Any] | np.ndarray], name: str, n: int) -> list[Any] | None:
    values = fields.get(name)
    if values is None:
        return None
    values = list(values)
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for a batch of {n}")
    return values


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values))


def _hint_token_share(
    response_mask: torch.Tensor, attention_mask_response: torch.Tensor | None, hint_tokens: list[Any] | None
) -> float | None:
    if response_mask.numel() == 0:
        return None
    model = response_mask.reshape(response_mask.shape[0], -1) != 0
    if attention_mask_response is not None:
        valid = attention_mask_response.reshape(model.shape) != 0
        hint = int((valid & ~model).sum())
        total = int(valid.sum())
    else:
        hint = int(sum(max(0.0, _number(v, 0.0)) for v in hint_tokens or []))
        total = int(model.sum()) + hint
    return hint / total if total > 0 else None


def rollout_metrics(
    fields: Mapping[str, Sequence[Any] | np.ndarray],
    acc: Sequence[float] | np.ndarray,
    response_mask: torch.Tensor,
    attention_mask_response: torch.Tensor | None = None,
) -> dict[str, float]:
    """The batch's pdai rollout metrics (see the module docstring for the rules)."""
    n = len(acc)
    if response_mask.shape[0] != n:
        raise ValueError(f"response_mask has {response_mask.shape[0]} rows for {n} outcomes")
    if attention_mask_response is not None and attention_mask_response.shape != response_mask.shape:
        raise ValueError("attention_mask_response and response_mask differ in shape")
    if n == 0:
        return {}
    metrics: dict[str, float] = {}
    share = _hint_token_share(response_mask, attention_mask_response, _column(fields, HINT_TOKENS, n))
    if share is not None:
        metrics["hint_token_share"] = share
    roles = _column(fields, ROLE, n)
    if roles is not None:
        roles = [str(r) for r in roles]
        for role in ROLES:
            metrics[f"role/{role}"] = roles.count(role) / n
        _preview_metrics(fields, roles, metrics)
        _main_metrics(fields, roles, [_number(a, 0.0) for a in acc], metrics)
    return {PREFIX + name: float(value) for name, value in metrics.items()}


def _preview_metrics(fields: Mapping[str, Any], roles: list[str], metrics: dict[str, float]) -> None:
    """Preview sessions: pass rate over the verified ones (-1: could not be verified in time)."""
    success = _column(fields, PREVIEW_SUCCESS, len(roles))
    previews = [i for i, role in enumerate(roles) if role == "preview"]
    if not previews or success is None:
        return
    verified = [s for s in (_number(success[i], -1.0) for i in previews) if s in (0.0, 1.0)]
    metrics["preview_unverified_rate"] = 1.0 - len(verified) / len(previews)
    if verified:
        metrics["preview_pass_rate"] = _mean(verified)


def _main_metrics(fields: Mapping[str, Any], roles: list[str], acc: list[float], metrics: dict[str, float]) -> None:
    """Main sessions: interventions, outcomes with and without a hint, decisions and what they were based on."""
    n = len(roles)
    mains = [i for i, role in enumerate(roles) if role == "main"]
    if not mains:
        return
    metrics["acc_main"] = _mean([acc[i] for i in mains])

    levels = _column(fields, HINT_LEVEL, n)
    if levels is not None:
        level = {i: max(0.0, _number(levels[i], 0.0)) for i in mains}
        hinted = [i for i in mains if level[i] > 0]
        unhinted = [i for i in mains if level[i] == 0]
        metrics["intervention_rate"] = len(hinted) / len(mains)
        metrics["hint_level_mean"] = _mean([level[i] for i in mains])
        if hinted:
            metrics["hint_level_mean_hinted"] = _mean([level[i] for i in hinted])
            metrics["acc_hinted"] = _mean([acc[i] for i in hinted])
            hint_tokens = _column(fields, HINT_TOKENS, n)
            if hint_tokens is not None:
                metrics["hint_tokens_mean_hinted"] = _mean([_number(hint_tokens[i], 0.0) for i in hinted])
            _hint_source_metrics(_column(fields, HINT_SOURCE, n), hinted, metrics)
        if unhinted:
            metrics["acc_unhinted"] = _mean([acc[i] for i in unhinted])

    decisions = _column(fields, DECISION, n)
    if decisions is not None:
        kinds = [str(decisions[i]) if decisions[i] not in (None, "") else "none" for i in mains]
        for kind in (*DECISION_KINDS, *sorted(set(kinds) - set(DECISION_KINDS))):
            metrics[f"decision/{kind}"] = kinds.count(kind) / len(mains)

    # sessions that reached their injection point: what they decided from
    difficulty = _column(fields, DIFFICULTY, n)
    if difficulty is None:
        return
    p = {i: _number(difficulty[i], -1.0) for i in mains}
    decided = [i for i in mains if p[i] >= 0]
    metrics["decided_rate"] = len(decided) / len(mains)
    if not decided:
        return
    metrics["difficulty_mean"] = _mean([p[i] for i in decided])
    _accuracy_by_difficulty({i: 1.0 - min(p[i], 1.0) for i in decided}, acc, metrics)
    finished = _column(fields, PREVIEWS_FINISHED, n)
    if finished is not None:
        metrics["previews_finished_at_decision"] = _mean([_number(finished[i], 0.0) for i in decided])
    fallbacks = _column(fields, FALLBACK, n)
    if fallbacks is not None:
        used = [{k.strip() for k in str(fallbacks[i] or "").split(",") if k.strip()} for i in decided]
        for kind in (*FALLBACK_KINDS, *sorted(set().union(*used) - set(FALLBACK_KINDS))):
            metrics[f"fallback/{kind}"] = sum(kind in u for u in used) / len(decided)
        metrics["fallback/any"] = sum(bool(u) for u in used) / len(decided)


def _hint_source_metrics(sources: list[Any] | None, hinted: list[int], metrics: dict[str, float]) -> None:
    """Share of the hints by the source of their reference; every known source logged (0.0 when absent), an
    unrecorded one as ``unknown``."""
    if sources is None:
        return
    kinds = [str(sources[i]) if sources[i] not in (None, "") else "unknown" for i in hinted]
    for kind in (*HINT_SOURCES, *sorted(set(kinds) - set(HINT_SOURCES))):
        metrics[f"hint_source/{kind}"] = kinds.count(kind) / len(hinted)


def difficulty_bucket(difficulty: float) -> str:
    """The label of the bucket of ``DIFFICULTY_EDGES`` holding ``difficulty`` (``[lo, hi)``; 1.0 in the last)."""
    difficulty = round(difficulty, 9)  # 1 - 0.8 is 0.19999999999999996: it belongs to 0.2-0.4
    for lo, hi in zip(DIFFICULTY_EDGES, DIFFICULTY_EDGES[1:], strict=False):
        if difficulty < hi or hi == DIFFICULTY_EDGES[-1]:
            return f"{lo:.1f}-{hi:.1f}"
    raise AssertionError("unreachable")  # the last bucket takes everything left


def _accuracy_by_difficulty(difficulty: Mapping[int, float], acc: list[float], metrics: dict[str, float]) -> None:
    buckets: dict[str, list[float]] = {}
    for i, d in difficulty.items():
        buckets.setdefault(difficulty_bucket(max(0.0, d)), []).append(acc[i])
    for label, values in buckets.items():
        metrics[f"acc_by_difficulty/{label}"] = _mean(values)
