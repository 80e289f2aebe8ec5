"""``verl-pdai eval``: score a model (HF path or verl FSDP checkpoint) on the evaluation benchmarks.

    verl-pdai eval --model PATH --data-dir DIR --out DIR [--k 16] [--temperature 0.6] [--top-p 0.95]
        [--max-tokens 32768] [--benchmarks aime2024,math500,amc,minerva,olympiadbench] [--backend vllm|hf]
        [--tensor-parallel-size N] [--seed S] [--thinking auto|required|off]

Every input is checked before a model is loaded. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verl_pdai.cli import output_folder_problem
from verl_pdai.evaluation.backends import GenerationBackend
from verl_pdai.evaluation.data import BENCHMARKS, EvalInputError

if TYPE_CHECKING:
    from verl_pdai.core.scoring import StepwiseConfig

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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="first N problems of each benchmark (smoke runs)")
    add_engine_and_checker_options(parser)
    parser.set_defaults(func=eval_command)


def checker_config(args: argparse.Namespace) -> StepwiseConfig:
    """The checker of ``add_engine_and_checker_options``' flags (ConfigError names a bad value)."""
    from verl_pdai.core.scoring import MAX_NUM_WORKERS, StepwiseConfig

    return StepwiseConfig(
        thinking=args.thinking,
        timeout_s=args.score_timeout,
        num_workers=args.score_workers or min(os.cpu_count() or 1, MAX_NUM_WORKERS),
    )


def add_engine_and_checker_options(parser: argparse.ArgumentParser) -> None:
    """The generation engine's and the checker's options, shared by every command that samples and grades."""
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM tensor parallelism")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM")
    parser.add_argument("--max-model-len", type=int, default=None, help="vLLM context length (default: model's)")
    parser.add_argument("--batch-size", type=int, default=8, help="hf backend: prompts per generate call")
    parser.add_argument(
        "--thinking",
        choices=("auto", "required", "off"),
        default="auto",
        help="which text is graded (StepwiseConfig.thinking; use the value of the training reward_kwargs)",
    )
    parser.add_argument("--score-workers", type=int, default=None, help="checker processes (default: CPU count)")
    parser.add_argument("--score-timeout", type=float, default=4.0, help="seconds per response check (hard bound)")
    parser.add_argument("--no-merge", action="store_true", help="fail on a verl checkpoint instead of merging it")


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


# what ``from_pretrained`` / vLLM take as a hub model id: "name" or "org/name" (no leading "/", ".", "~")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_model(model: str) -> None:
    """Fail on a ``--model`` that cannot be a model before anything loads: a path that does not exist (and cannot
    be a hub id), a file, a folder that is neither a Hugging Face model nor a verl FSDP checkpoint."""
    from verl_pdai.evaluation.checkpoint import actor_dir_of

    what = "a Hugging Face model folder (with config.json), a verl checkpoint global_step_N[/actor], or a hub id"
    path = Path(model).expanduser()
    if not path.exists():
        if _HUB_ID.match(model) and ".." not in model:
            return  # a hub id: the backend downloads it or finds it in the cache
        raise EvalInputError(f"--model {model} does not exist; pass {what}")
    if not path.is_dir():
        raise EvalInputError(f"--model {model} is a file; pass {what}")
    if not (path / "config.json").is_file() and actor_dir_of(path) is None:
        raise EvalInputError(f"--model {model} holds no config.json and no verl FSDP shards; pass {what}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_backend(args: argparse.Namespace, model_path: str) -> GenerationBackend:
    """:func:`make_backend`, any loading failure turned into one line (``VERL_PDAI_TRACEBACK=1``: the traceback).

    Loading a model fails in many ways that are the user's to fix (a hub id that is not reachable offline, a
    folder without weights, too little GPU memory); the libraries raise them with pages of traceback.
    """
    try:
        return make_backend(args, model_path)
    except EvalInputError:
        raise
    except Exception as exc:
        if os.environ.get("VERL_PDAI_TRACEBACK") == "1":
            raise
        memory = " and the GPU memory (--gpu-memory-utilization, --max-model-len)" if args.backend == "vllm" else ""
        raise EvalInputError(
            f"could not load the model {model_path} with --backend {args.backend} ({_first_line(exc)}); check that "
            f"--model is a complete model folder or a hub id this machine can download (or has cached){memory}; "
            "VERL_PDAI_TRACEBACK=1 shows the traceback"
        ) from exc


def make_backend(args: argparse.Namespace, model_path: str) -> GenerationBackend:
    if args.backend == "hf":
        from verl_pdai.evaluation.hf_backend import HFBackend

        return HFBackend(model_path, batch_size=args.batch_size)
    from verl_pdai.evaluation.vllm_backend import VLLMBackend

    return VLLMBackend.load(
        model_path,
        tensor_parallel_size=args.tensor_parallel_size,
        seed=args.seed,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
    )


def run_command(args: argparse.Namespace, backend: GenerationBackend | None = None) -> int:
    """The command with an optional ready backend (tests pass a scripted one); errors raise EvalInputError."""
    from verl_pdai.core.config_values import ConfigError
    from verl_pdai.evaluation.checkpoint import resolve_model
    from verl_pdai.evaluation.data import data_files, parse_benchmarks, read_problems
    from verl_pdai.evaluation.runner import EvalSettings, run_evaluation

    _check_numbers(args)
    out_problem = output_folder_problem("--out", args.out)
    if out_problem:
        raise EvalInputError(out_problem)
    benchmarks = parse_benchmarks(args.benchmarks) if not args.data else []
    files = data_files(args.data_dir, benchmarks, args.data or [])
    problems = [p for name, path in files.items() for p in read_problems(name, path, args.limit)]
    try:
        checker = checker_config(args)
    except ConfigError as exc:
        raise EvalInputError(str(exc)) from exc
    if backend is None:
        check_model(args.model)
        if Path(args.model).expanduser().exists():
            model_path = resolve_model(str(Path(args.model).expanduser()), merge=not args.no_merge)
        else:
            model_path = args.model  # a hub id: the backend resolves it
        backend = load_backend(args, model_path)
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
