"""Tests of the pdai rollout metrics (pure, CPU, fast): hand-made batches with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from verl_pdai.core import rollout_metrics as M
from verl_pdai.core.rollout_metrics import rollout_metrics
from verl_pdai.plugin import fields as F

# two groups of four: previews 0, 1, 4, 5; mains 2, 3, 6, 7
ROWS = [
    # role, level, hint tokens, decision, previews finished, preview success, fallback, difficulty, acc
    ("preview", 0, 0, "none", 0, 1, "", -1.0, 1.0),
    ("preview", 0, 0, "none", 0, 0, "", -1.0, 0.0),
    ("main", 2, 3, "hinted", 1, -1, "", 0.2, 1.0),
    ("main", 0, 0, "easy", 2, -1, "no_prior", 0.8, 1.0),
    ("preview", 0, 0, "none", 0, -1, "", -1.0, 0.0),  # preview whose answer could not be verified in time
    ("preview", 0, 0, "none", 0, 0, "", -1.0, 0.0),
    ("main", 3, 2, "hinted_lowered", 0, -1, "no_prior,preview_failed", 0.1, 0.0),
    ("main", 0, 0, "ended_before_injection_point", 0, -1, "", -1.0, 0.0),
]
NAMES = (M.ROLE, M.HINT_LEVEL, M.HINT_TOKENS, M.DECISION, M.PREVIEWS_FINISHED, M.PREVIEW_SUCCESS, M.FALLBACK)
# response masks of width 6: 1 model token, 0 hint token (inside the valid response) or padding
RESPONSE_MASK = [
    [1, 1, 1, 1, 1, 1],
    [1, 1, 1, 0, 0, 0],
    [1, 0, 0, 0, 1, 0],  # hint of 3 at 1..3, 5 valid
    [1, 1, 1, 1, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 0],
    [1, 1, 0, 0, 1, 1],  # hint of 2 at 2..3, 6 valid
    [1, 0, 0, 0, 0, 0],
]
VALID_LENGTHS = [6, 3, 5, 4, 2, 5, 6, 1]


def columns(rows, as_numpy: bool = False) -> tuple[dict, list[float]]:
    """The batch's pdai columns (plain lists, or numpy object arrays as verl's non_tensor_batch holds them)."""
    fields = {name: [row[j] for row in rows] for j, name in enumerate(NAMES)}
    fields[M.DIFFICULTY] = [row[7] for row in rows]
    if as_numpy:
        fields = {name: np.array(values, dtype=object) for name, values in fields.items()}
    return fields, [row[8] for row in rows]


def masks(response_mask, lengths) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.tensor(response_mask, dtype=torch.int64).reshape(len(lengths), -1)
    attention = (torch.arange(mask.shape[1]) < torch.tensor(lengths).unsqueeze(1)).long()
    return mask, attention


def assert_finite(metrics: dict[str, float]) -> None:
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values()), metrics
    assert all(k.startswith("pdai/") for k in metrics)


def test_column_names_are_the_agent_loops():
    assert (M.ROLE, M.HINT_LEVEL, M.HINT_TOKENS, M.DECISION) == (
        F.ROLE_FIELD,
        F.HINT_LEVEL_FIELD,
        F.HINT_TOKENS_FIELD,
        F.DECISION_FIELD,
    )
    assert (M.PREVIEWS_FINISHED, M.PREVIEW_SUCCESS, M.FALLBACK, M.DIFFICULTY) == (
        F.PREVIEWS_FINISHED_FIELD,
        F.PREVIEW_SUCCESS_FIELD,
        F.FALLBACK_FIELD,
        F.DIFFICULTY_FIELD,
    )
    # kinds are plain names: a "/" would split a metric's path in the logger
    assert not any("/" in kind for kind in (*M.DECISION_KINDS, *M.FALLBACK_KINDS))


@pytest.mark.parametrize("as_numpy", [False, True])
def test_training_batch_every_value(as_numpy):
    fields, acc = columns(ROWS, as_numpy)
    mask, attention = masks(RESPONSE_MASK, VALID_LENGTHS)
    metrics = rollout_metrics(fields, np.array(acc) if as_numpy else acc, mask, attention)
    expected = {
        "role/preview": 0.5,
        "role/main": 0.5,
        "role/validation": 0.0,
        "hint_token_share": 5 / 32,  # hint tokens 3 + 2 over valid tokens 6+3+5+4+2+5+6+1
        "preview_pass_rate": 1 / 3,  # 1, 0, 0 verified; one unknown
        "preview_unverified_rate": 1 / 4,
        "acc_main": 0.5,
        "intervention_rate": 0.5,
        "hint_level_mean": (2 + 0 + 3 + 0) / 4,
        "hint_level_mean_hinted": 2.5,
        "hint_tokens_mean_hinted": 2.5,
        "acc_hinted": 0.5,
        "acc_unhinted": 0.5,
        "decision/easy": 0.25,
        "decision/hinted": 0.25,
        "decision/hinted_lowered": 0.25,
        "decision/no_reference": 0.0,
        "decision/no_budget": 0.0,
        "decision/hint_removed_no_continuation": 0.0,
        "decision/ended_before_injection_point": 0.25,
        "decision/past_thinking": 0.0,
        "decided_rate": 0.75,
        "difficulty_mean": (0.2 + 0.8 + 0.1) / 3,
        "previews_finished_at_decision": (1 + 2 + 0) / 3,
        "fallback/no_prior": 2 / 3,
        "fallback/preview_failed": 1 / 3,
        "fallback/no_preview": 0.0,
        "fallback/any": 2 / 3,
        # difficulty 1 - p of the decided mains: 0.8 (acc 1), 0.2 (acc 1), 0.9 (acc 0)
        "acc_by_difficulty/0.8-1.0": 0.5,
        "acc_by_difficulty/0.2-0.4": 1.0,
    }
    assert metrics == pytest.approx({"pdai/" + k: v for k, v in expected.items()})
    assert_finite(metrics)


def test_hint_token_share_without_attention_mask_uses_the_hint_token_column():
    fields, acc = columns(ROWS)
    mask, attention = masks(RESPONSE_MASK, VALID_LENGTHS)
    with_attention = rollout_metrics(fields, acc, mask, attention)
    without = rollout_metrics(fields, acc, mask)
    # model tokens 27 + hint tokens 5 = the 32 valid tokens: the agent loop masks nothing but the hint
    assert without["pdai/hint_token_share"] == pytest.approx(5 / 32)
    assert without == pytest.approx(with_attention)


def test_only_masked_tokens_inside_the_valid_response_are_hint_tokens():
    fields, acc = columns(ROWS[:1])
    mask, attention = masks([[1, 1, 0, 0, 0, 0]], [2])  # padding is not a hint
    assert rollout_metrics(fields, acc, mask, attention)["pdai/hint_token_share"] == 0.0


def test_empty_batch_gives_nothing():
    fields, acc = columns([])
    assert rollout_metrics(fields, acc, torch.zeros(0, 8), torch.zeros(0, 8)) == {}
    assert rollout_metrics({}, [], torch.zeros(0, 0)) == {}


def test_validation_only_batch_has_roles_and_token_share_only():
    defaults = F.hint_fields_default()
    rows = [("validation", 0, 0, "none", 0, -1, "", -1.0, acc) for acc in (1.0, 0.0, 1.0)]
    fields, acc = columns(rows)
    assert {fields[name][0] for name in (M.DECISION, M.FALLBACK)} == {defaults[F.DECISION_FIELD], ""}
    mask, attention = masks([[1] * 4, [1, 1, 0, 0], [1] * 4], [4, 2, 4])
    metrics = rollout_metrics(fields, acc, mask, attention)
    assert metrics == {
        "pdai/role/preview": 0.0,
        "pdai/role/main": 0.0,
        "pdai/role/validation": 1.0,
        "pdai/hint_token_share": 0.0,
    }


def test_previews_only_batch_has_no_main_metrics():
    fields, acc = columns([ROWS[0], ROWS[1]])
    mask, attention = masks(RESPONSE_MASK[:2], VALID_LENGTHS[:2])
    metrics = rollout_metrics(fields, acc, mask, attention)
    assert metrics["pdai/preview_pass_rate"] == 0.5 and metrics["pdai/preview_unverified_rate"] == 0.0
    assert not any(k in metrics for k in ("pdai/intervention_rate", "pdai/acc_main", "pdai/decided_rate"))
    assert_finite(metrics)


def test_unverified_previews_give_no_pass_rate():
    fields, acc = columns([ROWS[4]])
    metrics = rollout_metrics(fields, acc, torch.ones(1, 2))
    assert metrics["pdai/preview_unverified_rate"] == 1.0 and "pdai/preview_pass_rate" not in metrics


def test_mains_that_never_decided_and_were_never_hinted():
    fields, _ = columns([ROWS[7], ROWS[7]])
    metrics = rollout_metrics(fields, [1.0, 0.0], torch.ones(2, 3))
    assert metrics["pdai/decided_rate"] == 0.0 and metrics["pdai/intervention_rate"] == 0.0
    assert metrics["pdai/acc_unhinted"] == 0.5 and metrics["pdai/decision/ended_before_injection_point"] == 1.0
    for absent in ("difficulty_mean", "previews_finished_at_decision", "fallback/any", "acc_hinted"):
        assert "pdai/" + absent not in metrics
    assert_finite(metrics)


def test_all_hinted_mains_have_no_unhinted_success():
    fields, acc = columns([ROWS[2], ROWS[6]])
    metrics = rollout_metrics(fields, acc, torch.ones(2, 3))
    assert metrics["pdai/intervention_rate"] == 1.0 and metrics["pdai/acc_hinted"] == 0.5
    assert "pdai/acc_unhinted" not in metrics


def test_unknown_kinds_and_odd_values_are_counted_without_nan():
    rows = [
        ("main", None, None, "future_reason", None, None, "no_prior, brand_new", 0.5, None),
        ("main", float("nan"), 1, None, 2, None, None, float("nan"), float("nan")),
        ("main", 1, 4, "hinted", 1, -1, "no_preview", 0.3, 1.0),
    ]
    fields, acc = columns(rows)
    metrics = rollout_metrics(fields, acc, torch.ones(3, 2))
    assert_finite(metrics)
    assert metrics["pdai/decision/future_reason"] == pytest.approx(1 / 3)
    assert metrics["pdai/decision/none"] == pytest.approx(1 / 3)  # a missing decision reads as "none"
    assert metrics["pdai/decided_rate"] == pytest.approx(2 / 3)  # NaN difficulty: no decision
    assert metrics["pdai/fallback/brand_new"] == 0.5 and metrics["pdai/fallback/no_prior"] == 0.5
    assert metrics["pdai/fallback/no_preview"] == 0.5 and metrics["pdai/fallback/any"] == 1.0
    assert metrics["pdai/intervention_rate"] == pytest.approx(1 / 3)  # missing and NaN levels: not hinted
    assert metrics["pdai/acc_main"] == pytest.approx(1 / 3)  # missing and NaN outcomes: 0


def test_batch_without_pdai_columns_gives_only_the_token_share():
    mask, attention = masks([[1, 0, 1], [1, 1, 0]], [3, 2])
    assert rollout_metrics({}, [1.0, 0.0], mask, attention) == {"pdai/hint_token_share": pytest.approx(1 / 5)}


def test_inconsistent_shapes_are_refused():
    fields, acc = columns(ROWS)
    mask, attention = masks(RESPONSE_MASK, VALID_LENGTHS)
    with pytest.raises(ValueError, match="rows"):
        rollout_metrics(fields, acc[:-1], mask, attention)
    with pytest.raises(ValueError, match="shape"):
        rollout_metrics(fields, acc, mask, attention[:, :-1])
    with pytest.raises(ValueError, match="pdai_role"):
        rollout_metrics({**fields, M.ROLE: fields[M.ROLE][:-1]}, acc, mask, attention)


def test_metrics_module_imports_no_verl():
    import subprocess
    import sys

    code = "import sys, verl_pdai.core.rollout_metrics; assert 'verl' not in sys.modules, 'verl imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("difficulty", "label"),
    [(0.0, "0.0-0.2"), (0.19999, "0.0-0.2"), (1 - 0.8, "0.2-0.4"), (0.4, "0.4-0.6"), (0.99, "0.8-1.0"), (1, "0.8-1.0")],
)
def test_difficulty_buckets_are_half_open_and_the_last_is_closed(difficulty, label):
    assert M.difficulty_bucket(difficulty) == label


def test_hints_are_counted_by_the_source_of_their_reference():
    """``hint_source/<source>``: share of the hinted main sessions per source; every known source logged, an
    unrecorded one as ``unknown``; no hinted session, no source metric."""
    assert M.HINT_SOURCE == F.HINT_SOURCE_FIELD
    fields, acc = columns(ROWS)  # hinted mains: rows 2 and 6
    fields[M.HINT_SOURCE] = ["", "", "harvested", "", "", "", "backfill", ""]
    mask, attention = masks(RESPONSE_MASK, VALID_LENGTHS)
    metrics = rollout_metrics(fields, acc, mask, attention)
    assert metrics["pdai/hint_source/harvested"] == 0.5 and metrics["pdai/hint_source/backfill"] == 0.5
    assert metrics["pdai/hint_source/dataset"] == 0.0 and metrics["pdai/hint_source/corpus"] == 0.0
    fields[M.HINT_SOURCE][6] = ""
    assert rollout_metrics(fields, acc, mask, attention)["pdai/hint_source/unknown"] == 0.5
    fields[M.HINT_LEVEL] = [0] * len(ROWS)
    assert not any(k.startswith("pdai/hint_source/") for k in rollout_metrics(fields, acc, mask, attention))
