"""write_report and ``verl-pdai report``: PNGs and index.html from the recorded run, with and without a ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.report.ledger_builder import simulated_run, write_parts
from verl_pdai.cli import main
from verl_pdai.report import write_report

RECORDED = Path(__file__).parent / "data" / "run_metrics.jsonl"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRIC_PICTURES = {
    "reward.png",
    "val_accuracy.png",
    "intervention.png",
    "preview.png",
    "signal_groups.png",
    "response_length.png",
    "store_policy.png",
    "references.png",
}
LEDGER_PICTURES = {"ledger_intervention.png", "ledger_difficulty_heatmap.png", "ledger_acc_by_difficulty.png"}


def _check_png(path: Path) -> None:
    content = path.read_bytes()
    assert content.startswith(PNG_MAGIC), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert width >= 400 and height >= 200
        grey_levels = sum(1 for count in image.convert("L").histogram() if count)
        assert grey_levels > 10  # something is drawn, not a blank canvas


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_recorded_run_renders_pictures_and_page(tmp_path):
    out = tmp_path / "report"
    written = write_report(RECORDED, out, title="run <7> & co")
    assert written[-1] == out / "index.html"
    pictures = {p.name for p in written[:-1]}
    assert pictures == METRIC_PICTURES
    for path in written[:-1]:
        _check_png(path)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert sorted(_images(html)) == sorted(METRIC_PICTURES)
    assert "<title>run &lt;7&gt; &amp; co</title>" in html
    assert "Missing metrics" in html and "<code>pdai/acc_by_difficulty/&lt;lo&gt;-&lt;hi&gt;</code>" in html
    assert "acc_by_difficulty.png" in html and 'src="acc_by_difficulty.png"' not in html  # skipped, with a note
    assert "malformed lines skipped</td><td>1 (first: line 14)" in html
    assert "21 (0 to 20)" in html
    assert "How to read it" in html
    assert sorted(p.name for p in out.iterdir()) == sorted(pictures | {"index.html"})  # no temporary files left


def test_summary_table_has_last_and_best_values(tmp_path):
    write_report(RECORDED, tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    # math500 validation: 0.8 at step 0, 0.825 at 10, 0.85 at 20 in the recorded file
    assert (
        "<tr><td>val-core/math500/acc/mean@4</td><td>3</td><td>0.8</td><td>0.85 (20)</td><td>0.85 (20)</td></tr>"
        in html
    )


def test_ledger_adds_its_pictures(tmp_path):
    ledger = write_parts(simulated_run(steps=12, problems=30, per_step=10), tmp_path / "pdai_ledger")
    out = tmp_path / "report"
    written = write_report(RECORDED, out, ledger=ledger)
    assert {p.name for p in written[:-1]} == METRIC_PICTURES | LEDGER_PICTURES
    for path in written[:-1]:
        _check_png(path)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert set(_images(html)) == METRIC_PICTURES | LEDGER_PICTURES
    assert "ledger rows</td><td>120" in html and "ledger problems</td><td>30" in html


def test_ledger_without_a_column_skips_its_pictures_with_a_note(tmp_path):
    import pandas as pd

    path = tmp_path / "ledger.parquet"
    pd.DataFrame(simulated_run(steps=4, problems=8, per_step=4)).drop(columns=["hinted_sessions"]).to_parquet(path)
    written = write_report(RECORDED, tmp_path / "out", ledger=path)
    names = {p.name for p in written}
    assert "ledger_intervention.png" not in names
    assert {"ledger_difficulty_heatmap.png", "ledger_acc_by_difficulty.png"} <= names
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "<code>ledger column hinted_sessions</code>" in html


def test_without_ledger_no_ledger_pictures(tmp_path):
    names = {p.name for p in write_report(RECORDED, tmp_path)}
    assert not names & LEDGER_PICTURES


def test_missing_metrics_file_fails_before_writing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="metrics file not found"):
        write_report(tmp_path / "missing.jsonl", out)
    assert not out.exists()


def test_empty_metrics_file_fails_before_writing(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="metrics file is empty"):
        write_report(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_ledger_fails_before_writing(tmp_path):
    with pytest.raises(FileNotFoundError, match="ledger not found"):
        write_report(RECORDED, tmp_path / "out", ledger=tmp_path / "pdai_ledger")
    assert not (tmp_path / "out").exists()


def test_rewriting_a_report_replaces_the_page(tmp_path):
    write_report(RECORDED, tmp_path, title="Run Alpha")
    write_report(RECORDED, tmp_path, title="Run Beta")
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<title>Run Beta</title>" in html and "Run Alpha" not in html


def test_command_writes_the_report(tmp_path, capsys):
    ledger = write_parts(simulated_run(steps=5, problems=10, per_step=5), tmp_path / "pdai_ledger")
    code = main(["report", str(RECORDED), "--out", str(tmp_path / "out"), "--ledger", str(ledger), "--title", "T"])
    assert code == 0
    assert "wrote 11 picture(s)" in capsys.readouterr().out
    assert "<title>T</title>" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")


def test_command_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    code = main(["report", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "verl-pdai report: error: metrics file not found" in capsys.readouterr().err


def test_command_requires_out(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(RECORDED)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err
