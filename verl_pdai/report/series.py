"""Series taken from a metrics log: single metrics, validation accuracy per data source, per-bucket families, and
the run summary. Pure: no verl, no matplotlib."""

from __future__ import annotations

import re
from dataclasses import dataclass

from verl_pdai.report.metrics_log import MetricsLog
from verl_pdai.report.plans import Line

# verl's validation metrics: val-core/<data_source>/<acc|reward>/mean@<n> (a data source may hold slashes)
_VAL = re.compile(r"^val-core/(?P<source>.+)/(?P<var>acc|reward)/mean@(?P<n>\d+)$")
_LEADING_NUMBER = re.compile(r"^[^\d.-]*(-?\d+(?:\.\d+)?)")


def line(log: MetricsLog, name: str, label: str, *, dashed: bool = False) -> Line:
    steps, values = log.series(name)
    return Line(label=label, steps=tuple(steps), values=tuple(values), source=name, dashed=dashed)


def validation_metrics(log: MetricsLog) -> dict[str, str]:
    """data source -> the metric of its validation accuracy: ``acc`` over ``reward`` (verl's own choice of the core
    variable), the largest n of ``mean@n`` (avg@n, pass@1 averaged over n samples)."""
    best: dict[str, tuple[int, int, str]] = {}
    for name in log.names():
        match = _VAL.match(name)
        if match is None:
            continue
        rank = (int(match["var"] == "acc"), int(match["n"]), name)
        source = match["source"]
        if source not in best or rank > best[source]:
            best[source] = rank
    return {source: best[source][2] for source in sorted(best)}


def _bucket_key(label: str) -> tuple[float, str]:
    match = _LEADING_NUMBER.match(label)
    return (float(match.group(1)) if match else float("inf"), label)


def family(log: MetricsLog, prefix: str) -> dict[str, str]:
    """label -> metric for every metric named ``<prefix><label>``, ordered by the label's leading number."""
    labels = [name[len(prefix) :] for name in log.names() if name.startswith(prefix) and len(name) > len(prefix)]
    return {label: prefix + label for label in sorted(labels, key=_bucket_key)}


@dataclass(frozen=True)
class SummaryRow:
    metric: str
    points: int
    first: float
    last: float
    last_step: int
    best: float | None  # max over the run, for metrics where higher is better
    best_step: int | None


def summary_row(log: MetricsLog, name: str, *, higher_is_better: bool) -> SummaryRow | None:
    steps, values = log.series(name)
    if not steps:
        return None
    best = best_step = None
    if higher_is_better:
        index = max(range(len(values)), key=lambda i: (values[i], -steps[i]))  # first step reaching the max
        best, best_step = values[index], steps[index]
    return SummaryRow(name, len(steps), values[0], values[-1], steps[-1], best, best_step)
