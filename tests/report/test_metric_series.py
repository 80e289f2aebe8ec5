"""What the metric pictures plot: series, validation metric choice, bucket families, summary rows."""

from __future__ import annotations

import json
from pathlib import Path

from tests.report.test_write_report import METRIC_PICTURES
from verl_pdai.report.metric_figures import ACC_BY_DIFFICULTY_PREFIX, metric_plans, summary_metrics
from verl_pdai.report.metrics_log import read_metrics
from verl_pdai.report.series import family, summary_row, validation_metrics

RECORDED = Path(__file__).parent / "data" / "run_metrics.jsonl"


def _log(tmp_path: Path, records: list[tuple[int, dict]]):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in records))
    return read_metrics(path)


def _plan(plans, file):
    return next(plan for plan in plans if plan.file == file)


def test_validation_metric_prefers_acc_and_the_largest_n(tmp_path):
    log = _log(
        tmp_path,
        [
            (
                0,
                {
                    "val-core/openai/gsm8k/reward/mean@8": 0.1,
                    "val-core/openai/gsm8k/acc/mean@4": 0.2,
                    "val-core/openai/gsm8k/acc/mean@16": 0.3,
                    "val-core/openai/gsm8k/acc/best@16/mean": 0.9,
                    "val-core/math500/reward/mean@2": 0.4,
                    "val-aux/math500/acc/mean@2": 0.5,
                },
            )
        ],
    )
    assert validation_metrics(log) == {
        "math500": "val-core/math500/reward/mean@2",
        "openai/gsm8k": "val-core/openai/gsm8k/acc/mean@16",
    }


def test_bucket_family_is_ordered_by_its_numbers(tmp_path):
    names = ["0.8-1.0", "0.0-0.2", "0.2-0.4", "level 10", "level 9", "other"]
    log = _log(tmp_path, [(1, {f"{ACC_BY_DIFFICULTY_PREFIX}{n}": 0.5 for n in names} | {"pdai/acc_main": 1})])
    assert list(family(log, ACC_BY_DIFFICULTY_PREFIX)) == [
        "0.0-0.2",
        "0.2-0.4",
        "0.8-1.0",
        "level 9",
        "level 10",
        "other",
    ]


def test_summary_row_first_last_and_first_best(tmp_path):
    log = _log(tmp_path, [(1, {"a": 0.2}), (2, {"a": 0.7}), (3, {"a": 0.7}), (4, {"a": 0.5})])
    row = summary_row(log, "a", higher_is_better=True)
    assert (row.points, row.first, row.last, row.last_step, row.best, row.best_step) == (4, 0.2, 0.5, 4, 0.7, 2)
    assert summary_row(log, "a", higher_is_better=False).best is None
    assert summary_row(log, "absent", higher_is_better=True) is None


def test_intervention_plan_plots_the_logged_values():
    log = read_metrics(RECORDED)
    plan = _plan(metric_plans(log), "intervention.png")
    lines = {line.source: line for panel in plan.panels for line in panel.lines}
    raw = {}
    for text in RECORDED.read_text().splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if "pdai/intervention_rate" in record["data"]:
            raw[record["step"]] = record["data"]["pdai/intervention_rate"]  # later line wins, as in the reader
    rate = lines["pdai/intervention_rate"]
    assert rate.steps == tuple(sorted(raw)) and rate.values == tuple(raw[s] for s in sorted(raw))
    assert plan.panels[0].unit_interval and not plan.panels[1].unit_interval
    assert plan.missing == ()


def test_recorded_run_draws_every_picture_but_the_bucket_one():
    plans = metric_plans(read_metrics(RECORDED))
    drawn = {plan.file for plan in plans if plan.drawable}
    assert drawn == METRIC_PICTURES
    buckets = _plan(plans, "acc_by_difficulty.png")
    assert not buckets.drawable and buckets.missing == (ACC_BY_DIFFICULTY_PREFIX + "<lo>-<hi>",)
    val = _plan(plans, "val_accuracy.png")
    assert [line.label for line in val.panels[0].lines] == ["HuggingFaceH4/aime_2024", "math500"]


def test_reference_coverage_and_hint_sources_are_drawn_over_steps(tmp_path):
    records = [
        (s, {"pdai/reference/coverage": 0.5 + s / 10, "pdai/reference/coverage_harvested": s / 10,
             "pdai/hint_source/harvested": s / 5})
        for s in (1, 2, 3)
    ]  # fmt: skip
    plan = _plan(metric_plans(_log(tmp_path, records)), "references.png")
    assert plan.drawable
    coverage, sources = plan.panels
    assert [(line.label, line.values) for line in coverage.lines] == [
        ("any source", (0.6, 0.7, 0.8)),
        ("harvested", (0.1, 0.2, 0.3)),
    ]
    assert [(line.label, line.values) for line in sources.lines] == [("harvested", (0.2, 0.4, 0.6))]
    assert "pdai/reference/coverage_backfill" in plan.missing and "pdai/reference/coverage" not in plan.missing


def test_plain_grpo_log_lists_the_pdai_metrics_as_missing(tmp_path):
    log = _log(tmp_path, [(s, {"critic/score/mean": s / 10, "response_length/mean": 100.0 * s}) for s in (1, 2, 3)])
    plans = metric_plans(log)
    assert {plan.file for plan in plans if plan.drawable} == {"reward.png", "response_length.png"}
    reward = _plan(plans, "reward.png")
    assert "pdai/acc_main" in reward.missing and "critic/score/mean" not in reward.missing
    assert [len(panel.lines) for panel in reward.panels] == [1, 0]  # an empty panel says "no data"
    signal = _plan(plans, "signal_groups.png")
    assert set(signal.missing) == {
        "pdai/adv/signal_groups_unassisted",
        "pdai/adv/signal_groups_outcome",
        "pdai/adv/signal_groups_final",
    }


def test_bucket_plan_is_drawn_when_the_trainer_logs_buckets(tmp_path):
    log = _log(
        tmp_path,
        [
            (s, {f"{ACC_BY_DIFFICULTY_PREFIX}0.0-0.2": 0.9, f"{ACC_BY_DIFFICULTY_PREFIX}0.8-1.0": s / 10})
            for s in (1, 2)
        ],
    )
    plan = _plan(metric_plans(log), "acc_by_difficulty.png")
    assert plan.drawable and plan.missing == ()
    assert [(line.label, line.values) for line in plan.panels[0].lines] == [
        ("0.0-0.2", (0.9, 0.9)),
        ("0.8-1.0", (0.1, 0.2)),
    ]


def test_summary_lists_validation_first():
    names = [name for name, _ in summary_metrics(read_metrics(RECORDED))]
    assert names[:2] == ["val-core/HuggingFaceH4/aime_2024/acc/mean@4", "val-core/math500/acc/mean@4"]
