"""The narrowest stand-ins for what needs GPUs, so that verl's own ``PPOTrainer.fit`` loop runs on CPU.

* ``InProcessAgentLoopManager`` stands in for ``AgentLoopManagerTQ`` (Ray actor workers that talk to GPU servers):
  it passes each batch through Ray's serializer to verl's own ``AgentLoopWorkerTQ.generate_sequences`` /
  ``_run_prompt`` / ``_agent_loop_postprocess`` on an in-process worker whose LLM client is the tiny model server,
  and waits for the sessions (in training they run in the actor while the trainer polls the replay buffer).
* ``ActorStandIn`` stands in for the actor's FSDP worker group: dispatch info for one data-parallel rank,
  ``update_actor`` (recorded; the demo's model is not updated: see docs/demo.md), checkpoint calls (recorded).
  Old log-probs come from the rollout (verl's ``rollout_correction.bypass_mode``), so no log-prob forward is needed.
* ``CheckpointEngineStandIn`` stands in for the checkpoint engine that syncs weights to the LLM servers: the
  in-process server decodes with the actor's own model object, so there is nothing to sync.
* ``RewardLoopStandIn`` holds the reward-loop handles (verl's ``RewardLoopWorker``, in-process) so that the
  trainer takes the streaming reward path instead of the colocated one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

from verl_pdai.demo.agent_harness import HarnessWorker, LocalRewardHandle

_WORKER = AgentLoopWorkerTQ.__ray_metadata__.modified_class  # the class under verl's @ray.remote


class TQWorker(HarnessWorker):
    """verl's v1 rollout worker methods on an in-process object (its ``__init__`` starts GPU server clients)."""

    generate_sequences = _WORKER.generate_sequences
    _run_prompt = _WORKER._run_prompt
    _agent_loop_postprocess = _WORKER._agent_loop_postprocess

    def __init__(self, config: Any, tokenizer: Any, server: Any, reward_worker: Any) -> None:
        super().__init__(config, tokenizer, server, reward_worker=reward_worker)
        self.background_tasks: set[asyncio.Task] = set()


class InProcessAgentLoopManager:
    def __init__(self, worker: TQWorker, loop: asyncio.AbstractEventLoop) -> None:
        self.worker = worker
        self.loop = loop
        self.batches: list[Any] = []

    def generate_sequences(self, batch: Any) -> None:
        import ray

        self.batches.append(batch)
        chunk = ray.get(ray.put(batch))  # the trip a batch takes to a Ray actor worker
        self.loop.run_until_complete(self.worker.generate_sequences(chunk))
        self.loop.run_until_complete(asyncio.gather(*list(self.worker.background_tasks)))


class ActorStandIn:
    def __init__(self) -> None:
        self._dispatch_info: dict[str, list[int]] = {}
        self.calls: list[tuple[str, Any]] = []

    def _query_dispatch_info(self, role: str) -> list[int]:
        return [0]  # one data-parallel rank

    def update_actor(self, batch: Any) -> dict[str, Any]:
        self.calls.append(("update_actor", len(batch)))
        return {"metrics": {"mfu": [0.0]}}

    def save_checkpoint(
        self, local_path: str, remote_path: str | None = None, global_step: int = 0, max_ckpt_to_keep: Any = None
    ) -> None:
        os.makedirs(local_path, exist_ok=True)
        self.calls.append(("save_checkpoint", local_path))

    def load_checkpoint(self, local_path: str, del_local_after_load: bool = False) -> None:
        self.calls.append(("load_checkpoint", local_path))


class CheckpointEngineStandIn:
    def __init__(self) -> None:
        self.updates: list[int] = []

    def update_weights(self, global_steps: int | None = None) -> None:
        # verl's validation path re-syncs without a step: the version stays the last one
        self.updates.append(int(global_steps) if global_steps is not None else self.weight_version())

    def weight_version(self) -> int:
        """The version the servers would report: the last step whose weights were synced (0 before any)."""
        return self.updates[-1] if self.updates else 0

    def sleep_replicas(self) -> None:
        return None


class RewardLoopStandIn:
    def __init__(self, reward_worker: Any) -> None:
        self.reward_loop_worker_handles = [LocalRewardHandle(reward_worker)]
