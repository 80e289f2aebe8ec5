"""The report is pure: no verl, even indirectly; the CLI stays light (matplotlib and pandas load only to draw)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "data" / "run_metrics.jsonl"


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_report_and_its_command_is_light():
    loaded = _run(
        "import sys, verl_pdai.report, verl_pdai.report.command, verl_pdai.report.metrics_log;"
        "print(sorted(m for m in ('verl', 'matplotlib', 'pandas', 'torch') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_writing_a_report_with_a_ledger_imports_no_verl(tmp_path):
    code = (
        "import sys; from pathlib import Path;"
        "from tests.report.ledger_builder import simulated_run, write_parts;"
        "from verl_pdai.report import write_report;"
        f"ledger = write_parts(simulated_run(steps=3, problems=6, per_step=3), Path({str(tmp_path)!r}) / 'l');"
        f"write_report(Path({str(RECORDED)!r}), Path({str(tmp_path)!r}) / 'out', ledger=ledger);"
        "print('verl' in sys.modules, 'torch' in sys.modules)"
    )
    assert _run(code) == "False False"
