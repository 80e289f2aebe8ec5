"""Harvested references end to end on CPU, through ``pdai_sync``: a problem without a reference is solved unassisted
at step 1 and harvested; the trainer is saved and resumed; at step 2 its previews fail and its main sessions are
hinted from the harvested reference. A second problem carries a backfilled reference of its own: it is hinted from
that (source ``backfill``) and never harvested, though a preview solves it.

Real: verl's composed config, trainer class and ``__init__``, ``RLHFDataset`` / ``StatefulDataLoader``, the rollout
worker's ``generate_sequences`` / ``_run_prompt`` / ``_agent_loop_postprocess`` into TransferQueue, ``pdai_hint``,
``pdai_stepwise`` (``thinking=required``, as the recipe), the replay buffer, verl's checkpoint save and load (the
actor's part stood in). Stood in, as in ``test_trainer_e2e.py``: the LLM server (a scripted one with the real Qwen2.5
tokenizer), the agent-loop manager's Ray actors, the actor worker group.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from unittest import mock

import pytest

from verl_pdai.core.hints import build_hints
from verl_pdai.demo.agent_harness import HarnessWorker
from verl_pdai.ledger import read_ledger
from verl_pdai.plugin import fields as F

from . import test_trainer_e2e as e2e
from .fake_server import Script, ScriptedServer
from .test_trainer_e2e import InProcessAgentLoopManager, K, N, build_trainer, make_config, read_rows

tq_session = e2e.tq_session  # Ray and TransferQueue for this module, as test_trainer_e2e starts them

THINK = "Let me think about the legs of the right triangle and what to do with them here.\n\n"
WRONG_LONG = THINK * 6 + "So the diagonal is $\\boxed{17}$."  # never closes its thinking: fails with required
LATE_BOUNDARY = (THINK.rstrip("\n") + " ") * 4 + "\n\n"  # main sessions reach their injection point late
TARGET_SOLUTION = (  # what step 1's solving preview writes after </think>: 3 steps, the last states the answer
    "The diagonal splits the rectangle into two right triangles with legs 5 and 12.\n\n"
    "By the Pythagorean theorem the squared diagonal is $5^2 + 12^2 = 169$.\n\n"
    "Taking the square root, the diagonal is $\\boxed{13}$."
)
TWO_STEPS = "Square and add: $5^2 + 12^2 = 169$.\n\nSo the diagonal is $\\boxed{13}$."  # shorter, too few steps
BACKFILLED = (
    "The diagonal splits the rectangle into two right triangles with legs 6 and 8.\n\n"
    "By the Pythagorean theorem the squared diagonal is $6^2 + 8^2 = 36 + 64 = 100$.\n\n"
    "Taking the square root, the diagonal is $\\sqrt{100} = 10$, so the answer is $\\boxed{10}$."
)
PROBLEMS = {
    "target": {
        "question": "A rectangle has sides 5 and 12. What is the length of its diagonal? Put the answer in \\boxed{}.",
        "answer": "13",
        "extra": {},  # no reference solution
        "scripts": {
            1: [
                Script(THINK + "</think>\n\n" + TARGET_SOLUTION),  # solved unassisted: harvested
                Script(WRONG_LONG),
                Script(LATE_BOUNDARY + WRONG_LONG),
                Script(LATE_BOUNDARY + "</think>\n\n" + TWO_STEPS),  # solved too, but 2 steps: not harvested
            ],
            2: [Script(WRONG_LONG)] * K
            + [Script(WRONG_LONG, "Right, so $d^2 = 169$.\n\n</think>\n\nThe diagonal is $\\boxed{13}$.")] * (N - K),
        },
    },
    "backfilled": {
        "question": "A rectangle has sides 6 and 8. What is the length of its diagonal? Put the answer in \\boxed{}.",
        "answer": "10",
        "extra": {
            "reference_solution": BACKFILLED,
            "reference_source": "backfill",
            "pdai_prior": {"alpha": 1.0, "beta": 4.0},
        },
        "scripts": {
            step: [
                Script(
                    THINK + "</think>\n\nSquare the legs: $36 + 64 = 100$.\n\nIts root is the diagonal.\n\n"
                    "So the diagonal is $\\boxed{10}$."
                ),  # fmt: skip
                Script(WRONG_LONG),
            ]
            + [Script(WRONG_LONG, "So $d^2 = 100$.\n\n</think>\n\nThe diagonal is $\\boxed{10}$.")] * (N - K)
            for step in (1, 2)
        },
    },
}
INDEX = {"target": 0, "backfilled": 1}
TARGET_ID, BACKFILLED_ID = "pdai_test/0", "pdai_test/1"
FRACTIONS = (0.0, 0.25, 0.5, 0.75)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    import pandas as pd

    rows = [
        {
            "data_source": "pdai_test",
            "prompt": [{"role": "user", "content": problem["question"]}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": problem["answer"]},
            "extra_info": {"index": INDEX[kind], "split": "train", "kind": kind, **problem["extra"]},
        }
        for kind, problem in PROBLEMS.items()
    ]
    path = tmp_path_factory.mktemp("data") / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


class Rollout:
    """The scripted server and the in-process rollout worker, shared by the trainer and its resumed copy."""

    def __init__(self, config, tokenizer) -> None:
        from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
        from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

        worker_cls = AgentLoopWorkerTQ.__ray_metadata__.modified_class

        class TQWorker(HarnessWorker):
            generate_sequences = worker_cls.generate_sequences
            _run_prompt = worker_cls._run_prompt
            _agent_loop_postprocess = worker_cls._agent_loop_postprocess

        self.step = 1
        self.loop = asyncio.new_event_loop()
        server = ScriptedServer(tokenizer, self.script_for, delay_per_token=0.002)
        self.worker = TQWorker(config, tokenizer, server, reward_worker=RewardLoopWorker(config))
        self.worker.background_tasks = set()
        self.manager = InProcessAgentLoopManager(self.worker, self.loop)

    def script_for(self, uid: str, index: int) -> Script:
        return PROBLEMS[self.manager.kind_of_uid[uid]]["scripts"][self.step][index]

    def run_step(self, trainer, step: int, tq) -> dict:
        """verl's step up to the advantage (as test_trainer_e2e), then its TransferQueue cleanup."""
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer

        self.step = trainer.global_steps = step
        trainer.agent_loop_manager = self.manager
        trainer._add_batch_to_generate()
        batch, _ = trainer.replay_buffer.sample(global_steps=step, partition_id="train", batch_size=2)
        logprobs = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields="rollout_log_probs")
        logprobs["old_log_probs"] = logprobs.pop("rollout_log_probs")
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=logprobs)
        metrics: dict = {}
        with mock.patch.object(PPOTrainer, "_compute_advantage", side_effect=AssertionError("verl's method ran")):
            trainer._compute_advantage(batch, metrics)
        rows = read_rows(tq, batch, ["extra_fields", "responses", "pdai_problem_id"])
        tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)  # verl's fit loop, step 7
        by_problem: dict[str, list[tuple[dict, list[int]]]] = {}
        for extra, ids, pid in zip(rows["extra_fields"], rows["responses"], rows["pdai_problem_id"], strict=True):
            by_problem.setdefault(pid, []).append((extra, ids.tolist()))
        return {"metrics": metrics, "by_problem": by_problem, "prompts": self.manager.batches[-1]}


@pytest.fixture(scope="module")
def run(tq_session, tokenizer_dir, tokenizer, data_file, tmp_path_factory):
    """Step 1 on a trainer, its checkpoint, step 2 on a trainer resumed from it."""
    ckpt = tmp_path_factory.mktemp("ckpt")
    config = make_config(tokenizer_dir, data_file, ckpt, "+reward.reward_kwargs.thinking=required")
    rollout = Rollout(config, tokenizer)
    try:
        first = build_trainer(config, tokenizer)
        step1 = rollout.run_step(first, 1, tq_session)
        bank_after_step1 = first.pdai_harvester.bank.state_dict()
        first._save_checkpoint()
        saved = json.loads((Path(ckpt) / "global_step_1" / "pdai_state.json").read_text())
        resumed = build_trainer(config, tokenizer)
        resumed._load_checkpoint()
        bank_resumed = resumed.pdai_harvester.bank.state_dict()
        step2 = rollout.run_step(resumed, 2, tq_session)
    finally:
        rollout.loop.close()
    ledger = read_ledger(Path(ckpt) / "pdai_ledger")
    yield {
        "step1": step1,
        "step2": step2,
        "bank_after_step1": bank_after_step1,
        "saved": saved,
        "bank_resumed": bank_resumed,
        "resumed": resumed,
        "ledger": ledger,
        "tokenizer": tokenizer,
    }


def mains(step: dict, pid: str) -> list[tuple[dict, list[int]]]:
    return [(e, ids) for e, ids in step["by_problem"][pid] if e[F.ROLE_FIELD] == "main"]


def hint_of(tokenizer, extra: dict, ids: list[int]) -> str:
    ((start, end),) = extra[F.HINT_SPANS_FIELD]
    return tokenizer.decode(ids[start:end])


def test_step1_a_problem_without_a_reference_is_not_hinted_and_is_harvested(run):
    step1 = run["step1"]
    for extra, _ in mains(step1, TARGET_ID):
        assert extra[F.HINT_LEVEL_FIELD] == 0 and extra[F.HINT_SOURCE_FIELD] == ""
    acc = sorted(e["reward_extra_info"]["acc"] for e, _ in step1["by_problem"][TARGET_ID])
    assert acc == [0.0, 0.0, 1.0, 1.0]  # the 3-step solution and the 2-step one, graded by the reward
    # the concise part after </think> of the one with at least 3 steps; the shorter 2-step one was refused
    references = dict((pid, text) for pid, text, _ in run["bank_after_step1"]["references"])
    assert references == {TARGET_ID: TARGET_SOLUTION}
    metrics = step1["metrics"]
    assert metrics["pdai/harvest/batch_added"] == 1 and metrics["pdai/harvest/references"] == 1
    assert metrics["pdai/harvest/batch_rejected"] == 1  # TWO_STEPS: too few steps
    assert "pdai/harvest/errors" not in metrics


def test_a_problem_with_its_own_reference_is_hinted_from_it_and_never_harvested(run):
    for step in ("step1", "step2"):
        hinted = mains(run[step], BACKFILLED_ID)
        assert all(e[F.HINT_SOURCE_FIELD] == "backfill" and e[F.HINT_LEVEL_FIELD] > 0 for e, _ in hinted)
        preview_acc = [e["reward_extra_info"]["acc"] for e, _ in run[step]["by_problem"][BACKFILLED_ID][:K]]
        assert 1.0 in preview_acc  # solved unassisted, verified...
    assert BACKFILLED_ID not in run["resumed"].pdai_harvester.bank  # ...yet its own reference comes first
    assert run["step1"]["metrics"]["pdai/hint_source/backfill"] == 1.0


def test_the_harvested_reference_survives_the_checkpoint_resume(run):
    saved = run["saved"]["references"]
    assert [row[:2] for row in saved["references"]] == [[TARGET_ID, TARGET_SOLUTION]]
    assert run["bank_resumed"] == run["bank_after_step1"]


def test_step2_a_failing_session_is_hinted_from_the_harvested_reference(run):
    from verl.utils import tensordict_utils as tu

    step2, tokenizer = run["step2"], run["tokenizer"]
    prompts = step2["prompts"]
    handed = dict(zip(tu.get(prompts, "pdai_problem_id"), tu.get(prompts, F.HARVESTED_REFERENCE_FIELD), strict=True))
    assert handed == {TARGET_ID: TARGET_SOLUTION, BACKFILLED_ID: ""}
    previews = [e for e, _ in step2["by_problem"][TARGET_ID] if e[F.ROLE_FIELD] == "preview"]
    assert [e[F.PREVIEW_SUCCESS_FIELD] for e in previews] == [0] * K
    expected = build_hints(TARGET_SOLUTION, "13", FRACTIONS)
    hinted = mains(step2, TARGET_ID)
    assert len(hinted) == N - K
    for extra, ids in hinted:
        assert extra[F.DECISION_FIELD].startswith("hinted") and extra[F.HINT_SOURCE_FIELD] == "harvested"
        assert hint_of(tokenizer, extra, ids) == expected.for_level(extra[F.HINT_LEVEL_FIELD]).text
        assert "13" not in hint_of(tokenizer, extra, ids)  # the leak guard held
    metrics = step2["metrics"]
    assert metrics["pdai/hint_source/harvested"] == 0.5 and metrics["pdai/hint_source/backfill"] == 0.5


def test_coverage_metrics_rise_with_the_harvest(run):
    one, two = run["step1"]["metrics"], run["step2"]["metrics"]
    assert one["pdai/reference/coverage"] == 0.5 and one["pdai/reference/coverage_backfill"] == 0.5
    assert one["pdai/reference/coverage_harvested"] == 0.0
    assert two["pdai/reference/coverage"] == 1.0 and two["pdai/reference/coverage_harvested"] == 0.5


def test_the_ledger_names_each_hints_source_and_each_problems_reference(run):
    ledger = run["ledger"]
    by_key = {(int(r["step"]), r["problem_id"]): r for r in ledger.to_dict("records")}
    first = by_key[(1, TARGET_ID)]
    assert first["reference_source"] == "" and list(first["hint_sources"]) == [""] * (N - K)
    assert by_key[(2, TARGET_ID)]["reference_source"] == "harvested"
    assert list(by_key[(2, TARGET_ID)]["hint_sources"]) == ["harvested"] * (N - K)
    for step in (1, 2):
        assert by_key[(step, BACKFILLED_ID)]["reference_source"] == "backfill"
        assert list(by_key[(step, BACKFILLED_ID)]["hint_sources"]) == ["backfill"] * (N - K)


def test_harvest_settings_are_checked_at_start_up_and_need_the_rewards_checker():
    from omegaconf import OmegaConf

    from verl_pdai.plugin.trainer_settings import PdaiSettings

    def settings(pdai: dict, reward: dict | None = None) -> PdaiSettings:
        return PdaiSettings.from_config(OmegaConf.create({"pdai": pdai, **({"reward": reward} if reward else {})}))

    ours = {"reward_manager": {"name": "pdai_stepwise"}, "reward_kwargs": {"thinking": "required"}}
    chosen = settings({"harvest": {"max_bytes": 4096, "max_bytes_per_problem": 1024, "min_steps": 4}}, ours)
    assert (chosen.harvest.max_bytes, chosen.harvest.max_bytes_per_problem, chosen.harvest.min_steps) == (4096, 1024, 4)
    assert chosen.reward is not None and chosen.reward.stepwise.thinking == "required"
    assert settings({}, {"reward_manager": {"name": "naive"}}).reward is None  # not our checker: nothing harvested
    with pytest.raises(ValueError, match=r"pdai.harvest: unknown key\(s\) \['max_byte'\]"):
        settings({"harvest": {"max_byte": 1}})
    with pytest.raises(ValueError, match="pdai.harvest.min_steps=1"):
        settings({"harvest": {"min_steps": 1}})


def test_a_failing_harvest_never_stops_the_step(run, caplog):
    import logging

    from verl_pdai.plugin.trainer_harvest import ReferenceHarvester

    trainer, metrics = run["resumed"], {}
    with (
        mock.patch.object(ReferenceHarvester, "coverage_metrics", side_effect=RuntimeError("boom")),
        caplog.at_level(logging.ERROR, logger="verl_pdai"),
    ):
        assert trainer._pdai_harvest(None, [], [], None, None, metrics) == {}
    assert metrics["pdai/harvest/errors"] == 1.0 and "training goes on" in caplog.text


def test_state_files_without_references_load_and_malformed_ones_are_refused(run, tmp_path):
    """Run last: it replaces the resumed trainer's state."""
    trainer = run["resumed"]
    state = trainer.pdai_state_dict()
    assert len(state["references"]["references"]) == 1
    older = {k: v for k, v in state.items() if k != "references"}  # a file of an earlier version
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert trainer.pdai_load_state(str(tmp_path / "older.json")) and len(trainer.pdai_harvester.bank) == 0
    broken = {**state, "references": {**state["references"], "references": [[TARGET_ID, "", 1]]}}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="broken.json is corrupt: .*non-empty strings"):
        trainer.pdai_load_state(str(tmp_path / "broken.json"))


def test_with_harvesting_off_a_restored_bank_is_kept_but_never_handed_out():
    """A review: a run resumed with pdai.harvest.enabled=false kept hinting from the references an earlier run
    harvested (and an ablation without harvesting would silently have them)."""
    from omegaconf import OmegaConf

    from verl_pdai.plugin.trainer_harvest import ReferenceHarvester
    from verl_pdai.plugin.trainer_settings import PdaiSettings

    def harvester(enabled: bool) -> ReferenceHarvester:
        config = {
            "algorithm": {"norm_adv_by_std_in_grpo": True},
            "reward": {"reward_manager": {"name": "pdai_stepwise"}, "reward_kwargs": {}},
            "pdai": {"harvest": {"enabled": enabled}},
        }
        made = ReferenceHarvester(PdaiSettings.from_config(OmegaConf.create(config)))
        made.bank.offer("p", "Step one.\n\nStep two.\n\nSo $\\boxed{3}$.", step=1)
        return made

    assert harvester(True).reference_for("p").startswith("Step one")
    off = harvester(False)
    assert off.reference_for("p") == "" and off.bank.get("p") is not None
