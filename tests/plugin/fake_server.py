"""A scripted LLM server at the GPU boundary: verl's ``generate`` contract, real tokenizer, no model.

Each session follows a script chosen by its session index (parsed from the request id the agent loop
sends: ``pdai-<uid>-<index>-<hex>``). The server remembers how many script tokens it has produced per request
id, so a continuation request resumes the script exactly where it stopped; tokens the agent loop injected
(hints) do not advance the script, and once a hint is in the context the session switches to its
``after_hint`` script. ``stop`` strings and ``max_tokens`` are honoured as vLLM does (the token that
completes the stop string is returned). An optional delay per generated token models decode time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verl.workers.rollout.replica import TokenOutput


@dataclass
class Script:
    text: str
    after_hint: str | None = None  # what the session writes once a hint was injected
    abort_after_hint: bool = False  # the server returns nothing once a hint is in the context
    fail: bool = False  # the server raises for this session (a crashed request)


@dataclass
class _Session:
    prompt_len: int
    produced: int = 0  # model tokens produced so far (script position)
    hinted: bool = False
    ids: list[int] = field(default_factory=list)


class ScriptedServer:
    def __init__(
        self,
        tokenizer: Any,
        script_for: Callable[[str, int], Script],
        delay_per_token: float = 0.0,
        logprob: float = -0.5,
        weight_version: Callable[[], int] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.script_for = script_for
        self.delay_per_token = delay_per_token
        self.logprob = logprob
        # like verl's LLM client: each output carries the weight version that generated it (global_steps)
        self.weight_version = weight_version
        self.sessions: dict[str, _Session] = {}
        self.calls: list[dict[str, Any]] = []
        self._encoded: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        if text not in self._encoded:
            self._encoded[text] = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        return self._encoded[text]

    @staticmethod
    def _parse(request_id: str) -> tuple[str, int]:
        match = re.match(r"pdai-(.+)-(\d+)-[0-9a-f]+$", request_id)
        return (match.group(1), int(match.group(2))) if match else (request_id, 0)

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        uid, index = self._parse(request_id)
        session = self.sessions.setdefault(request_id, _Session(prompt_len=len(prompt_ids)))
        expected = session.prompt_len + len(session.ids)
        if len(prompt_ids) > expected:  # tokens appended by the agent loop since our last answer: a hint
            session.hinted = True
            session.ids = list(prompt_ids[session.prompt_len :])
            session.produced = 0
        assert prompt_ids[session.prompt_len :] == session.ids, "the agent loop must resend exactly our tokens"
        script = self.script_for(uid, index)
        if script.fail:
            raise RuntimeError(f"scripted server failure for {request_id}")
        if session.hinted and script.abort_after_hint:
            return TokenOutput(token_ids=[], log_probs=[], stop_reason="aborted")
        text = script.after_hint if session.hinted and script.after_hint is not None else script.text
        source = self._ids(text)
        max_tokens = int(sampling_params.get("max_tokens", len(source)))
        stop = (sampling_params.get("stop") or [None])[0]
        out: list[int] = []
        position = session.produced
        while position < len(source) and len(out) < max_tokens:
            out.append(source[position])
            position += 1
            if out[-1] == self.tokenizer.eos_token_id:
                break
            if stop and stop in self.tokenizer.decode(out[-4:]):
                break
        session.produced = position
        session.ids += out
        self.calls.append(
            {
                "request_id": request_id,
                "index": index,
                "max_tokens": max_tokens,
                "stop": stop,
                "n_out": len(out),
                "prompt_len": len(prompt_ids),
            }
        )
        if self.delay_per_token:
            await asyncio.sleep(self.delay_per_token * len(out))
        else:
            await asyncio.sleep(0)
        log_probs = [self.logprob] * len(out) if sampling_params.get("logprobs") else None
        extra: dict[str, Any] = {}
        if self.weight_version is not None:
            version = self.weight_version()
            extra = {"global_steps": version, "min_global_steps": version, "max_global_steps": version}
        return TokenOutput(token_ids=out, log_probs=log_probs, stop_reason="completed", extra_fields=extra)
