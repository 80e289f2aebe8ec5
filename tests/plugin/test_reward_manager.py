"""``pdai_stepwise`` through verl's own reward-loop code path (``RewardLoopWorker``), real Qwen2.5 tokenizer."""

from __future__ import annotations

import json

import pytest

from verl_pdai.plugin.fields import HINT_SPANS_FIELD

from .verl_reward_helpers import agent_loop_sample, reward_config

PROMPT = "What is 7 times 8? Let's think step by step and output the final answer within \\boxed{}."
RIGHT = "Step 1: $7 \\times 8 = 56$.\n\nStep 2: So the product is $\\boxed{56}$."
WRONG_CLAIM = "Step 1: $7 \\times 8 = 54$.\n\nStep 2: So the product is $\\boxed{54}$."


@pytest.fixture(scope="module")
def worker(tokenizer_dir):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    return RewardLoopWorker(reward_config(tokenizer_dir))


def run(worker, data):
    # verl's stock managers keep the loop they were built on (verl.utils.ray_utils.get_event_loop); use it
    from verl.utils.ray_utils import get_event_loop

    return get_event_loop().run_until_complete(worker.compute_score_batch(data))[0]


def test_verl_resolves_the_registered_manager(worker):
    from verl_pdai.plugin.reward_manager import PdaiStepwiseRewardManager

    assert type(worker.reward_manager) is PdaiStepwiseRewardManager


def test_right_answer_scores_outcome_and_step_token_ends(worker, tokenizer):
    ids = tokenizer.encode(RIGHT, add_special_tokens=False) + [tokenizer.eos_token_id]
    out = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))
    info = out["reward_extra_info"]
    assert info["acc"] == 1.0 and info["pred"] == "56"
    assert out["reward_score"] == pytest.approx(info["outcome"] + info["process_score"])
    ends = json.loads(info["step_token_ends"])
    assert len(ends) == info["num_steps"] == 2
    # the token at each step end must be where the step's text ends: decode up to it and compare
    first_step_text = tokenizer.decode(ids[: ends[0] + 1])
    assert first_step_text.rstrip().endswith("56$.")
    assert ends[1] < len(ids) and tokenizer.decode(ids[: ends[1] + 1]).endswith("}$.")


def test_false_claim_found_and_wrong_answer(worker, tokenizer):
    ids = tokenizer.encode(WRONG_CLAIM, add_special_tokens=False)
    info = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))["reward_extra_info"]
    assert info["acc"] == 0.0 and info["num_false_claims"] == 1 and info["first_error_step"] == 0
    assert info["process_score"] < 0


def test_hint_spans_are_excluded_from_outcome_and_steps(worker, tokenizer):
    """A hint that contains the boxed answer must not earn the outcome; its tokens get no step end."""
    before = tokenizer.encode("Let me think about the product.\n\n", add_special_tokens=False)
    hint = tokenizer.encode("Hint: 7 \\times 8 = 56, so the answer is \\boxed{56}.\n\n", add_special_tokens=False)
    after = tokenizer.encode("I am not sure, I give up.", add_special_tokens=False)
    ids = before + hint + after
    span = [len(before), len(before) + len(hint)]
    hinted = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56", rollout_fields={HINT_SPANS_FIELD: [span]}))
    unmarked = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))
    assert unmarked["reward_extra_info"]["acc"] == 1.0  # the same tokens without the mark would be rewarded
    info = hinted["reward_extra_info"]
    assert info["acc"] == 0.0 and info["pred"] == ""
    ends = json.loads(info["step_token_ends"])
    assert ends and all(not (span[0] <= e < span[1]) for e in ends)
    assert ends[-1] == len(ids) - 1


def test_reward_kwargs_configure_and_unknown_keys_fail(tokenizer_dir, tokenizer):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(reward_config(tokenizer_dir, ["+reward.reward_kwargs.outcome_weight=2.0"]))
    ids = tokenizer.encode(RIGHT, add_special_tokens=False)
    info = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))["reward_extra_info"]
    assert info["outcome"] == 2.0
    with pytest.raises(ValueError, match="unknown key.*process_wieght"):
        RewardLoopWorker(reward_config(tokenizer_dir, ["+reward.reward_kwargs.process_wieght=0.1"]))


def test_importlib_source_loads_the_same_manager(tokenizer_dir, tokenizer):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    overrides = [
        "reward.reward_manager.source=importlib",
        "reward.reward_manager.name=PdaiStepwiseRewardManager",
        "reward.reward_manager.module.path=pkg://verl_pdai.plugin.reward_manager",
    ]
    worker = RewardLoopWorker(reward_config(tokenizer_dir, overrides))
    ids = tokenizer.encode(RIGHT, add_special_tokens=False)
    assert run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))["reward_extra_info"]["acc"] == 1.0


def test_every_sample_has_the_same_extra_info_keys(worker, tokenizer):
    texts = [RIGHT, WRONG_CLAIM, "", "\\boxed{", "<think> never closed " * 50]
    keys = set()
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False) or [tokenizer.eos_token_id]
        info = run(worker, agent_loop_sample(tokenizer, PROMPT, ids, "56"))["reward_extra_info"]
        keys.add(tuple(sorted(info)))
    assert len(keys) == 1


def test_compute_score_serves_verls_stock_naive_manager(tokenizer_dir, tokenizer):
    """The same checker for a plain-GRPO baseline: verl's naive manager with our compute_score."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    overrides = [
        "reward.reward_manager.name=naive",
        "reward.custom_reward_function.path=pkg://verl_pdai.api",
        "reward.custom_reward_function.name=compute_score",
    ]
    worker = RewardLoopWorker(reward_config(tokenizer_dir, overrides))
    assert type(worker.reward_manager).__name__ == "NaiveRewardManager"
    half = tokenizer.encode("So the answer is $\\boxed{0.5}$.", add_special_tokens=False)
    out = run(worker, agent_loop_sample(tokenizer, PROMPT, half, "\\frac{1}{2}"))
    assert out["reward_score"] == pytest.approx(1.0, abs=0.25) and out["reward_extra_info"]["acc"] == 1.0


def test_row_without_ground_truth_scores_no_outcome_instead_of_failing(worker, tokenizer):
    ids = tokenizer.encode(RIGHT, add_special_tokens=False)
    data = agent_loop_sample(tokenizer, PROMPT, ids, "56")
    data.non_tensor_batch["reward_model"][0] = {"style": "rule"}  # the ground truth is missing
    out = run(worker, data)
    assert out["reward_extra_info"]["acc"] == 0.0 and out["reward_extra_info"]["num_steps"] == 2


EXACT_PROMPT = (
    "Sam buys 12 pencils at 3 dollars and 5 notebooks at 7 dollars, and pays with 100 dollars. What is his change? "
    "Let's think step by step and output the final answer within \\boxed{}."
)
EXACT_REFERENCE = (
    "Pencils: $12 \\cdot 3 = 36$. Notebooks: $5 \\cdot 7 = 35$. Total $36 + 35 = 71$. Change $100 - 71 = 29$."
)


def test_eight_correct_answers_with_different_step_scores_get_exactly_zero_outcome_advantage(worker, tokenizer):
    """Finding 1 end to end: the real reward manager, the trainer's advantage inputs, ``epgrpo``. The outcome is
    read from the reward's own field, so eight correct answers get an outcome part of exactly 0 whatever their
    step scores (it was up to 0.365 when the outcome was recovered as total minus steps)."""
    import numpy as np
    import torch

    from verl_pdai.core.advantage import compute_epgrpo_parts
    from verl_pdai.plugin.advantage_inputs import epgrpo_inputs

    steps = [
        "Pencils: $12 \\cdot 3 = 36$.",
        "Notebooks: $5 \\cdot 7 = 35$.",
        "Total $36 + 35 = 71$.",
        "Wait, $36 + 35 = 72$? No.",
        "Change $100 - 71 = 29$.",
    ]
    texts = ["\n\n".join([*steps[k % 5 : k % 5 + 1 + k % 3], "So \\boxed{29}."]) for k in range(8)]
    outs = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        sample = agent_loop_sample(tokenizer, EXACT_PROMPT, ids, "29", {"reference_solution": EXACT_REFERENCE})
        outs.append((ids, run(worker, sample)))
    infos = [out["reward_extra_info"] for _, out in outs]
    assert all(info["acc"] == 1.0 for info in infos)
    assert len({json.loads(info["step_scores"]).__repr__() for info in infos}) > 2  # the step scores differ
    width = max(len(ids) for ids, _ in outs)
    token_level = torch.zeros(8, width)
    mask = torch.zeros(8, width, dtype=torch.long)
    for row, (ids, out) in enumerate(outs):
        token_level[row, len(ids) - 1] = out["reward_score"]  # verl puts the scalar reward on the last token
        mask[row, : len(ids)] = 1
    fields = {key: np.array([info[key] for info in infos], dtype=object) for key in infos[0]}
    inputs = epgrpo_inputs(fields, token_level)
    parts = compute_epgrpo_parts(
        inputs["pdai_outcome_scores"], mask, ["g"] * 8, None, None, inputs["pdai_step_rewards"],
        inputs["pdai_step_mask"],
    )  # fmt: skip
    assert bool((parts.outcome == 0).all())  # exactly, not approximately
    assert bool((parts.process != 0).any())  # the process part still tells the responses apart
    assert float(parts.process.abs().max()) <= 0.2 + 1e-6


def test_numbers_of_the_prompt_and_of_the_hint_earn_no_key_credit(worker, tokenizer):
    """The manager hands the prompt and the hint text to the scorer: a key value shown there is not creditable."""
    reference = "The total is $12 \\cdot 3 = 36$, then $36 + 35 = 71$."
    hint = tokenizer.encode("Hint: the total is 71 dollars.\n\n", add_special_tokens=False)
    own = tokenizer.encode("So $12 \\cdot 3 = 36$ and $36 + 35 = 71$.\n\n\\boxed{29}", add_special_tokens=False)
    extra = {"reference_solution": reference}
    plain = run(worker, agent_loop_sample(tokenizer, EXACT_PROMPT, own, "29", extra))["reward_extra_info"]
    span = [[0, len(hint)]]
    hinted = run(
        worker,
        agent_loop_sample(tokenizer, EXACT_PROMPT, hint + own, "29", extra, rollout_fields={HINT_SPANS_FIELD: span}),
    )["reward_extra_info"]
    assert plain["key_quantities_reached"] == 2 and plain["num_key_quantities"] == 2
    assert hinted["key_quantities_reached"] == 1  # 71 was shown in the hint
    assert hinted["process_score"] < plain["process_score"]
