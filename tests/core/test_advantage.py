"""``epgrpo`` math: hand-computed cases, a naive per-sample reference, verl's own ``grpo`` as the no-hint oracle,
degenerate inputs, and the dense step-reward builder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verl_pdai.core.advantage import _add_at_, compute_epgrpo_advantage, dense_step_rewards, group_ids

EPS = 1e-6
SQRT3 = math.sqrt(3.0)


def ones(b: int, t: int) -> torch.Tensor:
    return torch.ones(b, t, dtype=torch.long)


# ---------------------------------------------------------------------------------------------------------------
# hand-computed cases
# ---------------------------------------------------------------------------------------------------------------


def test_no_hints_is_group_mean_over_unbiased_std():
    adv, ret = compute_epgrpo_advantage(torch.tensor([1.0, 0.0, 1.0, 0.0]), ones(4, 3), [7, 7, 7, 7])
    # mean 0.5, unbiased std sqrt(1/3): +-0.5 * sqrt(3)
    expected = torch.tensor([1, -1, 1, -1], dtype=torch.float32) * 0.5 * SQRT3 / (1 + EPS * SQRT3)
    assert torch.allclose(adv, expected[:, None].expand(4, 3), atol=1e-6)
    assert ret is adv  # returns == advantages, as verl's grpo


def test_per_level_baseline_and_whole_group_std():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    levels = torch.tensor([0, 0, 0, 2, 2, 2])
    adv, _ = compute_epgrpo_advantage(scores, ones(6, 2), [0] * 6, levels, torch.full((6,), -1))
    # level 0 mean 1/3, level 2 mean 1; whole-group unbiased std of [1,0,0,1,1,1] = sqrt((4/3) / 5)
    std = math.sqrt(4 / 15)
    expected = torch.tensor([2 / 3, -1 / 3, -1 / 3, 0, 0, 0]) / (std + EPS)
    assert torch.allclose(adv[:, 0], expected.float(), atol=1e-6)
    assert torch.equal(adv[:, 0], adv[:, 1])


def test_singleton_level_falls_back_to_whole_group_mean():
    scores = torch.tensor([1.0, 0.0, 0.0, 1.0])
    levels = torch.tensor([0, 0, 0, 1])  # level 1 has one member: no peer to compare with
    adv, _ = compute_epgrpo_advantage(scores, ones(4, 1), [0] * 4, levels, torch.tensor([-1, -1, -1, 0]))
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std().item()
    expected = torch.tensor([1 - 1 / 3, -1 / 3, -1 / 3, 1 - 0.5]) / (std + EPS)
    assert torch.allclose(adv[:, 0], expected.float(), atol=1e-6)


def test_levels_are_per_group_not_global():
    # two groups, same level: each group's level cell is its own
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0])
    adv, _ = compute_epgrpo_advantage(
        scores, ones(4, 1), ["a", "a", "b", "b"], [1, 1, 1, 1], [0, 0, 0, 0], norm_adv_by_std_in_grpo=False
    )
    assert adv[:, 0].tolist() == [0.5, -0.5, 0.0, 0.0]


def test_std_normalization_off_is_dr_grpo():
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([3.0, 1.0, 2.0]), ones(3, 2), [0, 0, 0], norm_adv_by_std_in_grpo=False
    )
    assert adv[:, 0].tolist() == [1.0, -1.0, 0.0]


def test_group_of_one_follows_verl_mean_0_std_1():
    adv, _ = compute_epgrpo_advantage(torch.tensor([0.75, 1.0, 0.0]), ones(3, 2), ["solo", "g", "g"])
    assert adv[0, 0].item() == pytest.approx(0.75 / (1 + EPS))
    adv, _ = compute_epgrpo_advantage(torch.tensor([0.75]), ones(1, 2), ["solo"], norm_adv_by_std_in_grpo=False)
    assert adv.tolist() == [[0.75, 0.75]]


def test_process_part_is_reverse_cumsum_of_group_normalized_steps():
    # outcome all equal (part = 0) so only the process part shows
    scores = torch.zeros(2)
    rewards = torch.zeros(2, 6)
    steps = torch.zeros(2, 6, dtype=torch.bool)
    for row, end, value in [(0, 1, 1.0), (0, 4, 3.0), (1, 2, 2.0), (1, 5, 2.0)]:
        rewards[row, end] = value
        steps[row, end] = True
    adv, _ = compute_epgrpo_advantage(scores, ones(2, 6), [0, 0], None, None, rewards, steps, process_weight=0.5)
    # steps [1, 3, 2, 2]: mean 2, unbiased std sqrt(2/3); z = [-1, 1, 0, 0] / sqrt(2/3)
    z = 1 / (math.sqrt(2 / 3) + EPS)
    expected = 0.5 * torch.tensor([[-z + z, -z + z, z, z, z, 0.0], [0, 0, 0, 0, 0, 0]])
    assert torch.allclose(adv, expected.float(), atol=1e-6)


def test_process_part_adds_to_outcome_and_ignores_other_groups():
    scores = torch.tensor([1.0, 0.0, 5.0])
    rewards = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [9.0, 0.0, 0.0]])
    steps = torch.tensor([[False, True, False], [False, False, True], [True, False, False]])
    adv, _ = compute_epgrpo_advantage(
        scores, ones(3, 3), [0, 0, 1], None, None, rewards, steps, norm_adv_by_std_in_grpo=False
    )
    # group 0 steps [1, 0]: mean 0.5 -> z = [0.5, -0.5]; group 1: one step -> mean 0 (verl's singleton rule)
    assert torch.allclose(adv[0], torch.tensor([0.5 + 0.5, 0.5 + 0.5, 0.5]))
    assert torch.allclose(adv[1], torch.tensor([-0.5 - 0.5, -0.5 - 0.5, -0.5 - 0.5]))
    assert torch.allclose(adv[2], torch.tensor([5.0 + 9.0, 5.0, 5.0]))  # group of one: outcome mean 0 too


def test_hint_tokens_get_zero_and_steps_on_them_are_dropped():
    mask = torch.tensor([[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1]])
    rewards = torch.zeros(2, 6)
    steps = torch.zeros(2, 6, dtype=torch.bool)
    rewards[0, 3], steps[0, 3] = 100.0, True  # on a hint token: must not count anywhere
    rewards[0, 5], steps[0, 5] = 1.0, True
    rewards[1, 5], steps[1, 5] = 0.0, True
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0]),
        mask,
        [0, 0],
        [1, 0],
        [2, -1],
        rewards,
        steps,
        norm_adv_by_std_in_grpo=False,
        pre_hint_weight=1.0,
    )
    assert adv[0, 2] == 0 and adv[0, 3] == 0
    # steps kept [1, 0] -> z = [0.5, -0.5]; levels differ and are singletons -> group mean 0.5
    assert torch.allclose(adv[0], torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    assert torch.allclose(adv[1], torch.tensor([-1.0] * 6))


def test_pre_hint_tokens_scale_outcome_only_and_keep_process():
    mask = torch.tensor([[1, 1, 1, 0, 0, 1, 1, 1], [1] * 8])
    rewards = torch.zeros(2, 8)
    steps = torch.zeros(2, 8, dtype=torch.bool)
    rewards[0, 1], steps[0, 1] = 1.0, True  # a step the model wrote before its hint
    rewards[1, 7], steps[1, 7] = 0.0, True
    args = (torch.tensor([1.0, 0.0]), mask, [0, 0], [2, 0], [3, -1], rewards, steps)
    for weight in (0.0, 0.25, 1.0):
        adv, _ = compute_epgrpo_advantage(*args, norm_adv_by_std_in_grpo=False, pre_hint_weight=weight)
        o, z = 0.5, 0.5  # outcome part of row 0 and its step's normalized reward
        expected = [weight * o + z, weight * o + z, weight * o, 0.0, 0.0, o, o, o]
        assert torch.allclose(adv[0], torch.tensor(expected)), weight
        assert torch.allclose(adv[1], torch.tensor([-0.5 - 0.5] * 8))  # unhinted: hint_start ignored


def test_pre_hint_weight_without_step_rewards():
    mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]])
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0, 1.0]),
        mask,
        [0, 0, 0],
        [1, 0, 1],
        [2, 3, 10],  # row 1 unhinted: its 3 is ignored; row 2's start past T: the whole row is pre-hint
        norm_adv_by_std_in_grpo=False,
        pre_hint_weight=0.5,
    )
    # level 1 = rows 0, 2 (mean 1); level 0 = row 1 alone -> group mean 2/3
    assert torch.allclose(adv, torch.tensor([[0.0, 0.0, 0.0, 0.0], [-2 / 3] * 4, [0.0] * 4]))
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([1.0, 0.0]), ones(2, 4), [0, 0], [1, 0], [2, -1], norm_adv_by_std_in_grpo=False
    )
    assert adv.tolist() == [[0.0, 0.0, 0.5, 0.5], [-0.5] * 4]


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


def test_half_precision_step_rewards_and_the_torch_scatter():
    """bf16 has no numpy dtype (the gather goes through torch); the torch scatter is the path off CPU."""
    gen = torch.Generator().manual_seed(6)
    rewards = torch.randn(6, 5, generator=gen)
    steps = torch.rand(6, 5, generator=gen) > 0.5
    args = (torch.randn(6, generator=gen), ones(6, 5), [0, 0, 0, 1, 1, 1])
    full = compute_epgrpo_advantage(*args, None, None, rewards.bfloat16().float(), steps)[0]
    half = compute_epgrpo_advantage(*args, None, None, rewards.bfloat16(), steps)[0]
    torch.testing.assert_close(half, full)
    at, values = np.array([0, 7, 29]), np.array([1.5, -2.0, 0.25])
    by_numpy, by_torch = torch.zeros(6, 5), torch.zeros(6, 5)
    _add_at_(by_numpy, at, values, in_numpy=True)
    _add_at_(by_torch, at, values, in_numpy=False)
    assert torch.equal(by_numpy, by_torch) and by_torch.view(-1)[7] == -2.0


# ---------------------------------------------------------------------------------------------------------------
# a naive per-sample reference of the whole definition
# ---------------------------------------------------------------------------------------------------------------


def naive_epgrpo(scores, mask, groups, levels, starts, steps, eps, norm, beta, pre_w):
    """Straight from the definition, per sample and per token, float64."""
    bsz, seq_len = len(scores), len(mask[0])

    def stats(values):
        if len(values) <= 1:
            return 0.0, 1.0
        mean = sum(values) / len(values)
        return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))

    kept = [[(e, r) for e, r in steps[i] if mask[i][e]] for i in range(bsz)]
    out = [[0.0] * seq_len for _ in range(bsz)]
    for i in range(bsz):
        peers = [j for j in range(bsz) if groups[j] == groups[i]]
        g_mean, g_std = stats([scores[j] for j in peers])
        same = [scores[j] for j in peers if levels[j] == levels[i]]
        base = sum(same) / len(same) if len(same) >= 2 else g_mean
        o = (scores[i] - base) / (g_std + eps) if norm else scores[i] - base
        s_mean, s_std = stats([r for j in peers for _, r in kept[j]])
        pre = min(max(starts[i], 0), seq_len) if levels[i] > 0 else 0
        for t in range(seq_len):
            proc = 0.0
            for e, r in kept[i]:
                if e >= t:
                    proc += (r - s_mean) / (s_std + eps) if norm else r - s_mean
            w = pre_w if t < pre else 1.0
            out[i][t] = mask[i][t] * (w * o + beta * proc)
    return torch.tensor(out, dtype=torch.float64)


@st.composite
def batches(draw, max_b: int = 12, max_t: int = 9):
    bsz = draw(st.integers(1, max_b))
    seq_len = draw(st.integers(1, max_t))
    n_groups = draw(st.integers(1, bsz))
    groups = draw(st.lists(st.integers(0, n_groups - 1), min_size=bsz, max_size=bsz))
    quarter = st.integers(-8, 8).map(lambda k: k / 4)  # exact in float: the oracles sum in other orders
    scores = draw(st.lists(quarter, min_size=bsz, max_size=bsz))
    mask = draw(st.lists(st.lists(st.integers(0, 1), min_size=seq_len, max_size=seq_len), min_size=bsz, max_size=bsz))
    levels = draw(st.lists(st.integers(0, 3), min_size=bsz, max_size=bsz))
    starts = draw(st.lists(st.integers(-1, seq_len + 1), min_size=bsz, max_size=bsz))
    steps = []
    for _ in range(bsz):
        ends = draw(st.lists(st.integers(0, seq_len - 1), unique=True, max_size=seq_len))
        steps.append([(e, draw(quarter)) for e in ends])
    return scores, mask, groups, levels, starts, steps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=batches(),
    norm=st.booleans(),
    beta=st.sampled_from([0.0, 0.3, 1.0]),
    pre_w=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_matches_naive_reference(batch, norm, beta, pre_w):
    scores, mask, groups, levels, starts, steps = batch
    bsz, seq_len = len(scores), len(mask[0])
    rewards = torch.zeros(bsz, seq_len, dtype=torch.float64)
    step_mask = torch.zeros(bsz, seq_len, dtype=torch.bool)
    for i, row in enumerate(steps):
        for e, r in row:
            rewards[i, e], step_mask[i, e] = r, True
    adv, ret = compute_epgrpo_advantage(
        torch.tensor(scores, dtype=torch.float64),
        torch.tensor(mask),
        [f"uid-{g}" for g in groups],
        torch.tensor(levels),
        torch.tensor(starts),
        rewards,
        step_mask,
        norm_adv_by_std_in_grpo=norm,
        process_weight=beta,
        pre_hint_weight=pre_w,
    )
    expected = naive_epgrpo(scores, mask, groups, levels, starts, steps, EPS, norm, beta, pre_w)
    assert adv.dtype == torch.float64 and ret is adv
    assert torch.allclose(adv, expected, rtol=1e-9, atol=1e-9)


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
    rewards = torch.full((bsz, seq_len), 0.2)  # every step equal: std 0
    steps = torch.zeros(bsz, seq_len, dtype=torch.bool)
    steps[0, 4] = steps[1, 0] = steps[4, 1] = True
    adv, _ = compute_epgrpo_advantage(
        scores, mask, groups, [0, 1, 1, 2, 3, 0], [-1, 0, 9, 2, 1, -1], rewards, steps, norm_adv_by_std_in_grpo=norm
    )
    assert bool(torch.isfinite(adv).all())
    assert bool((adv[1] == 0).all())  # empty response
    assert bool((adv[:4].abs() <= 0.2 * 2 + 1e-6).all())  # equal rewards: no outcome signal


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
@given(batch=batches(max_b=16, max_t=6), norm=st.booleans())
def test_float32_never_nan(batch, norm):
    scores, mask, groups, levels, starts, steps = batch
    bsz, seq_len = len(scores), len(mask[0])
    rewards = torch.zeros(bsz, seq_len)
    step_mask = torch.zeros(bsz, seq_len, dtype=torch.bool)
    for i, row in enumerate(steps):
        for e, r in row:
            rewards[i, e], step_mask[i, e] = r, True
    adv, _ = compute_epgrpo_advantage(
        torch.tensor(scores),
        torch.tensor(mask),
        groups,
        levels,
        starts,
        rewards,
        step_mask,
        norm_adv_by_std_in_grpo=norm,
    )
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
    rewards, mask = dense_step_rewards([[1.0], [0.0]], [[1], [2]], 3, dtype=torch.float64)
    adv, _ = compute_epgrpo_advantage(
        torch.tensor([0.0, 0.0]), ones(2, 3), [0, 0], None, None, rewards, mask, norm_adv_by_std_in_grpo=False
    )
    assert adv.dtype == torch.float64
    assert adv.tolist() == [[0.5, 0.5, 0.0], [-0.5, -0.5, -0.5]]
