"""Stepwise scoring of one response: outcome + a capped process part (pure, imports no verl).

    score   = outcome + process
    outcome = outcome_weight * [final answer equivalent to the ground truth]
    process = clip(process_weight * sum_i r_i, -process_cap, +process_cap)
    r_i     = key_weight * delta * |K_i| / |K|  -  false_claim_weight * (false claims in step i)
                                                -  repetition_weight * [step i repeats an earlier step]
    delta   = clip((2 (|K| + 2) - D) / (|K| + 2), 0, 1),   D = distinct values the response's correct claims derive

K are the key intermediate quantities of the reference solution, less the values the model was given (the
ground truth, so the answer never pays twice, and the numbers of the problem statement); K_i are those that a
*correct claim of the model's own* in step i derives for the first time (``derived_quantities``: the claimed side
of a claim that holds, not written on its computed side), never one shown in an injected hint. A bare number, a
list of numbers, the left side of a false claim, ``x = x`` or a copy of the hint earn nothing, a spray of true
claims that derives every small number is diluted by delta, and a false claim
or a repeated step costs the same whatever surrounds it (no division by the number of steps), so padding,
repetition and copying never raise the reward. ``process_cap`` is below ``outcome_weight / 2``: a right answer
with poor steps always beats a wrong one with good steps. The per-step scores sum to ``process``.

Scoring runs in two phases (``score_phase``): the outcome first (cheap, bounded), then the step checks. A caller
that bounds each phase in time (``verl_pdai.core.bounded``) gives a step check that overruns the process floor
``-process_cap``, and a response whose outcome could not be decided the floor score (outcome 0, process
``-process_cap``, flagged ``unscored``): a time-out never pays.

The text scored is the model-written text only: the caller passes it as ``pieces`` (the spans between
injected hints), and every piece boundary is a step boundary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from verl_pdai.core.answers import answers_equivalent, extract_final_answer, split_thinking
from verl_pdai.core.config_values import ConfigError, dataclass_from_mapping
from verl_pdai.core.quantities import derived_quantities
from verl_pdai.core.step_checks import find_arithmetic_claims, key_quantities, quantities_in, repeated_steps
from verl_pdai.core.steps import Step, segment_steps

THINKING_MODES = ("auto", "required", "off")
# key credit is full while a response derives at most |K| + 2 distinct values, and 0 from 2 (|K| + 2) on
SPRAY_SLACK = 2
MAX_CLAIMS = 4096  # arithmetic claims checked per response (each step's scan is bounded too)
# Scoring processes per pool (per reward actor). Each is a Python process (~60 MB once math-verify has loaded sympy,
# up to memory_limit_mb under load), so 256 is already ~15 GB idle per actor and far more than the cores it could
# keep busy; verl runs several reward actors per node. A fixed number, not one relative to the CPU count: the config
# is validated on the driver, whose CPU count need not be the reward actor's.
MAX_NUM_WORKERS = 256
MIN_MEMORY_LIMIT_MB = 256  # address space a scoring process needs to import sympy and math-verify, with room
# Bound on queue_timeout_s: an hour is far past any useful wait, and keeps the value a sane finite number.
MAX_QUEUE_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class StepwiseConfig:
    """Weights and bounds of the stepwise reward. Every field is a ``reward.reward_kwargs`` key."""

    outcome_weight: float = 1.0
    process_weight: float = 0.2
    process_cap: float = 0.2
    key_weight: float = 1.0  # shared by all key quantities of the reference
    false_claim_weight: float = 0.25  # per false claim, before process_weight: four saturate the floor
    repetition_weight: float = 0.25  # per repeated step
    # auto: grade after "</think>" when present, no outcome when "<think>" opened but never closed;
    # required: no outcome without "</think>" (chat templates that open <think> in the prompt, e.g. R1-distill);
    # off: grade the whole text.
    thinking: str = "auto"
    timeout_s: float = 4.0
    max_chars: int = 200_000
    max_steps: int = 2048
    min_repeat_chars: int = 20
    num_workers: int = 2
    memory_limit_mb: int = 2048
    # Longest wait for a free scoring worker, per phase; past it the response gets the floor score, flagged unscored
    # (as a time-out). The default keeps the old bound: a big batch on few workers legitimately queues for minutes.
    queue_timeout_s: float = 600.0

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
        for name in ("max_chars", "max_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)!r}: must be >= 1")
        if not (1 <= self.num_workers <= MAX_NUM_WORKERS):
            problems.append(f"num_workers={self.num_workers!r}: must be in [1, {MAX_NUM_WORKERS}]")
        if not (0 < self.queue_timeout_s <= MAX_QUEUE_TIMEOUT_S):
            problems.append(
                f"queue_timeout_s={self.queue_timeout_s!r}: must be in (0, {MAX_QUEUE_TIMEOUT_S:g}] seconds"
            )
        if self.min_repeat_chars < 0:
            problems.append(f"min_repeat_chars={self.min_repeat_chars!r}: must be >= 0")
        if self.memory_limit_mb != 0 and not (MIN_MEMORY_LIMIT_MB <= self.memory_limit_mb):
            problems.append(
                f"memory_limit_mb={self.memory_limit_mb!r}: must be 0 (no limit) or >= {MIN_MEMORY_LIMIT_MB} (below "
                "that a scoring process cannot even import its checker, and every response would score the floor)"
            )
        if problems:
            raise ConfigError("pdai_stepwise reward config: " + "; ".join(problems))

    @property
    def process_floor(self) -> float:
        """The lowest process part a response can get: -process_cap (0 when the process part is off)."""
        return -self.process_cap if self.process_weight > 0 else 0.0

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
    unscored: bool = False  # the outcome could not be decided in time: scored at the floor
    error: str = ""
    queue_wait_s: float = 0.0  # seconds spent waiting for a free scoring worker (both phases); set by the caller
    step_scores: list[float] = field(default_factory=list)
    step_char_ends: list[int] = field(default_factory=list)

    @classmethod
    def failed(cls, *, timed_out: bool = False, error: str = "") -> ScoreResult:
        """An outcome-only check that could not finish (previews, evaluation): no outcome, and a flag."""
        return cls(timed_out=timed_out, error=error[:500])

    @classmethod
    def floor(cls, config: StepwiseConfig, text_chars: int, *, timed_out: bool, error: str) -> ScoreResult:
        """The score of a response whose outcome could not be decided: outcome 0 and the process floor, as one
        step on the last character, flagged ``unscored`` (a trainer may drop it: ``pdai.drop_unscored``)."""
        result = cls(timed_out=timed_out, unscored=True, error=error[:500])
        result.set_process_floor(config, text_chars)
        return result

    def set_process_floor(self, config: StepwiseConfig, text_chars: int) -> None:
        """The step checks could not finish: the process part is its floor on the last step."""
        self.process_score = config.process_floor
        self.num_steps = 1  # the floor is one step: lists and count stay consistent for every reader
        self.step_scores = [config.process_floor]
        self.step_char_ends = [max(0, text_chars)]
        self.score = round(self.outcome + config.process_floor, 6)

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


THINK_CLOSE = "</think>"


def _repeated(steps: Sequence[Step], min_chars: int, thinking_end: int) -> list[bool]:
    """Repeated steps, the thinking part and the answer part checked each on its own."""
    if thinking_end < 0:
        return repeated_steps([s.text for s in steps], min_chars=min_chars)
    thinking = [s.text for s in steps if s.start < thinking_end]
    answer = [s.text for s in steps if s.start >= thinking_end]
    return repeated_steps(thinking, min_chars=min_chars) + repeated_steps(answer, min_chars=min_chars)


def process_of(
    steps: Sequence[Step],
    reference_solution: str,
    ground_truths: Sequence[str],
    config: StepwiseConfig,
    result: ScoreResult,
    given_texts: Sequence[str] = (),
    thinking_end: int = -1,
) -> None:
    """Fill the process part of ``result`` from the model-written ``steps``.

    ``thinking_end``: the character offset where ``</think>`` ends (-1: none); an answer part that restates the
    thinking is the expected format of a thinking model, not repetition.

    ``given_texts`` are texts the model was shown (the problem statement, the injected hints): key quantities
    written there are either not counted (the problem's numbers) or never credited (a hint's values).
    """
    answer_values = set().union(*(quantities_in(gt) for gt in ground_truths)) if ground_truths else set()
    problem_values = quantities_in(given_texts[0]) if given_texts else set()
    shown_values = set().union(*(quantities_in(t) for t in given_texts[1:])) if len(given_texts) > 1 else set()
    keys = (
        [k for k in key_quantities(reference_solution) if k not in answer_values | problem_values]
        if (reference_solution)
        else []
    )
    creditable = set(keys) - shown_values
    repeated = _repeated(steps, config.min_repeat_chars, thinking_end)
    claims_of: list[list] = []
    budget_left = MAX_CLAIMS
    for step in steps:  # the claim budget is per response: fillers cannot hide a false claim past a per-step cap
        claims = find_arithmetic_claims(step.text, max_claims=budget_left) if budget_left else []
        budget_left -= len(claims)
        claims_of.append(claims)
    derived_of = [derived_quantities(claims) for claims in claims_of]
    # A spray of true claims (1 + 1 = 2, 2 + 1 = 3, ...) or a shotgun of products of the problem's numbers derives
    # keys without reasoning: key credit is full up to |K| + 2 distinct derived values, falls linearly beyond, and
    # is 0 from twice that on (a weight in proportion would still pay a large enough shotgun something).
    derived_count = len(set().union(*derived_of)) if derived_of else 0
    needed = len(keys) + SPRAY_SLACK
    dilution = min(1.0, max(0.0, (2 * needed - derived_count) / needed))
    reached: set[str] = set()
    raw_scores: list[float] = []
    for step, is_repeat, claims, derived in zip(steps, repeated, claims_of, derived_of, strict=True):
        false_claims = sum(1 for c in claims if c.holds is False)
        result.num_claims += len(claims)
        result.num_false_claims += false_claims
        if false_claims and result.first_error_step < 0:
            result.first_error_step = step.index
        new_keys = (derived & creditable) - reached if creditable and not is_repeat else set()
        reached |= new_keys
        raw = config.key_weight * dilution * len(new_keys) / len(keys) if keys else 0.0
        raw -= config.false_claim_weight * false_claims
        raw -= config.repetition_weight * (1.0 if is_repeat else 0.0)
        raw_scores.append(config.process_weight * raw)
    total = sum(raw_scores)
    capped = max(-config.process_cap, min(config.process_cap, total))
    scale = capped / total if total and capped != total else 1.0
    result.step_scores = [round(s * scale, 6) for s in raw_scores]
    result.process_score = round(capped, 6)
    result.num_key_quantities = len(keys)
    result.key_quantities_reached = len(reached)
    result.num_repeated_steps = sum(repeated)


PHASES = ("all", "outcome", "process")


def score_response(
    pieces: Sequence[str],
    ground_truths: Sequence[str],
    reference_solution: str = "",
    config: StepwiseConfig | None = None,
    *,
    outcome_only: bool = False,
    given_texts: Sequence[str] = (),
) -> ScoreResult:
    """Score the model-written ``pieces`` of one response (in order; hints already removed), both phases.

    Pure and deterministic; its running time is bounded by ``config.max_chars``/``max_steps`` and by the
    timeouts of the answer check. The hard wall-clock bound is the caller's (see ``bounded_scorer``).
    ``given_texts``: the problem statement first, then any injected hint texts (see ``process_of``).
    """
    return score_phase(
        "outcome" if outcome_only else "all", pieces, ground_truths, reference_solution, config, given_texts
    )


def score_phase(
    phase: str,
    pieces: Sequence[str],
    ground_truths: Sequence[str],
    reference_solution: str = "",
    config: StepwiseConfig | None = None,
    given_texts: Sequence[str] = (),
) -> ScoreResult:
    """One phase of the scoring: ``outcome`` (the final answer only), ``process`` (the step checks only) or
    ``all``. The score of a phase covers what it computed; ``merge_phases`` joins an outcome and a process."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    config = config or StepwiseConfig()
    pieces = [str(p) for p in pieces]
    result = ScoreResult()
    if phase != "process":
        # the outcome reads the whole text (the final answer sits at the end; extraction scans only its tail)
        pred, correct, closed = outcome_of("".join(pieces), ground_truths, config)
        result.pred, result.thinking_closed = pred[:1000], closed
        result.acc = 1.0 if correct else 0.0
        result.outcome = config.outcome_weight * result.acc
        result.score = result.outcome
        if phase == "outcome":
            return result
    # the step checks read the first max_chars characters
    pieces, result.truncated = _truncate(pieces, config.max_chars)
    steps = _segment_pieces(pieces, config.max_steps)
    result.num_steps = len(steps)
    result.step_char_ends = [s.end for s in steps]
    joined = "".join(pieces)
    close = joined.rfind(THINK_CLOSE)
    thinking_end = close + len(THINK_CLOSE) if close >= 0 else -1
    process_of(steps, reference_solution or "", ground_truths, config, result, given_texts, thinking_end)
    result.score = round(result.outcome + result.process_score, 6)
    return result


_OUTCOME_KEYS = ("acc", "outcome", "pred", "thinking_closed")


def merge_phases(outcome: ScoreResult, process: ScoreResult) -> ScoreResult:
    """The whole result from the ``outcome`` phase's result and the ``process`` phase's result."""
    merged = ScoreResult(**process.to_dict())
    for key in _OUTCOME_KEYS:
        setattr(merged, key, getattr(outcome, key))
    merged.timed_out = outcome.timed_out or process.timed_out
    merged.error = "; ".join(e for e in (outcome.error, process.error) if e)[:500]
    merged.score = round(merged.outcome + merged.process_score, 6)
    return merged


def score_request(payload: dict) -> dict:
    """Worker-process entry point: a JSON request in, a ``ScoreResult`` dict out."""
    config = StepwiseConfig.from_mapping(payload.get("config"))
    phase = str(payload.get("phase") or ("outcome" if payload.get("outcome_only") else "all"))
    result = score_phase(
        phase,
        payload.get("pieces") or [],
        [str(g) for g in payload.get("ground_truths") or []],
        str(payload.get("reference_solution") or ""),
        config,
        [str(t) for t in payload.get("given_texts") or []],
    )
    return result.to_dict()
