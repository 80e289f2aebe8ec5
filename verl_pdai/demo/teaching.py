"""Teach the tiny Qwen2 model its lessons in a few seconds of CPU, exactly (no approximation of its softmax).

The model keeps the full Qwen2.5 vocabulary (~151k ids, tied input/output embedding), but the lessons use a few
hundred ids. The embedding rows of every other id are set to zero, so their logits are exactly 0 whatever the
hidden state, and the log-sum-exp over all of them is exactly ``log(count)``. The loss over
``[logits of the lesson ids, log(count)]`` is then the model's true full-vocabulary cross-entropy, at the cost of a
few hundred columns instead of 151k; only the lesson rows (and the transformer body) are trained, so the zero
rows stay zero. ``TinyPolicy.log_probs`` uses the same identity for the policy update. The model the server
decodes with is the ordinary ``Qwen2ForCausalLM``: its log-probs are the full softmax, computed by transformers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from verl_pdai.demo.lessons import Lesson


@dataclass
class TeachReport:
    steps: int
    seconds: float
    first_loss: float
    final_loss: float
    vocab: int  # lesson ids the model was taught over


class TinyPolicy:
    """The tiny model seen through its taught vocabulary: exact log-probs, one optimizer over what may change."""

    def __init__(self, model: torch.nn.Module, vocab_ids: Sequence[int]) -> None:
        self.model = model
        embedding = model.get_input_embeddings().weight
        if model.get_output_embeddings().weight is not embedding:
            raise ValueError("the tiny model must tie its input and output embeddings")
        self.full_vocab = int(embedding.shape[0])
        self.ids = torch.tensor(sorted(set(int(i) for i in vocab_ids)), dtype=torch.long)
        self.local = torch.full((self.full_vocab,), -1, dtype=torch.long)
        self.local[self.ids] = torch.arange(len(self.ids))
        self.rest = len(self.ids)  # local index of "any other id": logit 0, log(count) in total
        self.log_rest = math.log(self.full_vocab - len(self.ids))
        with torch.no_grad():
            rows = embedding[self.ids].clone()
            embedding.zero_()
            embedding[self.ids] = rows
        self.rows = torch.nn.Parameter(rows)
        body = [p for name, p in model.named_parameters() if p is not embedding]
        self.parameters = [self.rows, *body]

    def sync(self) -> None:
        """Write the trained rows back into the model the server decodes with."""
        with torch.no_grad():
            self.model.get_input_embeddings().weight[self.ids] = self.rows

    def _logits(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        local = self.local[ids]
        inputs = self.rows[local.clamp(min=0)] * (local >= 0).unsqueeze(-1)  # other ids: zero rows, as in the model
        hidden = self.model.model(inputs_embeds=inputs, attention_mask=attention_mask).last_hidden_state
        lesson_logits = hidden @ self.rows.T
        rest = torch.full((*lesson_logits.shape[:-1], 1), self.log_rest)
        return torch.cat([lesson_logits, rest], dim=-1)

    def token_log_probs(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p(ids[:, t] | ids[:, :t]) for t >= 1 under the full vocabulary, shape (batch, len - 1)."""
        log_probs = torch.log_softmax(self._logits(ids, attention_mask)[:, :-1].float(), dim=-1)
        target = self.local[ids[:, 1:]]
        picked = log_probs.gather(-1, torch.where(target >= 0, target, self.rest).unsqueeze(-1)).squeeze(-1)
        # an id outside the taught vocabulary has logit 0: its share of the rest bucket is 1/count
        return torch.where(target >= 0, picked, picked - self.log_rest)


def _batch(lessons: Sequence[Lesson], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(lesson.ids) for lesson in lessons)
    ids = torch.full((len(lessons), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(lessons), width), dtype=torch.long)
    train = torch.zeros((len(lessons), width), dtype=torch.bool)
    weight = torch.tensor([lesson.weight for lesson in lessons]).unsqueeze(1)
    for row, lesson in enumerate(lessons):
        n = len(lesson.ids)
        ids[row, :n] = torch.tensor(lesson.ids)
        attention[row, :n] = 1
        train[row, :n] = torch.tensor(lesson.train)
    return ids, attention, train, weight


def teach(
    model: torch.nn.Module,
    lessons: Sequence[Lesson],
    *,
    steps: int = 300,
    lr: float = 3e-3,
    seed: int = 0,
    extra_vocab: Sequence[int] = (),
    progress: Callable[[int, float], None] | None = None,
) -> tuple[TinyPolicy, TeachReport]:
    """Adam on the whole batch of lessons (teacher forcing, loss on the model-written tokens only)."""
    if not lessons:
        raise ValueError("nothing to teach")
    torch.manual_seed(seed)
    torch.set_flush_denormal(True)  # tiny Adam states turn denormal and slow CPU math down many times over
    vocab = {i for lesson in lessons for i in lesson.ids} | set(extra_vocab)
    model.train()
    policy = TinyPolicy(model, sorted(vocab))
    ids, attention, train, weight = _batch(lessons, pad_id=int(min(vocab)))
    targets = train[:, 1:] * weight  # each taught token, weighted by its lesson's frequency
    optimizer = torch.optim.Adam(policy.parameters, lr=lr)
    started = time.perf_counter()
    first = loss_value = float("nan")
    for step in range(1, steps + 1):
        log_probs = policy.token_log_probs(ids, attention)
        loss = -(log_probs * targets).sum() / targets.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
        first = loss_value if step == 1 else first
        if progress is not None:
            progress(step, loss_value)
    policy.sync()
    model.eval()
    report = TeachReport(steps, time.perf_counter() - started, first, loss_value, len(policy.ids))
    return policy, report
