"""``verl-pdai backfill-references``: reference solutions for the training problems that lack one.

    verl-pdai backfill-references --data train.parquet --out train_filled.parquet
        [--from-corpus FILE | --sample-corpus] [--model M --k 8 --backend vllm|hf ...]

From a corpus of (problem, solution) rows matched by normalized problem text, then from k samples of a stronger
model, keeping only solutions the reward's checker grades correct (docs/data.md). Every input is checked before a
model loads; errors are one line with exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from verl_pdai.data import references as R


def register(commands: Any) -> None:
    from verl_pdai.evaluation.command import add_engine_and_checker_options

    parser = commands.add_parser(
        "backfill-references",
        help="fill missing extra_info.reference_solution from a solution corpus and/or a stronger model's samples",
        description=(
            "Writes --out (the rows of --data, with references filled and their provenance in extra_info) and "
            "--out's .report.json; prints the coverage before and after (docs/data.md)."
        ),
    )
    parser.add_argument("--data", type=Path, required=True, help="verl parquet file (prepare-data's train.parquet)")
    parser.add_argument("--out", type=Path, required=True, help="output parquet file (not --data itself)")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--from-corpus", type=Path, help="(problem, solution) rows: .parquet, .jsonl or .json")
    corpus.add_argument("--sample-corpus", action="store_true", help="the small corpus shipped with the package")
    parser.add_argument("--corpus-problem-key", default="problem", help="corpus column of the problem text")
    parser.add_argument("--corpus-solution-key", default="solution", help="corpus column of the solution")
    parser.add_argument(
        "--corpus-accept-unanswered",
        action="store_true",
        help="take a corpus solution whose final answer the checker cannot find (a wrong answer is always refused)",
    )
    parser.add_argument("--model", help="the stronger model: HF folder/id or verl checkpoint (omit: corpus only)")
    parser.add_argument("--backend", choices=("vllm", "hf"), default="vllm", help="vllm (GPU, default) or hf")
    parser.add_argument("--k", type=int, default=8, help="samples per problem (default 8)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-tokens", type=int, default=16384, help="response length limit (default 16384)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="send at most N problems to the model (file order)")
    parser.add_argument("--chunk-size", type=int, default=256, help="problems per generation call (memory bound)")
    parser.add_argument("--min-steps", type=int, default=R.MIN_STEPS, help="steps a sample's concise part needs")
    parser.add_argument(
        "--max-reference-bytes", type=int, default=R.MAX_REFERENCE_BYTES, help="per reference (UTF-8 bytes)"
    )
    parser.add_argument("--max-total-mb", type=float, default=256.0, help="all references one run adds (MiB)")
    add_engine_and_checker_options(parser)
    parser.set_defaults(func=backfill_command)


def _check_paths(args: argparse.Namespace) -> None:
    from verl_pdai.cli import output_folder_problem
    from verl_pdai.data.backfill import BackfillError

    if args.out.suffix != ".parquet":
        raise BackfillError(f"--out {args.out}: name a .parquet file")
    if args.out.exists() and args.out.is_dir():
        raise BackfillError(f"--out {args.out} is a folder; name a .parquet file")
    if args.out.expanduser().resolve() == args.data.expanduser().resolve():
        raise BackfillError(f"--out {args.out} is --data itself; write to another file (the original stays the record)")
    problem = output_folder_problem("--out", args.out.parent)
    if problem:
        raise BackfillError(problem)


def _check_numbers(args: argparse.Namespace) -> None:
    from verl_pdai.data.backfill import BackfillError
    from verl_pdai.evaluation.command import _check_numbers as check_generation_numbers

    check_generation_numbers(args)  # --k, --temperature, --top-p, --max-tokens, --limit, ... as `eval` checks them
    problems = []
    if args.chunk_size < 1:
        problems.append(f"--chunk-size {args.chunk_size}: must be >= 1")
    if args.min_steps < 1:
        problems.append(f"--min-steps {args.min_steps}: must be >= 1")
    if args.max_reference_bytes < 1:
        problems.append(f"--max-reference-bytes {args.max_reference_bytes}: must be >= 1")
    if not args.max_total_mb > 0:
        problems.append(f"--max-total-mb {args.max_total_mb}: must be > 0")
    if problems:
        raise BackfillError("; ".join(problems))


def run_command(args: argparse.Namespace) -> int:
    """The command; input errors raise BackfillError or EvalInputError (both ValueError)."""
    from verl_pdai.core.config_values import ConfigError
    from verl_pdai.data.backfill import SHIPPED_CORPUS, BackfillError, BackfillSettings, backfill
    from verl_pdai.evaluation.command import check_model, checker_config, load_backend

    corpus = SHIPPED_CORPUS if args.sample_corpus else args.from_corpus
    if args.model is None and corpus is None:
        raise BackfillError("give --model (k samples of a stronger model), --from-corpus FILE or --sample-corpus")
    _check_numbers(args)
    _check_paths(args)
    try:
        checker = checker_config(args)
    except ConfigError as exc:
        raise BackfillError(str(exc)) from exc
    if args.model is not None:
        check_model(args.model)
    settings = BackfillSettings(
        data=args.data,
        out=args.out,
        model=args.model,
        backend_name=args.backend,
        k=args.k,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        limit=args.limit,
        chunk_size=args.chunk_size,
        min_steps=args.min_steps,
        max_reference_bytes=args.max_reference_bytes,
        max_total_bytes=int(args.max_total_mb * 2**20),
        corpus=corpus,
        corpus_problem_key=args.corpus_problem_key,
        corpus_solution_key=args.corpus_solution_key,
        accept_unanswered=args.corpus_accept_unanswered,
        checker=checker,
    )

    def make_backend() -> Any:  # only when a problem still needs the model, after the corpus
        from verl_pdai.evaluation.checkpoint import resolve_model

        model_path = args.model
        if Path(args.model).expanduser().exists():
            model_path = resolve_model(str(Path(args.model).expanduser()), merge=not args.no_merge)
        return load_backend(args, model_path)

    backfill(settings, make_backend if args.model is not None else None)
    return 0


def backfill_command(args: argparse.Namespace) -> int:
    try:
        return run_command(args)
    except (ValueError, OSError) as exc:  # BackfillError, EvalInputError; unreadable files, a full disk
        if os.environ.get("VERL_PDAI_TRACEBACK") == "1":
            raise
        print(f"verl-pdai backfill-references: error: {exc}", file=sys.stderr)
        return 2
