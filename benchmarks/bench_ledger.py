"""Benchmark: the ledger's cost per step (records + one parquet part) as a share of the advantage step.

The batch: ``--prompts`` prompt groups of ``--group`` sessions (default 512 x 16 = 8192 sessions) of ``--length``
tokens, built as ``benchmarks/bench_advantage.py`` builds it (half the groups hinted, 4 previews each, 40 steps
per response). The advantage step is ``compute_epgrpo_advantage`` with hints and dense step rewards on that batch;
the ledger step is ``build_records`` from the per-session lists plus ``LedgerWriter.write`` into a temporary
folder, as the trainer runs them. Median of ``--repeats`` interleaved rounds after one warm-up. Target: < 5%.

Run from the repository root::

    python benchmarks/bench_ledger.py            # 512 prompts x 16 sessions x 4096 tokens
    python benchmarks/bench_ledger.py --quick    # 64 x 16 x 1024
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_advantage import make_batch  # noqa: E402

from verl_pdai.core.advantage import compute_epgrpo_advantage  # noqa: E402
from verl_pdai.ledger.records import build_records  # noqa: E402
from verl_pdai.ledger.writer import LedgerWriter  # noqa: E402
from verl_pdai.plugin.advantage_inputs import epgrpo_inputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="64 prompts x 1024 tokens, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.length = 64, 1024
    batch_args = argparse.Namespace(
        batch=args.prompts * args.group, length=args.length, group=args.group, preview=4, hint_tokens=256, steps=40,
        seed=0,
    )  # fmt: skip
    data = make_batch(batch_args, torch.device("cpu"))
    inputs = epgrpo_inputs(data["fields"], data["rewards"])
    outcome = inputs.pop("pdai_outcome_scores")

    def advantage() -> object:
        return compute_epgrpo_advantage(
            outcome, data["hint_mask"], data["uid"], data["level"], data["start"],
            inputs["pdai_step_rewards"], inputs["pdai_step_mask"], process_weight=0.1,
        )  # fmt: skip

    # the per-session lists the trainer hands to build_records
    n = batch_args.batch
    rng = random.Random(0)
    uids = [str(u) for u in data["uid"]]
    pids = [f"deepscaler/{u}" for u in uids]
    session = [i % args.group for i in range(n)]
    levels = data["level"].tolist()
    sessions = {
        "group_ids": uids,
        "problem_ids": pids,
        "data_sources": ["deepscaler"] * n,
        "roles": ["preview" if s < batch_args.preview else "main" for s in session],
        "hint_levels": levels,
        "hint_tokens": [256 if level else 0 for level in levels],
        "outcomes": outcome.tolist(),
        "difficulties": [rng.random() if s >= batch_args.preview else -1.0 for s in session],
        "prior_alphas": [rng.uniform(1, 9) for _ in range(n)],
        "prior_betas": [rng.uniform(1, 9) for _ in range(n)],
    }
    posteriors = {pid: (rng.uniform(1, 9), rng.uniform(1, 9)) for pid in pids}
    visits = {pid: rng.randint(1, 9) for pid in pids}

    with tempfile.TemporaryDirectory() as folder:
        writer = LedgerWriter(Path(folder) / "pdai_ledger")
        step = iter(range(1, 10**6))

        def ledger() -> object:
            index = next(step)
            columns = build_records(index, **sessions, posteriors=posteriors, visits=visits)
            return writer.write(index, columns)

        times: dict[str, list[float]] = {"advantage": [], "ledger": []}
        fns = {"advantage": advantage, "ledger": ledger}
        for fn in fns.values():
            fn()
        order = list(fns)
        for _ in range(args.repeats):
            random.Random(len(times["ledger"])).shuffle(order)
            for name in order:
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
        part_bytes = writer.bytes_on_disk() // max(1, len(list(writer.directory.glob("step_*.parquet"))))
        assert writer.errors == 0

    adv, led = statistics.median(times["advantage"]), statistics.median(times["ledger"])
    share = led / adv
    print(
        f"{args.prompts} prompts x {args.group} sessions x {args.length} tokens; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; median of {args.repeats} rounds"
    )
    print(f"advantage step (compute_epgrpo_advantage, hints + steps): {adv * 1e3:.1f} ms")
    print(
        f"ledger step (build_records + LedgerWriter.write):          {led * 1e3:.1f} ms ({part_bytes} bytes per part)"
    )
    verdict = "ok" if share < 0.05 else "MISSED"
    print(f"ledger / advantage: {share:.1%} (target < 5%: {verdict})")


if __name__ == "__main__":
    main()
