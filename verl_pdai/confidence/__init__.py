"""Confidence routing at evaluation: which answers to trust, which a person should check (imports no verl).

``coverage_curve`` and ``read_coverage_csv`` give the accuracy-coverage curve (from confidences and labels, or
from a run's ``coverage.csv``) and ``draw_coverage`` draws it, so the report can show the same picture.
"""

from verl_pdai.confidence.plot import draw_coverage
from verl_pdai.confidence.selective import CoveragePoint, aurc, coverage_curve, read_coverage_csv

__all__ = ["CoveragePoint", "aurc", "coverage_curve", "draw_coverage", "read_coverage_csv"]
