"""``verl-pdai report METRICS.jsonl --out DIR [--ledger PATH] [--confidence DIR] [--title TEXT]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``report`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "report",
        help="draw a run's curves (PNG) and an HTML page from verl's metrics JSONL",
        description="Reads verl's FileLogger JSONL (trainer.logger='[console,file]') and, optionally, the "
        "intervention ledger; writes PNG pictures and index.html into --out.",
    )
    parser.add_argument("metrics", type=Path, help="verl's FileLogger JSONL of the run")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs and index.html")
    parser.add_argument("--ledger", type=Path, help="the run's pdai_ledger/ folder (or one parquet file)")
    parser.add_argument("--confidence", type=Path, help="a `verl-pdai confidence` output folder (coverage.csv)")
    parser.add_argument("--title", default="verl-pdai run", help="page title")
    parser.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from verl_pdai.report.build import write_report

    try:
        written = write_report(args.metrics, args.out, ledger=args.ledger, confidence=args.confidence, title=args.title)
    except (FileNotFoundError, ValueError) as exc:
        print(f"verl-pdai report: error: {exc}", file=sys.stderr)
        return 2
    pictures = [path for path in written if path.suffix == ".png"]
    print(f"wrote {len(pictures)} picture(s) and {written[-1]}")
    return 0
