"""Benchmark (real updates on CPU): does EPRLI teach a model more than GRPO on the same budget?

For each seed: a tiny Qwen2 (random weights, the Qwen2.5 tokenizer) is taught the sum-chain task family's base
skill (``verl_pdai.learning.teaching``; cached in ``OUT/base/seed<s>``), then measured unassisted at step 0 on
the train and held-out problems (k samples each: a problem is "initially unsolved" at pass rate 0). Each method
then trains from that same base model in its own process (``verl_pdai.learning.run``): verl's own fit loop, verl's
actor (FSDP2 on CPU) updating the model, the rollout serving the updated weights, the same prompts, group size,
learning rate, steps and seed for every method. Held-out accuracy is always unassisted (no preview, no hint).

    python benchmarks/bench_learning.py --methods grpo,eprli --seeds 0,1,2 --steps 20 --out DIR

writes ``DIR/summary.json``, ``DIR/*.png`` (curves) and prints the table; ``--smoke`` runs 2 steps at tiny sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verl_pdai.learning.methods import METHODS  # noqa: E402
from verl_pdai.learning.run import RunSizes  # noqa: E402

STEP0_K = 8  # samples per problem for the step-0 measurement ("hard" = 0 of 8)
CURVES = {
    "heldout_acc": "held-out unassisted accuracy",
    "heldout_acc_initially_unsolved": "held-out, initially unsolved problems",
    "intervention_rate": "intervention rate (hinted main sessions)",
    "hint_level": "mean hint level",
    "groups_with_signal": "groups with outcome contrast",
}


def build_base(seed: int, folder: Path, sizes: RunSizes, say: Any, teach_steps: int | None = None) -> dict[str, Any]:
    """Teach the seed's base model (once) and measure it unassisted at step 0."""
    step0_file = folder / "step0.json"
    made_with = {
        "train_size": sizes.train_size,
        "heldout_size": sizes.heldout_size,
        "k": sizes.k,
        "temperature": sizes.temperature,
        "response_length": sizes.response_length,
        "teach_steps": teach_steps,
    }
    if step0_file.exists():
        cached = json.loads(step0_file.read_text())
        if cached.get("made_with") == made_with:
            return cached
        raise SystemExit(
            f"{folder} holds a base model made with other settings ({cached.get('made_with')}, not {made_with}): "
            "its teaching set may hold this run's held-out problems; pass another --out"
        )
    from transformers import AutoTokenizer

    from verl_pdai.demo.run import qwen_tokenizer_dir
    from verl_pdai.learning.heldout import evaluate_unassisted
    from verl_pdai.learning.tasks import generate_problems
    from verl_pdai.learning.teaching import save_base_model, teach_base_model, teaching_set

    tokenizer = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir()))
    train, heldout = generate_problems(seed, sizes.train_size, sizes.heldout_size)
    taught = teaching_set(seed, [*train, *heldout])
    model, report = teach_base_model(tokenizer, taught, seed, **({"steps": teach_steps} if teach_steps else {}))
    save_base_model(model, tokenizer, folder / "model")
    say(f"seed {seed}: taught {report.lessons} in {report.seconds:.1f} s (loss {report.final_loss:.3f})")
    measured = {}
    for name, problems in (("train", train), ("heldout", heldout)):
        result = evaluate_unassisted(
            model,
            tokenizer,
            problems,
            k=STEP0_K,
            temperature=sizes.temperature,
            max_new_tokens=sizes.response_length,
            seed=seed,
        )
        measured[name] = result
        say(f"seed {seed}: step 0 {name} unassisted by kind {_fmt(result.by_kind())}")
    step0 = {
        "seed": seed,
        "made_with": made_with,
        "k": STEP0_K,
        "teach_seconds": report.seconds,
        "teach_lessons": report.lessons,
        "train_pass_rates": measured["train"].pass_rates,
        "heldout_pass_rates": measured["heldout"].pass_rates,
        "train_by_kind": measured["train"].by_kind(),
        "heldout_by_kind": measured["heldout"].by_kind(),
    }
    # held-out accuracy at step 0 as the runs measure it (k = the runs' k, same sampling seed)
    start = evaluate_unassisted(
        model,
        tokenizer,
        heldout,
        k=sizes.k,
        temperature=sizes.temperature,
        max_new_tokens=sizes.response_length,
        seed=seed,
    )
    unsolved = [pid for pid, rate in step0["heldout_pass_rates"].items() if rate == 0.0]
    step0["curve_point"] = {
        "step": 0,
        "heldout_acc": start.accuracy,
        "heldout_acc_initially_unsolved": statistics.fmean(start.pass_rates[p] for p in unsolved)
        if unsolved
        else float("nan"),
        "initially_unsolved": len(unsolved),
        **{f"heldout_acc/{kind}": acc for kind, acc in start.by_kind().items()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    step0_file.write_text(json.dumps(step0, indent=1))
    return step0


def provenance() -> dict[str, Any]:
    """The commit and machine a table came from (docs/learning.md quotes them)."""
    import platform

    import torch
    import verl

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "commit": commit or "unknown",
        "machine": f"{os.cpu_count()} cores, {cpu}",
        "torch": torch.__version__,
        "verl": getattr(verl, "__version__", "unknown"),
    }


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in values.items())


def run_one(
    method: str, seed: int, base: Path, steps: int, out: Path, sizes: RunSizes, log: Path, threads: int, reuse: bool
) -> dict:
    run_file = out / "run.json"
    if reuse and run_file.exists():
        done = json.loads(run_file.read_text())
        if done.get("sizes") == asdict(sizes) and done.get("actor_updates") == steps:
            return done  # the same run, finished before (--reuse)
    run_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "verl_pdai.learning.run",
        "--method",
        method,
        "--seed",
        str(seed),
        "--base",
        str(base),
        "--steps",
        str(steps),
        "--out",
        str(out),
        "--sizes",
        json.dumps(asdict(sizes)),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env["OMP_NUM_THREADS"] = str(threads)  # torch's intra-op threads: the cores divided among parallel runs
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not run_file.exists():
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{method} seed {seed} failed (exit {done.returncode}); log {log}:\n{tail}")
    return json.loads(run_file.read_text())


def summarize(runs: dict[str, dict[int, dict]], step0: dict[int, dict]) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for method, by_seed in runs.items():
        seeds = {}
        for seed, record in by_seed.items():
            curve = [step0[seed]["curve_point"], *record["curve"]]
            seeds[str(seed)] = {
                "heldout_acc": record["heldout_acc"],
                "heldout_acc_initially_unsolved": record["heldout_acc_initially_unsolved"],
                "train_unassisted_acc": record["train_unassisted_acc"],
                "rollouts": record["rollouts"],
                "wall_s": record["wall_s"],
                "curve": curve,
                "per_step": record["per_step"],
                "train_unassisted_by_kind": record["train_unassisted_by_kind"],
            }
        methods[method] = {"description": METHODS[method][1], "seeds": seeds}
    return {"methods": methods, "step0": {str(s): v for s, v in step0.items()}}


def table(summary: dict[str, Any]) -> list[str]:
    keys = ("heldout_acc", "heldout_acc_initially_unsolved", "train_unassisted_acc", "wall_s")
    lines = [
        "| method | held-out acc | held-out, initially unsolved | train unassisted | wall s (per run) |",
        "|---|---|---|---|---|",
    ]
    for method, entry in summary["methods"].items():
        cells = []
        for key in keys:
            values = [seed[key] for seed in entry["seeds"].values()]
            mean = statistics.fmean(values)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{mean:.0f}" if key == "wall_s" else f"{mean:.3f} ± {spread:.3f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def plot(summary: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, title in CURVES.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for method, entry in summary["methods"].items():
            source = "curve" if key.startswith("heldout") else "per_step"
            series: dict[int, list[float]] = {}
            for seed in entry["seeds"].values():
                for point in seed[source]:
                    value = point.get(key)
                    if value is not None and not math.isnan(value):
                        series.setdefault(int(point["step"]), []).append(float(value))
            steps = sorted(series)
            ax.plot(steps, [statistics.fmean(series[s]) for s in steps], marker="o", markersize=3, label=method)
        ax.set_xlabel("step")
        ax.set_title(f"{title} (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        path = out / f"{key.replace('/', '_')}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="grpo,eprli", help=f"comma-separated, of: {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("pdai_learning"))
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help=f"actor learning rate (default {RunSizes().lr:g})")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cores/jobs torch threads)")
    parser.add_argument("--reuse", action="store_true", help="keep finished runs with the same settings in OUT")
    parser.add_argument("--smoke", action="store_true", help="2 steps at tiny sizes (CI)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sizes = RunSizes()
    steps = args.steps
    if args.smoke:
        steps = 2
        sizes = replace(sizes, prompts=2, eval_every=2, k=1, train_size=8, heldout_size=8, response_length=64)
    if args.eval_every:
        sizes = replace(sizes, eval_every=args.eval_every)
    if args.lr:
        sizes = replace(sizes, lr=args.lr)
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    teach_steps = 20 if args.smoke else None  # the smoke run checks the plumbing, not the skill
    step0 = {seed: build_base(seed, args.out / "base" / f"seed{seed}", sizes, say, teach_steps) for seed in seeds}
    runs: dict[str, dict[int, dict]] = {m: {} for m in methods}
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))

    def one(method: str, seed: int) -> None:
        out = args.out / "runs" / method / f"seed{seed}"
        base = args.out / "base" / f"seed{seed}"
        record = run_one(method, seed, base, steps, out, sizes, out / "log.txt", threads, args.reuse)
        runs[method][seed] = record
        say(
            f"{method} seed {seed}: held-out {record['heldout_acc']:.3f} (initially unsolved "
            f"{record['heldout_acc_initially_unsolved']:.3f}), {record['wall_s']:.0f} s"
        )

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(one, method, seed) for seed in seeds for method in methods]:
            future.result()
    runs = {method: dict(sorted(by_seed.items())) for method, by_seed in runs.items()}
    summary = summarize(runs, step0)
    summary["settings"] = {
        "steps": steps,
        "sizes": asdict(sizes),
        "seeds": seeds,
        "step0_k": STEP0_K,
        "jobs": args.jobs,
        "wall_s": time.perf_counter() - started,
        **provenance(),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out)
    print("\n".join(table(summary)))
    if "grpo" in runs and "eprli" in runs:
        gap = statistics.fmean(runs["eprli"][s]["heldout_acc"] - runs["grpo"][s]["heldout_acc"] for s in seeds)
        print(f"eprli - grpo held-out unassisted accuracy: {gap:+.3f} (mean over {len(seeds)} seed(s))")
        cost = statistics.fmean(runs["eprli"][s]["wall_s"] / runs["grpo"][s]["wall_s"] for s in seeds)
        print(f"eprli / grpo wall time per run: {cost:.2f}x (same steps, prompts and group size)")
    print(f"summary: {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
