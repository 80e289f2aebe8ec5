"""Run a recipe's composed config through verl's fit loop on CPU: ``steps`` training steps, a validation pass over
every validation file at the last one, a checkpoint there, then a resume from it that trains one more step.

What stands in for the GPU side is the demo's (``verl_pdai.demo.stand_ins``: the in-process rollout worker
around verl's own ``AgentLoopWorkerTQ`` methods, the actor's worker group, the weight-sync engine), with an
untaught tiny model serving the rollout; the reference log-probs of the KL loss are a real forward of that model
(``RefLogProbStandIn``). Everything else is the recipe's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_pdai.rehearsal.scale import Change, apply_changes, planned_changes

TINY_HIDDEN = 64
TINY_POSITIONS = 2048


class RehearsalError(RuntimeError):
    """The rehearsal found what would crash the launch; the message says what to fix."""


@dataclass
class RehearsalResult:
    changes: list[Change]
    steps_trained: int = 0
    validation_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    resumed_from_step: int | None = None
    state_restored: bool = False  # the pdai store came back from pdai_state.json on resume
    steps_after_resume: int = 0
    seconds: float = 0.0


def build_model_dir(out_dir: Path, seed: int = 0) -> tuple[Path, Any]:
    """A tiny random Qwen2 saved with the real Qwen2.5 tokenizer: what ``actor_rollout_ref.model.path`` names."""
    from transformers import AutoTokenizer

    from verl_pdai.demo.run import qwen_tokenizer_dir
    from verl_pdai.demo.tiny_model_server import build_tiny_model

    model_dir = out_dir / "model"
    tokenizer_dir = qwen_tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = build_tiny_model(len(tokenizer), seed=seed, max_positions=TINY_POSITIONS, hidden_size=TINY_HIDDEN)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    return model_dir, model


class RefLogProbStandIn:
    """The reference worker's ``compute_ref_log_prob``: a real forward of the tiny model over each stored
    sequence, written to TransferQueue as verl's workers write it (nested over prompt + response, shifted)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0

    def compute_ref_log_prob(self, batch: Any) -> Any:
        import torch
        import transfer_queue as tq
        from tensordict import TensorDict

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["input_ids"])
        rows = []
        with torch.no_grad():
            for ids in data["input_ids"].unbind():
                ids = ids.to(torch.long)
                logits = self.model(ids.unsqueeze(0)).logits[0].float()
                picked = torch.log_softmax(logits[:-1], dim=-1).gather(-1, ids[1:].unsqueeze(-1)).squeeze(-1)
                rows.append(torch.cat([picked, picked.new_zeros(1)]))  # position j: log p(token j + 1)
        nested = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
        tq.kv_batch_put(
            keys=batch.keys,
            partition_id=batch.partition_id,
            fields=TensorDict({"log_probs": nested}, batch_size=len(rows)),
        )
        self.calls += 1
        return batch


def compose_recipe(config_dir: Path, config_name: str, overrides: list[str]) -> Any:
    """The recipe's config exactly as ``verl.trainer.main_ppo`` composes it (legacy reward keys migrated)."""
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl

    from verl_pdai.recipes.compose import compose

    return migrate_legacy_reward_impl(compose(config_dir, config_name, overrides))


def _fit(config: Any, tokenizer: Any, model: Any, ref: RefLogProbStandIn, seed: int) -> Any:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.v1 import get_trainer_cls

    import verl_pdai.plugin.trainer  # noqa: F401  registers the pdai modes (the entry point does it after install)
    from verl_pdai.demo.stand_ins import (
        ActorStandIn,
        CheckpointEngineStandIn,
        InProcessAgentLoopManager,
        RewardLoopStandIn,
        TQWorker,
    )
    from verl_pdai.demo.tiny_model_server import TinyModelServer

    base = get_trainer_cls(config.trainer.v1.trainer_mode)

    class RehearsalTrainer(base):  # type: ignore[misc, valid-type]
        pdai_resumed_step: int | None = None

        def _get_n_gpus_for_throughput(self) -> int:
            return 1  # no resource pool: one stand-in rank

        def _load_checkpoint(self) -> None:
            super()._load_checkpoint()
            self.pdai_resumed_step = int(self.global_steps) if self.global_steps > 0 else None
            self.pdai_state_restored = len(self.pdai_store) > 0  # before any training step of this run

    trainer = RehearsalTrainer(config)
    trainer.tokenizer, trainer.processor = tokenizer, None
    try:
        trainer._init_dataloader()  # verl's own: create_rl_dataset over the recipe's train and validation files
    except Exception as exc:
        files = {"train": list(_as_list(config.data.train_files)), "val": list(_as_list(config.data.val_files))}
        raise RehearsalError(
            f"verl could not load the recipe's data files {files}: {type(exc).__name__}: {exc}. Fix: write every "
            "file with `verl-pdai prepare-data` (one schema for all of them, so verl can concatenate them) and check "
            "them with `verl-pdai check-recipe`"
        ) from exc
    trainer._init_dump_executor()
    trainer.actor_rollout_wg = ActorStandIn()
    trainer.ref_policy_wg = ref
    trainer.ref_in_actor = False  # set by verl's worker set-up (_setup), which needs GPUs
    trainer.checkpoint_manager = CheckpointEngineStandIn()
    trainer._load_checkpoint()  # as verl's set-up ends: resume_mode decides (a fresh folder trains from scratch)
    reward_worker = RewardLoopWorker(config)
    trainer.reward_loop_manager = RewardLoopStandIn(reward_worker)
    server = TinyModelServer(
        tokenizer, model=model, seed=seed, weight_version=trainer.checkpoint_manager.weight_version
    )
    loop = asyncio.new_event_loop()
    try:
        worker = TQWorker(config, tokenizer, server, reward_worker)
        worker.hf_model_type = model.config.model_type
        trainer.fit(InProcessAgentLoopManager(worker, loop))
    finally:
        loop.close()
    return trainer


def rehearse(
    config_dir: Path,
    config_name: str,
    overrides: list[str],
    out_dir: Path,
    steps: int = 2,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> RehearsalResult:
    from omegaconf import open_dict

    from verl_pdai.demo.run import ray_and_transfer_queue

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    config = compose_recipe(config_dir, config_name, overrides)
    model_dir, model = build_model_dir(out_dir, seed)
    changes = planned_changes(config, model_dir, out_dir, steps)
    say(f"rehearsing {config_name} ({config_dir}); what changes from the launch, and why:")
    for change in changes:
        say(change.line())
    apply_changes(config, changes)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    result = RehearsalResult(changes)
    ref = RefLogProbStandIn(model)
    metrics_file = out_dir / "metrics.jsonl"
    os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics_file)
    ckpt_root = Path(config.trainer.default_local_dir)
    if ckpt_root.exists():
        shutil.rmtree(ckpt_root)  # a rehearsal starts from nothing; the resume below reads what it wrote
    with ray_and_transfer_queue():
        say(f"training {steps} step(s), validating on {len(_as_list(config.data.val_files))} file(s), saving")
        trainer = _fit(config, tokenizer, model, ref, seed)
        result.steps_trained = int(trainer.global_steps) - 1  # fit leaves global_steps one past the last step
        latest = ckpt_root / "latest_checkpointed_iteration.txt"
        if not latest.exists():
            raise RuntimeError(f"no checkpoint was written under {ckpt_root}")
        step = int(latest.read_text().strip())
        result.checkpoint = ckpt_root / f"global_step_{step}"
        result.validation_metrics = _validation_metrics(metrics_file)
        say(f"checkpoint {result.checkpoint}; resuming from it for one more step")
        with open_dict(config):
            config.trainer.resume_mode = "auto"
            config.trainer.total_training_steps = steps + 1
            config.trainer.test_freq = -1
        os.environ["VERL_FILE_LOGGER_PATH"] = str(out_dir / "metrics_resumed.jsonl")  # keep the first run's file
        resumed = _fit(config, tokenizer, model, ref, seed)
        result.resumed_from_step = resumed.pdai_resumed_step
        result.state_restored = bool(resumed.pdai_state_restored)
        result.steps_after_resume = int(resumed.global_steps) - 1 - step
    result.seconds = time.perf_counter() - started
    return result


def _validation_metrics(metrics_file: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    if not metrics_file.exists():
        return found
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        data = record.get("data", record)
        found.update({k: float(v) for k, v in data.items() if k.startswith("val-") and isinstance(v, int | float)})
    return found


def _as_list(files: Any) -> list[str]:
    return [str(files)] if isinstance(files, str) else [str(f) for f in files]
