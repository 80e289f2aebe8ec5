"""Benchmark: ``epgrpo`` vs verl's ``grpo`` and ``grpo_vectorized`` on the same batch, same process.

All estimators are called the way verl 0.9.1's ``compute_advantage`` calls a registered estimator
(``token_level_rewards``, ``response_mask``, ``index`` = the ``uid`` strings, ``config``), so each timing includes
the score sum, the grouping of the uid strings and the ``[B, T]`` product with the mask. ``epgrpo`` is timed
through its verl adapter (``verl_pdai.plugin.advantage``) in three settings:

* ``no hints, no steps``: must equal ``grpo`` (checked here too), target <= 1.1x ``grpo``;
* ``hints``: half the groups hinted (preview sessions unhinted, levels 1-3, a masked hint span per hinted response);
* ``hints + steps``: the same plus dense step rewards (``--steps`` per response), target <= 1.5x ``grpo``.

The batch: ``--batch`` responses of ``--length`` tokens in groups of ``--group``, response lengths uniform in
``[length/8, length]``, an int64 ``response_mask`` (verl's dtype), outcome 0/1 on the last token. Timings: one
warm-up call each, then ``--repeats`` rounds in which every method runs once, in a shuffled order (a noisy
neighbour slows all methods alike); the median and the minimum are reported, with the load average. Building
the dense step tensors from the reward manager's JSON lists (``epgrpo_inputs``) is timed separately: it is
Python over the samples and runs once per batch.

Run from the repository root::

    python benchmarks/bench_advantage.py            # 4096 x 8192, groups of 16 (needs ~3 GB of memory)
    python benchmarks/bench_advantage.py --quick    # 512 x 1024
    python benchmarks/bench_advantage.py --markdown # also print a markdown section
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def make_batch(args: argparse.Namespace, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(args.seed)
    bsz, seq_len, group = args.batch, args.length, args.group
    lengths = torch.randint(max(1, seq_len // 8), seq_len + 1, (bsz,), generator=gen)
    positions = torch.arange(seq_len)
    mask = (positions[None, :] < lengths[:, None]).long()
    outcome = torch.randint(0, 2, (bsz,), generator=gen).float()
    rewards = torch.zeros(bsz, seq_len)
    rewards[torch.arange(bsz), lengths - 1] = outcome
    uid = np.array([f"prompt-{i // group:06d}" for i in range(bsz)], dtype=object)

    # hints: every other group hinted; its first `preview` sessions run unhinted
    session = torch.arange(bsz) % group
    hinted_group = (torch.arange(bsz) // group) % 2 == 1
    hinted = hinted_group & (session >= args.preview)
    level = torch.where(hinted, 1 + session % 3, torch.zeros_like(session))
    start = torch.where(hinted, (lengths // 4).clamp_min(1), torch.full_like(lengths, -1))
    span = torch.clamp(torch.minimum(torch.full_like(lengths, args.hint_tokens), lengths - start - 1), min=0)
    in_hint = hinted[:, None] & (positions[None, :] >= start[:, None]) & (positions[None, :] < (start + span)[:, None])
    hint_mask = mask.masked_fill(in_hint, 0)

    # steps: `steps` per response, ends spread over the response, small capped rewards as pdai_stepwise gives
    n_steps = args.steps
    frac = torch.sort(torch.rand(bsz, n_steps, generator=gen), dim=1).values
    ends = torch.clamp((frac * lengths[:, None]).long(), max=(lengths - 1)[:, None])
    ends = torch.where(in_hint.gather(1, ends), (start + span)[:, None].expand_as(ends), ends)  # not on a hint token
    ends = torch.minimum(ends, (lengths - 1)[:, None])
    scores = (torch.randint(-2, 3, (bsz, n_steps), generator=gen).float() * 0.2 / n_steps).tolist()
    fields = {
        "step_scores": np.array([json.dumps(row) for row in scores], dtype=object),
        "step_token_ends": np.array([json.dumps(row) for row in ends.tolist()], dtype=object),
        # pdai_stepwise reports its outcome part explicitly; the trainer reads it, never total minus steps
        "outcome": np.array(rewards.sum(-1).tolist(), dtype=object),
    }
    return {
        "rewards": rewards.to(device),
        "mask": mask.to(device),
        "hint_mask": hint_mask.to(device),
        "uid": uid,
        "level": level.to(device),
        "start": start.to(device),
        "fields": fields,
    }


def timed(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for fn in fns.values():  # warm-up
        fn()
        sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    rng = random.Random(0)
    for _ in range(repeats):
        rng.shuffle(order)  # a different order each round: no method always follows the same neighbour
        for name in order:
            fn = fns[name]
            gc.collect()
            sync()
            t0 = time.perf_counter()
            result = fn()
            sync()
            times[name].append(time.perf_counter() - t0)
            del result
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--preview", type=int, default=4, help="unhinted preview sessions per hinted group")
    parser.add_argument("--hint-tokens", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="steps per response")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="512 x 1024, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section too")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.length = 512, 1024
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    import verl_pdai.plugin.advantage  # noqa: F401  registers epgrpo
    from verl_pdai.plugin.advantage_inputs import epgrpo_inputs

    device = torch.device(args.device)
    data = make_batch(args, device)
    config = AlgoConfig(adv_estimator="epgrpo", norm_adv_by_std_in_grpo=True)
    grpo = get_adv_estimator_fn("grpo")
    grpo_vec = get_adv_estimator_fn("grpo_vectorized")
    epgrpo = get_adv_estimator_fn("epgrpo")
    rewards, mask, hint_mask, uid = data["rewards"], data["mask"], data["hint_mask"], data["uid"]

    t0 = time.perf_counter()
    step_kwargs = epgrpo_inputs(data["fields"], rewards)
    build_s = time.perf_counter() - t0
    step_kwargs.pop("pdai_outcome_scores")  # keep the score sum inside the timed call, as for grpo
    hint_kwargs = {"pdai_hint_level": data["level"], "pdai_hint_start": data["start"]}

    # correctness on the very batch timed
    torch.testing.assert_close(
        epgrpo(token_level_rewards=rewards, response_mask=mask, index=uid, config=config)[0],
        grpo(token_level_rewards=rewards, response_mask=mask, index=uid, config=config)[0],
    )

    fns: dict[str, Callable[[], object]] = {
        "grpo": lambda: grpo(token_level_rewards=rewards, response_mask=mask, index=uid, config=config),
        "grpo_vectorized": lambda: grpo_vec(token_level_rewards=rewards, response_mask=mask, index=uid, config=config),
        "epgrpo, no hints, no steps": lambda: epgrpo(
            token_level_rewards=rewards, response_mask=mask, index=uid, config=config
        ),
        "epgrpo, hints": lambda: epgrpo(
            token_level_rewards=rewards, response_mask=hint_mask, index=uid, config=config, **hint_kwargs
        ),
        "epgrpo, hints + steps": lambda: epgrpo(
            token_level_rewards=rewards,
            response_mask=hint_mask,
            index=uid,
            config=config,
            **hint_kwargs,
            **step_kwargs,
        ),
    }
    load_before = os.getloadavg()[0]
    times = timed(fns, args.repeats, device)
    load_after = os.getloadavg()[0]
    med = {name: statistics.median(ts) for name, ts in times.items()}
    targets = {"epgrpo, no hints, no steps": 1.1, "epgrpo, hints": 1.1, "epgrpo, hints + steps": 1.5}

    env = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, device {device}, "
        f"1-min load average {load_before:.1f} -> {load_after:.1f}"
    )
    shape = f"{args.batch} responses x {args.length} tokens, groups of {args.group}, {args.steps} steps/response"
    print(f"{shape}; {env}")
    print(f"{'method':32s} {'median ms':>10s} {'min ms':>8s} {'vs grpo':>8s} {'vs grpo_vec':>11s}  target")
    rows = []
    for name, ts in times.items():
        ratio, ratio_vec = med[name] / med["grpo"], med[name] / med["grpo_vectorized"]
        target = targets.get(name)
        if target is None:
            verdict = ""
        elif args.quick:  # the targets are for the default size; a smoke run is dominated by fixed costs and noise
            verdict = f"(target <= {target}x at the default size)"
        else:
            verdict = f"<= {target}x grpo: {'ok' if ratio <= target else 'MISSED'}"
        rows.append((name, med[name] * 1e3, min(ts) * 1e3, ratio, ratio_vec, verdict))
        print(f"{name:32s} {med[name] * 1e3:10.1f} {min(ts) * 1e3:8.1f} {ratio:7.2f}x {ratio_vec:10.2f}x  {verdict}")
    print(f"epgrpo_inputs (dense step tensors from the JSON lists, once per batch): {build_s * 1e3:.1f} ms")

    if args.markdown:
        print("\n## Benchmark: `epgrpo` vs verl's `grpo` / `grpo_vectorized`\n")
        print(f"{shape}; {env}; median of {args.repeats} interleaved rounds after one warm-up.\n")
        print("| method | median ms | min ms | vs `grpo` | vs `grpo_vectorized` | target |")
        print("|---|---:|---:|---:|---:|---|")
        for name, median_ms, min_ms, ratio, ratio_vec, verdict in rows:
            print(f"| {name} | {median_ms:.1f} | {min_ms:.1f} | {ratio:.2f}x | {ratio_vec:.2f}x | {verdict} |")
        print(f"\nBuilding the dense step tensors from the reward manager's JSON lists: {build_s * 1e3:.1f} ms.")


if __name__ == "__main__":
    main()
