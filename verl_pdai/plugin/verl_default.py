"""verl's ``default_compute_score`` for the rows the reward routes to it (non-math ``data_source``), as a
``ScoreResult`` so every row carries the same reward_extra_info keys. Routing itself: ``core.reward_settings``."""

from __future__ import annotations

from collections.abc import Mapping

from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.reward_settings import DEFAULT_VERL_SOURCES
from verl_pdai.core.scoring import ScoreResult

__all__ = ["verl_default_result"]


def verl_default_result(data_source: object, text: str, ground_truth: object, extra_info: object) -> ScoreResult:
    """Grade a row of a ``verl_sources`` data source with ``verl.utils.reward_score.default_compute_score``, as a
    ``ScoreResult`` (so the reward_extra_info keys stay the same for every row): score and outcome are verl's
    score, ``acc`` verl's "acc" (its score when it returns a number, as verl's naive manager reports it), no
    process part.

    A source verl has no grader for is a configuration error (raised, with the fix); an exception inside verl's
    grader is one response's failure (score 0, ``error`` set).
    """
    try:
        from verl.utils.reward_score import default_compute_score
    except ImportError as exc:
        raise ConfigError(_no_grader(data_source, f"verl is not importable ({exc})")) from None
    try:
        raw = default_compute_score(data_source, text, ground_truth, extra_info)
    except NotImplementedError:
        raise ConfigError(_no_grader(data_source, "verl's default_compute_score has no grader for it")) from None
    except Exception as exc:  # one response's failure must not fail the batch
        return ScoreResult.failed(error=f"verl default_compute_score: {type(exc).__name__}: {exc}")
    return _as_result(raw)


def _no_grader(data_source: object, why: str) -> str:
    return (
        f"data_source={data_source!r} matches verl_sources (name prefixes, default {list(DEFAULT_VERL_SOURCES)}) "
        f"but {why}: remove its prefix from verl_sources (the stepwise checker then grades it)"
    )


def _as_result(raw: object) -> ScoreResult:
    try:
        if isinstance(raw, Mapping):
            value = float(raw["score"])
            acc = float(raw["acc"]) if "acc" in raw else value
            pred = str(raw.get("pred") or "")[:1000]
        else:
            value = acc = float(raw)  # type: ignore[arg-type]
            pred = ""
    except Exception as exc:
        return ScoreResult.failed(error=f"verl default_compute_score returned {type(raw).__name__}: {exc}")
    return ScoreResult(score=value, acc=acc, outcome=value, pred=pred)
