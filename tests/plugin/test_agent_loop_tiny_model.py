"""``pdai_hint`` on real generated tokens: a seeded random tiny Qwen2 LM behind verl's ``generate`` contract.

The scripted server (``fake_server.py``) pins the agent loop's logic; this module checks the same invariants
on token ids a model actually sampled (odd tokens, special tokens, boundaries wherever they fall), with real
log-probs, through verl's own ``AgentLoopWorker`` methods and batch assembly.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest
import torch

from verl_pdai.core.hints import build_hints
from verl_pdai.core.policy import PolicyConfig
from verl_pdai.core.rollout_metrics import rollout_metrics
from verl_pdai.demo.agent_harness import HarnessWorker, math_row
from verl_pdai.demo.tiny_model_server import TinyModelServer, build_tiny_model
from verl_pdai.plugin import fields as F

from .verl_reward_helpers import reward_config

PROBLEM = "A rectangle has sides 6 and 8. What is the length of its diagonal? Put the answer in \\boxed{}."
# short, so that a hint fits the small response budget (levels reveal 1 or 2 of its steps)
SOLUTION = "The legs are 6 and 8.\n\nSo the squared diagonal is 36 + 64.\n\nHence the diagonal is $\\boxed{10}$."
N, K, RESPONSE_LENGTH, MIN_TOKENS, PROMPT_LENGTH = 4, 2, 96, 16, 128
BOUNDARY = "\n\n"
# random weights give ~1/150k per token: +10 makes "\n\n" ~13% per token, +5 makes EOS ~0.1%
BOUNDARY_BIAS, EOS_BIAS = 10.0, 5.0


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


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_model(len(tokenizer), seed=0)


@pytest.fixture
def server(tokenizer, model):
    (boundary_id,) = tokenizer.encode(BOUNDARY, add_special_tokens=False)
    bias = {boundary_id: BOUNDARY_BIAS, tokenizer.eos_token_id: EOS_BIAS}
    return TinyModelServer(tokenizer, seed=0, logit_bias=bias, model=model)


def response_of(output) -> tuple[list[int], list[int], list[float]]:
    """Unpadded response ids, mask and log-probs of one post-processed output."""
    length = int(output.attention_mask[0, output.prompt_ids.shape[1] :].sum())
    ids = output.response_ids[0, :length].tolist()
    mask = output.response_mask[0, :length].tolist()
    return ids, mask, output.response_logprobs[0, :length].tolist()


def request_id_of(server: TinyModelServer, uid: str, output) -> str:
    (request_id,) = server.request_ids(f"pdai-{uid}-{output.extra_fields[F.SESSION_FIELD]}-")
    return request_id


def check_model_tokens(server: TinyModelServer, request_id: str, ids: list[int], logprobs: list[float], span) -> None:
    """Model-written tokens are exactly the server's, in order, with its real log-probs; the hint is 0.0."""
    calls = server.calls[request_id]
    prompt = calls[0].prompt_ids
    start, end = span or (len(ids), len(ids))
    model_positions = [i for i in range(len(ids)) if not start <= i < end]
    assert [ids[i] for i in model_positions] == server.produced(request_id)
    assert [logprobs[i] for i in model_positions] == pytest.approx([lp for c in calls for lp in c.log_probs])
    assert all(logprobs[i] < 0 and math.isfinite(logprobs[i]) for i in model_positions)
    assert logprobs[start:end] == [0.0] * (end - start)
    # every call continued exactly the response so far (token in, token out: nothing re-tokenized)
    done = 0
    for call in calls:
        context = ids[:done] if done < start or span is None else ids[: done + end - start]
        assert call.prompt_ids == prompt + context
        done += len(call.token_ids)
    # and the log-probs are the model's own: a teacher-forced pass over the final sequence agrees
    forced = server.teacher_forced_logprobs(prompt, ids)
    assert [logprobs[i] for i in model_positions] == pytest.approx([forced[i] for i in model_positions], abs=1e-4)


def test_hard_group_on_real_model_tokens_gets_masked_hints_at_step_boundaries(config, tokenizer, server):
    worker = HarnessWorker(config, tokenizer, server)
    row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9})
    started = time.monotonic()
    outputs = asyncio.run(worker.run_group("tiny", N, row))
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"a 4-session group of a 2-layer model took {elapsed:.1f}s"

    assert [o.extra_fields[F.ROLE_FIELD] for o in outputs] == ["preview"] * K + ["main"] * (N - K)
    hints = build_hints(SOLUTION, "10", PolicyConfig().fractions, suffix=BOUNDARY)
    hinted = 0
    for output in outputs:
        info = output.extra_fields
        ids, mask, logprobs = response_of(output)
        request_id = request_id_of(server, "tiny", output)
        assert 0 < len(ids) <= RESPONSE_LENGTH and mask[-1] == 1  # the last token is model-written
        if not info[F.HINT_SPANS_FIELD]:
            assert set(mask) == {1} and info[F.HINT_LEVEL_FIELD] == 0
            check_model_tokens(server, request_id, ids, logprobs, None)
            if info[F.ROLE_FIELD] == "main":  # only a session that ended before its injection point escapes
                assert info[F.DECISION_FIELD] == "ended_before_injection_point"
                assert ids[-1] == tokenizer.eos_token_id or len(ids) == RESPONSE_LENGTH
            continue
        hinted += 1
        assert info[F.ROLE_FIELD] == "main" and info[F.DECISION_FIELD].startswith("hinted")
        ((start, end),) = info[F.HINT_SPANS_FIELD]
        # the injection point: the first step boundary completed at or after min_tokens, right after its token
        assert start >= MIN_TOKENS
        assert tokenizer.decode(ids[:start]).endswith(BOUNDARY)
        assert BOUNDARY not in tokenizer.decode(ids[MIN_TOKENS : start - 1], skip_special_tokens=True)
        hint_ids = tokenizer.encode(hints.for_level(info[F.HINT_LEVEL_FIELD]).text, add_special_tokens=False)
        assert ids[start:end] == hint_ids and info[F.HINT_TOKENS_FIELD] == end - start
        assert mask == [1] * start + [0] * (end - start) + [1] * (len(ids) - end) and end < len(ids)
        check_model_tokens(server, request_id, ids, logprobs, (start, end))
    # Beta(1, 9) and failing previews: every main session that reaches its injection point is hinted (with these
    # seeds both do; a session ends before it ~5% of the time, so a change of torch numerics may turn one)
    assert hinted >= 1

    batch = worker.batch(outputs)
    responses, response_mask = batch.batch["responses"], batch.batch["response_mask"]
    assert responses.shape == (N, RESPONSE_LENGTH)
    valid = batch.batch["attention_mask"][:, -RESPONSE_LENGTH:]
    hint_tokens = [o.extra_fields[F.HINT_TOKENS_FIELD] for o in outputs]
    assert (valid.sum(-1) - response_mask.sum(-1)).tolist() == hint_tokens
    assert torch.all(batch.batch["rollout_log_probs"][response_mask == 0] == 0.0)
    assert list(batch.non_tensor_batch[F.ROLE_FIELD]) == ["preview"] * K + ["main"] * (N - K)
    # the trainer's rollout metrics read this batch's columns as verl assembled them
    metrics = rollout_metrics(batch.non_tensor_batch, [0.0] * N, response_mask, valid)
    assert metrics["pdai/intervention_rate"] == hinted / (N - K)
    assert metrics["pdai/hint_token_share"] == pytest.approx(sum(hint_tokens) / int(valid.sum()))
    assert metrics.get("pdai/preview_pass_rate", 0.0) == 0.0  # random text never answers 10


def test_validation_group_on_real_model_tokens_is_never_hinted(config, tokenizer, server):
    worker = HarnessWorker(config, tokenizer, server)
    row = math_row(PROBLEM, "10", SOLUTION, split="test")
    outputs = asyncio.run(worker.run_group("tiny-val", N, row, validate=True))
    assert len(server.calls) == N
    for output in outputs:
        ids, mask, logprobs = response_of(output)
        assert output.extra_fields[F.ROLE_FIELD] == "validation" and output.extra_fields[F.HINT_SPANS_FIELD] == []
        assert set(mask) == {1} and 0 < len(ids) <= RESPONSE_LENGTH
        (request_id,) = [r for r, calls in server.calls.items() if server.produced(r) == ids]
        (call,) = server.calls[request_id]  # one plain generation, no stop string
        assert call.stop == [] and call.max_tokens == RESPONSE_LENGTH
        assert logprobs == pytest.approx(call.log_probs) and all(lp < 0 for lp in logprobs)
    worker.batch(outputs)


# ---------------------------------------------------------------------- the server's own contract


def test_server_honours_stop_eos_max_tokens_logprobs_and_is_deterministic(tokenizer, model):
    (boundary_id,) = tokenizer.encode(BOUNDARY, add_special_tokens=False)
    prompt = tokenizer.encode("Let us count.", add_special_tokens=False)

    def ask(server, params, request_id="pdai-u-0-ab"):
        return asyncio.run(server.generate(request_id, prompt_ids=prompt, sampling_params=params))

    plain = TinyModelServer(tokenizer, seed=0, model=model)
    out = ask(plain, {"max_tokens": 7, "temperature": 1.0})
    assert len(out.token_ids) == 7 and out.log_probs is None
    replay = TinyModelServer(tokenizer, seed=0, model=model)
    again = ask(replay, {"max_tokens": 7, "temperature": 1.0, "logprobs": True})
    assert again.token_ids == out.token_ids and len(again.log_probs) == 7  # same seed, session and context: same draw
    revisit = ask(plain, {"max_tokens": 7, "temperature": 1.0})
    assert revisit.token_ids != out.token_ids  # the same prompt seen again (a later epoch) draws fresh numbers
    assert ask(replay, {"max_tokens": 7, "temperature": 1.0}).token_ids == revisit.token_ids  # ... reproducibly
    other = ask(plain, {"max_tokens": 7, "temperature": 1.0}, request_id="pdai-u-1-ab")
    assert other.token_ids != out.token_ids  # another session of the group samples differently
    # a stop string: the token that completes it is returned, and generation stops there
    stopper = TinyModelServer(tokenizer, seed=0, model=model, logit_bias={boundary_id: 8.0})
    out = ask(stopper, {"max_tokens": 200, "stop": [BOUNDARY]})
    assert out.token_ids[-1] == boundary_id and out.token_ids.count(boundary_id) == 1 and len(out.token_ids) < 200
    # EOS ends generation and is returned
    ender = TinyModelServer(tokenizer, seed=0, model=model, logit_bias={tokenizer.eos_token_id: 30.0})
    assert ask(ender, {"max_tokens": 50}).token_ids == [tokenizer.eos_token_id]
    # greedy: raw log-probs ignore the bias; processed ones are the sampling distribution's
    raw = ask(ender, {"max_tokens": 1, "temperature": 0, "logprobs": True}).log_probs[0]
    assert raw == pytest.approx(plain.teacher_forced_logprobs(prompt, [tokenizer.eos_token_id])[0], abs=1e-5)
    processed = TinyModelServer(
        tokenizer, model=model, logit_bias={tokenizer.eos_token_id: 30.0}, logprobs_mode="processed"
    )
    assert ask(processed, {"max_tokens": 1, "temperature": 0, "logprobs": True}).log_probs[0] > -1e-3


# ---------------------------------------------------------------------- a stop string inside a token


def test_boundary_completed_inside_a_token_does_not_cut_the_session_short(config, tokenizer, model):
    (inside,) = tokenizer.encode("\n\n    \n", add_special_tokens=False)  # holds "\n\n", does not end with it
    server = TinyModelServer(tokenizer, seed=0, logit_bias={inside: BOUNDARY_BIAS}, model=model)
    worker = HarnessWorker(config, tokenizer, server)
    outputs = asyncio.run(
        worker.run_group("inside", N, math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    )
    for output in outputs[K:]:
        ids, _, _ = response_of(output)
        # no EOS was sampled (no bias on it), so a session ends only when its budget is spent
        assert len(ids) == RESPONSE_LENGTH, (output.extra_fields[F.DECISION_FIELD], len(ids))
