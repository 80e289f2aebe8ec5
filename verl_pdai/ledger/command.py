"""``verl-pdai ledger PATH {never-solved --min-visits N | graduated | problem ID | by-source} [--json]``: ask the
intervention ledger which problems are never solved unassisted, which graduated, one problem's hint history, and
the summary per data source (docs/ledger.md)."""

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


def run_ledger(args: argparse.Namespace) -> int:
    from verl_pdai.ledger import queries, read_ledger

    if args.query == "never-solved" and args.min_visits < 0:
        print(f"--min-visits {args.min_visits}: must be >= 0", file=sys.stderr)
        return 2
    try:
        frame = read_ledger(args.path)
    except (FileNotFoundError, ValueError) as err:
        print(f"verl-pdai ledger: {err}", file=sys.stderr)
        return 2
    if args.query == "never-solved":
        result = queries.never_solved(frame, args.min_visits)
    elif args.query == "graduated":
        result = queries.graduated(frame)
    elif args.query == "problem":
        try:
            result = queries.problem_history(frame, args.problem_id)
        except KeyError as err:
            print(f"verl-pdai ledger: {err.args[0]}", file=sys.stderr)
            return 1
    else:
        result = queries.by_source(frame)
    if args.json:
        records = [{k: _plain(v) for k, v in row.items()} for row in result.to_dict("records")]
        print(json.dumps(records, indent=1))
    elif result.empty:
        print(f"no problems ({args.query}) in {len(frame)} ledger records")
    else:
        for column in ("hint_levels", "hint_tokens", "outcomes"):
            if column in result:
                result[column] = result[column].map(lambda v: "[" + " ".join(f"{x:g}" for x in v) + "]")
        print(result.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0
