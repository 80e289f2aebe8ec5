"""``verl-pdai prepare-data``: training set + the five benchmarks -> verl parquet files, decontaminated."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from verl_pdai.data.sources import EVAL_DEFAULTS, TRAIN_DEFAULT, schema_of


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "prepare-data",
        help="public math data sets -> verl parquet (train.parquet + one file per benchmark)",
        description="Writes train.parquet, <benchmark>.parquet and prepare_report.json into --out (docs/data.md).",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (the recipes' DATA_DIR)")
    parser.add_argument("--samples", action="store_true", help="use the small raw samples shipped with the package")
    parser.add_argument("--train", metavar="NAME=ID_OR_PATH", help=f"training set (default: {TRAIN_DEFAULT}, hub)")
    parser.add_argument(
        "--eval", metavar="NAME=ID_OR_PATH", nargs="*", help=f"benchmarks (default: {', '.join(EVAL_DEFAULTS)})"
    )
    parser.add_argument("--max-train", type=int, default=None, help="keep the first N training problems")
    parser.set_defaults(func=prepare_command)


def _spec(text: str, samples: bool) -> tuple[str, str]:
    from verl_pdai.data.io import SAMPLE_FILES, SAMPLES

    name, sep, location = text.partition("=")
    schema_of(name)  # unknown names fail here, with the list of known ones
    if sep:
        return name, location
    if samples:
        if name not in SAMPLE_FILES:
            raise ValueError(f"no shipped sample for {name!r}: give {name}=PATH")
        return name, str(SAMPLES / SAMPLE_FILES[name])
    return name, schema_of(name).hub_id


def _check_out(out: Path) -> None:
    """``--out`` must be a folder or not exist yet; a file there (or above it) would fail late, with a traceback."""
    for folder in (out, *out.parents):
        if folder.is_dir():
            return
        if folder.exists():
            where = f"--out {out}" if folder == out else f"{folder}, a parent folder of --out {out},"
            raise ValueError(f"{where} is a file, not a folder: pass a folder for the parquet files (--out DIR)")


def prepare_command(args: argparse.Namespace) -> int:
    from verl_pdai.data.prepare import prepare

    try:
        _check_out(args.out)
        train = _spec(args.train or TRAIN_DEFAULT, args.samples)
        evals = [_spec(text, args.samples) for text in (args.eval if args.eval is not None else EVAL_DEFAULTS)]
        if args.max_train is not None and args.max_train < 1:
            raise ValueError("--max-train must be at least 1")
        report = prepare(train, evals, args.out, max_train=args.max_train)
    except (ValueError, OSError) as exc:  # OSError: unreadable files, a full disk, no permission to write --out
        print(f"verl-pdai prepare-data: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report["totals"], indent=1))
    return 0
