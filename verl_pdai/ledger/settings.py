"""The ``pdai.ledger`` config section (pure): whether the trainer writes the ledger, where, and its size bound."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from verl_pdai.core.config_values import ConfigError, as_count

__all__ = ["DEFAULT_DIR_NAME", "LedgerSettings"]

DEFAULT_DIR_NAME = "pdai_ledger"  # under trainer.default_local_dir when pdai.ledger.dir is null
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class LedgerSettings:
    """``pdai.ledger``: ``enabled`` (default true), ``dir`` (null: ``<trainer.default_local_dir>/pdai_ledger``),
    ``max_bytes`` (default 1 GiB: the writer stops, with a warning, before the folder grows past it)."""

    enabled: bool = True
    dir: str | None = None
    max_bytes: int = 1 << 30

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> LedgerSettings:
        data = dict(data or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(f"unknown pdai.ledger keys {unknown}; valid keys are {known}")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            word = str(enabled).strip().lower()
            if word not in _TRUE | _FALSE:
                raise ConfigError(f"pdai.ledger.enabled must be true or false, got {enabled!r}")
            enabled = word in _TRUE
        folder = data.get("dir")
        if folder is not None and (not isinstance(folder, str | os.PathLike) or str(folder) == ""):
            raise ConfigError(f"pdai.ledger.dir must be a path or null, got {folder!r}")
        try:
            max_bytes = as_count("pdai.ledger.max_bytes", data.get("max_bytes", 1 << 30))
        except ValueError as err:
            raise ConfigError(f"{err} (a byte count, e.g. 1073741824)") from None
        if max_bytes == 0:
            raise ConfigError("pdai.ledger.max_bytes must be > 0 (set pdai.ledger.enabled=false to write no ledger)")
        return cls(enabled, None if folder is None else str(folder), max_bytes)

    def directory(self, default_local_dir: str | os.PathLike[str] | None) -> str:
        """Where the parts go: ``dir``, else ``<default_local_dir>/pdai_ledger``."""
        if self.dir is not None:
            return self.dir
        if default_local_dir is None or str(default_local_dir) == "":
            raise ConfigError("pdai.ledger.dir is null and trainer.default_local_dir is not set: set one of them")
        return os.path.join(str(default_local_dir), DEFAULT_DIR_NAME)
