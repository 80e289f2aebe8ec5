"""verl plugin entry point (group ``verl.plugins``): registers every verl_pdai component with verl.

verl imports this module inside ``import verl`` in every process (driver, Ray workers) and swallows any
exception at debug level, so a failure here would silently leave components unregistered. We log the cause
at error level ourselves, then re-raise for verl to swallow.
"""

from __future__ import annotations

import importlib
import logging

logger = logging.getLogger("verl_pdai")

# module -> what it registers, as (verl registry, name); the doctor command checks these against verl
COMPONENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "verl_pdai.plugin.reward_manager": (("reward_manager", "pdai_stepwise"),),
    "verl_pdai.plugin.agent_loop": (("agent_loop", "pdai_hint"),),
}


def register_all() -> list[str]:
    """Import every adapter module (each registers itself on import); return the modules imported."""
    loaded = []
    for module in COMPONENTS:
        importlib.import_module(module)
        loaded.append(module)
    return loaded


try:
    register_all()
except Exception as exc:  # verl hides plugin errors at debug level: say it loudly here
    logger.error(
        "verl_pdai: registering components with verl failed: %s: %s. The verl_pdai components (%s) are NOT "
        "available. Run `verl-pdai doctor` for details.",
        type(exc).__name__,
        exc,
        ", ".join(name for entries in COMPONENTS.values() for _, name in entries),
        exc_info=True,
    )
    raise
