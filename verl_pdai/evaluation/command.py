"""``verl-pdai eval``: score a model (HF path or verl FSDP checkpoint) on the evaluation benchmarks.

    verl-pdai eval --model PATH --data-dir DIR --out DIR [--k 16] [--temperature 0.6] [--top-p 0.95]
        [--max-tokens 32768] [--benchmarks aime2024,math500,amc,minerva,olympiadbench] [--backend vllm|hf]
        [--tensor-parallel-size N] [--seed S] [--thinking auto|required|off]

Every input is checked before a model is loaded. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from verl_pdai.evaluation.backends import GenerationBackend
from verl_pdai.evaluation.data import BENCHMARKS, EvalInputError

BACKENDS = ("vllm", "hf")


def register(commands: Any) -> None:
    parser = commands.add_parser("eval", help="avg@k and pass@k of a model on the math benchmarks")
    parser.add_argument("--model", required=True, help="HF model folder/id, or a verl checkpoint global_step_N[/actor]")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", type=Path, help="folder with <benchmark>.parquet files (verl row schema)")
    source.add_argument("--data", type=Path, nargs="+", help="parquet file(s); each file's stem names its benchmark")
    parser.add_argument("--out", type=Path, required=True, help="output folder (samples.jsonl, summary.json/.csv)")
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS), help="with --data-dir (default: all five)")
    parser.add_argument("--k", type=int, default=16, help="samples per problem (default 16)")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-tokens", type=int, default=32768, help="response length limit (default 32768)")
    parser.add_argument("--backend", choices=BACKENDS, default="vllm", help="vllm (GPU, default) or hf (CPU/small)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM tensor parallelism")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM")
    parser.add_argument("--max-model-len", type=int, default=None, help="vLLM context length (default: model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="hf backend: prompts per generate call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark (smoke runs)")
    parser.add_argument(
        "--thinking",
        choices=("auto", "required", "off"),
        default="auto",
        help="which text is graded (StepwiseConfig.thinking; use the value of the training reward_kwargs)",
    )
    parser.add_argument("--score-workers", type=int, default=None, help="checker processes (default: CPU count)")
    parser.add_argument("--score-timeout", type=float, default=4.0, help="seconds per response check (hard bound)")
    parser.add_argument("--no-merge", action="store_true", help="fail on a verl checkpoint instead of merging it")
    parser.set_defaults(func=eval_command)


def _check_numbers(args: argparse.Namespace) -> None:
    problems = []
    if args.k < 1:
        problems.append(f"--k {args.k}: needs at least one sample per problem")
    if args.temperature < 0:
        problems.append(f"--temperature {args.temperature}: must be >= 0")
    if not 0 < args.top_p <= 1:
        problems.append(f"--top-p {args.top_p}: must be in (0, 1]")
    if args.max_tokens < 1:
        problems.append(f"--max-tokens {args.max_tokens}: must be >= 1")
    if args.tensor_parallel_size < 1:
        problems.append(f"--tensor-parallel-size {args.tensor_parallel_size}: must be >= 1")
    if args.limit is not None and args.limit < 1:
        problems.append(f"--limit {args.limit}: must be >= 1")
    if args.score_workers is not None and args.score_workers < 1:
        problems.append(f"--score-workers {args.score_workers}: must be >= 1")
    if problems:
        raise EvalInputError("; ".join(problems))


def make_backend(args: argparse.Namespace, model_path: str) -> GenerationBackend:
    if args.backend == "hf":
        from verl_pdai.evaluation.hf_backend import HFBackend

        return HFBackend(model_path, batch_size=args.batch_size)
    from verl_pdai.evaluation.vllm_backend import VLLMBackend

    return VLLMBackend(
        model_path,
        tensor_parallel_size=args.tensor_parallel_size,
        seed=args.seed,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
    )


def run_command(args: argparse.Namespace, backend: GenerationBackend | None = None) -> int:
    """The command with an optional ready backend (tests pass a scripted one); errors raise EvalInputError."""
    from verl_pdai.core.config_values import ConfigError
    from verl_pdai.core.scoring import StepwiseConfig
    from verl_pdai.evaluation.checkpoint import resolve_model
    from verl_pdai.evaluation.data import data_files, parse_benchmarks, read_problems
    from verl_pdai.evaluation.runner import EvalSettings, run_evaluation

    _check_numbers(args)
    benchmarks = parse_benchmarks(args.benchmarks) if not args.data else []
    files = data_files(args.data_dir, benchmarks, args.data or [])
    problems = [p for name, path in files.items() for p in read_problems(name, path, args.limit)]
    try:
        checker = StepwiseConfig(
            thinking=args.thinking,
            timeout_s=args.score_timeout,
            num_workers=args.score_workers or os.cpu_count() or 1,
        )
    except ConfigError as exc:
        raise EvalInputError(str(exc)) from exc
    if backend is None:
        if args.backend == "hf" or Path(args.model).exists():
            model_path = resolve_model(args.model, merge=not args.no_merge)
        else:
            model_path = args.model  # a hub id: the backend resolves it
        backend = make_backend(args, model_path)
    settings = EvalSettings(
        model=args.model,
        k=args.k,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        checker=checker,
    )
    run_evaluation(problems, backend, settings, args.out)
    return 0


def eval_command(args: argparse.Namespace) -> int:
    try:
        return run_command(args)
    except EvalInputError as exc:
        print(f"verl-pdai eval: error: {exc}")
        return 2
