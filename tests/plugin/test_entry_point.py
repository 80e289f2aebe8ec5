"""Plugin discovery for real: the installed package, fresh interpreters that only ``import verl``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import verl
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
print(json.dumps({
    "reward_manager": get_reward_manager_cls("pdai_stepwise").__module__,
    "agent_loop": _agent_loop_registry["pdai_hint"]["_target_"],
    "heavy": sorted(m for m in ("vllm", "math_verify") if m in sys.modules),
}))
"""


def python(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)


def test_plain_import_verl_registers_components_and_stays_light():
    done = python(PROBE)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["reward_manager"] == "verl_pdai.plugin.reward_manager"
    assert found["agent_loop"] == "verl_pdai.plugin.agent_loop.PdaiHintAgentLoop"
    assert found["heavy"] == []  # no vllm; math-verify only in the scoring worker processes


def test_verl_plugin_switch_off_leaves_components_unregistered():
    """Proves the registration above came from the entry point, not from some other import."""
    done = python(PROBE, {"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert done.returncode != 0 and "Unknown reward manager: pdai_stepwise" in done.stderr


def test_import_verl_loads_only_the_hook_and_registers_on_first_use():
    """``import verl`` with the plugin imports three tiny modules more than without it, nothing of verl's; each
    component registers when verl imports the registry that looks it up."""
    code = (
        "import json, sys\nbefore = set(sys.modules)\nimport verl\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    with_plugin, without = python(code), python(code, {"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert with_plugin.returncode == 0 and without.returncode == 0, with_plugin.stderr + without.stderr
    extra = set(json.loads(with_plugin.stdout.splitlines()[-1])) - set(json.loads(without.stdout.splitlines()[-1]))
    assert extra == {"verl_pdai", "verl_pdai.plugin", "verl_pdai.plugin.registration"}
    registered = (
        "import sys, verl\n"
        "assert 'verl_pdai.plugin.advantage' not in sys.modules\n"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
        "print(get_adv_estimator_fn('epgrpo').__module__)"
    )
    done = python(registered)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "verl_pdai.plugin.advantage"


def test_failing_registration_is_logged_loudly_with_its_cause_and_spares_the_others():
    # epgrpo and the trainer modes need verl_pdai.core.advantage; without it they fail, the others still register
    code = (
        "import sys; sys.modules['verl_pdai.core.advantage'] = None; import verl\n"
        "import verl.trainer.ppo.core_algos\n"
        "from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls\n"
        "print(get_reward_manager_cls('pdai_stepwise').__name__)"
    )
    done = python(code)
    assert done.returncode == 0  # verl swallows the plugin error ...
    assert "verl_pdai: registering components with verl failed: epgrpo" in done.stderr
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr  # ... we name the cause
    assert done.stdout.strip().splitlines()[-1] == "PdaiStepwiseRewardManager"


def test_doctor_fails_when_a_component_is_missing():
    code = (
        "import sys; sys.modules['verl_pdai.core.advantage'] = None; from verl_pdai.cli import main; "
        "sys.exit(main(['doctor']))"
    )
    done = python(code)
    assert done.returncode == 1 and "MISSING from verl's registries: adv_estimator:epgrpo, trainer:pdai_sync" in (
        done.stdout
    )


def test_doctor_lists_the_registered_components():
    done = subprocess.run(
        [sys.executable, "-m", "verl_pdai.cli", "doctor"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reward_manager" in done.stdout and "pdai_stepwise" in done.stdout
    assert "agent_loop" in done.stdout and "pdai_hint" in done.stdout
    assert "adv_estimator" in done.stdout and "epgrpo" in done.stdout
    assert "pdai_sync" in done.stdout and "pdai_colocate_async" in done.stdout
    assert "verl 0.9" in done.stdout


def test_plain_python_api_works_without_importing_verl():
    code = (
        "import sys\n"
        "from verl_pdai.api import score\n"
        "result = score('Step 1: $3 \\\\cdot 4 = 12$.\\n\\nSo \\\\boxed{12}.', '12')\n"
        "print(result.acc, result.num_steps, 'verl' in sys.modules)"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1.0", "2", "False"]


def test_any_plugin_module_imported_first_registers_everything_without_errors():
    """Importing an adapter first runs `import verl`, hence the entry point, while the adapter is half-imported."""
    from verl_pdai.plugin.registration import COMPONENTS

    failures = []
    for module in COMPONENTS:
        code = (
            f"import {module}\n"
            "from verl_pdai.cli import registered_components\n"
            "print(sorted(n for names in registered_components().values() for n in names))"
        )
        done = python(code)
        if done.returncode != 0 or "registering components with verl failed" in done.stderr:
            failures.append((module, done.stderr[-500:]))
        elif "pdai_sync" not in done.stdout or "pdai_stepwise" not in done.stdout:
            failures.append((module, done.stdout))
    if failures:
        pytest.fail(f"import order problems: {failures}")


def test_doctor_on_a_reward_only_install_names_the_extra_and_passes():
    """Without the train extra verl's agent-loop and trainer registries do not import: say which extra, exit 0."""
    code = "import sys; sys.modules['cachetools'] = None\nfrom verl_pdai.cli import main; sys.exit(main(['doctor']))"
    done = python(code)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "not available in this install: agent_loop:pdai_hint" in done.stdout
    assert "pip install 'verl-pdai[train]'" in done.stdout and "pdai_stepwise" in done.stdout


def test_hooked_modules_stay_copyable_picklable_and_reloadable():
    """The import hook wraps the loader of four verl modules: what users and Ray do with a module spec still works."""
    code = (
        "import copy, importlib, pickle, verl\n"
        "import verl.trainer.ppo.core_algos as core_algos\n"
        "copy.copy(core_algos.__loader__); copy.deepcopy(core_algos.__spec__); pickle.dumps(core_algos.__spec__)\n"
        "import inspect; assert 'def register_adv_est' in inspect.getsource(core_algos)\n"
        "importlib.reload(core_algos)\n"
        "print(core_algos.get_adv_estimator_fn('epgrpo').__name__)"
    )
    done = python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "compute_epgrpo_advantage_verl"
