"""The selective-prediction picture of an evaluation: accuracy against coverage from ``verl-pdai confidence``'s
``coverage.csv`` (one point per distinct confidence threshold). Pure: builds a ``Plan``; no verl."""

from __future__ import annotations

from pathlib import Path

from verl_pdai.report.plans import Line, Panel, Plan

COVERAGE_FILE = "coverage.csv"


def confidence_plan(folder: Path) -> Plan:
    """The accuracy-coverage plan of a ``verl-pdai confidence`` output folder (or its ``coverage.csv``)."""
    from verl_pdai.confidence.selective import read_coverage_csv

    path = Path(folder)
    path = path / COVERAGE_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {COVERAGE_FILE}; run `verl-pdai confidence SAMPLES --out DIR` first")
    points = sorted(read_coverage_csv(path), key=lambda point: point.coverage)
    line = Line(
        "accepted answers",
        tuple(point.coverage for point in points),
        tuple(point.accuracy for point in points),
        source=str(path),
    )
    return Plan(
        "confidence_coverage.png",
        "Selective prediction: accuracy vs coverage",
        "Each point is a confidence threshold: the share of evaluated problems whose confidence reaches it "
        "(coverage) and the accuracy of their majority answers. From verl-pdai confidence (coverage.csv).",
        "Read left to right: answering fewer problems automatically should raise their accuracy. Pick the "
        "coverage where the curve meets your target accuracy; the rest go to review (review.md).",
        panels=(Panel("accuracy", (line,), True),),
        missing=() if points else (str(path),),
        xlabel="coverage",
    )
