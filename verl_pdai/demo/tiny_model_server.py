"""A real (tiny, random-weight) causal LM at the GPU boundary: verl's ``generate`` contract, decoded in-process.

``TinyModelServer.generate`` implements what verl's server manager offers an agent loop
(``generate(request_id, *, prompt_ids, sampling_params) -> TokenOutput``) on a seeded random
``Qwen2ForCausalLM`` with the real tokenizer's vocabulary, with vLLM's semantics where they matter:

* ``max_tokens`` caps the new tokens (and the context never exceeds ``max_position_embeddings``);
* ``stop`` (list of strings): generation stops after the token whose decoded text (special tokens skipped, as
  vLLM's detokenizer does) completes a stop string; that token is returned, as vLLM returns it;
* EOS (``eos_token_ids``, default the tokenizer's) ends generation and is returned;
* ``temperature`` (0: greedy) and ``logit_bias`` ({token id: bias}, added to the logits before sampling, like
  vLLM/OpenAI ``logit_bias``) shape the sampling distribution;
* ``logprobs`` (truthy): the sampled tokens' log-probs are returned. ``logprobs_mode="raw"`` (default, as
  vLLM's default ``raw_logprobs``) gives the model's own log-softmax, before bias and temperature: exactly what
  a teacher-forced forward pass of the same model computes; ``"processed"`` gives the sampling distribution's.

Random weights give a nearly uniform next-token distribution over ~150k ids, so step boundaries ("\\n\\n") and
EOS almost never occur by chance: tests bias them with ``logit_bias``.

Sampling is deterministic: each call draws from a ``torch.Generator`` seeded from (``seed``, the session the
request id names, the context ids), so a session of ``pdai-<uid>-<index>-<hex>`` produces the same tokens run
after run whatever the interleaving. The blocking decode loop (KV cache, one token per step) runs in a thread
(``asyncio.to_thread``) so that concurrent sessions interleave. Every call is recorded per request id.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from verl.workers.rollout.replica import TokenOutput


def build_tiny_model(
    vocab_size: int, seed: int = 0, max_positions: int = 1024, hidden_size: int = 64, num_layers: int = 2
) -> torch.nn.Module:
    """A small Qwen2 causal LM (default 2 layers, hidden 64) with random (seeded) weights, eval mode, on CPU."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)  # building the model leaves the global rng as it was
    return model.eval()


@dataclass
class Call:
    """One ``generate`` call as the server saw and answered it."""

    prompt_ids: list[int]
    max_tokens: int
    stop: list[str]
    token_ids: list[int]
    log_probs: list[float]  # always recorded, whether or not they were requested


_SESSION_ID = re.compile(r"pdai-(.+-\d+)-[0-9a-f]+$")


class TinyModelServer:
    def __init__(
        self,
        tokenizer: Any,
        *,
        seed: int = 0,
        logit_bias: dict[int, float] | None = None,
        eos_token_ids: Iterable[int] | None = None,
        logprobs_mode: Literal["raw", "processed"] = "raw",
        model: torch.nn.Module | None = None,
        seed_by_index: bool = False,
        weight_version: Callable[[], int] | None = None,
        response_length: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        # verl's vLLM server caps a call without max_tokens at the rollout's response_length (None: the context)
        self.response_length = response_length
        self.seed = seed
        # True: a session's randomness depends on its index in the group, not on the (random) uid, so a run is
        # reproducible from the seed alone (the context ids keep different prompts apart)
        self.seed_by_index = seed_by_index
        self.model = model if model is not None else build_tiny_model(len(tokenizer), seed)
        self.vocab_size = int(self.model.config.vocab_size)
        self.max_positions = int(self.model.config.max_position_embeddings)
        self.eos_ids = {int(t) for t in eos_token_ids} if eos_token_ids is not None else {int(tokenizer.eos_token_id)}
        self.logprobs_mode = logprobs_mode
        self.bias = torch.zeros(self.vocab_size)
        for token, value in (logit_bias or {}).items():
            self.bias[int(token)] = float(value)
        self.calls: dict[str, list[Call]] = {}  # request id -> its calls, in order
        # as verl's LLM client reports it: the weight version (global step) each output was generated with
        self.weight_version = weight_version
        self._lock = threading.Lock()
        self._visits: dict[str, int] = {}  # sampling key -> calls so far (see _generator)

    # ------------------------------------------------------------------ records

    def produced(self, request_id: str) -> list[int]:
        """Every token this server generated for a request id, all calls concatenated."""
        return [t for call in self.calls.get(request_id, []) for t in call.token_ids]

    def request_ids(self, prefix: str) -> list[str]:
        return [r for r in self.calls if r.startswith(prefix)]

    # ------------------------------------------------------------------ verl's contract

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        prompt_ids = [int(t) for t in prompt_ids]
        room = self.max_positions - len(prompt_ids)
        if room <= 0:
            raise ValueError(f"prompt of {len(prompt_ids)} tokens exceeds the model's {self.max_positions} positions")
        asked = sampling_params.get("max_tokens") or self.response_length or room
        max_tokens = min(int(asked), room)
        stop = sampling_params.get("stop") or []
        stop = [stop] if isinstance(stop, str) else [s for s in stop if s]
        temperature = float(sampling_params.get("temperature", 1.0))
        ids, log_probs = await asyncio.to_thread(
            self._decode, prompt_ids, max_tokens, stop, temperature, self._generator(request_id, prompt_ids)
        )
        with self._lock:
            self.calls.setdefault(request_id, []).append(Call(prompt_ids, max_tokens, stop, ids, log_probs))
        return TokenOutput(
            token_ids=ids,
            log_probs=log_probs if sampling_params.get("logprobs") else None,
            stop_reason="completed",
            extra_fields=self._version_fields(),
        )

    def _version_fields(self) -> dict[str, int]:
        if self.weight_version is None:
            return {}
        version = int(self.weight_version())
        return {"global_steps": version, "min_global_steps": version, "max_global_steps": version}

    # ------------------------------------------------------------------ decoding

    def _generator(self, request_id: str, prompt_ids: list[int]) -> torch.Generator:
        """A generator seeded by (seed, session, context, visit): reproducible whatever order sessions run in.
        ``visit`` counts earlier calls with the same key (a prompt seen again in a later epoch): a repeated
        request draws fresh numbers, as a vLLM server does, instead of replaying the first visit's draws."""
        match = _SESSION_ID.match(request_id)
        session = match.group(1) if match else request_id
        if self.seed_by_index and match:
            session = session.rsplit("-", 1)[-1]
        key = f"{self.seed}|{session}|{prompt_ids}"
        with self._lock:
            visit = self._visits.get(key, 0)
            self._visits[key] = visit + 1
        key = key if visit == 0 else f"{key}|{visit}"
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))

    def _stopped(self, ids: list[int], stop: list[str]) -> bool:
        # stop strings are matched in this call's output text, as vLLM matches them in the request's output
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return any(s in text for s in stop)

    @torch.inference_mode()
    def _decode(
        self, prompt_ids: list[int], max_tokens: int, stop: list[str], temperature: float, generator: torch.Generator
    ) -> tuple[list[int], list[float]]:
        """Token-by-token decoding with a KV cache; returns (new ids, their log-probs)."""
        ids: list[int] = []
        log_probs: list[float] = []
        inputs = torch.tensor([prompt_ids], dtype=torch.long)
        past = None
        for _ in range(max_tokens):
            out = self.model(input_ids=inputs, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[0, -1].float()
            raw = torch.log_softmax(logits, dim=-1)
            biased = logits + self.bias
            if temperature <= 0:
                token = int(torch.argmax(biased))
                processed = torch.log_softmax(biased, dim=-1)
            else:
                processed = torch.log_softmax(biased / temperature, dim=-1)
                # inverse-CDF sampling: one uniform draw per token (cheaper than multinomial over 150k ids)
                cdf = torch.cumsum(processed.exp(), dim=0)
                u = torch.rand((), generator=generator) * cdf[-1]
                token = min(int(torch.searchsorted(cdf, u)), self.vocab_size - 1)
            ids.append(token)
            log_probs.append(float((raw if self.logprobs_mode == "raw" else processed)[token]))
            if token in self.eos_ids or (stop and self._stopped(ids, stop)):
                break
            inputs = torch.tensor([[token]], dtype=torch.long)
        return ids, log_probs

    @torch.inference_mode()
    def teacher_forced_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        """The model's raw log-probs of ``response_ids`` after ``prompt_ids``, in one forward pass."""
        ids = torch.tensor([prompt_ids + response_ids], dtype=torch.long)
        logits = self.model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
        picked = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(response_ids).unsqueeze(1))
        return picked.squeeze(1).tolist()
