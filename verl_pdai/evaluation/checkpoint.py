"""A verl FSDP checkpoint (``global_step_N/actor`` with ``model_world_size_W_rank_R.pt`` shards) is not a Hugging
Face model: it is merged with verl's own merger into ``global_step_N/actor_hf`` (next to it) before loading.

Decision: merge automatically (one CPU-side step, reused by later runs); ``--no-merge`` fails instead and prints the
exact command. The merger writes to ``actor_hf.partial`` and is renamed when it succeeded, so an interrupted merge
is never mistaken for a model.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from verl_pdai.evaluation.data import EvalInputError

MERGED_SUFFIX = "_hf"


def actor_dir_of(path: Path) -> Path | None:
    """The FSDP actor folder ``path`` names (itself or its ``actor`` child), or None for anything else."""
    for candidate in (path, path / "actor"):
        if (candidate / "fsdp_config.json").is_file() and any(candidate.glob("model_world_size_*_rank_*.pt")):
            return candidate
    return None


def merged_dir_for(actor_dir: Path) -> Path:
    return actor_dir.parent / f"{actor_dir.name}{MERGED_SUFFIX}"


def merge_command(actor_dir: Path, target_dir: Path) -> list[str]:
    """verl 0.9.1's merger CLI (verl/model_merger/__main__.py)."""
    return [
        sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor_dir),
        "--target_dir",
        str(target_dir),
    ]


def is_merged(target_dir: Path) -> bool:
    return (target_dir / "config.json").is_file() and any(target_dir.glob("*.safetensors"))


def resolve_model(model: str, *, merge: bool = True) -> str:
    """The HF model path to load for ``--model``: unchanged unless it is a verl FSDP checkpoint."""
    path = Path(model)
    actor_dir = actor_dir_of(path) if path.is_dir() else None
    if actor_dir is None:
        return model
    target = merged_dir_for(actor_dir)
    if is_merged(target):
        print(f"using the merged checkpoint {target}")
        return str(target)
    command = merge_command(actor_dir, target)
    shown = "python " + shlex.join(command[1:])
    if not merge:
        raise EvalInputError(f"{model} is a verl FSDP checkpoint, not a Hugging Face model; convert it with: {shown}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"merging the verl FSDP checkpoint into {target}: {shown}", flush=True)
    done = subprocess.run([*command[:-1], str(partial)], check=False)
    if done.returncode != 0 or not is_merged(partial):
        raise EvalInputError(
            f"verl's model merger failed (exit {done.returncode}) on {actor_dir}; run it by hand to see why: {shown}"
        )
    partial.rename(target)
    return str(target)
