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

from verl_pdai.core.references import row_source
from verl_pdai.core.scoring import ScoreResult

HINT_SPANS_FIELD = "pdai_hint_spans"

# prompt fields the trainer (or the dataset's extra_info) provides to the rollout
PRIOR_FIELD = "pdai_prior"  # {"alpha": a, "beta": b}: Beta prior of the policy's unassisted success rate
POLICY_W_FIELD = "pdai_policy_w"  # the intervention policy's current calibration weight w
# {"w", "intercept", "slope"}: everything the rollout needs to decide as the trainer's fitted policy does
POLICY_PARAMS_FIELD = "pdai_policy_params"
# the problem's harvested reference ("" when none): the trainer's reference bank, for rows without a usable one
HARVESTED_REFERENCE_FIELD = "pdai_harvested_reference"

# extra fields of every pdai_hint output (same keys for every session)
ROLE_FIELD = "pdai_role"  # preview | main | validation
SESSION_FIELD = "pdai_session"  # index of the session in its group
DECISION_FIELD = "pdai_decision"  # what happened at the injection point (see docs/rollout.md)
DIFFICULTY_FIELD = "pdai_difficulty"  # previewed success rate p the policy decided from (-1: no decision)
PRIOR_ALPHA_FIELD = "pdai_prior_alpha"
PRIOR_BETA_FIELD = "pdai_prior_beta"
PREVIEWS_FINISHED_FIELD = "pdai_previews_finished"  # at decision time
PREVIEWS_SUCCEEDED_FIELD = "pdai_previews_succeeded"
PREVIEWS_RUNNING_FIELD = "pdai_previews_running"
PREVIEW_SUCCESS_FIELD = "pdai_preview_success"  # preview sessions: 1/0, -1 unknown or not a preview
FALLBACK_FIELD = "pdai_fallback"  # comma-separated: no_prior, preview_failed, no_preview
HINT_LEVEL_FIELD = "pdai_hint_level"
HINT_FRACTION_FIELD = "pdai_hint_fraction"
HINT_TOKENS_FIELD = "pdai_hint_tokens"
WAIT_FIELD = "pdai_wait_s"  # seconds the session waited for the preview at its decision (blocking mode)
HINT_SOURCE_FIELD = "pdai_hint_source"  # where the hint's reference came from (core.references.SOURCES); "" no hint


def hint_fields_default() -> dict[str, object]:
    """Every pdai_hint extra field with its "nothing happened" value."""
    return {
        ROLE_FIELD: "",
        SESSION_FIELD: -1,
        DECISION_FIELD: "none",
        DIFFICULTY_FIELD: -1.0,
        PRIOR_ALPHA_FIELD: -1.0,
        PRIOR_BETA_FIELD: -1.0,
        PREVIEWS_FINISHED_FIELD: 0,
        PREVIEWS_SUCCEEDED_FIELD: 0,
        PREVIEWS_RUNNING_FIELD: 0,
        PREVIEW_SUCCESS_FIELD: -1,
        FALLBACK_FIELD: "",
        HINT_LEVEL_FIELD: 0,
        HINT_FRACTION_FIELD: 0.0,
        HINT_SPANS_FIELD: [],
        HINT_TOKENS_FIELD: 0,
        WAIT_FIELD: 0.0,
        HINT_SOURCE_FIELD: "",
    }


REFERENCE_SOLUTION_KEYS = ("reference_solution", "solution")
REFERENCE_SOURCE_KEY = "reference_source"  # dataset (default) | backfill | corpus: who wrote the row's reference

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
    "unscored",
    "error",
    "queue_wait_s",
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


def reference_of(extra_info: object) -> tuple[str, str]:
    """(reference solution, its source) of a dataset row; ("", "") without one. The source is
    ``extra_info.reference_source`` when it names a known one, else ``dataset``."""
    text = reference_solution_of(extra_info)
    if not text:
        return "", ""
    assert isinstance(extra_info, Mapping)
    return text, row_source(extra_info.get(REFERENCE_SOURCE_KEY))


def extra_info_of(result: ScoreResult, step_token_ends: Sequence[int] | None) -> dict[str, object]:
    """The reward_extra_info of one sample: fixed keys, scalars as scalars, lists as JSON strings.

    ``step_token_ends`` is None where no token ids are known (``compute_score`` on verl's stock managers sees the
    decoded text only): the key is then "[]", and only ``step_char_ends`` locates the steps."""
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
