"""One method, one seed of the learning benchmark: verl's own ``fit`` loop on CPU with real updates.

The taught base model (``teaching.py``) is loaded by verl's actor (``ActorRolloutRefWorker``, FSDP2 on CPU) and by
the rollout server (``demo.cpu_stack``); after every update the actor's weights are copied into the server's
model. Every ``eval_every`` steps (and at the last) the server's model (the current policy) is evaluated
unassisted on the held-out problems (``heldout.evaluate_unassisted``: no preview, no hint, k samples each).

``python -m verl_pdai.learning.run --method M --seed S --base DIR --steps N --out OUT`` writes ``OUT/run.json``;
``benchmarks/bench_learning.py`` runs one such process per (method, seed).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from verl_pdai.learning.methods import method_overrides, reference_share
from verl_pdai.learning.tasks import SumProblem, generate_problems, rows_without_reference, write_parquet


@dataclass(frozen=True)
class RunSizes:
    prompts: int = 4  # prompts per step (one PPO mini-batch)
    group: int = 4  # sessions per prompt
    response_length: int = 96
    prompt_length: int = 96
    min_tokens: int = 4  # the injection point: the first "\n\n" after the opening line
    lr: float = 1e-4  # Adam, the same for every method (the demo's rate; 5e-4 undid taught skills there)
    temperature: float = 0.6
    eval_every: int = 4
    k: int = 4  # held-out samples per problem
    train_size: int = 48
    heldout_size: int = 32


def compose_run_config(
    method: str, model_dir: Path, train_file: Path, out_dir: Path, steps: int, seed: int, sizes: RunSizes
) -> Any:
    from omegaconf import OmegaConf, open_dict

    from verl_pdai.actor.settings import apply_cpu_actor_settings
    from verl_pdai.demo.config import compose_ppo_trainer
    from verl_pdai.learning.teaching import HINT_PREFIX

    overrides = [
        f"actor_rollout_ref.model.path={model_dir}",
        f"data.train_files={train_file}",
        f"data.val_files={train_file}",
        f"data.train_batch_size={sizes.prompts}",
        "data.dataloader_num_workers=0",
        f"data.seed={seed}",
        f"data.max_prompt_length={sizes.prompt_length}",
        f"data.max_response_length={sizes.response_length}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={sizes.prompts}",
        f"actor_rollout_ref.actor.optim.lr={sizes.lr}",
        f"actor_rollout_ref.rollout.n={sizes.group}",
        f"actor_rollout_ref.rollout.response_length={sizes.response_length}",
        f"actor_rollout_ref.rollout.prompt_length={sizes.prompt_length}",
        f"actor_rollout_ref.rollout.temperature={sizes.temperature}",
        # one PPO epoch, one mini-batch: the old log-probs are the rollout's own (verl's bypass mode)
        "algorithm.rollout_correction.bypass_mode=true",
        f"trainer.total_training_steps={steps}",
        "trainer.total_epochs=1000",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        f"trainer.default_local_dir={out_dir / 'checkpoints'}",
        "trainer.logger=[file]",
        "trainer.project_name=verl_pdai_learning",
        f"trainer.experiment_name={method}_seed{seed}",
        *method_overrides(method),
    ]
    config = compose_ppo_trainer(overrides)
    with open_dict(config):
        if OmegaConf.select(config, "pdai", default=None) is not None:
            config.pdai.rollout.hint_prefix = HINT_PREFIX  # newlines do not survive a command-line override
            config.pdai.rollout.min_tokens = sizes.min_tokens
            config.pdai.rollout.seed = seed
    apply_cpu_actor_settings(config.actor_rollout_ref)
    return config


def _groups_with_signal(batch: Any) -> float:
    """Share of groups whose scalar rewards differ (verl's grpo: a binary reward, so outcome contrast)."""
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["uid", "rm_scores"])
    from verl.utils import tensordict_utils as tu

    uids = list(tu.get(data, "uid"))
    scores = [float(row.sum()) for row in data["rm_scores"].unbind()]
    groups: dict[str, set[float]] = {}
    for uid, score in zip(uids, scores, strict=True):
        groups.setdefault(str(uid), set()).add(round(score, 6))
    return sum(len(v) > 1 for v in groups.values()) / max(len(groups), 1)


def learning_trainer_class(base: type, evaluate: Callable[[int], dict[str, float]], eval_every: int) -> type:
    class LearningTrainer(base):  # type: ignore[misc, valid-type]
        """verl's trainer of the method, plus a held-out evaluation after the weights of a step are synced."""

        learning_evals: list[dict[str, float]]

        def on_step_end(self) -> None:
            super().on_step_end()  # the actor's weights reach the server here
            step = int(self.global_steps)
            if step % eval_every == 0 or step >= self.total_training_steps:
                self.learning_evals.append({"step": step, **evaluate(step)})

        def _update_actor(self, batch: Any, metrics: dict) -> Any:
            if "pdai/adv/groups_outcome_contrast" not in metrics:
                metrics["learning/groups_with_signal"] = _groups_with_signal(batch)
            return super()._update_actor(batch, metrics)

        def _get_n_gpus_for_throughput(self) -> int:
            return 1

    return LearningTrainer


def heldout_metrics(
    model: Any, tokenizer: Any, problems: Sequence[SumProblem], unsolved: set[str], sizes: RunSizes, seed: int
) -> dict[str, float]:
    from verl_pdai.learning.heldout import evaluate_unassisted

    result = evaluate_unassisted(
        model,
        tokenizer,
        problems,
        k=sizes.k,
        temperature=sizes.temperature,
        max_new_tokens=sizes.response_length,
        seed=seed,
    )
    hard = [result.pass_rates[p] for p in unsolved]
    out = {
        "heldout_acc": result.accuracy,
        "heldout_acc_initially_unsolved": sum(hard) / len(hard) if hard else 0.0,
        "eval_s": result.seconds,
    }
    out.update({f"heldout_acc/{kind}": acc for kind, acc in result.by_kind().items()})
    return out


def run_method(
    method: str,
    seed: int,
    base_dir: Path,
    steps: int,
    out_dir: Path,
    sizes: RunSizes,
    unsolved: set[str],
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.trainer.ppo.v1 import get_trainer_cls

    import verl_pdai.plugin.trainer  # noqa: F401  registers the pdai modes
    from verl_pdai.demo.cpu_stack import attach_cpu_stack
    from verl_pdai.demo.measure import weight_change
    from verl_pdai.demo.run import ray_and_transfer_queue
    from verl_pdai.learning.heldout import evaluate_unassisted

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    train, heldout = generate_problems(seed, sizes.train_size, sizes.heldout_size)
    share = reference_share(method)
    dropped = rows_without_reference(len(train), share, seed) if share < 1 else []
    train_file = write_parquet(train, out_dir / "train.parquet", without_reference=dropped)
    model_dir = base_dir / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype="float32").eval()
    base_weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = compose_run_config(method, model_dir, train_file, out_dir, steps, seed, sizes)
    metrics_file = out_dir / "metrics.jsonl"
    metrics_file.unlink(missing_ok=True)
    os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics_file)

    def evaluate(step: int) -> dict[str, float]:
        found = heldout_metrics(model, tokenizer, heldout, unsolved, sizes, seed)
        say(
            f"[{method} seed {seed}] step {step}: held-out unassisted {found['heldout_acc']:.3f}, "
            f"initially unsolved {found['heldout_acc_initially_unsolved']:.3f}"
        )
        return found

    with ray_and_transfer_queue():
        trainer_cls = learning_trainer_class(
            get_trainer_cls(config.trainer.v1.trainer_mode), evaluate, sizes.eval_every
        )
        trainer = trainer_cls(config)
        trainer.learning_evals = []
        trainer.tokenizer, trainer.processor = tokenizer, None
        trainer._init_dataloader()
        trainer._init_dump_executor()
        trainer.global_steps = 0
        stack = attach_cpu_stack(trainer, config, tokenizer, model, seed=seed, seed_by_index=True)
        trainer.on_init_end()
        trainer.fit(stack.manager())
    final_train = evaluate_unassisted(
        model,
        tokenizer,
        train,
        k=sizes.k,
        temperature=sizes.temperature,
        max_new_tokens=sizes.response_length,
        seed=seed,
    )
    per_step = _per_step_metrics(metrics_file)
    last = trainer.learning_evals[-1] if trainer.learning_evals else {}
    record = {
        "method": method,
        "seed": seed,
        "heldout_acc": last.get("heldout_acc", float("nan")),
        "heldout_acc_initially_unsolved": last.get("heldout_acc_initially_unsolved", float("nan")),
        "train_unassisted_acc": final_train.accuracy,
        "train_unassisted_by_kind": final_train.by_kind(),
        "rollouts": steps * sizes.prompts * sizes.group,
        "actor_updates": stack.actor.updates,
        # how far the served model (the one evaluated) moved from the base: largest relative change of a tensor
        "served_weight_change": weight_change(base_weights, model).largest,
        "wall_s": time.perf_counter() - started,
        "eval_s": sum(e.get("eval_s", 0.0) for e in trainer.learning_evals) + final_train.seconds,
        "curve": [_curve_point(e, per_step) for e in trainer.learning_evals],
        "per_step": per_step,
        "sizes": asdict(sizes),
    }
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))
    return record


STEP_METRICS = {
    "intervention_rate": "pdai/intervention_rate",
    "hint_level": "pdai/hint_level_mean",
    "preview_pass_rate": "pdai/preview_pass_rate",
    "score_mean": "critic/score/mean",
    "update_s": "timing_s/update_actor",
    "step_s": "timing_s/step",
}


def _per_step_metrics(metrics_file: Path) -> list[dict[str, float]]:
    rows = []
    if not metrics_file.exists():
        return rows
    for line in metrics_file.read_text(errors="replace").splitlines():
        try:  # a torn line (verl's FileLogger opens its file with "wb": a second logger on the path overwrites)
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        data = record.get("data", record)
        step = int(record.get("step", data.get("training/global_step", len(rows) + 1)))
        row: dict[str, float] = {"step": step}
        for name, key in STEP_METRICS.items():
            row[name] = float(data.get(key, 0.0))
        signal = data.get("pdai/adv/groups_outcome_contrast", data.get("learning/groups_with_signal"))
        row["groups_with_signal"] = float(signal) if signal is not None else float("nan")
        rows.append(row)
    return rows


def _curve_point(evaluation: dict[str, float], per_step: list[dict[str, float]]) -> dict[str, float]:
    point = dict(evaluation)
    at = [row for row in per_step if row["step"] == evaluation["step"]]
    if at:
        point.update({k: v for k, v in at[0].items() if k != "step"})
    return point


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--base", type=Path, required=True, help="the seed's base folder (model/, step0.json)")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sizes", default="{}", help="RunSizes fields as JSON")
    args = parser.parse_args(argv)
    sizes = RunSizes(**json.loads(args.sizes))
    step0 = json.loads((args.base / "step0.json").read_text())
    unsolved = {pid for pid, rate in step0["heldout_pass_rates"].items() if rate == 0.0}
    run_method(args.method, args.seed, args.base, args.steps, args.out, sizes, unsolved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
