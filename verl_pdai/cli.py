"""The ``verl-pdai`` command: ``doctor`` (what verl sees of the plugin), ``score`` (score responses), and the
subcommands that the modules of ``COMMAND_MODULES`` register."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SAMPLES = Path(__file__).parent / "samples"

# Modules that add subcommands: each has ``register(commands)`` taking argparse's subparsers object and keeps its
# heavy imports inside the command function, so that ``verl-pdai --help`` stays fast.
COMMAND_MODULES: tuple[str, ...] = (
    "verl_pdai.confidence.command",
    "verl_pdai.data.command",
    "verl_pdai.data.backfill_command",
    "verl_pdai.demo.command",
    "verl_pdai.evaluation.command",
    "verl_pdai.ledger.command",
    "verl_pdai.recipes.command",
    "verl_pdai.rehearsal.command",
    "verl_pdai.report.command",
)

# verl registry kind -> (module, attribute) holding {name: component}
REGISTRIES = {
    "reward_manager": ("verl.experimental.reward_loop.reward_manager.registry", "REWARD_MANAGER"),
    "agent_loop": ("verl.experimental.agent_loop.agent_loop", "_agent_loop_registry"),
    "adv_estimator": ("verl.trainer.ppo.core_algos", "ADV_ESTIMATOR_REGISTRY"),
    "trainer": ("verl.trainer.ppo.v1.trainer_base", "TRAINER_REGISTRY"),
}


def _component_path(component: object) -> str:
    if isinstance(component, dict):  # the agent-loop registry stores hydra targets
        return str(component.get("_target_", component))
    module = getattr(component, "__module__", "")
    return f"{module}.{getattr(component, '__qualname__', getattr(component, '__name__', repr(component)))}"


def output_folder_problem(option: str, path: Path) -> str | None:
    """Why ``path`` cannot be made an output folder (one line with the fix), or None when it can.

    Checked before any work: ``mkdir(parents=True, exist_ok=True)`` on an existing file (or under one) would raise
    FileExistsError / NotADirectoryError only after the expensive part of a command had run.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{option} {path} is a file, not a folder; pass a folder path (it is created if missing)"
    # the folder itself, or the nearest folder above it that exists: where the first write or mkdir happens
    existing = path if path.exists() else next((parent for parent in path.parents if parent.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{option} {path}: {existing} is a file, not a folder; pass a path under a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{option} {path}: no permission to write in {existing}; pass a folder you can write to"
    return None


def registered_components() -> dict[str, dict[str, str]]:
    """verl_pdai components found in verl's own registries after a plain ``import verl``."""
    import verl  # noqa: F401  (runs verl's entry-point discovery)

    found: dict[str, dict[str, str]] = {}
    for kind, (module_name, attribute) in REGISTRIES.items():
        try:
            registry = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # report, do not crash the doctor
            found[kind] = {"<error>": f"{type(exc).__name__}: {exc}"}
            continue
        found[kind] = {
            name: _component_path(component)
            for name, component in registry.items()
            if _component_path(component).startswith("verl_pdai.")
        }
    return found


def doctor(args: argparse.Namespace) -> int:
    """Print versions and the verl_pdai components verl's registries hold; non-zero if one is missing."""
    import verl

    from verl_pdai import __version__
    from verl_pdai.plugin.registration import COMPONENTS

    plugins = [ep.name for ep in importlib.metadata.entry_points(group="verl.plugins")]
    print(f"verl {verl.__version__} | verl_pdai {__version__} | python {sys.version.split()[0]}")
    print(f"verl.plugins entry points: {', '.join(plugins) or '<none>'}")
    print(f"vllm installed: {importlib.util.find_spec('vllm') is not None} (needed on GPU nodes only)")
    found = registered_components()
    expected_kinds = {kind for entries in COMPONENTS.values() for kind, _ in entries}
    missing = []
    for kind, names in found.items():
        if "<error>" in names and kind not in expected_kinds:
            continue  # a registry verl_pdai does not use yet (e.g. the v1 trainer needs transfer_queue)
        for name, path in sorted(names.items()):
            print(f"  {kind:<15} {name:<18} -> {path}")
    not_installed = []
    for entries in COMPONENTS.values():
        for kind, name in entries:
            error = found.get(kind, {}).get("<error>", "")
            if "ModuleNotFoundError" in error:  # verl's own registry needs packages this install lacks
                not_installed.append(f"{kind}:{name}")
            elif name not in found.get(kind, {}):
                missing.append(f"{kind}:{name}")
    if not_installed:
        print(
            f"not available in this install: {', '.join(not_installed)} (verl's registry for them does not import "
            "here; the agent loop and trainer modes need the train extra: pip install 'verl-pdai[train]')"
        )
    if missing:
        print(f"MISSING from verl's registries: {', '.join(missing)} (see the error logged by verl_pdai)")
        return 1
    print(
        "every verl_pdai component this install has is registered"
        if not_installed
        else "all verl_pdai components are registered"
    )
    if args.check_scoring:
        return score_samples(SAMPLES / "responses.jsonl", limit=3)
    return 0


def score_samples(path: Path, limit: int | None = None) -> int:
    """Score a JSONL file of {"response", "ground_truth", "reference_solution"?} rows and print a table."""
    from verl_pdai.api import score

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"{'#':>2} {'acc':>4} {'process':>8} {'score':>7} {'steps':>5} {'false':>5} {'pred':<16} note")
    for index, row in enumerate(rows[:limit]):
        result = score(row["response"], row["ground_truth"], row.get("reference_solution"))
        note = "timed out" if result.timed_out else (result.error or row.get("note", ""))
        print(
            f"{index:>2} {result.acc:>4.0f} {result.process_score:>8.3f} {result.score:>7.3f} {result.num_steps:>5} "
            f"{result.num_false_claims:>5} {result.pred[:16]:<16} {note}"
        )
    return 0


def score_command(args: argparse.Namespace) -> int:
    return score_samples(Path(args.file) if args.file else SAMPLES / "responses.jsonl")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verl-pdai", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor_parser = commands.add_parser("doctor", help="show what verl's registries hold of verl_pdai")
    doctor_parser.add_argument("--check-scoring", action="store_true", help="also score shipped samples")
    doctor_parser.set_defaults(func=doctor)
    score_parser = commands.add_parser("score", help="score a JSONL of responses (default: shipped samples)")
    score_parser.add_argument("file", nargs="?", help="JSONL rows with response, ground_truth, reference_solution")
    score_parser.set_defaults(func=score_command)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ModuleNotFoundError as exc:
        if "verl-pdai[" not in str(exc):
            raise
        print(f"verl-pdai {args.command}: {exc}", file=sys.stderr)  # an extra not installed: no traceback
        return 2


if __name__ == "__main__":
    sys.exit(main())
