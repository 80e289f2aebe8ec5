"""Reading verl's FileLogger JSONL: the recorded run, and every kind of bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verl_pdai.report import metrics_log
from verl_pdai.report.metrics_log import read_metrics

RECORDED = Path(__file__).parent / "data" / "run_metrics.jsonl"


def _raw_records() -> list[dict]:
    """The recorded file's valid lines, parsed independently of the reader under test."""
    records = []
    for line in RECORDED.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pass
    return records


def test_recorded_run_steps_and_bad_line():
    log = read_metrics(RECORDED)
    assert sorted(log.steps) == list(range(0, 21))
    assert log.bad_line_count == 1
    assert log.bad_lines == [14]  # the line truncated by the crash
    assert log.lines_read == 24


def test_repeated_step_takes_the_later_line():
    log = read_metrics(RECORDED)
    step_11 = [r["data"]["critic/score/mean"] for r in _raw_records() if r["step"] == 11]
    assert len(step_11) == 2 and step_11[0] != step_11[1]  # the file holds the resumed run's repeat
    steps, values = log.series("critic/score/mean")
    assert values[steps.index(11)] == step_11[1]


def test_non_numeric_values_are_ignored():
    log = read_metrics(RECORDED)
    w_steps, _ = log.series("pdai/policy/w")
    assert 15 not in w_steps and 14 in w_steps and 16 in w_steps
    assert 15 not in log.series("pdai/policy/n_window")[0]
    assert not log.has("actor/lr") and not log.has("perf/flag")  # null and a boolean


def test_validation_only_step_has_no_training_metrics():
    log = read_metrics(RECORDED)
    assert 0 not in log.series("critic/score/mean")[0]
    assert log.series("val-core/math500/acc/mean@4")[0] == [0, 10, 20]


def test_step_rules_and_non_finite_values(tmp_path):
    lines = [
        '{"step": 1, "data": {"a": 1.5, "b": NaN, "c": Infinity}}',
        '{"step": 2.0, "data": {"a": 2}}',
        '{"step": "3", "data": {"a": 3}}',
        '{"step": true, "data": {"a": 4}}',
        '{"step": 5, "data": [1, 2]}',
        "[1, 2, 3]",
        '{"data": {"a": 6}}',
        "",
        '{"step": 7, "data": {"a": 7}}',
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    log = read_metrics(path)
    assert log.series("a") == ([1, 2, 7], [1.5, 2.0, 7.0])
    assert not log.has("b") and not log.has("c")
    assert log.bad_line_count == 5
    assert log.bad_lines == [3, 4, 5, 6, 7]
    assert log.lines_read == 8  # the blank line is not counted


def test_overlong_line_is_skipped_and_the_next_one_read(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_log, "MAX_LINE_BYTES", 64)
    long_line = json.dumps({"step": 1, "data": {f"m{i}": i for i in range(40)}})
    assert len(long_line) > 3 * 64
    path = tmp_path / "m.jsonl"
    path.write_text(long_line + "\n" + '{"step": 2, "data": {"a": 1}}\n')
    log = read_metrics(path)
    assert log.bad_line_count == 1 and log.bad_lines == [1]
    assert log.series("a") == ([2], [1.0])
    assert not log.has("m0")


def test_reported_bad_lines_are_bounded(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("garbage\n" * 50 + '{"step": 1, "data": {"a": 1}}\n')
    log = read_metrics(path)
    assert log.bad_line_count == 50
    assert len(log.bad_lines) == metrics_log.MAX_REPORTED_BAD_LINES


def test_missing_file_says_where_verl_writes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics file not found.*trainer.logger"):
        read_metrics(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "m.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match="metrics file is empty"):
        read_metrics(path)


def test_file_without_a_valid_line_is_a_clear_error(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("not json\n{}\n")
    with pytest.raises(ValueError, match=r"no valid metrics line.*2 line\(s\) skipped"):
        read_metrics(path)
