"""The pictures drawn from the intervention ledger: intervention rate and graduation over steps, the
difficulty-by-step heat map and accuracy by difficulty bucket. A picture whose columns are absent is skipped."""

from __future__ import annotations

import math

import pandas as pd

from verl_pdai.report import ledger_series as S
from verl_pdai.report.plans import HeatMap, Line, Panel, Plan


def _line(series: pd.Series, label: str, source: str, *, dashed: bool = False) -> Line:
    series = series.dropna()
    steps = tuple(float(s) for s in series.index)
    return Line(label, steps, tuple(float(v) for v in series.to_numpy()), source=source, dashed=dashed)


def _missing(frame: pd.DataFrame, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"ledger column {c}" for c in S.require(frame, columns))


def intervention_plan(frame: pd.DataFrame) -> Plan:
    text = dict(
        file="ledger_intervention.png",
        title="Intervention and graduation (ledger)",
        caption="Top: share of each step's prompts with at least one hinted session (ledger hinted_sessions > 0). "
        "Bottom: problems hinted at some visit so far, and problems graduated: hinted at an earlier visit, not "
        "hinted at their latest visit.",
        read="Graduation is the point of the method: help that is withdrawn because the model no longer needs "
        "it. A graduated count that keeps pace with the ever-hinted count means hints are a bridge, not a "
        "crutch.",
    )
    missing = _missing(frame, ("step", "problem_id", "hinted_sessions"))
    if missing:
        return Plan(**text, missing=missing)
    counts = S.graduation_by_step(frame)
    panels = (
        Panel("share of prompts", (_line(S.intervention_rate_by_step(frame), "intervention rate", "ledger"),), True),
        Panel(
            "problems",
            (
                _line(counts["ever_hinted"], "ever hinted", "ledger", dashed=True),
                _line(counts["graduated"], "graduated", "ledger"),
            ),
        ),
    )
    return Plan(**text, panels=panels)


def heat_map_plan(frame: pd.DataFrame, *, max_problems: int = 150) -> Plan:
    text = dict(
        file="ledger_difficulty_heatmap.png",
        title="Difficulty by step (ledger)",
        caption=f"One row per problem (the {max_problems} most visited, hardest on top), one column per step; "
        "colour: the success rate p the rollout decided from (ledger previewed_difficulty; the store's prior "
        "mean prior_mean where no preview decided). Blank: not in that step's batch.",
        read="Rows turning from red (hard, p near 0) to green (easy, p near 1) are problems the model learned. "
        "Rows red to the end are problems it never solves; hints are spent there.",
    )
    missing = _missing(frame, ("step", "problem_id", "previewed_difficulty", "prior_mean"))
    if missing:
        return Plan(**text, missing=missing)
    problems, steps, matrix = S.difficulty_matrix(frame, max_problems=max_problems)
    values = tuple(tuple(float(v) for v in row) for row in matrix)
    heat_map = HeatMap(tuple(problems), tuple(steps), values, "success rate p (1 - difficulty)")
    return Plan(**text, heat_map=heat_map)


def accuracy_plan(frame: pd.DataFrame) -> Plan:
    text = dict(
        file="ledger_acc_by_difficulty.png",
        title="Accuracy by difficulty bucket (ledger)",
        caption="Problems bucketed by their difficulty 1 - p at their first visit (first previewed p, else the "
        "store's prior mean). Top: unassisted accuracy (unassisted_successes / unassisted_trials: previews "
        "and unhinted main sessions). Bottom: accuracy of all main sessions, hinted ones included (outcomes of "
        "the sessions whose role is main). Pooled over windows of steps, plotted at each window's last step.",
        read="The hard buckets' unassisted accuracy should climb; main-session accuracy above it in the same "
        "bucket is the hints' help during training.",
    )
    columns = ("step", "problem_id", "previewed_difficulty", "prior_mean", "outcomes", "roles")
    missing = _missing(frame, (*columns, "unassisted_successes", "unassisted_trials"))
    if missing:
        return Plan(**text, missing=missing)
    tables = S.accuracy_by_bucket(frame)
    panels = tuple(
        Panel(
            f"{kind} accuracy",
            tuple(_line(tables[kind][bucket], f"difficulty {bucket}", "ledger") for bucket in tables[kind].columns),
            True,
        )
        for kind in ("unassisted", "main")
    )
    return Plan(**text, panels=panels)


def ledger_plans(frame: pd.DataFrame) -> list[Plan]:
    return [intervention_plan(frame), heat_map_plan(frame), accuracy_plan(frame)]


def ledger_summary(frame: pd.DataFrame) -> dict[str, str]:
    """A few numbers about the ledger for the page."""
    summary = {"rows": str(len(frame))}
    if "problem_id" in frame.columns:
        summary["problems"] = str(frame["problem_id"].nunique())
    if "step" in frame.columns:
        summary["steps"] = f"{frame['step'].nunique()} ({int(frame['step'].min())} to {int(frame['step'].max())})"
    if {"step", "problem_id", "hinted_sessions"} <= set(frame.columns):
        last = S.graduation_by_step(frame).iloc[-1]
        share = last["graduated_share"]
        summary["graduated / ever hinted"] = f"{int(last['graduated'])} / {int(last['ever_hinted'])}" + (
            "" if math.isnan(share) else f" ({share:.0%})"
        )
    skipped = frame.attrs.get("skipped_files") or []
    if skipped:
        summary["unreadable part files skipped"] = str(len(skipped))
    return summary
