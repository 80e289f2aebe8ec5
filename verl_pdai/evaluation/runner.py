"""One evaluation: generate k samples per problem, check them, compute the metrics, write the files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.evaluation.backends import GenerationBackend, check_samples
from verl_pdai.evaluation.checking import CheckJob, check_all
from verl_pdai.evaluation.data import EvalProblem
from verl_pdai.evaluation.metrics import ProblemOutcome, average_metrics, benchmark_metrics
from verl_pdai.evaluation.outputs import ProblemRecord, format_table, write_csv, write_samples, write_summary


@dataclass(frozen=True)
class EvalSettings:
    model: str
    k: int = 16
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    seed: int = 0
    checker: StepwiseConfig = StepwiseConfig()


def _progress(what: str, every: int):
    def report(done: int, total: int) -> None:
        if done == total or done % every == 0:
            print(f"  {what}: {done}/{total}", flush=True)

    return report


def run_evaluation(
    problems: Sequence[EvalProblem], backend: GenerationBackend, settings: EvalSettings, out_dir: Path
) -> dict[str, object]:
    """Evaluate ``problems`` (every benchmark at once: one generation call) and write ``out_dir``'s files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"generating {settings.k} samples for {len(problems)} problems with {backend.name}", flush=True)
    prompts = [p.prompt for p in problems]
    s = settings
    outputs = backend.generate(prompts, s.k, s.temperature, s.top_p, s.max_tokens, s.seed)
    check_samples(outputs, len(problems), settings.k, backend.name)
    generated = time.monotonic()
    jobs = [CheckJob(text, p.ground_truth) for p, samples in zip(problems, outputs, strict=True) for text, _ in samples]
    print(f"checking {len(jobs)} responses with {settings.checker.num_workers} workers", flush=True)
    verdicts = check_all(jobs, settings.checker, _progress("checked", max(1, -(-len(jobs) // 10))))
    records = [
        ProblemRecord(
            problem=p,
            responses=[text for text, _ in samples],
            num_tokens=[int(n) for _, n in samples],
            verdicts=verdicts[i * settings.k : (i + 1) * settings.k],
        )
        for i, (p, samples) in enumerate(zip(problems, outputs, strict=True))
    ]
    per_benchmark: dict[str, dict[str, object]] = {}
    for name in dict.fromkeys(p.benchmark for p in problems):
        mine = [r for r in records if r.problem.benchmark == name]
        outcomes = [ProblemOutcome(tuple(v.correct for v in r.verdicts), tuple(r.num_tokens)) for r in mine]
        per_benchmark[name] = benchmark_metrics(outcomes, settings.k, settings.max_tokens)
        per_benchmark[name]["check_failures"] = sum(v.failed for r in mine for v in r.verdicts)
    average = average_metrics(per_benchmark)
    summary: dict[str, object] = {
        "model": settings.model,
        "k": settings.k,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "backend": backend.name,
        "thinking": settings.checker.thinking,
        "benchmarks": per_benchmark,
        "average": average,
        "generation_s": round(generated - started, 1),
        "checking_s": round(time.monotonic() - generated, 1),
    }
    write_samples(out_dir / "samples.jsonl", records)
    write_summary(out_dir / "summary.json", summary)
    write_csv(out_dir / "summary.csv", per_benchmark, average)
    print(format_table(per_benchmark, average, settings.k))
    print(f"wrote {out_dir / 'samples.jsonl'}, summary.json, summary.csv")
    return summary
