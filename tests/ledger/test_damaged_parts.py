"""``verl-pdai ledger`` on damaged part files: unreadable, a column missing, null counts. Each fails the query with
the part named unless ``--skip-damaged`` is given, and then the output says which steps are missing.

Before: an unreadable part was skipped with a stderr warning and exit 0; a part without ``unassisted_successes``
(or with nulls there) counted as 0 successes, so its problems were "never solved", silently.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.report.ledger_builder import row
from verl_pdai.cli import main
from verl_pdai.ledger.queries import NEEDS
from verl_pdai.ledger.records import COLUMNS
from verl_pdai.ledger.writer import LedgerWriter, part_name, read_ledger, read_parts, schema

H, U = [1, 2], [0, 0]
QUERIES = (["never-solved"], ["graduated"], ["problem", "a/1"], ["by-source"])


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """Steps 1-3 written by the real writer; c/1 appears only at step 3, solved unassisted there."""
    rows = {
        1: [row(1, "a/1", levels=H, preview=[0.0], main=[1.0, 0.0], visits=1)],
        2: [row(2, "a/1", levels=U, preview=[1.0], main=[1.0, 1.0], visits=2)],
        3: [
            row(3, "a/1", levels=U, preview=[1.0], main=[1.0, 0.0], visits=3),
            row(3, "c/1", levels=U, preview=[1.0], main=[1.0, 1.0], visits=1),
        ],
    }
    folder = tmp_path / "pdai_ledger"
    writer = LedgerWriter(folder)
    for step, part in rows.items():
        assert writer.write(step, {name: [r[name] for r in part] for name in COLUMNS}).rows == len(part)
    return folder


def _drop_column(folder: Path, step: int, column: str) -> Path:
    path = folder / part_name(step)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([column]), path)
    return path


def _null_counts(folder: Path, step: int, column: str) -> Path:
    path = folder / part_name(step)
    table = pq.read_table(path)
    index = table.column_names.index(column)
    nulls = pa.nulls(len(table), type=table.schema.field(column).type)
    pq.write_table(table.set_column(index, table.schema.field(column), nulls), path)
    return path


def _truncate(folder: Path, step: int) -> Path:
    path = folder / part_name(step)
    path.write_bytes(path.read_bytes()[:40])
    return path


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def test_a_healthy_ledger_answers_as_before(ledger: Path, capsys) -> None:
    code, out, err = _run(capsys, ["ledger", str(ledger), "never-solved"])
    assert (code, err) == (0, "") and "no problems (never-solved)" in out and "incomplete" not in out


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("damage", ["truncated", "missing column", "null counts"])
def test_every_query_fails_on_a_damaged_part_with_the_part_named(ledger: Path, capsys, query, damage) -> None:
    # the column the issue names, where the query reads it (graduated does not: it reads hinted_sessions)
    column = "unassisted_successes" if "unassisted_successes" in NEEDS[query[0]] else "hinted_sessions"
    if damage == "truncated":
        _truncate(ledger, 3)
        reason = "unreadable: "
    elif damage == "missing column":
        _drop_column(ledger, 3, column)
        reason = f"no column {column})"
    else:
        _null_counts(ledger, 3, column)
        reason = f"null values in {column} (2))"
    code, out, err = _run(capsys, ["ledger", str(ledger), *query])
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1
    assert f"1 of 3 part file(s) in {ledger} are damaged: step_000003.parquet ({reason}" in err
    assert "(step 3) would be wrong" in err and "pass --skip-damaged" in err


def test_a_missing_column_no_longer_reads_as_never_solved(ledger: Path, capsys) -> None:
    _drop_column(ledger, 3, "unassisted_successes")
    # what the old reader gave: NaN counts, summed as 0, so c/1 (solved at step 3) came out "never solved"
    assert read_ledger(ledger).loc[lambda f: f["problem_id"] == "c/1", "unassisted_successes"].isna().all()
    code, out, _ = _run(capsys, ["ledger", str(ledger), "never-solved"])
    assert code == 1 and "c/1" not in out
    code, out, _ = _run(capsys, ["ledger", str(ledger), "never-solved", "--skip-damaged"])
    assert code == 0 and "c/1" not in out
    assert out.splitlines()[0].startswith("incomplete answer: step 3 missing: 1 damaged part(s) skipped: ")


def test_skip_damaged_answers_from_the_rest_and_names_the_missing_steps(ledger: Path, capsys) -> None:
    _truncate(ledger, 2)
    _null_counts(ledger, 3, "visits")
    code, out, err = _run(capsys, ["ledger", str(ledger), "problem", "a/1", "--skip-damaged"])
    assert code == 0 and err == ""
    first, *table = out.splitlines()
    assert first.startswith("incomplete answer: steps 2-3 missing: 2 damaged part(s) skipped: step_000002.parquet")
    assert "step_000003.parquet (null values in visits (2))" in first
    assert table[0].split()[0] == "step" and [line.split()[0] for line in table[1:]] == ["1"]

    code, out, _ = _run(capsys, ["ledger", str(ledger), "by-source", "--json", "--skip-damaged"])
    answer = json.loads(out)
    assert code == 0 and answer["missing_steps"] == [2, 3]
    assert [(Path(d["file"]).name, d["step"]) for d in answer["damaged_parts"]] == [
        ("step_000002.parquet", 2),
        ("step_000003.parquet", 3),
    ]
    assert [r["data_source"] for r in answer["records"]] == ["a"] and answer["records"][0]["records"] == 1

    code, _, err = _run(capsys, ["ledger", str(ledger), "problem", "c/1", "--skip-damaged"])
    assert code == 1 and "'c/1' is not in the ledger (incomplete answer: steps 2-3 missing" in err


def test_skip_damaged_json_shape_is_the_same_without_damage(ledger: Path, capsys) -> None:
    code, out, _ = _run(capsys, ["ledger", str(ledger), "graduated", "--json", "--skip-damaged"])
    answer = json.loads(out)
    assert code == 0 and answer["missing_steps"] == [] and answer["damaged_parts"] == []
    assert [r["problem_id"] for r in answer["records"]] == ["a/1"]


def test_columns_a_query_does_not_read_are_not_damage(ledger: Path, capsys) -> None:
    _drop_column(ledger, 3, "roles")  # no query reads roles
    _null_counts(ledger, 2, "previewed_difficulty")  # NaN means "no previewed decision"
    code, out, _ = _run(capsys, ["ledger", str(ledger), "graduated"])
    assert code == 0 and "a/1" in out and "incomplete" not in out


def test_nothing_usable_and_the_report_reader(ledger: Path, capsys) -> None:
    for step in (1, 2, 3):
        _truncate(ledger, step)
    code, _, err = _run(capsys, ["ledger", str(ledger), "graduated", "--skip-damaged"])
    assert code == 1 and "no usable part" in err and "steps 1-3 missing" in err
    read = read_parts(ledger)
    assert read.frame is None and read.missing_steps == [1, 2, 3] and read.parts == 3


def test_the_report_reader_still_skips_unreadable_parts(ledger: Path) -> None:
    _truncate(ledger, 2)
    frame = read_ledger(ledger)
    assert sorted(set(frame["step"])) == [1, 3]
    assert [Path(p).name for p in frame.attrs["skipped_files"]] == ["step_000002.parquet"]
    assert set(schema().names) == set(COLUMNS)
