"""Agent loop ``pdai_hint``: early preview and mid-generation hint injection, token in, token out.

Select it with ``actor_rollout_ref.rollout.agent.default_agent_loop=pdai_hint``; settings live under
``pdai.rollout`` (``InjectionConfig``) and ``pdai.policy`` (``PolicyConfig``). Per prompt (``uid``):

* sessions ``0..k-1`` (preview) generate unassisted to the end; their final answer is verified (bounded,
  in the scoring worker processes) and published to the group the moment they finish;
* sessions ``k..n-1`` generate ``min_tokens`` tokens, then up to the next step boundary (a stop string),
  decide from what the preview has published so far, append the hint tokens (``response_mask`` 0, log-prob
  0.0) and continue within the remaining response budget. Nobody waits unless ``blocking`` is set. A session
  whose own text has already closed its thinking (``</think>``) is not hinted (``past_thinking``): hints go
  inside the thinking part only.

Previews are graded exactly as the reward grades (its ``StepwiseConfig`` from ``reward.reward_kwargs``, see
``preview_checker_config``). Only prompts the pdai trainer marked are ever hinted (see ``is_training_prompt``):
validation never hints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from typing import Any, ClassVar
from uuid import uuid4

from omegaconf import DictConfig, ListConfig, OmegaConf
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register

from verl_pdai.core.answers import accepted_answers, split_thinking
from verl_pdai.core.bounded import shared_scorer
from verl_pdai.core.hints import HintSet, build_hints
from verl_pdai.core.injection import Decision, InjectionConfig, decide, preview_checker_config, prior_of
from verl_pdai.core.policy import InterventionPolicy, PolicyConfig
from verl_pdai.core.preview import PreviewBoard, PreviewSnapshot
from verl_pdai.core.references import HARVESTED
from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.core.tokens import TokenTextMapper
from verl_pdai.plugin import fields as F

logger = logging.getLogger("verl_pdai")

NAME = "pdai_hint"


@functools.lru_cache(maxsize=8)
def _generation_config_eos(model_path: str | None) -> frozenset[int]:
    """EOS ids of the model's generation config (vLLM stops at all of them), read once per path."""
    if not model_path:
        return frozenset()
    try:
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(model_path, local_files_only=True).eos_token_id
    except Exception:  # no generation config (or a remote path): the tokenizer's EOS alone
        return frozenset()
    return frozenset([eos] if isinstance(eos, int) else (eos or []))


def eos_token_ids(tokenizer: Any, model_path: str | None) -> frozenset[int]:
    """Every token id that ends a sequence: the tokenizer's EOS and the generation config's."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = {eos} if isinstance(eos, int) else set(eos or [])
    return frozenset(ids | _generation_config_eos(model_path))


def is_training_prompt(kwargs: dict[str, Any]) -> bool:
    """Hints are for training prompts only: those the pdai trainer marked with ``pdai_prior``.

    verl does not tell an agent loop whether it runs validation, and the pdai trainer modes inject the prior into
    training batches only. A data-set column (``extra_info.split``) is never trusted: users put train rows in
    validation files. A prompt without the mark is treated as validation and never hinted (the safe side).
    """
    return kwargs.get(F.PRIOR_FIELD) is not None


def _plain(config: Any, key: str) -> Any:
    """``key`` of verl's config as plain Python values (None when absent)."""
    value = OmegaConf.select(config, key, default=None)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


def reward_checker_config(config: Any) -> StepwiseConfig:
    """The reward's checker settings (``reward.reward_kwargs`` of ``pdai_stepwise``), which previews are graded with."""
    return preview_checker_config(
        _plain(config, "reward.reward_manager.name"),
        _plain(config, "reward.reward_kwargs"),
        _plain(config, "reward.custom_reward_function.path"),
        _plain(config, "reward.custom_reward_function.reward_kwargs"),
    )


@dataclasses.dataclass
class _Response:
    """The response under construction: ids, mask (1 model / 0 hint) and log-probs, kept in step."""

    ids: list[int] = dataclasses.field(default_factory=list)
    mask: list[int] = dataclasses.field(default_factory=list)
    logprobs: list[float] = dataclasses.field(default_factory=list)
    hint_span: tuple[int, int] | None = None
    logprobs_complete: bool = True  # every model token came with its log-prob
    # what the server reported with its outputs (verl's client adds the weight versions the tokens came from)
    server_fields: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add_server_fields(self, fields: dict[str, Any] | None) -> None:
        """Keep the server's extra fields; the session's weight versions span all of its calls, as verl's
        off-policy staleness metrics expect (min of the starts, max of the ends)."""
        fields = dict(fields or {})
        for key, pick in (("min_global_steps", min), ("max_global_steps", max)):
            old, new = self.server_fields.get(key), fields.get(key)
            if old is not None and new is not None:
                fields[key] = pick(old, new)
            elif new is None and key in self.server_fields:
                fields[key] = old
        self.server_fields.update(fields)

    def add(self, ids: list[int], logprobs: list[float] | None, model_written: bool) -> None:
        self.ids += ids
        self.mask += [1 if model_written else 0] * len(ids)
        if model_written and ids and not (logprobs and len(logprobs) == len(ids)):
            # a placeholder 0.0 on a model token would enter the rollout-vs-train ratio as if real
            self.logprobs_complete = False
        self.logprobs += list(logprobs) if logprobs and len(logprobs) == len(ids) else [0.0] * len(ids)


@register(NAME)
class PdaiHintAgentLoop(AgentLoopBase):
    """Preview + mid-generation hint injection. One instance per session; shared state is per process."""

    board: ClassVar[PreviewBoard] = PreviewBoard()
    # verl builds one loop per session from the same config object: parse the pdai sections once per config
    _parsed: ClassVar[dict[int, tuple[Any, InjectionConfig, PolicyConfig, StepwiseConfig]]] = {}
    # the reward's decoder, one per tokenizer (building its byte table takes a while; it is read-only after)
    _mappers: ClassVar[dict[int, tuple[Any, TokenTextMapper]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings, self.policy_config, self.checker_config = self._settings_of(self.config)
        self.generate_s = 0.0
        self.response_length = int(self.rollout_config.response_length)
        self.group_size = int(self.rollout_config.n)
        self.eos_ids = eos_token_ids(self.tokenizer, self.config.actor_rollout_ref.model.get("path"))
        self.rng = random.Random(self.settings.seed) if self.settings.seed is not None else random.Random()

    @classmethod
    def _settings_of(cls, config: Any) -> tuple[InjectionConfig, PolicyConfig, StepwiseConfig]:
        cached = cls._parsed.get(id(config))
        if cached is None or cached[0] is not config:
            pdai = config.get("pdai") or {}
            cached = (
                config,
                InjectionConfig.from_mapping(pdai.get("rollout")),
                PolicyConfig.from_dict(pdai.get("policy") or {}),
                reward_checker_config(config),
            )
            cls._parsed[id(config)] = cached
        return cached[1], cached[2], cached[3]

    @classmethod
    def _mapper_of(cls, tokenizer: Any) -> TokenTextMapper:
        cached = cls._mappers.get(id(tokenizer))
        if cached is None or cached[0] is not tokenizer:
            cached = cls._mappers[id(tokenizer)] = (tokenizer, TokenTextMapper(tokenizer))
        return cached[1]

    # ------------------------------------------------------------------ generation helpers

    async def _generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        response: _Response,
        max_tokens: int,
        sampling_params: dict[str, Any],
        stop: str | None = None,
    ) -> tuple[list[int], bool]:
        """Generate up to ``max_tokens`` more model tokens; append them; return (new ids, finished)."""
        params = dict(sampling_params, max_tokens=max_tokens)
        if stop:
            params["stop"] = [stop]
        started = time.perf_counter()
        output = await self.server_manager.generate(
            request_id=request_id, prompt_ids=prompt_ids + response.ids, sampling_params=params
        )
        self.generate_s += time.perf_counter() - started
        new_ids = list(output.token_ids)[:max_tokens]
        response.add(new_ids, output.log_probs, model_written=True)
        response.add_server_fields(getattr(output, "extra_fields", None))
        # reaching this call's max_tokens is not the end of the session (the first call stops at min_tokens)
        finished = (
            not new_ids
            or new_ids[-1] in self.eos_ids
            or output.stop_reason == "aborted"
            or len(response.ids) >= self.response_length
        )
        return new_ids, finished

    def _ends_at_boundary(self, ids: list[int]) -> bool:
        tail = self.tokenizer.decode(ids[-8:], skip_special_tokens=True)
        return tail.endswith(self.settings.boundary)

    # ------------------------------------------------------------------ sessions

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        self.want_logprobs = bool(sampling_params.get("logprobs"))
        prompt_ids = await self.ct_build_initial_tokens(list(kwargs["raw_prompt"]))
        request_id = uuid4().hex  # one id for all of a session's calls: sticky server, prefix cache hits
        response = _Response()
        info = F.hint_fields_default()
        if not is_training_prompt(kwargs):
            info[F.ROLE_FIELD] = "validation"
            await self._generate(request_id, prompt_ids, response, self.response_length, sampling_params)
            return self._output(prompt_ids, response, info)

        uid = str(kwargs.get("uid") or request_id)
        index, is_preview = self.board.join(uid, self.group_size, self.settings.preview_size, kwargs.get("session_id"))
        info[F.SESSION_FIELD] = index
        if self.settings.seed is not None:  # a seeded run: reproducible, yet each session explores on its own
            self.rng = random.Random(f"{self.settings.seed}:{uid}:{index}")
        request_id = f"pdai-{uid}-{index}-{request_id[:12]}"  # readable in server logs and traces
        published = False
        try:
            if is_preview:
                info[F.ROLE_FIELD] = "preview"
                await self._generate(request_id, prompt_ids, response, self.response_length, sampling_params)
                success = await self._verify(response, kwargs)
                self.board.publish(uid, success)
                published = True
                info[F.PREVIEW_SUCCESS_FIELD] = -1 if success is None else int(success)
            else:
                info[F.ROLE_FIELD] = "main"
                await self._run_main(uid, request_id, prompt_ids, response, sampling_params, kwargs, info)
        finally:
            if is_preview and not published:
                self.board.publish(uid, None)  # a failed preview must not leave its group waiting
            self.board.leave(uid)
        return self._output(prompt_ids, response, info)

    async def _run_main(
        self,
        uid: str,
        request_id: str,
        prompt_ids: list[int],
        response: _Response,
        sampling_params: dict[str, Any],
        kwargs: dict[str, Any],
        info: dict[str, Any],
    ) -> None:
        settings = self.settings
        first = min(settings.min_tokens, self.response_length)
        ids, finished = (
            await self._generate(request_id, prompt_ids, response, first, sampling_params) if first else ([], False)
        )
        # fewer tokens than asked without a stop string: the server ended the sequence (an EOS of its own)
        finished = finished or (first > 0 and len(ids) < first)
        if not finished and not (ids and self._ends_at_boundary(response.ids)):
            budget = self.response_length - len(response.ids)
            # a stop before the budget without EOS is the boundary, even when the stop string completed
            # inside a token that carries more text ("\n\n    \n" is one Qwen2.5 token)
            _, finished = await self._generate(
                request_id, prompt_ids, response, budget, sampling_params, stop=settings.boundary
            )
        if finished:
            info[F.DECISION_FIELD] = "ended_before_injection_point"
            return

        if await self._past_thinking(response):
            # a hint after "</think>" would be spliced into the answer: hints go inside the thinking part only
            info[F.DECISION_FIELD] = "past_thinking"
        else:
            decision = await self._decide(uid, kwargs, info)
            if decision.level > 0:
                self._inject(*self._hints_and_source(uid, kwargs), decision, response, info)
        remaining = self.response_length - len(response.ids)
        await self._generate(request_id, prompt_ids, response, remaining, sampling_params)
        self._never_end_inside_hint(response, info)

    async def _past_thinking(self, response: _Response) -> bool:
        """Whether the model's own text so far has closed its thinking (the prompt and hints are not its text)."""
        model_ids = [token for token, written in zip(response.ids, response.mask, strict=True) if written]
        # special tokens kept: a "</think>" that a tokenizer marks special still closes the thinking
        text = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.tokenizer.decode, model_ids, skip_special_tokens=False)
        )
        return split_thinking(text).closed

    async def _decide(self, uid: str, kwargs: dict[str, Any], info: dict[str, Any]) -> Decision:
        started = time.perf_counter()
        snapshot: PreviewSnapshot = (
            await self.board.wait_for_preview(uid, self.settings.blocking_timeout_s)
            if self.settings.blocking
            else self.board.snapshot(uid)
        )
        info[F.WAIT_FIELD] = round(time.perf_counter() - started, 6)
        alpha, beta, given = prior_of(kwargs.get(F.PRIOR_FIELD), self.settings)
        fallbacks = [] if given else ["no_prior"]
        if snapshot.failed:
            fallbacks.append("preview_failed")
        if snapshot.preview_size == 0:
            fallbacks.append("no_preview")
        decision = decide(
            (alpha, beta), snapshot, self._policy(kwargs), lambda: self._hints(uid, kwargs), self.settings, self.rng
        )
        info.update(
            {
                F.DECISION_FIELD: decision.reason,
                F.DIFFICULTY_FIELD: round(decision.difficulty, 6),
                F.PRIOR_ALPHA_FIELD: alpha,
                F.PRIOR_BETA_FIELD: beta,
                F.PREVIEWS_FINISHED_FIELD: snapshot.finished,
                F.PREVIEWS_SUCCEEDED_FIELD: snapshot.successes,
                F.PREVIEWS_RUNNING_FIELD: snapshot.running,
                F.FALLBACK_FIELD: ",".join(fallbacks),
            }
        )
        return decision

    def _policy(self, kwargs: dict[str, Any]) -> InterventionPolicy:
        """The policy as the trainer fitted it for this prompt: ``pdai_policy_params`` (w, intercept, slope), or a
        bare ``pdai_policy_w`` (a trainer of an earlier version) with the fresh intercept and slope."""
        params = kwargs.get(F.POLICY_PARAMS_FIELD)
        if not isinstance(params, dict):
            w = kwargs.get(F.POLICY_W_FIELD)
            params = {"w": w} if w is not None else {}
        return InterventionPolicy.for_decisions(self.policy_config, params)

    def _hints(self, uid: str, kwargs: dict[str, Any]) -> HintSet:
        return self._hints_and_source(uid, kwargs)[0]

    def _hints_and_source(self, uid: str, kwargs: dict[str, Any]) -> tuple[HintSet, str]:
        """The group's hint set, built once, and the source of its reference: the row's reference first (data set,
        backfill or corpus), else the harvested one the trainer handed over (``pdai_harvested_reference``)."""
        shared = self.board.shared(uid)
        cached = shared.get("hints")
        if isinstance(cached, tuple):
            return cached
        extra_info = kwargs.get("extra_info") if isinstance(kwargs.get("extra_info"), dict) else {}
        reference, source = F.reference_of(extra_info)
        hints = self._build_hints(reference, kwargs)
        harvested = kwargs.get(F.HARVESTED_REFERENCE_FIELD)
        if not hints.usable and isinstance(harvested, str) and harvested.strip():
            fallback = self._build_hints(harvested, kwargs)
            if fallback.usable:
                hints, source = fallback, HARVESTED
        shared["hints"] = (hints, source)
        return hints, source

    def _build_hints(self, reference: str, kwargs: dict[str, Any]) -> HintSet:
        reward_model = kwargs.get("reward_model") if isinstance(kwargs.get("reward_model"), dict) else {}
        return build_hints(
            reference,
            reward_model.get("ground_truth"),
            self.policy_config.fractions,
            prefix=self.settings.hint_prefix,
            suffix=self.settings.boundary,
            max_chars=self.settings.hint_max_chars,
        )

    def _inject(
        self, hints: HintSet, source: str, decision: Decision, response: _Response, info: dict[str, Any]
    ) -> None:
        hint = hints.for_level(decision.level)
        # the hint alone, without special tokens: generated ids are never re-tokenized
        hint_ids = self.tokenizer.encode(hint.text, add_special_tokens=False)
        remaining = self.response_length - len(response.ids)
        if len(hint_ids) + self.settings.min_continuation_tokens > remaining:
            info[F.DECISION_FIELD] = "no_budget"
            return
        start = len(response.ids)
        response.add(hint_ids, None, model_written=False)
        response.hint_span = (start, len(response.ids))
        info.update(
            {
                F.HINT_LEVEL_FIELD: decision.level,
                F.HINT_FRACTION_FIELD: decision.fraction,
                F.HINT_SPANS_FIELD: [[start, len(response.ids)]],
                F.HINT_TOKENS_FIELD: len(hint_ids),
                F.HINT_SOURCE_FIELD: source,
            }
        )

    def _never_end_inside_hint(self, response: _Response, info: dict[str, Any]) -> None:
        """Rewards sit on the last token: if the model wrote nothing after the hint, take the hint back out."""
        if response.hint_span is not None and response.hint_span[1] >= len(response.ids):
            start = response.hint_span[0]
            del response.ids[start:], response.mask[start:], response.logprobs[start:]
            response.hint_span = None
            info.update(
                {
                    F.HINT_LEVEL_FIELD: 0,
                    F.HINT_FRACTION_FIELD: 0.0,
                    F.HINT_SPANS_FIELD: [],
                    F.HINT_TOKENS_FIELD: 0,
                    F.HINT_SOURCE_FIELD: "",
                }
            )
            info[F.DECISION_FIELD] = "hint_removed_no_continuation"

    async def _verify(self, response: _Response, kwargs: dict[str, Any]) -> bool | None:
        """The preview's verified outcome (final answer only), or None when it cannot be decided in time.

        Graded as the reward grades it: the reward's decoder (model-written spans, special tokens dropped) and
        the reward's checker settings, so a preview the reward scores 0 never counts as solved.
        """
        reward_model = kwargs.get("reward_model") if isinstance(kwargs.get("reward_model"), dict) else {}
        ground_truth = reward_model.get("ground_truth")
        if ground_truth is None:
            return None
        # every accepted answer, as the reward reads them (extra_info.answers)
        ground_truth = accepted_answers(ground_truth, kwargs.get("extra_info")) or ground_truth
        tokenizer, ids, hint_span = self.tokenizer, list(response.ids), response.hint_span
        spans = await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._mapper_of(tokenizer).decode_model_written(ids, [hint_span] if hint_span else None)
        )
        scorer = shared_scorer(self.checker_config)
        result = await scorer.ascore([span.text for span in spans], ground_truth, outcome_only=True)
        if result.timed_out or result.error:
            return None
        return bool(result.acc)

    def _output(self, prompt_ids: list[int], response: _Response, info: dict[str, Any]) -> AgentLoopOutput:
        n = self.response_length
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response.ids[:n],
            response_mask=response.mask[:n],
            response_logprobs=response.logprobs[:n] if self.want_logprobs and response.logprobs_complete else None,
            num_turns=2,
            metrics={"generate_sequences": self.generate_s},
            # like verl's single_turn_agent: the server's fields (weight versions) travel with the sample
            extra_fields={**response.server_fields, **info},
        )
