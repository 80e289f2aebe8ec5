"""``write_report``: metrics log (+ optional ledger) -> PNG pictures and index.html in one folder."""

from __future__ import annotations

from pathlib import Path

from verl_pdai.core.persistence import write_bytes_atomic
from verl_pdai.report.metric_figures import metric_plans, summary_metrics
from verl_pdai.report.metrics_log import MetricsLog, read_metrics
from verl_pdai.report.page import Page, render_page
from verl_pdai.report.plans import Plan
from verl_pdai.report.plotting import render_png
from verl_pdai.report.series import SummaryRow, summary_row

INDEX = "index.html"


def _run_rows(log: MetricsLog) -> dict[str, str]:
    steps = sorted(log.steps)
    rows = {
        "metrics file": str(log.path),
        "steps logged": f"{len(steps)} ({steps[0]} to {steps[-1]})",
        "metrics": str(len(log.values)),
    }
    if log.bad_line_count:
        rows["malformed lines skipped"] = f"{log.bad_line_count} (first: line {', '.join(map(str, log.bad_lines))})"
    return rows


def _summary(log: MetricsLog) -> list[SummaryRow]:
    rows = (summary_row(log, name, higher_is_better=better) for name, better in summary_metrics(log))
    return [row for row in rows if row is not None]


def write_report(
    metrics_file: Path,
    out_dir: Path,
    *,
    ledger: Path | None = None,
    confidence: Path | None = None,
    title: str = "verl-pdai run",
) -> list[Path]:
    """Write the run's pictures and ``index.html`` into ``out_dir``; returns the written paths (PNGs, then the page).

    Every input is read before anything is written, so bad input (no metrics file, an empty one, an unreadable
    ledger) fails with a clear error and leaves ``out_dir`` as it was."""
    log = read_metrics(Path(metrics_file))
    plans: list[Plan] = metric_plans(log)
    run = _run_rows(log)
    if ledger is not None:
        from verl_pdai.report.ledger_figures import ledger_plans, ledger_summary
        from verl_pdai.report.ledger_io import ledger_frame

        frame = ledger_frame(Path(ledger))
        plans += ledger_plans(frame)
        run["ledger"] = str(ledger)
        run.update({f"ledger {key}": value for key, value in ledger_summary(frame).items()})
    if confidence is not None:
        from verl_pdai.report.confidence_figure import confidence_plan

        plans.append(confidence_plan(Path(confidence)))
        run["confidence"] = str(confidence)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = [plan for plan in plans if plan.drawable]
    written = []
    for plan in drawn:
        write_bytes_atomic(out_dir / plan.file, render_png(plan))
        written.append(out_dir / plan.file)
    missing = list(dict.fromkeys(name for plan in plans for name in plan.missing))
    page = Page(title, run, _summary(log), drawn, [p for p in plans if not p.drawable], missing)
    write_bytes_atomic(out_dir / INDEX, render_page(page).encode("utf-8"))
    written.append(out_dir / INDEX)
    return written
