"""Harvested references (pure, CPU, fast): what is harvested from a verified response, the bank's bounds and its
persistence."""

from __future__ import annotations

import json

import pytest

from verl_pdai.core.config_values import ConfigError
from verl_pdai.core.hints import build_hints
from verl_pdai.core.references import (
    BACKFILL,
    DATASET,
    SOURCES,
    HarvestConfig,
    ReferenceBank,
    concise_solution,
    harvest_reference,
    row_source,
)
from verl_pdai.core.rollout_metrics import HINT_SOURCES

ANSWER = "13"
CONCISE = (
    "The diagonal splits the rectangle into two right triangles with legs 5 and 12.\n\n"
    "By the Pythagorean theorem the squared diagonal is $5^2 + 12^2 = 169$.\n\n"
    "Taking the square root, the diagonal is $\\boxed{13}$."
)
THINKING = "Hmm, legs 5 and 12... maybe 17? No wait, I should square them and add.\n\n"
RESPONSE = "<think>\n" + THINKING + "</think>\n\n" + CONCISE


def hints(reference: str):
    return build_hints(reference, ANSWER, (0.0, 0.25, 0.5, 0.75))


def test_sources_are_the_metric_kinds_and_rows_name_only_theirs():
    assert HINT_SOURCES == SOURCES
    assert row_source("backfill") == BACKFILL and row_source(" Corpus ") == "corpus"
    # a row cannot claim a harvested reference, and unknown or missing names are the data set's own
    assert row_source("harvested") == row_source("llm") == row_source(None) == DATASET


def test_concise_solution_is_the_part_after_the_thinking():
    assert concise_solution(RESPONSE) == CONCISE
    assert concise_solution(THINKING + "</think>" + CONCISE, "required") == CONCISE  # template opened <think>
    assert concise_solution(CONCISE) == CONCISE  # a model that does not think: the whole text
    assert concise_solution(CONCISE, "required") is None  # the reward would have read nothing
    assert concise_solution("<think>\n" + THINKING + CONCISE) is None  # thinking opened, never closed
    assert concise_solution(THINKING + "</think>\n\n  ") is None


def test_harvest_keeps_a_usable_reference_and_says_why_it_refuses_one():
    config = HarvestConfig()
    assert harvest_reference(RESPONSE, hints, config) == (CONCISE, "")
    assert harvest_reference("<think>" + THINKING + CONCISE, hints, config) == (None, "thinking_open")
    two_steps = "Square and add: $5^2 + 12^2 = 169$.\n\nThe diagonal is $\\boxed{13}$."
    assert harvest_reference(two_steps, hints, config) == (None, "too_few_steps")
    assert harvest_reference(two_steps, hints, HarvestConfig(min_steps=2))[0] == two_steps
    assert harvest_reference(RESPONSE, hints, HarvestConfig(max_bytes_per_problem=100)) == (None, "too_long")
    # the answer-leak guard of data-set references: every step before the last states 13
    leaking = "The diagonal is 13.\n\nIndeed 13 squared is 169.\n\nSo it is $\\boxed{13}$."
    assert not hints(leaking).usable
    assert harvest_reference(leaking, hints, config) == (None, "unusable")


def test_a_solution_whose_last_paragraph_is_not_its_answer_is_refused():
    """A review: a hint never shows the last step, meant to state the answer; with a verification paragraph after the
    answer (or a response cut off after it) the answer step itself would be in the hint."""
    config = HarvestConfig()
    verified = CONCISE + "\n\nCheck: $13^2 = 169$, which matches."
    assert harvest_reference(verified, hints, config) == (None, "answer_not_last")
    cut = CONCISE.rsplit("\n\n", 1)[0] + "\n\nSo the diagonal is $\\boxed{13}$.\n\nLet me also"
    assert harvest_reference(cut, hints, config) == (None, "answer_not_last")
    no_box = CONCISE.replace("$\\boxed{13}$", "13")
    assert harvest_reference(no_box, hints, config) == (None, "answer_not_last")


def test_the_bank_keeps_the_shortest_reference_per_problem():
    bank = ReferenceBank()
    longer = CONCISE.replace("Taking", "Finally, taking")
    assert bank.offer("p", longer, step=1) == "added"
    assert bank.offer("p", longer + " ", step=2) == "kept" and bank.get("p") == longer
    assert bank.offer("p", CONCISE, step=3) == "replaced" and bank.get("p") == CONCISE
    assert bank.offer("p", CONCISE, step=4) == "kept"  # as short: the stored one stays
    assert bank.get("q") is None and len(bank) == 1 and "p" in bank
    assert bank.bytes == len(b"p") + len(CONCISE.encode())
    stats = bank.stats()
    assert (stats["references"], stats["added"], stats["replaced"], stats["evicted"]) == (1, 1, 1, 0)


def test_the_bank_is_bounded_per_problem_and_in_total():
    per = len(CONCISE.encode())
    bank = ReferenceBank(HarvestConfig(max_bytes_per_problem=per, max_bytes=2 * (per + 2)))
    assert bank.offer("p1", CONCISE + "!") == "too_long" and len(bank) == 0
    for pid in ("p1", "p2", "p3"):
        assert bank.offer(pid, CONCISE) == "added"
    # the oldest is dropped to stay within max_bytes
    assert bank.get("p1") is None and bank.get("p3") == CONCISE and bank.bytes <= 2 * (per + 2)
    assert bank.stats()["evicted"] == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"min_steps": 1}, "min_steps=1: must be >= 2"),
        ({"max_bytes_per_problem": 0}, "max_bytes_per_problem must be >= 1"),
        ({"max_bytes": 10, "max_bytes_per_problem": 20}, "max_bytes=10 must be >= max_bytes_per_problem=20"),
        ({"max_byte": 10}, "unknown key"),
        ({"enabled": "maybe"}, "enabled='maybe' is not a valid bool"),
    ],
)
def test_config_errors_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        HarvestConfig.from_mapping(values)


def test_state_round_trips_through_json_and_refuses_bad_state():
    bank = ReferenceBank()
    bank.offer("a", CONCISE, step=3)
    bank.offer("b", CONCISE + " Done.", step=4)
    state = json.loads(json.dumps(bank.state_dict()))
    restored = ReferenceBank()
    restored.load_state_dict(state)
    assert restored.state_dict() == bank.state_dict() and restored.bytes == bank.bytes
    bad = json.loads(json.dumps(state))
    bad["references"].append(["a", CONCISE, 5])
    with pytest.raises(ValueError, match="appears twice"):
        restored.load_state_dict(bad)
    assert restored.state_dict() == bank.state_dict()  # a refused state changes nothing
    for broken in ({**state, "version": 2}, {**state, "references": "x"}, {**state, "counters": {"n_lost": 1}}):
        with pytest.raises(ValueError):
            ReferenceBank().load_state_dict(broken)


def test_a_resumed_run_applies_its_own_smaller_bounds():
    bank = ReferenceBank()
    bank.offer("short", CONCISE)
    bank.offer("long", CONCISE + " " + CONCISE)
    smaller = ReferenceBank(HarvestConfig(max_bytes_per_problem=len(CONCISE.encode())))
    with pytest.raises(ValueError, match="exceeds max_bytes_per_problem"):
        ReferenceBank(smaller.config).load_state_dict({**bank.state_dict(), "config": smaller.config.to_dict()})
    smaller.load_state_dict(bank.state_dict(), keep_config=True)
    assert smaller.get("short") == CONCISE and smaller.get("long") is None and smaller.stats()["evicted"] == 1
