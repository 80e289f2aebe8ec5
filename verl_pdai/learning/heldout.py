"""Unassisted pass rates of a causal LM on sum-chain problems: the benchmark's held-out (and step-0) evaluation.

* **Prompts** are the rollout's: ``demo.lessons.prompt_ids`` (the chat template with the generation prompt), no
  hint, no preview: what a validation session of the ``pdai_hint`` loop generates from.
* **Sampling** is plain temperature sampling over the full vocabulary (no top-k / top-p, as verl's rollout samples),
  batched with left padding and a KV cache, positions counted from each prompt's first token (as if unpadded), up
  to ``max_new_tokens`` or an EOS id (the tokenizer's and the generation config's, as the agent loop stops).
* **Exact shortcut.** ``model.generate`` would spend ~0.5 s per decoding step on a 128 x 151k logit matrix on two
  CPU cores. The tiny taught model has all-zero output-embedding rows for every id it was not taught (see
  ``demo.teaching``), so those ids have logit exactly 0: the full softmax is that of the taught ids' logits plus
  one bucket of log-mass ``log(count of zero rows)``, and a draw from the bucket is uniform over those ids. This is
  the same distribution, not an approximation; a model without zero rows (e.g. after RL) takes the full-vocabulary
  path. Before decoding, the last prompt position's logits are computed both ways (the model's own ``forward``
  and this path) and must agree, or the evaluation fails rather than grade a different model.
* **Grading** is the reward's outcome check: the response (up to and including its EOS) decoded with special
  tokens skipped, as ``pdai_stepwise`` decodes it (``TokenTextMapper``), then ``core.scoring.outcome_of`` with
  ``StepwiseConfig()`` defaults on ``core.answers.accepted_answers(ground_truth, extra_info)``: what the reward
  manager scores as ``acc`` (and the preview check as success).

The global torch RNG is untouched: draws come from a ``torch.Generator`` seeded with ``seed``. A result depends on
(model, problems, k, temperature, max_new_tokens, seed, batch_size) only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from verl_pdai.core.answers import accepted_answers
from verl_pdai.core.scoring import StepwiseConfig, outcome_of
from verl_pdai.demo.lessons import prompt_ids
from verl_pdai.learning.tasks import SumProblem


@dataclass
class EvalResult:
    k: int
    temperature: float
    pass_rates: dict[str, float]  # problem_id -> share of its k samples graded correct
    kinds: dict[str, str]  # problem_id -> kind
    seconds: float
    restricted_vocab: int  # ids decoded exactly through the taught rows (0: full vocabulary)
    samples: dict[str, list[str]] = field(default_factory=dict)  # problem_id -> decoded responses (keep_texts)

    @property
    def accuracy(self) -> float:
        """Mean pass rate over problems (each has k samples: also the share of all samples graded correct)."""
        return sum(self.pass_rates.values()) / len(self.pass_rates) if self.pass_rates else 0.0

    def by_kind(self) -> dict[str, float]:
        """Mean pass rate per kind, kinds sorted."""
        out: dict[str, list[float]] = {}
        for pid, rate in self.pass_rates.items():
            out.setdefault(self.kinds[pid], []).append(rate)
        return {kind: sum(v) / len(v) for kind, v in sorted(out.items())}


def grade(text: str, answer: str, config: StepwiseConfig | None = None) -> bool:
    """The reward's outcome check of a decoded response against a sum-chain answer (as its row states it)."""
    ground_truths = accepted_answers(answer, {"answers": [answer]})
    return bool(outcome_of(text, ground_truths, config or StepwiseConfig())[1])


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokenizer's EOS and the model's generation-config EOS ids (the agent loop stops at all of them)."""
    ids = {int(tokenizer.eos_token_id)}
    generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if generation_eos is not None:
        ids |= {int(generation_eos)} if isinstance(generation_eos, int) else {int(i) for i in generation_eos}
    return sorted(ids)


class _Head:
    """The LM head as logits over the ids whose output row (or bias) is nonzero, plus the zero rows' bucket."""

    def __init__(self, model: Any) -> None:
        head = model.get_output_embeddings()
        weight = head.weight.detach()
        bias = getattr(head, "bias", None)
        live = weight.ne(0).any(dim=1)
        if bias is not None:
            live |= bias.detach().ne(0)
        self.ids = live.nonzero().squeeze(1)
        self.rest_ids = (~live).nonzero().squeeze(1)
        self.weight = weight[self.ids]
        self.bias = None if bias is None else bias.detach()[self.ids]
        self.log_rest = math.log(len(self.rest_ids)) if len(self.rest_ids) else None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of ``self.ids`` (the others are exactly 0)."""
        out = hidden.float() @ self.weight.float().T
        return out if self.bias is None else out + self.bias.float()

    def sample(self, hidden: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
        logits = self.logits(hidden)
        if temperature <= 0:  # greedy: a zero-row id wins only when every live logit is below 0
            best, index = logits.max(dim=-1)
            token = self.ids[index]
            if self.log_rest is not None:
                token = torch.where(best < 0, self.rest_ids[0], token)
            return token
        scaled = logits / temperature
        if self.log_rest is not None:  # every zero-row id has logit 0 at any temperature: log-mass log(count)
            scaled = torch.cat([scaled, torch.full((len(scaled), 1), self.log_rest)], dim=-1)
        cdf = torch.cumsum(torch.softmax(scaled, dim=-1), dim=-1)
        u = torch.rand((len(scaled), 1), generator=generator).to(cdf.device) * cdf[:, -1:]
        index = torch.searchsorted(cdf, u).squeeze(1).clamp(max=cdf.shape[1] - 1)
        if self.log_rest is None:
            return self.ids[index]
        rest_pick = self.rest_ids[
            torch.randint(len(self.rest_ids), (len(index),), generator=generator).to(index.device)
        ]
        return torch.where(index < len(self.ids), self.ids[index.clamp(max=len(self.ids) - 1)], rest_pick)


def _check_head(model: Any, head: _Head, hidden: torch.Tensor, full_logits: torch.Tensor) -> None:
    """The shortcut's logits must be the model's own: taught ids equal, every other id exactly 0."""
    mine = head.logits(hidden)
    theirs = full_logits.float()
    ok = torch.allclose(mine, theirs[:, head.ids], rtol=1e-4, atol=1e-4)
    if len(head.rest_ids):
        ok = ok and bool(theirs[:, head.rest_ids].eq(0).all())
    if not ok:
        raise RuntimeError(f"{type(model).__name__}: logits are not lm_head(decoder output); cannot evaluate it here")


@torch.inference_mode()
def _generate(
    model: Any,
    head: _Head,
    prompts: list[list[int]],
    temperature: float,
    max_new_tokens: int,
    eos: list[int],
    pad: int,
    generator: torch.Generator,
    check: bool,
) -> list[list[int]]:
    decoder = model.get_decoder()
    device = head.weight.device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):  # left padding: every prompt ends where generation starts
        ids[row, width - len(p) :] = torch.tensor(p)
        attention[row, width - len(p) :] = 1
    ids, attention = ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    out = decoder(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=True)
    hidden, cache = out.last_hidden_state[:, -1], out.past_key_values
    if check:
        full = model(input_ids=ids, attention_mask=attention, position_ids=positions, logits_to_keep=1).logits
        _check_head(model, head, hidden, full[:, -1])
    eos_set = torch.tensor(eos, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    responses = torch.full((len(prompts), max_new_tokens), pad, dtype=torch.long, device=device)
    position = positions[:, -1]
    for step in range(max_new_tokens):
        token = head.sample(hidden, temperature, generator).to(device)
        token = torch.where(done, torch.full_like(token, pad), token)
        responses[:, step] = token
        done |= torch.isin(token, eos_set)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        position = position + 1
        out = decoder(
            input_ids=token.unsqueeze(1),
            attention_mask=attention,
            position_ids=position.unsqueeze(1),
            past_key_values=cache,
            use_cache=True,
        )
        hidden, cache = out.last_hidden_state[:, -1], out.past_key_values
    result = []
    for row in responses.tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        result.append(row[:cut])
    return result


def evaluate_unassisted(
    model: Any,
    tokenizer: Any,
    problems: Sequence[SumProblem],
    k: int,
    temperature: float = 0.6,
    max_new_tokens: int = 96,
    seed: int = 0,
    batch_size: int = 256,
    eos_token_ids: Iterable[int] | None = None,
    keep_texts: bool = False,
) -> EvalResult:
    """Sample ``k`` unassisted responses per problem (``batch_size`` sequences per batch) and grade each."""
    if k < 1 or not problems:
        raise ValueError("evaluate_unassisted needs k >= 1 and at least one problem")
    if len({p.problem_id for p in problems}) != len(problems):
        raise ValueError("evaluate_unassisted: duplicate problems")
    started = time.perf_counter()
    eos = sorted({int(i) for i in eos_token_ids}) if eos_token_ids is not None else eos_ids(model, tokenizer)
    pad = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else eos[0]
    jobs = [(p, prompt_ids(tokenizer, p)) for p in problems for _ in range(k)]
    correct = {p.problem_id: 0 for p in problems}
    texts: dict[str, list[str]] = {p.problem_id: [] for p in problems}
    config = StepwiseConfig()
    generator = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    try:
        head = _Head(model)
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            responses = _generate(
                model, head, [ids for _, ids in batch], temperature, max_new_tokens, eos, pad, generator, start == 0
            )
            for (problem, _), response in zip(batch, responses, strict=True):
                text = tokenizer.decode(response, skip_special_tokens=True)
                correct[problem.problem_id] += grade(text, problem.answer, config)
                if keep_texts:
                    texts[problem.problem_id].append(text)
    finally:
        model.train(was_training)
    return EvalResult(
        k=k,
        temperature=temperature,
        pass_rates={pid: c / k for pid, c in correct.items()},
        kinds={p.problem_id: p.kind for p in problems},
        seconds=time.perf_counter() - started,
        restricted_vocab=len(head.ids) if head.log_rest is not None else 0,
        samples=texts if keep_texts else {},
    )
