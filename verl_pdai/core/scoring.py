"""Stepwise scoring of one response: outcome + a capped process part (pure, imports no verl).

    score = outcome + process
    outcome = outcome_weight * [final answer equivalent to the ground truth]
    process = clip(process_weight * sum_i r_i, -process_cap, +process_cap)
    r_i = key_weight * |new key quantities reached in step i| / |K|
          - false_claim_weight * [step i makes a false arithmetic claim] / n
          - repetition_weight * [step i repeats an earlier step] / n

K are the key intermediate quantities of the reference solution (the ground-truth value excluded, so the
process part never pays twice for the answer) and n the number of model-written steps. ``process_cap`` is
below ``outcome_weight / 2``, so a right answer with poor steps always beats a wrong one with good steps.
The per-step scores returned sum to ``process`` so a trainer can place them on the tokens where steps end.

The text scored is the model-written text only: the caller passes it as ``pieces`` (the spans between
injected hints), and every piece boundary is a step boundary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from verl_pdai.core.answers import answers_equivalent, extract_final_answer, split_thinking
from verl_pdai.core.config_values import ConfigError, dataclass_from_mapping
from verl_pdai.core.step_checks import find_arithmetic_claims, key_quantities, quantities_in, repeated_steps
from verl_pdai.core.steps import Step, segment_steps

THINKING_MODES = ("auto", "required", "off")


@dataclass(frozen=True)
class StepwiseConfig:
    """Weights and bounds of the stepwise reward. Every field is a ``reward.reward_kwargs`` key."""

    outcome_weight: float = 1.0
    process_weight: float = 0.2
    process_cap: float = 0.2
    key_weight: float = 1.0
    false_claim_weight: float = 1.0
    repetition_weight: float = 1.0
    # auto: grade after "</think>" when present, no outcome when "<think>" opened but never closed;
    # required: no outcome without "</think>" (chat templates that open <think> in the prompt, e.g. R1-distill);
    # off: grade the whole text.
    thinking: str = "auto"
    timeout_s: float = 4.0
    max_chars: int = 200_000
    max_steps: int = 512
    min_repeat_chars: int = 20
    num_workers: int = 2
    memory_limit_mb: int = 2048

    def __post_init__(self) -> None:
        problems = []
        if self.thinking not in THINKING_MODES:
            problems.append(f"thinking={self.thinking!r}: use one of {', '.join(THINKING_MODES)}")
        for name in ("outcome_weight", "process_weight", "process_cap", "key_weight", "false_claim_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                problems.append(f"{name}={value!r}: must be a finite number >= 0")
        if not math.isfinite(self.repetition_weight) or self.repetition_weight < 0:
            problems.append(f"repetition_weight={self.repetition_weight!r}: must be a finite number >= 0")
        if self.outcome_weight > 0 and self.process_cap >= self.outcome_weight / 2:
            problems.append(
                f"process_cap={self.process_cap} must stay below outcome_weight/2={self.outcome_weight / 2} so the "
                "process part can never outweigh the outcome"
            )
        if not (0 < self.timeout_s <= 600):
            problems.append(f"timeout_s={self.timeout_s!r}: must be in (0, 600] seconds")
        for name in ("max_chars", "max_steps", "num_workers"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)!r}: must be >= 1")
        if self.min_repeat_chars < 0:
            problems.append(f"min_repeat_chars={self.min_repeat_chars!r}: must be >= 0")
        if self.memory_limit_mb < 0:
            problems.append(f"memory_limit_mb={self.memory_limit_mb!r}: must be >= 0 (0 disables the limit)")
        if problems:
            raise ConfigError("pdai_stepwise reward config: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> StepwiseConfig:
        """Build from a plain mapping (e.g. ``reward.reward_kwargs``); unknown keys fail with the valid names."""
        return dataclass_from_mapping(cls, values, "pdai_stepwise reward config")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ScoreResult:
    """Everything the stepwise reward says about one response. Field names are the reward_extra_info keys."""

    score: float = 0.0
    acc: float = 0.0
    outcome: float = 0.0
    process_score: float = 0.0
    pred: str = ""
    num_steps: int = 0
    num_false_claims: int = 0
    num_claims: int = 0
    first_error_step: int = -1
    num_key_quantities: int = 0
    key_quantities_reached: int = 0
    num_repeated_steps: int = 0
    thinking_closed: bool = False
    truncated: bool = False
    timed_out: bool = False
    error: str = ""
    step_scores: list[float] = field(default_factory=list)
    step_char_ends: list[int] = field(default_factory=list)

    @classmethod
    def failed(cls, *, timed_out: bool = False, error: str = "") -> ScoreResult:
        """The defined score of a response that could not be scored: no reward at all, and a flag."""
        return cls(timed_out=timed_out, error=error[:500])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _segment_pieces(pieces: Sequence[str], max_steps: int) -> list[Step]:
    """Segment each model-written piece on its own (a hint is a step boundary), with offsets in the joined text."""
    steps: list[Step] = []
    base = 0
    for piece in pieces:
        for step in segment_steps(piece, max_steps=max(1, max_steps - len(steps))):
            steps.append(Step(len(steps), base + step.start, base + step.end, step.text))
        base += len(piece)
        if len(steps) >= max_steps:
            break
    return steps


def _truncate(pieces: Sequence[str], max_chars: int) -> tuple[list[str], bool]:
    kept: list[str] = []
    budget = max_chars
    for piece in pieces:
        if budget <= 0:
            return kept, True
        kept.append(piece[:budget])
        budget -= len(piece)
    return kept, budget < 0


def outcome_of(text: str, ground_truths: Sequence[str], config: StepwiseConfig) -> tuple[str, bool, bool]:
    """(extracted prediction, correct, thinking closed) for the model-written ``text``."""
    split = split_thinking(text)
    if config.thinking == "off":
        answer_text, eligible = text, True
    elif split.closed:
        answer_text, eligible = split.answer_text, True
    else:
        answer_text, eligible = text, config.thinking == "auto" and not split.opened
    pred = extract_final_answer(answer_text) if eligible else None
    if not pred or not ground_truths:
        return pred or "", False, split.closed
    return pred, answers_equivalent(pred, list(ground_truths), timeout_s=config.timeout_s / 2), split.closed


def process_of(
    steps: Sequence[Step],
    reference_solution: str,
    ground_truths: Sequence[str],
    config: StepwiseConfig,
    result: ScoreResult,
) -> None:
    """Fill the process part of ``result`` from the model-written ``steps``."""
    excluded = set().union(*(quantities_in(gt) for gt in ground_truths)) if ground_truths else set()
    keys = [k for k in key_quantities(reference_solution) if k not in excluded] if reference_solution else []
    key_set = set(keys)
    repeated = repeated_steps([s.text for s in steps], min_chars=config.min_repeat_chars)
    n = max(1, len(steps))
    reached: set[str] = set()
    raw_scores: list[float] = []
    for step, is_repeat in zip(steps, repeated, strict=True):
        claims = find_arithmetic_claims(step.text)
        false_claims = sum(1 for c in claims if c.holds is False)
        result.num_claims += len(claims)
        result.num_false_claims += false_claims
        if false_claims and result.first_error_step < 0:
            result.first_error_step = step.index
        new_keys = (quantities_in(step.text) & key_set) - reached if key_set else set()
        reached |= new_keys
        raw = config.key_weight * len(new_keys) / len(keys) if keys else 0.0
        raw -= config.false_claim_weight * (1.0 if false_claims else 0.0) / n
        raw -= config.repetition_weight * (1.0 if is_repeat else 0.0) / n
        raw_scores.append(config.process_weight * raw)
    total = sum(raw_scores)
    capped = max(-config.process_cap, min(config.process_cap, total))
    scale = capped / total if total and capped != total else 1.0
    result.step_scores = [round(s * scale, 6) for s in raw_scores]
    result.process_score = round(capped, 6)
    result.num_key_quantities = len(keys)
    result.key_quantities_reached = len(reached)
    result.num_repeated_steps = sum(repeated)


def score_response(
    pieces: Sequence[str],
    ground_truths: Sequence[str],
    reference_solution: str = "",
    config: StepwiseConfig | None = None,
    *,
    outcome_only: bool = False,
) -> ScoreResult:
    """Score the model-written ``pieces`` of one response (in order; hints already removed).

    Pure and deterministic; its running time is bounded by ``config.max_chars``/``max_steps`` and by the
    timeouts of the answer check. The hard wall-clock bound is the caller's (see ``bounded_scorer``).
    """
    config = config or StepwiseConfig()
    pieces = [str(p) for p in pieces]
    # the outcome reads the whole text (the final answer sits at the end; extraction scans only its tail),
    # the step checks read the first max_chars characters
    pred, correct, closed = outcome_of("".join(pieces), ground_truths, config)
    pieces, truncated = _truncate(pieces, config.max_chars)
    result = ScoreResult(truncated=truncated)
    result.pred, result.thinking_closed = pred[:1000], closed
    result.acc = 1.0 if correct else 0.0
    result.outcome = config.outcome_weight * result.acc
    if outcome_only:
        result.score = result.outcome
        return result
    steps = _segment_pieces(pieces, config.max_steps)
    result.num_steps = len(steps)
    result.step_char_ends = [s.end for s in steps]
    process_of(steps, reference_solution or "", ground_truths, config, result)
    result.score = round(result.outcome + result.process_score, 6)
    return result


def score_request(payload: dict) -> dict:
    """Worker-process entry point: a JSON request in, a ``ScoreResult`` dict out."""
    config = StepwiseConfig.from_mapping(payload.get("config"))
    result = score_response(
        payload.get("pieces") or [],
        [str(g) for g in payload.get("ground_truths") or []],
        str(payload.get("reference_solution") or ""),
        config,
        outcome_only=bool(payload.get("outcome_only")),
    )
    return result.to_dict()
