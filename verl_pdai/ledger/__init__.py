"""The intervention ledger (docs/ledger.md): one record per prompt per training step, written by the pdai trainer
as parquet part files, read back with :func:`read_ledger` and queried by ``verl-pdai ledger``.

Importing this package is light (no verl, pandas or pyarrow): the writer and reader load pyarrow when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from verl_pdai.ledger.records import COLUMNS, build_records

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "build_records", "read_ledger"]


def read_ledger(path: Path | str) -> pd.DataFrame:
    """The ledger at ``path`` (a folder of ``step_*.parquet`` parts, or one parquet file) as one DataFrame."""
    from verl_pdai.ledger.writer import read_ledger as read

    return read(path)
