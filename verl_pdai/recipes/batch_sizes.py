"""Batch-size arithmetic that verl asserts at run time, checked up front and all at once.

Sources in verl 0.9.1: ``verl.utils.config.validate_config`` (train_batch_size * n divisible by the GPU count,
micro-batch settings), ``ActorConfig.validate`` (train_batch_size >= ppo_mini_batch_size), ``TrainingWorker``
(global mini-batch ppo_mini_batch_size * n divisible by the data-parallel size), ``prepare_micro_batches``
(per-GPU mini-batch divisible by the micro-batch), ``rearrange_micro_batches`` (the token budget holds the longest
sequence), ``LLMServerManager`` / ``RolloutReplica`` (rollout parallel size divides the GPUs), ``PPOTrainer.step``
(parameter_sync_step divides train_batch_size) and ``ActorRolloutRefWorker.init_model`` (dynamic-bsz flags agree).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from verl_pdai.recipes.findings import Findings

BASE_MODES = {"pdai_sync": "sync", "pdai_colocate_async": "colocate_async"}


def _get(config: DictConfig, key: str, default: Any = None) -> Any:
    value = OmegaConf.select(config, key, default=default)
    return default if value is None else value


def check_batch_sizes(config: DictConfig, findings: Findings) -> None:  # noqa: C901 (a list of independent checks)
    nodes, per_node = int(_get(config, "trainer.nnodes", 1)), int(_get(config, "trainer.n_gpus_per_node", 1))
    gpus = nodes * per_node
    batch = int(_get(config, "data.train_batch_size", 0))
    n = int(_get(config, "actor_rollout_ref.rollout.n", 1))
    actor = "actor_rollout_ref.actor"
    mini = int(_get(config, f"{actor}.ppo_mini_batch_size", 0))
    dynamic = bool(_get(config, f"{actor}.use_dynamic_bsz", False))
    sp = int(_get(config, f"{actor}.ulysses_sequence_parallel_size", 1))
    seq_len = int(_get(config, "data.max_prompt_length", 0)) + int(_get(config, "data.max_response_length", 0))
    p = findings.problem
    if gpus < 1:
        p("batch", f"trainer.nnodes * trainer.n_gpus_per_node = {gpus}", "use at least one GPU")
        return
    if batch < 1 or mini < 1 or n < 1:
        p(
            "batch",
            f"data.train_batch_size={batch}, {actor}.ppo_mini_batch_size={mini}, rollout.n={n}",
            "all three must be positive integers",
        )
        return
    if n < 2 and _get(config, "algorithm.adv_estimator") in ("grpo", "epgrpo"):
        p(
            "batch",
            f"actor_rollout_ref.rollout.n={n}: a group of one has no group-relative advantage",
            "use actor_rollout_ref.rollout.n >= 2 (the recipes use 8, then 16)",
        )
    if gpus % sp:
        p(
            "batch",
            f"{gpus} GPUs are not divisible by {actor}.ulysses_sequence_parallel_size={sp}",
            "use a sequence-parallel size that divides the GPU count",
        )
        sp = 1
    dp = gpus // sp
    if not dynamic and (batch * n) % gpus:
        p(
            "batch",
            f"data.train_batch_size * rollout.n = {batch} * {n} = {batch * n} is not divisible by "
            f"{gpus} GPUs (trainer.nnodes * trainer.n_gpus_per_node)",
            "pick sizes so that it divides (verl asserts it)",
        )
    if (mini * n) % dp:
        p(
            "batch",
            f"{actor}.ppo_mini_batch_size * rollout.n = {mini} * {n} = {mini * n} is not divisible by the "
            f"data-parallel size {dp} (GPUs / sequence parallel)",
            "make ppo_mini_batch_size * n a multiple of it",
        )
    if batch < mini:
        (findings.warn if dynamic else p)(
            "batch",
            f"data.train_batch_size={batch} < {actor}.ppo_mini_batch_size={mini}",
            "use ppo_mini_batch_size <= train_batch_size (verl pads the batch to a whole mini-batch otherwise)",
        )
    elif batch % mini:
        findings.warn(
            "batch",
            f"data.train_batch_size={batch} is not a multiple of ppo_mini_batch_size={mini}: "
            "verl pads every batch with dummy rows up to a multiple",
            "make it a multiple",
        )
    if dynamic:
        _check_token_budgets(config, findings, seq_len, sp)
    elif (mini * n) % dp == 0:
        _check_micro_batches(config, findings, mini * n // dp)
    if bool(_get(config, "actor_rollout_ref.rollout.log_prob_use_dynamic_bsz", dynamic)) != dynamic:
        p(
            "batch",
            "actor.use_dynamic_bsz and rollout.log_prob_use_dynamic_bsz differ (verl asserts they agree)",
            "set both to the same value (rollout's defaults to the actor's)",
        )
    _check_rollout_parallel(config, findings, gpus, per_node, seq_len)
    _check_trainer_mode(config, findings, batch, mini)
    findings.summary["batch"] = (
        f"{batch} prompts x n={n} = {batch * n} responses/step, mini-batch {mini} x {n}, {gpus} GPU(s) "
        f"({nodes} x {per_node}), dynamic bsz {dynamic}"
    )


def _check_token_budgets(config: DictConfig, findings: Findings, seq_len: int, sp: int) -> None:
    for key in (
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
        "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu",
        "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu",
    ):
        budget = _get(config, key)
        if budget is not None and int(budget) * sp < seq_len:
            findings.problem(
                "batch",
                f"{key}={budget} (x sequence parallel {sp}) < max_prompt_length + max_response_length = "
                f"{seq_len}: one full-length sequence does not fit a micro-batch",
                f"set {key} >= {seq_len}",
            )


def _check_micro_batches(config: DictConfig, findings: Findings, per_gpu_mini: int) -> None:
    micro = _get(config, "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu")
    if micro is None:
        findings.problem(
            "batch",
            "actor.ppo_micro_batch_size_per_gpu is not set and use_dynamic_bsz is off",
            "set actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu (or use_dynamic_bsz=true)",
        )
    elif per_gpu_mini % int(micro):
        findings.problem(
            "batch",
            f"per-GPU mini-batch {per_gpu_mini} is not divisible by ppo_micro_batch_size_per_gpu={micro}",
            "pick a micro-batch that divides ppo_mini_batch_size * n / data-parallel size",
        )
    for key in ("actor_rollout_ref.rollout", "actor_rollout_ref.ref"):
        if (
            _get(config, f"{key}.log_prob_micro_batch_size_per_gpu") is None
            and _get(config, f"{key}.log_prob_micro_batch_size") is None
        ):
            findings.problem(
                "batch",
                f"{key}.log_prob_micro_batch_size_per_gpu is not set (use_dynamic_bsz is off)",
                f"set {key}.log_prob_micro_batch_size_per_gpu",
            )


def _check_rollout_parallel(config: DictConfig, findings: Findings, gpus: int, per_node: int, seq_len: int) -> None:
    rollout = "actor_rollout_ref.rollout"
    tp, dp, pp = (
        int(_get(config, f"{rollout}.{k}", 1))
        for k in ("tensor_model_parallel_size", "data_parallel_size", "pipeline_model_parallel_size")
    )
    world = tp * dp * pp
    if gpus % world:
        findings.problem(
            "batch",
            f"rollout tensor x data x pipeline parallel = {tp} x {dp} x {pp} = {world} does not divide {gpus} GPUs",
            f"use a {rollout}.tensor_model_parallel_size that divides the GPU count (1 for 1.5B)",
        )
    elif world > per_node and world % per_node:
        findings.problem(
            "batch",
            f"a rollout replica of {world} GPUs spans nodes of {per_node} GPUs unevenly",
            "use a replica size that is a multiple of trainer.n_gpus_per_node",
        )
    max_model_len = _get(config, f"{rollout}.max_model_len")
    if max_model_len is not None and int(max_model_len) < seq_len:
        findings.problem(
            "batch",
            f"{rollout}.max_model_len={max_model_len} < prompt + response = {seq_len}",
            f"raise max_model_len to >= {seq_len} or leave it null",
        )
    val = f"{rollout}.val_kwargs"
    if bool(_get(config, f"{val}.do_sample", False)) and float(_get(config, f"{rollout}.temperature", 1.0)) <= 0:
        findings.problem(
            "batch",
            "validation samples (val_kwargs.do_sample) with rollout.temperature <= 0",
            "use a positive rollout.temperature",
        )


def _check_trainer_mode(config: DictConfig, findings: Findings, batch: int, mini: int) -> None:
    mode = str(_get(config, "trainer.v1.trainer_mode", "sync"))
    base = BASE_MODES.get(mode, mode)
    sync_step = int(_get(config, f"trainer.v1.{base}.parameter_sync_step", 1))
    if batch % sync_step:
        findings.problem(
            "batch",
            f"data.train_batch_size={batch} is not divisible by parameter_sync_step={sync_step}",
            "make train_batch_size a multiple of trainer.v1.<mode>.parameter_sync_step",
        )
    if base == "separate_async" and batch != sync_step * mini:
        findings.problem(
            "batch",
            f"separate_async needs train_batch_size == parameter_sync_step * "
            f"ppo_mini_batch_size ({batch} != {sync_step} * {mini})",
            "adjust one of the three",
        )
