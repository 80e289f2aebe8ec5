"""Which reference ``pdai_hint`` builds its hints from, and the ``pdai_hint_source`` it records: the row's own
reference first (data set, backfill, corpus), the harvested one the trainer handed over when the row has no usable
one. verl's agent-loop machinery, fake LLM server at the GPU boundary, real Qwen2.5 tokenizer."""

from __future__ import annotations

import pytest

from verl_pdai.core.hints import build_hints
from verl_pdai.demo.agent_harness import HarnessWorker, math_row
from verl_pdai.plugin import fields as F

from .fake_server import Script, ScriptedServer
from .test_agent_loop import AFTER_HINT, PROBLEM, SOLUTION, WRONG_LONG, K, make_config, response_of, run_group, scripts

HARVESTED = (
    "Call the diagonal d; it is the hypotenuse of a right triangle with legs 6 and 8.\n\n"
    "Then $d^2 = 6^2 + 8^2 = 100$.\n\n"
    "So $d = \\boxed{10}$."
)
HARD_PRIOR = {"alpha": 1, "beta": 4}


@pytest.fixture(scope="module")
def config(tokenizer_dir):
    return make_config(tokenizer_dir)


def hinted_mains(config, tokenizer, uid, row):
    """The main sessions of a group whose previews fail: each decides to hint, if its reference allows."""
    server = ScriptedServer(tokenizer, scripts(Script(WRONG_LONG), Script(WRONG_LONG, AFTER_HINT)), 0.0005)
    outputs = run_group(HarnessWorker(config, tokenizer, server), uid, row)
    return [(o.extra_fields, response_of(o)) for o in outputs[K:]]


def hint_text(tokenizer, info, response) -> str:
    ids, _, _ = response
    ((start, end),) = info[F.HINT_SPANS_FIELD]
    return tokenizer.decode(ids[start:end])


def test_a_row_without_a_reference_is_hinted_from_the_harvested_one(config, tokenizer):
    row = math_row(PROBLEM, "10", None, prior=HARD_PRIOR)
    row[F.HARVESTED_REFERENCE_FIELD] = HARVESTED
    expected = build_hints(HARVESTED, "10", (0.0, 0.25, 0.5, 0.75))
    for info, response in hinted_mains(config, tokenizer, "harvested", row):
        assert info[F.DECISION_FIELD].startswith("hinted") and info[F.HINT_SOURCE_FIELD] == "harvested"
        assert hint_text(tokenizer, info, response) == expected.for_level(info[F.HINT_LEVEL_FIELD]).text


def test_the_rows_own_reference_comes_first_and_names_its_source(config, tokenizer):
    row = math_row(PROBLEM, "10", SOLUTION, prior=HARD_PRIOR)
    row["extra_info"]["reference_source"] = "backfill"
    row[F.HARVESTED_REFERENCE_FIELD] = HARVESTED
    expected = build_hints(SOLUTION, "10", (0.0, 0.25, 0.5, 0.75))
    for info, response in hinted_mains(config, tokenizer, "backfilled", row):
        assert info[F.HINT_SOURCE_FIELD] == "backfill" and info[F.HINT_LEVEL_FIELD] > 0
        assert hint_text(tokenizer, info, response) == expected.for_level(info[F.HINT_LEVEL_FIELD]).text


def test_an_unusable_row_reference_falls_back_to_the_harvested_one(config, tokenizer):
    row = math_row(PROBLEM, "10", "The diagonal is $\\boxed{10}$.", prior=HARD_PRIOR)  # one step: no hint
    row[F.HARVESTED_REFERENCE_FIELD] = HARVESTED
    for info, _ in hinted_mains(config, tokenizer, "fallback", row):
        assert info[F.HINT_SOURCE_FIELD] == "harvested" and info[F.HINT_LEVEL_FIELD] > 0


def test_no_reference_at_all_is_never_hinted_and_records_no_source(config, tokenizer):
    row = math_row(PROBLEM, "10", None, prior=HARD_PRIOR)
    row[F.HARVESTED_REFERENCE_FIELD] = ""  # what the trainer hands a problem it has not harvested
    for info, (_, mask, _) in hinted_mains(config, tokenizer, "none", row):
        assert info[F.DECISION_FIELD] == "no_reference" and info[F.HINT_SOURCE_FIELD] == ""
        assert set(mask) == {1}
