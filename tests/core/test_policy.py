"""Tests of the high-level intervention policy (pure, CPU, fast)."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.preview_world import World, simulate
from verl_pdai.core.policy import InterventionPolicy, PolicyConfig, previewed_success_rate

probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
intercepts = st.floats(min_value=-4.0, max_value=4.0)
slopes = st.floats(min_value=0.25, max_value=4.0)

# The plain model sigmoid(logit(p) + w f): the calibration held at intercept 0, slope 1.
PLAIN = PolicyConfig(intercept_prior_std=0.0, slope_prior_std=0.0)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _simulate(policy: InterventionPolicy, w_true: float, n: int, batch: int, seed: int, closed_loop: bool) -> None:
    """Feed ``policy`` outcomes drawn from the true model; levels random (open) or chosen by the policy."""
    rng = random.Random(seed)
    top = policy.num_levels - 1
    for _ in range(n // batch):
        obs = []
        for _ in range(batch):
            p = rng.uniform(0.02, 0.5)
            level = policy.choose_level(p, rng) if closed_loop else rng.randint(1, top)
            f = policy.fraction(level)
            obs.append((p, level, rng.random() < _sigmoid(_logit(p) + w_true * f)))
        policy.update(obs)


# ------------------------------------------------------------------------------------ previewed_success_rate


def test_previewed_success_rate_hand_computed():
    assert previewed_success_rate(1, 1, 0, 0) == pytest.approx(0.5)
    assert previewed_success_rate(1, 1, 3, 1) == pytest.approx(2 / 5)
    assert previewed_success_rate(2, 3, 4, 4) == pytest.approx(6 / 9)
    assert previewed_success_rate(1, 1, 0, 0, running=3) == pytest.approx(0.5)  # default weight 0
    assert previewed_success_rate(1, 1, 3, 1, running=2, running_weight=0.5) == pytest.approx(2 / 6)
    assert previewed_success_rate(0.5, 4.5, 1, 0, running=3, running_weight=1.0) == pytest.approx(0.5 / 9)


def test_previewed_success_rate_running_lowers_estimate():
    base = previewed_success_rate(1, 1, 2, 1)
    assert previewed_success_rate(1, 1, 2, 1, running=2, running_weight=0.3) < base


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0, 1, 0, 0), {}, "must be > 0"),
        ((1, -1, 0, 0), {}, "must be > 0"),
        ((1, 1, -1, 0), {}, "finished must be >= 0"),
        ((1, 1, 2, -1), {}, "successes must be >= 0"),
        ((1, 1, 2, 3), {}, r"successes \(3\) cannot exceed finished \(2\)"),
        ((1, 1, 2, 1), {"running": -1}, "running must be >= 0"),
        ((1, 1, 2, 1), {"running": 1, "running_weight": 1.5}, r"running_weight must lie in \[0, 1\]"),
        ((1, 1, 2, 1), {"running_weight": -0.1}, r"running_weight must lie in \[0, 1\]"),
        ((1, 1, 2.5, 1), {}, "finished must be an integer"),
        ((float("nan"), 1, 0, 0), {}, "prior_alpha must be finite"),
        (("1", 1, 0, 0), {}, "prior_alpha must be a real number"),
    ],
)
def test_previewed_success_rate_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        previewed_success_rate(*args, **kwargs)


# ------------------------------------------------------------------------------------ level choice


def test_default_w_init_matches_its_justification():
    # A 75% hint lifts p = 0.05 to about 0.5 with the default w.
    policy = InterventionPolicy()
    assert policy.predicted_success(0.05, 3) == pytest.approx(0.5, abs=0.02)
    assert policy.predicted_success(0.3, 0) == pytest.approx(0.3)


@settings(max_examples=200, deadline=None)
@given(p1=probabilities, p2=probabilities, w=st.floats(min_value=0.0, max_value=12.0), b0=intercepts, b1=slopes)
def test_level_is_monotone_non_increasing_in_p(p1, p2, w, b0, b1):
    policy = InterventionPolicy.for_decisions(PolicyConfig(), {"w": w, "intercept": b0, "slope": b1})
    lo, hi = sorted((p1, p2))
    assert policy.choose_level(lo) >= policy.choose_level(hi)


@settings(max_examples=200, deadline=None)
@given(p=probabilities, w=st.floats(min_value=0.0, max_value=12.0), b0=intercepts, b1=slopes)
def test_level_is_smallest_reaching_target(p, w, b0, b1):
    policy = InterventionPolicy.for_decisions(PolicyConfig(), {"w": w, "intercept": b0, "slope": b1})
    tau = policy.config.target_rate
    level = policy.choose_level(p)
    if p >= tau:
        assert level == 0
        return
    assert level >= 1  # a hard problem always gets a hint
    reached = policy.predicted_success(p, level) >= tau - 1e-12
    assert reached or level == policy.num_levels - 1
    for lower in range(1, level):
        assert policy.predicted_success(p, lower) < tau + 1e-12


@pytest.mark.parametrize("p", [0.5, 0.7, 1.0])
def test_easy_problems_get_no_hint(p):
    assert InterventionPolicy().choose_level(p) == 0
    explorer = InterventionPolicy(PolicyConfig(explore_spread=1.0))
    rng = random.Random(0)
    assert all(explorer.choose_level(p, rng) == 0 for _ in range(50))


def test_highest_level_when_target_unreachable():
    policy = InterventionPolicy(PolicyConfig(w_init=1.0))  # a 75% hint adds only 0.75 log-odds
    assert policy.predicted_success(0.05, 3) < 0.5
    assert policy.choose_level(0.05) == 3
    assert policy.choose_level(0.0) == 3
    flat = InterventionPolicy(PolicyConfig(w_init=0.0))  # hints modelled as useless: still the highest
    assert flat.choose_level(0.49) == 3


def test_predicted_success_uses_the_calibration():
    policy = InterventionPolicy.for_decisions(PolicyConfig(), {"w": 2.0, "intercept": -0.5, "slope": 1.5})
    assert policy.predicted_success(0.2, 2) == pytest.approx(_sigmoid(-0.5 + 1.5 * _logit(0.2) + 2.0 * 0.5))
    assert policy.predicted_success(0.0, 0) == pytest.approx(_sigmoid(-0.5 + 1.5 * _logit(0.005)))  # clamped p
    # Threshold of level h: the p at which b0 + b1 logit(p) + w f_h = logit(tau) = 0.
    for level, threshold in enumerate(policy.level_thresholds()[1:], start=1):
        assert threshold == pytest.approx(_sigmoid((0.5 - 2.0 * policy.fraction(level)) / 1.5))
        assert policy.predicted_success(threshold, level) == pytest.approx(0.5)


def test_choice_follows_thresholds():
    policy = InterventionPolicy()  # w = 4
    thresholds = policy.level_thresholds()
    assert thresholds[0] == 0.5
    assert thresholds[1] == pytest.approx(_sigmoid(-1.0))
    assert list(thresholds) == sorted(thresholds, reverse=True)
    assert policy.choose_level(0.3) == 1  # sigmoid(logit(.3) + 1) = 0.54
    assert policy.choose_level(0.2) == 2  # 0.40 at level 1, 0.65 at level 2
    assert policy.choose_level(0.05) == 3


def test_invalid_inputs_to_model():
    policy = InterventionPolicy()
    for bad_p in (-0.1, 1.1, float("nan"), "0.3", None):
        with pytest.raises(ValueError, match="p must"):
            policy.choose_level(bad_p)
    with pytest.raises(ValueError, match=r"level must lie in \[0, 3\], got 4"):
        policy.predicted_success(0.3, 4)
    with pytest.raises(ValueError, match="level must be an integer"):
        policy.predicted_success(0.3, 1.0)


# ------------------------------------------------------------------------------------ decision params


def test_for_decisions_reproduces_the_fitted_policy():
    trained = InterventionPolicy(PolicyConfig(explore_spread=0.25))
    _simulate(trained, 5.0, n=1500, batch=300, seed=4, closed_loop=True)
    params = trained.decision_params()
    assert set(params) == {"w", "intercept", "slope"}
    copy = InterventionPolicy.for_decisions(trained.config, params)
    grid = [i / 400 for i in range(401)]
    assert copy.level_thresholds() == trained.level_thresholds()
    assert [copy.choose_level(p) for p in grid] == [trained.choose_level(p) for p in grid]
    assert copy.predicted_success(0.2, 2) == trained.predicted_success(0.2, 2)
    assert copy.diagnostics()["n_window"] == 0  # decisions only: the history stays with the trainer


def test_for_decisions_defaults_clamps_and_holds():
    config = PolicyConfig()
    # A trainer that sends only w implies the plain calibration.
    assert InterventionPolicy.for_decisions(config, {"w": 2.5}).decision_params() == {
        "w": 2.5,
        "intercept": 0.0,
        "slope": 1.0,
    }
    assert InterventionPolicy.for_decisions(config).decision_params() == {"w": 4.0, "intercept": 0.0, "slope": 1.0}
    assert InterventionPolicy.for_decisions(config, {"w": None, "slope": None}).w == 4.0
    clamped = InterventionPolicy.for_decisions(config, {"w": 50, "intercept": -9.0, "slope": 10.0})
    assert clamped.decision_params() == {"w": 12.0, "intercept": -4.0, "slope": 4.0}
    held = InterventionPolicy.for_decisions(PLAIN, {"w": 3.0, "intercept": 1.0, "slope": 2.0})
    assert held.decision_params() == {"w": 3.0, "intercept": 0.0, "slope": 1.0}
    with pytest.raises(ValueError, match=r"unknown decision params \['bias'\]"):
        InterventionPolicy.for_decisions(config, {"bias": 1.0})
    with pytest.raises(ValueError, match="decision param slope must be a real number"):
        InterventionPolicy.for_decisions(config, {"slope": "steep"})


def test_held_calibration_is_the_plain_model():
    policy = InterventionPolicy(PLAIN)
    _simulate(policy, 3.0, n=1000, batch=250, seed=6, closed_loop=False)
    assert (policy.intercept, policy.slope) == (0.0, 1.0)
    assert policy.predicted_success(0.2, 3) == pytest.approx(_sigmoid(_logit(0.2) + policy.w * 0.75))
    assert policy.level_thresholds()[1] == pytest.approx(_sigmoid(-policy.w * 0.25))


# ------------------------------------------------------------------------------------ exploration


def test_explore_spread_moves_only_to_adjacent_hint_levels():
    policy = InterventionPolicy(PolicyConfig(explore_spread=0.5))
    rng = random.Random(1)
    for p in (0.3, 0.2, 0.05):  # base levels 1, 2, 3
        base = policy.choose_level(p)
        seen = {policy.choose_level(p, rng) for _ in range(400)}
        assert base in seen
        assert all(abs(level - base) <= 1 and level >= 1 for level in seen)
        assert len(seen) > 1  # exploration does happen
    assert {policy.choose_level(0.2, rng) for _ in range(400)} == {1, 2, 3}
    assert {policy.choose_level(0.3, rng) for _ in range(400)} == {1, 2}  # never drops the hint
    assert {policy.choose_level(0.05, rng) for _ in range(400)} == {2, 3}


def test_explore_spread_rate_and_reproducibility():
    policy = InterventionPolicy(PolicyConfig(explore_spread=0.2))
    ps = [0.2] * 2000  # base level 2, so both neighbours exist
    rng_a, rng_b = random.Random(42), random.Random(42)
    run_a = [policy.choose_level(p, rng_a) for p in ps]
    run_b = [policy.choose_level(p, rng_b) for p in ps]
    assert run_a == run_b
    rng_c = random.Random(43)
    assert run_a != [policy.choose_level(p, rng_c) for p in ps]  # another seed, another stream
    moved = sum(level != 2 for level in run_a) / len(run_a)
    assert moved == pytest.approx(0.2, abs=0.03)
    # Without an rng, or with spread 0, the choice is deterministic.
    assert all(policy.choose_level(0.2) == 2 for _ in range(20))
    plain = InterventionPolicy()
    assert all(plain.choose_level(0.2, random.Random(s)) == 2 for s in range(50))


def test_exploration_draws_one_number_per_call():
    # The rng stream advances identically whatever p is, so seeded runs stay aligned.
    policy = InterventionPolicy(PolicyConfig(explore_spread=0.3))
    rng_a, rng_b = random.Random(3), random.Random(3)
    policy.choose_level(0.9, rng_a)
    policy.choose_level(0.05, rng_b)
    assert rng_a.random() == rng_b.random()


# ------------------------------------------------------------------------------------ calibration


def _max_prediction_error(policy: InterventionPolicy, w_true: float) -> float:
    """Largest |predicted - true| hinted success over p in [0.02, 0.5] and every hint level."""
    grid = [0.02 + 0.48 * i / 48 for i in range(49)]
    return max(
        abs(policy.predicted_success(p, level) - _sigmoid(_logit(p) + w_true * policy.fraction(level)))
        for p in grid
        for level in range(1, policy.num_levels)
    )


@pytest.mark.parametrize("w_true", [2.5, 6.0])
def test_calibration_converges_open_loop_plain_model(w_true):
    # p is the true rate here, so the plain model is the true one: w alone is recovered closely.
    policy = InterventionPolicy(PLAIN)
    _simulate(policy, w_true, n=4000, batch=250, seed=11, closed_loop=False)
    assert abs(policy.w - w_true) < 0.35
    assert (policy.intercept, policy.slope) == (0.0, 1.0)  # held
    diag = policy.diagnostics()
    assert diag["n_window"] == 4000
    assert abs(diag["calibration_gap"]) < 0.02


@pytest.mark.parametrize("w_true", [2.5, 6.0])
def test_calibration_converges_open_loop(w_true):
    # With the calibration fitted too, it finds p calibrated (b0 ~ 0, b1 ~ 1) and predicts the true success; w is
    # less tightly pinned than in the plain model (hinted data never has f = 0, so b and w share some of the fit).
    policy = InterventionPolicy()
    _simulate(policy, w_true, n=4000, batch=250, seed=11, closed_loop=False)
    assert abs(policy.intercept) < 0.3
    assert abs(policy.slope - 1.0) < 0.15
    assert abs(policy.w - w_true) < 0.8
    # 0.04 at w_true 6 (the plain model, true here, gets 0.01): two more free parameters cost some precision
    assert _max_prediction_error(policy, w_true) < 0.05
    assert abs(policy.diagnostics()["calibration_gap"]) < 0.02


@pytest.mark.parametrize("w_true", [2.5, 6.0])
def test_calibration_converges_closed_loop(w_true):
    # Levels chosen by the policy itself (with exploration), starting from the default w = 4.
    policy = InterventionPolicy(PolicyConfig(explore_spread=0.5))
    _simulate(policy, w_true, n=4000, batch=250, seed=5, closed_loop=True)
    assert abs(policy.w - w_true) < 0.35


def test_level_zero_outcomes_do_not_move_w():
    policy = InterventionPolicy()
    policy.update([(0.2, 0, False)] * 50 + [(0.8, 0, True)] * 50)
    assert policy.decision_params() == {"w": 4.0, "intercept": 0.0, "slope": 1.0}
    diag = policy.diagnostics()
    assert diag["n_window"] == 0
    assert diag["n_unhinted_total"] == 100
    assert diag["unhinted_success_observed"] == pytest.approx(0.5)
    assert diag["unhinted_success_predicted"] == pytest.approx(0.5)
    assert math.isnan(diag["calibration_gap"])


# ------------------------------------------------------------------------------------ the fit itself

observations = st.lists(
    st.tuples(probabilities, st.integers(min_value=0, max_value=3), st.booleans()), min_size=1, max_size=60
)


def _log_posterior_gradient(policy: InterventionPolicy) -> list[float]:
    """d log posterior / d (b0, b1, w) at the policy's parameters, over its window (computed independently)."""
    cfg = policy.config
    b0, b1, w = policy.intercept, policy.slope, policy.w
    grad = [-b0 / cfg.intercept_prior_std**2, -(b1 - 1.0) / cfg.slope_prior_std**2, -(w - 4.0) / cfg.w_prior_std**2]
    for p, f, y in policy.state_dict()["window"]:
        a = _logit(min(max(p, cfg.min_p), cfg.max_p))
        resid = float(y) - _sigmoid(b0 + b1 * a + w * f)
        grad[0] += resid
        grad[1] += a * resid
        grad[2] += f * resid
    return grad


@settings(max_examples=150, deadline=None)
@given(obs=observations)
def test_fit_is_the_constrained_maximum(obs):
    # KKT conditions of the box-constrained MAP: zero gradient inside the bounds, pointing outwards at a bound.
    policy = InterventionPolicy()
    policy.update(obs)
    _assert_sane(policy)
    if not any(level for _, level, _ in obs):
        assert policy.decision_params() == {"w": 4.0, "intercept": 0.0, "slope": 1.0}
        return
    cfg = policy.config
    values = (policy.intercept, policy.slope, policy.w)
    bounds = (cfg.intercept_bounds, cfg.slope_bounds, cfg.w_bounds)
    tol = 1e-6 * (1 + len(obs))
    for value, (low, high), g in zip(values, bounds, _log_posterior_gradient(policy), strict=True):
        if value == low:
            assert g <= tol
        elif value == high:
            assert g >= -tol
        else:
            assert abs(g) <= tol


def test_fit_starts_anywhere_and_ends_at_the_same_maximum():
    # The maximizer is unique: a policy loaded with far-off parameters refits to the same values.
    data = [(0.1 + 0.02 * (i % 20), 1 + i % 3, i % 3 != 0) for i in range(300)]
    a = InterventionPolicy()
    a.update(data)
    state = a.state_dict()
    state.update(w=0.0, intercept=4.0, slope=0.25)
    b = InterventionPolicy.from_state_dict(state)
    a.update([(0.2, 2, True)])
    b.update([(0.2, 2, True)])
    for x, y in zip(a.decision_params().values(), b.decision_params().values(), strict=True):
        assert x == pytest.approx(y, abs=1e-7)


# ------------------------------------------------------------------------------------ preview posterior

# The policy as a run uses it (tests/core/preview_world.py): it sees the preview posterior p the sessions saw at
# their decision, never the true rate q, and learns from the (p, level, success) triples the trainer hands it.
# Steps of 128 prompts (a real batch) over 512 problems, 30 steps, the first 12 not counted.
_RUN = {"problems": 512, "prompts": 128, "steps": 30, "warmup": 12}
PREVIEW_WORLDS = {
    # R1-like: decisions at 1024 tokens, when most previews are still running (bench_signal's finish rates)
    "hard-w4-store-k2of8-running": World(w_true=4.0, finish=(0.15, 0.03), **_RUN),
    "hard-w3-store13-k4of16-finished": World(
        w_true=3.0, store_prior=(1.0, 3.0), preview=(4, 4), group=(16,), finish=(1.0, 1.0), **_RUN
    ),
    "skewed-w3-store-k3of12": World(rates="skewed", w_true=3.0, preview=(3, 3), group=(12,), **_RUN),
    # a first epoch that never ends: every prompt decides from Beta(1, 1), so p takes a handful of values
    "skewed-w4-fixed11-k2to4": World(
        rates="skewed", w_true=4.0, use_store=False, preview=(2, 4), group=(8, 16), finish=(1.0, 1.0), **_RUN
    ),
}


@pytest.mark.parametrize("world", PREVIEW_WORLDS.values(), ids=PREVIEW_WORLDS.keys())
def test_hinted_success_reaches_target_from_preview_posterior(world):
    result = simulate(world)
    tau = PolicyConfig().target_rate
    assert result.hinted > 3000
    assert abs(result.hinted_success - tau) <= 0.1
    # Calibrated level by level, not only on average: observed minus predicted success at each hint level.
    assert result.worst_gap() <= 0.07


@pytest.mark.parametrize(
    "world",
    [PREVIEW_WORLDS["hard-w4-store-k2of8-running"], World(rates="bench_signal", finish=(0.15, 0.03), **_RUN)],
    ids=["hard_mix", "bench_signal"],
)
def test_calibration_fixes_what_the_plain_model_gets_wrong(world):
    plain, calibrated = simulate(world, PLAIN), simulate(world)
    # The plain model can only absorb the shrinkage of p into w, which comes out well below the true effect and
    # mispredicts the low levels; the fitted slope stretches the compressed logit(p) instead.
    assert plain.policy.w < 0.8 * world.w_true
    assert calibrated.policy.slope > 1.1
    assert calibrated.worst_gap() <= 0.6 * plain.worst_gap()


# ------------------------------------------------------------------------------------ robustness


def _assert_sane(policy: InterventionPolicy) -> None:
    cfg = policy.config
    assert math.isfinite(policy.w)
    assert cfg.w_bounds[0] <= policy.w <= cfg.w_bounds[1]
    assert cfg.intercept_bounds[0] <= policy.intercept <= cfg.intercept_bounds[1]
    assert cfg.slope_bounds[0] <= policy.slope <= cfg.slope_bounds[1]


def test_empty_update_keeps_w():
    policy = InterventionPolicy()
    policy.update([])
    policy.update(iter(()))
    assert policy.w == 4.0
    assert policy.diagnostics()["n_updates"] == 0


@pytest.mark.parametrize(
    "obs",
    [
        [(0.05, 3, True)],
        [(0.05, 3, False)],
        [(0.3, 1, True)],
        [(0.2, 2, True)] * 3,  # all success at the policy's own level
        [(0.2, 2, False)] * 3,  # all failure at the policy's own level
        [(0.2, 2, True), (0.2, 2, False), (0.05, 3, True)],
    ],
)
def test_few_points_stay_near_prior(obs):
    policy = InterventionPolicy()
    policy.update(obs)
    _assert_sane(policy)
    cfg = policy.config
    # within one prior std each (SEELE: a 3-parameter curve from 3 points was its worst setting)
    assert abs(policy.w - 4.0) <= cfg.w_prior_std
    assert abs(policy.intercept) <= cfg.intercept_prior_std
    assert abs(policy.slope - 1.0) <= cfg.slope_prior_std


@pytest.mark.parametrize(
    "obs",
    [
        [(0.001, 3, True), (0.0, 3, True), (0.01, 2, True)],  # all success on hopeless problems
        [(0.45, 1, False), (0.49, 3, False), (1.0, 3, False)],  # all failure on easy problems, big hints
        [(1.0, 3, False)],
        [(0.0, 3, True)],
    ],
)
def test_few_adversarial_points_move_w_at_most_sigma2_sum_f(obs):
    policy = InterventionPolicy()
    policy.update(obs)
    _assert_sane(policy)
    cfg = policy.config
    bound = cfg.w_prior_std**2 * sum(cfg.fractions[level] for _, level, _ in obs)
    assert 0.0 < abs(policy.w - cfg.w_prior_mean) <= bound + 1e-9
    # The same stationarity bound for the calibration: |b| <= sb^2 n, |c - 1| <= sc^2 sum |logit(clamp(p))|.
    assert abs(policy.intercept) <= cfg.intercept_prior_std**2 * len(obs) + 1e-9
    logits = sum(abs(_logit(min(max(p, cfg.min_p), cfg.max_p))) for p, _, _ in obs)
    assert abs(policy.slope - 1.0) <= cfg.slope_prior_std**2 * logits + 1e-9


@pytest.mark.parametrize("success", [True, False])
def test_many_identical_outcomes_stay_finite(success):
    policy = InterventionPolicy()
    for _ in range(5):
        policy.update([(0.5, 3, success)] * 1000)
    _assert_sane(policy)
    if success:
        assert policy.w > 4.0
    else:
        assert policy.w == 0.0  # the lower bound: hints never hurt in the model


def test_prior_at_bounds_and_tight_bounds():
    policy = InterventionPolicy(PolicyConfig(w_init=1.0, w_prior_mean=1.0, w_bounds=(0.5, 1.5)))
    policy.update([(0.01, 3, True)] * 500)
    assert policy.w == 1.5
    policy.update([(0.9, 3, False)] * 4000)
    assert 0.5 <= policy.w < 1.5


def test_window_bound_holds():
    policy = InterventionPolicy(PolicyConfig(window=100))
    policy.update([(0.2, 2, True)] * 60 + [(0.3, 0, False)] * 10)
    policy.update([(0.1, 3, False)] * 80)
    state = policy.state_dict()
    assert len(state["window"]) == 100
    # The newest outcomes were kept: 20 of the first batch, then the 80 failures.
    assert state["window"][:20] == [[0.2, 0.5, True]] * 20
    assert state["window"][20:] == [[0.1, 0.75, False]] * 80
    assert policy.diagnostics()["n_hinted_total"] == 140


@pytest.mark.parametrize("config", [PLAIN, PolicyConfig()], ids=["plain", "calibrated"])
def test_window_forgets_old_regime(config):
    policy = InterventionPolicy(dataclasses.replace(config, window=2000))
    _simulate(policy, 2.0, n=2000, batch=500, seed=1, closed_loop=False)
    assert _max_prediction_error(policy, 2.0) < 0.05
    _simulate(policy, 7.0, n=2000, batch=500, seed=2, closed_loop=False)
    assert _max_prediction_error(policy, 7.0) < 0.05  # nothing of the w = 2 regime left in the window
    assert policy.w > 6.0


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        ([(0.2, 1)], "triple"),
        (["abc"], "triple"),
        ([(1.2, 1, True)], r"observation 0 p must lie in \[0, 1\]"),
        ([(0.2, 1, True), (0.2, 7, True)], r"observation 1 level must lie in \[0, 3\]"),
        ([(0.2, 1, 0.5)], "observation 0 success must be a bool or 0/1"),
        ([(0.2, 1, "yes")], "observation 0 success must be a bool or 0/1"),
    ],
)
def test_malformed_observations_change_nothing(obs, match):
    policy = InterventionPolicy()
    before = policy.state_dict()
    with pytest.raises(ValueError, match=match):
        policy.update(obs)
    assert policy.state_dict() == before


def test_numeric_outcomes_accepted():
    policy = InterventionPolicy()
    policy.update([(0.2, 1, 1.0), (0.2, 1, 0), (0.2, 1, True)])
    assert [entry[2] for entry in policy.state_dict()["window"]] == [True, False, True]


# ------------------------------------------------------------------------------------ persistence


def _trained_policy() -> InterventionPolicy:
    policy = InterventionPolicy(PolicyConfig(explore_spread=0.25, window=500))
    _simulate(policy, 5.0, n=800, batch=200, seed=3, closed_loop=True)
    policy.update([(0.7, 0, True), (0.6, 0, False)])
    return policy


def test_state_round_trip_is_exact():
    policy = _trained_policy()
    state = policy.state_dict()
    text = json.dumps(state)
    assert json.loads(text) == state  # JSON-serializable with no loss
    restored = InterventionPolicy.from_state_dict(json.loads(text))
    assert restored.state_dict() == state
    assert restored.decision_params() == policy.decision_params()
    assert policy.slope != 1.0 and policy.intercept != 0.0  # the calibration was fitted and travels
    assert restored.config == policy.config
    assert restored.diagnostics() == policy.diagnostics()  # no NaN here: both kinds of outcome were seen
    grid = [i / 200 for i in range(201)]
    for level in range(policy.num_levels):
        assert [restored.predicted_success(p, level) for p in grid] == [
            policy.predicted_success(p, level) for p in grid
        ]
    rng_a, rng_b = random.Random(9), random.Random(9)
    assert [restored.choose_level(p, rng_a) for p in grid] == [policy.choose_level(p, rng_b) for p in grid]
    # Both continue identically.
    batch = [(0.1, 3, True), (0.3, 1, False)]
    policy.update(batch)
    restored.update(batch)
    assert restored.state_dict() == policy.state_dict()


def test_load_state_dict_into_existing_policy():
    source = _trained_policy()
    target = InterventionPolicy()
    target.load_state_dict(source.state_dict())
    assert target.state_dict() == source.state_dict()


def test_load_state_keep_config():
    source = _trained_policy()  # window 500 full, w near 5
    target = InterventionPolicy(PolicyConfig(window=100, w_bounds=(0.0, 4.5), w_init=4.0))
    target.load_state_dict(source.state_dict(), keep_config=True)
    assert target.config.window == 100
    assert target.w == 4.5  # clamped to the kept bounds
    state = target.state_dict()
    assert state["window"] == source.state_dict()["window"][-100:]
    assert target.slope == source.slope and target.intercept == source.intercept


def test_load_state_keep_config_clamps_or_holds_the_calibration():
    source = InterventionPolicy.for_decisions(PolicyConfig(), {"w": 4.0, "intercept": -2.0, "slope": 3.0})
    target = InterventionPolicy(PolicyConfig(intercept_prior_std=0.0, slope_bounds=(0.5, 2.0)))
    target.load_state_dict(source.state_dict(), keep_config=True)
    assert target.intercept == 0.0  # held by the kept config
    assert target.slope == 2.0  # clamped to the kept bounds


def _version_1_state() -> dict:
    """A state as the plain-model code (state version 1) wrote it: w only, a config without the calibration keys."""
    config = {key: value for key, value in PolicyConfig().to_dict().items() if "intercept" not in key}
    config = {key: value for key, value in config.items() if "slope" not in key}
    return {
        "version": 1,
        "config": config,
        "w": 3.1,
        "window": [[0.2, 0.5, True], [0.1, 0.75, False], [0.3, 0.25, True]],
        "counters": {
            "n_updates": 2,
            "n_refits": 2,
            "n_hinted": 3,
            "n_hinted_success": 2,
            "n_unhinted": 1,
            "n_unhinted_success": 1,
            "unhinted_p_sum": 0.6,
        },
    }


@pytest.mark.parametrize("keep_config", [False, True])
def test_version_1_state_still_loads(keep_config):
    policy = InterventionPolicy()
    policy.load_state_dict(_version_1_state(), keep_config=keep_config)
    # The model it was fitted under: intercept 0, slope 1, its w.
    assert policy.decision_params() == {"w": 3.1, "intercept": 0.0, "slope": 1.0}
    assert policy.config == PolicyConfig()
    assert policy.predicted_success(0.2, 2) == pytest.approx(_sigmoid(_logit(0.2) + 3.1 * 0.5))
    assert policy.state_dict()["version"] == 2
    assert InterventionPolicy.from_state_dict(_version_1_state()).w == 3.1
    policy.update([(0.2, 1, True)])  # the next refit fits all three
    assert policy.diagnostics()["n_window"] == 4
    assert policy.slope != 1.0 and policy.intercept != 0.0


def _good_state() -> dict:
    return json.loads(json.dumps(_trained_policy().state_dict()))


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.pop("w"), r"missing keys \['w'\]"),
        (lambda s: s.update(version=99), "unsupported policy state version 99"),
        (lambda s: s.update(version=True), "unsupported policy state version True"),
        (lambda s: s.pop("slope"), r"missing keys \['slope'\]"),
        (lambda s: s.update(intercept=float("nan")), "intercept must be finite"),
        (lambda s: s.update(slope=9.0), r"slope \(9.0\) lies outside slope_bounds"),
        (lambda s: s.update(intercept="0"), "intercept must be a real number"),
        (lambda s: s.update(w=float("nan")), "w must be finite"),
        (lambda s: s.update(w=50.0), "outside w_bounds"),
        (lambda s: s.update(window="oops"), "window must be a list"),
        (lambda s: s["window"].append([0.2, 0.5]), r"window\[500\] must be \[p, f, success\]"),
        (lambda s: s["window"].__setitem__(0, [0.2, 0.0, True]), r"window\[0\] f must lie in \(0, 1\)"),
        (lambda s: s["window"].__setitem__(0, [2.0, 0.5, True]), r"window\[0\] p must lie in \[0, 1\]"),
        (lambda s: s["window"].append([0.2, 0.5, True]), "more than its size 500"),
        (lambda s: s["config"].update(fractions=[0.0, 0.5, 0.4]), "strictly increasing"),
        (lambda s: s["config"].update(bogus=1), r"unknown policy config keys \['bogus'\]"),
        (lambda s: s["counters"].pop("n_refits"), "counters miss 'n_refits'"),
        (lambda s: s["counters"].update(n_hinted=-3), "n_hinted must be >= 0"),
        (lambda s: s["counters"].update(extra=1), r"unknown counters \['extra'\]"),
        (lambda s: s.update(counters=[1, 2]), "counters must be a mapping"),
    ],
)
def test_malformed_state_is_rejected(mutate, match):
    state = _good_state()
    mutate(state)
    policy = InterventionPolicy()
    before = policy.state_dict()
    with pytest.raises(ValueError, match=match):
        policy.load_state_dict(state)
    assert policy.state_dict() == before  # nothing half-loaded


def test_from_state_dict_rejects_non_mapping():
    with pytest.raises(ValueError, match="mapping"):
        InterventionPolicy.from_state_dict([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a mapping"):
        InterventionPolicy().load_state_dict("state")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ config


def test_config_defaults_are_valid_and_round_trip():
    cfg = PolicyConfig()
    cfg.validate()
    assert cfg.num_levels == 4
    assert PolicyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # Lists (JSON, OmegaConf) are accepted for the tuple fields.
    assert PolicyConfig(fractions=[0.0, 0.5], w_bounds=[0.0, 8.0]).fractions == (0.0, 0.5)
    listed = PolicyConfig(intercept_bounds=[-2, 2], slope_bounds=[0.5, 3])
    assert (listed.intercept_bounds, listed.slope_bounds) == ((-2, 2), (0.5, 3))
    assert PolicyConfig.from_dict(listed.to_dict()) == listed


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fractions": ()}, "non-empty sequence"),
        ({"fractions": 0.5}, "non-empty sequence"),
        ({"fractions": (0.1, 0.5)}, "must start at 0.0"),
        ({"fractions": (0.0, 0.5, 0.5)}, "strictly increasing"),
        ({"fractions": (0.0, 0.5, 1.0)}, "stay below 1.0"),
        ({"fractions": (0.0, "a")}, r"fractions\[1\] must be a real number"),
        ({"target_rate": 1.0}, r"target_rate must lie in \(0, 1\)"),
        ({"target_rate": 0.999}, "strictly between min_p and max_p"),
        ({"w_bounds": (-1.0, 5.0)}, "never hurting"),
        ({"w_bounds": (5.0, 5.0)}, "low < high"),
        ({"w_bounds": (0.0,)}, "pair"),
        ({"w_init": 20.0}, r"w_init \(20.0\) must lie within w_bounds"),
        ({"w_prior_mean": -1.0}, "w_prior_mean"),
        ({"w_prior_std": 0.0}, "w_prior_std must be > 0"),
        ({"w_prior_std": float("inf")}, "w_prior_std must be finite"),
        ({"window": 0}, "window must be >= 1"),
        ({"window": 10.5}, "window must be an integer"),
        ({"min_p": 0.0}, "0 < min_p < max_p < 1"),
        ({"min_p": 0.6, "max_p": 0.4}, "0 < min_p < max_p < 1"),
        ({"explore_spread": 1.5}, r"explore_spread is a probability in \[0, 1\]"),
        ({"intercept_prior_std": -1.0}, "intercept_prior_std must be >= 0"),
        ({"slope_prior_std": float("nan")}, "slope_prior_std must be finite"),
        ({"intercept_bounds": (1.0, 2.0)}, r"intercept_bounds must .* contain the prior mean 0.0"),
        ({"slope_bounds": (1.5, 3.0)}, r"slope_bounds must .* contain the prior mean 1.0"),
        ({"slope_bounds": (2.0, 0.5)}, "slope_bounds must satisfy low < high"),
        ({"slope_bounds": (0.0, 2.0)}, "slope_bounds low must be > 0"),
        ({"intercept_bounds": "wide"}, "intercept_bounds must be a pair"),
    ],
)
def test_malformed_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig(**kwargs)


def test_config_from_dict_rejects_junk():
    with pytest.raises(ValueError, match="unknown policy config keys"):
        PolicyConfig.from_dict({"target": 0.5})
    with pytest.raises(ValueError, match="must be a mapping"):
        PolicyConfig.from_dict([("target_rate", 0.5)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a PolicyConfig"):
        InterventionPolicy({"target_rate": 0.5})  # type: ignore[arg-type]


def test_single_level_config_never_hints():
    policy = InterventionPolicy(PolicyConfig(fractions=(0.0,), explore_spread=1.0))
    assert policy.choose_level(0.01, random.Random(0)) == 0
    policy.update([(0.01, 0, False)])
    assert policy.w == 4.0
