"""Draw a Plan to a PNG with matplotlib's Agg canvas (no pyplot, no display, no global state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from verl_pdai.report.plans import HeatMap, Panel, Plan

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn, not when the command starts
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
WIDTH_IN = 9.0
PANEL_HEIGHT_IN = 3.2
MAX_LEGEND_ENTRIES = 12


def _draw_panel(axes: Axes, panel: Panel) -> None:
    for line in panel.lines:
        few = len(line.steps) <= 30
        axes.plot(
            line.steps,
            line.values,
            linestyle="--" if line.dashed else "-",
            marker="o" if few else None,
            markersize=3,
            linewidth=1.4,
            label=line.label,
        )
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are integers
    if panel.unit_interval:
        axes.set_ylim(-0.02, 1.02)
    axes.set_ylabel(panel.ylabel)
    axes.grid(True, alpha=0.3)
    if panel.lines:
        axes.legend(loc="best", fontsize=8, ncol=1 + len(panel.lines) // MAX_LEGEND_ENTRIES)
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)


def _draw_heat_map(figure: Figure, heat_map: HeatMap) -> None:
    import numpy as np

    axes = figure.add_subplot(1, 1, 1)
    values = np.ma.masked_invalid(np.array(heat_map.values, dtype=float))
    image = axes.imshow(values, aspect="auto", interpolation="nearest", cmap="RdYlGn", vmin=0.0, vmax=1.0)
    rows, columns = values.shape
    step_ticks = sorted({round(i * (columns - 1) / 5) for i in range(6)}) if columns > 1 else [0]
    axes.set_xticks(step_ticks, [str(heat_map.column_steps[i]) for i in step_ticks])
    if rows <= 40:
        axes.set_yticks(range(rows), [label[-28:] for label in heat_map.row_labels], fontsize=6)
    else:
        axes.set_yticks([])
    axes.set_xlabel("step")
    axes.set_ylabel(f"problems ({rows})")
    axes.set_facecolor("#f2f2f2")
    figure.colorbar(image, ax=axes, label=heat_map.colour_label)


def render_png(plan: Plan) -> bytes:
    """The plan's picture as PNG bytes."""
    import io

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:  # the report is an extra: say which one
        raise ModuleNotFoundError(f"the report draws with matplotlib: pip install 'verl-pdai[report]' ({exc})") from exc

    if plan.heat_map is not None:
        rows = len(plan.heat_map.row_labels)
        figure = Figure(figsize=(WIDTH_IN, min(12.0, max(3.5, 1.5 + 0.06 * rows))), dpi=DPI)
        FigureCanvasAgg(figure)
        _draw_heat_map(figure, plan.heat_map)
    else:
        count = max(1, len(plan.panels))
        figure = Figure(figsize=(WIDTH_IN, 0.6 + PANEL_HEIGHT_IN * count), dpi=DPI)
        FigureCanvasAgg(figure)
        for index, panel in enumerate(plan.panels):
            axes = figure.add_subplot(count, 1, index + 1)
            _draw_panel(axes, panel)
            if index == count - 1:
                axes.set_xlabel(plan.xlabel)
    figure.suptitle(plan.title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
