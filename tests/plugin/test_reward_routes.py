"""One configuration story through verl's own classes (issue 13, findings 3-5): the same keys work on the
``pdai_stepwise`` route (``reward.reward_kwargs``) and on the stock route (verl's ``naive`` manager calling
``verl_pdai.api.compute_score`` with ``reward.custom_reward_function.reward_kwargs``); bad values fail before any
sample is scored where our code sees the config; reward-model kwargs are ignored by name; data_source routing."""

from __future__ import annotations

import json

import pytest

from verl_pdai.core.config_values import ConfigError

from .verl_reward_helpers import agent_loop_sample, reward_config

PROMPT = "What is 7 times 8? Let's think step by step and output the final answer within \\boxed{}."
CLOSED = "<think>\n7 times 8 is 56.</think>\n\nSo the product is $\\boxed{56}$."
UNCLOSED = "7 times 8 is 56.\n\nSo the product is $\\boxed{56}$."  # R1-style: <think> opened in the prompt
GSM8K_STYLE = "7 times 8 is 56.\n#### 56"  # verl's gsm8k grader reads "#### N"; the stepwise checker does not
STOCK = [
    "reward.reward_manager.name=naive",
    "reward.custom_reward_function.path=pkg://verl_pdai.api",
    "reward.custom_reward_function.name=compute_score",
]


def worker_for(tokenizer_dir, overrides):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    return RewardLoopWorker(reward_config(tokenizer_dir, overrides))


def run(worker, tokenizer, text, data_source="pdai_test", ground_truth="56"):
    from verl.utils.ray_utils import get_event_loop

    data = agent_loop_sample(tokenizer, PROMPT, tokenizer.encode(text, add_special_tokens=False), ground_truth)
    data.non_tensor_batch["data_source"][0] = data_source
    return get_event_loop().run_until_complete(worker.compute_score_batch(data))[0]


# ---------------------------------------------------------------------------------- finding 3: the same keys


@pytest.mark.parametrize(
    "overrides",
    [
        ["+reward.reward_kwargs.thinking=required"],
        [*STOCK, "+reward.custom_reward_function.reward_kwargs.thinking=required"],
    ],
    ids=["pdai_stepwise", "stock"],
)
def test_thinking_required_takes_effect_on_the_route_users_write(tokenizer_dir, tokenizer, overrides):
    worker = worker_for(tokenizer_dir, overrides)
    assert run(worker, tokenizer, CLOSED)["reward_extra_info"]["acc"] == 1.0
    out = run(worker, tokenizer, UNCLOSED)
    assert out["reward_extra_info"]["acc"] == 0.0 and out["reward_score"] <= 0.0
    assert out["reward_extra_info"]["thinking_closed"] is False


def test_without_thinking_required_the_same_response_scores(tokenizer_dir, tokenizer):
    """The control of the test above: the default (auto) grades a response that never opened <think>."""
    for overrides in ([], STOCK):
        assert run(worker_for(tokenizer_dir, overrides), tokenizer, UNCLOSED)["reward_extra_info"]["acc"] == 1.0


def test_verl_hands_reward_kwargs_to_no_custom_function(tokenizer_dir, tokenizer):
    """Why the stock route has its own section: verl 0.9.1 passes ``reward.reward_kwargs`` to neither the naive
    manager's grader nor the custom function, so there ``thinking=required`` changes nothing. Start-up checks that see
    the config say so (``stock_route_problems``)."""
    from verl_pdai.core.reward_settings import stock_route_problems

    config = reward_config(tokenizer_dir, [*STOCK, "+reward.reward_kwargs.thinking=required"])
    worker = worker_for(tokenizer_dir, [*STOCK, "+reward.reward_kwargs.thinking=required"])
    assert run(worker, tokenizer, UNCLOSED)["reward_extra_info"]["acc"] == 1.0  # verl's behaviour, pinned
    message = stock_route_problems(config.reward.reward_kwargs)
    assert "reward.custom_reward_function.reward_kwargs.thinking" in message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("+reward.reward_kwargs.thinking=maybe", r"reward\.reward_kwargs.*thinking='maybe'"),
        ("+reward.reward_kwargs.thinkin=required", r"reward\.reward_kwargs.*unknown key.*thinkin"),
        ("+reward.reward_kwargs.verl_sources=3", r"reward\.reward_kwargs.*verl_sources=3"),
        (
            "+reward.custom_reward_function.reward_kwargs.thinking=required",
            r"set reward\.reward_kwargs\.thinking instead",
        ),
    ],
)
def test_pdai_stepwise_refuses_bad_or_misplaced_keys_when_built(tokenizer_dir, override, named):
    with pytest.raises(ConfigError, match=named):
        worker_for(tokenizer_dir, [override])


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("thinking=maybe", r"reward\.custom_reward_function\.reward_kwargs.*thinking='maybe'"),
        ("thinkin=required", r"reward\.custom_reward_function\.reward_kwargs.*unknown key.*thinkin"),
    ],
)
def test_stock_route_refuses_bad_keys_at_the_first_call_before_scoring(tokenizer_dir, tokenizer, override, named):
    """verl builds the stock route without calling anything of ours with the config (``get_custom_reward_fn`` wraps
    the function in a ``functools.partial``): the first call is the earliest check, and it fails, naming the key."""
    worker = worker_for(tokenizer_dir, [*STOCK, f"+reward.custom_reward_function.reward_kwargs.{override}"])
    with pytest.raises(ConfigError, match=named):
        run(worker, tokenizer, CLOSED)


# ---------------------------------------------------------------------------- finding 4: reward-model kwargs


def test_reward_model_kwargs_are_ignored_by_name_on_both_routes(tokenizer_dir, tokenizer):
    """With a reward model, verl builds managers with ``reward_router_address`` / ``reward_model_tokenizer`` and the
    naive manager passes both to ``compute_score`` on every call."""
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.ray_utils import get_event_loop

    extra = {"reward_router_address": "127.0.0.1:1", "reward_model_tokenizer": tokenizer}
    ids = tokenizer.encode(CLOSED, add_special_tokens=False)
    for overrides in ([], STOCK):
        manager = load_reward_manager(reward_config(tokenizer_dir, overrides), tokenizer, **extra)
        if overrides:
            assert type(manager).__name__ == "NaiveRewardManager" and manager.reward_router_address is not None
        data = agent_loop_sample(tokenizer, PROMPT, ids, "56")
        out = get_event_loop().run_until_complete(manager.run_single(data))
        assert out["reward_extra_info"]["acc"] == 1.0


def test_compute_score_ignores_only_the_reward_model_kwargs():
    from verl_pdai.api import compute_score

    out = compute_score("math", CLOSED, "56", {}, reward_router_address="127.0.0.1:1", reward_model_tokenizer=object())
    assert out["acc"] == 1.0
    with pytest.raises(ConfigError, match="unknown key.*reward_router"):
        compute_score("math", CLOSED, "56", {}, reward_router="127.0.0.1:1")


# ------------------------------------------------------------------------------ finding 5: data_source routing


@pytest.mark.parametrize("route", [[], STOCK], ids=["pdai_stepwise", "stock"])
def test_verl_sources_go_to_verls_default_grader_with_the_same_keys(tokenizer_dir, tokenizer, route):
    worker = worker_for(tokenizer_dir, route)
    math_row = run(worker, tokenizer, CLOSED, data_source="openai/gsm8k")  # a math set under any name: stepwise
    assert math_row["reward_extra_info"]["acc"] == 1.0 and math_row["reward_extra_info"]["num_steps"] >= 1
    qa = run(worker, tokenizer, "<answer>56</answer>", data_source="searchR1_nq", ground_truth={"target": ["56"]})
    assert qa["reward_score"] == 1.0 and qa["reward_extra_info"]["num_steps"] == 0  # verl's exact-match QA grader
    assert set(qa["reward_extra_info"]) == set(math_row["reward_extra_info"])  # verl stacks every key
    assert json.loads(qa["reward_extra_info"]["step_token_ends"]) == []


@pytest.mark.parametrize("section", ["+reward.reward_kwargs", "+reward.custom_reward_function.reward_kwargs"])
def test_verl_sources_work_on_both_routes(tokenizer_dir, tokenizer, section):
    route = [] if section == "+reward.reward_kwargs" else STOCK
    listed = worker_for(tokenizer_dir, [*route, f"{section}.verl_sources=[openai/gsm8k]"])
    gsm8k = run(listed, tokenizer, GSM8K_STYLE, data_source="openai/gsm8k")
    assert gsm8k["reward_score"] == 1.0 and gsm8k["reward_extra_info"]["acc"] == 1.0  # verl's gsm8k grader
    assert run(listed, tokenizer, GSM8K_STYLE, data_source="lighteval/MATH")["reward_extra_info"]["acc"] == 0.0
    with pytest.raises(ConfigError, match="my_code_task.*remove its prefix from verl_sources"):
        run(worker_for(tokenizer_dir, [*route, f"{section}.verl_sources=[my_code]"]), tokenizer, CLOSED, "my_code_task")


# ------------------------------------------------------------------------------------------ the documented routes


def documented_routes() -> list[list[str]]:
    """The overrides of each bash example of docs/reward.md's "Reuse in another verl project"."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "reward.md").read_text(encoding="utf-8")
    section = text.split("## Reuse in another verl project", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [block.replace("\\\n", " ").split() for block in blocks]


def test_every_documented_route_honours_its_thinking_setting(tokenizer_dir, tokenizer):
    """Finding 3: the docs once gave ``reward.reward_kwargs`` for every route; run each documented command."""
    routes = documented_routes()
    assert len(routes) == 3 and any("reward.reward_manager.name=naive" in route for route in routes)
    for route in routes:
        assert any(".thinking=required" in override for override in route), route
        worker = worker_for(tokenizer_dir, route)
        assert run(worker, tokenizer, CLOSED)["reward_extra_info"]["acc"] == 1.0, route
        assert run(worker, tokenizer, UNCLOSED)["reward_extra_info"]["acc"] == 0.0, route
