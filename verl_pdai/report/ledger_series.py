"""Series taken from a ledger frame (one row per prompt per step, INTERFACES.md columns): intervention rate,
graduation, the difficulty-by-step matrix and accuracy by difficulty bucket. Pure pandas/numpy: no verl."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DIFFICULTY_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def require(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` the frame lacks."""
    return [c for c in columns if c not in frame.columns]


def hinted(frame: pd.DataFrame) -> pd.Series:
    """Per row: did any session of this prompt get a hint."""
    return pd.to_numeric(frame["hinted_sessions"], errors="coerce").fillna(0) > 0


def intervention_rate_by_step(frame: pd.DataFrame) -> pd.Series:
    """step -> share of the step's prompts with a hinted session (mean over prompts of hinted_sessions > 0)."""
    return hinted(frame).groupby(frame["step"]).mean().sort_index()


def graduation_by_step(frame: pd.DataFrame) -> pd.DataFrame:
    """step -> ``graduated`` (problems hinted at an earlier visit and not at their latest visit so far),
    ``ever_hinted`` (problems hinted at any visit so far) and ``graduated_share`` = graduated / ever_hinted.

    A problem's state changes only at its visits, so each visit contributes the change of its problem's state
    (graduated 0/1, ever hinted 0/1) and the counts are the running sums of those changes over the steps."""
    rows = pd.DataFrame({"problem_id": frame["problem_id"], "step": frame["step"], "hinted": hinted(frame)})
    rows = rows.sort_values(["problem_id", "step"], kind="stable")
    by_problem = rows.groupby("problem_id", sort=False)["hinted"]
    ever_now = by_problem.cummax().astype(int)
    ever_before = ever_now.groupby(rows["problem_id"]).shift(1, fill_value=0)
    graduated = ((ever_before == 1) & ~rows["hinted"]).astype(int)
    changes = pd.DataFrame(
        {
            "step": rows["step"],
            "graduated": graduated - graduated.groupby(rows["problem_id"]).shift(1, fill_value=0),
            "ever_hinted": ever_now - ever_now.groupby(rows["problem_id"]).shift(1, fill_value=0),
        }
    )
    counts = changes.groupby("step")[["graduated", "ever_hinted"]].sum().sort_index().cumsum()
    counts["graduated_share"] = counts["graduated"] / counts["ever_hinted"].where(counts["ever_hinted"] > 0)
    return counts


def decision_p(frame: pd.DataFrame) -> pd.Series:
    """Per row: the success rate p the rollout decided from (previewed_difficulty), or the store's prior mean
    given to the rollout where there was no preview decision (NaN previewed)."""
    previewed = pd.to_numeric(frame["previewed_difficulty"], errors="coerce")
    previewed = previewed.where((previewed >= 0) & (previewed <= 1))
    return previewed.fillna(pd.to_numeric(frame["prior_mean"], errors="coerce"))


def difficulty_matrix(
    frame: pd.DataFrame, *, max_problems: int = 150, max_columns: int = 300
) -> tuple[list[str], list[int], np.ndarray]:
    """(problem ids, column steps, matrix[problem, column] of p) for the heat map, NaN where not visited.

    Bounded: the ``max_problems`` most visited problems (ties by id), hardest (lowest mean p) first; more distinct
    steps than ``max_columns`` are grouped into windows of consecutive steps (mean p, labelled by the first)."""
    rows = pd.DataFrame({"problem_id": frame["problem_id"].astype(str), "step": frame["step"], "p": decision_p(frame)})
    visits = rows.groupby("problem_id").size().reset_index(name="n")
    keep = visits.sort_values(["n", "problem_id"], ascending=[False, True]).head(max_problems)["problem_id"]
    rows = rows[rows["problem_id"].isin(set(keep))]
    steps = np.sort(rows["step"].unique())
    width = max(1, -(-len(steps) // max_columns))  # ceil: steps per column
    column_of_step = {int(step): index // width for index, step in enumerate(steps)}
    rows = rows.assign(column=rows["step"].map(column_of_step))
    table = rows.pivot_table(index="problem_id", columns="column", values="p", aggfunc="mean", dropna=False)
    table = table.reindex(columns=range(-(-len(steps) // width)))
    order = table.mean(axis=1, skipna=True).fillna(np.inf).sort_values(kind="stable").index
    table = table.loc[order]
    column_steps = [int(steps[c * width]) for c in range(table.shape[1])]
    return [str(p) for p in table.index], column_steps, table.to_numpy(dtype=float)


def _items(value: object) -> list[object]:
    """A list column's cell as a list (parquet gives numpy arrays; a missing cell is None or NaN)."""
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else []


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _main_counts(outcomes: object, roles: object) -> tuple[int, int]:
    """(successes, trials) of the main sessions of one row (``outcomes`` aligned with ``roles``; acc >= 0.5 is a
    success; a non-numeric outcome is not counted)."""
    main = [_float(o) for o, r in zip(_items(outcomes), _items(roles), strict=False) if str(r) == "main"]
    finite = [o for o in main if np.isfinite(o)]
    return sum(o >= 0.5 for o in finite), len(finite)


def bucket_labels(edges: Sequence[float] = DIFFICULTY_EDGES) -> list[str]:
    return [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def problem_difficulty(frame: pd.DataFrame) -> pd.Series:
    """problem id -> its difficulty 1 - p at its first visit (first previewed p, else the first prior mean), so a
    problem stays in one bucket for the whole run."""
    rows = pd.DataFrame({"problem_id": frame["problem_id"], "step": frame["step"], "p": decision_p(frame)})
    rows = rows.dropna(subset=["p"]).sort_values(["problem_id", "step"], kind="stable")
    return 1.0 - rows.groupby("problem_id")["p"].first()


def accuracy_by_bucket(
    frame: pd.DataFrame, *, edges: Sequence[float] = DIFFICULTY_EDGES, windows: int = 10
) -> dict[str, pd.DataFrame]:
    """{"unassisted": ..., "main": ...}: window end step x difficulty bucket -> pooled accuracy.

    Unassisted = unassisted_successes / unassisted_trials (previews and unhinted main sessions); main = the main
    sessions' outcomes (acc >= 0.5 counts as right), hinted ones included. Steps are split into at most
    ``windows`` windows of consecutive distinct steps; a window is labelled by its last step."""
    difficulty = frame["problem_id"].map(problem_difficulty(frame))
    labels = bucket_labels(edges)
    bucket_index = np.clip(np.digitize(difficulty.to_numpy(dtype=float), edges[1:-1], right=False), 0, len(labels) - 1)
    counts = [_main_counts(o, r) for o, r in zip(frame["outcomes"], frame["roles"], strict=True)]
    steps = np.sort(frame["step"].unique())
    size = max(1, -(-len(steps) // max(1, windows)))
    window_end = {int(s): int(steps[min(len(steps) - 1, (i // size + 1) * size - 1)]) for i, s in enumerate(steps)}
    rows = pd.DataFrame(
        {
            "window": frame["step"].map(window_end),
            "bucket": [labels[i] for i in bucket_index],
            "unassisted_successes": pd.to_numeric(frame["unassisted_successes"], errors="coerce").fillna(0),
            "unassisted_trials": pd.to_numeric(frame["unassisted_trials"], errors="coerce").fillna(0),
            "main_successes": [c[0] for c in counts],
            "main_trials": [c[1] for c in counts],
        }
    )[difficulty.notna().to_numpy()]
    sums = rows.groupby(["window", "bucket"]).sum()
    result = {}
    for kind in ("unassisted", "main"):
        trials = sums[f"{kind}_trials"]
        rate = (sums[f"{kind}_successes"] / trials.where(trials > 0)).unstack("bucket")
        result[kind] = rate.reindex(columns=[b for b in labels if b in rate.columns]).sort_index()
    return result
