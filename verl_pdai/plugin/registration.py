"""verl plugin entry point (group ``verl.plugins``): registers every verl_pdai component with verl, lazily.

verl imports this module inside ``import verl`` in every process (driver, every Ray worker), so it must cost
next to nothing there: it imports no verl_pdai adapter and no verl module. It only installs an import hook;
each component registers when verl first imports the registry that will look it up:

- ``verl.experimental.agent_loop.agent_loop``: ``pdai_hint`` enters ``_agent_loop_registry`` as a hydra target
  (the registry's own format), so the agent loop's module loads only when verl instantiates it;
- ``verl.experimental.reward_loop.reward_manager``: the ``pdai_stepwise`` module (verl's reward config checks
  the name is in the registry before it builds the manager, so the class must be there);
- ``verl.trainer.ppo.core_algos``: ``epgrpo``;
- ``verl.trainer.ppo.v1``: the ``pdai_sync`` and ``pdai_colocate_async`` trainer modes.

verl swallows entry-point exceptions at debug level, so a failure here would silently leave components
unregistered: each component registers on its own (one failing dependency does not take the others down) and
every failure is logged at error level with its cause and kept in ``FAILURES``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

logger = logging.getLogger("verl_pdai")

AGENT_LOOP_TARGET = "verl_pdai.plugin.agent_loop.PdaiHintAgentLoop"

# module -> what it registers, as (verl registry, name); the doctor command checks these against verl
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "verl_pdai.plugin.reward_manager": (("reward_manager", "pdai_stepwise"),),
    "verl_pdai.plugin.agent_loop": (("agent_loop", "pdai_hint"),),
    "verl_pdai.plugin.advantage": (("adv_estimator", "epgrpo"),),
    "verl_pdai.plugin.trainer": (("trainer", "pdai_sync"), ("trainer", "pdai_colocate_async")),
}

FAILURES: dict[str, BaseException] = {}


def _import_adapter(module: str) -> None:
    with warnings.catch_warnings():
        # verl's trainer module announces every optional training engine it cannot import (torchtitan,
        # megatron, ...); that would print in every Ray worker, for engines not in use
        warnings.filterwarnings("ignore", message=r".* engine is not available", category=UserWarning)
        try:
            importlib.import_module(module)
        except Exception as exc:  # verl hides plugin errors at debug level: say it loudly here
            FAILURES[module] = exc
            logger.error(
                "verl_pdai: registering components with verl failed: %s (%s) is NOT available: %s: %s. "
                "Run `verl-pdai doctor` for details.",
                ", ".join(name for _, name in COMPONENTS[module]),
                module,
                type(exc).__name__,
                exc,
                exc_info=True,
            )


def _register_agent_loop(agent_loop_module: ModuleType) -> None:
    registry: dict[str, Any] = agent_loop_module._agent_loop_registry
    registry.setdefault("pdai_hint", {"_target_": AGENT_LOOP_TARGET})


def _register_reward_manager(_: ModuleType) -> None:
    _import_adapter("verl_pdai.plugin.reward_manager")


def _register_advantage(core_algos: ModuleType) -> None:
    adapter = sys.modules.get("verl_pdai.plugin.advantage")
    if adapter is None:
        _import_adapter("verl_pdai.plugin.advantage")
        return
    # Our adapter is already there. Either it is importing core_algos right now (imported first: its own
    # decorator registers once core_algos is done), or verl's module was reloaded: a new registry, our module not
    # re-run, so register its function again.
    estimator = getattr(adapter, "compute_epgrpo_advantage_verl", None)
    if estimator is not None:
        core_algos.ADV_ESTIMATOR_REGISTRY.setdefault("epgrpo", estimator)


def _register_trainer_modes(_: ModuleType) -> None:
    _import_adapter("verl_pdai.plugin.trainer")


# verl module -> what registers our components once it has been imported (module-level functions: a module's spec
# holds its loader, and with it the hook, and specs get pickled)
HOOKS: dict[str, Callable[[ModuleType], None]] = {
    "verl.experimental.agent_loop.agent_loop": _register_agent_loop,
    "verl.experimental.reward_loop.reward_manager": _register_reward_manager,
    "verl.trainer.ppo.core_algos": _register_advantage,
    "verl.trainer.ppo.v1": _register_trainer_modes,
}


class _RunAfterExec(importlib.abc.Loader):
    """Wraps a module's loader: executes the module, then its hook (anything else goes to the real loader)."""

    def __init__(self, loader: importlib.abc.Loader, hook: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        try:
            self._hook(module)
        except Exception as exc:  # registering ours must never break verl's own import
            logger.error("verl_pdai: registering with %s failed: %s: %s", module.__name__, type(exc).__name__, exc)

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, ...: the real loader's
        if name.startswith("__") or name in ("_loader", "_hook"):  # copy/pickle probe an instance without them
            raise AttributeError(name)
        return getattr(self._loader, name)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a hooked module it asks the finders after it and wraps the loader they return."""

    def __init__(self, hooks: dict[str, Callable[[ModuleType], None]]) -> None:
        self.hooks = hooks
        self._local = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        hook = self.hooks.get(fullname)
        if hook is None or getattr(self._local, "busy", False):
            return None
        self._local.busy = True
        try:
            spec = next(
                (
                    found
                    for finder in sys.meta_path
                    if finder is not self
                    and hasattr(finder, "find_spec")
                    and (found := finder.find_spec(fullname, path, target)) is not None
                ),
                None,
            )
        finally:
            self._local.busy = False
        if spec is None or spec.loader is None:
            return None
        spec.loader = _RunAfterExec(spec.loader, hook)
        return spec


_FINDER = _AfterImportFinder(HOOKS)


def install() -> None:
    """Register now for the verl modules already imported; hook the others (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name, hook in HOOKS.items():
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__spec__", None) is not None:
            if not isinstance(module.__spec__.loader, _RunAfterExec):  # not one still executing under our hook
                hook(module)


def register_all() -> dict[str, BaseException]:
    """Register every component now (imports the verl registries and our adapters); return the failures."""
    install()
    for name in HOOKS:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a verl registry that does not import here (say, a missing optional dependency)
            FAILURES.setdefault(name, exc)
            logger.error("verl_pdai: verl module %s does not import: %s: %s", name, type(exc).__name__, exc)
    return dict(FAILURES)


install()
