"""vLLM backend (GPU): ``vllm.LLM`` + ``SamplingParams(n=k, ...)``; imported only when this backend is chosen.

Prompts are tokenized with the model's chat template (``add_generation_prompt``) and handed to vLLM as token
ids, as verl's rollout does, so a template that already holds a BOS token never gets a second one. The engine
seed (``LLM(seed=...)``) makes a run reproducible; no per-request seed is set, so the k samples of a prompt stay
distinct.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verl_pdai.evaluation.backends import Messages, Sample
from verl_pdai.evaluation.data import EvalInputError


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise EvalInputError(
                f"--backend vllm needs vLLM on a GPU machine ({exc}); install it (pip install vllm) or use --backend hf"
            ) from exc
        kwargs: dict[str, Any] = {
            "model": model_path,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
            "gpu_memory_utilization": gpu_memory_utilization,
        }
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm: Any = LLM(**kwargs)
        self.tokenizer: Any = self.llm.get_tokenizer()

    def generate(
        self,
        prompts: Sequence[Messages],
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Sample]]:
        from vllm import SamplingParams

        del seed  # the engine seed is set at construction (see the module docstring)
        params = SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        requests = [
            {"prompt_token_ids": list(self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=True))}
            for m in prompts
        ]
        results = self.llm.generate(requests, params)
        return [[(c.text, len(c.token_ids)) for c in result.outputs] for result in results]
