"""The stepwise score: rules, config validation, and the hard time bound on adversarial text."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verl_pdai.core.bounded import BoundedScorer
from verl_pdai.core.scoring import ConfigError, StepwiseConfig, score_response

REFERENCE = "The legs are 6 and 8. The hypotenuse is $\\sqrt{36+64} = 10$. The area is $\\frac{6 \\cdot 8}{2} = 24$."


def test_right_answer_with_clean_steps_beats_wrong_answer_with_key_quantities():
    right = score_response(["Area is $\\frac{48}{2}$.\n\nSo \\boxed{24}."], ["24"], REFERENCE)
    wrong = score_response(["The hypotenuse is $\\sqrt{36+64} = 10$.\n\nSo \\boxed{48}."], ["24"], REFERENCE)
    assert right.acc == 1.0 and wrong.acc == 0.0
    # 10 derived by a correct claim; 24 is the answer: excluded
    assert wrong.process_score > 0 and wrong.key_quantities_reached == 1
    assert right.score > wrong.score


def test_false_claim_is_penalised_and_located():
    result = score_response(["We know $2+2=4$.\n\nAnd $7 \\times 8 = 54$.\n\nSo \\boxed{54}."], ["56"])
    assert result.num_false_claims == 1 and result.first_error_step == 1
    assert result.step_scores[1] < 0 and result.step_scores[0] == 0
    assert result.process_score == pytest.approx(sum(result.step_scores), abs=1e-6)


def test_repetition_is_penalised():
    loop = "Let me reconsider the whole problem from the start again.\n\n"
    result = score_response([loop * 6 + "\\boxed{3}"], ["3"])
    assert result.num_repeated_steps == 5 and result.process_score < 0


def test_process_part_is_capped_and_step_scores_rescaled():
    config = StepwiseConfig(process_weight=5.0, process_cap=0.1)
    result = score_response(["$1+1=3$.\n\n$2+2=5$.\n\n\\boxed{0}"], ["1"], "", config)
    assert result.process_score == pytest.approx(-0.1)
    assert sum(result.step_scores) == pytest.approx(-0.1, abs=1e-5)


@pytest.mark.parametrize(
    ("mode", "text", "acc"),
    [
        ("auto", "<think>\nI think it is 5\n</think>\n\n\\boxed{5}", 1.0),
        ("auto", "<think>\nmaybe \\boxed{5}", 0.0),  # opened, never closed: no outcome
        ("auto", "no tags, \\boxed{5}", 1.0),
        ("required", "no tags, \\boxed{5}", 0.0),  # template opened <think> in the prompt
        ("required", "thinking...\n</think>\n\\boxed{5}", 1.0),
        ("auto", "\\boxed{5} inside thinking\n</think>\nanswer after: \\boxed{6}", 0.0),  # graded after </think>
        ("off", "<think>\nmaybe \\boxed{5}", 1.0),
    ],
)
def test_thinking_modes(mode, text, acc):
    assert score_response([text], ["5"], config=StepwiseConfig(thinking=mode)).acc == acc


def test_pieces_are_step_boundaries_and_offsets_are_in_the_joined_text():
    pieces = ["First part without a break ", "second part after a hint. \\boxed{1}"]
    result = score_response(pieces, ["1"])
    assert result.num_steps == 2
    assert result.step_char_ends == [len(pieces[0].rstrip()), len("".join(pieces))]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"proces_weight": 0.1}, "unknown key"),
        ({"thinking": "sometimes"}, "thinking='sometimes'"),
        ({"process_cap": 0.6}, "below outcome_weight/2"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"process_weight": "lots"}, "not a valid float"),
        ({"num_workers": 0}, "num_workers"),
    ],
)
def test_bad_config_fails_with_a_message_that_says_what_to_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        StepwiseConfig.from_mapping(values)


@pytest.fixture(scope="module")
def scorer():
    scorer = BoundedScorer(StepwiseConfig(timeout_s=2.0))
    yield scorer
    scorer.close()


ADVERSARIAL = {
    "1MB": "Step: $1+1=2$.\n\n" * 70_000 + "\\boxed{2}",
    "nested_braces": "\\boxed{" + "{" * 10_000 + "2" + "}" * 10_000 + "}",
    "unclosed_box": "so the answer is \\boxed{2",
    "power_tower": "$9^{9^{9^{9}}} = 3$ and \\boxed{9^{9^{9^{9}}}}",
    "huge_factorial": "$100000000! = 5$, \\boxed{100000000!}",
    "nul_bytes": "\x00\\boxed{2\x00}\x00",
    "odd_unicode": "\ud800\u202e\\boxed{２}\ufeff\U0001f600",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_responses_get_a_defined_score_within_the_bound(scorer, name):
    start = time.monotonic()
    result = scorer.score([ADVERSARIAL[name]], "2", REFERENCE)
    assert time.monotonic() - start < scorer.config.timeout_s + 1.5
    assert -0.2 - 1e-9 <= result.score <= 1.2 + 1e-9
    assert result.timed_out or result.error == "" or result.score == 0.0


def test_a_hang_is_cut_at_the_bound_flagged_and_the_worker_replaced():
    scorer = BoundedScorer(StepwiseConfig(timeout_s=1.0, num_workers=1), handler="tests.core.pool_handlers:hang")
    try:
        scorer.score(["warm-up"], "1")  # first call also starts the worker; start-up is not charged to the bound
        start = time.monotonic()
        result = scorer.score(["\\boxed{1}"], "1")
        assert time.monotonic() - start < 2.5
        # the outcome could not be decided: the floor score (outcome 0, process -cap), flagged, never 0
        assert result.timed_out and result.unscored and result.acc == 0.0
        assert result.score == -scorer.config.process_cap
        assert scorer.pool.stats["timeouts"] == 2 and scorer.pool.stats["restarts"] >= 2
    finally:
        scorer.close()
    assert scorer.pool.stats["alive"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=400), gt=st.sampled_from(["2", "\\frac{1}{2}", "x=3", "(0,1]"]))
def test_scoring_never_raises_and_stays_in_range(scorer, text, gt):
    start = time.monotonic()
    result = scorer.score([text], gt, REFERENCE)
    assert time.monotonic() - start < scorer.config.timeout_s + 1.5
    assert -0.2 - 1e-9 <= result.score <= 1.2 + 1e-9
    assert result.acc in (0.0, 1.0) and len(result.step_scores) == result.num_steps


def test_the_final_answer_is_read_past_max_chars():
    """Step checks read the first max_chars characters; the answer at the end of a long response still counts."""
    long = "Step: $1+1=2$.\n\n" * 2000 + "So \\boxed{7}."
    result = score_response([long], ["7"], config=StepwiseConfig(max_chars=1000))
    assert result.truncated and result.acc == 1.0 and result.pred == "7"
