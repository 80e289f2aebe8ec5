"""``verl-pdai ledger PATH {never-solved --min-visits N | graduated | problem ID | by-source} [--json]
[--skip-damaged]``: ask the intervention ledger which problems are never solved unassisted, which graduated, one
problem's hint history, and the summary per data source (docs/ledger.md).

A damaged part file (unreadable, a column the query reads missing, or a null in one) fails the query, the part
named (exit 1): an answer without its steps would be wrong without saying so. ``--skip-damaged`` answers from the
other parts and says in the output which steps are missing."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

__all__ = ["register", "run_ledger"]


def register(commands: Any) -> None:
    """Add the ``ledger`` subcommand to argparse's subparsers object."""
    parser = commands.add_parser("ledger", help="query the intervention ledger of a training run", description=__doc__)
    parser.add_argument("path", help="the ledger folder (<trainer.default_local_dir>/pdai_ledger) or one parquet file")
    queries = parser.add_subparsers(dest="query", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    common.add_argument(
        "--skip-damaged",
        action="store_true",
        help="answer without damaged part files and list the steps that are missing (default: fail on them)",
    )
    never = queries.add_parser("never-solved", parents=[common], help="never solved unassisted after N visits")
    never.add_argument("--min-visits", type=int, default=1, help="store visits a problem needs to be listed")
    queries.add_parser("graduated", parents=[common], help="hinted at an earlier visit, not at the latest")
    problem = queries.add_parser("problem", parents=[common], help="one problem's records in step order")
    problem.add_argument("problem_id")
    queries.add_parser("by-source", parents=[common], help="summary per data source")
    parser.set_defaults(func=run_ledger)


def _plain(value: Any) -> Any:
    """JSON-ready values: arrays -> lists, numpy scalars -> Python, NaN -> None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_SHOWN_PARTS = 5


def _damage_summary(damaged: list[Any]) -> str:
    """The damaged parts in one line: the first few with their reasons, then how many more."""
    shown = ", ".join(part.describe() for part in damaged[:_SHOWN_PARTS])
    more = len(damaged) - _SHOWN_PARTS
    return shown + (f" and {more} more" if more > 0 else "")


def _steps_text(steps: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"steps 3-5, 9"``, ``[3]`` -> ``"step 3"``."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1][1] = step
        else:
            runs.append([step, step])
    return ("step " if len(steps) == 1 else "steps ") + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _missing_text(read: Any) -> str:
    """What an answer from ``read`` lacks, in one line."""
    steps = read.missing_steps
    unnamed = sum(part.step is None for part in read.damaged)
    what = _steps_text(steps) if steps else ""
    if unnamed:
        what += ("; " if what else "") + f"{unnamed} part(s) without a step in their name"
    return f"{what} missing: {len(read.damaged)} damaged part(s) skipped: {_damage_summary(read.damaged)}"


def run_ledger(args: argparse.Namespace) -> int:
    from verl_pdai.ledger import queries
    from verl_pdai.ledger.writer import read_parts

    if args.query == "never-solved" and args.min_visits < 0:
        print(f"--min-visits {args.min_visits}: must be >= 0", file=sys.stderr)
        return 2
    try:
        read = read_parts(args.path, queries.NEEDS[args.query])
    except (FileNotFoundError, ValueError) as err:
        print(f"verl-pdai ledger: {err}", file=sys.stderr)
        return 2
    if read.damaged and not args.skip_damaged:
        steps = f" ({_steps_text(read.missing_steps)})" if read.missing_steps else ""
        print(
            f"verl-pdai ledger: {len(read.damaged)} of {read.parts} part file(s) in {args.path} are damaged: "
            f"{_damage_summary(read.damaged)}; an answer without them{steps} would be wrong; repair or remove them, "
            "or pass --skip-damaged to answer from the other parts",
            file=sys.stderr,
        )
        return 1
    if read.frame is None:
        print(f"verl-pdai ledger: no usable part in {args.path}: {_missing_text(read)}", file=sys.stderr)
        return 1
    frame = read.frame
    note = f"incomplete answer: {_missing_text(read)}" if read.damaged else ""
    if args.query == "never-solved":
        result = queries.never_solved(frame, args.min_visits)
    elif args.query == "graduated":
        result = queries.graduated(frame)
    elif args.query == "problem":
        try:
            result = queries.problem_history(frame, args.problem_id)
        except KeyError as err:
            print(f"verl-pdai ledger: {err.args[0]}" + (f" ({note})" if note else ""), file=sys.stderr)
            return 1
    else:
        result = queries.by_source(frame)
    if args.json:
        records = [{k: _plain(v) for k, v in row.items()} for row in result.to_dict("records")]
        if args.skip_damaged:  # the shape follows the flag, not the data: a consumer never has to guess
            damaged = [{"file": d.path, "step": d.step, "reason": d.reason} for d in read.damaged]
            print(
                json.dumps(
                    {"records": records, "missing_steps": read.missing_steps, "damaged_parts": damaged}, indent=1
                )
            )
        else:
            print(json.dumps(records, indent=1))
        return 0
    if note:
        print(note)
    if result.empty:
        print(f"no problems ({args.query}) in {len(frame)} ledger records")
    else:
        for column in ("hint_levels", "hint_tokens", "outcomes"):
            if column in result:
                result[column] = result[column].map(lambda v: "[" + " ".join(f"{x:g}" for x in v) + "]")
        print(result.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0
