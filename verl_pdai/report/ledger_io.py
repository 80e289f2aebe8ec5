"""The intervention ledger as the report reads it: ``verl_pdai.ledger.read_ledger`` (a folder of
``step_*.parquet`` parts or one file), rows sorted by step and problem id, an empty ledger refused."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def ledger_frame(path: Path) -> pd.DataFrame:
    """The ledger at ``path`` (directory of part files or one file), rows sorted by step and problem id."""
    from verl_pdai.ledger import read_ledger

    frame = read_ledger(Path(path))
    if len(frame) == 0:
        raise ValueError(f"the ledger at {path} has no rows")
    if {"step", "problem_id"} <= set(frame.columns):
        frame = frame.sort_values(["step", "problem_id"], kind="stable", ignore_index=True)
    return frame
