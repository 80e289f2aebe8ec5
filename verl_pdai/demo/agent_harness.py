"""Drive agent loops through verl's own ``AgentLoopWorker`` code (registry lookup, hydra instantiation,
padding, reward, batch assembly) with only the LLM server faked, as verl's ``*_on_cpu.py`` tests do.

``AgentLoopWorker.__init__`` starts LLM server clients and Ray plumbing that need GPUs; the harness borrows
the worker's methods that run a session and post-process it, and sets the few attributes they read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
from verl.utils.dataset.rl_dataset import RLHFDataset


class LocalRewardHandle:
    """Stands in for a reward-loop Ray actor handle: ``handle.compute_score.remote(data)`` is awaitable."""

    def __init__(self, reward_worker: Any) -> None:
        self.compute_score = type("_Method", (), {"remote": staticmethod(reward_worker.compute_score)})()


class HarnessWorker:
    _run_agent_loop = AgentLoopWorker._run_agent_loop
    _agent_loop_postprocess = AgentLoopWorker._agent_loop_postprocess
    _postprocess = AgentLoopWorker._postprocess
    _compute_multi_modal_inputs = AgentLoopWorker._compute_multi_modal_inputs
    _compute_position_ids = AgentLoopWorker._compute_position_ids
    _get_mm_processor_kwargs = AgentLoopWorker._get_mm_processor_kwargs
    _compute_score = AgentLoopWorker._compute_score
    _compute_teacher_logprobs = AgentLoopWorker._compute_teacher_logprobs
    _pad_token_ids = AgentLoopWorker._pad_token_ids
    distillation_enabled = False

    def __init__(self, config: Any, tokenizer: Any, server: Any, reward_worker: Any = None) -> None:
        self.config = config
        self.rollout_config = config.actor_rollout_ref.rollout
        self.tokenizer = tokenizer
        self.processor = None
        self.llm_client = server
        self.hf_model_type = None
        self.dataset_cls = RLHFDataset
        self.tools = []
        self.mm_processor_kwargs = {}
        self.reward_loop_worker_handles = [LocalRewardHandle(reward_worker)] if reward_worker is not None else None

    async def run_group(
        self,
        uid: str,
        n: int,
        row: dict[str, Any],
        sampling_params: dict[str, Any] | None = None,
        agent_name: str = "pdai_hint",
        validate: bool = False,
        session_ids: bool = True,
    ) -> list[Any]:
        """All n sessions of one prompt started together, as verl's v1 rollout worker does."""
        params = dict(sampling_params or {"temperature": 1.0, "logprobs": True})
        tasks = []
        for i in range(n):
            trajectory = {"step": 0, "sample_index": i, "rollout_n": i, "validate": validate}
            extra = {"session_id": i} if session_ids else {}
            tasks.append(
                asyncio.create_task(
                    self._run_agent_loop(
                        params, trajectory, agent_name=agent_name, trace=False, uid=uid, **extra, **row
                    )
                )
            )
        # like verl's _run_prompt: every session settles before the group's outcome is known
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return list(results)

    def batch(self, outputs: list[Any]) -> Any:
        """verl's batch assembly (``_postprocess``): padded tensors and extra fields as numpy columns."""
        non_tensor = {"index": np.arange(len(outputs), dtype=object)}
        return self._postprocess(outputs, input_non_tensor_batch=non_tensor)


def math_row(
    problem: str, answer: str, solution: str | None, prior: dict | None = None, split: str = "train"
) -> dict[str, Any]:
    """A dataset row in verl's schema, as the rollout worker hands it to an agent loop."""
    row: dict[str, Any] = {
        "raw_prompt": [{"role": "user", "content": problem}],
        "data_source": "pdai_test",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": split, "reference_solution": solution} if solution else {"split": split},
    }
    if prior is not None:
        row["pdai_prior"] = prior
    return row
