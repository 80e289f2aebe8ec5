"""Reward manager ``pdai_stepwise``: verl's reward loop meets the stepwise scorer.

Select it with ``reward.reward_manager.name=pdai_stepwise`` (after ``pip install verl-pdai``) or with
``reward.reward_manager.source=importlib reward.reward_manager.module.path=pkg://verl_pdai.plugin.reward_manager
reward.reward_manager.name=PdaiStepwiseRewardManager``. Configure it under ``reward.reward_kwargs``: the
``StepwiseConfig`` keys and the data_source routing key ``verl_sources`` (``verl_pdai.core.reward_settings``);
unknown keys, bad values and keys under ``reward.custom_reward_function.reward_kwargs`` (which it never reads) fail
when the manager is built. Rows of a ``verl_sources`` data source (code, search QA by default) go to verl's
``default_compute_score``; every other row gets the stepwise checker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from verl_pdai.core.answers import accepted_answers
from verl_pdai.core.bounded import shared_scorer
from verl_pdai.core.reward_settings import manager_settings
from verl_pdai.core.scoring import ScoreResult
from verl_pdai.core.tokens import DecodedSpan, TokenTextMapper, char_ends_to_token_ends, normalize_spans
from verl_pdai.plugin.fields import HINT_SPANS_FIELD, extra_info_of, reference_solution_of
from verl_pdai.plugin.verl_default import verl_default_result

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
        del reward_router_address, reward_model_tokenizer  # a reward model has no part in the checker
        reward_cfg = config.get("reward", {}) if hasattr(config, "get") else {}
        custom = reward_cfg.get("custom_reward_function") or {}
        self.settings = manager_settings(_plain(reward_cfg.get("reward_kwargs")), _plain(custom.get("reward_kwargs")))
        self.scoring_config = self.settings.stepwise
        self.scorer = shared_scorer(self.scoring_config)
        self.mapper = TokenTextMapper(tokenizer)

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-sequence outputs: the reward belongs to the last sequence, as in verl's managers
        response_ids = item.batch["responses"]
        response_length = response_ids.shape[-1]
        attention = item.batch["attention_mask"]
        valid_length = int(attention[-response_length:].sum())
        ids = response_ids[:valid_length].tolist()
        prompt_ids = item.batch["prompts"] if "prompts" in item.batch.keys() else None
        prompt = [] if prompt_ids is None else prompt_ids[-int(attention[:-response_length].sum()) :].tolist()
        rollout_fields = item.non_tensor_batch.get("tool_extra_fields") or {}
        extra_info = item.non_tensor_batch.get("extra_info") or {}
        reward_model = item.non_tensor_batch.get("reward_model")
        # a row without a ground truth scores no outcome (steps still count) rather than failing the batch
        ground_truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        data_source = item.non_tensor_batch.get("data_source")
        if not self.settings.routing.uses_stepwise(data_source):
            result = await asyncio.get_running_loop().run_in_executor(
                None, self._verl_default, data_source, ids, ground_truth, extra_info
            )
            return {"reward_score": result.score, "reward_extra_info": extra_info_of(result, [])}
        hint_spans = rollout_fields.get(HINT_SPANS_FIELD)
        # the running loop, not the one captured at construction: a manager may outlive its first loop
        spans, given = await asyncio.get_running_loop().run_in_executor(None, self._texts, ids, hint_spans, prompt)
        # any accepted answer counts: prepared rows keep the first in ground_truth, all in extra_info.answers
        ground_truth = accepted_answers(ground_truth, extra_info) or ground_truth
        result = await self.scorer.ascore(
            [span.text for span in spans], ground_truth, reference_solution_of(extra_info), given_texts=given
        )
        token_ends = char_ends_to_token_ends(spans, result.step_char_ends)
        return {"reward_score": result.score, "reward_extra_info": extra_info_of(result, token_ends)}

    def _verl_default(self, source: object, ids: list[int], ground_truth: object, extra_info: object) -> ScoreResult:
        """A non-math row, graded as verl's stock manager would: the whole decoded response."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return verl_default_result(source, text, ground_truth, extra_info)

    def _texts(self, ids: list[int], hint_spans: object, prompt_ids: list[int]) -> tuple[list[DecodedSpan], list[str]]:
        """The model-written spans of the response, and what the model was shown: the prompt, then each hint
        (their numbers earn no key credit)."""
        spans = self.mapper.decode_model_written(ids, hint_spans)
        hints = [self.mapper.decode(ids[start:end], start).text for start, end in normalize_spans(hint_spans, len(ids))]
        prompt = self.tokenizer.decode(prompt_ids, skip_special_tokens=True) if prompt_ids else ""
        return spans, [prompt, *hints]


def _plain(value: Any) -> Any:
    """A config section as plain Python values (verl's config is an OmegaConf tree)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value
