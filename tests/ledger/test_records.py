"""Per-prompt records from per-session lists: grouping, order, counts, priors and posteriors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verl_pdai.ledger.records import COLUMNS, build_records

ROOT = Path(__file__).resolve().parents[2]


def _sessions():
    # group u1 (problem "src/1"): main, preview, main (hinted), preview; group u2 ("src/2"): two unhinted mains
    return {
        "group_ids": ["u1", "u1", "u2", "u1", "u1", "u2"],
        "problem_ids": ["src/1", "src/1", "src/2", "src/1", "src/1", "src/2"],
        "data_sources": ["src", "src", "src", "src", "src", None],
        "roles": ["main", "preview", "main", "main", "preview", "main"],
        "hint_levels": [0, 0, 0, 2, 0, 0],
        "hint_tokens": [0, 0, 0, 37, 0, 0],
        "outcomes": [0.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        "difficulties": [0.25, -1.0, -1.0, 0.75, -1.0, -1.0],
        "prior_alphas": [2.0, -1.0, -1.0, 2.0, -1.0, -1.0],
        "prior_betas": [6.0, -1.0, -1.0, 6.0, -1.0, -1.0],
    }


def test_one_record_per_group_previews_first():
    out = build_records(
        7, **_sessions(), posteriors={"src/1": (3.0, 7.0), "src/2": (2.0, 2.0)}, visits={"src/1": 3, "src/2": 1}
    )
    assert list(out) == list(COLUMNS)
    assert out["problem_id"] == ["src/1", "src/2"] and out["step"] == [7, 7]
    assert out["roles"][0] == ["preview", "preview", "main", "main"]
    assert out["outcomes"][0] == [1.0, 0.0, 0.0, 1.0]  # previews (batch order), then mains (batch order)
    assert out["hint_levels"][0] == [0, 2] and out["hint_tokens"][0] == [0, 37]
    assert (out["preview_successes"][0], out["preview_trials"][0]) == (1, 2)
    assert out["hinted_sessions"] == [1, 0]
    # unassisted: 2 previews + the unhinted main (failed); the hinted success does not count
    assert (out["unassisted_successes"][0], out["unassisted_trials"][0]) == (1, 3)
    assert (out["unassisted_successes"][1], out["unassisted_trials"][1]) == (1, 2)
    assert out["previewed_difficulty"][0] == pytest.approx(0.5)  # mean of the deciding sessions' p
    assert math.isnan(out["previewed_difficulty"][1])
    assert (out["prior_alpha"][0], out["prior_beta"][0], out["prior_mean"][0]) == (2.0, 6.0, 0.25)
    assert math.isnan(out["prior_alpha"][1]) and math.isnan(out["prior_mean"][1])
    assert (out["store_alpha"][0], out["store_beta"][0], out["store_mean"][0]) == (3.0, 7.0, 0.3)
    assert out["visits"] == [3, 1] and out["data_source"] == ["src", "src"]


def test_hint_sources_per_main_session_and_the_reference_source_per_prompt():
    sessions = _sessions()
    out = build_records(1, **sessions, posteriors={"src/1": (1.0, 1.0), "src/2": (1.0, 1.0)}, visits={})
    assert out["hint_sources"] == [["", ""], ["", ""]] and out["reference_source"] == ["", ""]  # not given
    sources = ["", "", "", "harvested", "", ""]
    out = build_records(
        1,
        **sessions,
        posteriors={"src/1": (1.0, 1.0), "src/2": (1.0, 1.0)},
        visits={},
        hint_sources=sources,
        reference_sources={"src/1": "harvested", "src/2": "dataset"},
    )
    assert out["hint_sources"] == [["", "harvested"], ["", ""]]  # aligned with hint_levels [0, 2]
    assert out["reference_source"] == ["harvested", "dataset"]
    with pytest.raises(ValueError, match="must have 6 entries"):
        build_records(1, **sessions, posteriors={}, visits={}, hint_sources=["x"])


def test_validation_sessions_are_left_out_and_mismatched_lists_fail():
    sessions = _sessions()
    sessions["roles"] = ["validation"] * 6
    out = build_records(1, **sessions, posteriors={}, visits={})
    assert all(len(v) == 0 for v in out.values())
    sessions["outcomes"] = [1.0]
    with pytest.raises(ValueError, match="must have 6 entries"):
        build_records(1, **sessions, posteriors={}, visits={})


def test_the_ledger_package_imports_no_verl_torch_or_pyarrow():
    code = (
        "import sys, verl_pdai.ledger, verl_pdai.ledger.records, verl_pdai.ledger.writer;"
        "print(sorted(m for m in ('verl', 'torch', 'pyarrow', 'pandas') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
