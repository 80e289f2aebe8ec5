"""``pdai_sync`` end to end on CPU: store priors -> ``pdai_hint`` rollout -> ``pdai_stepwise`` reward -> the trainer's
``_compute_advantage`` on a real TransferQueue -> store and policy update -> checkpoint round trip.

What is real: verl's composed ``ppo_trainer`` config; the trainer class built by its own ``__init__`` (replay buffer
included); verl's ``RLHFDataset`` and ``StatefulDataLoader`` over a parquet file; verl's ``_add_batch_to_generate``
/ ``_submit_batch_to_rollout`` (prompt tags in TransferQueue); verl's ``AgentLoopWorkerTQ.generate_sequences``,
``_run_prompt`` and ``_agent_loop_postprocess`` (the rows reach TransferQueue exactly as in training, after a trip
through Ray's serializer); the ``pdai_hint`` agent loop; verl's ``RewardLoopWorker`` with ``pdai_stepwise``; verl's
``ReplayBuffer.sample`` and ``upsample_batch_to_divisible_size`` (padding rows); TransferQueue on a local Ray.

What cannot run on CPU, and what stands in for it (the narrowest thing):

* the LLM servers behind ``AgentLoopWorkerTQ.llm_client`` (vLLM/SGLang on GPUs): the scripted server of
  ``fake_server.py`` (real Qwen2.5 tokenizer, verl's ``generate`` contract);
* ``AgentLoopManagerTQ`` / ``AgentLoopWorkerTQ.__init__`` (Ray actors that start LLM server clients): the worker's
  own methods run on an in-process object (``agent_harness.HarnessWorker``), and a small manager hands it each batch;
* the reward loop's Ray actor: ``RewardLoopWorker`` runs in-process behind a handle with ``compute_score.remote``;
* ``PPOTrainer.init()`` (FSDP worker groups, LLM servers, checkpoint engine): not called; the actor worker group's
  ``save_checkpoint`` / ``load_checkpoint`` are recorded by a stub, and the tokenizer is set directly.

Ray and TransferQueue start once for the module (``ray.init(num_cpus=16)`` first: a bare ``tq.init()`` on a
2-core machine waits forever for CPUs) and are shut down at the end.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
from omegaconf import OmegaConf, open_dict

import verl_pdai.plugin.trainer  # noqa: F401  importing registers pdai_sync / pdai_colocate_async
from verl_pdai.core.advantage import compute_epgrpo_parts, dense_step_rewards
from verl_pdai.core.config_values import ConfigError
from verl_pdai.demo.agent_harness import HarnessWorker
from verl_pdai.ledger import read_ledger
from verl_pdai.plugin import fields as F
from verl_pdai.plugin.trainer_rows import problem_id_of
from verl_pdai.plugin.trainer_settings import PdaiSettings

from .fake_server import Script, ScriptedServer
from .verl_reward_helpers import reward_config

N, K, RESPONSE_LENGTH, MIN_TOKENS = 4, 2, 256, 12
PARAGRAPH = "Let me think about the geometry of the rectangle and its sides carefully here.\n\n"
WRONG_LONG = PARAGRAPH * 6 + "So the diagonal is $\\boxed{14}$."
LATE_BOUNDARY = (PARAGRAPH.rstrip("\n") + " ") * 4 + "\n\n"
PROBLEMS = {
    # easy: previews answer at once, main sessions write long and right; the row carries a prior of its own
    "easy": {
        "question": "A rectangle has sides 6 and 8. What is the length of its diagonal? Put the answer in \\boxed{}.",
        "answer": "10",
        "solution": (
            "The diagonal splits the rectangle into two right triangles with legs 6 and 8.\n\n"
            "By the Pythagorean theorem the squared diagonal is $6^2 + 8^2 = 36 + 64 = 100$.\n\n"
            "Taking the square root, the diagonal is $\\sqrt{100} = 10$, so the answer is $\\boxed{10}$."
        ),
        "given_prior": {"alpha": 3.0, "beta": 1.0},
        "preview": Script("The diagonal is $\\boxed{10}$."),
        "main": [Script(LATE_BOUNDARY + PARAGRAPH * 2 + "So the diagonal is $\\boxed{10}$.")] * 2,
    },
    # hard: previews fail, main sessions get a hint; one then succeeds, one does not
    "hard": {
        "question": "A rectangle has sides 5 and 12. What is the length of its diagonal? Put the answer in \\boxed{}.",
        "answer": "13",
        "solution": (
            "The diagonal splits the rectangle into two right triangles with legs 5 and 12.\n\n"
            "By the Pythagorean theorem the squared diagonal is $5^2 + 12^2 = 25 + 144 = 169$.\n\n"
            "Taking the square root, the diagonal is $\\sqrt{169} = 13$, so the answer is $\\boxed{13}$."
        ),
        "given_prior": None,
        "preview": Script(WRONG_LONG),
        "main": [
            Script(WRONG_LONG, "Right, so the diagonal is $\\sqrt{169} = 13$.\n\nThe answer is $\\boxed{13}$."),
            Script(WRONG_LONG, "Hmm, then $5 + 12 = 17$.\n\nThe answer is $\\boxed{17}$."),
        ],
    },
}
INDEX = {"easy": 0, "hard": 1}
HARD_ID, EASY_ID = "pdai_test/1", "pdai_test/0"


def test_registration_lists_the_trainer_module():
    from verl_pdai.plugin.registration import COMPONENTS

    if "verl_pdai.plugin.trainer" not in COMPONENTS:
        pytest.skip("verl_pdai.plugin.registration.COMPONENTS does not list verl_pdai.plugin.trainer yet")
    assert set(COMPONENTS["verl_pdai.plugin.trainer"]) == {("trainer", "pdai_sync"), ("trainer", "pdai_colocate_async")}


# ----------------------------------------------------------------------------------------------- settings


def _settings(pdai: dict | None = None, algorithm: dict | None = None):
    config = {"algorithm": {"norm_adv_by_std_in_grpo": True, **(algorithm or {})}}
    if pdai is not None:
        config["pdai"] = pdai
    return PdaiSettings.from_config(OmegaConf.create(config))


def test_advantage_reads_the_reward_cap_beside_the_routing_keys():
    """The routing keys (issue 13) sit in reward.reward_kwargs too: the cap must still be read, not defaulted."""
    config = {
        "algorithm": {"norm_adv_by_std_in_grpo": True},
        "reward": {"reward_kwargs": {"process_cap": 0.1, "verl_sources": ["apps"]}},
    }
    assert PdaiSettings.from_config(OmegaConf.create(config)).advantage["process_cap"] == 0.1


@pytest.mark.parametrize(
    ("reward", "named"),
    [
        ({"reward_manager": {"name": "pdai_stepwise"}, "reward_kwargs": {"thinking": "maybe"}}, "thinking='maybe'"),
        (
            {
                "reward_manager": {"name": "naive"},
                "custom_reward_function": {"path": "pkg://verl_pdai.api", "reward_kwargs": {}},
                "reward_kwargs": {"thinking": "required"},
            },
            r"set reward\.custom_reward_function\.reward_kwargs\.thinking instead",
        ),
    ],
    ids=["bad value", "stock route, wrong section"],
)
def test_the_reward_settings_fail_when_the_trainer_starts(reward, named):
    """A review: verl builds the reward manager in a Ray actor at its first call, and calls compute_score only on
    the first sample; the pdai trainer modes check the reward's section first thing instead."""
    config = {"algorithm": {"norm_adv_by_std_in_grpo": True}, "reward": reward}
    with pytest.raises(ConfigError, match=named):
        PdaiSettings.from_config(OmegaConf.create(config))


def test_settings_defaults_and_values():
    settings = _settings({"store": {"decay": 0.5}, "policy": {"w_init": 3.0}, "advantage": {"process_weight": 0.3}})
    assert settings.store.decay == 0.5 and settings.policy.w_init == 3.0
    assert settings.advantage == {
        "norm_adv_by_std_in_grpo": True,
        "process_weight": 0.3,
        "pre_hint_weight": 0.0,
        "epsilon": 1e-6,
        "discount": 0.0,
        "baseline": "group",
        "process_clip_ratio": 0.5,
        "process_cap": 0.2,  # the reward's (reward.reward_kwargs.process_cap, its default here)
    }
    assert settings.drop_unscored is False
    assert _settings({"drop_unscored": True}).drop_unscored is True
    assert settings.on_corrupt_state == "fail"
    assert (settings.ledger.enabled, settings.ledger.dir, settings.ledger.max_bytes) == (True, None, 1 << 30)
    assert settings.ledger.directory("/ckpt") == os.path.join("/ckpt", "pdai_ledger")
    off = _settings({"ledger": {"enabled": "false", "dir": "/tmp/l", "max_bytes": 1000}}).ledger
    assert (off.enabled, off.directory("/ckpt"), off.max_bytes) == (False, "/tmp/l", 1000)
    assert _settings(None).store.decay == 0.9  # no pdai section: every default


@pytest.mark.parametrize(
    ("pdai", "algorithm", "message"),
    [
        ({"stroe": {}}, None, "unknown pdai config keys \\['stroe'\\]"),
        ({"store": {"decay": 2}}, None, "pdai.store: StoreConfig.decay must lie in"),
        ({"policy": {"window": 0}}, None, "pdai.policy"),
        ({"on_corrupt_state": "ignore"}, None, "pdai.on_corrupt_state must be one of"),
        ({"advantage": {"pre_hint_weight": 2}}, None, "pre_hint_weight must be in \\[0, 1\\]"),
        ({"advantage": {"baseline": "cell"}}, None, "pdai.advantage.baseline must be one of group, level"),
        ({"drop_unscored": "yes"}, None, "pdai.drop_unscored must be true or false"),
        ({}, {"adv_estimator": "epgrpo", "use_kl_in_reward": True}, "use_kl_in_reward=true with adv_estimator=epgrpo"),
        ({"advantage": {"beta": 1}}, None, "unknown pdai.advantage keys \\['beta'\\]"),
        ({"advantage": {"process_weight": 0.5}}, {"pdai": {"process_weight": 1.0}}, "contradicts algorithm.pdai"),
        ({"rollout": {"min_tokns": 3}}, None, "pdai.rollout config: unknown key"),
        ({"ledger": {"path": "x"}}, None, "unknown pdai.ledger keys \\['path'\\]"),
        ({"ledger": {"max_bytes": 0}}, None, "pdai.ledger.max_bytes must be > 0"),
        ({"ledger": {"max_bytes": "1GB"}}, None, "pdai.ledger.max_bytes must be an integer"),
        ({"ledger": {"enabled": "maybe"}}, None, "pdai.ledger.enabled must be true or false"),
    ],
)
def test_settings_fail_with_clear_messages(pdai, algorithm, message):
    with pytest.raises(ValueError, match=message):
        _settings(pdai, algorithm)


def test_problem_ids():
    assert problem_id_of({"problem_id": "aime-7", "index": 3}, "aime", None) == "aime-7"
    assert problem_id_of({"index": 3}, "math", None) == "math/3"
    prompt = [{"role": "user", "content": "What is 2+2?"}]
    a, b = problem_id_of({}, "math", prompt), problem_id_of(None, None, copy.deepcopy(prompt))
    assert a == b and a.startswith("prompt:") and a != problem_id_of({}, "math", [{"role": "user", "content": "3"}])


# ----------------------------------------------------------------------------------------------- end to end


class InProcessAgentLoopManager:
    """Stands in for ``AgentLoopManagerTQ`` (Ray actor workers + GPU servers): passes each batch through Ray's
    serializer to verl's ``AgentLoopWorkerTQ.generate_sequences`` on an in-process worker, then waits for the
    fire-and-forget sessions (in training they run in the actor while the trainer polls the replay buffer)."""

    def __init__(self, worker, loop) -> None:
        self.worker = worker
        self.loop = loop
        self.batches = []
        self.kind_of_uid: dict[str, str] = {}

    def generate_sequences(self, batch) -> None:
        import ray

        self.batches.append(batch)
        for uid, info in zip(batch["uid"], batch["extra_info"], strict=True):
            self.kind_of_uid[str(uid)] = info["kind"]
        chunk = ray.get(ray.put(batch))
        self.loop.run_until_complete(self.worker.generate_sequences(chunk))
        self.loop.run_until_complete(asyncio.gather(*list(self.worker.background_tasks)))


class RecordingWorkerGroup:
    """Stands in for the actor's RayWorkerGroup (FSDP workers on GPUs): records checkpoint calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def save_checkpoint(self, local_path, remote_path=None, global_step=0, max_ckpt_to_keep=None) -> None:
        os.makedirs(local_path, exist_ok=True)
        self.calls.append(("save", local_path, global_step))

    def load_checkpoint(self, local_path, del_local_after_load=False) -> None:
        self.calls.append(("load", local_path))


@pytest.fixture(scope="module")
def tq_session():
    import ray
    import transfer_queue as tq

    ray.init(num_cpus=16, include_dashboard=False, log_to_driver=False)
    try:
        # one storage unit instead of the default two: one actor process less to start (~2.5 s on 2 cores)
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        yield tq
    finally:
        try:
            tq.close()
        finally:
            ray.shutdown()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    import pandas as pd

    rows = []
    for kind, problem in PROBLEMS.items():
        extra_info = {
            "index": INDEX[kind],
            "split": "train",
            "kind": kind,
            "reference_solution": problem["solution"],
        }
        if problem["given_prior"] is not None:
            extra_info[F.PRIOR_FIELD] = problem["given_prior"]
        rows.append(
            {
                "data_source": "pdai_test",
                "prompt": [{"role": "user", "content": problem["question"]}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": problem["answer"]},
                "extra_info": extra_info,
            }
        )
    path = tmp_path_factory.mktemp("data") / "train.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def make_config(tokenizer_dir, data_file, ckpt_dir, *extra: str):
    return reward_config(
        tokenizer_dir,
        [
            "trainer.v1.trainer_mode=pdai_sync",
            "algorithm.adv_estimator=epgrpo",
            f"data.train_files={data_file}",
            f"data.val_files={data_file}",
            "data.train_batch_size=2",
            "data.dataloader_num_workers=0",
            f"actor_rollout_ref.rollout.n={N}",
            f"actor_rollout_ref.rollout.response_length={RESPONSE_LENGTH}",
            "actor_rollout_ref.rollout.prompt_length=128",
            "actor_rollout_ref.rollout.agent.default_agent_loop=pdai_hint",
            f"trainer.default_local_dir={ckpt_dir}",
            f"+pdai.rollout.preview_size={K}",
            f"+pdai.rollout.min_tokens={MIN_TOKENS}",
            "+pdai.advantage.process_weight=0.1",
            *extra,
        ],
    )


def build_trainer(config, tokenizer):
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)  # verl's own lookup and __init__
    trainer.tokenizer, trainer.processor = tokenizer, None  # _init_tokenizer needs a full HF model folder
    trainer._init_dataloader()
    trainer.actor_rollout_wg = RecordingWorkerGroup()
    trainer.global_steps = 1
    return trainer


def read_rows(tq, batch, names):
    """Columns of the batch as stored in TransferQueue: jagged tensors padded (with 0, as verl), the rest as lists."""
    from verl.utils import tensordict_utils as tu

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=names)
    padded = data.select(*[k for k in names if isinstance(data.get(k), torch.Tensor)]).to_padded_tensor()
    return {name: padded[name] if name in padded.keys() else tu.get(data, name) for name in names}


@pytest.fixture(scope="module")
def step(tq_session, tokenizer_dir, tokenizer, data_files, tmp_path_factory):
    """One training step of pdai_sync up to the advantage; everything the tests check, captured once."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    tq = tq_session
    config = make_config(tokenizer_dir, data_files, tmp_path_factory.mktemp("ckpt"))
    trainer = build_trainer(config, tokenizer)
    assert trainer.trainer_mode == "sync" and trainer.pdai_trainer_mode == "pdai_sync"
    assert type(trainer.replay_buffer).__name__ == "ReplayBuffer"  # verl's sync buffer, not the async one
    # the store already knows the hard problem: 0 of 8 unassisted attempts at an earlier step
    trainer.pdai_store.update_many(
        [{"problem_id": HARD_ID, "successes": 0, "trials": 8, "data_source": "pdai_test"}], step=0
    )
    expected_priors = {
        HARD_ID: trainer.pdai_store.prior_for(HARD_ID, data_source="pdai_test"),
        EASY_ID: trainer.pdai_store.prior_for(EASY_ID, given_prior=PROBLEMS["easy"]["given_prior"]),
    }
    store_means = {pid: a / (a + b) for pid, (a, b) in expected_priors.items()}

    worker_cls = AgentLoopWorkerTQ.__ray_metadata__.modified_class

    class TQWorker(HarnessWorker):
        generate_sequences = worker_cls.generate_sequences
        _run_prompt = worker_cls._run_prompt
        _agent_loop_postprocess = worker_cls._agent_loop_postprocess

    loop = asyncio.new_event_loop()
    manager_box: dict = {}

    def script_for(uid: str, index: int) -> Script:
        problem = PROBLEMS[manager_box["manager"].kind_of_uid[uid]]
        return problem["preview"] if index < K else problem["main"][index - K]

    server = ScriptedServer(tokenizer, script_for, delay_per_token=0.002)
    worker = TQWorker(config, tokenizer, server, reward_worker=RewardLoopWorker(config))
    worker.background_tasks = set()
    manager = manager_box["manager"] = InProcessAgentLoopManager(worker, loop)
    trainer.agent_loop_manager = manager
    try:
        trainer._add_batch_to_generate()  # verl: _next_train_batch (ours) -> _submit_batch_to_rollout -> manager
        batch, _ = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
        batch = upsample_batch_to_divisible_size(batch, 3, tokenizer.eos_token_id)  # 8 rows + 1 padding row
        # stands in for the actor's log-prob forward (_compute_old_log_prob, FSDP on GPUs): the rollout's own
        # log-probs, as verl's bypass mode stores them
        logprobs = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields="rollout_log_probs")
        logprobs["old_log_probs"] = logprobs.pop("rollout_log_probs")
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=logprobs)
        metrics: dict = {}
        with mock.patch.object(PPOTrainer, "_compute_advantage", side_effect=AssertionError("verl's method ran")):
            trainer._compute_advantage(batch, metrics)
        rows = read_rows(
            tq, batch, ["advantages", "returns", "response_mask", "rm_scores", "extra_fields", "uid", "pdai_problem_id"]
        )
        # read now: later tests build trainers on the same folder and write step 1 again
        ledger = read_ledger(Path(config.trainer.default_local_dir) / "pdai_ledger" / "step_000001.parquet")
        posteriors = {pid: trainer.pdai_store.prior_for(pid) for pid in (HARD_ID, EASY_ID)}
    finally:
        loop.close()
    yield {
        "trainer": trainer,
        "config": config,
        "batch": batch,
        "prompt_batch": manager.batches[0],
        "expected_priors": expected_priors,
        "store_means": store_means,
        "metrics": metrics,
        "rows": rows,
        "ledger": ledger,
        "posteriors": posteriors,
    }


def test_priors_injected_from_the_store_reach_the_agent_loop(step):
    prompt_batch, expected = step["prompt_batch"], step["expected_priors"]
    from verl.utils import tensordict_utils as tu

    ids = tu.get(prompt_batch, "pdai_problem_id")
    priors = tu.get(prompt_batch, F.PRIOR_FIELD)
    assert sorted(ids) == sorted(expected)
    for pid, prior in zip(ids, priors, strict=True):
        assert prior == {"alpha": expected[pid][0], "beta": expected[pid][1]}
    assert tu.get(prompt_batch, F.POLICY_W_FIELD) == [4.0, 4.0]  # PolicyConfig.w_init
    # the whole fitted model travels with the prompt: the rollout decides with what the trainer fitted
    assert tu.get(prompt_batch, F.POLICY_PARAMS_FIELD) == [{"w": 4.0, "intercept": 0.0, "slope": 1.0}] * 2
    # the agent loop decided from exactly these priors: they arrived as its keyword arguments
    rows = step["rows"]
    for extra, pid in zip(rows["extra_fields"], rows["pdai_problem_id"], strict=True):
        if extra[F.ROLE_FIELD] == "main" and extra[F.DIFFICULTY_FIELD] >= 0:
            assert (extra[F.PRIOR_ALPHA_FIELD], extra[F.PRIOR_BETA_FIELD]) == pytest.approx(expected[pid])
            assert extra[F.FALLBACK_FIELD] == ""


def test_rollout_hinted_the_hard_problem_only(step):
    rows = step["rows"]
    by_problem: dict[str, list] = {}
    for extra, pid in zip(rows["extra_fields"][:8], rows["pdai_problem_id"][:8], strict=True):
        by_problem.setdefault(pid, []).append(extra)
    hard_levels = sorted(e[F.HINT_LEVEL_FIELD] for e in by_problem[HARD_ID] if e[F.ROLE_FIELD] == "main")
    assert all(level > 0 for level in hard_levels) and len(hard_levels) == N - K
    assert all(e[F.HINT_LEVEL_FIELD] == 0 for e in by_problem[EASY_ID])
    assert {e[F.DECISION_FIELD] for e in by_problem[EASY_ID] if e[F.ROLE_FIELD] == "main"} == {"easy"}


def _expected_advantages(rows, batch, settings):
    """epgrpo recomputed from the stored rows with the core functions alone (independent of the trainer's plumbing)."""
    n = len(batch.keys)
    padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
    level, start, scores, ends, outcome = [], [], [], [], []
    for i, extra in enumerate(rows["extra_fields"]):
        info = extra["reward_extra_info"]
        spans = extra[F.HINT_SPANS_FIELD]
        level.append(0 if padding[i] else extra[F.HINT_LEVEL_FIELD])
        start.append(spans[0][0] if spans and not padding[i] else -1)
        scores.append([] if padding[i] else json.loads(info["step_scores"]))
        ends.append([] if padding[i] else json.loads(info["step_token_ends"]))
        outcome.append(0.0 if padding[i] else float(info["outcome"]))  # the reward's own field, never a difference
    mask = rows["response_mask"]
    step_rewards, step_mask = dense_step_rewards(scores, ends, mask.shape[1])
    outcome = torch.tensor(outcome)
    args = (outcome, mask, rows["uid"], torch.tensor(level), torch.tensor(start), step_rewards, step_mask)
    parts = compute_epgrpo_parts(*args, **{**settings, "pre_hint_weight": 0.0})
    full, outcome_part = parts.advantages, parts.outcome
    assert len(outcome) == n
    return full, outcome_part


def test_epgrpo_advantages_written_to_transfer_queue(step):
    rows, batch, trainer = step["rows"], step["batch"], step["trainer"]
    adv, mask = rows["advantages"], rows["response_mask"]
    assert adv.shape == mask.shape and len(batch.keys) == 9
    assert torch.isfinite(adv).all() and torch.equal(adv, rows["returns"])
    assert (adv[mask == 0] == 0).all()  # hint tokens, padding positions and the padding row
    hinted = [i for i, e in enumerate(rows["extra_fields"][:8]) if e[F.HINT_SPANS_FIELD]]
    assert len(hinted) == 2 and all((mask[i] == 0).any() for i in hinted)
    expected, outcome_part = _expected_advantages(rows, batch, trainer.pdai_settings.advantage)
    torch.testing.assert_close(adv, expected.to(adv.dtype))
    # the hinted session that succeeded beats the one that failed, after the hint; the group baseline (previews
    # included: 0, 0, 1, 0) gives the success (1 - 0.25) / 0.5 and the failure -0.25 / 0.5
    acc = {i: rows["extra_fields"][i]["reward_extra_info"]["acc"] for i in hinted}
    win, lose = sorted(hinted, key=lambda i: -acc[i])
    assert (acc[win], acc[lose]) == (1.0, 0.0)
    after = {i: slice(rows["extra_fields"][i][F.HINT_SPANS_FIELD][0][1], None) for i in hinted}
    assert outcome_part[win, after[win]][mask[win, after[win]] == 1].min() > 1.4
    assert outcome_part[lose, after[lose]][mask[lose, after[lose]] == 1].max() < -0.4
    # ...while before the hint its outcome part is scaled by pre_hint_weight = 0
    before = slice(0, rows["extra_fields"][win][F.HINT_SPANS_FIELD][0][0])
    assert (outcome_part[win, before] == 0).all() and (adv[win, before] != 0).any()  # process part only


def test_store_and_policy_learn_from_the_batch(step):
    trainer, means = step["trainer"], step["store_means"]
    store = trainer.pdai_store
    new_hard, new_easy = store.mean(HARD_ID), store.mean(EASY_ID)
    assert new_hard < means[HARD_ID]  # two unassisted failures (the hinted sessions do not count)
    assert new_easy > means[EASY_ID]  # four unassisted successes
    alpha, beta = store.prior_for(HARD_ID)
    assert (alpha, beta) == pytest.approx((1.0, 1.0 + 0.9 * 8 + 2))  # decay 0.9, then 0 of 2
    assert store.prior_for(EASY_ID) == pytest.approx((3.0 + 4, 1.0))  # from the row's own prior
    assert store.step == 1 and store.visits(HARD_ID) == 2
    diagnostics = trainer.pdai_policy.diagnostics()
    assert diagnostics["n_updates"] == 1 and diagnostics["n_hinted_total"] == 2 and diagnostics["n_window"] == 2
    assert diagnostics["n_unhinted_total"] == 2  # the easy group's decided main sessions


def test_metrics(step):
    metrics = step["metrics"]
    assert metrics["pdai/store/batch_trials"] == 6  # 2 hard previews + 4 easy sessions; the padding row excluded
    assert metrics["pdai/store/batch_problems"] == 2
    assert metrics["pdai/store/batch_success_rate"] == pytest.approx(4 / 6)
    assert metrics["pdai/store/problems"] == 2 and metrics["pdai/store/step"] == 1
    assert metrics["pdai/policy/batch_observations"] == 4 and metrics["pdai/policy/w"] > 0
    assert metrics["pdai/intervention_rate"] == pytest.approx(0.5)
    assert metrics["pdai/role/preview"] == pytest.approx(0.5)
    assert 0 < metrics["pdai/hint_token_share"] < 0.5
    # GRPO signal: unassisted outcomes agree within both groups (0,0 and 1,1,1,1); with hints the hard group varies
    assert metrics["pdai/adv/signal_groups_unassisted"] == 0.0
    assert metrics["pdai/adv/signal_groups_outcome"] == 0.5
    assert metrics["pdai/adv/signal_groups_final"] == 1.0  # the easy group keeps its process part
    # mean |part| over the model-written tokens of real rows, recomputed with the core functions
    rows, batch = step["rows"], step["batch"]
    full, outcome_part = _expected_advantages(rows, batch, step["trainer"].pdai_settings.advantage)
    valid = rows["response_mask"][:8] != 0
    assert metrics["pdai/adv/outcome_abs_mean"] == pytest.approx(float(outcome_part[:8][valid].abs().mean()))
    assert metrics["pdai/adv/process_abs_mean"] == pytest.approx(float((full - outcome_part)[:8][valid].abs().mean()))
    assert metrics["pdai/adv/process_abs_mean"] > 0
    assert "rollout_corr/kl" in metrics  # verl's rollout-correction helper ran (default config)
    assert all(isinstance(v, float) for k, v in metrics.items() if k.startswith("pdai/"))


def test_ledger_records_the_step_one_row_per_prompt(step):
    ledger, rows, posteriors = step["ledger"], step["rows"], step["posteriors"]
    assert sorted(ledger["problem_id"]) == sorted([HARD_ID, EASY_ID]) and set(ledger["step"]) == {1}
    by_id = {r["problem_id"]: r for r in ledger.to_dict("records")}
    hard, easy = by_id[HARD_ID], by_id[EASY_ID]
    assert list(hard["roles"]) == ["preview"] * K + ["main"] * (N - K)
    assert len(hard["hint_levels"]) == N - K and all(level > 0 for level in hard["hint_levels"])
    assert all(tokens > 0 for tokens in hard["hint_tokens"]) and hard["hinted_sessions"] == N - K
    assert list(easy["hint_levels"]) == [0] * (N - K) and easy["hinted_sessions"] == 0
    # the prior the rollout got, and the store's posterior after this step's update, as the trainer holds them
    for pid, record in by_id.items():
        assert (record["prior_alpha"], record["prior_beta"]) == pytest.approx(step["expected_priors"][pid])
        alpha, beta = posteriors[pid]
        assert (record["store_alpha"], record["store_beta"]) == pytest.approx((alpha, beta))
        assert record["store_mean"] == pytest.approx(step["trainer"].pdai_store.mean(pid))
        assert record["data_source"] == "pdai_test" and record["visits"] == step["trainer"].pdai_store.visits(pid)
    # outcomes: the stored acc of each session, previews first
    stored: dict[str, dict[str, list[float]]] = {}
    for extra, pid in zip(rows["extra_fields"][:8], rows["pdai_problem_id"][:8], strict=True):
        stored.setdefault(pid, {"preview": [], "main": []})[extra[F.ROLE_FIELD]].append(
            float(extra["reward_extra_info"]["acc"])
        )
    for pid, record in by_id.items():
        assert sorted(record["outcomes"][:K]) == sorted(stored[pid]["preview"])
        assert sorted(record["outcomes"][K:]) == sorted(stored[pid]["main"])
    assert (hard["unassisted_successes"], hard["unassisted_trials"]) == (0, K)  # the hinted sessions do not count
    assert (easy["unassisted_successes"], easy["unassisted_trials"]) == (N, N)
    assert 0.0 <= hard["previewed_difficulty"] < 0.5 and hard["preview_successes"] == 0
    metrics = step["metrics"]
    assert metrics["pdai/ledger/rows"] == 2 and metrics["pdai/ledger/dropped_rows"] == 0
    assert metrics["pdai/ledger/bytes"] > 0 and metrics["pdai/ledger/write_s"] > 0


def test_checkpoint_round_trip_reproduces_the_state(step, tokenizer):
    trainer, config = step["trainer"], step["config"]
    trainer._save_checkpoint()
    folder = Path(config.trainer.default_local_dir) / "global_step_1"
    saved = json.loads((folder / "pdai_state.json").read_text())
    assert saved["format"] == "verl_pdai.trainer_state" and saved["version"] == 1 and saved["global_step"] == 1
    assert (folder / "data.pt").exists() and trainer.actor_rollout_wg.calls[-1][0] == "save"

    resumed = build_trainer(config, tokenizer)
    resumed._load_checkpoint()
    assert resumed.global_steps == 1 and resumed.actor_rollout_wg.calls == [("load", str(folder / "actor"))]
    assert resumed.pdai_state_dict() == trainer.pdai_state_dict()
    assert resumed.pdai_policy.w == trainer.pdai_policy.w
    # and the next prompts get the same priors as they would have without the restart
    for pid in (HARD_ID, EASY_ID):
        assert resumed.pdai_store.prior_for(pid) == trainer.pdai_store.prior_for(pid)


def test_corrupt_missing_and_fresh_state(step, tokenizer, tmp_path, caplog):
    trainer = step["trainer"]
    config = copy.deepcopy(step["config"])
    with open_dict(config):
        config.trainer.default_local_dir = str(tmp_path)
    trainer_copy = build_trainer(config, tokenizer)
    trainer_copy.pdai_store.load_state_dict(trainer.pdai_store.state_dict())
    trainer_copy._save_checkpoint()
    state_file = tmp_path / "global_step_1" / "pdai_state.json"

    state_file.write_text('{"format": "verl_pdai.trainer_state", "version": 1, "store": {')  # truncated write
    with pytest.raises(ValueError, match=r"pdai_state\.json is corrupt.*pdai\.on_corrupt_state=fresh"):
        build_trainer(config, tokenizer)._load_checkpoint()
    bad = trainer_copy.pdai_state_dict()
    bad["store"]["problems"][0][3] = -1.0  # valid JSON, invalid state: negative evidence
    state_file.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=str(state_file)):
        build_trainer(config, tokenizer)._load_checkpoint()

    with open_dict(config):
        config.pdai.on_corrupt_state = "fresh"
    fresh = build_trainer(config, tokenizer)
    fresh.pdai_store.update_many([("x", 1, 1)])
    with caplog.at_level(logging.WARNING, logger="verl_pdai"):
        fresh._load_checkpoint()
    assert fresh.global_steps == 1 and len(fresh.pdai_store) == 0 and "is corrupt" in caplog.text

    state_file.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="verl_pdai"):
        missing = build_trainer(config, tokenizer)
        missing._load_checkpoint()
    assert len(missing.pdai_store) == 0 and "start fresh" in caplog.text


def test_other_estimators_run_verls_method_unchanged_and_the_store_still_learns(step, tokenizer):
    import numpy as np
    import transfer_queue as tq
    from verl.trainer.ppo import core_algos
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    config = copy.deepcopy(step["config"])
    with open_dict(config):
        config.algorithm.adv_estimator = "grpo"
    trainer = build_trainer(config, tokenizer)
    batch, metrics = step["batch"], {}
    original = PPOTrainer._compute_advantage
    with mock.patch.object(PPOTrainer, "_compute_advantage", autospec=True, side_effect=original) as verl_method:
        trainer._compute_advantage(batch, metrics)
    verl_method.assert_called_once_with(trainer, batch, metrics)
    rows = read_rows(tq, batch, ["advantages", "response_mask", "rm_scores", "uid"])
    expected, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=rows["rm_scores"],
        response_mask=rows["response_mask"],
        index=np.array(rows["uid"], dtype=object),
    )
    torch.testing.assert_close(rows["advantages"], expected)
    assert metrics["pdai/store/batch_trials"] == 6 and trainer.pdai_store.mean(HARD_ID) < 0.5
    assert "pdai/adv/signal_groups_final" not in metrics  # epgrpo-only metrics


def test_registered_modes_keep_verls_base_behaviour():
    from verl.trainer.ppo.v1 import PPOTrainerColocateAsync, PPOTrainerSync, get_trainer_cls

    sync, colocate = get_trainer_cls("pdai_sync"), get_trainer_cls("pdai_colocate_async")
    assert issubclass(sync, PPOTrainerSync) and issubclass(colocate, PPOTrainerColocateAsync)
    assert sync.BASE_MODE == "sync" and colocate.BASE_MODE == "colocate_async"
    assert colocate.on_step_end is PPOTrainerColocateAsync.on_step_end  # nothing else overridden


# ----------------------------------------------------------------------------------------------- entry point


@pytest.fixture(scope="module", autouse=True)
def entry_point_import(tmp_path_factory):
    """``import verl`` in a fresh interpreter with a scratch ``verl.plugins`` entry point that imports the trainer
    module: the import happens inside ``import verl``, as the real entry point's. Started when the module's first
    test runs, so that its ~10 s of imports overlap Ray's start; ``test_trainer_module_imports_at_entry_point_time``
    reads the result."""
    root = tmp_path_factory.mktemp("entry_point")
    (root / "scratch_pdai_trainer_plugin.py").write_text(
        textwrap.dedent(
            """
            import traceback
            ERROR = None
            try:
                import verl_pdai.plugin.trainer  # noqa: F401
            except BaseException:
                ERROR = traceback.format_exc()
                raise
            """
        )
    )
    dist = root / "scratch_pdai_trainer_plugin-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: scratch-pdai-trainer-plugin\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[verl.plugins]\nscratch_pdai = scratch_pdai_trainer_plugin\n")
    code = textwrap.dedent(
        """
        import sys
        import verl  # loads the scratch entry point (only that one: VERL_USE_EXTERNAL_PLUGINS)
        import scratch_pdai_trainer_plugin as plugin
        assert plugin.ERROR is None, plugin.ERROR
        assert "verl_pdai.plugin.trainer" in sys.modules
        from verl.trainer.ppo.v1 import get_trainer_cls
        print(get_trainer_cls("pdai_sync").__name__, get_trainer_cls("pdai_colocate_async").__name__)
        """
    )
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env["VERL_USE_EXTERNAL_PLUGINS"] = "scratch_pdai"
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_trainer_module_imports_at_entry_point_time_and_resolves_through_verl(entry_point_import):
    stdout, stderr = entry_point_import.communicate(timeout=120)
    assert entry_point_import.returncode == 0, stderr[-3000:]
    assert stdout.split() == ["PdaiSyncTrainer", "PdaiColocateAsyncTrainer"]


def test_a_failing_ledger_never_stops_the_advantage_step(step, tokenizer, caplog):
    """Records that cannot be built (here: a raising record builder) are logged and counted; the step completes."""
    import transfer_queue as tq

    trainer, batch, metrics = build_trainer(step["config"], tokenizer), step["batch"], {}
    with (
        mock.patch("verl_pdai.plugin.trainer.build_records", side_effect=RuntimeError("boom")),
        caplog.at_level(logging.ERROR, logger="verl_pdai"),
    ):
        trainer._compute_advantage(batch, metrics)
    assert metrics["pdai/ledger/errors"] == 1.0 and "pdai/ledger/rows" not in metrics
    assert "training goes on" in caplog.text
    rows = read_rows(tq, batch, ["advantages"])
    assert torch.isfinite(rows["advantages"]).all() and metrics["pdai/store/batch_trials"] == 6


def test_drop_unscored_takes_a_response_out_of_the_statistics_and_the_loss(step, tq_session):
    """``pdai.drop_unscored``: a response the reward could not score gets advantage 0 and zero response and loss
    masks in TransferQueue (verl's engines normalise by loss_mask). Runs the advantage step again on the same
    batch, so it is the module's last test."""
    import dataclasses

    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu

    tq, trainer, batch = tq_session, step["trainer"], step["batch"]
    extras = [dict(e) for e in tu.get(tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                                      select_fields=["extra_fields"]), "extra_fields")]  # fmt: skip
    dropped = next(i for i, e in enumerate(extras) if e.get(F.ROLE_FIELD) == "main")
    info = dict(extras[dropped]["reward_extra_info"])
    info["unscored"] = True
    extras[dropped]["reward_extra_info"] = info
    fields = TensorDict({}, batch_size=len(extras))
    tu.assign_non_tensor_stack(fields, "extra_fields", extras)
    tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)
    trainer.pdai_settings = dataclasses.replace(trainer.pdai_settings, drop_unscored=True)
    metrics: dict = {}
    trainer._compute_advantage(batch, metrics)
    rows = read_rows(tq, batch, ["advantages", "response_mask", "loss_mask"])
    assert bool((rows["advantages"][dropped] == 0).all())
    assert bool((rows["response_mask"][dropped] == 0).all()) and bool((rows["loss_mask"][dropped] == 0).all())
    others = [i for i in range(len(extras)) if i != dropped]
    assert torch.equal(rows["loss_mask"][others], rows["response_mask"][others])
    assert bool((step["rows"]["response_mask"][others] == rows["response_mask"][others]).all())
    assert metrics["pdai/reward/unscored"] == 1.0 and metrics["pdai/reward/dropped"] == 1.0
