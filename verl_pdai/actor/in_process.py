"""verl's own actor, in this process, on CPU: ``ActorRolloutRefWorker`` (role ``actor``) as the trainer's worker
group, and an in-process weight sync from its FSDP2 engine to the model the rollout server decodes with.

The trainer calls ``update_actor(batch)`` / ``compute_log_prob(batch)`` with TransferQueue batch handles exactly
as on a GPU node; verl's ``@register`` wrapper (``tqbridge``) fetches the batch from TransferQueue, and the update
is verl's: ``TrainingWorker.train_mini_batch`` -> the FSDP2 engine -> ``ppo_loss``. Only the process layout
differs: one rank, no Ray worker group, the gloo process group created here (verl would ask for
``cpu:gloo,cpu:gloo`` when the device is the CPU).
"""

from __future__ import annotations

import os
from typing import Any

import torch


def _single_rank_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        if dist.get_world_size() != 1:
            raise RuntimeError("the in-process actor runs on one rank; a process group of several ranks exists")
        return
    for key, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",  # recorded by verl's Worker; the group below uses an in-memory store
        "MASTER_PORT": "0",
    }.items():
        os.environ[key] = value  # a launcher's RANK/WORLD_SIZE (torchrun, SLURM) would disagree with this group
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())


class InProcessActor:
    """The actor worker group of one rank: verl's ``ActorRolloutRefWorker`` called directly."""

    def __init__(self, actor_rollout_ref: Any) -> None:
        from verl_pdai.actor.cpu_platform import use_cpu_platform

        use_cpu_platform()
        _single_rank_process_group()
        from verl.workers.engine_workers import ActorRolloutRefWorker

        self.worker = ActorRolloutRefWorker(config=actor_rollout_ref, role="actor")
        self.worker.init_model()
        self.updates = 0
        self._dispatch_info: dict[str, list[int]] = {}  # the trainer caches _query_dispatch_info here

    @property
    def module(self) -> torch.nn.Module:
        return self.worker.actor.engine.module

    def _query_dispatch_info(self, role: str) -> list[int]:
        return [0]  # one data-parallel rank

    def update_actor(self, batch: Any) -> Any:
        output = self.worker.update_actor(batch)
        self.updates += 1
        return output

    def compute_log_prob(self, batch: Any) -> Any:
        return self.worker.compute_log_prob(batch)

    def save_checkpoint(
        self, local_path: str, remote_path: str | None = None, global_step: int = 0, max_ckpt_to_keep: Any = None
    ) -> None:
        self.worker.save_checkpoint(local_path, remote_path, global_step, max_ckpt_to_keep)

    def load_checkpoint(self, local_path: str, del_local_after_load: bool = False) -> None:
        self.worker.load_checkpoint(local_path, None, del_local_after_load)

    @torch.no_grad()
    def full_state(self) -> dict[str, torch.Tensor]:
        """Every parameter and buffer as a plain tensor (FSDP2 holds DTensors; one rank holds all of each)."""
        state = {}
        for name, value in self.module.state_dict().items():
            state[name] = value.full_tensor() if hasattr(value, "full_tensor") else value
        return state


class InProcessWeightSync:
    """The checkpoint engine's ``update_weights`` for a server that decodes with a model object in this process:
    the actor's weights are copied into it, so every rollout after an update samples from the updated policy."""

    def __init__(self, actor: InProcessActor, target: torch.nn.Module) -> None:
        self.actor = actor
        self.target = target
        self.updates: list[int] = []

    @torch.no_grad()
    def update_weights(self, global_steps: int | None = None) -> None:
        state = self.actor.full_state()
        missing, unexpected = self.target.load_state_dict(state, strict=False)
        tied = bool(getattr(self.target.config, "tie_word_embeddings", False))
        # a tied output head is the input embedding (FSDP's state dict may leave out the alias); any other gap
        # would serve a stale tensor
        if unexpected or [m for m in missing if not (tied and m == "lm_head.weight")]:
            raise RuntimeError(f"weight sync: names differ (missing {missing}, unexpected {unexpected})")
        self.updates.append(int(global_steps) if global_steps is not None else self.weight_version())

    def weight_version(self) -> int:
        return self.updates[-1] if self.updates else 0

    def sleep_replicas(self) -> None:
        return None
