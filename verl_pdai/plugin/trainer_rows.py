"""A training batch's rows, read from TransferQueue into the pdai view (:class:`_Rows`), and metrics of those rows.

The trainer gets the fields in ``_PDAI_FIELDS`` from TransferQueue; ``_fetch_rows`` turns them into one entry per
row: the agent loop's ``extra_fields`` (``pdai_*`` keys), the reward extra info, the summed ``rm_scores`` and the
problem id (reading ``raw_prompt`` too when a row lacks one). ``problem_id_of`` is the difficulty store's key for a
dataset row, which the trainer stores with the prompt as the ``pdai_problem_id`` column (``PROBLEM_ID_FIELD``).
``_signal_share`` and ``_advantage_metrics`` give the ``pdai/adv/*`` metrics. The underscored names are for
:mod:`verl_pdai.plugin.trainer` (:class:`~verl_pdai.plugin.trainer.PdaiTrainerMixin`) only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import transfer_queue as tq
from tensordict import NonTensorData, NonTensorStack, TensorDict
from transfer_queue import KVBatchMeta

from verl_pdai.core.advantage import EpgrpoParts
from verl_pdai.plugin import fields as F
from verl_pdai.plugin.advantage_inputs import OUTCOME_FIELD, STEP_SCORES_FIELD, STEP_TOKEN_ENDS_FIELD, UNSCORED_FIELD

__all__ = ["PROBLEM_ID_FIELD", "problem_id_of"]

PROBLEM_ID_FIELD = "pdai_problem_id"  # per-row column the trainer injects next to pdai_prior / pdai_policy_w
_NONZERO = 1e-8  # |advantage| above this counts as signal
# fields of a trajectory the pdai trainer reads from TransferQueue (missing ones are skipped by TQ)
_PDAI_FIELDS = [
    "uid",
    "response_mask",
    "rm_scores",
    "extra_fields",
    PROBLEM_ID_FIELD,
    "data_source",
    "extra_info",
    "reward_model",
    F.HARVESTED_REFERENCE_FIELD,
    "acc",
    OUTCOME_FIELD,
    UNSCORED_FIELD,
    "timed_out",
    STEP_SCORES_FIELD,
    STEP_TOKEN_ENDS_FIELD,
]


def problem_id_of(extra_info: Any, data_source: Any, raw_prompt: Any) -> str:
    """The store's key for a dataset row.

    ``extra_info.problem_id`` verbatim when present; else ``"<data_source>/<extra_info.index>"`` (an index is only
    unique within one data file, the data source keeps files of different sources apart); else a hash of the
    prompt messages (``"prompt:<sha256 prefix>"``), stable across runs and processes.
    """
    if isinstance(extra_info, Mapping):
        pid = extra_info.get("problem_id")
        if pid is not None and str(pid) != "":
            return str(pid)
        index = extra_info.get("index")
        if index is not None and not (isinstance(index, float) and not math.isfinite(index)):
            if isinstance(index, float | np.floating) and float(index).is_integer():
                index = int(index)
            return f"{data_source if data_source is not None else ''}/{index}"
    text = json.dumps(raw_prompt, sort_keys=True, ensure_ascii=False, default=str)
    return "prompt:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _column(td: TensorDict, key: str, n: int) -> list[Any]:
    """Per-row Python values of a TensorDict column (None when absent); batch-level NonTensorData is broadcast."""
    if key not in td.keys():
        return [None] * n
    value = td.get(key)
    if isinstance(value, NonTensorStack):
        out = list(value.tolist())
    elif isinstance(value, NonTensorData):
        out = [value.data] * n
    elif isinstance(value, torch.Tensor):
        out = value.tolist() if not value.is_nested else list(value.unbind())
    else:
        out = list(value)
    if len(out) != n:
        raise ValueError(f"column {key!r} has {len(out)} rows for a batch of {n}")
    return out


def _initial_prior_args(extra_info: Any, data_source: Any) -> dict[str, Any]:
    """What the store needs to pick the prior of an unseen problem: data source, level, a prior the row carries."""
    info = extra_info if isinstance(extra_info, Mapping) else {}
    return {
        "data_source": data_source if isinstance(data_source, str) else None,
        "level": info.get("level"),
        "given_prior": info.get(F.PRIOR_FIELD),
    }


def _finite(values: Mapping[str, float], prefix: str) -> dict[str, float]:
    """Prefixed metrics without NaN / inf (an empty population is omitted, as in ``rollout_metrics``)."""
    return {prefix + k: float(v) for k, v in values.items() if isinstance(v, int | float) and math.isfinite(v)}


def _as_bool(value: Any) -> bool:
    """A flag as verl stacks it (bool, numpy bool, 0/1, "True"); anything else is False."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(_as_float(value, 0.0))


def _as_float(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


@dataclass
class _Rows:
    """The pdai view of one training batch read from TransferQueue: one entry per row, padding rows flagged."""

    uids: list[str]
    padding: list[bool]
    extra: list[dict[str, Any]]  # the agent loop's extra_fields (pdai_* keys)
    reward: list[dict[str, Any]]  # reward_extra_info
    problem_ids: list[str]
    prior_args: list[dict[str, Any]]
    scores: list[float]  # rm_scores summed over the response (pre-KL)
    references: list[tuple[str, str]]  # the row's own reference solution and its source; ("", "") none
    ground_truths: list[Any]  # reward_model.ground_truth (None when absent)
    harvested: list[bool]  # the trainer handed the row a harvested reference

    def __len__(self) -> int:
        return len(self.uids)

    def get(self, key: str, default: Any) -> list[Any]:
        """An extra field per row (``default`` where absent)."""
        return [e.get(key, default) if isinstance(e, Mapping) else default for e in self.extra]

    def level(self, i: int) -> int:
        return int(_as_float(self.extra[i].get(F.HINT_LEVEL_FIELD, 0), 0.0))

    def outcome(self, i: int) -> float:
        """The reward's explicit outcome part (``outcome``); 0.0 for a padding row or a reward without it."""
        if self.padding[i]:
            return 0.0
        return _as_float(self.reward[i].get(OUTCOME_FIELD), 0.0)

    def unscored(self, i: int) -> bool:
        """The reward could not decide this response's outcome in time (it was scored at the floor)."""
        return _as_bool(self.reward[i].get(UNSCORED_FIELD))

    def timed_out(self, i: int) -> bool:
        """Some phase of this response's scoring hit its time bound."""
        return _as_bool(self.reward[i].get("timed_out"))

    def success(self, i: int) -> bool:
        """The row's verified outcome: reward_extra_info ``acc``; a reward without it: score > 0."""
        acc = self.reward[i].get("acc")
        return _as_float(acc, 0.0) >= 0.5 if acc is not None else self.scores[i] > 0.0

    def verified(self, i: int) -> bool:
        """The reward's checker graded this row's final answer right (``acc``; a reward without it: never)."""
        acc = self.reward[i].get("acc")
        return acc is not None and _as_float(acc, 0.0) >= 0.5 and not self.unscored(i)


def _read_rows(
    batch: KVBatchMeta, data: TensorDict, rm_scores: torch.Tensor, raw_prompt: list[Any] | None = None
) -> _Rows:
    n = len(batch.keys)
    extra = [e if isinstance(e, Mapping) else {} for e in _column(data, "extra_fields", n)]
    reward = []
    flat_keys = ("acc", OUTCOME_FIELD, UNSCORED_FIELD, "timed_out", STEP_SCORES_FIELD, STEP_TOKEN_ENDS_FIELD)
    flat = {key: _column(data, key, n) for key in flat_keys if key in data}
    for i, e in enumerate(extra):
        info = e.get("reward_extra_info")
        if isinstance(info, Mapping):
            reward.append(dict(info))
        else:  # a colocated reward model writes reward_extra_info keys as top-level fields
            reward.append({key: values[i] for key, values in flat.items()})
    data_sources = _column(data, "data_source", n)
    extra_infos = _column(data, "extra_info", n)
    stored_ids = _column(data, PROBLEM_ID_FIELD, n)
    reward_models = _column(data, "reward_model", n)
    handed = _column(data, F.HARVESTED_REFERENCE_FIELD, n)
    prompts = raw_prompt if raw_prompt is not None else [None] * n
    problem_ids = [
        str(pid) if pid else problem_id_of(info, source, prompt)
        for pid, info, source, prompt in zip(stored_ids, extra_infos, data_sources, prompts, strict=True)
    ]
    return _Rows(
        uids=[str(u) for u in _column(data, "uid", n)],
        padding=[bool(tag.get("is_padding", False)) for tag in batch.tags] if batch.tags else [False] * n,
        extra=extra,
        reward=reward,
        problem_ids=problem_ids,
        prior_args=[_initial_prior_args(info, source) for info, source in zip(extra_infos, data_sources, strict=True)],
        scores=rm_scores.sum(dim=-1).tolist(),
        references=[F.reference_of(info) for info in extra_infos],
        ground_truths=[rm.get("ground_truth") if isinstance(rm, Mapping) else None for rm in reward_models],
        harvested=[isinstance(text, str) and bool(text.strip()) for text in handed],
    )


def _signal_share(uids: Sequence[str], values: Sequence[float], keep: Sequence[bool]) -> float | None:
    """Share of groups (>= 2 kept rows) whose kept values are not all equal: groups GRPO can learn from."""
    groups: dict[str, list[float]] = defaultdict(list)
    for uid, value, k in zip(uids, values, keep, strict=True):
        if k:
            groups[uid].append(float(value))
    eligible = [g for g in groups.values() if len(g) >= 2]
    if not eligible:
        return None
    return sum(max(g) - min(g) > _NONZERO for g in eligible) / len(eligible)


def _fetch_rows(batch: KVBatchMeta, data: TensorDict, rm_scores: torch.Tensor) -> _Rows:
    """``_read_rows``, after fetching ``raw_prompt`` from TransferQueue for rows that lack ``pdai_problem_id``."""
    n = len(batch.keys)
    raw_prompt = None
    if PROBLEM_ID_FIELD not in data.keys() or any(not p for p in _column(data, PROBLEM_ID_FIELD, n)):
        # rows submitted without the trainer's id (e.g. prompts re-issued from an older checkpoint)
        extra = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["raw_prompt"])
        raw_prompt = _column(extra, "raw_prompt", n)
    return _read_rows(batch, data, rm_scores, raw_prompt)


def _advantage_metrics(
    rows: _Rows,
    response_mask: torch.Tensor,
    parts: EpgrpoParts,
    outcome: torch.Tensor,
    metrics: dict,
) -> None:
    """``pdai/adv/*`` and ``pdai/reward/*`` metrics of an ``epgrpo`` batch.

    * ``signal_groups_final``: groups with any token of non-zero advantage (outcome + process part);
    * ``groups_outcome_contrast`` / ``groups_process_only``: groups whose outcomes differ (the outcome part carries
      signal), and groups without that whose process part alone moves some token;
    * ``outcome_abs_mean`` (all tokens), ``outcome_abs_mean_hinted`` / ``_unhinted`` (per response, groups with
      outcome contrast only), ``process_abs_mean``;
    * ``pdai/reward/unscored``, ``timed_out`` (responses per step) and ``dropped`` (left out by drop_unscored).
    """
    real = [not p for p in rows.padding]
    if not any(real):
        return
    idx = [i for i, r in enumerate(real) if r]
    metrics["pdai/reward/unscored"] = float(sum(rows.unscored(i) for i in idx))
    metrics["pdai/reward/timed_out"] = float(sum(rows.timed_out(i) for i in idx))
    metrics["pdai/reward/dropped"] = float(sum(not bool(parts.valid[i]) for i in idx))
    valid = response_mask[idx] != 0
    adv, out, proc = parts.advantages[idx], parts.outcome[idx], parts.process[idx]
    row_signal = ((adv.abs() > _NONZERO) & valid).any(dim=-1).tolist()
    row_process = ((proc.abs() > _NONZERO) & valid).any(dim=-1).tolist()
    contrast = parts.contrast[idx].tolist()
    groups: dict[str, list[bool]] = {}
    for i, signal, moved, has_contrast in zip(idx, row_signal, row_process, contrast, strict=True):
        g = groups.setdefault(rows.uids[i], [False, False, False])
        g[0], g[1], g[2] = g[0] or bool(signal), g[1] or bool(has_contrast), g[2] or bool(moved)
    metrics["pdai/adv/signal_groups_final"] = sum(g[0] for g in groups.values()) / len(groups)
    metrics["pdai/adv/groups_outcome_contrast"] = sum(g[1] for g in groups.values()) / len(groups)
    metrics["pdai/adv/groups_process_only"] = sum(g[2] and not g[1] for g in groups.values()) / len(groups)
    outcome_share = _signal_share(rows.uids, outcome.tolist(), real)
    if outcome_share is not None:
        metrics["pdai/adv/signal_groups_outcome"] = outcome_share
    if bool(valid.any()):
        metrics["pdai/adv/outcome_abs_mean"] = float(out[valid].abs().mean())
        metrics["pdai/adv/process_abs_mean"] = float(proc[valid].abs().mean())
    per_row = parts.outcome_per_row[idx].abs().tolist()
    for name, pick in (("hinted", True), ("unhinted", False)):
        values = [v for i, v, c in zip(idx, per_row, contrast, strict=True) if c and (rows.level(i) > 0) == pick]
        if values:
            metrics[f"pdai/adv/outcome_abs_mean_{name}"] = sum(values) / len(values)
