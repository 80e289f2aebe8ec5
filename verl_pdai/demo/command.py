"""``verl-pdai demo [--model PATH] [--steps N] [--out DIR]``: registered through ``verl_pdai.cli.COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the EPRLI path (preview, hint, stepwise reward, epgrpo, store) on CPU with a tiny model",
        description="Trains a few pdai_sync steps through verl's own classes on shipped sample problems, "
        "prints every group, writes OUT/metrics.jsonl and the report.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="a local Hugging Face model folder (default: a "
        "tiny Qwen2 built and taught in code, with the Qwen2.5 tokenizer)",
    )
    parser.add_argument("--steps", type=int, default=3, help="training steps (default 3)")
    parser.add_argument("--out", type=Path, default=Path("pdai_demo"), help="output folder (default ./pdai_demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, the data order and the sampling")
    parser.set_defaults(func=demo_command)


def write_demo_report(metrics_file: Path, report_dir: Path, ledger_dir: Path) -> list[Path]:
    """The run's curves, and the ledger's pictures where the trainer wrote a ledger."""
    from verl_pdai.report import write_report

    ledger = ledger_dir if any(ledger_dir.glob("step_*.parquet")) else None
    return write_report(metrics_file, report_dir, ledger=ledger, title="verl-pdai demo")


def demo_command(args: argparse.Namespace) -> int:
    if args.steps < 1:
        print("--steps must be at least 1", file=sys.stderr)
        return 2
    if args.model is not None:
        from verl_pdai.demo.run import check_model_path

        try:
            check_model_path(args.model)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from verl_pdai.demo.run import run_demo

    try:
        result = run_demo(args.out, steps=args.steps, model_path=args.model, seed=args.seed)
    except KeyboardInterrupt:
        print("interrupted: Ray and TransferQueue were shut down", file=sys.stderr)
        return 130
    written = write_demo_report(result.metrics_file, args.out / "report", args.out / "checkpoints" / "pdai_ledger")
    print(f"report: {len(written)} file(s) in {args.out / 'report'}")
    print(f"ledger: verl-pdai ledger {args.out / 'checkpoints' / 'pdai_ledger'} by-source")
    if result.teach_seconds is not None:
        print(f"teaching took {result.teach_seconds:.1f} s")
    return 0
