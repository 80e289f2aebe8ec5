"""verl's own config classes and validation on the composed recipe, the way ``main_ppo`` and the workers use them:
``migrate_legacy_reward_impl``, ``validate_config`` (as ``main_ppo.main`` calls it), then ``omega_conf_to_dataclass``
on each section verl converts in its workers and trainer. The model config (tokenizer, ``config.json``) is built
only from a local model folder: the dry run never downloads."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from verl_pdai.recipes.findings import Findings

# sections verl converts with omega_conf_to_dataclass (trainer_base, engine_workers, agent_loop, skip_manager)
SECTIONS = (
    "actor_rollout_ref.actor",
    "actor_rollout_ref.rollout",
    "actor_rollout_ref.rollout.checkpoint_engine",
    "distillation",
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if len(text) < 2000 else text[:300]}"


def _convert(findings: Findings, name: str, build: Callable[[], object]) -> object | None:
    try:
        return build()
    except Exception as exc:
        findings.problem(
            "verl-config",
            f"{name} does not convert to verl's config class: {_first_line(exc)}",
            f"fix the key or value named above in {name}",
        )
        return None


def _ref_section(config: DictConfig) -> DictConfig:
    """The ref section as ``ActorRolloutRefWorker.init_model`` rewrites it before converting."""
    ref = OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.ref, resolve=True))
    with open_dict(ref):
        ref.ppo_mini_batch_size = config.actor_rollout_ref.actor.ppo_mini_batch_size
        ref.ppo_micro_batch_size = ref.pop("log_prob_micro_batch_size", None)
        ref.ppo_micro_batch_size_per_gpu = ref.pop("log_prob_micro_batch_size_per_gpu", None)
        ref.use_dynamic_bsz = ref.pop("log_prob_use_dynamic_bsz", False)
        ref.ppo_max_token_len_per_gpu = ref.pop("log_prob_max_token_len_per_gpu", None)
    return ref


def check_verl_config(config: DictConfig, findings: Findings) -> None:
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.utils.skip.config import SkipManagerConfig

    migrate_legacy_reward_impl(config)
    with warnings.catch_warnings():  # need_critic warns that GRPO-style estimators disable the critic
        warnings.simplefilter("ignore")
        use_ref, use_critic = need_reference_policy(config), need_critic(config)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # verl prints a success line; the findings say it
            validate_config(config=config, use_reference_policy=use_ref, use_critic=use_critic)
    except Exception as exc:
        findings.problem(
            "verl-validate",
            f"verl's validate_config (main_ppo) fails: {_first_line(exc)}",
            "fix the setting it names (the batch checks above usually say which)",
        )
    for section in SECTIONS:
        _convert(findings, section, lambda s=section: omega_conf_to_dataclass(OmegaConf.select(config, s)))
    if use_ref:
        _convert(findings, "actor_rollout_ref.ref", lambda: omega_conf_to_dataclass(_ref_section(config)))
    if use_critic:
        _convert(findings, "critic", lambda: omega_conf_to_dataclass(config.critic))
    _convert(findings, "skip", lambda: omega_conf_to_dataclass(config.skip, dataclass_type=SkipManagerConfig))
    findings.summary["roles"] = f"reference policy {use_ref}, critic {use_critic}"
    check_model(config, findings)


def check_model(config: DictConfig, findings: Findings) -> None:
    """HFModelConfig (tokenizer, chat template, hf config) from a local folder; else say it was not checked."""
    path_text = str(OmegaConf.select(config, "actor_rollout_ref.model.path"))
    path = Path(path_text).expanduser()
    if not path.is_dir():
        findings.skip(
            f"model: no model at {path_text} (a hub id or a missing folder; tokenizer, chat template and "
            "context length are checked when MODEL_PATH is a local model folder)"
        )
        return
    if not (path / "config.json").is_file():
        findings.problem("model", f"{path} has no config.json", "point MODEL_PATH at a Hugging Face model folder")
        return
    from verl.utils.config import omega_conf_to_dataclass

    model = _convert(
        findings, "actor_rollout_ref.model", lambda: omega_conf_to_dataclass(config.actor_rollout_ref.model)
    )
    if model is None:
        return
    from verl.workers.rollout.utils import get_max_position_embeddings

    seq_len = int(config.data.max_prompt_length) + int(config.data.max_response_length)
    limit = get_max_position_embeddings(model.hf_config)  # type: ignore[attr-defined]
    if limit is not None and limit < seq_len:
        findings.problem(
            "model",
            f"the model's context ({limit} positions) < prompt + response = {seq_len}",
            "shorten data.max_response_length or use a model with a longer context",
        )
    if not getattr(model.tokenizer, "chat_template", None):  # type: ignore[attr-defined]
        findings.problem(
            "model",
            f"the tokenizer at {path} has no chat template: verl applies it to every prompt",
            "use the model's own tokenizer files or set actor_rollout_ref.model.custom_chat_template",
        )
    findings.summary["model config"] = f"{path} ({type(model.hf_config).__name__}, context {limit})"  # type: ignore[attr-defined]
