"""``verl-pdai confidence`` end to end on small JSONL files in both input formats, and on bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from verl_pdai.cli import main
from verl_pdai.confidence.inputs import MAX_RESPONSE_CHARS, read_problems
from verl_pdai.confidence.selective import in_calibration


def _response(answer: str, steps: str = "Step 1: 3 + 4 = 7.") -> str:
    return f"{steps}\n\nSo the answer is \\boxed{{{answer}}}."


def _eval_row(problem_id: str, truth: str | None, answers: list[str], claims: str = "Step 1: 3 + 4 = 7.") -> dict:
    """A row as the eval command writes it (samples.jsonl)."""
    responses = [_response(a, claims) if a else "I could not finish." for a in answers]
    return {
        "benchmark": "toy",
        "problem_id": problem_id,
        "problem": f"Problem {problem_id}?",
        "ground_truth": truth,
        "responses": responses,
        "correct": [(a == truth) if truth is not None else None for a in answers],
        "extracted": answers,
        "num_tokens": [len(r) // 4 for r in responses],
    }


def _write(path: Path, rows: list[object], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(row) for row in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_eval_samples_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rows = [
        _eval_row("p-sure", "7", ["7", "7", "7", "7"]),
        _eval_row("p-half", "1/2", ["1/2", "0.5", "2", "1/2"]),
        _eval_row("p-wrong", "10", ["9", "9", "10", ""]),
        _eval_row("p-claims", "12", ["12", "12", "12", "13"], claims="Step 1: 2 + 2 = 5."),
        _eval_row("p-none", "5", ["", "", "", ""]),
        _eval_row("p-nogt", None, ["4", "4", "4", "3"]),
    ]
    samples = _write(tmp_path / "samples.jsonl", rows, extra_lines=("{broken json", '["not", "an object"]'))
    out = tmp_path / "out"
    code = main(["confidence", str(samples), "--out", str(out), "--target-accuracy", "0.9", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr()
    assert "2 malformed lines" in printed.out and "skipped line 7" in printed.err and "skipped line 8" in printed.err

    by_id = {row["problem_id"]: row for row in _jsonl(out / "confidence.jsonl")}
    assert list(by_id) == [r["problem_id"] for r in rows]
    assert by_id["p-sure"]["confidence"] == 1.0 and by_id["p-sure"]["correct"] is True
    assert by_id["p-half"]["answer"] == "1/2" and by_id["p-half"]["agreement"] == 0.75  # 0.5 joins 1/2
    assert by_id["p-wrong"]["answer"] == "9" and by_id["p-wrong"]["correct"] is False
    # same agreement as p-half, but every supporting sample claims 2 + 2 = 5: votes halved
    assert by_id["p-claims"]["agreement"] == 0.75 and by_id["p-claims"]["confidence"] == pytest.approx(0.375)
    assert by_id["p-claims"]["candidates"][0]["false_claims"] == [1, 1, 1]
    assert by_id["p-none"]["confidence"] == 0.0 and by_id["p-none"]["correct"] is False
    assert by_id["p-nogt"]["correct"] is None and by_id["p-nogt"]["confidence"] == 0.75
    for row in by_id.values():
        assert row["split"] == ("calibration" if in_calibration(row["problem_id"], 0.5, 3) else "evaluation")

    with (out / "coverage.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["threshold"]) for r in table] == sorted({1.0, 0.75, 0.5, 0.375, 0.0}, reverse=True)
    assert int(table[-1]["accepted"]) == 5 and int(table[-1]["correct"]) == 3  # the five labeled problems

    summary = json.loads((out / "threshold.json").read_text())
    assert summary["labeled_problems"] == 5 and summary["malformed_lines"] == 2
    assert summary["majority_accuracy"] == pytest.approx(3 / 5)
    assert summary["source"] == "calibration" and summary["target_accuracy"] == 0.9
    review = _jsonl(out / "review.jsonl")
    threshold = summary["threshold"]
    expected = sorted(
        (r["confidence"], i) for i, r in by_id.items() if threshold is None or r["confidence"] < threshold
    )
    assert [(r["confidence"], r["problem_id"]) for r in review] == expected
    assert summary["to_review"] == len(review)
    assert (out / "review.md").is_file() and (out / "coverage.png").stat().st_size > 1000


def test_plain_jsonl_without_ids_or_ground_truths(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    rows = [
        {"problem": "What is 2+2?", "responses": [_response("4"), _response("4"), _response("5")]},
        {"problem": "Name a prime.", "responses": [_response("2"), _response("3"), _response("5"), "no idea"]},
        {"problem": "Empty box", "responses": ["\\boxed{}", "nothing"]},
    ]
    source = _write(tmp_path / "plain.jsonl", rows)
    out = tmp_path / "out"
    assert main(["confidence", str(source), "--out", str(out)]) == 0
    assert "ground truths" in capsys.readouterr().out
    records = _jsonl(out / "confidence.jsonl")
    assert [r["confidence"] for r in records] == [pytest.approx(2 / 3), 0.25, 0.0]
    assert all(r["correct"] is None for r in records)
    ids = [r["problem_id"] for r in records]
    assert len(set(ids)) == 3
    again = tmp_path / "again"
    assert main(["confidence", str(source), "--out", str(again)]) == 0
    assert [r["problem_id"] for r in _jsonl(again / "confidence.jsonl")] == ids  # derived ids are stable

    summary = json.loads((out / "threshold.json").read_text())
    assert summary["source"] == "default" and summary["threshold"] == 0.5 and "ground truths" in summary["note"]
    assert summary["aurc"] is None and summary["labeled_problems"] == 0
    assert (out / "coverage.csv").read_text().splitlines() == [
        "threshold,accepted,total,correct,coverage,accuracy,risk"
    ]
    assert not (out / "coverage.png").exists()
    review = _jsonl(out / "review.jsonl")
    assert [r["problem"] for r in review] == ["Empty box", "Name a prime."]
    assert [c["answer"] for c in review[1]["candidates"]] == ["2", "3", "5"]


def test_manual_threshold(tmp_path: Path):
    rows = [{"problem": "q", "ground_truth": "1", "responses": [_response("1"), _response("2")]}]
    out = tmp_path / "out"
    assert main(["confidence", str(_write(tmp_path / "in.jsonl", rows)), "--out", str(out), "--threshold", "0.4"]) == 0
    summary = json.loads((out / "threshold.json").read_text())
    assert summary["source"] == "manual" and summary["threshold"] == 0.4 and summary["to_review"] == 0


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["confidence", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out")]) == 2
    assert "input file not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_nothing_usable_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    junk = _write(tmp_path / "junk.jsonl", [{"problem": "no responses"}, {"responses": "not a list"}], ("}{",))
    assert main(["confidence", str(junk), "--out", str(tmp_path / "out")]) == 2
    assert "no usable rows" in capsys.readouterr().err
    assert main(["confidence", str(junk), "--out", str(tmp_path / "o"), "--calibration-fraction", "0"]) == 2
    assert "--calibration-fraction" in capsys.readouterr().err


def test_out_that_is_a_file_is_one_line_before_any_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # before the fix: FileExistsError from mkdir, with a traceback, after every response had been scored
    rows = [{"problem": "q", "ground_truth": "1", "responses": [_response("1")]}]
    source = _write(tmp_path / "in.jsonl", rows)
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for out, message in ((taken, f"--out {taken} is a file, not a folder"), (taken / "sub", f"{taken} is a file")):
        assert main(["confidence", str(source), "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and "Traceback" not in captured.err
        assert captured.err.count("\n") == 1 and message in captured.err
    assert taken.read_text() == "a file"


def test_reader_caps_and_duplicate_ids(tmp_path: Path):
    huge = "x" * (MAX_RESPONSE_CHARS * 2) + " \\boxed{9}"
    rows = [
        {"problem_id": "same", "responses": [huge, None]},
        {"problem_id": "same", "responses": ["\\boxed{1}"], "correct": [True]},
        {"problem_id": 7, "responses": [3]},
    ]
    problems, malformed = read_problems(_write(tmp_path / "in.jsonl", rows, ("",)))
    assert [p.problem_id for p in problems] == ["same", "same#2"]
    assert len(problems[0].responses[0]) == MAX_RESPONSE_CHARS and problems[0].responses[0].endswith("\\boxed{9}")
    assert problems[0].responses[1] == ""
    assert problems[1].given_correct == [True]
    assert [(m.line, "strings" in m.reason) for m in malformed] == [(3, True)]


def test_cli_lists_the_command():
    proc = subprocess.run(
        [sys.executable, "-m", "verl_pdai.cli", "confidence", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "--target-accuracy" in proc.stdout and "--calibration-fraction" in proc.stdout
