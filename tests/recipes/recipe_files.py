"""Small data and model folders in the shapes the recipes read: verl rows (INTERFACES' row schema) in the parquet
names ``verl-pdai prepare-data`` writes, and a model folder of the offline Qwen2.5 tokenizer plus a config.json
(no weights: the dry run never loads them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from tests.conftest import qwen_tokenizer_dir

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "eprli_r1_distill_qwen_1p5b"
RECIPES = ("eprli_stage1", "eprli_stage2", "grpo_stage1", "grpo_stage2")
EVAL_FILES = ("aime2024", "math500", "amc", "minerva", "olympiadbench")
INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."


def verl_row(source: str, index: int, split: str, *, solution: str = "Add them. The sum is 5.") -> dict:
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": f"What is {index} + 5 - {index}? {INSTRUCTION}"}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": "5"},
        "extra_info": {
            "split": split,
            "index": index,
            "problem_id": f"{source}/{index:05d}",
            "reference_solution": solution,
        },
    }


def write_rows(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> Path:
    frame = pd.DataFrame(rows).drop(columns=list(drop))
    frame.to_parquet(path, index=False)
    return path


def make_data_dir(root: Path, train_rows: int = 160) -> Path:
    """train.parquet (>= one batch of 128 prompts) and the five eval files, 3 rows each."""
    root.mkdir(parents=True, exist_ok=True)
    write_rows(root / "train.parquet", [verl_row("deepscaler", i, "train") for i in range(train_rows)])
    for name in EVAL_FILES:
        write_rows(root / f"{name}.parquet", [verl_row(name, i, "test") for i in range(3)])
    return root


def make_model_dir(root: Path, max_positions: int = 131072) -> Path:
    """The tokenizer of DeepSeek-R1-Distill-Qwen-1.5B (Qwen2.5 vocabulary) and a small Qwen2 config.json."""
    root.mkdir(parents=True, exist_ok=True)
    for item in qwen_tokenizer_dir().iterdir():
        shutil.copy(item, root / item.name)
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": 151936,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": max_positions,
        "torch_dtype": "bfloat16",
        "bos_token_id": 151646,
        "eos_token_id": 151643,
        "tie_word_embeddings": False,
        "rope_theta": 10000.0,
    }
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def copy_recipe(root: Path) -> Path:
    """A private copy of the shipped recipe folder, to break on purpose."""
    return Path(shutil.copytree(RECIPE_DIR, root / "recipe"))
