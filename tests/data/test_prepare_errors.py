"""``verl-pdai prepare-data`` errors (issue 11, finding 5): one line with the fix, a non-zero exit, no traceback, and
nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verl_pdai.cli import main


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("verl-pdai prepare-data: error: ")
    return lines[0]


def test_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "data.parquet"
    target.write_text("not a folder")
    assert main(["prepare-data", "--samples", "--out", str(target)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {target} is a file, not a folder" in line and "pass a folder" in line
    assert main(["prepare-data", "--samples", "--out", str(target / "sub")]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{target}, a parent folder of --out" in line
    assert target.read_text() == "not a folder"


def test_offline_hub_download_is_one_line(tmp_path: Path) -> None:
    """The real offline failure of ``datasets`` (no network, no cache), through the installed command."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache: nothing to fall back on
    }
    out = tmp_path / "out"
    code = "import sys; from verl_pdai.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run(
        [sys.executable, "-c", code, "prepare-data", "--samples", "--out", str(out), "--train", "deepscaler=org/x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    line = one_line(run.stderr)
    assert "deepscaler: cannot load 'org/x' from the Hugging Face hub" in line
    assert "pass NAME=PATH" in line and "--samples" in line
    assert not out.exists()


def test_connection_error_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'agentica-org/DeepScaleR-Preview-Dataset' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    out = tmp_path / "out"
    assert main(["prepare-data", "--samples", "--out", str(out), "--train", "deepscaler=agentica-org/x"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "ConnectionError: Couldn't reach" in line and "NAME=PATH" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([], "the source has no rows"),
        ([{"problem": "What is 1+1?", "answer": ""}, {"problem": "", "answer": "3"}], "all 2 rows were dropped"),
    ],
    ids=["empty", "all-dropped"],
)
def test_no_usable_training_rows_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[dict], why: str
) -> None:
    raw = tmp_path / "train.jsonl"
    raw.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    assert main(["prepare-data", "--samples", "--out", str(out), "--train", f"deepscaler={raw}"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"deepscaler: no usable rows ({why}" in line and "nothing was written" in line
    assert "--train NAME=PATH" in line
    assert not (out / "train.parquet").exists() and not out.exists()


def test_no_usable_benchmark_rows_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "amc.jsonl"
    raw.write_text(json.dumps({"problem": "What is 1+1?", "answer": None}) + "\n")
    out = tmp_path / "out"
    assert main(["prepare-data", "--samples", "--out", str(out), "--eval", "aime2024", f"amc={raw}"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "amc: no usable rows (all 1 rows were dropped {'no_answer': 1})" in line and "--eval NAME=PATH" in line
    assert not out.exists()
