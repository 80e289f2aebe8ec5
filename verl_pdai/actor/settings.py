"""What verl's actor needs in its config to run on CPU (pure: imports omegaconf only when applying)."""

from __future__ import annotations

from typing import Any

# what verl's FSDP engine needs on CPU (keys under actor_rollout_ref), with the reason each differs from a GPU run
CPU_ACTOR_SETTINGS: dict[str, tuple[Any, str]] = {
    "actor.strategy": ("fsdp2", "verl's FSDP1 hard-codes sync_module_states, which needs an accelerator"),
    "model.override_config.attn_implementation": ("sdpa", "flash-attention (verl's default) needs CUDA"),
    "actor.fsdp_config.param_offload": (False, "no accelerator memory to offload from"),
    "actor.fsdp_config.optimizer_offload": (False, "no accelerator memory to offload from"),
}
MICRO_BATCH = 8  # sequences per forward when a config gives no micro-batch size (two CPU cores)


def apply_cpu_actor_settings(actor_rollout_ref: Any, micro_batch_size: int = MICRO_BATCH) -> None:
    """Set what verl's actor needs to run on CPU in ``actor_rollout_ref`` (an OmegaConf node). Without dynamic
    batching, the micro-batch (given, or ``micro_batch_size``) must divide the update's mini-batch of sequences;
    verl would only find out at the first update, after a whole rollout."""
    from omegaconf import OmegaConf, open_dict

    with open_dict(actor_rollout_ref):
        for key, (value, _) in CPU_ACTOR_SETTINGS.items():
            OmegaConf.update(actor_rollout_ref, key, value, force_add=True)
        for key in ("actor.ppo_micro_batch_size_per_gpu", "rollout.log_prob_micro_batch_size_per_gpu"):
            if OmegaConf.select(actor_rollout_ref, key, default=None) is None:
                OmegaConf.update(actor_rollout_ref, key, micro_batch_size, force_add=True)
    if OmegaConf.select(actor_rollout_ref, "actor.use_dynamic_bsz", default=False):
        return
    sequences = int(OmegaConf.select(actor_rollout_ref, "actor.ppo_mini_batch_size", default=0) or 0) * int(
        OmegaConf.select(actor_rollout_ref, "rollout.n", default=1) or 1
    )
    micro = int(OmegaConf.select(actor_rollout_ref, "actor.ppo_micro_batch_size_per_gpu"))
    if sequences and sequences % micro:
        raise ValueError(
            f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro} does not divide the update's mini-batch "
            f"of {sequences} sequences (ppo_mini_batch_size x rollout.n): set it to a divisor of {sequences}"
        )
