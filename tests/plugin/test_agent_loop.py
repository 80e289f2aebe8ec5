"""``pdai_hint`` through verl's agent-loop machinery, fake LLM server at the GPU boundary, real Qwen2.5 tokenizer."""

from __future__ import annotations

import asyncio
import time
from unittest import mock

import pytest
from omegaconf import OmegaConf

from verl_pdai.core.hints import build_hints
from verl_pdai.core.injection import PDAI_REWARD_MANAGERS
from verl_pdai.core.rollout_metrics import rollout_metrics
from verl_pdai.core.scoring import ScoreResult, StepwiseConfig
from verl_pdai.demo.agent_harness import HarnessWorker, math_row
from verl_pdai.plugin import fields as F
from verl_pdai.plugin.agent_loop import PdaiHintAgentLoop, reward_checker_config

from .fake_server import Script, ScriptedServer
from .verl_reward_helpers import reward_config

PROBLEM = "A rectangle has sides 6 and 8. What is the length of its diagonal? Put the answer in \\boxed{}."
SOLUTION = (
    "The diagonal splits the rectangle into two right triangles with legs 6 and 8.\n\n"
    "By the Pythagorean theorem the squared diagonal is $6^2 + 8^2 = 36 + 64 = 100$.\n\n"
    "Taking the square root, the diagonal is $\\sqrt{100} = 10$, so the answer is $\\boxed{10}$."
)
PARAGRAPH = "Let me think about the geometry of the rectangle and its sides carefully here.\n\n"
RIGHT_SHORT = "The diagonal is $\\boxed{10}$."
WRONG_LONG = PARAGRAPH * 6 + "So the diagonal is $\\boxed{14}$."
# main sessions whose first step boundary comes late (~60 tokens): previews of 10 tokens are surely done by then
LATE_BOUNDARY = (PARAGRAPH.rstrip("\n") + " ") * 4 + "\n\n" + WRONG_LONG
AFTER_HINT = "Right, so with that the diagonal is $\\sqrt{100} = 10$.\n\nThe answer is $\\boxed{10}$."
N, K, RESPONSE_LENGTH, MIN_TOKENS = 4, 2, 256, 12


def make_config(tokenizer_dir, *extra: str, n: int = N, response_length: int = RESPONSE_LENGTH):
    return reward_config(
        tokenizer_dir,
        [
            f"actor_rollout_ref.rollout.n={n}",
            f"actor_rollout_ref.rollout.response_length={response_length}",
            "actor_rollout_ref.rollout.prompt_length=128",
            f"+pdai.rollout.preview_size={K}",
            f"+pdai.rollout.min_tokens={MIN_TOKENS}",
            *extra,
        ],
    )


def scripts(preview: Script, main: Script):
    return lambda uid, index: preview if index < K else main


def run_group(worker, uid, row, n=N, **kwargs):
    return asyncio.run(worker.run_group(uid, n, row, **kwargs))


@pytest.fixture(scope="module")
def config(tokenizer_dir):
    return make_config(tokenizer_dir)


def info_of(output) -> dict:
    return output.extra_fields


def response_of(output) -> tuple[list[int], list[int], list[float] | None]:
    """Unpadded response ids, mask and log-probs of one post-processed output."""
    length = int(output.attention_mask[0, output.prompt_ids.shape[1] :].sum())
    ids = output.response_ids[0, :length].tolist()
    mask = output.response_mask[0, :length].tolist()
    logprobs = output.response_logprobs[0, :length].tolist() if output.response_logprobs is not None else None
    return ids, mask, logprobs


def test_hard_problem_gets_a_masked_hint_spliced_at_a_step_boundary(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)), 0.0005)
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "hard", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}))
    previews, mains = outputs[:K], outputs[K:]
    assert [info_of(o)[F.ROLE_FIELD] for o in outputs] == ["preview"] * K + ["main"] * (N - K)
    assert all(info_of(o)[F.PREVIEW_SUCCESS_FIELD] == 0 for o in previews)
    hints = build_hints(SOLUTION, "10", (0.0, 0.25, 0.5, 0.75), suffix="\n\n")
    for output in mains:
        info = info_of(output)
        ids, mask, logprobs = response_of(output)
        assert info[F.DECISION_FIELD].startswith("hinted") and info[F.HINT_LEVEL_FIELD] > 0
        assert info[F.PREVIEWS_RUNNING_FIELD] + info[F.PREVIEWS_FINISHED_FIELD] == K
        assert 0 <= info[F.DIFFICULTY_FIELD] < 0.5
        ((start, end),) = info[F.HINT_SPANS_FIELD]
        hint_ids = tokenizer.encode(hints.for_level(info[F.HINT_LEVEL_FIELD]).text, add_special_tokens=False)
        assert ids[start:end] == hint_ids and end - start == info[F.HINT_TOKENS_FIELD]
        assert mask == [1] * start + [0] * (end - start) + [1] * (len(ids) - end)
        assert logprobs[start:end] == [0.0] * (end - start) and set(logprobs[:start]) == {-0.5}
        # token continuity: the model's own tokens are exactly what the server generated, never re-tokenized
        session = next(s for r, s in server.sessions.items() if s.ids == ids)
        assert start >= MIN_TOKENS and tokenizer.decode(ids[:start]).endswith("\n\n")
        after = tokenizer.encode(AFTER_HINT, add_special_tokens=False) + [tokenizer.eos_token_id]
        assert ids[end:] == after and session.hinted
        assert mask[-1] == 1 and len(ids) <= RESPONSE_LENGTH
        assert output.metrics.generate_sequences > 0  # verl's rollout timing metrics see the time in generate
        assert info[F.WAIT_FIELD] < 0.05  # non-blocking: the decision never waits for the preview


def test_easy_problem_previews_finish_first_and_nobody_is_hinted(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(RIGHT_SHORT), Script(LATE_BOUNDARY, AFTER_HINT)), 0.005)
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "easy", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    for output in outputs[K:]:
        info = info_of(output)
        assert info[F.DECISION_FIELD] == "easy" and info[F.HINT_SPANS_FIELD] == []
        assert info[F.PREVIEWS_FINISHED_FIELD] == K and info[F.PREVIEWS_SUCCEEDED_FIELD] == K
        assert info[F.DIFFICULTY_FIELD] == pytest.approx((1 + 2) / (2 + 2))
        assert set(response_of(output)[1]) == {1}
    assert all(info_of(o)[F.PREVIEW_SUCCESS_FIELD] == 1 for o in outputs[:K])
    assert len(PdaiHintAgentLoop.board) == 0  # every group is removed once its sessions are done


def test_validation_prompts_are_never_hinted(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "val", math_row(PROBLEM, "10", SOLUTION, split="test"), validate=True)
    for output in outputs:
        assert info_of(output)[F.ROLE_FIELD] == "validation" and info_of(output)[F.HINT_LEVEL_FIELD] == 0
        assert set(response_of(output)[1]) == {1}
    assert all(call["stop"] is None for call in server.calls)  # one plain generation per session


def test_train_split_rows_without_the_trainers_mark_are_never_hinted(config, tokenizer):
    """Only ``pdai_prior`` (injected by the pdai trainer into training batches) marks a training prompt: a row whose
    ``extra_info.split`` says train is a validation prompt all the same (users put train rows in validation files)."""
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    row = math_row(PROBLEM, "10", SOLUTION, split="train")  # no pdai_prior
    assert row["extra_info"]["split"] == "train" and F.PRIOR_FIELD not in row
    outputs = run_group(worker, "trainsplit", row)
    for output in outputs:
        info = info_of(output)
        assert info[F.ROLE_FIELD] == "validation" and info[F.HINT_LEVEL_FIELD] == 0
        assert info[F.DECISION_FIELD] == "none" and info[F.HINT_SPANS_FIELD] == []
        assert set(response_of(output)[1]) == {1}
    assert len(server.calls) == N and all(call["stop"] is None for call in server.calls)  # one plain generation


def test_missing_reference_solution_and_unusable_prior_fall_back_and_say_so(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    # marked by the trainer (pdai_prior present) but without a usable Beta: the config's prior, said so
    outputs = run_group(worker, "noref", math_row(PROBLEM, "10", None, prior={}))
    for output in outputs[K:]:
        info = info_of(output)
        assert info[F.DECISION_FIELD] == "no_reference" and info[F.HINT_SPANS_FIELD] == []
        assert "no_prior" in info[F.FALLBACK_FIELD] and info[F.PRIOR_ALPHA_FIELD] == 1.0


def test_failing_preview_session_does_not_fail_or_hang_the_group(config, tokenizer):
    preview_fails = lambda uid, index: Script("", fail=True) if index == 0 else Script(LATE_BOUNDARY, AFTER_HINT)  # noqa: E731
    server = ScriptedServer(tokenizer, preview_fails, 0.005)
    worker = HarnessWorker(config, tokenizer, server)
    row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4})
    with pytest.raises(RuntimeError, match="scripted server failure"):  # the failing session's error reaches verl
        asyncio.run(asyncio.wait_for(worker.run_group("fault", N, row), timeout=30))
    assert len(PdaiHintAgentLoop.board) == 0  # ... after every session settled
    server2 = ScriptedServer(tokenizer, preview_fails, 0.005)
    worker2 = HarnessWorker(config, tokenizer, server2)

    async def sessions():
        tasks = [
            asyncio.create_task(
                worker2._run_agent_loop(
                    {"logprobs": True},
                    {"step": 0, "sample_index": i, "rollout_n": i, "validate": False},
                    agent_name="pdai_hint",
                    trace=False,
                    uid="fault2",
                    session_id=i,
                    **row,
                )
            )
            for i in range(N)
        ]
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)

    outs = asyncio.run(sessions())
    assert isinstance(outs[0], RuntimeError)
    for output in outs[K:]:  # ... the others complete and say what they decided from
        assert "preview_failed" in info_of(output)[F.FALLBACK_FIELD]
        assert info_of(output)[F.DECISION_FIELD].startswith("hinted")
    assert len(PdaiHintAgentLoop.board) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_groups_with_n_at_most_k_keep_a_session_that_can_be_helped(tokenizer_dir, tokenizer, n):
    config = make_config(tokenizer_dir, n=n)
    server = ScriptedServer(tokenizer, lambda uid, index: Script(WRONG_LONG, AFTER_HINT))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, f"small{n}", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}), n=n)
    roles = [info_of(o)[F.ROLE_FIELD] for o in outputs]
    assert roles == ["preview"] * (n - 1) + ["main"]
    assert info_of(outputs[-1])[F.HINT_LEVEL_FIELD] > 0
    if n == 1:
        assert "no_preview" in info_of(outputs[-1])[F.FALLBACK_FIELD]


def test_hint_that_does_not_fit_the_budget_is_not_injected(tokenizer_dir, tokenizer):
    config = make_config(tokenizer_dir, response_length=40)
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "budget", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    for output in outputs:
        ids, mask, _ = response_of(output)
        assert len(ids) <= 40 and set(mask) == {1}
    assert {info_of(o)[F.DECISION_FIELD] for o in outputs[K:]} <= {"no_budget", "ended_before_injection_point"}


def test_response_never_ends_inside_a_hint(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, abort_after_hint=True)))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "abort", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    for output in outputs[K:]:
        ids, mask, _ = response_of(output)
        assert info_of(output)[F.DECISION_FIELD] == "hint_removed_no_continuation"
        assert set(mask) == {1} and info_of(output)[F.HINT_SPANS_FIELD] == []


def test_concurrent_groups_do_not_interfere(config, tokenizer):
    def script_for(uid, index):
        if uid == "easy2":
            return Script(RIGHT_SHORT) if index < K else Script(LATE_BOUNDARY, AFTER_HINT)
        return Script(WRONG_LONG, AFTER_HINT)

    server = ScriptedServer(tokenizer, script_for, 0.005)
    worker = HarnessWorker(config, tokenizer, server)
    easy_row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1})
    hard_row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9})

    async def both():
        return await asyncio.gather(worker.run_group("easy2", N, easy_row), worker.run_group("hard2", N, hard_row))

    easy, hard = asyncio.run(both())
    assert all(info_of(o)[F.HINT_LEVEL_FIELD] == 0 for o in easy[K:])
    assert all(info_of(o)[F.HINT_LEVEL_FIELD] > 0 for o in hard[K:])
    assert all(info_of(o)[F.PREVIEWS_SUCCEEDED_FIELD] == 0 for o in hard[K:])
    assert len(PdaiHintAgentLoop.board) == 0


def test_blocking_mode_waits_for_the_whole_preview(tokenizer_dir, tokenizer):
    config = make_config(tokenizer_dir, "+pdai.rollout.blocking=true")
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)), 0.001)
    worker = HarnessWorker(config, tokenizer, server)
    start = time.monotonic()
    outputs = run_group(worker, "block", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    assert time.monotonic() - start > 0
    for output in outputs[K:]:
        info = info_of(output)
        assert info[F.PREVIEWS_FINISHED_FIELD] == K and info[F.PREVIEWS_RUNNING_FIELD] == 0
        assert info[F.DIFFICULTY_FIELD] == pytest.approx(1 / 4)
        assert info[F.WAIT_FIELD] > 0  # the wait is reported, so its cost is visible


def test_legacy_path_without_session_ids_numbers_sessions_by_arrival(config, tokenizer):
    server = ScriptedServer(tokenizer, lambda uid, index: Script(WRONG_LONG, AFTER_HINT))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(
        worker, "legacy", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}), session_ids=False
    )
    assert sorted(info_of(o)[F.SESSION_FIELD] for o in outputs) == list(range(N))
    assert sum(info_of(o)[F.ROLE_FIELD] == "preview" for o in outputs) == K


def test_no_logprobs_requested_gives_none(config, tokenizer):
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(
        worker,
        "nolp",
        math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}),
        sampling_params={"temperature": 1.0},
    )
    assert all(o.response_logprobs is None for o in outputs)


def test_batch_assembly_and_reward_exclude_the_hint(tokenizer_dir, config, tokenizer):
    """Rollout -> verl's reward path -> batch: a hint holding the answer earns nothing; extra fields are columns."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    leaky_after_hint = "I will stop here."
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, leaky_after_hint)))
    worker = HarnessWorker(config, tokenizer, server, reward_worker=RewardLoopWorker(config))
    outputs = run_group(worker, "e2e", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    batch = worker.batch(outputs)
    assert list(batch.non_tensor_batch[F.ROLE_FIELD]) == ["preview"] * K + ["main"] * (N - K)
    assert batch.non_tensor_batch["acc"].tolist() == [0.0] * N
    assert (batch.batch["response_mask"].sum(-1) < batch.batch["attention_mask"][:, 128:].sum(-1))[K:].all()


def test_eos_ids_include_the_generation_config_ones(tmp_path, tokenizer):
    from verl_pdai.plugin.agent_loop import eos_token_ids

    (tmp_path / "generation_config.json").write_text('{"eos_token_id": [151643, 151645]}')
    assert eos_token_ids(tokenizer, str(tmp_path)) == {tokenizer.eos_token_id, 151643, 151645}
    assert eos_token_ids(tokenizer, None) == {tokenizer.eos_token_id}


def test_session_that_ends_early_on_its_own_is_not_continued(config, tokenizer):
    """A first call that returns fewer tokens than asked (the server hit an EOS we do not know) ends the session."""
    short_main = "Done quickly."
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(short_main, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "short", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    for output in outputs[K:]:
        assert info_of(output)[F.DECISION_FIELD] == "ended_before_injection_point"
        assert sum(1 for c in server.calls if c["index"] == info_of(output)[F.SESSION_FIELD]) == 1


def test_missing_server_log_probs_are_never_replaced_by_placeholders(config, tokenizer):
    """Log-probs requested but not returned: no log-probs at all, rather than 0.0 on model tokens."""
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)))
    original = server.generate

    async def without_logprobs(request_id, *, prompt_ids, sampling_params, **kwargs):
        output = await original(request_id, prompt_ids=prompt_ids, sampling_params=sampling_params, **kwargs)
        return output.model_copy(update={"log_probs": None})

    server.generate = without_logprobs
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "nolp2", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}))
    assert all(o.response_logprobs is None for o in outputs)
    assert any(info_of(o)[F.HINT_LEVEL_FIELD] > 0 for o in outputs)


def test_weight_versions_of_the_server_span_all_calls_of_a_session(config, tokenizer):
    """verl's LLM client tags each output with the weight version (global_steps) that generated it, and the v1
    trainer's staleness metrics read min/max_global_steps of every sample: a hinted session (two calls) spans the
    versions of its first and its last call."""
    versions = iter(range(100))
    server = ScriptedServer(
        tokenizer,
        scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)),
        0.0005,
        weight_version=lambda: next(versions),
    )
    worker = HarnessWorker(config, tokenizer, server)
    outputs = run_group(worker, "versions", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}))
    calls_of: dict[int, int] = {}
    for call in server.calls:
        calls_of[call["index"]] = calls_of.get(call["index"], 0) + 1
    for output in outputs:
        info = info_of(output)
        low, high = info["min_global_steps"], info["max_global_steps"]
        assert isinstance(low, int) and isinstance(high, int)
        if info[F.ROLE_FIELD] == "main":
            assert calls_of[info[F.SESSION_FIELD]] >= 2 and high > low  # one version per call, all distinct
        else:
            assert calls_of[info[F.SESSION_FIELD]] == 1 and high == low
    batch = worker.batch(outputs)  # verl's batch assembly keeps them as columns
    assert all(v is not None for v in batch.non_tensor_batch["min_global_steps"])


def test_seeded_sessions_explore_independently(tokenizer_dir, tokenizer):
    """With pdai.rollout.seed each session draws from its own stream: reproducible, not identical across sessions."""
    config = make_config(tokenizer_dir, "+pdai.rollout.seed=7")
    draws: dict[int, list[float]] = {}

    async def record_draws(self, uid, request_id, prompt_ids, response, sampling_params, kwargs, info):
        draws[info[F.SESSION_FIELD]] = [self.rng.random() for _ in range(3)]

    runs = []
    for _ in range(2):
        draws.clear()
        server = ScriptedServer(tokenizer, scripts(Script(RIGHT_SHORT), Script(RIGHT_SHORT)))
        worker = HarnessWorker(config, tokenizer, server)
        with mock.patch.object(PdaiHintAgentLoop, "_run_main", record_draws):
            run_group(worker, "seeded", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4}))
        runs.append(dict(draws))
    first, second = runs
    assert first == second  # reproducible run to run
    assert len(first) == N - K and len({tuple(v) for v in first.values()}) == N - K  # not shared by sessions


# ---------------------------------------------------------------------- previews graded as the reward grades

# a truncated trace: an interim answer, no "</think>", cut by the response budget (the reward scores it 0)
INTERIM_TRUNCATED = "Maybe the diagonal is $\\boxed{10}$.\n\n" + PARAGRAPH * 20
CLOSED_RIGHT = "The sides are 6 and 8, so the diagonal is 10.</think>\n\nThe diagonal is $\\boxed{10}$."


def test_previews_are_graded_exactly_as_the_reward_grades(tokenizer_dir, tokenizer):
    """With the recipe's ``reward.reward_kwargs.thinking=required``, a truncated trace with an interim ``\\boxed{10}``
    is no solved preview: each preview's published outcome is the reward's ``acc`` for the same response."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    config = make_config(tokenizer_dir, "+reward.reward_kwargs.thinking=required", "+pdai.rollout.blocking=true")
    previews = {0: Script(INTERIM_TRUNCATED), 1: Script(CLOSED_RIGHT)}
    server = ScriptedServer(tokenizer, lambda uid, index: previews.get(index, Script(LATE_BOUNDARY, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server, reward_worker=RewardLoopWorker(config))
    outputs = run_group(worker, "graded", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    assert len(response_of(outputs[0])[0]) == RESPONSE_LENGTH  # the interim trace was cut by the budget
    preview_success = [info_of(o)[F.PREVIEW_SUCCESS_FIELD] for o in outputs[:K]]
    assert preview_success == [0, 1]
    batch = worker.batch(outputs)
    assert batch.non_tensor_batch["acc"].tolist()[:K] == [float(s) for s in preview_success]
    for output in outputs[K:]:  # blocking: the mains decided from both previews, one of them solved
        info = info_of(output)
        assert info[F.PREVIEWS_FINISHED_FIELD] == K and info[F.PREVIEWS_SUCCEEDED_FIELD] == 1
        assert info[F.DIFFICULTY_FIELD] == pytest.approx((1 + 1) / (2 + K))


class _RecordingScorer:
    """Stands in for the bounded scorer: records the config it was built with and how it was asked."""

    def __init__(self, config: StepwiseConfig, log: list) -> None:
        self.config, self.log = config, log

    async def ascore(self, pieces, ground_truth, reference_solution=None, *, outcome_only=False) -> ScoreResult:
        self.log.append((self.config, list(pieces), outcome_only))
        return ScoreResult(acc=1.0)


def test_preview_checker_is_the_rewards_checker(tokenizer_dir, tokenizer):
    kwargs = {"thinking": "required", "timeout_s": 7.0, "max_chars": 5000}
    config = make_config(tokenizer_dir, *(f"+reward.reward_kwargs.{k}={v}" for k, v in kwargs.items()))
    log: list = []
    server = ScriptedServer(tokenizer, scripts(Script(RIGHT_SHORT), Script(LATE_BOUNDARY, AFTER_HINT)))
    worker = HarnessWorker(config, tokenizer, server)
    with mock.patch("verl_pdai.plugin.agent_loop.shared_scorer", lambda c: _RecordingScorer(c, log)):
        run_group(worker, "checker", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    assert len(log) == K
    # the reward manager builds its checker from the same section with the same parser
    expected = StepwiseConfig.from_mapping(kwargs)
    assert reward_checker_config(config) == expected
    for used, pieces, outcome_only in log:
        assert used == expected and outcome_only  # same checker, final answer only
        assert "".join(pieces) == RIGHT_SHORT  # the reward's decoding: special tokens (EOS) dropped


def test_rollout_thinking_key_is_refused_at_start_up_with_the_fix(tokenizer_dir, tokenizer):
    config = make_config(tokenizer_dir, "+pdai.rollout.thinking=required")
    server = ScriptedServer(tokenizer, scripts(Script(RIGHT_SHORT), Script(RIGHT_SHORT)))
    worker = HarnessWorker(config, tokenizer, server)
    with pytest.raises(Exception, match=r"pdai\.rollout\.thinking was removed") as caught:
        run_group(worker, "refused", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    assert "reward.reward_kwargs.thinking" in str(caught.value)
    assert server.calls == []  # refused before anything was generated


def test_reward_without_verl_pdais_checker_is_refused_at_start_up(tokenizer_dir, tokenizer):
    """A preview cannot be graded as a foreign reward grades: the loop refuses, naming the key and the fix."""
    config = make_config(tokenizer_dir, "reward.reward_manager.name=naive")
    server = ScriptedServer(tokenizer, scripts(Script(RIGHT_SHORT), Script(RIGHT_SHORT)))
    worker = HarnessWorker(config, tokenizer, server)
    with pytest.raises(Exception, match=r"reward\.reward_manager\.name='naive'") as caught:
        run_group(worker, "foreign", math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 1}))
    assert "reward.reward_manager.name=pdai_stepwise" in str(caught.value)


def test_reward_checker_config_reads_verl_pdais_custom_reward_function_too():
    """verl's stock manager calling ``verl_pdai.api.compute_score``: its ``reward_kwargs`` are the checker's."""
    config = OmegaConf.create(
        {
            "reward": {
                "reward_manager": {"name": "naive"},
                "reward_kwargs": {"overlong_buffer_cfg": None},  # another manager's key: not ours to read
                "custom_reward_function": {
                    "path": "pkg://verl_pdai.api",
                    "name": "compute_score",
                    "reward_kwargs": {"thinking": "required", "process_weight": 0.0},
                },
            }
        }
    )
    assert reward_checker_config(config) == StepwiseConfig(thinking="required", process_weight=0.0)


# ---------------------------------------------------------------------- hints only inside the thinking part

# closes its thinking before its injection point (the first boundary after MIN_TOKENS tokens)
PAST_THINKING = (
    "The sides are 6 and 8, so by Pythagoras the diagonal is the square root of 100, which is 10.</think>\n\n"
    "The diagonal is $\\boxed{10}$.\n\nThat settles it."
)
# closes its thinking only after the hint: a normal hinted session
CLOSES_AFTER_HINT = "Right, so the diagonal is $\\sqrt{100} = 10$.</think>\n\nThe answer is $\\boxed{10}$."


def test_session_past_its_thinking_at_the_injection_point_is_not_hinted(config, tokenizer):
    def script_for(uid: str, index: int) -> Script:
        if index < K:
            return Script(WRONG_LONG)
        return Script(PAST_THINKING, AFTER_HINT) if index == K else Script(LATE_BOUNDARY, CLOSES_AFTER_HINT)

    server = ScriptedServer(tokenizer, script_for)
    worker = HarnessWorker(config, tokenizer, server)
    # the prompt's own "</think>" is not the model's text: it never stops a hint
    problem = "Think step by step and close your thinking with </think>. " + PROBLEM
    outputs = run_group(worker, "past", math_row(problem, "10", SOLUTION, prior={"alpha": 1, "beta": 9}))
    past, control = outputs[K], outputs[K + 1]

    info = info_of(past)
    ids, mask, _ = response_of(past)
    assert info[F.DECISION_FIELD] == "past_thinking"
    assert info[F.HINT_LEVEL_FIELD] == 0 and info[F.HINT_SPANS_FIELD] == [] and set(mask) == {1}
    assert info[F.DIFFICULTY_FIELD] == -1.0  # no decision was taken
    # it reached its injection point after "</think>" and simply went on to the end of its own text
    assert ids == tokenizer.encode(PAST_THINKING, add_special_tokens=False) + [tokenizer.eos_token_id]
    own_calls = [c for c in server.calls if c["index"] == K]
    assert len(own_calls) == 3 and own_calls[1]["stop"] == "\n\n" and own_calls[2]["stop"] is None

    assert info_of(control)[F.DECISION_FIELD].startswith("hinted") and info_of(control)[F.HINT_LEVEL_FIELD] > 0
    assert "</think>" in tokenizer.decode(response_of(control)[0])  # closed after its hint: that is allowed

    # the trainer's rollout metrics count it as a decision kind of its own, not as a decided session
    batch = worker.batch(outputs)
    metrics = rollout_metrics(batch.non_tensor_batch, [0.0] * N, batch.batch["response_mask"])
    assert metrics["pdai/decision/past_thinking"] == pytest.approx(1 / (N - K))
    assert metrics["pdai/decided_rate"] == pytest.approx(1 / (N - K))
    assert metrics["pdai/intervention_rate"] == pytest.approx(1 / (N - K))


def test_pdai_reward_manager_names_are_the_plugins():
    from verl_pdai.plugin.reward_manager import NAME, PdaiStepwiseRewardManager

    assert PDAI_REWARD_MANAGERS == (NAME, PdaiStepwiseRewardManager.__name__)


def test_sessions_decide_with_the_policy_params_the_trainer_sent(config, tokenizer):
    """``pdai_policy_params`` (w, intercept, slope) is the fitted model the rollout must decide with; it wins over
    the bare ``pdai_policy_w`` of an earlier trainer."""
    levels = {}
    for name, w in (("strong", 12.0), ("weak", 0.5)):
        server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)), 0.0005)
        worker = HarnessWorker(config, tokenizer, server)
        row = math_row(PROBLEM, "10", SOLUTION, prior={"alpha": 1, "beta": 4})
        row[F.POLICY_W_FIELD] = 4.0  # ignored: the params column is the whole model
        row[F.POLICY_PARAMS_FIELD] = {"w": w, "intercept": 0.0, "slope": 1.0}
        outputs = run_group(worker, f"params-{name}", row)
        levels[name] = {info_of(o)[F.HINT_LEVEL_FIELD] for o in outputs[K:]}
    # a hint that lifts success a lot (large w) needs a low level to reach tau; a weak one needs the top level
    assert max(levels["strong"]) < min(levels["weak"])
    assert levels["weak"] == {3}
