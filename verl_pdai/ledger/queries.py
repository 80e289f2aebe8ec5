"""Questions to the ledger (pure pandas, no verl): never solved unassisted, graduated, one problem's history, per
data source. Each takes the frame of :func:`verl_pdai.ledger.read_ledger` and returns a DataFrame."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NEEDS", "by_source", "graduated", "never_solved", "problem_history"]

# The columns each query reads (the ``verl-pdai ledger`` query names): a part without one of them, or with a null in
# one, would change the answer without an error (a missing ``unassisted_successes`` sums to 0: "never solved").
_NEVER = ("problem_id", "data_source", "step", "visits", "hinted_sessions", "unassisted_successes")
_NEVER += ("unassisted_trials", "hint_levels", "outcomes", "store_mean")
_GRADUATED = ("problem_id", "data_source", "step", "hinted_sessions", "store_mean")
_PROBLEM = ("problem_id", "step", "hint_levels", "hint_tokens", "preview_successes", "preview_trials")
_PROBLEM += ("previewed_difficulty", "unassisted_successes", "unassisted_trials", "outcomes", "prior_mean")
_PROBLEM += ("store_mean", "visits")
NEEDS: dict[str, tuple[str, ...]] = {
    "never-solved": _NEVER,
    "graduated": _GRADUATED,
    "problem": _PROBLEM,
    "by-source": tuple(dict.fromkeys((*_NEVER, *_GRADUATED, "hint_tokens"))),
}


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    out = df.sort_values(["problem_id", "step"], kind="stable").copy()
    out["hinted"] = out["hinted_sessions"] > 0
    return out


def never_solved(df: pd.DataFrame, min_visits: int = 1) -> pd.DataFrame:
    """Problems with no unassisted success in any record and at least ``min_visits`` store visits (the latest
    record's ``visits``), most visited first: problem_id, data_source, visits, records, unassisted_trials,
    hinted_records, hinted_successes (main sessions that succeeded with a hint), last_step, last_store_mean."""
    import pandas as pd

    rows = []
    for pid, group in _ordered(df).groupby("problem_id", sort=True):
        last = group.iloc[-1]
        if int(group["unassisted_successes"].sum()) > 0 or int(last["visits"]) < min_visits:
            continue
        hinted_successes = 0
        for levels, outcomes in zip(group["hint_levels"], group["outcomes"], strict=True):
            mains = list(outcomes)[len(outcomes) - len(levels) :]
            hinted_successes += sum(o >= 0.5 for o, level in zip(mains, levels, strict=True) if level > 0)
        rows.append(
            {
                "problem_id": pid,
                "data_source": last["data_source"],
                "visits": int(last["visits"]),
                "records": len(group),
                "unassisted_trials": int(group["unassisted_trials"].sum()),
                "hinted_records": int(group["hinted"].sum()),
                "hinted_successes": int(hinted_successes),
                "last_step": int(last["step"]),
                "last_store_mean": float(last["store_mean"]),
            }
        )
    columns = ["problem_id", "data_source", "visits", "records", "unassisted_trials", "hinted_records"]
    columns += ["hinted_successes", "last_step", "last_store_mean"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["visits", "problem_id"], ascending=[False, True], ignore_index=True)


def graduated(df: pd.DataFrame) -> pd.DataFrame:
    """Problems hinted at an earlier visit and not hinted at the latest one: problem_id, data_source,
    first_hinted_step, last_hinted_step, graduated_step (the latest record's step), records, store_mean (latest)."""
    import pandas as pd

    rows = []
    for pid, group in _ordered(df).groupby("problem_id", sort=True):
        last = group.iloc[-1]
        hinted_steps = group.loc[group["hinted"], "step"]
        if bool(last["hinted"]) or hinted_steps.empty:
            continue
        rows.append(
            {
                "problem_id": pid,
                "data_source": last["data_source"],
                "first_hinted_step": int(hinted_steps.min()),
                "last_hinted_step": int(hinted_steps.max()),
                "graduated_step": int(last["step"]),
                "records": len(group),
                "store_mean": float(last["store_mean"]),
            }
        )
    columns = ["problem_id", "data_source", "first_hinted_step", "last_hinted_step", "graduated_step", "records"]
    return pd.DataFrame(rows, columns=[*columns, "store_mean"])


def problem_history(df: pd.DataFrame, problem_id: str) -> pd.DataFrame:
    """One problem's records in step order: step, hint_levels, hint_tokens, preview_successes, preview_trials,
    previewed_difficulty, unassisted_successes, unassisted_trials, outcomes, prior_mean, store_mean, visits."""
    rows = df[df["problem_id"] == problem_id]
    if rows.empty:
        raise KeyError(f"problem {problem_id!r} is not in the ledger")
    columns = ["step", "hint_levels", "hint_tokens", "preview_successes", "preview_trials", "previewed_difficulty"]
    columns += ["unassisted_successes", "unassisted_trials", "outcomes", "prior_mean", "store_mean", "visits"]
    return rows.sort_values("step", kind="stable")[columns].reset_index(drop=True)


def by_source(df: pd.DataFrame) -> pd.DataFrame:
    """Per data source: problems, records, intervention_rate (share of records with a hinted session),
    hint_token_mean (per main session), unassisted_success_rate, graduated and never_solved problems (any visits),
    store_mean_latest (mean over problems of their latest store mean)."""
    import pandas as pd

    ordered = _ordered(df)
    grad = set(graduated(df)["problem_id"])
    never = set(never_solved(df, min_visits=0)["problem_id"])
    rows = []
    for source, group in ordered.groupby("data_source", sort=True):
        latest = group.groupby("problem_id").tail(1)
        tokens = [t for row in group["hint_tokens"] for t in row]
        trials = int(group["unassisted_trials"].sum())
        problems = set(group["problem_id"])
        rows.append(
            {
                "data_source": source,
                "problems": len(problems),
                "records": len(group),
                "intervention_rate": float(group["hinted"].mean()),
                "hint_token_mean": float(sum(tokens) / len(tokens)) if tokens else 0.0,
                "unassisted_success_rate": float(group["unassisted_successes"].sum() / trials)
                if trials
                else float("nan"),
                "graduated": len(problems & grad),
                "never_solved": len(problems & never),
                "store_mean_latest": float(latest["store_mean"].mean()),
            }
        )
    columns = ["data_source", "problems", "records", "intervention_rate", "hint_token_mean"]
    columns += ["unassisted_success_rate", "graduated", "never_solved", "store_mean_latest"]
    return pd.DataFrame(rows, columns=columns)
