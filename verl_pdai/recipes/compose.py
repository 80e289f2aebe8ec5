"""Compose a recipe with hydra as ``verl.trainer.main_ppo --config-path DIR --config-name NAME`` does, and find
keys that verl's ``ppo_trainer`` does not have. Hydra's own errors are reworded with the fix."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from verl_pdai.recipes.findings import Findings

# new keys a recipe may add to verl's config: sections verl_pdai reads and validates itself, or free-form kwargs
OPEN_SECTIONS = (
    "pdai",
    "reward.reward_kwargs",
    "reward.custom_reward_function.reward_kwargs",
    "algorithm.pdai",
    "ray_kwargs",
)


def compose(config_dir: Path, config_name: str, overrides: Sequence[str]) -> DictConfig:
    """The composed config (hydra's errors propagate)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base=None):
        return hydra_compose(config_name, overrides=list(overrides))


@functools.lru_cache(maxsize=8)
def verl_base(group_overrides: tuple[str, ...]) -> DictConfig:
    """verl's own ``ppo_trainer`` with the same config-group choices (e.g. ``model_engine=megatron``); cached, so
    callers must not modify it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        try:
            return hydra_compose("ppo_trainer", overrides=list(group_overrides))
        except Exception:  # a group only the recipe has: compare with the plain base
            return hydra_compose("ppo_trainer")


def flat_keys(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, raw value) of every leaf and every empty mapping, interpolations left unresolved."""
    if isinstance(node, DictConfig):
        keys = list(node.keys())
        if not keys and prefix:
            yield prefix, {}
        for key in keys:
            child = node._get_node(key)
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(child, DictConfig):
                yield from flat_keys(child, path)
            else:
                yield path, child._value() if child is not None else None


def unknown_keys(config: DictConfig, base: DictConfig) -> list[str]:
    """Keys of ``config`` that verl's base config lacks, outside the open sections and free-form empty mappings."""
    base_leaves = dict(flat_keys(base))
    base_paths = set(base_leaves)
    for path in list(base_leaves):  # every prefix of a base key is a base key
        parts = path.split(".")
        base_paths.update(".".join(parts[:i]) for i in range(1, len(parts)))
    free_form = {path for path, value in base_leaves.items() if value == {}}
    unknown = []
    for path, _ in flat_keys(config):
        if path in base_paths or any(path == s or path.startswith(s + ".") for s in OPEN_SECTIONS):
            continue
        if any(path.startswith(f + ".") for f in free_form):
            continue
        unknown.append(path)
    return unknown


def close_keys(key: str, known: Sequence[str], limit: int = 3) -> list[str]:
    """Known keys that look like ``key`` (same parent first, then anywhere)."""
    parent = key.rpartition(".")[0]
    siblings = [k for k in known if k.rpartition(".")[0] == parent]
    found = difflib.get_close_matches(key, siblings, n=limit, cutoff=0.6)
    return found or difflib.get_close_matches(key, list(known), n=limit, cutoff=0.75)


def _available_configs(config_dir: Path, group: str = "") -> list[str]:
    folder = config_dir / group if group else config_dir
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def reword_compose_error(exc: Exception, config_dir: Path, config_name: str, findings: Findings) -> None:
    """Turn hydra's composition error into a problem that says what to change."""
    text = str(exc).strip()
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text} ({str(cause).strip()})"
    if match := re.search(r"Could not override '([^']+)'", text):
        key = match.group(1)
        try:
            known = [k for k, _ in flat_keys(compose(config_dir, config_name, []))]
        except Exception:
            known = []
        near = close_keys(key, known)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        findings.problem(
            "keys",
            f"override `{key}=...`: no key `{key}` in the composed config",
            f"{hint}fix the spelling, or write `+{key}=...` to add a new key on purpose",
        )
    elif match := re.search(r"Could not append to config. An item is already at '([^']+)'", text):
        key = match.group(1)
        findings.problem("keys", f"`+{key}=...` adds a key that already exists", f"write `{key}=...` without `+`")
    elif match := re.search(r"Cannot find primary config '([^']+)'", text):
        findings.problem(
            "compose",
            f"no config `{match.group(1)}` in {config_dir}",
            f"use one of {_available_configs(config_dir)} (CONFIG_NAME without .yaml)",
        )
    elif match := re.search(r"Could not find '([^'/]+)/([^']+)'", text):
        group, option = match.groups()
        findings.problem(
            "compose",
            f"config group `{group}` has no option `{option}`",
            f"use one of {_available_configs(config_dir, group)} (`+{group}=NAME`)",
        )
    else:
        findings.problem(
            "compose",
            f"hydra could not compose the recipe: {text}",
            "fix the override or the yaml hydra names above (override grammar: key=value, +key=value, ~key)",
        )


def group_overrides(overrides: Sequence[str]) -> tuple[str, ...]:
    """Overrides that pick a config group option of verl's own config (``model_engine=megatron``)."""
    return tuple(o for o in overrides if "=" in o and not o.startswith(("+", "~")) and "." not in o.split("=", 1)[0])
