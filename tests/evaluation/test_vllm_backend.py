"""The vLLM backend's prompts with the real Qwen2.5 tokenizer, against a recording stand-in for ``vllm.LLM``.

A real vLLM engine is not needed to catch the bug these tests pin: under transformers 5 ``apply_chat_template(...,
tokenize=True)`` returns a ``BatchEncoding``, and ``list()`` of it is its keys, so vLLM was sent the prompt
``['input_ids', 'attention_mask']``. What the engine receives is checked here token by token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from verl_pdai.evaluation.backends import chat_prompt_ids
from verl_pdai.evaluation.vllm_backend import VLLMBackend

PROMPTS = [
    [{"role": "user", "content": "What is 2+3? Let's think step by step."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Half of one?"}],
]


@dataclass
class Completion:
    text: str
    token_ids: list[int]


@dataclass
class RequestOutput:
    outputs: list[Completion]


@dataclass
class RecordingEngine:
    """``vllm.LLM``'s surface the backend uses: ``get_tokenizer`` and ``generate(requests, params)``."""

    tokenizer: Any
    calls: list[tuple[list[dict[str, Any]], Any]] = field(default_factory=list)

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(self, requests: list[dict[str, Any]], params: dict[str, Any]) -> list[RequestOutput]:
        self.calls.append((requests, params))
        return [
            RequestOutput([Completion(f"answer {i}.{j}", [7] * (j + 1)) for j in range(params["k"])])
            for i in range(len(requests))
        ]


def _params(k: int, temperature: float, top_p: float, max_tokens: int) -> dict[str, Any]:
    return {"k": k, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}


def test_transformers_returns_a_mapping_for_tokenize_true(tokenizer) -> None:
    """Why chat_prompt_ids exists: with the installed transformers, ``list()`` of the result is not token ids."""
    encoded = tokenizer.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=True)
    if isinstance(encoded, list):
        pytest.skip("this transformers returns a plain list; chat_prompt_ids passes it through")
    assert list(encoded) == ["input_ids", "attention_mask"]


def test_engine_receives_the_chat_template_token_ids(tokenizer) -> None:
    engine = RecordingEngine(tokenizer)
    backend = VLLMBackend(engine, make_params=_params)
    out = backend.generate(PROMPTS, 3, 0.6, 0.95, 64, seed=5)

    assert len(engine.calls) == 1
    requests, params = engine.calls[0]
    assert params == {"k": 3, "temperature": 0.6, "top_p": 0.95, "max_tokens": 64}
    assert len(requests) == len(PROMPTS)
    for request, messages in zip(requests, PROMPTS, strict=True):
        ids = request["prompt_token_ids"]
        assert isinstance(ids, list) and ids and all(type(i) is int for i in ids)
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert ids == tokenizer.encode(text, add_special_tokens=False)  # the template once, no extra BOS
        assert tokenizer.decode(ids) == text
        assert text.endswith("<|im_start|>assistant\n") and messages[-1]["content"] in text
    assert out == [[(f"answer {i}.{j}", j + 1) for j in range(3)] for i in range(len(PROMPTS))]


def test_tokenizer_can_be_given_apart_from_the_engine(tokenizer) -> None:
    class NoTokenizerEngine(RecordingEngine):
        def get_tokenizer(self) -> Any:
            raise AssertionError("the given tokenizer must be used")

    backend = VLLMBackend(NoTokenizerEngine(None), tokenizer, make_params=_params)
    assert backend.requests(PROMPTS[:1]) == [{"prompt_token_ids": chat_prompt_ids(tokenizer, PROMPTS[0])}]


class _Scripted:
    """A tokenizer whose ``apply_chat_template`` returns a fixed object, for the shapes transformers has used."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def apply_chat_template(self, messages: Any, **kwargs: Any) -> Any:
        assert kwargs == {"add_generation_prompt": True, "tokenize": True}
        return self.value


def test_chat_prompt_ids_normalizes_every_shape(tokenizer) -> None:
    import numpy as np
    import torch
    from transformers import BatchEncoding

    expected = [151644, 872, 198]
    shapes = [
        expected,
        tuple(expected),
        {"input_ids": expected, "attention_mask": [1, 1, 1]},
        BatchEncoding({"input_ids": expected, "attention_mask": [1, 1, 1]}),
        [expected],  # a batch of one
        torch.tensor([expected]),
        np.array(expected, dtype=np.int64),
    ]
    for shape in shapes:
        ids = chat_prompt_ids(_Scripted(shape), PROMPTS[0])
        assert ids == expected and all(type(i) is int for i in ids), shape
    real = chat_prompt_ids(tokenizer, PROMPTS[0])
    assert real[:3] == expected  # <|im_start|> user \n


@pytest.mark.parametrize("bad", [["input_ids", "attention_mask"], [], "text", [[1, 2], [3, 4]]])
def test_chat_prompt_ids_refuses_what_is_not_token_ids(bad: Any) -> None:
    with pytest.raises(TypeError, match="did not give token ids"):
        chat_prompt_ids(_Scripted(bad), PROMPTS[0])
