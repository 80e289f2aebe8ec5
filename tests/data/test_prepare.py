"""Data preparation on the shipped raw samples: schema, ids, decontamination, counts, priors, bad input.

Expectations come from the samples as planted (docs/data.md lists the defects), read here independently of the
code under test: the raw files are parsed with json and the defects counted by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_pdai.api import compute_score, score
from verl_pdai.cli import main
from verl_pdai.data.rows import INSTRUCTION, SetReport, adapt_rows, level_prior, normalized_problem, verl_rows
from verl_pdai.data.sources import hendrycks_math, olympiadbench, schema_of

RAW = Path(__file__).resolve().parents[2] / "verl_pdai" / "samples" / "raw"
BENCHMARKS = ("aime2024", "math500", "amc", "minerva", "olympiadbench")
COLUMNS = {"data_source", "prompt", "ability", "reward_model", "extra_info"}


def raw_rows(name: str) -> list[dict]:
    path = next(RAW.glob(f"{name}.json*"))
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    assert main(["prepare-data", "--samples", "--out", str(out)]) == 0
    tables = {path.stem: pq.read_table(path).to_pylist() for path in out.glob("*.parquet")}
    return out, tables, json.loads((out / "prepare_report.json").read_text())


def test_every_file_has_verl_rows(prepared):
    out, tables, _ = prepared
    assert set(tables) == {"train", *BENCHMARKS}
    schemas = {stem: pq.read_schema(out / f"{stem}.parquet") for stem in tables}
    for stem, rows in tables.items():
        split = "train" if stem == "train" else "test"
        # one schema for every file: verl concatenates the files, and a column of another type fails there
        assert schemas[stem].equals(schemas["train"]), stem
        for index, row in enumerate(rows):
            truth, answers = row["reward_model"]["ground_truth"], row["extra_info"]["answers"]
            assert isinstance(truth, str) and answers[0] == truth and len(set(answers)) == len(answers)
            assert set(row) == COLUMNS and row["ability"] == "math"
            (message,) = row["prompt"]
            assert message["role"] == "user" and message["content"].endswith(" " + INSTRUCTION)
            info = row["extra_info"]
            assert info["split"] == split and info["index"] == index
            assert info["problem_id"].startswith(row["data_source"] + "/")


def test_problem_ids_are_unique_and_stable(prepared, tmp_path):
    _, tables, _ = prepared
    ids = [row["extra_info"]["problem_id"] for rows in tables.values() for row in rows]
    assert len(ids) == len(set(ids))
    assert main(["prepare-data", "--samples", "--out", str(tmp_path)]) == 0
    again = [
        row["extra_info"]["problem_id"]
        for path in sorted(tmp_path.glob("*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    assert sorted(again) == sorted(ids)
    assert {row["extra_info"]["problem_id"] for row in tables["math500"]} == {
        "math500/" + row["unique_id"] for row in raw_rows("math500")
    }


def test_training_set_drops_and_decontamination(prepared):
    _, tables, report = prepared
    raw = raw_rows("deepscaler")
    no_answer = [r for r in raw if not r["answer"].strip()]
    eval_texts = {
        name: {normalized_problem(r.get("problem") or r.get("question")) for r in raw_rows(name)} for name in BENCHMARKS
    }
    contaminated = {
        name: [r for r in raw if normalized_problem(r["problem"]) in texts] for name, texts in eval_texts.items()
    }
    assert len(no_answer) == 1 and sum(map(len, contaminated.values())) == 2  # as planted
    train = report["train"]
    assert train["read"] == len(raw)
    assert train["dropped"] == {"no_answer": 1, "duplicate": 1}
    assert train["decontaminated"] == {name: len(rows) for name, rows in contaminated.items() if rows}
    assert train["written"] == len(raw) - 4 == len(tables["train"])
    written = {
        normalized_problem(row["prompt"][0]["content"].removesuffix(" " + INSTRUCTION)) for row in tables["train"]
    }
    assert not any(normalized_problem(r["problem"]) in written for rows in contaminated.values() for r in rows)
    # solution coverage: one kept problem has no reference solution and cannot be hinted
    without = [row for row in tables["train"] if not row["extra_info"]["reference_solution"]]
    assert len(without) == 1 and train["with_solution"] == train["written"] - 1
    assert train["solution_coverage"] == pytest.approx((train["written"] - 1) / train["written"])


def test_benchmark_quirks_and_answers_the_checker_accepts(prepared):
    _, tables, report = prepared
    assert report["eval"]["olympiadbench"]["dropped"] == {"no_answer": 1}  # the row with final_answer []
    amc = {row["extra_info"]["problem_id"]: row["reward_model"]["ground_truth"] for row in tables["amc"]}
    assert amc == {"amc/0": "142", "amc/1": "2", "amc/2": "2.5"}
    for stem, rows in tables.items():
        for row in rows:
            truth, info = row["reward_model"]["ground_truth"], row["extra_info"]
            for answer in info["answers"]:  # any accepted answer, through verl's custom-reward route
                text = f"The answer is $\\boxed{{{answer}}}$."
                assert compute_score(row["data_source"], text, truth, info)["acc"] == 1.0, (stem, answer)
    minerva = [row["extra_info"]["answers"] for row in tables["minerva"]]
    assert minerva == [["5"], ["3", "3.0"], ["3600"]]  # the raw list answers, trailing newlines stripped
    assert [row["reward_model"]["ground_truth"] for row in tables["minerva"]] == ["5", "3", "3600"]
    aime = {row["reward_model"]["ground_truth"] for row in tables["aime2024"]}
    assert "025" in aime and score("$\\boxed{25}$", "025").acc == 1.0  # zero-padded: compared as numbers


def test_priors_only_where_the_source_has_a_level(prepared):
    _, tables, _ = prepared
    levels = {"math500/" + r["unique_id"]: r["level"] for r in raw_rows("math500")}
    for stem, rows in tables.items():
        for row in rows:
            info = row["extra_info"]
            if stem == "math500":
                level = levels[info["problem_id"]]
                prior = info["pdai_prior"]
                assert info["level"] == level and prior["alpha"] + prior["beta"] == pytest.approx(4.0)
            else:
                assert info.get("pdai_prior") is None and info["level"] is None
    means = [level_prior(level)["alpha"] / 4.0 for level in range(1, 6)]
    assert means == sorted(means, reverse=True)  # harder level, lower prior success
    assert level_prior(None) is None and level_prior(7) is None


def test_hendrycks_math_takes_the_answer_from_the_solution_and_the_level():
    rows = [
        {"problem": "What is $2+3$?", "solution": "Adding, $2+3=\\boxed{5}$.", "level": "Level 2"},
        {"problem": "What is $4+4$?", "solution": "It is 8.", "level": "Level 1"},  # no boxed answer
        {"problem": "What is $1+1$?", "solution": "$\\boxed{2}$", "level": "Level ?"},
    ]
    report = SetReport("math")
    problems = adapt_rows("math", hendrycks_math, rows, report)
    assert [p.answers for p in problems] == [("5",), ("2",)] and report.dropped == {"no_answer": 1}
    written = verl_rows("math", problems, "train", report)
    assert written[0]["extra_info"]["pdai_prior"] == level_prior(2) and written[1]["extra_info"]["pdai_prior"] is None


def test_repeated_source_ids_stay_unique():
    rows = [
        {"id": 7, "question": "Compute $2 \\cdot 3$.", "final_answer": ["$6$"], "solution": ["$6$"]},
        {"id": 7, "question": "Compute $2 \\cdot 4$.", "final_answer": ["$8$"], "solution": ["$8$"]},
    ]
    report = SetReport("olympiadbench")
    written = verl_rows("olympiadbench", adapt_rows("olympiadbench", olympiadbench, rows, report), "test", report)
    assert [r["extra_info"]["problem_id"] for r in written] == ["olympiadbench/7", "olympiadbench/7#2"]


def test_oversized_text_is_dropped_with_a_reason():
    rows = [{"problem": "x" * 30_000, "answer": "1", "solution": ""}, {"problem": "ok?", "answer": "1" * 2000}]
    report = SetReport("deepscaler")
    assert adapt_rows("deepscaler", schema_of("deepscaler").adapter, rows, report) == []
    assert report.dropped == {"problem_too_long": 1, "answer_too_long": 1}


def test_bad_input_fails_with_a_clear_message(tmp_path, capsys):
    assert main(["prepare-data", "--samples", "--out", str(tmp_path), "--train", "deepscalr"]) == 2
    assert "unknown data set name 'deepscalr'" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"question": "What is 1+1?", "answer": "2"}) + "\n")
    out = tmp_path / "out"
    assert main(["prepare-data", "--samples", "--out", str(out), "--train", f"deepscaler={broken}"]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "['problem']" in err
    assert not out.exists()  # nothing written on a bad source
    assert main(["prepare-data", "--samples", "--out", str(out), "--eval", f"amc={tmp_path / 'nope.jsonl'}"]) == 2
    assert "no file at" in capsys.readouterr().err


def test_data_modules_import_no_verl():
    code = "import sys, verl_pdai.data.command, verl_pdai.data.prepare; assert 'verl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
