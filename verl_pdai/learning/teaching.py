"""Teach the tiny Qwen2 base model of the learning benchmark its base skill: supervised, exact, ~1-2 min of CPU.

What is taught (``teaching_set``; every tuple disjoint from train and held-out, see ``tasks.teaching_problems``):

* **sum2 solutions, many**: every sum2 tuple left after train + held-out (61 of 81 with the default sizes), each as
  ``OPENING`` + the whole reference solution + EOS, at loss weight ``SUM2_WEIGHT`` = 2 (they are a fifth of the
  lessons; at weight 1 some taught facts stayed unsure enough that temperature 0.6 missed one sample in eight).
* **sum3 solutions, some**: ``FIRST_STEP_COVER`` = 3 sum3 problems ``(a, b, x)`` for each digit pair (a, b) that
  no taught sum2 problem starts with, i.e. the sum2 pairs held back for train/held-out (60 lessons). A base LLM
  knows every one-digit sum; these pairs can only be taught inside longer chains, and with one lesson each the
  model got a few of them wrong. They are also all the unassisted sum3 chains it sees, so it learns to continue
  past one step only from them: that is what leaves sum3 uncertain (see the measured rates below).
* **no sum4 / sum5 solution** at all: nothing shows a chain of three or more additions, nor running sums past 27.
* **hint reading, on sum3 only** (sum2 has no usable hint: its one step states the answer): ``OPENING``, the
  level-1 hint exactly as the rollout splices it (``build_hints`` with the benchmark's fractions, prefix and
  "\\n\\n" boundary, tokenized on its own; context only, never trained), then the rest of the reference solution
  (trained) + EOS. ``HINTED_SUM3`` = 150 random sum3 problems, plus ``FACT_HINTS`` = 3 per held-back pair (a, b)
  with a >= 2, chosen as ``(x, a - x, b)`` so the trained continuation states ``a + b`` once more in another
  context (one-digit facts taught in a single context did not carry over to the sum2 questions reliably).

How (``teach_base_model``): ``demo.teaching.TinyPolicy`` gives the exact full-vocabulary log-probs through the
taught ids only (every other output row stays exactly zero), as ``demo.teaching.teach`` does; the loop here differs
from ``teach`` in what ~300 lessons of ~80 tokens need on two cores: minibatches of ``BATCH_SIZE`` (a full-batch
step costs ~1 s), Adam with ``WARMUP`` linear warm-up then cosine decay from ``LR``, gradient norm clipped at
``CLIP`` (without it some seeds stalled on a plateau and ended unconverged), and the digits of the model-written
text weighted ``DIGIT_WEIGHT`` = 5 (the operands copied and the sums computed are 1-2 tokens of ~25 per lesson;
at weight 1 the facts stayed soft while the loss was already tiny).

Measured at temperature 0.6 (k = 8), see the module's report: sum2 ~0.9-1.0, sum3 ~0.2-0.7 (it varies by seed),
sum4/sum5 ~0-0.05; none of these rates is an input.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_pdai.core.hints import DEFAULT_FRACTIONS, RECOMMENDED_PREFIX, HintSet, build_hints
from verl_pdai.demo.lessons import Lesson, _lesson, prompt_ids
from verl_pdai.learning.tasks import DIGITS, INSTRUCTION, SumProblem, teaching_problems

OPENING = "I add the numbers one at a time.\n\n"  # 9 Qwen2.5 tokens, the last ".\n\n"
HINT_PREFIX = RECOMMENDED_PREFIX
HINT_FRACTIONS = DEFAULT_FRACTIONS
BOUNDARY = "\n\n"

FIRST_STEP_COVER = 3
FACT_HINTS = 3
HINTED_SUM3 = 150
SUM2_WEIGHT = 2.0
HELD_BACK_WEIGHT = 3.0
DIGIT_WEIGHT = 5.0
STEPS = 1200
LR = 3e-3
BATCH_SIZE = 32
WARMUP = 50
CLIP = 1.0
HIDDEN_SIZE = 128
NUM_LAYERS = 2


@dataclass(frozen=True)
class TeachingSet:
    solutions: tuple[SumProblem, ...]  # taught with their whole reference solution
    hinted: tuple[SumProblem, ...]  # taught to read their level-1 hint and go on

    @property
    def problems(self) -> tuple[SumProblem, ...]:
        return self.solutions + self.hinted


@dataclass
class TeachingReport:
    steps: int
    seconds: float
    first_loss: float
    final_loss: float  # mean of the last 50 steps' minibatch losses
    vocab: int  # ids taught (every other output row stays zero)
    lessons: dict[str, int] = field(default_factory=dict)  # lesson kind -> count


def hint_set(problem: SumProblem) -> HintSet:
    """The hints the rollout builds for this problem (same function, same settings as the benchmark's)."""
    return build_hints(problem.reference_solution, problem.answer, HINT_FRACTIONS, prefix=HINT_PREFIX, suffix=BOUNDARY)


def teaching_set(
    seed: int,
    exclude: Sequence[SumProblem],
    *,
    first_step_cover: int = FIRST_STEP_COVER,
    fact_hints: int = FACT_HINTS,
    hinted_sum3: int = HINTED_SUM3,
) -> TeachingSet:
    """What to teach (see the module docstring); no operand tuple of ``exclude`` (train + held-out) is taught."""
    solutions = teaching_problems(seed, {2: None}, exclude, first_step_cover=first_step_cover)
    taken = {p.operands for p in [*exclude, *solutions]}
    held_back = sorted({p.operands[:2] for p in solutions if p.n == 3})  # the pairs no sum2 lesson starts with
    rng = random.Random(f"pdai-sumchain-facts:{seed}")
    facts: list[SumProblem] = []
    for a, b in held_back:
        options = [(x, a - x, b) for x in range(1, a) if (x, a - x, b) not in taken]
        for ops in rng.sample(options, min(fact_hints, len(options))):
            taken.add(ops)
            facts.append(SumProblem(ops))
    excluded = [SumProblem(ops) for ops in sorted(taken)]
    hinted = teaching_problems(seed, {3: hinted_sum3}, excluded, first_step_cover=0)
    return TeachingSet(tuple(solutions), tuple(facts + hinted))


def solution_lesson(tokenizer: Any, problem: SumProblem, weight: float = 1.0) -> Lesson:
    segments = [(OPENING, True), (problem.reference_solution, True)]
    return _lesson(tokenizer, problem, f"{problem.kind}-solution", segments, weight)  # type: ignore[arg-type]


def hint_lesson(tokenizer: Any, problem: SumProblem, level: int = 1, weight: float = 1.0) -> Lesson:
    """OPENING (trained), the level's hint as the rollout splices it (context only), the rest (trained), EOS."""
    hint = hint_set(problem).for_level(level)
    if not hint.text:
        raise ValueError(f"{problem.problem_id}: no usable level-{level} hint")
    rest = BOUNDARY.join(problem.steps[hint.steps_revealed :])
    segments = [(OPENING, True), (hint.text, False), (rest, True)]
    return _lesson(tokenizer, problem, f"{problem.kind}-hint{hint.level}", segments, weight)  # type: ignore[arg-type]


def teaching_lessons(tokenizer: Any, teaching: TeachingSet | Sequence[SumProblem]) -> list[Lesson]:
    """The lessons of a teaching set (a plain sequence of problems: solutions only)."""
    if not isinstance(teaching, TeachingSet):
        teaching = TeachingSet(tuple(teaching), ())
    lessons: list[Lesson] = []
    sum2_pairs = {p.operands for p in teaching.solutions if p.n == 2}
    held_back = {p.operands[:2] for p in teaching.solutions if p.n == 3} - sum2_pairs
    for p in teaching.solutions:
        if p.n not in (2, 3):
            raise ValueError(f"{p.problem_id}: only sum2 and sum3 solutions are taught")
        weight = SUM2_WEIGHT if p.n == 2 else HELD_BACK_WEIGHT if p.operands[:2] in held_back else 1.0
        lessons.append(solution_lesson(tokenizer, p, weight))
    for p in teaching.hinted:
        if p.n != 3:
            raise ValueError(f"{p.problem_id}: hint reading is taught on sum3 only")
        fact = (p.operands[0] + p.operands[1], p.operands[2]) in held_back
        lessons.append(hint_lesson(tokenizer, p, weight=HELD_BACK_WEIGHT if fact else 1.0))
    return lessons


def teaching_vocab(tokenizer: Any) -> list[int]:
    """Every id a sum-chain prompt (chat template included), solution or hint of any kind (sums up to 45) holds,
    and EOS."""
    texts = [OPENING, HINT_PREFIX, BOUNDARY, INSTRUCTION, " + ", " = ", ".", ",", " and"]
    texts += [str(d) for d in range(10)]
    ids = {int(tokenizer.eos_token_id)}
    for ops in ((9, 9, 9, 9, 9), DIGITS[:5], DIGITS[4:], (1, 2)):
        problem = SumProblem(tuple(ops))
        texts += [problem.reference_solution, hint_set(problem).for_level(3).text]
        ids |= set(prompt_ids(tokenizer, problem))
    ids |= {int(i) for text in texts for i in tokenizer.encode(text, add_special_tokens=False)}
    return sorted(ids)


def _digit_ids(tokenizer: Any) -> list[int]:
    return [int(tokenizer.encode(str(d), add_special_tokens=False)[0]) for d in range(10)]


def teach_base_model(
    tokenizer: Any,
    teaching_problems: TeachingSet | Sequence[SumProblem],
    seed: int,
    hidden_size: int = HIDDEN_SIZE,
    max_positions: int = 512,
    steps: int = STEPS,
    lr: float = LR,
    progress: Callable[[int, float], None] | None = None,
    batch_size: int = BATCH_SIZE,
    num_layers: int = NUM_LAYERS,
) -> tuple[Any, TeachingReport]:
    """A seeded tiny Qwen2 (``build_tiny_model``) taught the lessons of ``teaching_problems``; eval mode, CPU."""
    import torch

    from verl_pdai.demo.teaching import TinyPolicy, _batch
    from verl_pdai.demo.tiny_model_server import build_tiny_model

    lessons = teaching_lessons(tokenizer, teaching_problems)
    if not lessons:
        raise ValueError("nothing to teach")
    model = build_tiny_model(
        len(tokenizer), seed=seed, max_positions=max_positions, hidden_size=hidden_size, num_layers=num_layers
    )
    vocab = sorted({i for lesson in lessons for i in lesson.ids} | set(teaching_vocab(tokenizer)))
    torch.set_flush_denormal(True)  # tiny Adam states turn denormal and slow CPU math down many times over
    model.train()
    policy = TinyPolicy(model, vocab)
    ids, attention, train, weight = _batch(lessons, pad_id=vocab[0])
    digit = torch.isin(ids[:, 1:], torch.tensor(_digit_ids(tokenizer)))
    targets = train[:, 1:] * weight * torch.where(digit, DIGIT_WEIGHT, 1.0)
    lengths = attention.sum(dim=1)
    optimizer = torch.optim.Adam(policy.parameters, lr=lr)

    def schedule(step: int) -> float:
        return min(1.0, (step + 1) / WARMUP) * 0.5 * (1.0 + math.cos(math.pi * step / steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = torch.Generator().manual_seed(int(seed))
    permutation, position = torch.randperm(len(lessons), generator=order), 0
    losses: list[float] = []
    started = time.perf_counter()
    deterministic = torch.are_deterministic_algorithms_enabled()
    # without it the gradients' last bits differ from run to run, and 1200 steps turn that into another base
    # model; with it a seed teaches the same model every time (on one machine and torch build)
    torch.use_deterministic_algorithms(True)
    try:
        for step in range(1, steps + 1):
            if position + batch_size > len(lessons):
                permutation, position = torch.randperm(len(lessons), generator=order), 0
            rows = permutation[position : position + batch_size]
            position += batch_size
            width = int(lengths[rows].max())
            log_probs = policy.token_log_probs(ids[rows, :width], attention[rows, :width])
            batch_targets = targets[rows, : width - 1]
            loss = -(log_probs * batch_targets).sum() / batch_targets.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters, CLIP)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step, losses[-1])
    finally:
        torch.use_deterministic_algorithms(deterministic)
    policy.sync()
    model.eval()
    tail = losses[-50:]
    report = TeachingReport(
        steps=steps,
        seconds=time.perf_counter() - started,
        first_loss=losses[0],
        final_loss=sum(tail) / len(tail),
        vocab=len(policy.ids),
        lessons=dict(sorted(Counter(lesson.kind for lesson in lessons).items())),
    )
    return model, report


def save_base_model(model: Any, tokenizer: Any, folder: Path) -> Path:
    """The model (float32 safetensors) and tokenizer in one folder that ``HFModelConfig(path=folder)`` and
    ``AutoModelForCausalLM.from_pretrained`` load; EOS / pad / BOS ids are the tokenizer's."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.float()
    special = {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    for name, value in special.items():
        setattr(model.config, name, value)
        if getattr(model, "generation_config", None) is not None:
            setattr(model.generation_config, name, value)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
