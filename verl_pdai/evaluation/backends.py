"""The generation protocol every backend meets, and a scripted backend for tests (pure; imports no verl).

``generate(prompts, k, temperature, top_p, max_tokens, seed)`` returns, per prompt, ``k`` samples as
``(text, num_tokens)``: the decoded response (special tokens skipped) and how many tokens were generated,
the end-of-sequence token included. Backends: :mod:`.vllm_backend` (GPU), :mod:`.hf_backend` (CPU, small models).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

Messages = list[dict[str, str]]
Sample = tuple[str, int]


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
