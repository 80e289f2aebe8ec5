"""The review files: low-confidence problems with their candidate answers, lowest confidence first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from verl_pdai.confidence.routing import ProblemRecord, needs_review

__all__ = ["review_rows", "write_review"]

_MD_PROBLEM_CHARS = 2_000  # review.md shows the start of long problems; review.jsonl has the whole text
_MD_ANSWER_CHARS = 200


def review_rows(records: Sequence[ProblemRecord], threshold: float | None) -> list[dict[str, object]]:
    """Problems below ``threshold`` (all when it is None), sorted by confidence, then problem id."""
    chosen = sorted(
        (r for r in records if needs_review(r, threshold)),
        key=lambda r: (r.result.confidence, r.source.problem_id),
    )
    rows = []
    for record in chosen:
        result, source = record.result, record.source
        rows.append(
            {
                "problem_id": source.problem_id,
                "benchmark": source.benchmark,
                "confidence": result.confidence,
                "answer": result.answer,
                "agreement": result.agreement,
                "k": result.k,
                "no_answer": result.k - result.answered,
                "problem": source.problem,
                "ground_truth": source.ground_truth,
                "correct": result.correct,
                "candidates": [
                    {key: c.to_dict()[key] for key in ("answer", "count", "support", "false_claims")}
                    for c in result.clusters
                ],
            }
        )
    return rows


def _md_cell(text: str) -> str:
    text = text if len(text) <= _MD_ANSWER_CHARS else text[:_MD_ANSWER_CHARS] + "..."
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def _markdown(rows: Sequence[dict], threshold: float | None, total: int) -> str:
    limit = "every problem (no threshold reaches the target)" if threshold is None else f"confidence < {threshold}"
    lines = [
        "# Answers to review",
        "",
        f"{len(rows)} of {total} problems, {limit}, lowest confidence first. Each candidate answer lists how many "
        "samples gave it, its weighted votes, and the false arithmetic claims of each supporting sample.",
    ]
    for number, row in enumerate(rows, start=1):
        problem = str(row["problem"]) or "(no problem text)"
        if len(problem) > _MD_PROBLEM_CHARS:
            problem = problem[:_MD_PROBLEM_CHARS] + " ..."
        lines += [
            "",
            f"## {number}. {row['problem_id']}: confidence {row['confidence']:.3f}",
            "",
            *("> " + line for line in problem.splitlines()),
            "",
            f"Predicted: {_md_cell(str(row['answer'])) if row['answer'] else '(none)'}; "
            f"{row['no_answer']} of {row['k']} samples gave no answer.",
        ]
        if row["ground_truth"] is not None:
            truth = row["ground_truth"]
            shown = truth if isinstance(truth, str) else json.dumps(truth, ensure_ascii=False, default=str)
            lines.append(f"Ground truth: {_md_cell(shown)}")
        if row["candidates"]:
            lines += [
                "",
                "| answer | samples | weighted votes | false claims per supporting sample |",
                "|---|---|---|---|",
            ]
            for c in row["candidates"]:
                claims = ", ".join(str(f) for f in c["false_claims"])
                lines.append(f"| {_md_cell(c['answer'])} | {c['count']} | {c['support']:.3f} | {claims} |")
    return "\n".join(lines) + "\n"


def write_review(records: Sequence[ProblemRecord], threshold: float | None, out_dir: Path) -> tuple[list[Path], int]:
    """Write review.jsonl and review.md; returns the paths and the number of problems to review."""
    rows = review_rows(records, threshold)
    jsonl = out_dir / "review.jsonl"
    with jsonl.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    markdown = out_dir / "review.md"
    markdown.write_text(_markdown(rows, threshold, len(records)), encoding="utf-8")
    return [jsonl, markdown], len(rows)
