"""Queries and the ``verl-pdai ledger`` command on a hand-built ledger written by the real writer."""

from __future__ import annotations

import json

import pytest

from tests.report.ledger_builder import row
from verl_pdai.cli import main
from verl_pdai.ledger import read_ledger
from verl_pdai.ledger.queries import by_source, graduated, never_solved, problem_history
from verl_pdai.ledger.records import COLUMNS
from verl_pdai.ledger.writer import LedgerWriter

H, U = [1, 2], [0, 0]  # hint levels of the two main sessions: hinted, unhinted


def _rows() -> list[dict]:
    return [
        # a/1: hinted twice, then solved without a hint -> graduated
        row(1, "a/1", levels=H, preview=[0.0], main=[1.0, 0.0], visits=1),
        row(2, "a/1", levels=H, preview=[0.0], main=[1.0, 1.0], visits=2),
        row(3, "a/1", levels=U, preview=[1.0], main=[1.0, 1.0], visits=3),
        # a/2: three visits, never solved unassisted, one hinted success
        row(1, "a/2", levels=H, preview=[0.0], main=[0.0, 0.0], visits=1),
        row(2, "a/2", levels=H, preview=[0.0], main=[0.0, 1.0], visits=2),
        row(3, "a/2", levels=H, preview=[0.0], main=[0.0, 0.0], visits=3),
        # b/1: one visit, never solved
        row(2, "b/1", levels=U, preview=[0.0], main=[0.0, 0.0], visits=1),
        # b/2: never hinted, solved
        row(1, "b/2", levels=U, preview=[1.0], main=[1.0, 0.0], visits=1),
        # b/3: hint withdrawn at step 2, back at step 3 -> not graduated (hinted at its latest visit)
        row(1, "b/3", levels=H, preview=[0.0], main=[1.0, 1.0], visits=1),
        row(2, "b/3", levels=U, preview=[0.0], main=[0.0, 1.0], visits=2),
        row(3, "b/3", levels=H, preview=[0.0], main=[1.0, 0.0], visits=3),
    ]


@pytest.fixture
def ledger(tmp_path):
    writer = LedgerWriter(tmp_path / "pdai_ledger")
    rows = _rows()
    for step in (1, 2, 3):
        part = [r for r in rows if r["step"] == step]
        assert writer.write(step, {name: [r[name] for r in part] for name in COLUMNS}).rows == len(part)
    return tmp_path / "pdai_ledger"


def test_never_solved_after_n_visits(ledger):
    frame = read_ledger(ledger)
    assert never_solved(frame, 2)["problem_id"].tolist() == ["a/2"]
    out = never_solved(frame, 1)
    assert out["problem_id"].tolist() == ["a/2", "b/1"]  # most visited first
    first = out.iloc[0]
    assert (first["visits"], first["records"], first["unassisted_trials"]) == (3, 3, 3)
    assert (first["hinted_records"], first["hinted_successes"], first["last_step"]) == (3, 1, 3)
    assert never_solved(frame, 4).empty


def test_graduated_means_hinted_before_and_not_at_the_latest_visit(ledger):
    out = graduated(read_ledger(ledger))
    assert out["problem_id"].tolist() == ["a/1"]
    assert out.iloc[0][["first_hinted_step", "last_hinted_step", "graduated_step"]].tolist() == [1, 2, 3]


def test_problem_history_in_step_order(ledger):
    out = problem_history(read_ledger(ledger), "b/3")
    assert out["step"].tolist() == [1, 2, 3]
    assert [list(v) for v in out["hint_levels"]] == [H, U, H]
    assert out["unassisted_trials"].tolist() == [1, 3, 1]
    with pytest.raises(KeyError, match="not in the ledger"):
        problem_history(read_ledger(ledger), "zz/9")


def test_by_source(ledger):
    out = by_source(read_ledger(ledger)).set_index("data_source")
    assert out.loc["a", "problems"] == 2 and out.loc["b", "problems"] == 3
    assert out.loc["a", "intervention_rate"] == pytest.approx(5 / 6)
    assert out.loc["b", "intervention_rate"] == pytest.approx(2 / 5)
    # a: unassisted = previews (6 trials, 1 success) + the two unhinted mains of a/1 at step 3 (2 successes)
    assert out.loc["a", "unassisted_success_rate"] == pytest.approx(3 / 8)
    assert (out.loc["a", "graduated"], out.loc["a", "never_solved"]) == (1, 1)
    assert (out.loc["b", "graduated"], out.loc["b", "never_solved"]) == (0, 1)
    assert out.loc["a", "hint_token_mean"] == pytest.approx((40 + 80) * 5 / 12)


def test_command_tables_and_json(ledger, capsys):
    assert main(["ledger", str(ledger), "never-solved", "--min-visits", "2", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["problem_id"] for r in records] == ["a/2"] and records[0]["visits"] == 3
    assert main(["ledger", str(ledger), "graduated"]) == 0
    text = capsys.readouterr().out
    assert "a/1" in text and "b/3" not in text and "graduated_step" in text
    assert main(["ledger", str(ledger), "problem", "b/3", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [r["hint_levels"] for r in history] == [H, U, H]
    assert all(r["previewed_difficulty"] is None for r in history)  # NaN -> null
    assert main(["ledger", str(ledger), "by-source"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:3] == ["data_source", "problems", "records"]
    assert main(["ledger", str(ledger), "problem", "zz/9"]) == 1
    assert "not in the ledger" in capsys.readouterr().err
    assert main(["ledger", str(ledger / "nowhere"), "graduated"]) == 2
    assert "ledger not found" in capsys.readouterr().err
    assert main(["ledger", str(ledger), "never-solved", "--min-visits", "9"]) == 0
    assert "no problems" in capsys.readouterr().out
