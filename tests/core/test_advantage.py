"""``epgrpo`` math: hand-computed cases, a naive per-sample reference of the definition, the invariants (exact zero
without outcome contrast, no sign flip, the process bound) as properties, verl's own ``grpo`` as the no-hint oracle,
degenerate inputs, and the dense step-reward builder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verl_pdai.core.advantage import compute_epgrpo_advantage, compute_epgrpo_parts, dense_step_rewards, group_ids

EPS = 1e-6
SQRT3 = math.sqrt(3.0)


def ones(b: int, t: int) -> torch.Tensor:
    return torch.ones(b, t, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------------
# hand-computed cases
# ---------------------------------------------------------------------------------------------------------------


def test_no_hints_is_group_mean_over_unbiased_std():
    adv, ret = compute_epgrpo_advantage(torch.tensor([1.0, 0.0, 1.0, 0.0]), ones(4, 3), [7, 7, 7, 7])
    expected = 0.5 / (math.sqrt(1 / 3) + EPS)
    assert ret is adv
    torch.testing.assert_close(adv[:, 0], torch.tensor([expected, -expected, expected, -expected]))


def test_the_core_case_failed_previews_and_hinted_successes_carry_signal():
    """Previews fail, hinted sessions succeed: a whole-group baseline gives them signal; per level it is all 0."""
    scores = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    levels, starts = [0, 0, 2, 2, 2, 2], [-1, -1, 1, 1, 1, 1]
    group = compute_epgrpo_parts(scores, ones(6, 3), ["g"] * 6, levels, starts)
    std = math.sqrt(sum((s - 4 / 6) ** 2 for s in scores.tolist()) / 5)
    assert group.outcome_per_row[2].item() == pytest.approx((1 - 4 / 6) / (std + EPS), rel=1e-6)
    assert group.outcome_per_row[0].item() == pytest.approx(-(4 / 6) / (std + EPS), rel=1e-6)
    # pre-hint tokens (pre_hint_weight 0) get no outcome credit, the rest of a hinted success does
    assert group.outcome[2, 0].item() == 0.0 and group.outcome[2, 1].item() > 0
    level = compute_epgrpo_parts(scores, ones(6, 3), ["g"] * 6, levels, starts, baseline="level")
    assert bool((level.outcome == 0).all())


def test_all_equal_outcomes_give_exactly_zero_whatever_the_hints_and_discount():
    scores = torch.full((8,), 1.0)
    parts = compute_epgrpo_parts(
        scores, ones(8, 4), ["g"] * 8, [0, 0, 1, 1, 2, 2, 3, 3], [-1, -1, 1, 1, 2, 2, 0, 0],
        hint_fraction=[0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75], discount=0.5, pre_hint_weight=0.5,
    )  # fmt: skip
    assert bool((parts.outcome == 0).all()) and not bool(parts.contrast.any())


def test_discount_ranks_an_unassisted_success_above_a_helped_one_with_the_undiscounted_std():
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0])
    fraction = [0.0, 0.0, 0.5, 0.5]
    parts = compute_epgrpo_parts(scores, ones(4, 2), ["g"] * 4, [0, 0, 2, 2], [-1, -1, 0, 0],
                                 hint_fraction=fraction, discount=0.5, pre_hint_weight=1.0)  # fmt: skip
    discounted = [1.0, 0.0, 0.75, 0.0]
    mean = sum(discounted) / 4
    std = math.sqrt(sum((s - 0.5) ** 2 for s in scores.tolist()) / 3)  # of r, not of r'
    expected = torch.tensor([(d - mean) / (std + EPS) for d in discounted])
    torch.testing.assert_close(parts.outcome_per_row, expected)
    assert parts.outcome_per_row[0] > parts.outcome_per_row[2] > 0


def test_std_normalization_off_is_dr_grpo():
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0, 0.0, 0.0]), ones(4, 1), [0] * 4, norm_adv_by_std_in_grpo=False
    )
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.75, -0.25, -0.25, -0.25]))


def test_group_of_one_follows_verl_mean_0_std_1():
    adv, _ = compute_epgrpo_advantage(torch.tensor([1.0, 0.0, 1.0]), ones(3, 2), ["a", "b", "b"])
    assert adv[0, 0].item() == pytest.approx(1.0 / (1.0 + EPS))


def test_process_part_is_suffix_sum_less_group_mean_on_the_reward_scale():
    """Not divided by a std: tiny step differences stay tiny."""
    scores = torch.tensor([1.0, 1.0])
    rewards = torch.zeros(2, 4, dtype=torch.float64)
    steps = torch.zeros(2, 4, dtype=torch.bool)
    rewards[0, 1], rewards[0, 3], rewards[1, 2] = 0.001, 0.002, 0.0
    steps[0, 1] = steps[0, 3] = steps[1, 2] = True
    parts = compute_epgrpo_parts(scores.double(), ones(2, 4), [0, 0], None, None, rewards, steps, process_weight=1.0)
    mean_total = (0.003 + 0.0) / 2
    expected = torch.tensor([[0.003, 0.003, 0.002, 0.002], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64) - mean_total
    torch.testing.assert_close(parts.process, expected)
    assert bool((parts.outcome == 0).all())


def test_process_part_is_clipped_below_the_smallest_outcome_magnitude():
    """Group of 32 with one success: |O| of a failure is ~1/sqrt(32) = 0.18 < beta * cap = 0.2."""
    n = 32
    scores = torch.zeros(n)
    scores[0] = 1.0
    rewards = torch.zeros(n, 2)
    steps = torch.zeros(n, 2, dtype=torch.bool)
    steps[:, 0] = True
    rewards[1, 0] = 0.2  # a failure with a perfect process score
    rewards[0, 0] = -0.2  # the success with the worst one
    parts = compute_epgrpo_parts(scores, ones(n, 2), ["g"] * n, None, None, rewards, steps, process_cap=0.2)
    smallest = parts.outcome_per_row.abs().min().item()
    assert smallest < 0.2
    assert parts.process.abs().max().item() <= 0.5 * smallest + 1e-6  # process = advantages - outcome, float32
    adv = parts.advantages
    assert bool((adv[0] > 0).all()) and bool((adv[1:] < 0).all())


def test_hint_tokens_get_zero_and_steps_on_them_are_dropped():
    scores = torch.tensor([0.0, 1.0])
    mask = ones(2, 5)
    mask[1, 1:3] = 0  # hint tokens
    rewards = torch.zeros(2, 5)
    steps = torch.zeros(2, 5, dtype=torch.bool)
    rewards[1, 2], steps[1, 2] = 0.2, True  # on a hint token: dropped
    rewards[1, 4], steps[1, 4] = 0.1, True
    parts = compute_epgrpo_parts(scores, mask, [0, 0], [0, 1], [-1, 1], rewards, steps, pre_hint_weight=1.0)
    adv = parts.advantages
    assert bool((adv[1, 1:3] == 0).all())
    torch.testing.assert_close(parts.process[1, 3], torch.tensor(0.1 - 0.05))


def test_a_group_left_with_one_row_by_dropping_gets_no_outcome_part():
    """verl's singleton rule (r / (1 + eps)) is for groups of one by design, not for a group emptied by dropping."""
    parts = compute_epgrpo_parts(torch.tensor([1.0, 0.0, 1.0]), ones(3, 2), [0, 0, 1], valid=[True, False, True])
    assert bool((parts.outcome[:2] == 0).all())
    assert parts.outcome[2, 0].item() == pytest.approx(1.0 / (1.0 + EPS))  # a real group of one, as verl


def test_invalid_rows_leave_the_statistics_and_get_zero():
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0])
    parts = compute_epgrpo_parts(scores, ones(4, 2), [0] * 4, valid=[True, False, True, True])
    alone = compute_epgrpo_parts(scores[[0, 2, 3]], ones(3, 2), [0] * 3)
    assert bool((parts.advantages[1] == 0).all())
    torch.testing.assert_close(parts.advantages[[0, 2, 3]], alone.advantages)


def test_pre_hint_weight_scales_the_outcome_before_the_hint_only():
    scores = torch.tensor([0.0, 1.0])
    parts = compute_epgrpo_parts(scores, ones(2, 4), [0, 0], [0, 1], [-1, 2], pre_hint_weight=0.25)
    o = parts.outcome_per_row[1]
    torch.testing.assert_close(parts.outcome[1], torch.stack([0.25 * o, 0.25 * o, o, o]))
    assert bool((parts.outcome[0] == parts.outcome_per_row[0]).all())


def test_mask_dtypes_agree():
    gen = torch.Generator().manual_seed(3)
    mask = torch.rand(8, 9, generator=gen) > 0.3
    rewards = torch.randn(8, 9, generator=gen)
    steps = torch.rand(8, 9, generator=gen) > 0.6
    args = (torch.randn(8, generator=gen), None, [0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 1, 0, 0, 2, 0, 0])
    starts = torch.randint(-1, 9, (8,), generator=gen)
    results = [
        compute_epgrpo_advantage(args[0], m, args[2], args[3], starts, rewards, steps, pre_hint_weight=0.3)[0]
        for m in (mask, mask.long(), mask.float(), mask.int())
    ]
    for other in results[1:]:
        assert torch.allclose(results[0], other, atol=1e-6)


def test_non_contiguous_inputs_agree_with_contiguous():
    gen = torch.Generator().manual_seed(5)
    mask = (torch.rand(9, 7, generator=gen) > 0.2).long()
    rewards = torch.randn(9, 7, generator=gen)
    steps = torch.rand(9, 7, generator=gen) > 0.5
    scores = torch.randn(7, generator=gen)
    groups, levels, starts = [0, 0, 0, 1, 1, 1, 1], [0, 1, 1, 0, 2, 2, 0], [-1, 2, 3, -1, 1, 4, -1]
    strided = compute_epgrpo_advantage(scores, mask.t(), groups, levels, starts, rewards.t(), steps.t())[0]
    dense = compute_epgrpo_advantage(
        scores,
        mask.t().contiguous(),
        groups,
        levels,
        starts,
        rewards.t().contiguous(),
        steps.t().contiguous(),
    )[0]
    torch.testing.assert_close(strided, dense)


# ---------------------------------------------------------------------------------------------------------------
# a naive per-sample reference of the whole definition, and the invariants
# ---------------------------------------------------------------------------------------------------------------


def naive_epgrpo(scores, mask, groups, levels, starts, fractions, steps, s):
    """Straight from the definition (docs/algorithm.md), per sample and per token, float64."""
    bsz, seq_len = len(scores), len(mask[0])
    lam, beta, cap, rho = s["discount"], s["process_weight"], s["process_cap"], s["process_clip_ratio"]
    discounted = [scores[i] * (1 - lam * fractions[i]) if levels[i] > 0 else scores[i] for i in range(bsz)]
    kept = [[(e, r) for e, r in steps[i] if mask[i][e]] for i in range(bsz)]
    totals = [sum(r for _, r in kept[i]) for i in range(bsz)]
    outcome = [0.0] * bsz
    for i in range(bsz):
        peers = [j for j in range(bsz) if groups[j] == groups[i]]
        if len(peers) == 1:
            mean, std = 0.0, 1.0
        else:
            m = sum(scores[j] for j in peers) / len(peers)
            std = math.sqrt(sum((scores[j] - m) ** 2 for j in peers) / (len(peers) - 1))
            mean = sum(discounted[j] for j in peers) / len(peers)
            if s["baseline"] == "level":
                same = [discounted[j] for j in peers if levels[j] == levels[i]]
                mean = sum(same) / len(same) if len(same) >= 2 else mean
            if max(scores[j] for j in peers) == min(scores[j] for j in peers):
                continue
        centred = discounted[i] - mean
        outcome[i] = centred / (std + EPS) if s["norm_adv_by_std_in_grpo"] else centred
    out = [[0.0] * seq_len for _ in range(bsz)]
    w_pre = s["pre_hint_weight"]
    for i in range(bsz):
        peers = [j for j in range(bsz) if groups[j] == groups[i]]
        mean_total = sum(totals[j] for j in peers) / len(peers)
        mags = []
        for j in peers:
            pre = min(max(starts[j], 0), seq_len) if levels[j] > 0 else 0
            mags.append(abs(outcome[j]) * (w_pre if pre > 0 and 0 < w_pre < 1 else 1.0))
        nonzero = [m for m in mags if m > 0]
        limit = min(beta * cap, rho * min(nonzero)) if nonzero else beta * cap
        pre = min(max(starts[i], 0), seq_len) if levels[i] > 0 else 0
        for t in range(seq_len):
            suffix = sum(r for e, r in kept[i] if e >= t)
            proc = max(-limit, min(limit, beta * (suffix - mean_total))) if steps_present(steps) else 0.0
            w = w_pre if t < pre else 1.0
            out[i][t] = mask[i][t] * (w * outcome[i] + proc)
    return torch.tensor(out, dtype=torch.float64)


def steps_present(steps) -> bool:
    return True


@st.composite
def batches(draw, max_b: int = 12, max_t: int = 9, binary: bool = False):
    bsz = draw(st.integers(1, max_b))
    seq_len = draw(st.integers(1, max_t))
    n_groups = draw(st.integers(1, bsz))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=bsz, max_size=bsz))
    quarter = st.integers(-8, 8).map(lambda k: k / 4)  # exact in float: the oracles sum in other orders
    outcome = st.sampled_from([0.0, 1.0]) if binary else quarter
    scores = draw(st.lists(outcome, min_size=bsz, max_size=bsz))
    mask = draw(st.lists(st.lists(st.integers(0, 1), min_size=seq_len, max_size=seq_len), min_size=bsz, max_size=bsz))
    levels = draw(st.lists(st.integers(0, 3), min_size=bsz, max_size=bsz))
    starts = draw(st.lists(st.integers(-1, seq_len + 1), min_size=bsz, max_size=bsz))
    fractions = [0.25 * lv for lv in levels]
    step_value = st.integers(-4, 4).map(lambda k: k / 20)  # a process score within +-0.2
    steps = []
    for _ in range(bsz):
        ends = draw(st.lists(st.integers(0, seq_len - 1), unique=True, max_size=seq_len))
        steps.append([(e, draw(step_value)) for e in ends])
    return scores, mask, groups, levels, starts, fractions, steps


def dense(steps, bsz, seq_len, dtype=torch.float64):
    rewards = torch.zeros(bsz, seq_len, dtype=dtype)
    step_mask = torch.zeros(bsz, seq_len, dtype=torch.bool)
    for i, row in enumerate(steps):
        for e, r in row:
            rewards[i, e], step_mask[i, e] = r, True
    return rewards, step_mask


settings_strategy = st.fixed_dictionaries(
    {
        "norm_adv_by_std_in_grpo": st.booleans(),
        "process_weight": st.sampled_from([0.0, 0.3, 1.0]),
        "pre_hint_weight": st.sampled_from([0.0, 0.5, 1.0]),
        "discount": st.sampled_from([0.0, 0.5]),
        "baseline": st.sampled_from(["group", "level"]),
        "process_cap": st.sampled_from([0.2, 0.45]),
        "process_clip_ratio": st.sampled_from([0.5, 0.95]),
    }
)


def run(batch, s, dtype=torch.float64):
    scores, mask, groups, levels, starts, fractions, steps = batch
    rewards, step_mask = dense(steps, len(scores), len(mask[0]), dtype)
    return compute_epgrpo_parts(
        torch.tensor(scores, dtype=dtype), torch.tensor(mask), [f"uid-{g}" for g in groups], torch.tensor(levels),
        torch.tensor(starts), rewards, step_mask, hint_fraction=fractions, **s,
    )  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), s=settings_strategy)
def test_matches_naive_reference(batch, s):
    parts = run(batch, s)
    expected = naive_epgrpo(*batch, s)
    assert parts.advantages.dtype == torch.float64
    assert torch.allclose(parts.advantages, expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(max_b=16), s=settings_strategy)
def test_invariant_no_outcome_contrast_means_exactly_zero_outcome_part(batch, s):
    scores, _, groups, *_ = batch
    parts = run(batch, s, torch.float32)
    for g in set(groups):
        rows = [i for i, x in enumerate(groups) if x == g]
        if len(rows) >= 2 and len({scores[i] for i in rows}) == 1:
            assert bool((parts.outcome[rows] == 0).all()), "a group without contrast got an outcome advantage"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(max_b=16, binary=True), s=settings_strategy)
def test_invariant_process_never_flips_the_outcome_sign_and_stays_bounded(batch, s):
    parts = run(batch, s, torch.float32)
    bound = s["process_weight"] * s["process_cap"]
    assert float(parts.process.abs().max()) <= bound + 1e-6 if parts.process.numel() else True
    signed = parts.outcome != 0
    adv = parts.advantages
    assert bool((torch.sign(adv[signed]) == torch.sign(parts.outcome[signed])).all())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=batches(max_b=16, binary=True),
    s=settings_strategy.filter(lambda s: s["discount"] == 0.0 and s["baseline"] == "group"),
)
def test_invariant_correct_above_zero_above_incorrect_with_the_default_baseline(batch, s):
    """In a group with outcome contrast, every full-weight token of a success is > 0 and of a failure < 0 (the
    level baseline, an ablation, gives an all-failed level 0 instead)."""
    scores, mask, groups, levels, starts, *_ = batch
    parts = run(batch, s, torch.float32)
    adv = parts.advantages
    for i, r in enumerate(scores):
        if not bool(parts.contrast[i]):
            continue
        pre = min(max(starts[i], 0), len(mask[0])) if levels[i] > 0 else 0
        for t in range(pre, len(mask[0])):
            if mask[i][t]:
                assert (adv[i, t] > 0) if r == 1.0 else (adv[i, t] < 0)


# ---------------------------------------------------------------------------------------------------------------
# verl's grpo is the oracle of the no-hint, no-step case
# ---------------------------------------------------------------------------------------------------------------


def verl_grpo(token_level_rewards, response_mask, index, norm):
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    return compute_grpo_outcome_advantage(token_level_rewards, response_mask, index, norm_adv_by_std_in_grpo=norm)


@st.composite
def grpo_batches(draw, continuous: bool):
    bsz = draw(st.integers(1, 40))
    seq_len = draw(st.integers(1, 16))
    n_groups = draw(st.integers(1, bsz))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=bsz, max_size=bsz))  # singletons included
    if continuous:
        value = st.floats(-10, 10, allow_nan=False, width=32)
    else:
        value = st.integers(-16, 16).map(lambda k: k / 8)
    rewards = draw(st.lists(st.lists(value, min_size=seq_len, max_size=seq_len), min_size=bsz, max_size=bsz))
    mask = draw(st.lists(st.lists(st.booleans(), min_size=seq_len, max_size=seq_len), min_size=bsz, max_size=bsz))
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(mask).long(), groups


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=grpo_batches(continuous=False),
    norm=st.booleans(),
    as_tensor=st.booleans(),
    mask_dtype=st.sampled_from([torch.long, torch.float32, torch.bool]),
)
def test_no_hints_no_steps_equals_verl_grpo(batch, norm, as_tensor, mask_dtype):
    rewards, mask, groups = batch
    mask = mask.to(mask_dtype)
    uid = np.array([f"prompt-{g}" for g in groups], dtype=object)
    expected, _ = verl_grpo(rewards, mask, uid, norm)
    index = torch.tensor(groups) if as_tensor else uid
    adv, ret = compute_epgrpo_advantage(rewards.sum(-1), mask, index, norm_adv_by_std_in_grpo=norm)
    hint_free, _ = compute_epgrpo_advantage(
        rewards.sum(-1), mask, uid, torch.zeros(len(groups), dtype=torch.long), torch.full((len(groups),), -1),
        torch.zeros_like(rewards), torch.zeros(mask.shape, dtype=torch.bool), norm_adv_by_std_in_grpo=norm,
    )  # fmt: skip
    assert adv.dtype == expected.dtype and adv.shape == expected.shape
    torch.testing.assert_close(adv, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(hint_free, expected, rtol=1e-6, atol=1e-6)
    assert ret is adv


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=grpo_batches(continuous=True), norm=st.booleans())
def test_no_hints_equals_verl_grpo_on_continuous_rewards(batch, norm):
    """Any float rewards: both compute in float32 with sums in different orders, so the tolerance is that of
    (r - mean) / (std + eps) in float32: a few ulps of the group's largest |r|, amplified by 1 / (std + eps)."""
    from verl.trainer.ppo.core_algos import compute_grpo_vectorized_outcome_advantage

    rewards, mask, groups = batch
    uid = np.array([str(g) for g in groups], dtype=object)
    expected, _ = verl_grpo(rewards, mask, uid, norm)
    vectorized, _ = compute_grpo_vectorized_outcome_advantage(rewards, mask, uid, norm_adv_by_std_in_grpo=norm)
    adv, _ = compute_epgrpo_advantage(rewards.sum(-1), mask, uid, norm_adv_by_std_in_grpo=norm)
    scores = rewards.sum(-1)
    gid, n = group_ids(uid)
    scale = torch.zeros(n).scatter_reduce(0, gid, scores.abs(), "amax")[gid]
    spread = torch.ones(len(groups))
    if norm:
        std = torch.stack([scores[gid == g].std() if (gid == g).sum() > 1 else torch.tensor(1.0) for g in gid])
        spread = 1 / (std + EPS)
    tol = (1e-5 * (scale + 1) * spread)[:, None] + 1e-6
    assert bool(((adv - expected).abs() <= tol).all())
    assert bool(((adv - vectorized).abs() <= tol).all())


# ---------------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------------
# degenerate inputs never give NaN
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", [True, False])
def test_degenerate_inputs_are_finite(norm):
    bsz, seq_len = 6, 5
    mask = ones(bsz, seq_len)
    mask[1] = 0  # an empty response
    mask[4, 2:] = 0
    scores = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5, 0.0])  # group "a" all equal
    groups = ["a", "a", "a", "a", "solo", "pair"]
    rewards = torch.full((bsz, seq_len), 0.2)
    steps = torch.zeros(bsz, seq_len, dtype=torch.bool)
    steps[0, 4] = steps[1, 0] = steps[4, 1] = True
    adv, _ = compute_epgrpo_advantage(
        scores, mask, groups, [0, 1, 1, 2, 3, 0], [-1, 0, 9, 2, 1, -1], rewards, steps, norm_adv_by_std_in_grpo=norm
    )
    assert bool(torch.isfinite(adv).all())
    assert bool((adv[1] == 0).all())  # empty response
    assert bool((adv[:4].abs() <= 0.2 + 1e-6).all())  # equal outcomes: the bounded process part only


def test_all_masked_and_empty_shapes():
    adv, _ = compute_epgrpo_advantage(torch.tensor([1.0, 0.0]), torch.zeros(2, 4), [0, 0])
    assert bool((adv == 0).all())
    adv, _ = compute_epgrpo_advantage(torch.zeros(0), torch.zeros(0, 4), [])
    assert adv.shape == (0, 4)
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0]), torch.zeros(2, 0), [0, 0], [1, 0], [0, -1], torch.zeros(2, 0), torch.zeros(2, 0)
    )
    assert adv.shape == (2, 0)
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0]), ones(2, 1), [0, 0], [1, 1], [0, 1], torch.ones(2, 1), torch.ones(2, 1).bool()
    )
    assert bool(torch.isfinite(adv).all())


@settings(max_examples=100, deadline=None)
@given(batch=batches(max_b=16, max_t=6), s=settings_strategy)
def test_float32_never_nan(batch, s):
    _, mask, *_ = batch
    adv = run(batch, s, torch.float32).advantages
    assert bool(torch.isfinite(adv).all())
    assert bool((adv[torch.tensor(mask) == 0] == 0).all())


# ---------------------------------------------------------------------------------------------------------------
# bad inputs fail clearly
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome_scores": torch.tensor([1.0, float("nan")])}, "finite"),
        ({"outcome_scores": torch.tensor([1.0])}, "outcome_scores must have shape"),
        ({"response_mask": torch.ones(2)}, r"\[B, T\]"),
        ({"group_index": [0]}, "2 labels"),
        ({"group_index": [[0], [1]]}, "hashable"),
        ({"hint_level": [0, -1]}, ">= 0"),
        ({"hint_level": [0.5, 0]}, "integers"),
        ({"hint_level": [0, 1, 2]}, "shape"),
        ({"hint_level": [0, 1]}, "hint_start is required"),
        ({"step_rewards": torch.zeros(2, 3)}, "go together"),
        ({"step_rewards": torch.zeros(2, 2), "step_mask": torch.zeros(2, 2).bool()}, r"\[B, T\]"),
        ({"step_rewards": torch.full((2, 3), float("inf")), "step_mask": torch.ones(2, 3).bool()}, "finite"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"process_weight": -1.0}, "process_weight"),
        ({"pre_hint_weight": 1.5}, "pre_hint_weight"),
        ({"discount": 2.0}, "discount"),
        ({"baseline": "levels"}, "baseline"),
        ({"process_clip_ratio": 1.0}, "process_clip_ratio"),
        ({"hint_level": [0, 1], "hint_start": [0, 0], "discount": 0.5}, "hint_fraction is required"),
        ({"valid": [True]}, "valid must have shape"),
    ],
)
def test_bad_inputs_raise(kwargs, message):
    args = {"outcome_scores": torch.tensor([1.0, 0.0]), "response_mask": ones(2, 3), "group_index": [0, 0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        compute_epgrpo_advantage(**args)


def test_group_ids_forms():
    assert group_ids(torch.tensor([5, 3, 5]))[0].tolist() == [1, 0, 1]
    assert group_ids(np.array([2.0, 2.0, 1.0]))[0].tolist() == [1, 1, 0]
    ids, n = group_ids(np.array(["b", "a", "b"]))
    assert n == 2 and ids[0] == ids[2] != ids[1]
    ids, n = group_ids(["x", 1, ("t", 2), 1])
    assert n == 3 and ids.tolist() == [0, 1, 2, 1]
    with pytest.raises(ValueError, match="NaN"):
        group_ids(torch.tensor([0.0, float("nan")]))


# ---------------------------------------------------------------------------------------------------------------
# dense step rewards from the reward manager's lists
# ---------------------------------------------------------------------------------------------------------------


def test_dense_step_rewards_places_clips_and_merges():
    rewards, mask = dense_step_rewards([[0.1, -0.2, 0.3], [0.5], []], [[0, 3, 99], [2], []], 5)
    assert mask.tolist() == [
        [True, False, False, True, True],
        [False, False, True, False, False],
        [False] * 5,
    ]
    assert torch.allclose(rewards[0], torch.tensor([0.1, 0.0, 0.0, -0.2, 0.3]))
    rewards, mask = dense_step_rewards([[0.25, 0.5]], [[7, 9]], 4)  # both clip to T-1: one step, summed
    assert mask[0].tolist() == [False, False, False, True] and rewards[0, 3] == 0.75


def test_dense_step_rewards_ignores_malformed_entries():
    rewards, mask = dense_step_rewards(
        [
            [0.5, "x", None, float("nan"), 0.25, 1.0, True],
            [1.0, 2.0],  # lengths differ: cannot pair scores with ends
            "[1.0]",  # undecoded JSON
            [np.float32(0.5)],
        ],
        [[0, 1, 2, 3, -1, 2.5, 1], [1], [0], [np.int64(1)]],
        4,
    )
    assert mask.tolist() == [[True, False, False, False], [False] * 4, [False] * 4, [False, True, False, False]]
    assert rewards[0, 0] == 0.5 and rewards[3, 1] == 0.5
    with pytest.raises(ValueError, match="samples"):
        dense_step_rewards([[1.0]], [], 4)
    rewards, mask = dense_step_rewards([[1.0]], [[0]], 0)
    assert rewards.shape == (1, 0)


def test_dense_step_rewards_survive_huge_numbers():
    rewards, mask = dense_step_rewards([[10**400, 1.0, 2], [0.5]], [[0, 10**30, 1], [2]], 4)
    assert mask.tolist() == [[False, True, False, True], [False, False, True, False]]
    assert rewards[0].tolist() == [0.0, 2.0, 0.0, 1.0]


def test_dense_step_rewards_feed_the_advantage():
    rewards, mask = dense_step_rewards([[0.125], [0.0]], [[1], [2]], 3, dtype=torch.float64)
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([0.0, 0.0]), ones(2, 3), [0, 0], None, None, rewards, mask, norm_adv_by_std_in_grpo=False
    )
    assert adv.dtype == torch.float64
    # suffix sums (0.125, 0.125, 0) and (0, 0, 0) less the group's mean process score 0.0625
    assert adv.tolist() == [[0.0625, 0.0625, -0.0625], [-0.0625, -0.0625, -0.0625]]
