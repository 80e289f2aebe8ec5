"""Smoke runs of every script in benchmarks/: each runs at a tiny size in its own process, exits 0 and prints the
line its figures lead to (a ratio, or for gpu_check the generated tokens).

The sizes only check that a script still runs end to end: the timings are noise and no target is asserted. Two
runs at a time (the machine has 2 cores), the slowest first: they overlap the imports of verl, which cost most of
each run. The runs a session selected start when the first of them is needed.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import qwen_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900  # a loaded CI machine; a smoke run takes 2-20 s on an idle one (bench_learning: minutes)


@dataclass(frozen=True)
class Smoke:
    args: Callable[[Path], list[str]]  # command line after the interpreter, given a scratch folder
    ratio_line: str  # regex (multiline) of the line the script's figures lead to; group 1: its number


SMOKES: dict[str, Smoke] = {
    # the slowest first (it teaches a model and trains two methods), then the two that import verl
    "bench_learning": Smoke(
        lambda scratch: ["benchmarks/bench_learning.py", "--smoke", "--out", str(scratch / "learning")],
        r"^eprli / grpo wall time per run: (\d+\.\d+)x",
    ),
    "bench_rollout": Smoke(
        lambda _: ["benchmarks/bench_rollout.py", "--smoke"],
        r"^pdai_hint / single_turn = (\d+\.\d+)x \(target <= 1\.1x: (?:met|NOT met)\); blocking / single_turn = \d",
    ),
    "bench_reward": Smoke(
        lambda _: ["benchmarks/bench_reward.py", "--smoke"],
        r"^pdai / naive-default throughput\s+(\d+\.\d+)\s+>= 0\.50",
    ),
    "bench_advantage": Smoke(
        lambda _: ["benchmarks/bench_advantage.py", "--batch", "64", "--length", "256", "--repeats", "1"],
        r"^epgrpo, hints \+ steps\s+\d+\.\d+\s+\d+\.\d+\s+(\d+\.\d+)x",
    ),
    "gpu_check": Smoke(
        lambda scratch: [
            "benchmarks/gpu_check.py",
            "--smoke",
            "--tokenizer",
            str(qwen_tokenizer_dir()),
            "--out",
            str(scratch / "gpu_check"),
        ],
        r'^\s*"generated_tokens": (\d+)',
    ),
    "bench_import": Smoke(
        lambda _: ["benchmarks/bench_import.py", "--repeats", "1"],
        r"^import verl with / without the plugin: (\d+\.\d+)x time, \d+\.\d+x peak memory",
    ),
    "bench_ledger": Smoke(
        lambda _: ["benchmarks/bench_ledger.py", "--quick"],
        r"^ledger / advantage: (\d+\.\d+)% \(target < 5%",
    ),
    "bench_signal": Smoke(
        lambda _: ["benchmarks/bench_signal.py", "--quick"],
        r"^signal per rollout spent vs plain GRPO: EPRLI \(warm store\) (\d+\.\d+)x, DAPO \d+\.\d+x",
    ),
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self) -> str:
        head = f"exit {self.returncode} after {self.seconds:.1f} s"
        return f"{head}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


def _run(name: str, scratch: Path) -> Run:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *SMOKES[name].args(scratch)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.perf_counter() - t0)


@dataclass
class Smokes:
    runs: dict[str, Future]
    scratch: Path

    def result(self, name: str) -> Run:
        return self.runs[name].result(timeout=2 * TIMEOUT_S)


# tests that read a smoke run besides test_benchmark_smoke, and the run they read
READERS = {
    "test_bench_rollout_smoke_exercises_both_parts_and_the_hinted_path": "bench_rollout",
    "test_gpu_check_smoke_writes_its_report": "gpu_check",
    "test_bench_learning_smoke_writes_the_summary_and_curves": "bench_learning",
}


@pytest.fixture(scope="module")
def smokes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smokes]:
    # Start every smoke run this session selected (-k may pick a few), in SMOKES' order, two at a time.
    wanted = set()
    for item in request.session.items:
        name = getattr(item, "originalname", None)
        if name == "test_benchmark_smoke" and hasattr(item, "callspec"):
            wanted.add(item.callspec.params["name"])
        elif name in READERS:
            wanted.add(READERS[name])
    scratch = tmp_path_factory.mktemp("benchmark_smoke")
    pool = ThreadPoolExecutor(max_workers=2)
    yield Smokes({name: pool.submit(_run, name, scratch) for name in SMOKES if name in wanted}, scratch)
    pool.shutdown(wait=True, cancel_futures=True)


def test_every_benchmark_has_a_smoke_run():
    scripts = {path.stem for path in (REPO / "benchmarks").glob("*.py")}
    assert scripts == set(SMOKES)


@pytest.mark.parametrize("name", list(SMOKES))
def test_benchmark_smoke(name: str, smokes: Smokes) -> None:
    run = smokes.result(name)
    assert run.returncode == 0, run.tail()
    found = re.search(SMOKES[name].ratio_line, run.stdout, re.MULTILINE)
    assert found, f"no line matching {SMOKES[name].ratio_line!r}\n{run.tail()}"
    value = float(found.group(1))
    assert math.isfinite(value) and value > 0, found.group(0)


def test_bench_rollout_smoke_exercises_both_parts_and_the_hinted_path(smokes: Smokes) -> None:
    run = smokes.result("bench_rollout")
    assert re.search(r"^worst unhinted wall ratio \d+\.\d+x", run.stdout, re.MULTILINE), run.tail()
    # the hard groups' main sessions were hinted: the whole decision and injection path ran
    assert re.search(r"^  hinted: pdai decisions \{[^}]*'hinted': [1-9]", run.stdout, re.MULTILINE), run.tail()


def test_gpu_check_smoke_writes_its_report(smokes: Smokes) -> None:
    run = smokes.result("gpu_check")
    assert run.returncode == 0, run.tail()
    for setting in ("plain", "hints", "steps"):
        line = rf"^epgrpo {setting}\s+cpu median \d+\.\d+ ms \(equals the CPU result\)"
        assert re.search(line, run.stdout, re.MULTILINE), run.tail()
    report = json.loads((smokes.scratch / "gpu_check" / "gpu_check.json").read_text())
    assert report["device"] == "cpu (smoke run)"
    assert report["epgrpo"]["shape"] == "64 x 256, groups of 16"
    assert report["eval_hf"]["generated_tokens"] > 0


def test_bench_learning_smoke_writes_the_summary_and_curves(smokes: Smokes) -> None:
    run = smokes.result("bench_learning")
    assert run.returncode == 0, run.tail()
    out = smokes.scratch / "learning"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"grpo", "eprli"}
    for method in summary["methods"].values():
        seed = method["seeds"]["0"]
        for key in ("heldout_acc", "heldout_acc_initially_unsolved", "train_unassisted_acc", "wall_s"):
            assert 0.0 <= seed[key] and math.isfinite(seed[key])
        assert seed["rollouts"] > 0
        assert [point["step"] for point in seed["curve"]] == [0, 2]  # step 0 (the base model) and the last step
    for method in ("grpo", "eprli"):
        record = json.loads((out / "runs" / method / "seed0" / "run.json").read_text())
        assert record["actor_updates"] == 2  # verl's actor updated the model at both steps
        assert record["served_weight_change"] > 0  # and the model the held-out evaluation sampled from moved
    for name in ("heldout_acc", "heldout_acc_initially_unsolved", "intervention_rate", "hint_level"):
        assert (out / f"{name}.png").stat().st_size > 1000
