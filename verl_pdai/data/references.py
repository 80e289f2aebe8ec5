"""Reference solutions for problems that lack one: from k samples of a stronger model, or from a solution corpus.

Pure (no I/O, no model, no verl); ``backfill`` runs it. The rules (docs/data.md, "Filling missing references"):

* **A sample** qualifies when the project's checker (the reward's, run by ``backfill``) graded it correct, it has a
  concise part (the text after the last ``</think>``; a response without thinking tags is all concise; one that
  opened ``<think>`` and never closed it has none, nor, with the checker's ``thinking="required"``, one without
  ``</think>``), that part has at least ``min_steps`` steps as the reward splits them
  (:func:`~verl_pdai.core.steps.segment_steps`), fits ``max_bytes`` (UTF-8), and the hints built from it are
  usable (:func:`~verl_pdai.core.hints.build_hints`: a text whose every hint level leaks the answer, which the
  hint guard then empties, is refused with the guard's reason). Of the qualifying samples the shortest wins
  (ties: the lowest sample index); the concise part, without thinking tags, becomes the reference.
* **A corpus solution** is matched by the normalized problem text of data preparation
  (:func:`~verl_pdai.data.rows.normalized_problem`: exact match after normalization, not paraphrases); it must
  pass the checker too (its final answer equals the ground truth; ``accept_unanswered`` lets a solution without
  an extractable answer through, never one with a wrong answer), fit ``max_bytes`` and give usable hints. The
  shortest qualifying solution of the matches wins.
* Where the reference came from is written into ``extra_info``: ``reference_source`` (``"backfill"`` or
  ``"corpus"``; null for the data set's own) and ``reference_provenance`` (a JSON string: model, sample index,
  score, ... or corpus file and row). Every row keeps the same ``extra_info`` fields (see ``io.verl_row_schema``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from verl_pdai.core.extraction import split_thinking
from verl_pdai.core.hints import build_hints
from verl_pdai.core.steps import segment_steps
from verl_pdai.data.rows import INSTRUCTION, normalized_problem
from verl_pdai.plugin.fields import reference_solution_of

SOURCE_FIELD = "reference_source"
PROVENANCE_FIELD = "reference_provenance"
REFERENCE_FIELD = "reference_solution"
BACKFILL = "backfill"
CORPUS = "corpus"
OUTPUT_FIELDS = (REFERENCE_FIELD, SOURCE_FIELD, PROVENANCE_FIELD)  # in every output row's extra_info

MIN_STEPS = 3  # a concise part shorter than this gives one hint step at most
MAX_REFERENCE_BYTES = 16_384  # per reference (UTF-8); a concise solution is a few KB, a thinking trace is not one
MAX_CANDIDATES_PER_PROBLEM = 8  # corpus solutions examined per problem (a corpus may repeat a problem many times)

# Why a sample or a corpus solution is refused (report keys)
WRONG_ANSWER = "wrong_answer"
CHECK_FAILED = "check_failed"  # the checker timed out or its worker failed: counted as wrong
NO_CONCISE_PART = "no_concise_part"
TOO_FEW_STEPS = "too_few_steps"
TOO_LONG = "too_long"
HINT_PREFIX = "hints_"  # + the hint builder's reason code: hints_answer_leak, hints_single_step, ...

_THINK_TAG = re.compile(r"</?think>", re.IGNORECASE)


@dataclass(frozen=True)
class Judged:
    """A verdict of the checker on one text: ``correct`` (None: nothing to compare, no ground truth or no
    answer found where ``accept_unanswered`` applies), the extracted answer, and whether the check failed."""

    correct: bool | None
    extracted: str = ""
    failed: bool = False


@dataclass(frozen=True)
class Choice:
    """The chosen reference of one problem and its provenance (before the source-specific fields)."""

    text: str
    index: int  # sample index (backfill) or corpus row
    steps: int
    extracted: str
    lowered: tuple[int, ...]  # hint levels the guard had to lower for this reference


@dataclass
class Outcome:
    """What happened to one problem's candidates: the choice (None: nothing qualified) and why others failed."""

    choice: Choice | None = None
    correct: int = 0  # candidates the checker graded correct
    rejected: Counter = field(default_factory=Counter)  # reason -> candidates


def problem_text(row: Mapping[str, object]) -> str:
    """The problem a verl row asks: ``extra_info.problem`` / ``question`` where a file carries it, else the last user
    message without the instruction data preparation appends (``rows.INSTRUCTION``)."""
    extra = row.get("extra_info")
    if isinstance(extra, Mapping):
        for key in ("problem", "question"):
            value = extra.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        text = prompt
    else:
        users = [m.get("content") for m in prompt or () if isinstance(m, Mapping) and m.get("role") == "user"]
        text = users[-1] if users and isinstance(users[-1], str) else ""
    text = text.strip()
    return text[: -len(INSTRUCTION)].rstrip() if text.endswith(INSTRUCTION) else text


def problem_key(text: str) -> str:
    """The corpus match key: data preparation's normalized problem text (its dedupe and decontamination key)."""
    return normalized_problem(text)


def has_reference(row: Mapping[str, object]) -> bool:
    """True when the row carries a non-empty reference (as the agent loop reads it)."""
    return bool(reference_solution_of(row.get("extra_info")))


def concise_part(response: str, *, require_closed: bool = False) -> str | None:
    """The text after the last ``</think>`` (all of it without thinking tags), tags removed; None when the thinking
    never closed or nothing is left. ``require_closed`` (the checker's ``thinking="required"``, for models whose
    chat template opens ``<think>`` in the prompt): None without a ``</think>``."""
    split = split_thinking(response)
    if not split.closed and (split.opened or require_closed):
        return None
    text = clean(split.answer_text)
    return text or None


def clean(text: str) -> str:
    """A reference as written: thinking tags removed (they would end the thinking a hint is injected into)."""
    return _THINK_TAG.sub("", text).strip()


def _hint_reason(text: str, answers: object) -> tuple[str | None, tuple[int, ...]]:
    """(refusal reason or None, lowered levels) of the hints built from ``text`` with the default settings."""
    hints = build_hints(text, answers)
    return (None if hints.usable else HINT_PREFIX + hints.reason), hints.lowered


def qualify(
    text: str, answers: object, *, min_steps: int = MIN_STEPS, max_bytes: int = MAX_REFERENCE_BYTES
) -> tuple[str | None, int, tuple[int, ...]]:
    """(refusal reason or None, steps, lowered hint levels) of ``text`` as a reference; cheapest checks first."""
    if len(text.encode("utf-8")) > max_bytes:
        return TOO_LONG, 0, ()
    steps = len(segment_steps(text))
    if steps < min_steps:
        return TOO_FEW_STEPS, steps, ()
    reason, lowered = _hint_reason(text, answers)
    return reason, steps, lowered


def choose_sample(
    responses: Sequence[str],
    verdicts: Sequence[Judged],
    answers: object,
    *,
    min_steps: int = MIN_STEPS,
    max_bytes: int = MAX_REFERENCE_BYTES,
    require_closed: bool = False,
) -> Outcome:
    """The shortest qualifying concise part of a problem's samples (module docstring), with the refusal counts."""
    outcome = Outcome()
    candidates: list[tuple[int, int, str]] = []  # (length, sample index, concise part)
    for index, (response, verdict) in enumerate(zip(responses, verdicts, strict=True)):
        if verdict.failed:
            outcome.rejected[CHECK_FAILED] += 1
            continue
        if not verdict.correct:
            outcome.rejected[WRONG_ANSWER] += 1
            continue
        outcome.correct += 1
        concise = concise_part(response, require_closed=require_closed)
        if concise is None:
            outcome.rejected[NO_CONCISE_PART] += 1
            continue
        candidates.append((len(concise), index, concise))
    return _first_qualifying(sorted(candidates), verdicts, answers, min_steps, max_bytes, outcome)


def choose_corpus_solution(
    solutions: Sequence[tuple[int, str]],
    verdicts: Sequence[Judged],
    answers: object,
    *,
    accept_unanswered: bool = False,
    max_bytes: int = MAX_REFERENCE_BYTES,
) -> Outcome:
    """The shortest qualifying corpus solution among ``(corpus row, solution)`` matches of one problem."""
    outcome = Outcome()
    candidates: list[tuple[int, int, str]] = []
    by_row: dict[int, Judged] = {}
    for (row, solution), verdict in zip(solutions, verdicts, strict=True):
        text = clean(solution)
        if verdict.failed:
            outcome.rejected[CHECK_FAILED] += 1
        elif not verdict.correct and not (accept_unanswered and not verdict.extracted):
            outcome.rejected[WRONG_ANSWER] += 1
        elif not text:
            outcome.rejected[NO_CONCISE_PART] += 1
        else:
            outcome.correct += 1
            candidates.append((len(text), row, text))
            by_row[row] = verdict
    # one step is enough for a corpus solution when its sentences make hint steps (build_hints decides)
    return _first_qualifying(sorted(candidates), by_row, answers, 1, max_bytes, outcome)


def _first_qualifying(
    candidates: list[tuple[int, int, str]],
    verdicts: Sequence[Judged] | Mapping[int, Judged],
    answers: object,
    min_steps: int,
    max_bytes: int,
    outcome: Outcome,
) -> Outcome:
    for _, index, text in candidates:  # shortest first: the first that qualifies is the choice
        reason, steps, lowered = qualify(text, answers, min_steps=min_steps, max_bytes=max_bytes)
        if reason is None:
            outcome.choice = Choice(text, index, steps, verdicts[index].extracted, lowered)
            return outcome
        outcome.rejected[reason] += 1
    return outcome


def with_reference(row: Mapping[str, object], text: str, source: str, provenance: Mapping[str, object]) -> dict:
    """A copy of ``row`` whose ``extra_info`` holds the reference, its source and its provenance (JSON)."""
    extra = dict(row.get("extra_info") or {})  # type: ignore[call-overload]
    extra[REFERENCE_FIELD] = text
    extra[SOURCE_FIELD] = source
    extra[PROVENANCE_FIELD] = json.dumps(dict(provenance), ensure_ascii=False, sort_keys=True)
    return {**row, "extra_info": extra}


def coverage(rows: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """Rows, rows with a reference, their share, and the count per source (``dataset`` where none is recorded)."""
    sources: Counter = Counter()
    for row in rows:
        if has_reference(row):
            extra = row.get("extra_info")
            source = extra.get(SOURCE_FIELD) if isinstance(extra, Mapping) else None
            sources[source or "dataset"] += 1
    with_reference = sum(sources.values())
    return {
        "rows": len(rows),
        "with_reference": with_reference,
        "share": with_reference / len(rows) if rows else 0.0,
        "by_source": dict(sorted(sources.items())),
    }
