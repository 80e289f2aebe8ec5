"""What the demo prints per group and per step, from a batch's rows as the trainer left them in TransferQueue.

``GroupView`` / ``SessionView`` are plain data (built in ``observer.py``); the functions here only format them, so
the tests can read the same values the lines show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# per-step metrics shown in the terminal (all of them go to metrics.jsonl)
STEP_METRICS = (
    ("critic/score/mean", "score"),
    ("pdai/acc_main", "acc main"),
    ("pdai/preview_pass_rate", "preview pass"),
    ("pdai/intervention_rate", "intervention"),
    ("pdai/hint_level_mean", "hint level"),
    ("pdai/hint_token_share", "hint tokens"),
    ("pdai/adv/signal_groups_unassisted", "signal groups before"),
    ("pdai/adv/signal_groups_final", "after"),
    ("pdai/store/mean_p", "store mean p"),
    ("pdai/policy/w", "policy w"),
)


@dataclass
class SessionView:
    index: int
    role: str  # preview | main
    decision: str
    hint_level: int
    hint_span: tuple[int, int] | None
    hint_text: str
    acc: float
    score: float
    step_scores: list[float]
    adv_before: float | None  # mean epgrpo advantage over model tokens before the hint (all of them if no hint)
    adv_after: float | None  # ... after the hint (None without a hint)
    model_tokens: int  # tokens the model wrote (hint tokens excluded)


@dataclass
class GroupView:
    problem_id: str
    tier: str
    prior: tuple[float, float]  # what the store handed this prompt
    preview_successes: int
    preview_trials: int
    difficulty: float | None  # the p the main sessions decided from
    sessions: list[SessionView] = field(default_factory=list)
    store_after: tuple[float, float] | None = None


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _adv(value: float | None) -> str:
    return "   -  " if value is None else f"{value:+.3f}"


def group_lines(group: GroupView) -> list[str]:
    alpha, beta = group.prior
    p = "-" if group.difficulty is None else f"{group.difficulty:.2f}"
    mean = alpha / (alpha + beta)
    head = (
        f"{group.problem_id} [{group.tier}]  store prior Beta({alpha:.2f}, {beta:.2f}) mean {mean:.2f}"
        f"  | preview {group.preview_successes}/{group.preview_trials} -> p = {p}"
    )
    if group.store_after is not None:
        a, b = group.store_after
        head += f"  | store after {a / (a + b):.2f}"
    lines = [head]
    for s in group.sessions:
        hint = "no hint"
        if s.hint_span is not None:
            hint = f"hint L{s.hint_level} tokens [{s.hint_span[0]}, {s.hint_span[1]}) {_short(s.hint_text)!r}"
        steps = "[" + ", ".join(f"{x:+.2f}" for x in s.step_scores) + "]"
        lines.append(
            f"  s{s.index} {s.role:<7} {s.decision:<12} {hint}\n"
            f"       outcome {s.acc:.0f}  reward {s.score:+.3f}  steps {steps}"
            f"  adv before/after hint {_adv(s.adv_before)} / {_adv(s.adv_after)}  ({s.model_tokens} model tokens)"
        )
    return lines


def step_line(step: int, metrics: dict[str, float]) -> str:
    shown = [f"{label} {metrics[key]:.3f}" for key, label in STEP_METRICS if key in metrics]
    return f"step {step} metrics: " + " | ".join(shown)
