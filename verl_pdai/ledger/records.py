"""Per-prompt ledger records from a training batch's per-session lists (pure: no verl, no pyarrow).

One record per prompt group (the sessions sharing a ``uid``) with the columns of ``COLUMNS`` (docs/ledger.md).
Sessions are listed previews first, then main sessions, each in batch order; ``hint_levels`` and ``hint_tokens``
cover the main sessions only, ``outcomes`` and ``roles`` every session. "Unassisted" sessions are the ones the
difficulty store learns from: previews and main sessions without a hint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["COLUMNS", "SUCCESS_AT", "build_records"]

# column name -> parquet type (INTERFACES.md; the report reads these names)
COLUMNS: dict[str, str] = {
    "step": "int64",
    "problem_id": "string",
    "data_source": "string",
    "prior_alpha": "float64",
    "prior_beta": "float64",
    "prior_mean": "float64",
    "previewed_difficulty": "float64",
    "preview_successes": "int32",
    "preview_trials": "int32",
    "hint_levels": "list<int32>",
    "hint_tokens": "list<int32>",
    "outcomes": "list<float64>",
    "roles": "list<string>",
    "hinted_sessions": "int32",
    "unassisted_successes": "int32",
    "unassisted_trials": "int32",
    "store_alpha": "float64",
    "store_beta": "float64",
    "store_mean": "float64",
    "visits": "int32",
    "hint_sources": "list<string>",
    "reference_source": "string",
}
SUCCESS_AT = 0.5  # an outcome (acc) at or above this is a success, as for the difficulty store
NAN = float("nan")


def _valid_prior(alpha: float, beta: float) -> bool:
    return math.isfinite(alpha) and math.isfinite(beta) and alpha > 0 and beta > 0


def build_records(
    step: int,
    group_ids: Sequence[str],
    problem_ids: Sequence[str],
    data_sources: Sequence[str | None],
    roles: Sequence[str],
    hint_levels: Sequence[int],
    hint_tokens: Sequence[int],
    outcomes: Sequence[float],
    difficulties: Sequence[float],
    prior_alphas: Sequence[float],
    prior_betas: Sequence[float],
    posteriors: Mapping[str, tuple[float, float]],
    visits: Mapping[str, int],
    hint_sources: Sequence[str] | None = None,
    reference_sources: Mapping[str, str] | None = None,
) -> dict[str, list]:
    """The step's records as columns (``COLUMNS`` order), one entry per group in order of first appearance.

    Per session (same length each): ``group_ids`` (uid), ``roles`` ("preview"; anything else but "validation" is a
    main session; validation sessions are left out), ``hint_levels`` / ``hint_tokens`` (0 = no hint),
    ``outcomes`` (acc), ``difficulties`` (the previewed p the session decided from, < 0: none; a group's value is the
    mean over its deciding main sessions), ``prior_alphas`` / ``prior_betas`` (the prior the rollout got, the
    group's first valid pair is kept; NaN when none), ``hint_sources`` (where a hinted session's reference came
    from, "" when not hinted; all "" when not given). Per problem: ``posteriors`` (store alpha, beta after this
    step's update), ``visits`` and ``reference_sources`` (the source of the usable reference the rollout had, ""
    when none or not given).
    """
    n = len(group_ids)
    hint_sources = [""] * n if hint_sources is None else hint_sources
    reference_sources = reference_sources or {}
    lists = (
        hint_sources,
        problem_ids,
        data_sources,
        roles,
        hint_levels,
        hint_tokens,
        outcomes,
        difficulties,
        prior_alphas,
        prior_betas,
    )
    if any(len(column) != n for column in lists):
        raise ValueError(f"build_records: every per-session list must have {n} entries")
    groups: dict[str, list[int]] = {}
    for i in range(n):
        if roles[i] != "validation":
            groups.setdefault(str(group_ids[i]), []).append(i)
    out: dict[str, list] = {name: [] for name in COLUMNS}
    for members in groups.values():
        previews = [i for i in members if roles[i] == "preview"]
        mains = [i for i in members if roles[i] != "preview"]
        first = members[0]
        pid = str(problem_ids[first])
        alpha = beta = NAN
        for i in members:
            if _valid_prior(float(prior_alphas[i]), float(prior_betas[i])):
                alpha, beta = float(prior_alphas[i]), float(prior_betas[i])
                break
        decided = [float(difficulties[i]) for i in mains if 0.0 <= float(difficulties[i]) <= 1.0]
        levels = [int(hint_levels[i]) for i in mains]
        unassisted = previews + [i for i in mains if int(hint_levels[i]) == 0]
        store_alpha, store_beta = (float(v) for v in posteriors[pid])
        source = data_sources[first]
        out["step"].append(int(step))
        out["problem_id"].append(pid)
        out["data_source"].append("" if source is None else str(source))
        out["prior_alpha"].append(alpha)
        out["prior_beta"].append(beta)
        out["prior_mean"].append(alpha / (alpha + beta) if _valid_prior(alpha, beta) else NAN)
        out["previewed_difficulty"].append(sum(decided) / len(decided) if decided else NAN)
        out["preview_successes"].append(sum(float(outcomes[i]) >= SUCCESS_AT for i in previews))
        out["preview_trials"].append(len(previews))
        out["hint_levels"].append(levels)
        out["hint_tokens"].append([int(hint_tokens[i]) for i in mains])
        out["outcomes"].append([float(outcomes[i]) for i in previews + mains])
        out["roles"].append(["preview"] * len(previews) + ["main"] * len(mains))
        out["hinted_sessions"].append(sum(level > 0 for level in levels))
        out["unassisted_successes"].append(sum(float(outcomes[i]) >= SUCCESS_AT for i in unassisted))
        out["unassisted_trials"].append(len(unassisted))
        out["store_alpha"].append(store_alpha)
        out["store_beta"].append(store_beta)
        out["store_mean"].append(store_alpha / (store_alpha + store_beta))
        out["visits"].append(int(visits.get(pid, 0)))
        out["hint_sources"].append([str(hint_sources[i] or "") for i in mains])
        out["reference_source"].append(str(reference_sources.get(pid, "") or ""))
    return out
