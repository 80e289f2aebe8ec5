"""Benchmark: what the plugin costs every process that imports verl (the driver and every Ray worker).

Each sample is a fresh interpreter that times ``import verl`` and reports its peak resident memory, with the
plugin's entry point on (verl's default) and off (``VERL_USE_EXTERNAL_PLUGINS=none``), alternating so that both
see the same machine load. A second pair times a reward-only process: ``import verl`` plus verl's reward-loop
manager registry (which registers ``pdai_stepwise``, hence imports our reward manager) and records whether
matplotlib or TransferQueue came with it.

    python benchmarks/bench_import.py [--repeats 7] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, resource, sys, time
started = time.perf_counter()
import verl
{extra}
seconds = time.perf_counter() - started
print(json.dumps({{
    "seconds": seconds,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "modules": len(sys.modules),
    "heavy": sorted(m for m in ("matplotlib", "transfer_queue", "verl_pdai.plugin.trainer") if m in sys.modules),
}}))
"""
CASES = {
    "import verl": "",
    "import verl + reward-loop registry": "import verl.experimental.reward_loop.reward_manager",
}
TARGET_S, TARGET_MB = 0.5, 30.0  # issue 13: registering the components, per `import verl`


def sample(extra: str, plugin: bool) -> dict:
    env = {**os.environ, "VERL_USE_EXTERNAL_PLUGINS": "auto" if plugin else "none"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(extra=extra)], capture_output=True, text=True, env=env, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(extra: str, repeats: int) -> dict[bool, list[dict]]:
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for index in range(repeats):
        for plugin in (index % 2 == 0, index % 2 != 0):  # alternate which goes first
            runs[plugin].append(sample(extra, plugin))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for label, extra in CASES.items():
        runs = measure(extra, args.repeats)
        median = {
            plugin: {k: statistics.median(r[k] for r in runs[plugin]) for k in ("seconds", "rss_mb", "modules")}
            for plugin in runs
        }
        heavy = sorted({m for r in runs[True] for m in r["heavy"]} - {m for r in runs[False] for m in r["heavy"]})
        rows.append((label, median[False], median[True], heavy))
    print(f"median of {args.repeats} fresh interpreters each, plugin off (VERL_USE_EXTERNAL_PLUGINS=none) vs on")
    header = "| process | off s | on s | + s | off MB | on MB | + MB | + modules | heavy modules the plugin added |"
    print(header if args.markdown else header.replace("|", " "))
    if args.markdown:
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, off, on, heavy in rows:
        cells = [
            label,
            f"{off['seconds']:.2f}",
            f"{on['seconds']:.2f}",
            f"{on['seconds'] - off['seconds']:+.2f}",
            f"{off['rss_mb']:.0f}",
            f"{on['rss_mb']:.0f}",
            f"{on['rss_mb'] - off['rss_mb']:+.0f}",
            f"{on['modules'] - off['modules']:+.0f}",
            ", ".join(heavy) or "none",
        ]
        print("| " + " | ".join(cells) + " |" if args.markdown else "  ".join(cells))
    _, off, on, _ = rows[0]
    added_s, added_mb = on["seconds"] - off["seconds"], on["rss_mb"] - off["rss_mb"]
    met = added_s <= TARGET_S and added_mb <= TARGET_MB
    print(
        f"import verl with / without the plugin: {on['seconds'] / off['seconds']:.2f}x time, "
        f"{on['rss_mb'] / off['rss_mb']:.2f}x peak memory"
    )
    print(
        f"plugin cost per import verl: {added_s:+.2f} s, {added_mb:+.0f} MB "
        f"(target <= +{TARGET_S} s, +{TARGET_MB:.0f} MB: {'met' if met else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
