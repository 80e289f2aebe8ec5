"""vLLM backend (GPU): ``vllm.LLM`` + ``SamplingParams(n=k, ...)``; vLLM is imported only when this backend is chosen.

Prompts are tokenized with the model's chat template (``add_generation_prompt``) and handed to vLLM as token
ids (:func:`~verl_pdai.evaluation.backends.chat_prompt_ids`), as verl's rollout does, so a template that already
holds a BOS token never gets a second one. The engine seed (``LLM(seed=...)``) makes a run reproducible; no
per-request seed is set, so the k samples of a prompt stay distinct.

Building the engine (:func:`load_vllm_engine`) is kept apart from using it (:class:`VLLMBackend`): a test or a
CPU build of vLLM passes any object with ``generate(requests, sampling_params)`` and ``get_tokenizer()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verl_pdai.evaluation.backends import Messages, Sample, chat_prompt_ids
from verl_pdai.evaluation.data import EvalInputError


def load_vllm_engine(
    model_path: str,
    *,
    tensor_parallel_size: int = 1,
    seed: int = 0,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
) -> Any:
    """``vllm.LLM`` for ``model_path``; a missing vLLM is an :class:`EvalInputError` that says what to do."""
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
    return LLM(**kwargs)


def sampling_params(k: int, temperature: float, top_p: float, max_tokens: int) -> Any:
    """``vllm.SamplingParams`` of one evaluation (k samples a prompt)."""
    from vllm import SamplingParams

    return SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens)


class VLLMBackend:
    name = "vllm"

    def __init__(self, engine: Any, tokenizer: Any | None = None, *, make_params: Any = sampling_params) -> None:
        """``engine``: a ``vllm.LLM`` (or anything with its ``generate`` and ``get_tokenizer``); ``tokenizer``:
        the engine's own unless given; ``make_params(k, temperature, top_p, max_tokens)``: the sampling
        parameters object handed to ``engine.generate`` (vLLM's ``SamplingParams`` unless given)."""
        self.llm: Any = engine
        self.tokenizer: Any = tokenizer if tokenizer is not None else engine.get_tokenizer()
        self.make_params = make_params

    @classmethod
    def load(cls, model_path: str, **engine_kwargs: Any) -> VLLMBackend:
        """The backend over a new ``vllm.LLM`` (keyword arguments of :func:`load_vllm_engine`)."""
        return cls(load_vllm_engine(model_path, **engine_kwargs))

    def requests(self, prompts: Sequence[Messages]) -> list[dict[str, list[int]]]:
        """vLLM's token prompts (``{"prompt_token_ids": [...]}``), one per chat prompt."""
        return [{"prompt_token_ids": chat_prompt_ids(self.tokenizer, messages)} for messages in prompts]

    def generate(
        self,
        prompts: Sequence[Messages],
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Sample]]:
        del seed  # the engine seed is set at construction (see the module docstring)
        params = self.make_params(k, temperature, top_p, max_tokens)
        results = self.llm.generate(self.requests(prompts), params)
        return [[(c.text, len(c.token_ids)) for c in result.outputs] for result in results]
