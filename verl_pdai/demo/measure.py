"""What the demo measures about its model, before and after training: unassisted accuracy (no preview, no hint)
per tier, sampled as the rollout samples and graded as the reward grades, and how far the weights moved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from verl_pdai.demo.config import RESPONSE_LENGTH, TEMPERATURE
from verl_pdai.demo.problems import TIERS, DemoProblem

SAMPLES = 8  # per problem


@dataclass(frozen=True)
class UnassistedAccuracy:
    solved: dict[str, tuple[int, int]]  # tier -> (correct samples, samples)

    @property
    def overall(self) -> float:
        correct = sum(c for c, _ in self.solved.values())
        total = sum(n for _, n in self.solved.values())
        return correct / total if total else 0.0

    def line(self) -> str:
        parts = [f"{tier} {c}/{n}" for tier, (c, n) in self.solved.items()]
        return f"{self.overall:.3f} ({', '.join(parts)} samples correct)"


@dataclass(frozen=True)
class WeightChange:
    changed: int  # parameter tensors that differ from before
    total: int
    largest: float  # largest ||after - before|| / ||before|| over the tensors


def unassisted_accuracy(
    model: Any, tokenizer: Any, problems: Sequence[DemoProblem], seed: int, k: int = SAMPLES
) -> UnassistedAccuracy:
    from verl_pdai.learning.heldout import evaluate_unassisted

    result = evaluate_unassisted(
        model, tokenizer, problems, k=k, temperature=TEMPERATURE, max_new_tokens=RESPONSE_LENGTH, seed=seed
    )
    solved: dict[str, tuple[int, int]] = {}
    for tier in TIERS:
        rates = [result.pass_rates[p.problem_id] for p in problems if p.tier == tier]
        solved[tier] = (round(sum(rates) * k), len(rates) * k)
    return UnassistedAccuracy(solved)


@torch.no_grad()
def weight_change(before: Mapping[str, torch.Tensor], model: torch.nn.Module) -> WeightChange:
    changed, largest = 0, 0.0
    for name, param in model.named_parameters():
        delta = float((param - before[name]).norm())
        if delta > 0:
            changed += 1
            largest = max(largest, delta / max(float(before[name].norm()), 1e-12))
    return WeightChange(changed, len(before), largest)
