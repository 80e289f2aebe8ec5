"""What the ledger pictures plot, against values worked out by hand on a five-problem ledger."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.report.ledger_builder import row, write_parts
from verl_pdai.report import ledger_series as S
from verl_pdai.report.ledger_io import ledger_frame

NAN = math.nan


def hand_rows() -> list[dict]:
    """A: hinted, then not (graduates), then hinted again; B: hinted, absent, not hinted (graduates at step 3);
    C: never hinted, easy; D: first seen at step 2 without a preview decision; E: hinted at step 3 only."""
    return [
        row(1, "A", levels=[1, 1], preview=[0.0], main=[1.0, 0.0], previewed=0.25, prior_mean=0.5),
        row(1, "B", levels=[2, 0], preview=[0.0, 0.0], main=[1.0, 0.0], previewed=0.1),
        row(1, "C", levels=[0, 0], preview=[1.0], main=[1.0, 1.0], previewed=0.9),
        row(2, "A", levels=[0, 0], preview=[1.0], main=[1.0, 0.0], previewed=NAN, prior_mean=0.6),
        row(2, "C", levels=[0, 0], preview=[1.0], main=[1.0, 0.0], previewed=NAN, prior_mean=0.95),
        row(2, "D", levels=[0, 0], preview=[0.0], main=[0.0, 1.0], previewed=-1.0, prior_mean=0.5),
        row(3, "A", levels=[2, 2], preview=[0.0], main=[1.0, 1.0], previewed=0.3),
        row(3, "B", levels=[0, 0], preview=[1.0], main=[0.0, 1.0], previewed=0.5),
        row(3, "C", levels=[0, 0], preview=[1.0], main=[1.0, 1.0], previewed=1.0),
        row(3, "D", levels=[0, 0], preview=[1.0], main=[1.0, 1.0], previewed=0.5),
        row(3, "E", levels=[1, 1], preview=[0.0, 0.0], main=[0.0, 1.0], previewed=0.25),
    ]


@pytest.fixture(params=["memory", "parquet"])
def frame(request, tmp_path) -> pd.DataFrame:
    """The same ledger in memory and read back from part files (list columns come back as numpy arrays)."""
    if request.param == "memory":
        return pd.DataFrame(hand_rows())
    return ledger_frame(write_parts(hand_rows(), tmp_path / "pdai_ledger"))


def test_intervention_rate_per_step(frame):
    rate = S.intervention_rate_by_step(frame)
    assert rate.index.tolist() == [1, 2, 3]
    assert rate.tolist() == pytest.approx([2 / 3, 0.0, 2 / 5])


def test_graduation_per_step(frame):
    counts = S.graduation_by_step(frame)
    assert counts.index.tolist() == [1, 2, 3]
    assert counts["ever_hinted"].tolist() == [2, 2, 3]  # A, B; then E
    assert counts["graduated"].tolist() == [0, 1, 1]  # A at 2; at 3 A is hinted again and B graduates
    assert counts["graduated_share"].tolist() == pytest.approx([0.0, 0.5, 1 / 3])


def test_decision_p_falls_back_to_the_prior_mean(frame):
    p = S.decision_p(frame)
    by_key = dict(zip(zip(frame["step"], frame["problem_id"], strict=True), p, strict=True))
    assert by_key[(1, "A")] == 0.25
    assert by_key[(2, "A")] == 0.6  # no preview decision (NaN)
    assert by_key[(2, "D")] == 0.5  # -1 is "no decision" too


def test_difficulty_matrix_rows_columns_and_gaps(frame):
    problems, steps, matrix = S.difficulty_matrix(frame)
    assert steps == [1, 2, 3]
    # mean p: A (0.25+0.6+0.3)/3=0.383, B 0.3, C 0.95, D 0.5, E 0.25: hardest first
    assert problems == ["E", "B", "A", "D", "C"]
    expected = [
        [NAN, NAN, 0.25],
        [0.1, NAN, 0.5],
        [0.25, 0.6, 0.3],
        [NAN, 0.5, 0.5],
        [0.9, 0.95, 1.0],
    ]
    np.testing.assert_allclose(matrix, np.array(expected), equal_nan=True)


def test_difficulty_matrix_is_bounded(frame):
    problems, steps, matrix = S.difficulty_matrix(frame, max_problems=2, max_columns=2)
    assert steps == [1, 3]  # steps 1-2 share a column, step 3 has its own
    assert problems == ["A", "C"]  # the two with three visits, easier last
    np.testing.assert_allclose(matrix, [[(0.25 + 0.6) / 2, 0.3], [(0.9 + 0.95) / 2, 1.0]])


def test_problem_difficulty_is_fixed_at_the_first_visit(frame):
    difficulty = S.problem_difficulty(frame)
    assert difficulty.to_dict() == pytest.approx({"A": 0.75, "B": 0.9, "C": 0.1, "D": 0.5, "E": 0.75})


def test_accuracy_by_bucket_pooled_over_the_run(frame):
    tables = S.accuracy_by_bucket(frame, windows=1)
    unassisted, main = tables["unassisted"], tables["main"]
    assert unassisted.index.tolist() == [3] and main.index.tolist() == [3]
    assert unassisted.columns.tolist() == ["0.0-0.2", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
    # 0.0-0.2: C 3/3 + 2/3 + 3/3; 0.4-0.6: D 1/3 + 3/3; 0.6-0.8: A 0/1 + 2/3 + 0/1, E 0/2; 0.8-1.0: B 0/3 + 2/3
    assert unassisted.iloc[0].tolist() == pytest.approx([8 / 9, 4 / 6, 2 / 7, 2 / 6])
    # main sessions, hints included: C 5/6; D 3/4; A 1/2 + 1/2 + 2/2 and E 1/2; B 1/2 + 1/2
    assert main.iloc[0].tolist() == pytest.approx([5 / 6, 3 / 4, 5 / 8, 2 / 4])


def test_accuracy_by_bucket_per_step(frame):
    tables = S.accuracy_by_bucket(frame, windows=3)
    unassisted = tables["unassisted"]
    assert unassisted.index.tolist() == [1, 2, 3]
    assert unassisted.loc[1, "0.6-0.8"] == 0.0  # A at step 1: its only unassisted session (the preview) failed
    assert math.isnan(unassisted.loc[1, "0.4-0.6"])  # D not seen yet
    assert unassisted.loc[3, "0.6-0.8"] == pytest.approx(0 / 3)  # A 0/1, E 0/2
    assert tables["main"].loc[3, "0.6-0.8"] == pytest.approx(3 / 4)  # A 2/2, E 1/2


def test_windows_are_labelled_by_their_last_step(frame):
    assert S.accuracy_by_bucket(frame, windows=2)["main"].index.tolist() == [2, 3]


def test_bucket_labels():
    assert S.bucket_labels((0.0, 0.5, 1.0)) == ["0.0-0.5", "0.5-1.0"]


def test_missing_list_cells_count_nothing():
    rows = hand_rows()[:1]
    rows[0] = rows[0] | {"outcomes": None, "roles": None}
    tables = S.accuracy_by_bucket(pd.DataFrame(rows), windows=1)
    assert math.isnan(tables["main"].iloc[0, 0])
    assert tables["unassisted"].iloc[0, 0] == 0.0


def test_ledger_plans_carry_the_hand_values(frame):
    from verl_pdai.report.ledger_figures import accuracy_plan, heat_map_plan, intervention_plan

    rate, counts = intervention_plan(frame).panels
    assert rate.lines[0].steps == (1.0, 2.0, 3.0) and rate.lines[0].values == pytest.approx((2 / 3, 0.0, 2 / 5))
    assert {line.label: line.values for line in counts.lines} == {"ever hinted": (2, 2, 3), "graduated": (0, 1, 1)}
    heat_map = heat_map_plan(frame).heat_map
    assert heat_map.row_labels == ("E", "B", "A", "D", "C") and heat_map.column_steps == (1, 2, 3)
    unassisted = accuracy_plan(frame).panels[0]
    assert [line.label for line in unassisted.lines] == [
        "difficulty 0.0-0.2",
        "difficulty 0.4-0.6",
        "difficulty 0.6-0.8",
        "difficulty 0.8-1.0",
    ]
