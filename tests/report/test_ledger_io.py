"""Reading the ledger: part files, one file, a bad part, nothing to read, and the ledger package's reader."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.report.ledger_builder import row, write_parts
from verl_pdai.report.ledger_io import ledger_frame


def _rows() -> list[dict]:
    return [
        row(2, "b", levels=[1, 0], preview=[0.0], main=[1.0, 0.0], previewed=0.2),
        row(1, "b", levels=[0, 0], preview=[1.0], main=[1.0, 1.0], previewed=0.8),
        row(1, "a", levels=[0, 0], preview=[1.0], main=[0.0, 1.0], previewed=0.7),
    ]


def test_directory_of_parts_sorted_by_step_and_problem(tmp_path):
    folder = write_parts(_rows(), tmp_path / "pdai_ledger")
    assert sorted(p.name for p in folder.iterdir()) == ["step_000001.parquet", "step_000002.parquet"]
    frame = ledger_frame(folder)
    assert list(zip(frame["step"], frame["problem_id"], strict=True)) == [(1, "a"), (1, "b"), (2, "b")]
    assert list(frame.loc[2, "hint_levels"]) == [1, 0]
    assert list(frame.loc[2, "roles"]) == ["preview", "main", "main"]
    assert frame.attrs["skipped_files"] == []


def test_one_parquet_file_and_unknown_columns(tmp_path):
    path = tmp_path / "ledger.parquet"
    pd.DataFrame(_rows()).assign(extra_column=1).to_parquet(path)
    frame = ledger_frame(path)
    assert len(frame) == 3 and "extra_column" not in frame.columns
    assert frame["problem_id"].tolist() == ["a", "b", "b"]


def test_unreadable_part_is_skipped_and_counted(tmp_path):
    folder = write_parts(_rows(), tmp_path / "pdai_ledger")
    (folder / "step_000003.parquet").write_bytes(b"PAR1 not really")
    (folder / ".step_000004.parquet.tmp").write_bytes(b"half written")  # not a part file name
    frame = ledger_frame(folder)
    assert len(frame) == 3
    assert [p.rsplit("/", 1)[-1] for p in frame.attrs["skipped_files"]] == ["step_000003.parquet"]


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ledger not found"):
        ledger_frame(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no ledger part files \(step_\*\.parquet\)"):
        ledger_frame(tmp_path / "empty")


def test_only_unreadable_parts_is_a_clear_error(tmp_path):
    folder = tmp_path / "pdai_ledger"
    folder.mkdir()
    (folder / "step_000001.parquet").write_text("nope")
    with pytest.raises(ValueError, match="no readable ledger part"):
        ledger_frame(folder)


def test_ledger_without_rows_is_a_clear_error(tmp_path):
    path = tmp_path / "ledger.parquet"
    pd.DataFrame(_rows()).iloc[:0].to_parquet(path)
    with pytest.raises(ValueError, match="has no rows"):
        ledger_frame(path)
