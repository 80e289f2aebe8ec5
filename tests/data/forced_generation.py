"""Forced generation at the generation boundary only: the real ``HFBackend`` and a tiny random model run
``model.generate`` as usual, and a logits processor leaves one token possible at each step, so that the model writes
scripted responses (a random model is never correct). Everything else is real: chat template, sampling loop, EOS
handling, decoding, token counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

Respond = Callable[[str, int], str]  # (decoded prompt, sample index) -> response text


class ForcedResponses(LogitsProcessor):
    """Row r of a ``generate`` call with ``num_return_sequences=k`` is sample ``r % k`` of its prompt."""

    def __init__(self, tokenizer: Any, respond: Respond, prompt_len: int, k: int, seen: list[str]) -> None:
        self.tokenizer, self.respond, self.prompt_len, self.k, self.seen = tokenizer, respond, prompt_len, k, seen
        self.scripts: dict[int, list[int]] = {}

    def _script(self, row: int, input_ids: torch.Tensor) -> list[int]:
        if row not in self.scripts:
            prompt = self.tokenizer.decode(input_ids[row, : self.prompt_len], skip_special_tokens=True)
            if row % self.k == 0:
                self.seen.append(prompt)
            text = self.respond(prompt, row % self.k)
            self.scripts[row] = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        return self.scripts[row]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_len
        forced = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            script = self._script(row, input_ids)
            forced[row, script[min(step, len(script) - 1)]] = 0.0
        return forced


def force_hf_generation(monkeypatch: Any, respond: Respond) -> list[str]:
    """Make every ``HFBackend`` built from now on write ``respond(prompt, sample_index)``; returns the decoded prompts
    the model was given (one entry per prompt, in generation order)."""
    from verl_pdai.evaluation.hf_backend import HFBackend

    seen: list[str] = []
    original = HFBackend.__init__

    def init(self: HFBackend, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        generate, tokenizer = self.model.generate, self.tokenizer

        def forced_generate(**kw: Any) -> Any:
            processor = ForcedResponses(tokenizer, respond, kw["input_ids"].shape[1], kw["num_return_sequences"], seen)
            return generate(**kw, logits_processor=LogitsProcessorList([processor]))

        self.model.generate = forced_generate

    monkeypatch.setattr(HFBackend, "__init__", init)
    return seen
