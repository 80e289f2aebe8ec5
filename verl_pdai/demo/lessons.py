"""What the demo teaches its tiny model before training, as token sequences. Imports no verl (tokenizer only).

A random-weight model never answers right, so every problem would look equally hard. The lessons plant a known
difficulty split that the EPRLI path then has to discover:

* ``easy``: the whole reference solution, so previews succeed and no hint is needed;
* ``tricky`` / ``hard``: unassisted, an opening paragraph and then a wrong guess, so previews fail; after the hint
  the agent loop splices in (the same text: ``build_hints`` with the demo's prefix and boundary, tokenized alone
  as the agent loop tokenizes it), either the rest of the reference solution or a wrong guess. The share of
  right continuations grows with the hint level (``RIGHT_AFTER_HINT``), so a sampled group holds both outcomes
  and the hint level matters.

Sequences are token ids exactly as the rollout produces them: the chat-templated prompt, then the segments each
tokenized on its own (the agent loop never re-tokenizes across a splice), then EOS. Hint tokens are context only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verl_pdai.core.hints import HintSet, build_hints
from verl_pdai.demo.problems import DemoProblem

OPENING = "First, I need to understand what the question asks.\n\n"
GUESS = "I think the answer is $\\boxed{{{answer}}}$."
DOUBT = "Hmm, I am not sure how to go on from here.\n\n"
# hint level -> (right, wrong) weights of the continuations taught after that level's hint (level 3, rarely
# chosen, is not taught: the model then continues from what it learned at the nearest context)
RIGHT_AFTER_HINT: dict[int, tuple[int, int]] = {1: (1, 1), 2: (3, 1)}


@dataclass(frozen=True)
class Lesson:
    """One taught sequence: ``ids`` (prompt + response), ``train`` marks the model-written tokens it learns."""

    problem_id: str
    kind: str  # "solution", "guess", "hint<h>-right", "hint<h>-wrong"
    ids: tuple[int, ...]
    train: tuple[bool, ...]
    prompt_len: int
    weight: float = 1.0  # relative frequency: sampling follows a branch in proportion to its taught weight


def prompt_ids(tokenizer: Any, problem: DemoProblem) -> list[int]:
    """The prompt as verl's agent loop builds it: the chat template with the generation prompt."""
    ids = tokenizer.apply_chat_template(problem.prompt, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys") and "input_ids" in ids:  # newer transformers return a BatchEncoding
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def _lesson(
    tokenizer: Any, problem: DemoProblem, kind: str, segments: Sequence[tuple[str, bool]], weight: float = 1.0
) -> Lesson:
    prompt = prompt_ids(tokenizer, problem)
    ids, train = list(prompt), [False] * len(prompt)
    for text, learned in segments:
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        train += [learned] * len(piece)
    ids.append(int(tokenizer.eos_token_id))
    train.append(True)
    return Lesson(problem.problem_id, kind, tuple(ids), tuple(train), len(prompt), weight)


def hint_set(problem: DemoProblem, fractions: Sequence[float], prefix: str, boundary: str) -> HintSet:
    """The hints the agent loop will build for this problem (same function, same settings)."""
    return build_hints(problem.reference_solution, problem.answer, fractions, prefix=prefix, suffix=boundary)


def lessons_for(
    tokenizer: Any, problem: DemoProblem, fractions: Sequence[float], prefix: str, boundary: str = "\n\n"
) -> list[Lesson]:
    if problem.tier == "easy":
        return [_lesson(tokenizer, problem, "solution", [(problem.reference_solution, True)])]
    guess = GUESS.format(answer=problem.wrong_answer)
    lessons = [_lesson(tokenizer, problem, "guess", [(OPENING, True), (guess, True)])]
    hints = hint_set(problem, fractions, prefix, boundary)
    if not hints.usable:
        raise ValueError(f"{problem.problem_id}: its reference solution gives no usable hint ({hints.reason})")
    for level, (right, wrong) in RIGHT_AFTER_HINT.items():
        if level >= hints.num_levels:
            continue
        hint = hints.for_level(level)
        rest = boundary.join(problem.steps[hint.steps_revealed :])
        segments = [(OPENING, True), (hint.text, False), (rest, True)]
        lessons.append(_lesson(tokenizer, problem, f"hint{hint.level}-right", segments, float(right)))
        segments = [(OPENING, True), (hint.text, False), (DOUBT + guess, True)]
        lessons.append(_lesson(tokenizer, problem, f"hint{hint.level}-wrong", segments, float(wrong)))
    return lessons


def all_lessons(
    tokenizer: Any, problems: Sequence[DemoProblem], fractions: Sequence[float], prefix: str, boundary: str = "\n\n"
) -> list[Lesson]:
    return [lesson for p in problems for lesson in lessons_for(tokenizer, p, fractions, prefix, boundary)]
