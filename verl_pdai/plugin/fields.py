"""Names of the fields that travel between the rollout, the reward and the trainer, and their encoding.

Rollout -> reward: the agent loop puts ``pdai_hint_spans`` (list of ``[start, end)`` token spans of injected
hint tokens in the response) into its output's ``extra_fields``; verl hands them to the reward manager as
``tool_extra_fields``. Dataset -> reward: ``extra_info.reference_solution`` (``extra_info.solution`` is
accepted too) feeds the key-quantity check.

Reward -> trainer: ``reward_extra_info`` has the same keys for every sample. verl stacks each key into a
numpy array and averages numeric keys in validation, so list-valued entries (step scores, step ends) travel
as JSON strings: ragged lists would break the stacking and strings are skipped by the averaging.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from verl_pdai.core.scoring import ScoreResult

HINT_SPANS_FIELD = "pdai_hint_spans"
REFERENCE_SOLUTION_KEYS = ("reference_solution", "solution")

# scalar keys copied from ScoreResult into reward_extra_info, in order
SCALAR_KEYS = (
    "acc",
    "outcome",
    "process_score",
    "pred",
    "num_steps",
    "num_claims",
    "num_false_claims",
    "first_error_step",
    "num_key_quantities",
    "key_quantities_reached",
    "num_repeated_steps",
    "thinking_closed",
    "truncated",
    "timed_out",
    "error",
)


def reference_solution_of(extra_info: object) -> str:
    """The reference solution a dataset row carries, or ""."""
    if not isinstance(extra_info, Mapping):
        return ""
    for key in REFERENCE_SOLUTION_KEYS:
        value = extra_info.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def extra_info_of(result: ScoreResult, step_token_ends: Sequence[int] | None) -> dict[str, object]:
    """The reward_extra_info of one sample: fixed keys, scalars as scalars, lists as JSON strings."""
    info: dict[str, object] = {key: getattr(result, key) for key in SCALAR_KEYS}
    info["acc"] = float(result.acc)
    info["step_scores"] = json.dumps(result.step_scores)
    info["step_char_ends"] = json.dumps(result.step_char_ends)
    info["step_token_ends"] = json.dumps(list(step_token_ends) if step_token_ends is not None else [])
    return info


def decode_list(value: object) -> list:
    """Inverse of the JSON encoding above; tolerant of values that are already lists."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return []
        return decoded if isinstance(decoded, list) else []
    if isinstance(value, list | tuple):
        return list(value)
    return []
