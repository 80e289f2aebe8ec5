"""Hugging Face transformers backend: batched ``generate`` with ``num_return_sequences=k``, for CPU and small models.

Prompts go through the tokenizer's chat template (``add_generation_prompt``), as verl's rollout builds them; left
padding; ``batch_size`` prompts (times k sequences) per call bound the memory. Heavy imports happen on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verl_pdai.evaluation.backends import Messages, Sample, chat_prompt_ids


class HFBackend:
    name = "hf"

    def __init__(self, model_path: str, *, batch_size: int = 8, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self.batch_size = max(1, batch_size)
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(i) for i in eos_ids if i is not None} | {int(self.tokenizer.eos_token_id)}

    def _encode(self, prompts: Sequence[Messages]) -> Any:
        # the same token ids the vLLM backend sends (chat template, no second BOS), left-padded into one batch
        ids = [chat_prompt_ids(self.tokenizer, m) for m in prompts]
        return self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt").to(self.device)

    def _length(self, ids: list[int]) -> int:
        """Generated tokens up to and including the first end-of-sequence token (the rest is padding)."""
        for index, token in enumerate(ids):
            if token in self.eos_ids:
                return index + 1
        return len(ids)

    def generate(
        self,
        prompts: Sequence[Messages],
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Sample]]:
        out: list[list[Sample]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = self._encode(prompts[start : start + self.batch_size])
            self.torch.manual_seed(seed + start)  # reproducible per batch, whatever ran before
            # greedy decoding gives one sequence per prompt (transformers refuses k greedy copies): repeat it
            sampled = temperature > 0
            sampling: dict[str, Any] = {"do_sample": False}
            if sampled:
                sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
            with self.torch.no_grad():
                generated = self.model.generate(
                    **batch,
                    **sampling,
                    max_new_tokens=max_tokens,
                    num_return_sequences=k if sampled else 1,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            if not sampled:
                generated = generated.repeat_interleave(k, dim=0)
            new_tokens = generated[:, batch["input_ids"].shape[1] :].tolist()
            samples = [ids[: self._length(ids)] for ids in new_tokens]
            texts = self.tokenizer.batch_decode(samples, skip_special_tokens=True)
            flat = [(text, len(ids)) for text, ids in zip(texts, samples, strict=True)]
            out.extend(flat[i : i + k] for i in range(0, len(flat), k))
        return out
