"""LedgerWriter: one atomic part per step, the size bound, write errors, a crash mid-run, read_ledger."""

from __future__ import annotations

import logging
import multiprocessing
import os

import pyarrow.parquet as pq
import pytest

from verl_pdai.ledger import read_ledger
from verl_pdai.ledger.records import COLUMNS, build_records
from verl_pdai.ledger.writer import LedgerWriter, part_name, schema


def _columns(step: int, prompts: int = 3, sessions: int = 4) -> dict[str, list]:
    n = prompts * sessions
    pids = [f"s/{i // sessions}" for i in range(n)]
    return build_records(
        step,
        group_ids=[f"u{i // sessions}" for i in range(n)],
        problem_ids=pids,
        data_sources=["s"] * n,
        roles=["preview" if i % sessions == 0 else "main" for i in range(n)],
        hint_levels=[(i // sessions) % 2 * (i % sessions > 0) for i in range(n)],
        hint_tokens=[0] * n,
        outcomes=[float(i % 2) for i in range(n)],
        difficulties=[0.5] * n,
        prior_alphas=[1.0] * n,
        prior_betas=[1.0] * n,
        posteriors={pid: (2.0, float(step)) for pid in pids},
        visits={pid: step for pid in pids},
    )


def test_one_part_per_step_with_the_schema(tmp_path):
    writer = LedgerWriter(tmp_path / "l")
    first = writer.write(1, _columns(1))
    second = writer.write(2, _columns(2))
    assert sorted(p.name for p in (tmp_path / "l").iterdir()) == ["step_000001.parquet", "step_000002.parquet"]
    assert (first.rows, second.rows, second.dropped_rows, second.errors) == (3, 3, 0, 0)
    assert second.bytes == sum(p.stat().st_size for p in (tmp_path / "l").iterdir()) and first.bytes < second.bytes
    assert pq.read_schema(tmp_path / "l" / part_name(1)).remove_metadata() == schema()
    frame = read_ledger(tmp_path / "l")
    assert frame["step"].tolist() == [1, 1, 1, 2, 2, 2] and list(frame.columns) == list(COLUMNS)
    assert frame["store_beta"].tolist() == [1.0] * 3 + [2.0] * 3
    assert list(frame.loc[1, "hint_levels"]) == [1, 1, 1]
    assert read_ledger(tmp_path / "l" / part_name(2))["step"].tolist() == [2, 2, 2]  # one file


def test_size_bound_stops_writing_warns_once_and_counts_dropped_rows(tmp_path, caplog):
    probe = LedgerWriter(tmp_path / "probe")
    one_part = probe.write(1, _columns(1)).bytes
    writer = LedgerWriter(tmp_path / "l", max_bytes=int(2.5 * one_part))
    with caplog.at_level(logging.WARNING, logger="verl_pdai"):
        results = [writer.write(step, _columns(step)) for step in range(1, 6)]
    assert [r.rows for r in results] == [3, 3, 0, 0, 0]
    assert results[-1].dropped_rows == 9 and results[-1].errors == 0
    assert results[-1].bytes <= writer.max_bytes
    assert sum(p.stat().st_size for p in (tmp_path / "l").iterdir()) <= writer.max_bytes
    assert caplog.text.count("reached its size bound") == 1
    assert len(read_ledger(tmp_path / "l")) == 6


def test_write_errors_are_logged_and_counted_never_raised(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = LedgerWriter(blocker / "l")
    with caplog.at_level(logging.WARNING, logger="verl_pdai"):
        result = writer.write(1, _columns(1))
        bad = {**_columns(2), "visits": ["many"] * 3}
        ok_writer = LedgerWriter(tmp_path / "ok")
        bad_result = ok_writer.write(2, bad)
    assert (result.rows, result.errors) == (0, 1) and (bad_result.rows, bad_result.errors) == (0, 1)
    assert "could not write step 1" in caplog.text and "could not write step 2" in caplog.text
    assert not list((tmp_path / "ok").glob("step_*"))


def _crash_during_step_3(folder: str) -> None:
    """Writes steps 1-2, then dies (os._exit, no cleanup) while step 3's part is being written."""
    import pyarrow.parquet

    writer = LedgerWriter(folder)
    writer.write(1, _columns(1))
    writer.write(2, _columns(2))
    real_write = pyarrow.parquet.write_table

    def write_then_die(table, where, *args, **kwargs):
        real_write(table.slice(0, 1), where, *args, **kwargs)  # part of the data is on disk
        os._exit(1)

    pyarrow.parquet.write_table = write_then_die
    writer.write(3, _columns(3))


def test_a_crash_mid_run_loses_at_most_the_current_step(tmp_path):
    folder = tmp_path / "l"
    process = multiprocessing.get_context("fork").Process(target=_crash_during_step_3, args=(str(folder),))
    process.start()
    process.join(60)
    assert process.exitcode == 1
    assert (folder / ".step_000003.parquet.tmp").exists()  # it died inside step 3's write
    frame = read_ledger(folder)
    assert sorted(set(frame["step"])) == [1, 2] and len(frame) == 6 and frame.attrs["skipped_files"] == []
    # the resumed run writes step 3 again; a leftover tmp file is never read and is replaced
    writer = LedgerWriter(folder)
    assert writer.write(3, _columns(3)).rows == 3
    assert sorted(set(read_ledger(folder)["step"])) == [1, 2, 3]


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path):
    first = LedgerWriter(tmp_path)
    for step in range(1, 5):
        first.write(step, _columns(step))
    resumed = LedgerWriter(tmp_path)  # resumed from the checkpoint of step 2
    resumed.write(3, _columns(3, prompts=1))
    frame = read_ledger(tmp_path)
    assert frame["step"].tolist() == [1, 1, 1, 2, 2, 2, 3]


def test_read_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="ledger not found"):
        read_ledger(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no ledger part files"):
        read_ledger(tmp_path)
    with pytest.raises(ValueError, match="max_bytes must be > 0"):
        LedgerWriter(tmp_path, max_bytes=0)
