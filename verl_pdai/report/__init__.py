"""Report of a training run: curves from verl's metrics log (and the intervention ledger) as PNGs and an HTML page.

Importing this package is light (no matplotlib, pandas or verl): the heavy modules load when a report is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def write_report(
    metrics_file: Path,
    out_dir: Path,
    *,
    ledger: Path | None = None,
    confidence: Path | None = None,
    title: str = "verl-pdai run",
) -> list[Path]:
    """Write PNGs and index.html for the run logged in ``metrics_file`` into ``out_dir`` (see docs/report.md);
    ``ledger``: the run's intervention ledger; ``confidence``: a ``verl-pdai confidence`` output folder."""
    from verl_pdai.report.build import write_report as write

    return write(metrics_file, out_dir, ledger=ledger, confidence=confidence, title=title)


def ledger_frame(path: Path) -> pd.DataFrame:
    """The intervention ledger at ``path`` (a directory of step_*.parquet part files, or one file) as a DataFrame."""
    from verl_pdai.report.ledger_io import ledger_frame as read

    return read(path)


__all__ = ["ledger_frame", "write_report"]
