"""Every component a recipe selects by name must resolve in verl's registries after ``import verl`` (which loads
the ``verl.plugins`` entry points, verl_pdai's included), as verl's own lookups would resolve it at run time."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_pdai.recipes.findings import Findings

PDAI_TRAINER_MODES = ("pdai_sync", "pdai_colocate_async")


def _registry(module: str, attribute: str) -> dict[str, Any]:
    return dict(getattr(importlib.import_module(module), attribute))


def _unknown(findings: Findings, key: str, name: object, known: Iterable[str], extra_fix: str = "") -> None:
    known = sorted(str(k) for k in known)
    near = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f"did you mean `{key}={near[0]}`? " if near else ""
    findings.problem(
        "names",
        f"{key}={name!r} is not registered in verl (registered: {', '.join(known)})",
        f"{hint}use a registered name{extra_fix}",
    )


def _agent_loop_names(config: DictConfig) -> set[str]:
    import verl.experimental.agent_loop.agent_loop as agent_loop

    names = set(agent_loop._agent_loop_registry)
    path = OmegaConf.select(config, "actor_rollout_ref.rollout.agent.agent_loop_config_path")
    if path:  # verl's AgentLoopWorker registers the entries of this file too
        names.update(str(entry.name) for entry in OmegaConf.load(path))
    return names


def check_names(config: DictConfig, findings: Findings) -> None:
    """Trainer mode, agent loop, reward manager (or its module), advantage estimator, custom reward function."""
    import verl  # noqa: F401  (entry-point discovery registers verl_pdai's components)

    mode = OmegaConf.select(config, "trainer.v1.trainer_mode")
    try:
        trainers = _registry("verl.trainer.ppo.v1.trainer_base", "TRAINER_REGISTRY")
    except Exception as exc:  # the v1 trainer needs transfer_queue
        findings.skip(f"trainer mode {mode!r}: verl's v1 trainer does not import here ({type(exc).__name__}: {exc})")
    else:
        if mode not in trainers:
            _unknown(findings, "trainer.v1.trainer_mode", mode, trainers)

    agent = OmegaConf.select(config, "actor_rollout_ref.rollout.agent.default_agent_loop")
    try:
        agent_names = _agent_loop_names(config)
    except Exception as exc:
        findings.problem(
            "names",
            f"agent loops could not be listed: {type(exc).__name__}: {exc}",
            "fix actor_rollout_ref.rollout.agent.agent_loop_config_path",
        )
    else:
        if agent not in agent_names:
            _unknown(findings, "actor_rollout_ref.rollout.agent.default_agent_loop", agent, agent_names)

    _check_reward_manager(config, findings)

    estimator = OmegaConf.select(config, "algorithm.adv_estimator")
    estimators = _registry("verl.trainer.ppo.core_algos", "ADV_ESTIMATOR_REGISTRY")
    if estimator not in estimators:
        _unknown(findings, "algorithm.adv_estimator", estimator, estimators)

    _check_custom_reward_function(config, findings)
    _check_combination(config, findings, mode, agent, estimator)


def _check_reward_manager(config: DictConfig, findings: Findings) -> None:
    source = OmegaConf.select(config, "reward.reward_manager.source")
    name = OmegaConf.select(config, "reward.reward_manager.name")
    if source == "register":
        managers = _registry("verl.experimental.reward_loop.reward_manager.registry", "REWARD_MANAGER")
        if name not in managers:
            _unknown(findings, "reward.reward_manager.name", name, managers)
    elif source == "importlib":
        path = OmegaConf.select(config, "reward.reward_manager.module.path")
        _load_object(findings, "reward.reward_manager.module.path", path, name)
    else:
        findings.problem(
            "names",
            f"reward.reward_manager.source={source!r} is not a source verl knows",
            "use `register` (a registered name) or `importlib` (with reward.reward_manager.module.path)",
        )


def _load_object(findings: Findings, key: str, path: object, name: object) -> Any:
    from verl.utils.import_utils import load_extern_object

    if not path or not name:
        findings.problem(
            "names",
            f"{key} and its name must both be set (got {path!r}, {name!r})",
            "set both, e.g. path=pkg://verl_pdai.api name=compute_score",
        )
        return None
    try:
        return load_extern_object(module_path=str(path), object_name=str(name))
    except Exception as exc:
        findings.problem(
            "names",
            f"{key}={path!r} name={name!r} does not load: {type(exc).__name__}: {exc}",
            "use an importable module (pkg://package.module) or an existing file, and a name it defines",
        )
        return None


def _check_custom_reward_function(config: DictConfig, findings: Findings) -> None:
    path = OmegaConf.select(config, "reward.custom_reward_function.path")
    if not path:
        return
    name = OmegaConf.select(config, "reward.custom_reward_function.name")
    function = _load_object(findings, "reward.custom_reward_function.path", path, name)
    if function is not None and not callable(function):
        findings.problem(
            "names",
            f"reward.custom_reward_function {path}:{name} is not callable",
            "name a function with verl's signature (data_source, solution_str, ground_truth, extra_info)",
        )


def _check_combination(config: DictConfig, findings: Findings, mode: object, agent: object, estimator: object) -> None:
    """Components that only work together (see docs/trainer.md, docs/rollout.md)."""
    manager = OmegaConf.select(config, "reward.reward_manager.name")
    if estimator == "epgrpo" and mode not in PDAI_TRAINER_MODES:
        findings.warn(
            "names",
            f"algorithm.adv_estimator=epgrpo with trainer.v1.trainer_mode={mode!r}: verl's trainer passes "
            "the estimator no hint spans and no step rewards, so epgrpo reduces to grpo",
            "use trainer.v1.trainer_mode=pdai_sync (or pdai_colocate_async)",
        )
    if agent == "pdai_hint" and manager != "pdai_stepwise":
        findings.problem(
            "names",
            f"agent loop pdai_hint with reward manager {manager!r}: a stock manager scores the injected "
            "hint text as if the model wrote it",
            "use reward.reward_manager.name=pdai_stepwise with the pdai_hint agent loop",
        )
