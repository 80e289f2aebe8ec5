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
