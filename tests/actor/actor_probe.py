"""Run by ``test_in_process_actor.py`` in its own process (verl's platform is process-wide): builds verl's actor
worker on CPU three times from the same tiny model, updates each once on a batch that differs only where the test
says, syncs one into a plain HF model, and prints what it measured as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def main(folder: Path, tokenizer_dir: Path) -> None:
    from omegaconf import OmegaConf
    from tensordict import TensorDict
    from transformers import AutoTokenizer
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.padding import left_right_2_no_padding, no_padding_2_padding

    from verl_pdai.actor.in_process import InProcessActor, InProcessWeightSync
    from verl_pdai.actor.settings import apply_cpu_actor_settings
    from verl_pdai.demo.config import compose_ppo_trainer
    from verl_pdai.demo.tiny_model_server import build_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = build_tiny_model(len(tokenizer), seed=3, max_positions=64, hidden_size=64)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    config = compose_ppo_trainer([f"actor_rollout_ref.model.path={folder}", "actor_rollout_ref.actor.optim.lr=1e-3"])
    apply_cpu_actor_settings(config.actor_rollout_ref, micro_batch_size=2)  # two micro-batches: accumulation
    # fp32 throughout (verl's default is bf16 autocast), so the log-prob check below can be exact
    precision = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    OmegaConf.update(config.actor_rollout_ref, "actor.fsdp_config.mixed_precision", precision, force_add=True)

    gen = torch.Generator().manual_seed(0)
    batch, prompt, response = 4, 6, 10
    ids = torch.randint(0, 5000, (batch, prompt + response), generator=gen)
    attention = torch.ones_like(ids)
    attention[0, :2] = 0  # a left-padded prompt
    attention[1, -3:] = 0  # a right-padded response
    response_mask = attention[:, prompt:].clone()
    response_mask[2, 3:6] = 0  # a hint span: context, not the model's tokens
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits[:, prompt - 1 : -1].float()
    old = torch.log_softmax(logits, -1).gather(-1, ids[:, prompt:].unsqueeze(-1)).squeeze(-1)
    advantages = torch.randn(batch, response, generator=gen)
    masked = response_mask == 0

    def batch_td(adv: torch.Tensor, old_log_probs: torch.Tensor) -> TensorDict:
        td = TensorDict(
            {
                "input_ids": ids.clone(),
                "attention_mask": attention.clone(),
                "position_ids": (attention.cumsum(-1) - 1).clamp(min=0),
                "prompts": ids[:, :prompt].clone(),
                "responses": ids[:, prompt:].clone(),
                "response_mask": response_mask.clone(),
                "old_log_probs": old_log_probs.clone(),
                "advantages": adv.clone(),
            },
            batch_size=batch,
        )
        return left_right_2_no_padding(td)

    def update(adv: torch.Tensor, old_log_probs: torch.Tensor) -> InProcessActor:
        td = batch_td(adv, old_log_probs)
        tu.assign_non_tensor(
            td,
            global_batch_size=batch,
            mini_batch_size=batch,
            epochs=1,
            seed=0,
            calculate_entropy=False,
            dataloader_kwargs={"shuffle": False},
            temperature=1.0,
            distillation_use_topk=False,
            distillation_only=False,
        )
        actor = InProcessActor(config.actor_rollout_ref)
        actor.update_actor(td)
        return actor

    # the actor's own log-probs (packed sequences, sdpa) against a plain HF forward of each padded row
    fresh = InProcessActor(config.actor_rollout_ref)
    td = batch_td(advantages, old)
    tu.assign_non_tensor(td, calculate_entropy=False, compute_loss=False, temperature=1.0)
    output = fresh.compute_log_prob(td)
    engine_log_probs = no_padding_2_padding(output["log_probs"], td)
    log_prob_gap = float(((engine_log_probs - old).abs() * response_mask).max())

    base = update(advantages, old)
    noise = torch.randn(batch, response, generator=gen) * 5
    masked_only = update(torch.where(masked, advantages + noise, advantages), torch.where(masked, old - 1.0, old))
    one_token = advantages.clone()
    one_token[3, 4] += 1.0
    changed_token = update(one_token, old)

    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    a, b, c = base.full_state(), masked_only.full_state(), changed_token.full_state()
    names = sorted(k for k in a if k in initial)
    sync = InProcessWeightSync(base, model)
    sync.update_weights(7)
    served = model.state_dict()
    print(
        json.dumps(
            {
                "tensors": len(names),
                "changed_from_initial": sum(not torch.equal(a[k], initial[k]) for k in names),
                "masked_only_max_diff": max(float((a[k] - b[k]).abs().max()) for k in names),
                "one_token_max_diff": max(float((a[k] - c[k]).abs().max()) for k in names),
                "served_max_diff": max(float((served[k] - a[k]).abs().max()) for k in names),
                "weight_version": sync.weight_version(),
                "updates": base.updates,
                "log_prob_gap": log_prob_gap,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
