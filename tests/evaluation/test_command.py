"""``verl-pdai eval`` end to end with a scripted backend: files, values, terminal table, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from verl_pdai.cli import main
from verl_pdai.evaluation.backends import Messages, ScriptedBackend
from verl_pdai.evaluation.command import run_command

from .eval_rows import SUFFIX, write_benchmark

K = 4
# problem -> (ground truth, the four scripted responses)
SCRIPT: dict[str, tuple[object, list[str]]] = {
    "AIME one": ("025", ["\\boxed{25}", "\\boxed{025}", "\\boxed{24}", "I give up."]),  # c = 2
    "AIME two": ("7", ["\\boxed{8}"] * 4),  # c = 0
    "Minerva one": (["0.5\n", "1/2"], ["\\boxed{1/2}", "\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{2}"]),  # 3
    "AMC one": (142.0, ["\\boxed{142}", "\\boxed{141}", "\\boxed{141}", "\\boxed{141}"]),  # c = 1
}


def respond(messages: Messages, index: int) -> str:
    problem = messages[-1]["content"].removesuffix(SUFFIX)
    return f"Step 1: think.\n\nSo the answer is {SCRIPT[problem][1][index]}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_benchmark(folder / "aime2024.parquet", "aime2024", [(p, SCRIPT[p][0]) for p in ("AIME one", "AIME two")])
    write_benchmark(folder / "minerva.parquet", "minerva", [("Minerva one", SCRIPT["Minerva one"][0])])
    write_benchmark(folder / "amc.parquet", "amc", [("AMC one", SCRIPT["AMC one"][0])])
    return folder


def parse(argv: list[str]):
    import argparse

    from verl_pdai.evaluation.command import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["eval", *argv])


def test_scripted_run_writes_the_agreed_files(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    backend = ScriptedBackend(respond)
    argv = ["--model", "scripted", "--data-dir", str(data_dir), "--out", str(out), "--k", str(K)]
    assert run_command(parse([*argv, "--benchmarks", "aime2024,minerva,amc", "--score-workers", "2"]), backend) == 0

    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(r["benchmark"], r["problem_id"]) for r in lines] == [
        ("aime2024", "aime2024/0"),
        ("aime2024", "aime2024/1"),
        ("minerva", "minerva/0"),
        ("amc", "amc/0"),
    ]
    first = lines[0]
    assert first["problem"] == "AIME one" + SUFFIX and first["ground_truth"] == "025"
    assert first["correct"] == [True, True, False, False]
    assert first["extracted"] == ["25", "025", "24", "I give up"]  # the "answer is" line fallback
    assert first["responses"] == [respond([{"content": "AIME one" + SUFFIX}], i) for i in range(K)]
    assert first["num_tokens"] == [len(r.split()) for r in first["responses"]]
    assert lines[2]["ground_truth"] == ["0.5\n", "1/2"] and lines[2]["correct"] == [True, True, True, False]
    assert lines[3]["ground_truth"] == 142.0 and lines[3]["correct"] == [True, False, False, False]
    assert all(len(r[key]) == K for r in lines for key in ("responses", "correct", "extracted", "num_tokens"))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "scripted" and summary["k"] == K
    assert (summary["temperature"], summary["top_p"], summary["max_tokens"]) == (0.6, 0.95, 32768)
    aime, minerva, amc = (summary["benchmarks"][name] for name in ("aime2024", "minerva", "amc"))
    assert aime["problems"] == 2 and aime["avg_at_k"] == pytest.approx((2 / 4 + 0) / 2)
    assert aime["pass_at_2"] == pytest.approx((1 - 1 / 6) / 2)  # 1 - C(2,2)/C(4,2) for "AIME one", 0 for two
    assert aime["pass_at_k"] == pytest.approx(0.5)
    assert minerva["avg_at_k"] == pytest.approx(0.75) and minerva["pass_at_2"] == pytest.approx(1.0)
    assert amc["avg_at_k"] == pytest.approx(0.25) and amc["pass_at_2"] == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert summary["average"]["avg_at_k"] == pytest.approx((0.25 + 0.75 + 0.25) / 3)
    assert summary["average"]["pass_at_k"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert summary["average"]["problems"] == 4

    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["benchmark"] for r in rows] == ["aime2024", "minerva", "amc", "average"]
    assert float(rows[1]["avg_at_k"]) == pytest.approx(0.75) and float(rows[3]["pass_at_k"]) == pytest.approx(5 / 6)

    table = capsys.readouterr().out
    assert "avg@4" in table and "pass@4" in table
    assert any(line.split()[:4] == ["minerva", "1", "75.0", "100.0"] for line in table.splitlines())
    # the model saw the prompt of the row, chat messages unchanged
    assert backend.seen[0] == [{"role": "user", "content": "AIME one" + SUFFIX}]


def test_data_files_and_limit(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [str(data_dir / "aime2024.parquet"), str(data_dir / "amc.parquet")]
    argv = ["--model", "m", "--data", *files, "--out", str(out), "--k", "4", "--limit", "1", "--score-workers", "1"]
    assert run_command(parse(argv), ScriptedBackend(respond)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["benchmarks"]) == ["aime2024", "amc"]
    assert summary["benchmarks"]["aime2024"]["problems"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--benchmarks", "aime2024,gsm8k"], "unknown benchmark(s) gsm8k; known: aime2024, math500"),
        (["--benchmarks", "aime2024,math500"], "missing data file(s):"),
        (["--k", "0"], "--k 0: needs at least one sample per problem"),
        (["--top-p", "0"], "--top-p 0.0: must be in (0, 1]"),
    ],
)
def test_bad_input_fails_before_any_model_loads(data_dir: Path, tmp_path: Path, capsys, extra, message) -> None:
    # --backend vllm is not installed here: reaching the backend would fail differently
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, *extra]) == 2
    printed = capsys.readouterr().out
    assert "verl-pdai eval: error:" in printed and message in printed
    assert not (tmp_path / "o").exists()


def test_missing_data_file_and_folder(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--model", "m", "--data", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "o")]) == 2
    assert f"data file(s) not found: {tmp_path / 'x.parquet'}" in capsys.readouterr().out
    assert main(["eval", "--model", "m", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a directory" in capsys.readouterr().out


def test_malformed_rows_fail_with_the_file(tmp_path: Path, capsys) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "aime2024.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "1+1?", "answer": "2"}]), bad)
    assert main(["eval", "--model", "m", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"{bad}: no 'prompt' column (columns: question, answer)" in capsys.readouterr().out


def test_vllm_backend_without_vllm_says_what_to_do(data_dir: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("verl")  # always installed here; vllm is not (GPU machines only)
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed: this checks the message on machines without it")
    argv = ["eval", "--model", "some/model", "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--benchmarks", "amc"]) == 2
    assert "--backend vllm needs vLLM" in capsys.readouterr().out


def _eval_error(capsys) -> str:
    """The one line ``verl-pdai eval`` printed (stdout), with no traceback anywhere."""
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("verl-pdai eval: error: "), lines
    return lines[0]


@pytest.mark.parametrize("backend", ["vllm", "hf"])
def test_missing_model_is_one_line_before_anything_loads(data_dir: Path, tmp_path: Path, capsys, backend) -> None:
    # before the fix: hf raised an 81-line OSError traceback (a path is no hub id), vllm tried to start an engine
    missing = tmp_path / "missing"
    argv = ["eval", "--model", str(missing), "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--benchmarks", "amc", "--backend", backend]) == 2
    line = _eval_error(capsys)
    assert f"--model {missing} does not exist; pass a Hugging Face model folder" in line and "hub id" in line
    assert not (tmp_path / "o").exists()


def test_model_that_is_a_file_or_an_empty_folder(data_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["eval", "--data-dir", str(data_dir), "--out", str(tmp_path / "o"), "--benchmarks", "amc", "--backend", "hf"]
    assert main([*argv, "--model", str(data_dir / "amc.parquet")]) == 2
    assert "amc.parquet is a file; pass a Hugging Face model folder" in _eval_error(capsys)
    assert main([*argv, "--model", str(data_dir)]) == 2
    assert "holds no config.json and no verl FSDP shards" in _eval_error(capsys)


def test_a_model_that_fails_to_load_is_one_line(data_dir: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "qwen2"}')  # no tokenizer, no weights
    argv = ["eval", "--model", str(broken), "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    assert main([*argv, "--benchmarks", "amc", "--backend", "hf"]) == 2
    line = _eval_error(capsys)
    assert f"could not load the model {broken} with --backend hf (" in line
    assert "VERL_PDAI_TRACEBACK=1 shows the traceback" in line


def test_out_that_is_a_file_fails_before_any_model_loads(data_dir: Path, tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--data-dir", str(data_dir), "--benchmarks", "amc"]
    assert main([*argv, "--out", str(taken)]) == 2
    assert f"--out {taken} is a file, not a folder" in _eval_error(capsys)
    assert main([*argv, "--out", str(taken / "run1")]) == 2
    assert f"{taken} is a file, not a folder; pass a path under a folder" in _eval_error(capsys)
