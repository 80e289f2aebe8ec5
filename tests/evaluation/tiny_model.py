"""A tiny random Qwen2 causal LM with the real Qwen2.5 tokenizer, saved as a Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verl_pdai.demo.tiny_model_server import build_tiny_model


def save_tiny_model(folder: Path, tokenizer: Any, seed: int = 0) -> Any:
    """Save model + tokenizer into ``folder``; returns the model."""
    model = build_tiny_model(len(tokenizer), seed=seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model
