"""Config conversion shared by the reward and rollout settings."""

from __future__ import annotations

import pytest

from verl_pdai.core.config_values import ConfigError, as_count, as_float
from verl_pdai.core.injection import InjectionConfig


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("false", False), ("True", True), (0, False), ("1", True)]
)
def test_bool_keys_accept_bools_and_words_only(value, expected):
    assert InjectionConfig.from_mapping({"blocking": value}).blocking is expected


@pytest.mark.parametrize("value", ["maybe", "2", 3])
def test_bool_keys_reject_anything_else(value):
    # bool("maybe") would be True: the conversion must not fall back to truthiness
    with pytest.raises(ConfigError, match="blocking="):
        InjectionConfig.from_mapping({"blocking": value})


def test_unknown_keys_name_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['min_token'\]; valid keys are .*'min_tokens'"):
        InjectionConfig.from_mapping({"min_token": 5})


def test_none_keeps_optional_fields_and_numbers_convert():
    config = InjectionConfig.from_mapping({"seed": None, "min_tokens": "64", "running_weight": 0})
    assert config.seed is None and config.min_tokens == 64 and config.running_weight == 0.0


@pytest.mark.parametrize(
    ("function", "value"),
    [(as_float, True), (as_float, "1.0"), (as_float, float("nan")), (as_count, 1.5), (as_count, -1), (as_count, False)],
)
def test_checked_numbers_reject_bad_values_with_the_name(function, value):
    with pytest.raises(ValueError, match="field"):
        function("field", value)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"timeout_s": None}, r"timeout_s=None .*null: set a value or remove the key"),
        ({"num_workers": 2.7}, r"num_workers=2\.7 .*not a whole number"),
        ({"num_workers": True}, r"num_workers=True .*bool"),
        ({"process_cap": False}, r"process_cap=False .*bool"),
        ({"memory_limit_mb": 1}, r"memory_limit_mb=1: must be 0 \(no limit\) or >= 256"),
    ],
)
def test_values_that_used_to_slip_through_are_named(values, named):
    """A review found nulls failing later with an unnamed TypeError, 2.7 workers becoming 2, True becoming 1, and a
    1 MB memory limit passing while every response then scored the floor."""
    from verl_pdai.core.scoring import StepwiseConfig

    with pytest.raises(ConfigError, match=named):
        StepwiseConfig.from_mapping(values)
    assert StepwiseConfig.from_mapping({"num_workers": 2.0, "timeout_s": 2}).num_workers == 2
