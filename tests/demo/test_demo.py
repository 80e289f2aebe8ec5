"""``verl-pdai demo`` end to end in a subprocess (its own Ray and TransferQueue), 2 steps into tmp_path.

The planted split is checked from what the run itself reports (groups printed, metrics.jsonl), against the tiers
of the shipped problem file, not against values copied from the code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from verl_pdai.demo.problems import load_problems

STEPS = 2


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.run(
        [sys.executable, "-m", "verl_pdai.cli", "demo", "--steps", str(STEPS), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return process, out


def _groups(stdout: str) -> list[dict]:
    """Each printed group: its header line and its session lines."""
    groups: list[dict] = []
    for line in stdout.splitlines():
        head = re.search(r"(demo/\S+) \[(\w+)\]\s+store prior Beta.*preview (\d+)/(\d+) -> p = ([\d.]+)", line)
        if head:
            groups.append({"id": head[1], "tier": head[2], "preview": (int(head[3]), int(head[4])), "sessions": []})
            continue
        session = re.search(r"s(\d) (preview|main)\s+(\S+)\s+(no hint|hint L(\d) tokens \[(\d+), (\d+)\))", line)
        if session and groups:
            groups[-1]["sessions"].append({"role": session[2], "level": int(session[5] or 0), "line": line})
        outcome = re.search(r"outcome (\d)\s+reward ([+-][\d.]+)\s+steps \[.*\]\s+adv before/after hint", line)
        if outcome and groups:
            groups[-1]["sessions"][-1]["acc"] = int(outcome[1])
    return groups


def test_demo_exits_cleanly_and_prints_every_group(demo_run):
    process, _ = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    groups = _groups(process.stdout)
    assert len(groups) == STEPS * 4  # 4 prompts per step
    for group in groups:
        assert len(group["sessions"]) == 4 and all("acc" in s for s in group["sessions"])
        assert [s["role"] for s in group["sessions"]] == ["preview", "preview", "main", "main"]
    assert process.stdout.count("metrics: score") == STEPS


def test_taught_model_previews_follow_the_planted_split(demo_run):
    process, _ = demo_run
    tiers = {p.problem_id: p.tier for p in load_problems()}
    groups = _groups(process.stdout)
    assert {g["tier"] for g in groups} >= {"easy", "hard"}
    for group in groups:
        assert group["tier"] == tiers[group["id"]]
        successes, trials = group["preview"]
        assert trials == 2
        if group["tier"] == "easy":
            assert successes == 2 and all(s["level"] == 0 for s in group["sessions"])
        else:
            assert successes == 0
            assert all(s["level"] > 0 for s in group["sessions"] if s["role"] == "main")
    hinted = [s for g in groups for s in g["sessions"] if s["level"] > 0]
    assert any(s["acc"] == 1 for s in hinted)


def test_metrics_file_has_one_line_per_step_with_pdai_metrics(demo_run):
    _, out = demo_run
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    for line in lines:
        data = line["data"]
        for key in ("pdai/intervention_rate", "pdai/role/preview", "pdai/adv/signal_groups_final", "critic/score/mean"):
            assert key in data
        assert 0 < data["pdai/intervention_rate"] < 1  # easy groups unhinted, the others hinted
    assert (out / "checkpoints" / f"global_step_{STEPS}" / "pdai_state.json").exists()


def test_bad_model_path_fails_with_a_clear_message(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.run(
        [sys.executable, "-m", "verl_pdai.cli", "demo", "--model", str(tmp_path / "nope"), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2 and "--model" in process.stderr and "not a folder" in process.stderr


def test_ledger_and_report_record_every_printed_group(demo_run):
    process, out = demo_run
    from verl_pdai.ledger import read_ledger

    ledger = read_ledger(out / "checkpoints" / "pdai_ledger")
    printed = {(step, g["id"]) for step, chunk in enumerate(_steps(process.stdout), start=1) for g in _groups(chunk)}
    assert {(int(s), p) for s, p in zip(ledger["step"], ledger["problem_id"], strict=True)} == printed
    for group in _groups(process.stdout):
        rows = ledger[ledger["problem_id"] == group["id"]]
        assert (rows["preview_successes"] == group["preview"][0]).all()
    pictures = {path.name for path in (out / "report").glob("*.png")}
    assert {"ledger_intervention.png", "ledger_difficulty_heatmap.png", "reward.png"} <= pictures
    assert "verl-pdai ledger" in process.stdout


def _steps(stdout: str) -> list[str]:
    """The printed output cut after each step's metrics line: one chunk per training step."""
    chunks, current = [], []
    for line in stdout.splitlines():
        current.append(line)
        if "metrics: score" in line:
            chunks.append("\n".join(current))
            current = []
    return chunks


def _accuracy(stdout: str, when: str) -> dict[str, tuple[int, int]]:
    line = re.search(rf"unassisted accuracy {when} training:\s+[\d.]+ \((.*) samples correct\)", stdout)
    assert line, f"no '{when}' accuracy line"
    return {tier: (int(c), int(n)) for tier, c, n in re.findall(r"(\w+) (\d+)/(\d+)", line[1])}


def test_verls_actor_updates_the_model_and_the_accuracy_is_measured_before_and_after(demo_run):
    process, out = demo_run
    moved = re.search(
        r"the actor updated the model (\d+) time\(s\): (\d+) of (\d+) parameter tensors changed", process.stdout
    )
    assert moved, process.stdout[-2000:]
    assert int(moved[1]) == STEPS
    assert int(moved[2]) == int(moved[3]) > 0  # every tensor of the served model moved
    tiers = {p.tier for p in load_problems()}
    samples = {tier: 8 * sum(p.tier == tier for p in load_problems()) for tier in tiers}
    before, after = _accuracy(process.stdout, "before"), _accuracy(process.stdout, "after")
    assert {t: n for t, (_, n) in before.items()} == samples == {t: n for t, (_, n) in after.items()}
    # the taught split, measured unassisted: easy problems solved, hard ones not
    assert before["easy"][0] > before["hard"][0]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for record in lines:
        data = record.get("data", record)
        assert data["actor/grad_norm"] > 0 and data["actor/lr"] > 0  # verl's actor reported a real update
