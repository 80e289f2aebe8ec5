"""What a picture shows, as data: lines of (step, value) points grouped in panels. Pure: built by
``metric_plans`` / ``ledger_plans``, drawn by ``plotting``; tests check the values here, not the pixels."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Line:
    label: str
    steps: tuple[float, ...]
    values: tuple[float, ...]
    source: str = ""  # the metric (or ledger column) it comes from, for the page
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    ylabel: str
    lines: tuple[Line, ...]
    unit_interval: bool = False  # shares and rates: y axis fixed to [0, 1]


@dataclass(frozen=True)
class HeatMap:
    """rows x columns of values (NaN: not visited at that step)."""

    row_labels: tuple[str, ...]
    column_steps: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]
    colour_label: str


@dataclass(frozen=True)
class Plan:
    """One PNG. ``missing``: the inputs it wanted but did not find (listed on the page)."""

    file: str
    title: str
    caption: str  # what it shows and where the numbers come from
    read: str  # how to read it
    panels: tuple[Panel, ...] = ()
    heat_map: HeatMap | None = None
    missing: tuple[str, ...] = field(default=())
    xlabel: str = "step"

    @property
    def drawable(self) -> bool:
        if self.heat_map is not None:
            return bool(self.heat_map.row_labels and self.heat_map.column_steps)
        return any(line.steps for panel in self.panels for line in panel.lines)
