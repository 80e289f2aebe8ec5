"""``verl-pdai backfill-references`` (issue 14, part B): references from a corpus and from k model samples, kept only
when the project's checker grades them correct, with provenance in ``extra_info`` and the coverage before and after.

The model path runs the real CLI with ``--backend hf`` on a tiny random Qwen2 built in code; its generation is forced
at the generation boundary only (``forced_generation.py``: a logits processor), because a random model is never
correct. The checker, parquet I/O and the corpus are real; the corpus is the sample shipped with the package."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.evaluation.tiny_model import save_tiny_model
from verl_pdai.cli import main
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.data import references as R
from verl_pdai.data.backfill import SHIPPED_CORPUS, BackfillSettings, backfill, report_path
from verl_pdai.data.io import verl_row_schema, write_parquet
from verl_pdai.data.rows import INSTRUCTION, SetReport, verl_rows
from verl_pdai.data.sources import RawProblem
from verl_pdai.evaluation.backends import ScriptedBackend

from .forced_generation import force_hf_generation

CHECKER = StepwiseConfig(num_workers=1)

# problem -> (answer, reference in the data set, the k=4 scripted responses)
B_CHOSEN = "Ten percent of 240 is 24.\n\nFive percent is 12.\n\nSo \\boxed{36}."
E_CONCISE = "First, 3 squared is 9.\n\nThen add one.\n\nThe result is \\boxed{10}."
PROBLEMS: dict[str, tuple[str, str, list[str]]] = {
    "What is 2+3?": ("5", "Add 2 and 3.\n\nThat gives five.\n\nSo \\boxed{5}.", []),
    "What is 15% of 240?": (
        "36",
        "",
        [
            "Ten percent is 24.\n\nFive percent is 12.\n\nSo it is 24 + 11.\n\n\\boxed{35}",  # wrong
            "<think>Percent means per hundred.</think>\n\nTen percent of 240 is 24.\n\nFive percent is half of that, "
            "12.\n\nAdding both parts gives the total we want.\n\nSo the answer is 24 + 12 = \\boxed{36}.",  # longer
            "Fifteen percent of 240, directly.\n\nIt is \\boxed{36}.",  # shortest: two steps only
            B_CHOSEN,  # the shortest with three steps
        ],
    ),
    "What is 6 times 7?": (
        "42",
        "",
        [
            "6 times 7 is 42.\n\nIndeed 42 is right.\n\nSo \\boxed{42}.",  # every hint step states 42
            "It is 42.\n\nSo \\boxed{42}.",
            "Six times seven is 42.\n\nCheck: 42 / 7 = 6.\n\nSo the answer is \\boxed{42}.",
            "\\boxed{41}",
        ],
    ),
    "What is 9 minus 4?": (
        "5",
        "",
        ["<think>9 minus 4 is 5, so \\boxed{5}", "Nine minus four.\n\nIt is \\boxed{6}.", "\\boxed{4}", "\\boxed{3}"],
    ),
    "Compute 3 squared plus 1.": (
        "10",
        "",
        [
            "<think>\nHmm. 3 squared is 9. Plus one is 10.\n</think>\n\n" + E_CONCISE,
            "\\boxed{11}",
            "\\boxed{12}",
            "The answer is \\boxed{9}.",
        ],
    ),
    # in the shipped corpus (solution_corpus.jsonl row 6): filled from there, never sent to the model
    "Find the largest prime factor of $91$.": ("13", "", []),
}
MODEL_PROBLEMS = ["What is 15% of 240?", "What is 6 times 7?", "What is 9 minus 4?", "Compute 3 squared plus 1."]


def respond(prompt: str, index: int) -> str:
    """The scripted response of sample ``index`` to whichever problem ``prompt`` holds."""
    (problem,) = [p for p in PROBLEMS if p + " " + INSTRUCTION in prompt]
    scripts = PROBLEMS[problem][2]
    return scripts[index] if index < len(scripts) else "I do not know."


def write_train(path: Path, problems: dict[str, tuple[str, str, list[str]]] = PROBLEMS) -> list[dict]:
    """A training file as prepare-data writes it (its row builder and writer)."""
    raw = [
        RawProblem(text, (answer,), solution, str(i))
        for i, (text, (answer, solution, _)) in enumerate(problems.items())
    ]
    rows = verl_rows("deepscaler", raw, "train", SetReport("deepscaler"))
    write_parquet(rows, path)
    return pq.read_table(path).to_pylist()


def by_problem(rows: list[dict]) -> dict[str, dict]:
    return {R.problem_text(row): row for row in rows}


def provenance(row: dict) -> dict:
    return json.loads(row["extra_info"][R.PROVENANCE_FIELD])


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("tiny-qwen2-backfill")
    save_tiny_model(folder, tokenizer)
    return folder


def test_hf_backfill_through_the_cli_keeps_the_shortest_correct_sample(model_dir, tmp_path, monkeypatch, capsys):
    seen = force_hf_generation(monkeypatch, respond)
    data, out = tmp_path / "train.parquet", tmp_path / "filled" / "train_filled.parquet"
    original = write_train(data)
    argv = ["backfill-references", "--data", str(data), "--out", str(out), "--sample-corpus", "--model", str(model_dir)]
    argv += [
        "--backend",
        "hf",
        "--k",
        "4",
        "--max-tokens",
        "96",
        "--chunk-size",
        "3",
        "--batch-size",
        "4",
        "--top-p",
        "1.0",
    ]
    assert main([*argv, "--score-workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "before           1/6 rows with a reference (16.7%): dataset 1" in printed
    assert "after            4/6 rows with a reference (66.7%): backfill 2, corpus 1, dataset 1" in printed

    # the model saw exactly the rows still without a reference after the corpus, with the rows' own prompts
    assert len(seen) == 4 and all(p + " " + INSTRUCTION in s for p, s in zip(MODEL_PROBLEMS, seen, strict=True))

    table = pq.read_table(out)
    assert table.schema.equals(verl_row_schema())  # the one schema: concatenates with every prepared file
    rows = by_problem(table.to_pylist())
    before = by_problem(original)
    for unchanged in ("What is 2+3?", "What is 6 times 7?", "What is 9 minus 4?"):
        assert rows[unchanged] == before[unchanged]
    b = rows["What is 15% of 240?"]["extra_info"]
    assert b["reference_solution"] == B_CHOSEN and b[R.SOURCE_FIELD] == R.BACKFILL
    prov = provenance(rows["What is 15% of 240?"])
    assert prov["model"] == str(model_dir) and prov["backend"] == "hf" and prov["sample_index"] == 3
    assert prov["score"] == 1.0 and prov["correct_of_k"] == 3 and prov["k"] == 4 and prov["steps"] == 3
    assert prov["extracted"] == "36" and prov["seed"] == 0 and prov["temperature"] == 0.6
    from transformers import AutoTokenizer

    tokens = len(AutoTokenizer.from_pretrained(str(model_dir)).encode(B_CHOSEN, add_special_tokens=False))
    assert prov["tokens"] == tokens + 1  # the real generation's count, EOS included
    e = rows["Compute 3 squared plus 1."]["extra_info"]
    assert e["reference_solution"] == E_CONCISE  # the concise part: no thinking, no tags
    assert provenance(rows["Compute 3 squared plus 1."])["sample_index"] == 0
    g = rows["Find the largest prime factor of $91$."]
    assert g["extra_info"][R.SOURCE_FIELD] == R.CORPUS
    assert provenance(g) | {"file": None} == {
        "source": "corpus",
        "file": None,
        "row": 6,
        "match": "normalized problem text",
        "score": 1.0,
        "extracted": "13",
        "steps": 3,
    }
    assert provenance(g)["file"] == str(SHIPPED_CORPUS)

    report = json.loads(report_path(out).read_text())
    assert report["coverage_before"] == {"rows": 6, "with_reference": 1, "share": 1 / 6, "by_source": {"dataset": 1}}
    assert report["coverage_after"]["with_reference"] == 4
    assert report["corpus"]["matched"] == 1 and report["corpus"]["filled"] == 1
    model = report["backfill"]
    assert model["problems"] == 4 and model["samples"] == 16 and model["correct_samples"] == 7
    assert model["filled"] == 2
    assert model["not_filled"] == {"no_correct_sample": 1, "no_qualifying_candidate": 1}
    assert model["rejected"] == {"hints_answer_leak": 2, "too_few_steps": 2, "wrong_answer": 9}
    assert report["bounds"]["added_bytes"] == sum(
        len(r["extra_info"]["reference_solution"].encode()) for r in rows.values() if r["extra_info"][R.SOURCE_FIELD]
    )


def test_shipped_corpus_fills_the_shipped_sample(tmp_path, capsys):
    """`prepare-data --samples` then `backfill-references --sample-corpus`: the one training row without a reference
    is matched by normalized text ("What is $15\\%$ of $240$?" / "What is 15\\% of 240 ?"); of its three corpus
    solutions the wrong one and the one whose every hint step states the answer are refused."""
    prepared = tmp_path / "prepared"
    assert main(["prepare-data", "--samples", "--out", str(prepared)]) == 0
    out = tmp_path / "train_filled.parquet"
    argv = ["backfill-references", "--data", str(prepared / "train.parquet"), "--sample-corpus", "--out", str(out)]
    assert main([*argv, "--score-workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "before           6/7 rows with a reference (85.7%)" in printed
    assert "after            7/7 rows with a reference (100.0%): corpus 1, dataset 6" in printed
    corpus = [json.loads(line) for line in SHIPPED_CORPUS.read_text().splitlines()]
    before = pq.read_table(prepared / "train.parquet").to_pylist()
    after = pq.read_table(out).to_pylist()
    (filled,) = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert (
        filled[0]["extra_info"]["problem_id"] == "deepscaler/10" and not filled[0]["extra_info"]["reference_solution"]
    )
    assert filled[1]["extra_info"]["reference_solution"] == corpus[3]["solution"]
    assert provenance(filled[1])["row"] == 3
    report = json.loads(report_path(out).read_text())["corpus"]
    assert report["matched"] == 1 and report["matched_with_reference"] == 1 and report["filled"] == 1
    assert report["rejected"] == {"hints_answer_leak": 1, "wrong_answer": 1}
    assert report["rows"] == len(corpus) and report["usable_rows"] == len(corpus) - 1

    # verl concatenates training and validation files with datasets: the output aligns with prepared files
    import datasets

    files = [out, prepared / "train.parquet", prepared / "math500.parquet"]
    loaded = [datasets.load_dataset("parquet", data_files=str(f))["train"] for f in files]
    assert len(datasets.concatenate_datasets(loaded)) == sum(len(d) for d in loaded)


# ------------------------------------------------------------------------------------------------ the run


def settings(tmp_path: Path, **changes) -> BackfillSettings:
    values = {"data": tmp_path / "train.parquet", "out": tmp_path / "out.parquet", "model": "scripted", "k": 4}
    return BackfillSettings(**{**values, "checker": CHECKER, **changes})


def scripted():
    return ScriptedBackend(lambda messages, index: respond(messages[-1]["content"], index))


def test_bounds_limit_and_total_budget(tmp_path):
    write_train(tmp_path / "train.parquet")
    # --limit: only the first two problems without a reference go to the model
    backend = scripted()
    report = backfill(settings(tmp_path, limit=2), lambda: backend)
    assert [m[-1]["content"] for m in backend.seen] == [p + " " + INSTRUCTION for p in MODEL_PROBLEMS[:2]]
    assert report["skipped_over_limit"] == 3 and report["backfill"]["problems"] == 2
    # the total budget: the first reference fits, the next does not
    budget = len(B_CHOSEN.encode()) + 10
    report = backfill(settings(tmp_path, max_total_bytes=budget), scripted)
    assert report["backfill"]["filled"] == 1 and report["backfill"]["not_filled"]["over_total_budget"] == 1
    assert report["bounds"]["added_bytes"] == len(B_CHOSEN.encode())
    # per reference: nothing of B fits 40 bytes
    report = backfill(settings(tmp_path, max_reference_bytes=40, limit=1), scripted)
    assert report["backfill"]["rejected"] == {"too_long": 3, "wrong_answer": 1}


def test_thinking_required_refuses_samples_without_a_closed_thinking(tmp_path):
    write_train(tmp_path / "train.parquet")
    required = StepwiseConfig(num_workers=1, thinking="required")
    report = backfill(settings(tmp_path, checker=required, corpus=SHIPPED_CORPUS), scripted)
    # a response that never closes its thinking is wrong under the required mode: of B's samples only the one
    # with a closed thinking counts, the longer one. Corpus solutions have no thinking: graded whole, still taken.
    rows = by_problem(pq.read_table(tmp_path / "out.parquet").to_pylist())
    assert rows["Compute 3 squared plus 1."]["extra_info"]["reference_solution"] == E_CONCISE
    b_thinking = PROBLEMS["What is 15% of 240?"][2][1]
    assert rows["What is 15% of 240?"]["extra_info"]["reference_solution"] == b_thinking.split("</think>")[1].strip()
    assert report["coverage_after"]["by_source"] == {"backfill": 2, "corpus": 1, "dataset": 1}


def test_no_model_is_loaded_when_the_corpus_covers_every_problem(tmp_path):
    write_train(
        tmp_path / "train.parquet", {k: PROBLEMS[k] for k in ("What is 2+3?", "Find the largest prime factor of $91$.")}
    )

    def never():
        raise AssertionError("the model must not be loaded")

    report = backfill(settings(tmp_path, corpus=SHIPPED_CORPUS), never)
    assert report["coverage_after"]["share"] == 1.0 and report["backfill"]["problems"] == 0


def test_a_file_without_the_provenance_fields_gets_them_in_every_row(tmp_path):
    """A file of an earlier version (or another tool) has no reference_source/reference_provenance: the output adds
    them to the extra_info struct of every row, filled or not, and keeps every other column as it was."""
    rows = [
        {
            "data_source": "mine",
            "prompt": [{"role": "user", "content": "What is 15% of 240?"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": "36"},
            "extra_info": {"index": i, "problem_id": f"mine/{i}", "reference_solution": "", "note": "kept"},
        }
        for i in range(2)
    ]
    rows[1]["prompt"][0]["content"] = "What is 6 times 7?"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": "WHAT is 15%  of 240 ?", "a": B_CHOSEN}]), corpus)
    backfill(settings(tmp_path, model=None, corpus=corpus, corpus_problem_key="q", corpus_solution_key="a"))
    out = pq.read_table(tmp_path / "out.parquet")
    fields = [f.name for f in out.schema.field("extra_info").type]
    assert fields == ["index", "problem_id", "reference_solution", "note", R.SOURCE_FIELD, R.PROVENANCE_FIELD]
    first, second = out.to_pylist()
    assert first["extra_info"]["reference_solution"] == B_CHOSEN and first["extra_info"]["note"] == "kept"
    assert second["extra_info"] == {**rows[1]["extra_info"], R.SOURCE_FIELD: None, R.PROVENANCE_FIELD: None}


def test_corpus_solutions_without_an_answer_only_on_request(tmp_path):
    write_train(tmp_path / "train.parquet", {"What is 15% of 240?": PROBLEMS["What is 15% of 240?"]})
    corpus = tmp_path / "corpus.jsonl"
    unanswered = "Ten percent of 240 is 24.\n\nFive percent is 12.\n\nTogether they make the result."
    corpus.write_text(json.dumps({"problem": "What is 15% of 240?", "solution": unanswered}) + "\n")
    report = backfill(settings(tmp_path, model=None, corpus=corpus))
    assert report["corpus"]["filled"] == 0 and report["corpus"]["rejected"] == {"wrong_answer": 1}
    report = backfill(settings(tmp_path, model=None, corpus=corpus, accept_unanswered=True))
    assert report["corpus"]["filled"] == 1
    (row,) = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert provenance(row)["score"] is None and row["extra_info"]["reference_solution"] == unanswered


# ------------------------------------------------------------------------------------------------ pure rules


def test_concise_part():
    assert R.concise_part("<think>a</think>\n\nB.") == "B."
    assert R.concise_part("a</think>B") == "B"  # the template opened the thinking
    assert R.concise_part("<think>never closed") is None
    assert R.concise_part("plain") == "plain" and R.concise_part("plain", require_closed=True) is None
    assert R.concise_part("<think>x</think>  ") is None


def test_choose_sample_takes_the_shortest_qualifying_and_the_lowest_index_on_ties():
    same = "One.\n\nTwo.\n\nSo \\boxed{36}."
    verdicts = [R.Judged(True, "36")] * 3
    outcome = R.choose_sample(["A longer one.\n\nTwo.\n\nThree.\n\n\\boxed{36}", same, same], verdicts, "36")
    assert outcome.choice is not None and outcome.choice.index == 1 and outcome.correct == 3
    failed = R.choose_sample([same], [R.Judged(False, "", failed=True)], "36")
    assert failed.choice is None and failed.rejected == {R.CHECK_FAILED: 1}


def test_problem_text_and_coverage():
    row = {"prompt": [{"role": "user", "content": "Solve $x$. " + INSTRUCTION}], "extra_info": {}}
    assert R.problem_text(row) == "Solve $x$."
    assert R.problem_text({**row, "extra_info": {"problem": "Own text"}}) == "Own text"
    assert R.problem_key("Solve  $x$ !") == R.problem_key("solve x")
    rows = [{"extra_info": {"reference_solution": "r"}}, {"extra_info": {"solution": "s", R.SOURCE_FIELD: "corpus"}}]
    assert R.coverage([*rows, {"extra_info": None}]) == {
        "rows": 3,
        "with_reference": 2,
        "share": 2 / 3,
        "by_source": {"corpus": 1, "dataset": 1},
    }


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "give --model"),
        (["--sample-corpus", "--k", "0"], "--k 0"),
        (["--sample-corpus", "--min-steps", "0"], "--min-steps 0"),
        (["--sample-corpus", "--out-is-data"], "is --data itself"),
        (["--sample-corpus", "--out-not-parquet"], "name a .parquet file"),
        (["--from-corpus", "missing.jsonl"], "no such file"),
        (["--from-corpus", "bad-columns"], "no column(s) ['solution']"),
        (["--model", "/no/such/model"], "does not exist"),
        (["--sample-corpus", "--no-data"], "no such file"),
    ],
)
def test_input_errors_are_one_line_and_write_nothing(tmp_path, capsys, extra, says):
    data, out = tmp_path / "train.parquet", tmp_path / "out.parquet"
    write_train(data)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "x", "text": "y"}) + "\n")
    replace = {"--out-is-data": [], "--out-not-parquet": [], "--no-data": [], "bad-columns": [str(bad)]}
    args = [a for e in extra for a in replace.get(e, [e])]
    if "--out-is-data" in extra:
        out = data
    if "--out-not-parquet" in extra:
        out = tmp_path / "out.csv"
    if "--no-data" in extra:
        data = tmp_path / "absent.parquet"
    if "missing.jsonl" in extra:
        args[args.index("missing.jsonl")] = str(tmp_path / "missing.jsonl")
    assert main(["backfill-references", "--data", str(data), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("verl-pdai backfill-references: error: ") and says in err[0], err
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.csv").exists()


def test_a_file_whose_reference_column_is_null_in_every_row_is_filled(tmp_path):
    """A review: pyarrow and pandas type an all-null column null, which is exactly a file without references; the
    run used to score everything and then fail writing ("Invalid null value"), losing the work."""
    rows = [
        {
            "data_source": "mine",
            "prompt": [{"role": "user", "content": "What is 15% of 240?"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": "36"},
            "extra_info": {"index": 0, "problem_id": "mine/0", "reference_solution": None, "reference_source": None},
        }
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    assert pq.read_schema(tmp_path / "train.parquet").field("extra_info").type[2].type == pa.null()
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": "What is 15% of 240?", "a": B_CHOSEN}]), corpus)
    backfill(settings(tmp_path, model=None, corpus=corpus, corpus_problem_key="q", corpus_solution_key="a"))
    out = pq.read_table(tmp_path / "out.parquet")
    types = {f.name: f.type for f in out.schema.field("extra_info").type}
    assert types["reference_solution"] == types[R.SOURCE_FIELD] == types[R.PROVENANCE_FIELD] == pa.string()
    assert out.to_pylist()[0]["extra_info"]["reference_solution"] == B_CHOSEN


def test_rows_of_several_sources_with_their_own_indices_are_told_apart(tmp_path):
    """A review: a training file merged from sources that each count from 0 was refused ("problem_id occurs twice")
    though the trainer keys such rows by data_source/index."""
    rows = [
        {
            "data_source": source,
            "prompt": [{"role": "user", "content": question}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": answer},
            "extra_info": {"index": 0, "reference_solution": ""},
        }
        for source, question, answer in (("srcA", "What is 15% of 240?", "36"), ("srcB", "What is 6 times 7?", "42"))
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist([{"q": "What is 15% of 240?", "a": B_CHOSEN}]), corpus)
    report = backfill(settings(tmp_path, model=None, corpus=corpus, corpus_problem_key="q", corpus_solution_key="a"))
    assert report["coverage_after"]["with_reference"] == 1
