"""Validation inside training reports the same number as ``verl-pdai eval``: for the same responses, verl's
``process_validation_metrics`` over the ``acc`` of the ``pdai_stepwise`` reward manager gives
``val-core/<data_source>/acc/mean@k`` == our avg@k. (That validation prompts are never hinted is tested in
tests/plugin/test_agent_loop.py::test_validation_prompts_are_never_hinted.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.evaluation.backends import Messages, ScriptedBackend
from verl_pdai.evaluation.data import read_problems
from verl_pdai.evaluation.runner import EvalSettings, run_evaluation

from ..plugin.verl_reward_helpers import agent_loop_sample, reward_config
from .eval_rows import SUFFIX, write_benchmark

K = 4
RESPONSES: dict[str, tuple[object, list[str]]] = {
    "P1": ("025", ["\\boxed{25}", "\\boxed{24}", "Step 1: 2+2=5.\n\nSo \\boxed{025}", "no box"]),
    "P2": (["0.5\n", "1/2"], ["<think>hmm</think>\\boxed{1/2}", "\\boxed{3}", "\\boxed{3}", "\\boxed{3}"]),
    "P3": ("7", ["\\boxed{7}"] * 4),
    "P4": (142.0, ["<think>\\boxed{142} unclosed", "\\boxed{142.0}", "\\boxed{141}", "\\boxed{142}"]),
}
BENCHMARKS = {"aime2024": ["P1", "P3"], "minerva": ["P2"], "amc": ["P4"]}  # a parquet column holds one type


def respond(messages: Messages, index: int) -> str:
    return RESPONSES[messages[-1]["content"].removesuffix(SUFFIX)][1][index]


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict:
    """The summary of ``run_evaluation`` on the scripted responses, with its output folder under "out_dir"."""
    folder = tmp_path_factory.mktemp("val")
    problems = []
    for name, keys in BENCHMARKS.items():
        path = write_benchmark(folder / f"{name}.parquet", name, [(key, RESPONSES[key][0]) for key in keys])
        problems += read_problems(name, path)
    settings = EvalSettings(model="scripted", k=K, checker=StepwiseConfig(num_workers=2))
    summary = run_evaluation(problems, ScriptedBackend(respond), settings, folder / "out")
    return {**summary, "out_dir": folder / "out"}


def val_metrics(trainer: str, data_sources: list[str], uids: list[str], acc: list[float]) -> dict[str, float]:
    """verl's own reduction and naming; ``_val_metrics_update`` does not use its instance."""
    if trainer == "v1":  # what the pdai_sync / pdai_colocate_async trainers inherit
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer

        expected = {(ds, uid): K for ds, uid in zip(data_sources, uids, strict=True)}
        return PPOTrainer._val_metrics_update(None, np.array(data_sources), uids, {"acc": acc}, [], expected)
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    return RayPPOTrainer._val_metrics_update(None, np.array(data_sources), uids, {"acc": acc}, [])


@pytest.mark.parametrize("trainer", ["v1", "legacy"])
def test_val_core_acc_mean_equals_avg_at_k(ours: dict, tokenizer_dir: Path, tokenizer, trainer: str) -> None:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.utils.ray_utils import get_event_loop

    worker = RewardLoopWorker(reward_config(tokenizer_dir))  # pdai_stepwise with its default reward_kwargs
    data_sources, uids, acc = [], [], []
    for name, keys in BENCHMARKS.items():
        for key in keys:
            prompt = key + SUFFIX
            for index in range(K):  # validation repeats each prompt k times under one uid, as _validate does
                ids = tokenizer.encode(respond([{"content": prompt}], index), add_special_tokens=False)
                sample = agent_loop_sample(tokenizer, prompt, ids + [tokenizer.eos_token_id], RESPONSES[key][0])
                out = get_event_loop().run_until_complete(worker.compute_score_batch(sample))[0]
                data_sources.append(name)
                uids.append(f"uid-{key}")
                acc.append(out["reward_extra_info"]["acc"])
    metrics = val_metrics(trainer, data_sources, uids, acc)
    for name in BENCHMARKS:
        ours_value = ours["benchmarks"][name]["avg_at_k"]
        assert metrics[f"val-core/{name}/acc/mean@{K}"] == pytest.approx(ours_value, abs=1e-12)
    # and the values are the hand-counted ones, so the comparison is not vacuous
    assert ours["benchmarks"]["aime2024"]["avg_at_k"] == pytest.approx((2 / 4 + 4 / 4) / 2)
    assert ours["benchmarks"]["minerva"]["avg_at_k"] == pytest.approx(1 / 4)
    assert ours["benchmarks"]["amc"]["avg_at_k"] == pytest.approx(2 / 4)  # unclosed <think> earns nothing


def test_samples_file_agrees_with_the_summary(ours: dict) -> None:
    # the per-sample verdicts written for `confidence` give back the summary's avg@k
    records = [json.loads(line) for line in (ours["out_dir"] / "samples.jsonl").read_text().splitlines()]
    for name in BENCHMARKS:
        mine = [r["correct"] for r in records if r["benchmark"] == name]
        assert np.mean([np.mean(c) for c in mine]) == pytest.approx(ours["benchmarks"][name]["avg_at_k"])
