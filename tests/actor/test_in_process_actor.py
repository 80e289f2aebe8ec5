"""verl's own actor worker (``ActorRolloutRefWorker``, FSDP2) updating a tiny model on CPU through
``verl_pdai.actor``: every parameter moves, tokens outside ``response_mask`` (hint spans, padding) have no effect
at all on the update, one trained token's advantage does, and the weight sync serves exactly the actor's weights.
The probe runs in its own process: verl's platform choice is process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import qwen_tokenizer_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("actor_model")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "tests.actor.actor_probe", str(folder), str(qwen_tokenizer_dir())],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_update_moves_every_parameter_tensor(probe: dict) -> None:
    assert probe["updates"] == 1
    assert probe["tensors"] > 10
    assert probe["changed_from_initial"] == probe["tensors"]


def test_masked_tokens_do_not_touch_the_update(probe: dict) -> None:
    # advantages and old log-probs changed on every response_mask == 0 token only: bit-identical weights
    assert probe["masked_only_max_diff"] == 0.0


def test_one_trained_token_changes_the_update(probe: dict) -> None:
    assert probe["one_token_max_diff"] > 0.0


def test_the_weight_sync_serves_exactly_the_actors_weights(probe: dict) -> None:
    assert probe["served_max_diff"] == 0.0
    assert probe["weight_version"] == 7


def test_the_actors_log_probs_are_the_models(probe: dict) -> None:
    # packed sequences (remove-padding) + sdpa in fp32 against an HF forward of the padded rows: equal to float
    # rounding (a position or sequence mix-up in the packing moves them by far more)
    assert probe["log_prob_gap"] < 1e-4
