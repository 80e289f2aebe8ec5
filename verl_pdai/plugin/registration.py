"""verl plugin entry point (group ``verl.plugins``): registers every verl_pdai component with verl.

verl imports this module inside ``import verl`` in every process (driver, Ray workers) and swallows any
exception at debug level, so a failure here would silently leave components unregistered. Each adapter module
is imported on its own, so one failing dependency (say, ``transfer_queue`` for the trainer modes) does not take
the others down, and every failure is logged at error level with its cause.
"""

from __future__ import annotations

import importlib
import logging
import warnings

logger = logging.getLogger("verl_pdai")

# module -> what it registers, as (verl registry, name); the doctor command checks these against verl
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "verl_pdai.plugin.reward_manager": (("reward_manager", "pdai_stepwise"),),
    "verl_pdai.plugin.agent_loop": (("agent_loop", "pdai_hint"),),
    "verl_pdai.plugin.advantage": (("adv_estimator", "epgrpo"),),
    "verl_pdai.plugin.trainer": (("trainer", "pdai_sync"), ("trainer", "pdai_colocate_async")),
}


def register_all() -> dict[str, BaseException]:
    """Import every adapter module (each registers itself on import); return the failures by module."""
    failures: dict[str, BaseException] = {}
    with warnings.catch_warnings():
        # verl's trainer module announces every optional training engine it cannot import (torchtitan,
        # megatron, ...); inside `import verl` that would print in every Ray worker, for engines not in use
        warnings.filterwarnings("ignore", message=r".* engine is not available", category=UserWarning)
        for module, entries in COMPONENTS.items():
            try:
                importlib.import_module(module)
            except Exception as exc:  # verl hides plugin errors at debug level: say it loudly here
                failures[module] = exc
                logger.error(
                    "verl_pdai: registering components with verl failed: %s (%s) is NOT available: %s: %s. "
                    "Run `verl-pdai doctor` for details.",
                    ", ".join(name for _, name in entries),
                    module,
                    type(exc).__name__,
                    exc,
                    exc_info=True,
                )
    return failures


FAILURES = register_all()
