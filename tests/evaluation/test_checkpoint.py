"""A verl FSDP checkpoint folder is detected and merged with verl's own merger (run for real, world size 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from verl_pdai.evaluation.checkpoint import actor_dir_of, merge_command, merged_dir_for, resolve_model
from verl_pdai.evaluation.data import EvalInputError

from .tiny_model import save_tiny_model


def fsdp_checkpoint(root: Path, tokenizer) -> tuple[Path, torch.nn.Module]:
    """``global_step_3/actor`` as verl's FSDP checkpoint manager leaves it for world size 1 (plain tensors)."""
    actor = root / "global_step_3" / "actor"
    model = save_tiny_model(actor / "huggingface", tokenizer)
    for weights in (actor / "huggingface").glob("*.safetensors"):
        weights.unlink()  # verl keeps only config and tokenizer there
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 1, "world_size": 1}))
    return actor, model


def test_detection_and_command(tmp_path: Path, tokenizer) -> None:
    actor, _ = fsdp_checkpoint(tmp_path, tokenizer)
    assert actor_dir_of(actor) == actor and actor_dir_of(actor.parent) == actor
    assert actor_dir_of(actor / "huggingface") is None and actor_dir_of(tmp_path) is None
    assert merged_dir_for(actor) == actor.parent / "actor_hf"
    assert merge_command(actor, tmp_path / "t")[1:] == [
        "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir", str(actor), "--target_dir",
        str(tmp_path / "t"),
    ]  # fmt: skip
    assert resolve_model(str(tmp_path / "not-a-checkpoint")) == str(tmp_path / "not-a-checkpoint")
    assert resolve_model("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    with pytest.raises(EvalInputError, match="convert it with: python -m verl.model_merger merge --backend fsdp"):
        resolve_model(str(actor.parent), merge=False)


def test_checkpoint_is_merged_once_next_to_it_and_loads(tmp_path: Path, tokenizer) -> None:
    from transformers import AutoModelForCausalLM

    actor, model = fsdp_checkpoint(tmp_path, tokenizer)
    merged = resolve_model(str(actor.parent))
    assert merged == str(actor.parent / "actor_hf")
    assert not (actor.parent / "actor_hf.partial").exists()
    loaded = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    expected = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        # the merger stores bfloat16
        assert torch.equal(tensor, expected[name].to(torch.bfloat16).to(torch.float32)), name
    mtime = (Path(merged) / "config.json").stat().st_mtime_ns
    assert resolve_model(str(actor)) == merged  # reused, not merged again
    assert (Path(merged) / "config.json").stat().st_mtime_ns == mtime


def test_failed_merge_says_how_to_rerun(tmp_path: Path, tokenizer) -> None:
    actor, _ = fsdp_checkpoint(tmp_path, tokenizer)
    (actor / "model_world_size_1_rank_0.pt").write_bytes(b"not a torch file")
    with pytest.raises(EvalInputError, match=r"model merger failed \(exit 1\).*run it by hand"):
        resolve_model(str(actor))
    assert not (actor.parent / "actor_hf").exists()
