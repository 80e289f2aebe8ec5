"""The review file: low-confidence problems, their candidate answers and the problem text, lowest first."""

from __future__ import annotations

import json
from pathlib import Path

from verl_pdai.confidence.inputs import ProblemInput
from verl_pdai.confidence.review import review_rows, write_review
from verl_pdai.confidence.routing import CALIBRATION, ProblemRecord
from verl_pdai.core.confidence import SampleEvidence, problem_confidence


def _record(problem_id: str, problem: str, answers: list[str], claims: list[int], truth: object) -> ProblemRecord:
    evidence = [SampleEvidence(a, f, None) for a, f in zip(answers, claims, strict=True)]
    source = ProblemInput(problem_id, "aime", problem, truth, ["..."] * len(answers))
    return ProblemRecord(source, problem_confidence(evidence), CALIBRATION)


RECORDS = [
    _record("sure", "What is 6*7?", ["42"] * 4, [0, 0, 0, 0], "42"),  # 1.0
    _record("split", "Find | the | x.", ["3", "3", "x|y", ""], [1, 0, 2, 0], "3"),  # (1/2 + 1) / 4 = 0.375
    _record("lost", "Nothing works.", ["", "", "", ""], [0, 0, 0, 0], None),  # 0
    _record("tied-b", "B", ["1", "2", "2", "3"], [0, 0, 0, 0], "2"),  # 0.5
    _record("tied-a", "A", ["1", "1", "2", "3"], [0, 0, 0, 0], "1"),  # 0.5
]


def test_rows_below_the_threshold_sorted_by_confidence_then_id():
    rows = review_rows(RECORDS, threshold=0.6)
    assert [r["problem_id"] for r in rows] == ["lost", "split", "tied-a", "tied-b"]
    assert [r["confidence"] for r in rows] == [0.0, 0.375, 0.5, 0.5]
    assert review_rows(RECORDS, threshold=0.5)[-1]["problem_id"] == "split"  # 0.5 is not below 0.5
    assert len(review_rows(RECORDS, threshold=None)) == len(RECORDS)  # nothing reaches the target: review all


def test_row_content_lists_candidates_with_their_false_claims():
    split = next(r for r in review_rows(RECORDS, threshold=0.6) if r["problem_id"] == "split")
    assert split["problem"] == "Find | the | x."
    assert split["answer"] == "3" and split["no_answer"] == 1 and split["k"] == 4
    assert split["ground_truth"] == "3"
    assert split["candidates"] == [
        {"answer": "3", "count": 2, "support": 1.5, "false_claims": [1, 0]},
        {"answer": "x|y", "count": 1, "support": 0.25, "false_claims": [2]},
    ]
    lost = review_rows(RECORDS, threshold=0.6)[0]
    assert lost["candidates"] == [] and lost["answer"] == "" and lost["no_answer"] == 4


def test_written_files(tmp_path: Path):
    paths, count = write_review(RECORDS, 0.6, tmp_path)
    assert [p.name for p in paths] == ["review.jsonl", "review.md"] and count == 4
    lines = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert [row["problem_id"] for row in lines] == ["lost", "split", "tied-a", "tied-b"]
    text = (tmp_path / "review.md").read_text()
    assert "4 of 5 problems, confidence < 0.6" in text
    assert text.index("## 1. lost") < text.index("## 2. split") < text.index("## 3. tied-a")
    assert "> Find | the | x." in text  # the problem text, quoted
    assert "| `x\\|y` | 1 | 0.250 | 2 |" in text  # pipes in answers escaped, claims per supporting sample
    assert "| `3` | 2 | 1.500 | 1, 0 |" in text
    assert "sure" not in text
