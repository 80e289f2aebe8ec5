"""The generation protocol every backend meets, and a scripted backend for tests (pure; imports no verl).

``generate(prompts, k, temperature, top_p, max_tokens, seed)`` returns, per prompt, ``k`` samples as
``(text, num_tokens)``: the decoded response (special tokens skipped) and how many tokens were generated,
the end-of-sequence token included. Backends: :mod:`.vllm_backend` (GPU), :mod:`.hf_backend` (CPU, small models).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

Messages = list[dict[str, str]]
Sample = tuple[str, int]


def chat_prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The prompt's token ids as a flat ``list[int]``: the chat template with ``add_generation_prompt``, as verl's
    rollout builds it (the template already holds any BOS token, so none is added twice).

    Why not just ``apply_chat_template(..., tokenize=True)``: under transformers 5 (verl 0.9.1 needs >= 5.5.3) it
    returns a ``BatchEncoding``, a mapping whose iteration yields its keys, so ``list(...)`` of it is
    ``['input_ids', 'attention_mask']``, not token ids (transformers 4 returned the list itself). The result is
    normalized instead of asking for ``return_dict=False``, which tokenizer wrappers (vLLM's among them) need not
    accept: a mapping gives its ``input_ids``, a batch of one its row, a tensor its list; anything that is still not
    a list of ints fails here instead of reaching the engine as a prompt.
    """
    encoded: Any = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(encoded, Mapping) or hasattr(encoded, "input_ids"):
        encoded = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded.input_ids
    if hasattr(encoded, "tolist"):
        encoded = encoded.tolist()
    ids = list(encoded)
    if len(ids) == 1 and isinstance(ids[0], list | tuple):
        ids = list(ids[0])  # a batch of one prompt
    try:
        tokens = [operator.index(i) for i in ids]  # ints, numpy ints; never the keys of a mapping
    except TypeError:
        tokens = []
    if not tokens:
        shown = repr(ids[:4])
        raise TypeError(f"the chat template did not give token ids for a prompt (got {type(encoded).__name__} {shown})")
    return tokens


class GenerationBackend(Protocol):
    name: str

    def generate(
        self,
        prompts: Sequence[Messages],
        k: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        seed: int,
    ) -> list[list[Sample]]: ...


class ScriptedBackend:
    """Answers from a callable ``(messages, sample_index) -> text``; num_tokens counts whitespace-split words.

    Records every prompt it was asked, so tests can check what the model saw.
    """

    name = "scripted"

    def __init__(self, respond: Callable[[Messages, int], str]) -> None:
        self.respond = respond
        self.seen: list[Messages] = []

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
        for messages in prompts:
            self.seen.append(list(messages))
            texts = [self.respond(messages, index) for index in range(k)]
            out.append([(text, min(max_tokens, len(text.split()))) for text in texts])
        return out


def check_samples(outputs: list[list[Sample]], num_prompts: int, k: int, backend: str) -> None:
    """A backend that returns the wrong shape would silently shift every verdict: fail instead."""
    if len(outputs) != num_prompts or any(len(samples) != k for samples in outputs):
        shapes = sorted({len(samples) for samples in outputs})
        raise RuntimeError(
            f"backend {backend} returned {len(outputs)} prompts (expected {num_prompts}) with {shapes} samples each "
            f"(expected {k})"
        )
