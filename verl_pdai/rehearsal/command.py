"""``verl-pdai rehearse CONFIG_DIR CONFIG_NAME [overrides...] --out DIR``: a recipe's launch rehearsed on CPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "rehearse",
        help="run a recipe's composed config through verl's fit loop on CPU (2 steps, validation, save, resume)",
        description=(
            "Composes the recipe as verl.trainer.main_ppo does, changes only what GPUs decide (printed: a tiny model "
            "built in code, the CPU stand-ins of the demo, smaller lengths and batches), and runs verl's fit loop: "
            "training steps, a validation pass over every validation file, a checkpoint, a resume from it. "
            "See docs/recipes.md."
        ),
    )
    parser.add_argument("config_dir", type=Path, help="the recipe folder (hydra --config-path)")
    parser.add_argument("config_name", help="the recipe (hydra --config-name), e.g. eprli_stage1")
    parser.add_argument("overrides", nargs="*", help="hydra overrides, as for the launch")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (model, checkpoints, metrics)")
    parser.add_argument("--steps", type=int, default=2, help="training steps before the save (default 2)")
    parser.set_defaults(func=rehearse_command)


def rehearse_command(args: argparse.Namespace) -> int:
    from verl_pdai.cli import output_folder_problem

    problem = output_folder_problem("--out", args.out)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.steps < 1:
        print(f"error: --steps {args.steps}: give at least 1", file=sys.stderr)
        return 2
    if not args.config_dir.is_dir():
        print(f"error: config folder {args.config_dir} does not exist; pass the recipe folder", file=sys.stderr)
        return 2
    import os

    from verl_pdai.rehearsal.run import RehearsalError, rehearse

    try:
        result = rehearse(args.config_dir, args.config_name, list(args.overrides), args.out, steps=args.steps)
    except RehearsalError as err:
        print(f"rehearsal failed: {err}", file=sys.stderr)
        return 1
    except Exception as exc:  # whatever would crash the launch: one line here, the traceback on request
        if os.environ.get("VERL_PDAI_TRACEBACK"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"rehearsal failed: {type(exc).__name__}: {first} (VERL_PDAI_TRACEBACK=1 shows where)", file=sys.stderr)
        return 1
    core = sorted(k for k in result.validation_metrics if k.startswith("val-core/"))
    restored = "n/a" if result.state_restored is None else result.state_restored
    print(
        f"rehearsal passed in {result.seconds:.0f} s: {result.steps_trained} training step(s), validation on "
        f"{len(core)} data source(s) ({', '.join(k.split('/')[1] for k in core)}), checkpoint {result.checkpoint}, "
        f"resumed from step {result.resumed_from_step} (pdai state restored: {restored}) and trained "
        f"{result.steps_after_resume} more"
    )
    return 0
