"""Read the intervention ledger (docs/ledger.md): a directory of ``step_*.parquet`` part files, or one parquet
file, into one pandas DataFrame. Uses ``verl_pdai.ledger.read_ledger`` when the ledger package provides it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

# the ledger's columns (INTERFACES.md); other columns are not read
LEDGER_COLUMNS = (
    "step",
    "problem_id",
    "data_source",
    "prior_alpha",
    "prior_beta",
    "prior_mean",
    "previewed_difficulty",
    "preview_successes",
    "preview_trials",
    "hint_levels",
    "hint_tokens",
    "outcomes",
    "roles",
    "hinted_sessions",
    "unassisted_successes",
    "unassisted_trials",
    "store_alpha",
    "store_beta",
    "store_mean",
    "visits",
)
PART_PATTERN = "step_*.parquet"


def _read_part(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in LEDGER_COLUMNS if c in names]).to_pandas()


def read_parts(path: Path) -> pd.DataFrame:
    """This package's own reader. A part file that cannot be read (e.g. copied while written by a tool that does
    not write atomically) is skipped, logged and counted in ``frame.attrs["skipped_files"]``."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ledger not found: {path} (the trainer writes <default_local_dir>/pdai_ledger/)")
    parts = sorted(path.glob(PART_PATTERN)) if path.is_dir() else [path]
    if not parts:
        raise ValueError(f"no ledger part files ({PART_PATTERN}) in {path}")
    frames, skipped = [], []
    for part in parts:
        try:
            frames.append(_read_part(part))
        except Exception as exc:  # one bad part must not hide the rest of the run
            logger.warning("verl_pdai report: skipping unreadable ledger part %s: %s", part, exc)
            skipped.append(str(part))
    if not frames:
        raise ValueError(f"no readable ledger part in {path}: {len(skipped)} file(s) failed, first {skipped[0]}")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.attrs["skipped_files"] = skipped
    return frame


def ledger_frame(path: Path) -> pd.DataFrame:
    """The ledger at ``path`` (directory of part files or one file), rows sorted by step and problem id."""
    try:
        from verl_pdai.ledger import read_ledger  # type: ignore[attr-defined]
    except ImportError:
        read_ledger = read_parts
    frame = read_ledger(Path(path))
    if len(frame) == 0:
        raise ValueError(f"the ledger at {path} has no rows")
    if {"step", "problem_id"} <= set(frame.columns):
        frame = frame.sort_values(["step", "problem_id"], kind="stable", ignore_index=True)
    return frame
