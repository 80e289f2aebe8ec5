"""The GPU side of a verl run, on CPU in this process: what the demo, the rehearsal and the learning benchmark
attach to a verl trainer before calling its own ``fit``.

* the actor: verl's ``ActorRolloutRefWorker`` (role ``actor``) in this process (``verl_pdai.actor``), real updates;
* the weight sync: after each update the actor's weights are copied into the model the rollout server decodes
  with (``InProcessWeightSync``), as verl's checkpoint engine syncs the vLLM servers;
* the rollout: verl's own agent-loop worker methods in this process, their LLM client the tiny model server
  (``stand_ins.py``), with the log-probs verl's vLLM server returns by default (``processed_logprobs``);
* the reward loop: verl's ``RewardLoopWorker`` in this process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from verl_pdai.actor.in_process import InProcessActor, InProcessWeightSync
from verl_pdai.demo.stand_ins import InProcessAgentLoopManager, RewardLoopStandIn, TQWorker
from verl_pdai.demo.tiny_model_server import TinyModelServer


@dataclass
class CpuStack:
    actor: InProcessActor
    server: TinyModelServer
    worker: TQWorker

    def manager(self) -> InProcessAgentLoopManager:
        """The agent-loop manager ``fit`` takes. Its sessions run on this thread's event loop: the one verl's
        stock reward managers captured when they were built (``naive`` keeps ``self.loop``), as in a Ray actor."""
        from verl.utils.ray_utils import get_event_loop

        return InProcessAgentLoopManager(self.worker, get_event_loop())


def server_logprobs_mode(config: Any) -> str:
    """The tiny server's log-prob mode for verl's ``rollout.logprobs_mode`` (the old log-probs of bypass mode)."""
    from omegaconf import OmegaConf

    mode = str(OmegaConf.select(config, "actor_rollout_ref.rollout.logprobs_mode", default="processed_logprobs"))
    if mode not in ("processed_logprobs", "raw_logprobs"):
        raise ValueError(f"actor_rollout_ref.rollout.logprobs_mode={mode}: the CPU stack serves processed or raw")
    return "processed" if mode == "processed_logprobs" else "raw"


def attach_cpu_stack(
    trainer: Any,
    config: Any,
    tokenizer: Any,
    model: Any,
    *,
    seed: int,
    seed_by_index: bool = False,
    response_length: int | None = None,
) -> CpuStack:
    """Give ``trainer`` an in-process actor, weight sync, reward loop and rollout worker. ``model`` is the model
    object the server decodes with; the actor loads its own copy from ``actor_rollout_ref.model.path``."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    actor = InProcessActor(config.actor_rollout_ref)
    trainer.actor_rollout_wg = actor
    trainer.checkpoint_manager = InProcessWeightSync(actor, model)
    reward_worker = RewardLoopWorker(config)
    trainer.reward_loop_manager = RewardLoopStandIn(reward_worker)
    server = TinyModelServer(
        tokenizer,
        model=model,
        seed=seed,
        seed_by_index=seed_by_index,
        weight_version=trainer.checkpoint_manager.weight_version,
        response_length=response_length,
        logprobs_mode=server_logprobs_mode(config),  # type: ignore[arg-type]
    )
    worker = TQWorker(config, tokenizer, server, reward_worker)
    worker.hf_model_type = model.config.model_type  # as verl reads it from config.json: qwen2 prompt builder
    return CpuStack(actor, server, worker)
