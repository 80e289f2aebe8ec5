"""``verl-pdai confidence INPUT --out DIR``: confidence per problem, the accuracy-coverage curve, the threshold
that reaches a target accuracy on a held-out split, and the answers a person should review."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from verl_pdai.cli import output_folder_problem

__all__ = ["register", "run_confidence"]

OUTPUT_FILES = ("confidence.jsonl", "coverage.csv", "threshold.json", "review.jsonl", "review.md", "coverage.png")
_MALFORMED_SHOWN = 20


def register(commands: Any) -> None:
    """Add the ``confidence`` subcommand to argparse's subparsers object."""
    parser = commands.add_parser(
        "confidence",
        help="confidence routing of evaluated answers: accuracy vs coverage, threshold, review file",
        description=__doc__,
    )
    parser.add_argument("input", help="eval samples.jsonl, or a JSONL of {problem, ground_truth?, responses: [...]}")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--target-accuracy", type=float, default=0.9, help="accuracy the threshold must reach")
    parser.add_argument("--calibration-fraction", type=float, default=0.5, help="share of problems to calibrate on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the problem-id hash split")
    parser.add_argument("--threshold", type=float, default=None, help="use this threshold instead of calibrating")
    parser.add_argument(
        "--false-claim-penalty", type=float, default=None, help="lambda in w = exp(-lambda * false claims) (ln 2)"
    )
    parser.add_argument(
        "--thinking",
        choices=("auto", "required", "off"),
        default="auto",
        help="where the final answer is read, as in the reward (required: R1-style templates that open <think>)",
    )
    parser.add_argument("--workers", type=int, default=2, help="scoring worker processes")
    parser.add_argument("--timeout-s", type=float, default=4.0, help="hard time bound per response")
    parser.set_defaults(func=run_confidence)


def _argument_problems(args: argparse.Namespace) -> list[str]:
    problems = []
    if not (0 < args.target_accuracy <= 1):
        problems.append(f"--target-accuracy {args.target_accuracy}: must be in (0, 1]")
    if not (0 < args.calibration_fraction <= 1):
        problems.append(f"--calibration-fraction {args.calibration_fraction}: must be in (0, 1]")
    if args.threshold is not None and not (0 <= args.threshold <= 1):
        problems.append(f"--threshold {args.threshold}: must be in [0, 1]")
    penalty = args.false_claim_penalty
    if penalty is not None and (not math.isfinite(penalty) or penalty < 0):
        problems.append(f"--false-claim-penalty {penalty}: must be a finite number >= 0")
    if args.workers < 1:
        problems.append(f"--workers {args.workers}: must be >= 1")
    if not (0 < args.timeout_s <= 600):
        problems.append(f"--timeout-s {args.timeout_s}: must be in (0, 600]")
    out_problem = output_folder_problem("--out", Path(args.out))
    if out_problem:  # found before the scoring, not by mkdir after it
        problems.append(out_problem)
    return problems


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run_confidence(args: argparse.Namespace) -> int:
    from verl_pdai.confidence.evidence import score_problems, stderr_progress
    from verl_pdai.confidence.inputs import InputError, read_problems
    from verl_pdai.confidence.plot import draw_coverage
    from verl_pdai.confidence.review import write_review
    from verl_pdai.confidence.routing import assign_splits, decide_threshold, labeled_curve
    from verl_pdai.confidence.selective import aurc, oracle_aurc, write_coverage_csv
    from verl_pdai.core.confidence import DEFAULT_FALSE_CLAIM_PENALTY, problem_confidence
    from verl_pdai.core.scoring import StepwiseConfig

    problems = _argument_problems(args)
    if problems:
        print("confidence: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        sources, malformed = read_problems(Path(args.input))
    except InputError as exc:
        print(f"confidence: {exc}", file=sys.stderr)
        return 2
    for bad in malformed[:_MALFORMED_SHOWN]:
        print(f"confidence: skipped line {bad.line}: {bad.reason}", file=sys.stderr)
    if len(malformed) > _MALFORMED_SHOWN:
        print(f"confidence: ... and {len(malformed) - _MALFORMED_SHOWN} more malformed lines", file=sys.stderr)
    if not sources:
        print(f"confidence: no usable rows in {args.input} ({len(malformed)} malformed lines)", file=sys.stderr)
        return 2

    penalty = DEFAULT_FALSE_CLAIM_PENALTY if args.false_claim_penalty is None else args.false_claim_penalty
    config = StepwiseConfig(num_workers=args.workers, timeout_s=args.timeout_s, thinking=args.thinking)
    evidence, unscored = score_problems(sources, config, progress=stderr_progress)
    results = [problem_confidence(samples, penalty=penalty) for samples in evidence]
    records = assign_splits(sources, results, args.calibration_fraction, args.seed)
    decision = decide_threshold(records, args.target_accuracy, args.threshold)
    curve = labeled_curve(records)
    labeled = sum(r.result.correct is not None for r in records)
    right = sum(bool(r.result.correct) for r in records)

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. no permission: checked here, the folder's shape was checked before scoring
        print(f"confidence: cannot create --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    written = [out / "confidence.jsonl"]
    with written[0].open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    write_coverage_csv(curve, out / "coverage.csv")
    written.append(out / "coverage.csv")
    review_paths, reviewed = write_review(records, decision.threshold, out)
    summary = {
        **decision.to_dict(),
        "calibration_fraction": args.calibration_fraction,
        "seed": args.seed,
        "false_claim_penalty": penalty,
        "problems": len(records),
        "labeled_problems": labeled,
        "majority_accuracy": right / labeled if labeled else None,
        "aurc": aurc(curve),
        "oracle_aurc": oracle_aurc(labeled, right) if labeled else None,
        "to_review": reviewed,
        "unscored_responses": unscored,
        "malformed_lines": len(malformed),
        "malformed": [{"line": m.line, "reason": m.reason} for m in malformed[:_MALFORMED_SHOWN]],
    }
    if summary["aurc"] is not None and summary["oracle_aurc"] is not None:
        summary["e_aurc"] = summary["aurc"] - summary["oracle_aurc"]
    (out / "threshold.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    written += [out / "threshold.json", *review_paths]
    picture = draw_coverage(
        curve, out / "coverage.png", threshold=decision.threshold, target_accuracy=args.target_accuracy
    )
    if picture is not None:
        written.append(picture)

    print(f"{len(records)} problems ({labeled} with ground truth), {len(malformed)} malformed lines skipped")
    if curve:
        print(
            f"majority-vote accuracy {_fmt(summary['majority_accuracy'])}, AURC {_fmt(summary['aurc'])} "
            f"(oracle {_fmt(summary['oracle_aurc'])})"
        )
    shown = "none (review everything)" if decision.threshold is None else f"{decision.threshold:.6g}"
    print(f"threshold {shown} [{decision.source}], target accuracy {args.target_accuracy}")
    for name, stats in (("calibration", decision.calibration), ("held-out", decision.evaluation)):
        if stats is not None:
            print(
                f"  {name}: accuracy {_fmt(stats.accuracy)} at coverage {_fmt(stats.coverage)} "
                f"({stats.accepted}/{stats.problems} accepted)"
            )
    if decision.note:
        print(f"note: {decision.note}")
    print(f"{reviewed} problems to review; wrote {', '.join(p.name for p in written)} to {out}")
    return 0
