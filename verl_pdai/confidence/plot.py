"""The accuracy-coverage picture (matplotlib is imported only when drawing)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from verl_pdai.confidence.selective import CoveragePoint

__all__ = ["draw_coverage"]


def draw_coverage(
    points: Sequence[CoveragePoint],
    path: Path,
    *,
    threshold: float | None = None,
    target_accuracy: float | None = None,
    title: str = "Selective prediction: accuracy vs coverage",
) -> Path | None:
    """Draw accuracy against coverage (one step per distinct confidence) to ``path``; None without matplotlib
    or without points."""
    if not points:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    coverage = [0.0] + [p.coverage for p in points]
    accuracy = [points[0].accuracy] + [p.accuracy for p in points]
    figure, axes = plt.subplots(figsize=(6, 4.2))
    try:
        axes.step(coverage, accuracy, where="pre", color="tab:blue", label="accepted answers")
        axes.plot(coverage[1:], accuracy[1:], "o", color="tab:blue", markersize=3)
        if target_accuracy is not None:
            axes.axhline(target_accuracy, color="tab:gray", linestyle="--", linewidth=1, label="target accuracy")
        chosen = [p for p in points if threshold is not None and p.threshold >= threshold]
        if chosen:
            last = chosen[-1]
            axes.plot([last.coverage], [last.accuracy], "s", color="tab:red", label=f"threshold {threshold:.3f}")
        axes.set_xlabel("coverage (share of problems answered automatically)")
        axes.set_ylabel("accuracy of the answered problems")
        axes.set_xlim(0, 1.02)
        axes.set_ylim(min(accuracy + [target_accuracy or 1.0]) - 0.05, 1.02)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower left")
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return Path(path)
