"""Score sample responses with verl-pdai's checker through the three routes a verl project can use.

1. ``pdai_stepwise``: verl's own reward-loop worker (``RewardLoopWorker``) built from this project's config
   (``config/reuse_reward.yaml``), the manager found by name in verl's registry;
2. the stock route: verl's ``naive`` manager calling ``verl_pdai.api.compute_score`` as a custom reward function;
3. plain Python: ``verl_pdai.api.score``.

    python score.py --tokenizer DIR [--samples samples.jsonl]

``DIR`` is any Hugging Face tokenizer folder (the policy's). Prints one row per sample and exits 1 when a route
disagrees with a sample's expected verdict, so it doubles as an installation check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STOCK_ROUTE = [
    "reward.reward_manager.name=naive",
    "reward.custom_reward_function.path=pkg://verl_pdai.api",
    "reward.custom_reward_function.name=compute_score",
    # the stock route reads its settings here (verl hands reward.reward_kwargs to no custom function)
    "+reward.custom_reward_function.reward_kwargs.thinking=auto",
]


def compose(tokenizer: Path, overrides: list[str]) -> Any:
    """This project's config, composed as verl's main_ppo composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl

    with initialize_config_dir(config_dir=str(HERE / "config"), version_base=None):
        config = hydra_compose("reuse_reward", overrides=[f"actor_rollout_ref.model.path={tokenizer}", *overrides])
    return migrate_legacy_reward_impl(config)


def as_sample(tokenizer: Any, row: dict) -> Any:
    """One sample as verl's agent loop hands it to the reward loop: a DataProto of length 1."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer.encode(row["prompt"], add_special_tokens=False)
    response = tokenizer.encode(row["response"], add_special_tokens=False)
    input_ids = torch.tensor([prompt + response])
    tensors = {
        "prompts": torch.tensor([prompt]),
        "responses": torch.tensor([response]),
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "position_ids": torch.arange(input_ids.shape[1]).unsqueeze(0),
    }
    fields = {
        "data_source": row["data_source"],
        "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]},
        "extra_info": {"question": row["prompt"]},
    }
    return DataProto.from_dict(tensors=tensors, non_tensors={k: np.array([v], dtype=object) for k, v in fields.items()})


def verl_route(tokenizer_dir: Path, tokenizer: Any, rows: list[dict], overrides: list[str]) -> list[float]:
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.utils.ray_utils import get_event_loop

    worker = RewardLoopWorker(compose(tokenizer_dir, overrides))
    loop = get_event_loop()
    return [
        float(
            loop.run_until_complete(worker.compute_score_batch(as_sample(tokenizer, row)))[0]["reward_extra_info"][
                "acc"
            ]
        )
        for row in rows
    ]


def python_route(rows: list[dict]) -> list[float]:
    from verl_pdai.api import score

    return [score(row["response"], row["ground_truth"], problem=row["prompt"]).acc for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="a Hugging Face tokenizer folder")
    parser.add_argument("--samples", type=Path, default=HERE / "samples.jsonl")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(args.tokenizer))
    rows = [json.loads(line) for line in args.samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    routes = {
        "pdai_stepwise": verl_route(args.tokenizer, tokenizer, rows, []),
        "naive+compute_score": verl_route(args.tokenizer, tokenizer, rows, STOCK_ROUTE),
        "api.score": python_route(rows),
    }
    print(f"{'#':>2} {'expected':>8} " + " ".join(f"{name:>19}" for name in routes))
    wrong = 0
    for index, row in enumerate(rows):
        verdicts = [acc == 1.0 for acc in (accs[index] for accs in routes.values())]
        wrong += sum(verdict != row["correct"] for verdict in verdicts)
        print(f"{index:>2} {row['correct']!s:>8} " + " ".join(f"{verdict!s:>19}" for verdict in verdicts))
    heavy = sorted(m for m in ("matplotlib", "transfer_queue", "verl_pdai.plugin.trainer") if m in sys.modules)
    print(f"{wrong} wrong verdict(s) over {len(rows)} samples x {len(routes)} routes; heavy modules loaded: {heavy}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
