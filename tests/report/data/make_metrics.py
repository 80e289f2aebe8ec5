"""Writes run_metrics.jsonl: a 20-step pdai_sync run as verl's FileLogger records it (regenerate: python this file).

What it holds, on purpose: validation before training (step 0) and every 10 steps, on two data sources (one with
a slash in its name); every metric the pdai trainer emits today plus verl's own; a resume from the step-10
checkpoint, so steps 11 and 12 are logged twice (the second run's values must win); a truncated line (a crash
mid-write); a line whose values are not numbers. No pdai/acc_by_difficulty/* (the trainer does not log it yet).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

OUT = Path(__file__).with_name("run_metrics.jsonl")


def train_metrics(step: int, rng: random.Random, run: int) -> dict[str, float]:
    t = step / 20
    noise = lambda scale: rng.uniform(-scale, scale)  # noqa: E731
    intervention = max(0.0, 0.55 - 0.35 * t + noise(0.04))
    acc_unhinted = min(1.0, 0.30 + 0.30 * t + noise(0.03))
    acc_hinted = min(1.0, 0.45 + 0.15 * t + noise(0.05))
    acc_main = intervention * acc_hinted + (1 - intervention) * acc_unhinted
    length = 2600 + 900 * t + 200 * run + noise(80)
    metrics = {
        "training/global_step": step,
        "training/epoch": 0,
        "critic/score/mean": acc_main + 0.15 + noise(0.02),
        "critic/score/max": 1.25,
        "critic/score/min": -0.2,
        "critic/rewards/mean": acc_main + 0.14 + noise(0.02),
        "critic/advantages/mean": noise(0.01),
        "critic/advantages/max": 2.1,
        "response_length/mean": length,
        "response_length/max": 8192 if step > 12 else 7900 + 20 * step,
        "response_length/min": 310,
        "response_length/clip_ratio": max(0.0, 0.02 + 0.05 * t + noise(0.01)),
        "prompt_length/mean": 142.5,
        "actor/entropy": 0.62 - 0.1 * t,
        "actor/pg_loss": noise(0.05),
        "actor/grad_norm": 0.3 + noise(0.1),
        "actor/reward_kl_penalty": 0.0,
        "timing_s/step": 410 + noise(30),
        "perf/throughput": 1800 + noise(100),
        "pdai/role/preview": 0.25,
        "pdai/role/main": 0.75,
        "pdai/role/validation": 0.0,
        "pdai/hint_token_share": intervention * 0.2,
        "pdai/preview_pass_rate": min(1.0, 0.28 + 0.32 * t + noise(0.04)),
        "pdai/preview_unverified_rate": 0.01,
        "pdai/intervention_rate": intervention,
        "pdai/hint_level_mean": intervention * (2.0 - 0.8 * t),
        "pdai/hint_level_mean_hinted": 2.0 - 0.8 * t,
        "pdai/hint_tokens_mean_hinted": 310 - 60 * t,
        "pdai/acc_main": acc_main,
        "pdai/acc_hinted": acc_hinted,
        "pdai/acc_unhinted": acc_unhinted,
        "pdai/decided_rate": 0.97,
        "pdai/decision/easy": 1 - intervention - 0.03,
        "pdai/decision/hinted": intervention,
        "pdai/difficulty_mean": min(1.0, 0.33 + 0.3 * t),
        "pdai/previews_finished_at_decision": 0.6,
        "pdai/fallback/any": 0.02,
        "pdai/store/batch_problems": 64,
        "pdai/store/batch_trials": 64 * (2 + 6 * (1 - intervention)),
        "pdai/store/batch_success_rate": min(1.0, 0.29 + 0.31 * t + noise(0.03)),
        "pdai/store/problems": min(1280, 64 * step),
        "pdai/store/mean_p": 0.4 + 0.2 * t,
        "pdai/store/share_p_below_0.1": 0.3 - 0.15 * t,
        "pdai/store/share_p_above_0.9": 0.05 + 0.2 * t,
        "pdai/store/mean_evidence": 2.0 + step * 0.4,
        "pdai/store/step": step,
        "pdai/policy/batch_observations": 48,
        "pdai/policy/w": 3.0 + 0.8 * (1 - math.exp(-step / 6)),
        "pdai/policy/n_window": min(512, 30 * step),
        "pdai/policy/calibration_gap": noise(0.05),
        "pdai/adv/signal_groups_unassisted": 0.32 + 0.1 * t + noise(0.03),
        "pdai/adv/signal_groups_outcome": 0.55 + noise(0.03),
        "pdai/adv/signal_groups_final": 0.83 + noise(0.03),
        "pdai/adv/outcome_abs_mean": 0.6,
        "pdai/adv/process_abs_mean": 0.12,
        # harvested references (no noise: the values above keep their random draws)
        "pdai/reference/coverage": 0.7 + 0.2 * t,
        "pdai/reference/coverage_dataset": 0.7,
        "pdai/reference/coverage_harvested": 0.2 * t,
        "pdai/reference/coverage_backfill": 0.0,
        "pdai/reference/coverage_corpus": 0.0,
        "pdai/hint_source/dataset": 1.0 - 0.3 * t,
        "pdai/hint_source/harvested": 0.3 * t,
        "pdai/hint_source/backfill": 0.0,
        "pdai/hint_source/corpus": 0.0,
        "pdai/harvest/references": 13 * step,
        "pdai/harvest/bytes": 13 * step * 900,
        "pdai/harvest/batch_added": 13,
    }
    return {name: round(float(value), 6) for name, value in metrics.items()}


def val_metrics(step: int) -> dict[str, float]:
    t = step / 20
    out = {}
    for source, base, gain in (("math500", 0.80, 0.05), ("HuggingFaceH4/aime_2024", 0.27, 0.06)):
        out[f"val-core/{source}/acc/mean@4"] = round(base + gain * t, 6)
        out[f"val-core/{source}/acc/best@4/mean"] = round(min(1.0, base + 0.1 + gain * t), 6)
        out[f"val-core/{source}/acc/maj@4/mean"] = round(base + 0.02 + gain * t, 6)
        out[f"val-aux/{source}/acc/std@4"] = 0.21
        out[f"val-aux/{source}/reward/mean@4"] = round(base + 0.1 + gain * t, 6)
    return out


def main() -> None:
    rng = random.Random(5)
    lines = [json.dumps({"step": 0, "data": val_metrics(0)})]
    for step in range(1, 13):  # first run: crashes after logging step 12
        data = train_metrics(step, rng, run=0) | (val_metrics(step) if step == 10 else {})
        lines.append(json.dumps({"step": step, "data": data}))
    lines.append('{"step": 13, "data": {"critic/score/mean": 0.5')  # truncated by the crash
    for step in range(11, 21):  # resumed from the step-10 checkpoint
        data = train_metrics(step, rng, run=1) | (val_metrics(step) if step == 20 else {})
        if step == 15:
            data |= {"pdai/policy/w": "n/a", "actor/lr": None, "perf/flag": True, "pdai/policy/n_window": [1, 2]}
        lines.append(json.dumps({"step": step, "data": data}))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
