"""The report's accuracy-coverage picture, from the coverage.csv that ``verl-pdai confidence`` writes."""

from __future__ import annotations

import pytest

from tests.report.test_write_report import RECORDED, _check_png
from verl_pdai.confidence.selective import coverage_curve, write_coverage_csv
from verl_pdai.report import write_report
from verl_pdai.report.confidence_figure import confidence_plan


def test_confidence_curve_is_drawn_from_coverage_csv(tmp_path):
    # five problems: confidence ranks three right answers above two wrong ones
    confidences = [0.9, 0.8, 0.7, 0.4, 0.2]
    correct = [True, True, True, False, False]
    folder = tmp_path / "confidence"
    folder.mkdir()
    write_coverage_csv(coverage_curve(confidences, correct), folder / "coverage.csv")

    plan = confidence_plan(folder)
    ((line,),) = [panel.lines for panel in plan.panels]
    # hand-computed: accepting the top j problems gives coverage j/5 and accuracy (right among them)/j
    assert line.steps == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert line.values == pytest.approx([1.0, 1.0, 1.0, 3 / 4, 3 / 5])
    assert plan.xlabel == "coverage"

    written = write_report(RECORDED, tmp_path / "report", confidence=folder)
    picture = tmp_path / "report" / "confidence_coverage.png"
    assert picture in written
    _check_png(picture)
    assert "confidence_coverage.png" in (tmp_path / "report" / "index.html").read_text()


def test_missing_confidence_output_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="verl-pdai confidence"):
        write_report(RECORDED, tmp_path / "report", confidence=tmp_path / "nowhere")
    assert not (tmp_path / "report").exists()
