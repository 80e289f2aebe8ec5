"""The inputs and settings of ``epgrpo`` as a trainer builds them from a batch (imports no verl).

Kept apart from the registered estimator (``verl_pdai.plugin.advantage``), which imports verl: a trainer module
that needs these helpers can then be imported in any order with the plugin's entry point (which runs inside
``import verl``) without an import cycle. The keywords and config keys are documented in
``verl_pdai.plugin.advantage``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from verl_pdai.core.advantage import BASELINES, dense_step_rewards
from verl_pdai.core.config_values import as_float
from verl_pdai.plugin.fields import HINT_FRACTION_FIELD, HINT_LEVEL_FIELD, HINT_SPANS_FIELD, decode_list

NAME = "epgrpo"
CONFIG_DEFAULTS: dict[str, float | str] = {
    "process_weight": 1.0,
    "pre_hint_weight": 0.0,
    "epsilon": 1e-6,
    "discount": 0.0,
    "baseline": "group",
    "process_clip_ratio": 0.5,
}
STEP_SCORES_FIELD = "step_scores"
STEP_TOKEN_ENDS_FIELD = "step_token_ends"
OUTCOME_FIELD = "outcome"  # the reward's explicit outcome part (outcome_weight * acc)
UNSCORED_FIELD = "unscored"  # the reward could not decide the outcome in time: scored at the floor

__all__ = ["CONFIG_DEFAULTS", "NAME", "OUTCOME_FIELD", "UNSCORED_FIELD", "epgrpo_inputs", "epgrpo_settings"]


def _get(config: Any, key: str, default: Any = None) -> Any:
    if config is None:
        return default
    if hasattr(config, "get"):  # DictConfig, dict, verl's BaseConfig (a Mapping)
        return config.get(key, default)
    return getattr(config, key, default)


def epgrpo_settings(config: Any) -> dict[str, Any]:
    """``norm_adv_by_std_in_grpo`` and the ``CONFIG_DEFAULTS`` keys from ``config.algorithm``, checked."""
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
        if isinstance(default, str):
            if value not in BASELINES:
                raise ValueError(f"algorithm.pdai.{key} must be one of {', '.join(BASELINES)}, got {value!r}")
            settings[key] = str(value)
            continue
        try:
            settings[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"algorithm.pdai.{key} must be a number, got {value!r}") from exc
    return settings


def _first_hint_start(spans: object) -> int:
    starts = [
        int(span[0])
        for span in decode_list(spans)
        if isinstance(span, Sequence | np.ndarray) and len(span) == 2 and isinstance(span[0], int | np.integer)
    ]
    return min(starts) if starts else -1


def epgrpo_inputs(fields: Mapping[str, Any], token_level_rewards: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ``pdai_*`` keywords of ``compute_epgrpo_advantage_verl`` from per-sample fields of a batch (e.g. a
    ``DataProto.non_tensor_batch``): ``pdai_hint_level``, ``pdai_hint_fraction`` and ``pdai_hint_spans`` from the
    ``pdai_hint`` agent loop; ``outcome``, ``step_scores`` and ``step_token_ends`` (JSON lists) from the
    ``pdai_stepwise`` reward manager. Absent fields are left out.

    ``pdai_outcome_scores`` is the reward's explicit ``outcome`` field, read as it was written: the outcome is never
    recovered as the total minus the step scores, whose float residues would become advantages. Step rewards
    without an ``outcome`` field are refused, since the total would count the process part twice.
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
    if HINT_FRACTION_FIELD in fields:
        fractions = [_fraction(v) for v in column(HINT_FRACTION_FIELD)]
        out["pdai_hint_fraction"] = torch.tensor(fractions, dtype=torch.float64, device=device)
    if HINT_SPANS_FIELD in fields:
        starts = [_first_hint_start(spans) for spans in column(HINT_SPANS_FIELD)]
        out["pdai_hint_start"] = torch.tensor(starts, dtype=torch.long, device=device)
    if OUTCOME_FIELD in fields:
        outcomes = [as_float(f"field {OUTCOME_FIELD!r}", v) for v in column(OUTCOME_FIELD)]
        out["pdai_outcome_scores"] = torch.tensor(outcomes, dtype=token_level_rewards.dtype, device=device)
    if STEP_SCORES_FIELD in fields and STEP_TOKEN_ENDS_FIELD in fields:
        if OUTCOME_FIELD not in fields:
            raise ValueError(
                f"step rewards come without the reward's {OUTCOME_FIELD!r} field: the outcome part cannot be told "
                "from the total; use the pdai_stepwise reward manager (it reports both)"
            )
        scores = [decode_list(v) for v in column(STEP_SCORES_FIELD)]
        ends = [decode_list(v) for v in column(STEP_TOKEN_ENDS_FIELD)]
        rewards, mask = dense_step_rewards(scores, ends, seq_len, dtype=token_level_rewards.dtype, device=device)
        out["pdai_step_rewards"] = rewards
        out["pdai_step_mask"] = mask
    return out


def _fraction(value: object) -> float:
    """A hint fraction in [0, 1]; anything else (a loop without levels) counts as unhinted."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if 0.0 <= number <= 1.0 else 0.0
