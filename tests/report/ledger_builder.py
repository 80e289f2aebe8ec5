"""Small ledgers in the INTERFACES.md schema for the report's tests: rows by hand, or a simulated run."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("problem_id", pa.string()),
        ("data_source", pa.string()),
        ("prior_alpha", pa.float64()),
        ("prior_beta", pa.float64()),
        ("prior_mean", pa.float64()),
        ("previewed_difficulty", pa.float64()),
        ("preview_successes", pa.int32()),
        ("preview_trials", pa.int32()),
        ("hint_levels", pa.list_(pa.int32())),
        ("hint_tokens", pa.list_(pa.int32())),
        ("outcomes", pa.list_(pa.float64())),
        ("roles", pa.list_(pa.string())),
        ("hinted_sessions", pa.int32()),
        ("unassisted_successes", pa.int32()),
        ("unassisted_trials", pa.int32()),
        ("store_alpha", pa.float64()),
        ("store_beta", pa.float64()),
        ("store_mean", pa.float64()),
        ("visits", pa.int32()),
        ("hint_sources", pa.list_(pa.string())),
        ("reference_source", pa.string()),
    ]
)


def row(
    step: int,
    problem_id: str,
    *,
    levels: list[int],
    preview: list[float],
    main: list[float],
    prior_mean: float = 0.5,
    previewed: float = math.nan,
    visits: int = 1,
) -> dict:
    """One ledger row from the facts a test cares about; the derived columns are computed as the ledger defines
    them (previews first, then main sessions; unassisted = previews + unhinted main sessions)."""
    unassisted = list(preview) + [o for o, level in zip(main, levels, strict=True) if level == 0]
    return {
        "step": step,
        "problem_id": problem_id,
        "data_source": problem_id.split("/")[0],
        "prior_alpha": prior_mean * 2,
        "prior_beta": (1 - prior_mean) * 2,
        "prior_mean": prior_mean,
        "previewed_difficulty": previewed,
        "preview_successes": int(sum(o >= 0.5 for o in preview)),
        "preview_trials": len(preview),
        "hint_levels": levels,
        "hint_tokens": [40 * level for level in levels],
        "outcomes": list(preview) + list(main),
        "roles": ["preview"] * len(preview) + ["main"] * len(main),
        "hinted_sessions": sum(level > 0 for level in levels),
        "unassisted_successes": int(sum(o >= 0.5 for o in unassisted)),
        "unassisted_trials": len(unassisted),
        "store_alpha": 1.0,
        "store_beta": 1.0,
        "store_mean": 0.5,
        "visits": visits,
        "hint_sources": ["dataset" if level > 0 else "" for level in levels],
        "reference_source": "dataset",
    }


def write_parts(rows: list[dict], folder: Path) -> Path:
    """One step_<N>.parquet per step, as the ledger writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    for step, part in frame.groupby("step"):
        table = pa.Table.from_pandas(part.reset_index(drop=True), schema=SCHEMA, preserve_index=False)
        pq.write_table(table, folder / f"step_{int(step):06d}.parquet")
    return folder


def simulated_run(steps: int = 12, problems: int = 30, per_step: int = 10, seed: int = 0) -> list[dict]:
    """A run where each problem's solve rate rises with practice and hard problems get hints."""
    rng = random.Random(seed)
    skill = {f"train/{i:03d}": rng.uniform(0.02, 0.95) for i in range(problems)}
    visits: dict[str, int] = {}
    rows = []
    for step in range(1, steps + 1):
        for pid in rng.sample(sorted(skill), per_step):
            p = skill[pid]
            preview = [float(rng.random() < p) for _ in range(2)]
            previewed = (1 + sum(preview)) / 4
            level = 0 if previewed >= 0.5 else (2 if previewed < 0.3 else 1)
            main = [float(rng.random() < min(1.0, p + 0.2 * level)) for _ in range(6)]
            visits[pid] = visits.get(pid, 0) + 1
            rows.append(
                row(step, pid, levels=[level] * 6, preview=preview, main=main, previewed=previewed, visits=visits[pid])
            )
            skill[pid] = min(0.98, p + 0.04)
    return rows
