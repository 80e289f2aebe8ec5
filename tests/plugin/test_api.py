"""``verl_pdai.api`` and the reward settings without verl's reward loop: ``score`` never raises, what a row
without a reference earns, which side of a claim derives a key, and the data_source routing rules."""

from __future__ import annotations

import json

import pytest

from verl_pdai.api import compute_score, score
from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.reward_settings import (
    DEFAULT_VERL_SOURCES,
    RewardSettings,
    SourceRouting,
    manager_settings,
    stock_route_problems,
)

RIGHT = "Step 1: $7 \\times 8 = 56$.\n\nStep 2: So the product is $\\boxed{56}$."


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text here")


class NotText:
    def __str__(self):  # the point: a str() that breaks its contract
        return 42


# ------------------------------------------------------------------------------------------ score never raises


@pytest.mark.parametrize(
    "kwargs",
    [
        {"response": Unprintable()},
        {"response": NotText()},
        {"response": RIGHT, "problem": Unprintable()},
        {"response": RIGHT, "reference_solution": Unprintable()},
    ],
    ids=["response", "str-returns-int", "problem", "reference"],
)
def test_score_never_raises_on_unreadable_input(kwargs):
    args = {"ground_truth": "56", **kwargs}
    result = score(args.pop("response"), **args)
    assert result.score == 0.0 and result.acc == 0.0
    assert "not readable as text" in result.error


@pytest.mark.parametrize("truth", [Unprintable(), None, object(), [Unprintable(), "56"], float("nan")])
def test_score_never_raises_on_odd_ground_truths(truth):
    result = score(RIGHT, truth)
    assert isinstance(result.score, float)


def test_score_refuses_a_bad_config_naming_the_key():
    with pytest.raises(ConfigError, match="thinking='maybe'"):
        score(RIGHT, "56", config={"thinking": "maybe"})
    with pytest.raises(ConfigError, match="routing is compute_score's"):
        score(RIGHT, "56", config={"verl_sources": []})


# ------------------------------------------------------------------------------- docs/reward.md, made true


def test_without_a_reference_the_process_part_is_penalties_only():
    """No reference solution: no key quantities, so no step earns credit; a clean response gets 0 per step and a
    false claim its fixed penalty (the process part is in [-process_cap, 0])."""
    clean = score(RIGHT, "56")
    assert clean.num_key_quantities == 0 and clean.process_score == 0.0
    assert clean.step_scores == [0.0, 0.0]
    wrong = score("Step 1: $7 \\times 8 = 54$.\n\nSo $\\boxed{56}$.", "56")
    assert wrong.process_score == pytest.approx(-0.05) and wrong.step_scores == [pytest.approx(-0.05), 0.0]


REFERENCE = "Pencils: $12 \\cdot 3 = 36$. Notebooks: $5 \\cdot 7 = 35$. Total $36 + 35 = 71$. Change $100 - 71 = 29$."


def test_only_the_claimed_right_side_of_a_true_claim_derives_a_key():
    """``36 + 35 = 71`` derives 71, not the keys 36 and 35 written on its computed (left) side."""
    left_only = score("The total is $36 + 35 = 71$.\n\nSo $\\boxed{29}$.", "29", REFERENCE)
    assert left_only.num_key_quantities == 3 and left_only.key_quantities_reached == 1
    derived = score("$12 \\cdot 3 = 36$ and $5 \\cdot 7 = 35$, so $36 + 35 = 71$.\n\n$\\boxed{29}$", "29", REFERENCE)
    assert derived.key_quantities_reached == 3


def test_compute_score_reports_no_token_ends_on_the_stock_route():
    """The stock route sees decoded text only: step ends come in characters, never in tokens."""
    out = compute_score("math", RIGHT, "56", {})
    assert json.loads(out["step_token_ends"]) == [] and len(json.loads(out["step_char_ends"])) == 2


# ------------------------------------------------------------------------------------ data_source routing


def test_every_math_source_gets_the_stepwise_checker_and_only_verls_non_math_graders_go_to_verl():
    """The finding of a review: routing by a list of math names sent gsm8k, NuminaMath, OpenR1-Math and every
    unlisted math set elsewhere (scored 0 or failing). Only the sources verl grades that are not math go to verl."""
    from verl_pdai.data.sources import SCHEMAS
    from verl_pdai.demo.problems import DATA_SOURCE as DEMO
    from verl_pdai.learning.tasks import DATA_SOURCE as LEARNING

    routing = SourceRouting()
    names = [*SCHEMAS, *(schema.hub_id for schema in SCHEMAS.values()), DEMO, LEARNING, "pdai_test"]
    names += ["lighteval/MATH", "math_dapo", "aime25", "openai/gsm8k", "gsm8k", "numina_cn_k12", "hiyouga/geometry3k"]
    names += ["AI-MO/NuminaMath-CoT", "open-r1/OpenR1-Math-220k", "my_own_math", "", None]
    assert [n for n in names if not routing.uses_stepwise(n)] == []
    for code_or_qa in ("codecontests", "apps", "codeforces", "taco", "searchR1_nq", "searchR1_hotpotqa", "x/taco"):
        assert not routing.uses_stepwise(code_or_qa), code_or_qa
    assert SourceRouting(verl_sources=()).uses_stepwise("codecontests")


def test_verl_sources_accepts_a_list_or_a_comma_separated_string():
    assert SourceRouting.from_mapping({"verl_sources": ["GSM8K", " apps "]}).verl_sources == ("gsm8k", "apps")
    assert not SourceRouting.from_mapping({"verl_sources": "gsm8k,apps"}).uses_stepwise("openai/gsm8k")
    assert SourceRouting.from_mapping({"verl_sources": ""}).verl_sources == ()
    for bad in ({"verl_sources": [1]}, {"verl_sources": 3}, {"verl_sources": {"a": 1}}, {"verl_sources": [""]}):
        with pytest.raises(ConfigError, match="verl_sources"):
            SourceRouting.from_mapping(bad)


def test_settings_errors_name_the_section_and_the_key():
    with pytest.raises(ConfigError, match=r"^reward\.reward_kwargs: .*thinking='maybe'"):
        RewardSettings.from_mapping({"thinking": "maybe"}, "reward.reward_kwargs")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['thinkin'\].*verl_sources"):
        RewardSettings.from_mapping({"thinkin": "on"}, "reward.reward_kwargs")
    settings = RewardSettings.from_mapping({"thinking": "required", "verl_sources": ["x"]}, "s")
    assert settings.stepwise.thinking == "required" and settings.routing.verl_sources == ("x",)
    assert DEFAULT_VERL_SOURCES == RewardSettings().routing.verl_sources


def test_misplaced_keys_are_named_with_where_they_go():
    with pytest.raises(ConfigError, match=r"set reward\.reward_kwargs\.thinking instead"):
        manager_settings({}, {"thinking": "required"})
    assert manager_settings(None, {}).stepwise.thinking == "auto"
    assert "reward.custom_reward_function.reward_kwargs.thinking" in stock_route_problems({"thinking": "required"})
    assert stock_route_problems({"overlong_buffer_cfg": {}}) == ""  # another manager's key: not ours to judge


def test_compute_score_defers_verl_sources_to_verl_and_keeps_the_keys():
    math_row = compute_score("math", RIGHT, "56", {})
    assert compute_score("openai/gsm8k", RIGHT, "56", {})["acc"] == 1.0  # a math set: the stepwise checker
    gsm8k = compute_score("openai/gsm8k", "so #### 56", "56", {}, verl_sources=["openai/gsm8k"])
    assert gsm8k["score"] == 1.0 and gsm8k["acc"] == 1.0 and set(gsm8k) == set(math_row)  # verl's gsm8k grader
    with pytest.raises(ConfigError, match="my_task.*remove its prefix from verl_sources"):
        compute_score("my_task", RIGHT, "56", {}, verl_sources=["my_task"])
