"""Reward manager ``pdai_stepwise``: verl's reward loop meets the stepwise scorer.

Select it with ``reward.reward_manager.name=pdai_stepwise`` (after ``pip install verl-pdai``) or with
``reward.reward_manager.source=importlib reward.reward_manager.module.path=pkg://verl_pdai.plugin.reward_manager
reward.reward_manager.name=PdaiStepwiseRewardManager``. Configure it under ``reward.reward_kwargs``
(see ``verl_pdai.core.scoring.StepwiseConfig``); unknown keys fail when the manager is built.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from verl_pdai.core.bounded import shared_scorer
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.core.tokens import TokenTextMapper, char_ends_to_token_ends
from verl_pdai.plugin.fields import HINT_SPANS_FIELD, extra_info_of, reference_solution_of

NAME = "pdai_stepwise"


@register(NAME)
class PdaiStepwiseRewardManager(RewardManagerBase):
    """Outcome + capped process reward per response, hint spans excluded, step ends mapped to tokens."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        reward_cfg = config.get("reward", {}) if hasattr(config, "get") else {}
        self.scoring_config = StepwiseConfig.from_mapping(reward_cfg.get("reward_kwargs") or {})
        self.scorer = shared_scorer(self.scoring_config)
        self.mapper = TokenTextMapper(tokenizer)

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-sequence outputs: the reward belongs to the last sequence, as in verl's managers
        response_ids = item.batch["responses"]
        valid_length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        ids = response_ids[:valid_length].tolist()
        rollout_fields = item.non_tensor_batch.get("tool_extra_fields") or {}
        extra_info = item.non_tensor_batch.get("extra_info") or {}
        # the running loop, not the one captured at construction: a manager may outlive its first loop
        spans = await asyncio.get_running_loop().run_in_executor(
            None, self.mapper.decode_model_written, ids, rollout_fields.get(HINT_SPANS_FIELD)
        )
        reward_model = item.non_tensor_batch.get("reward_model")
        # a row without a ground truth scores no outcome (steps still count) rather than failing the batch
        ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        result = await self.scorer.ascore(
            [span.text for span in spans], ground_truth, reference_solution_of(extra_info)
        )
        token_ends = char_ends_to_token_ends(spans, result.step_char_ends)
        return {"reward_score": result.score, "reward_extra_info": extra_info_of(result, token_ends)}
