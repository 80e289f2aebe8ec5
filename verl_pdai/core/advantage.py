"""The ``epgrpo`` advantage: group-relative outcome advantage with per-hint-level baselines, plus the
process-supervised part of DeepSeekMath's GRPO. Pure torch, no verl (the adapter is ``verl_pdai.plugin.advantage``).

For sample i of group g (same prompt), hint level h_i, outcome score r_i and response tokens t = 0..T-1::

    base_i   = mean(r_j : j in g, h_j = h_i)   if that (group, level) cell has >= 2 members
             = mean(r_j : j in g)              otherwise (whole group; 0 for a group of one, as verl)
    O_i      = (r_i - base_i) / (std(r_j : j in g) + eps)    (std unbiased; 1 for a group of one, as verl)
             = r_i - base_i                                   when norm_adv_by_std_in_grpo is off
    z_s      = (x_s - mean_g(x)) / (std_g(x) + eps)           every step s of every sample of g, reward x_s
    P_{i,t}  = sum of z_s over the steps s of sample i that end at token e_s >= t
    A_{i,t}  = mask_{i,t} * (w_{i,t} * O_i + beta_proc * P_{i,t})
    w_{i,t}  = pre_hint_weight  if h_i > 0 and t < hint_start_i,  else 1

With no hints and no step rewards this is verl's ``grpo`` (same statistics in the same float dtype, same singleton
rule, the values of its ``scores * response_mask``); ``tests/core/test_advantage.py`` checks it against verl's own
function.

Conventions chosen here:

* ``hint_start`` is the response index of the first hint token; rows with ``hint_level == 0`` ignore it, and
  ``-1`` is the recommended value for them. On a hinted row, values are clipped to ``[0, T]``: the first
  ``clip(hint_start, 0, T)`` tokens are the pre-hint tokens.
* Only the *outcome* part is scaled before the hint. The process part is kept there: those steps are the model's
  own, and their rewards (and the later steps', as in DeepSeekMath's reverse sum) are what they earned.
* Step statistics use the same rules as the outcome: unbiased std, a group with fewer than two steps in all gets
  mean 0 and std 1 (verl's singleton rule), no std division when ``norm_adv_by_std_in_grpo`` is off.
* A step whose end token is masked (a hint or padding token) is dropped: a reward placed on a masked position
  would leak into the group's statistics (verl PR 6310) while no token of the sample could earn it.
* ``returns`` is the same tensor as ``advantages`` (outcome supervision, no critic), as in verl's ``grpo``.

Cost: the outcome-only path is one ``B x T`` pass, like verl's (a select for bool/int masks, which on CPU is
faster than verl's cast-and-multiply and gives the same values for a 0/1 mask; verl's very product for float
masks). With step rewards, the steps are found once (a flat ``nonzero`` of the step mask) and handled as a short
list; the token advantages are built as a difference array (the row's value at t = 0, ``-z_s`` at ``e_s + 1``,
the pre-hint switch at ``hint_start``) whose in-place cumulative sum along T is the answer: one zero-filled
allocation, one ``cumsum_``, one in-place mask; no flips, no per-sample Python loop.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence

import numpy as np
import torch

__all__ = ["compute_epgrpo_advantage", "dense_step_rewards", "group_ids"]

GroupIndex = torch.Tensor | np.ndarray | Sequence[Hashable]
IntLike = torch.Tensor | np.ndarray | Sequence[int]


def group_ids(group_index: GroupIndex, device: torch.device | str | None = None) -> tuple[torch.Tensor, int]:
    """Contiguous group ids ``0..G-1`` (int64) for arbitrary labels, and G.

    Labels are grouped by equality, as verl's ``grpo`` does with a dict: integer/bool tensors and numeric numpy
    arrays go through ``unique``; any other sequence (e.g. verl's ``uid`` strings) through one dict pass.
    """
    if isinstance(group_index, torch.Tensor):
        if group_index.dim() != 1:
            raise ValueError(f"group_index must be 1-D, got shape {tuple(group_index.shape)}")
        if group_index.is_floating_point() and bool(torch.isnan(group_index).any()):
            raise ValueError("group_index contains NaN")
        uniq, inverse = torch.unique(group_index, return_inverse=True)
        return inverse.to(device=device or group_index.device, dtype=torch.long), int(uniq.numel())
    if isinstance(group_index, np.ndarray) and group_index.dtype != object:
        if group_index.ndim != 1:
            raise ValueError(f"group_index must be 1-D, got shape {group_index.shape}")
        if group_index.dtype.kind not in "biuf":  # strings etc.: the dict pass below keeps equality semantics
            group_index = group_index.astype(object)
        else:
            if group_index.dtype.kind == "f" and np.isnan(group_index).any():
                raise ValueError("group_index contains NaN")
            uniq, inverse = np.unique(group_index, return_inverse=True)
            return torch.from_numpy(inverse.reshape(-1).astype(np.int64)).to(device), int(uniq.size)
    if isinstance(group_index, str | bytes):
        raise ValueError("group_index must be a sequence of labels, not a single string")
    ids: dict[Hashable, int] = {}
    try:
        # one hash per label; torch has no equality grouping for arbitrary Python objects
        codes = [ids.setdefault(label, len(ids)) for label in group_index]
    except TypeError as exc:
        raise ValueError(f"group_index labels must be hashable: {exc}") from exc
    return torch.tensor(codes, dtype=torch.long, device=device), len(ids)


def _as_int_vector(name: str, value: IntLike, size: int, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(value, device=device)
    if tensor.dim() != 1 or tensor.numel() != size:
        raise ValueError(f"{name} must have shape ({size},), got {tuple(tensor.shape)}")
    if tensor.is_floating_point():
        if not bool(torch.all(tensor == torch.round(tensor))):  # NaN fails this too
            raise ValueError(f"{name} must hold integers")
    elif tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{name} must hold integers, got dtype {tensor.dtype}")
    return tensor.to(torch.long)


def _group_stats(
    values: torch.Tensor, ids: torch.Tensor, n_groups: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-group (count, mean, unbiased std) by ``index_add_``; verl's convention for groups of one: mean 0, std 1.

    Two-pass variance (centred values), as verl's ``group_mean_std``, so equal values give exactly std 0.
    """
    count = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add_(0, ids, torch.ones_like(values))
    total = torch.zeros_like(count).index_add_(0, ids, values)
    mean = total / count.clamp_min(1.0)
    centred = values - mean[ids]
    sq = torch.zeros_like(count).index_add_(0, ids, centred * centred)
    std = torch.sqrt(sq / (count - 1.0).clamp_min(1.0))
    single = count <= 1.0
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(std), std)
    return count, mean, std


def _keep(response_mask: torch.Tensor) -> torch.Tensor:
    # bool/int masks select: an int64 mask times a float tensor is a slow cast-and-multiply on CPU
    return response_mask if response_mask.dtype == torch.bool else response_mask != 0


def _apply_mask_(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``values *= response_mask`` in place."""
    if response_mask.is_floating_point():
        return values.mul_(response_mask)
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(_keep(response_mask), values, zero, out=values)


def _flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of the true entries of a bool tensor, ascending."""
    flat = mask.reshape(-1)
    if flat.device.type == "cpu":
        # numpy's flatnonzero is ~5x faster than torch.nonzero on CPU (one pass, no per-dim index tensors)
        return torch.from_numpy(np.flatnonzero(flat.numpy()))
    return torch.nonzero(flat).squeeze(-1)


def compute_epgrpo_advantage(
    outcome_scores: torch.Tensor,
    response_mask: torch.Tensor,
    group_index: GroupIndex,
    hint_level: IntLike | None = None,
    hint_start: IntLike | None = None,
    step_rewards: torch.Tensor | None = None,
    step_mask: torch.Tensor | None = None,
    *,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    process_weight: float = 1.0,
    pre_hint_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token advantages of ``epgrpo`` (see the module docstring for the equations) and the returns (same tensor).

    Args:
        outcome_scores: ``[B]`` outcome score of each response (verl's ``grpo`` uses
            ``token_level_rewards.sum(-1)``).
        response_mask: ``[B, T]``; 0 on hint and padding tokens, which get advantage 0. Float masks multiply
            (as verl); bool/int masks select (nonzero = 1).
        group_index: ``[B]`` group labels: an int tensor, a numpy array or any sequence of hashables (verl's
            ``uid`` strings).
        hint_level: ``[B]`` ints >= 0 (0 = unhinted); None = nobody hinted.
        hint_start: ``[B]`` response index of the first hint token; read on hinted rows only (use -1 elsewhere),
            clipped to ``[0, T]``. Required when a row is hinted and ``pre_hint_weight != 1``.
        step_rewards: ``[B, T]`` dense step rewards: a step's reward on the token where the step ends.
        step_mask: ``[B, T]`` bool, which positions hold a step reward; required with ``step_rewards`` (a step
            whose reward is 0 still counts in the group's statistics, so "nonzero" cannot stand in for it).
        epsilon: added to every std before dividing (verl's default 1e-6); must be > 0 when normalizing.
        norm_adv_by_std_in_grpo: divide by the group's std (GRPO) or not (Dr. GRPO), both parts.
        process_weight: beta_proc >= 0, weight of the process part.
        pre_hint_weight: in ``[0, 1]``, scale of the outcome part on a hinted sample's tokens before its hint.

    Returns:
        ``(advantages, returns)``, both ``[B, T]`` and the same tensor, dtype ``float32`` or wider.
    """
    if not isinstance(outcome_scores, torch.Tensor) or not isinstance(response_mask, torch.Tensor):
        raise TypeError("outcome_scores and response_mask must be torch tensors")
    if response_mask.dim() != 2:
        raise ValueError(f"response_mask must be [B, T], got shape {tuple(response_mask.shape)}")
    bsz, seq_len = response_mask.shape
    if outcome_scores.shape != (bsz,):
        raise ValueError(f"outcome_scores must have shape ({bsz},), got {tuple(outcome_scores.shape)}")
    if not math.isfinite(epsilon) or epsilon < 0 or (norm_adv_by_std_in_grpo and epsilon == 0):
        raise ValueError(f"epsilon must be finite and > 0 (>= 0 without std normalization), got {epsilon}")
    if not math.isfinite(process_weight) or process_weight < 0:
        raise ValueError(f"process_weight (beta_proc) must be finite and >= 0, got {process_weight}")
    if not 0.0 <= pre_hint_weight <= 1.0:
        raise ValueError(f"pre_hint_weight must be in [0, 1], got {pre_hint_weight}")
    if (step_rewards is None) != (step_mask is None):
        raise ValueError("step_rewards and step_mask go together (a 0-reward step still counts as a step)")
    if step_rewards is not None and (step_rewards.shape != (bsz, seq_len) or step_mask.shape != (bsz, seq_len)):
        raise ValueError(
            f"step_rewards and step_mask must be [B, T] = {(bsz, seq_len)}, got "
            f"{tuple(step_rewards.shape)} and {tuple(step_mask.shape)}"
        )

    device = response_mask.device
    dtype = torch.promote_types(outcome_scores.dtype, torch.float32)
    if step_rewards is not None:
        dtype = torch.promote_types(dtype, step_rewards.dtype)
    scores = outcome_scores.detach().to(device=device, dtype=dtype)
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("outcome_scores must be finite")
    gid, n_groups = group_ids(group_index, device)
    if gid.numel() != bsz:
        raise ValueError(f"group_index must have {bsz} labels, got {gid.numel()}")

    with torch.no_grad():
        # ---- outcome part: per-(group, level) baseline, whole-group std ----
        _, g_mean, g_std = _group_stats(scores, gid, n_groups)
        baseline = g_mean[gid]
        pre_len = None  # [B] number of pre-hint tokens, only when some row has them and they are scaled
        if hint_level is not None:
            level = _as_int_vector("hint_level", hint_level, bsz, device)
            if bool((level < 0).any()):
                raise ValueError("hint_level must be >= 0")
            hinted = level > 0
            if bool(hinted.any()):
                cell_key = gid * (int(level.max()) + 1) + level
                _, cell = torch.unique(cell_key, return_inverse=True)
                n_cells = int(cell.max()) + 1
                c_count, c_mean, _ = _group_stats(scores, cell, n_cells)
                # a level with one sample in its group has no peer to compare with: whole-group baseline
                baseline = torch.where(c_count[cell] >= 2, c_mean[cell], baseline)
                if pre_hint_weight != 1.0:
                    if hint_start is None:
                        raise ValueError("hint_start is required when a row is hinted and pre_hint_weight != 1")
                    start = _as_int_vector("hint_start", hint_start, bsz, device).clamp(0, seq_len)
                    pre_len = torch.where(hinted, start, torch.zeros_like(start))
                    if not bool((pre_len > 0).any()):
                        pre_len = None
        centred = scores - baseline
        outcome = centred / (g_std[gid] + epsilon) if norm_adv_by_std_in_grpo else centred

        if step_rewards is None or process_weight == 0.0 or seq_len == 0:
            return _outcome_only(outcome, response_mask, pre_len, pre_hint_weight)
        return _with_process(
            outcome,
            response_mask,
            gid,
            n_groups,
            pre_len,
            step_rewards,
            step_mask,
            epsilon=epsilon,
            norm=norm_adv_by_std_in_grpo,
            beta=process_weight,
            pre_hint_weight=pre_hint_weight,
        )


def _outcome_only(
    outcome: torch.Tensor, response_mask: torch.Tensor, pre_len: torch.Tensor | None, pre_hint_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if response_mask.is_floating_point():
        adv = (outcome.unsqueeze(-1) * response_mask).to(outcome.dtype)  # verl's own product
    else:
        # same values as verl's ``scores * response_mask`` for a 0/1 mask, in one pass instead of cast + multiply
        zero = torch.zeros((), dtype=outcome.dtype, device=outcome.device)
        adv = torch.where(_keep(response_mask), outcome.unsqueeze(-1), zero)
    if pre_len is not None:
        # only hinted rows, only up to the latest hint start: a small slice, not another B x T pass
        rows = torch.nonzero(pre_len > 0).squeeze(-1)
        lens = pre_len[rows]
        width = int(lens.max())
        before = torch.arange(width, device=adv.device).unsqueeze(0) < lens.unsqueeze(-1)
        head = adv[:, :width].index_select(0, rows)
        if pre_hint_weight == 0.0:
            head.masked_fill_(before, 0.0)
        else:
            head.mul_(torch.where(before, pre_hint_weight, 1.0).to(adv.dtype))
        adv[:, :width].index_copy_(0, rows, head)
    return adv, adv


def _take(tensor: torch.Tensor, flat: np.ndarray) -> np.ndarray:
    """``tensor.reshape(-1)[flat]`` as a numpy array."""
    if tensor.device.type == "cpu" and tensor.dtype not in (torch.bfloat16, torch.complex32):
        return tensor.detach().reshape(-1).numpy()[flat]
    picked = tensor.detach().reshape(-1).index_select(0, torch.from_numpy(flat).to(tensor.device))
    return (picked.float() if picked.dtype == torch.bfloat16 else picked).cpu().numpy()


def _add_at_(tensor: torch.Tensor, at: np.ndarray, values: np.ndarray, in_numpy: bool | None = None) -> None:
    """``tensor.view(-1)[at] += values`` for unique flat indices ``at`` (numpy on CPU, see ``_with_process``)."""
    if in_numpy if in_numpy is not None else tensor.device.type == "cpu":
        tensor.view(-1).numpy()[at] += values
    else:
        device = tensor.device
        tensor.view(-1).index_add_(
            0, torch.from_numpy(at).to(device), torch.from_numpy(values).to(device, tensor.dtype)
        )


def _with_process(
    outcome: torch.Tensor,
    response_mask: torch.Tensor,
    gid: torch.Tensor,
    n_groups: int,
    pre_len: torch.Tensor | None,
    step_rewards: torch.Tensor,
    step_mask: torch.Tensor,
    *,
    epsilon: float,
    norm: bool,
    beta: float,
    pre_hint_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    bsz, seq_len = response_mask.shape
    dtype = outcome.dtype
    device = response_mask.device

    # ---- the step list: found once, then handled as a short list (tens of steps per response) ----
    # Its math runs in numpy, single-threaded: a few hundred thousand steps are enough for torch's CPU thread
    # pool, whose barriers stall when the CPU is oversubscribed (measured 7x slower on a loaded 2-core box).
    is_step = step_mask.to(device)
    flat = _flat_nonzero(is_step if is_step.dtype == torch.bool else is_step != 0).cpu().numpy()
    flat = flat[_take(response_mask, flat) != 0]
    values = _take(step_rewards, flat).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("step_rewards must be finite where step_mask is set")
    rows = flat // seq_len
    step_gid = gid.cpu().numpy()[rows]

    # ---- process part: steps normalized over the whole group (all steps of all its samples) ----
    # same rules as _group_stats: two-pass unbiased std; fewer than two steps in a group: mean 0, std 1
    count = np.bincount(step_gid, minlength=n_groups).astype(np.float64)
    mean = np.bincount(step_gid, weights=values, minlength=n_groups) / np.maximum(count, 1.0)
    centred = values - mean[step_gid]
    std = np.sqrt(np.bincount(step_gid, weights=centred * centred, minlength=n_groups) / np.maximum(count - 1.0, 1.0))
    single = count <= 1.0
    mean[single], std[single] = 0.0, 1.0
    scale = beta / (std + epsilon) if norm else np.full(n_groups, beta)
    z = (values - mean[step_gid]) * scale[step_gid]

    # ---- difference array along T; its cumulative sum is the advantage before masking ----
    # row start: outcome (pre-hint scaled) + every step's z (P at t = 0 sums all steps of the row)
    row_z = torch.from_numpy(np.bincount(rows, weights=z, minlength=bsz)).to(device=device, dtype=dtype)
    start = outcome if pre_len is None else torch.where(pre_len > 0, outcome * pre_hint_weight, outcome)
    diff = torch.zeros((bsz, seq_len), dtype=dtype, device=device)
    diff[:, 0] = start + row_z
    # a step stops counting after its end token; flat indices are unique, so plain fancy-index updates suffice
    after = (flat + 1) % seq_len != 0
    stop_at, stop_z = flat[after] + 1, -z[after]
    switch_at = switch_val = None
    if pre_len is not None:  # the outcome part switches to full weight at the first hint token
        sw_rows = torch.nonzero((pre_len > 0) & (pre_len < seq_len)).squeeze(-1)
        switch_at = (sw_rows * seq_len + pre_len[sw_rows]).cpu().numpy()
        switch_val = (outcome[sw_rows] * (1.0 - pre_hint_weight)).cpu().numpy()
    _add_at_(diff, stop_at, stop_z)
    if switch_at is not None:
        _add_at_(diff, switch_at, switch_val)
    adv = diff.cumsum_(-1)
    _apply_mask_(adv, response_mask)
    return adv, adv


def _is_list(value: object) -> bool:
    # a JSON string is a Sequence too: an undecoded entry is malformed, not a list of characters
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


_PLAIN_NUMBERS = frozenset((float, int))  # exact types: bool, a subclass of int, is malformed here
_PLAIN_INT = frozenset((int,))


def _real_or_nan(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return math.nan
    try:
        return float(value)  # NaN and inf stay, and are dropped with the malformed ones
    except OverflowError:
        return math.nan


def _row_arrays(scores: Sequence[object], ends: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """(scores float64, ends int64) of one sample; a malformed entry becomes NaN / -1 so the caller drops it."""
    # fast path: what JSON gives (plain floats/ints), converted by numpy in one call
    if _PLAIN_NUMBERS.issuperset(map(type, scores)) and _PLAIN_INT.issuperset(map(type, ends)):
        try:
            return np.asarray(scores, dtype=np.float64), np.asarray(ends, dtype=np.int64)
        except OverflowError:  # a score or end beyond float64 / int64: the slow path sorts it out
            pass
    score_arr = np.array([_real_or_nan(x) for x in scores], dtype=np.float64)
    end_arr = np.array(
        [min(int(x), 2**62) if isinstance(x, numbers.Integral) and not isinstance(x, bool) else -1 for x in ends],
        dtype=np.int64,
    )
    return score_arr, end_arr


def dense_step_rewards(
    step_scores: Sequence[Sequence[float]],
    step_token_ends: Sequence[Sequence[int]],
    response_length: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ``(step_rewards [B, T], step_mask [B, T] bool)`` from per-sample lists (the reward manager's
    ``step_scores`` / ``step_token_ends``, decoded with ``verl_pdai.plugin.fields.decode_list``).

    Ends past the response are clipped to ``T - 1`` (a truncated response's last steps end on its last token).
    Malformed entries are ignored: a non-numeric or non-finite score, a non-integer or negative end; a sample
    whose two lists differ in length is skipped whole, since its scores cannot be paired with ends. Steps
    ending on the same token (e.g. after clipping) become one step with the summed reward.
    """
    if len(step_scores) != len(step_token_ends):
        raise ValueError(f"step_scores has {len(step_scores)} samples, step_token_ends {len(step_token_ends)}")
    if response_length < 0:
        raise ValueError(f"response_length must be >= 0, got {response_length}")
    bsz = len(step_scores)
    rewards = torch.zeros((bsz, response_length), dtype=dtype, device=device)
    mask = torch.zeros((bsz, response_length), dtype=torch.bool, device=device)
    if response_length == 0:
        return rewards, mask
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for row, (scores, ends) in enumerate(zip(step_scores, step_token_ends, strict=True)):
        if not _is_list(scores) or not _is_list(ends) or len(scores) != len(ends) or len(scores) == 0:
            continue
        score_arr, end_arr = _row_arrays(scores, ends)
        ok = np.isfinite(score_arr) & (end_arr >= 0)
        rows.append(np.full(int(ok.sum()), row, dtype=np.int64))
        cols.append(np.minimum(end_arr[ok], response_length - 1))
        vals.append(score_arr[ok])
    if rows:
        index = (
            torch.from_numpy(np.concatenate(rows)).to(device),
            torch.from_numpy(np.concatenate(cols)).to(device),
        )
        rewards.index_put_(
            index, torch.from_numpy(np.concatenate(vals)).to(device=device, dtype=dtype), accumulate=True
        )
        mask[index] = True
    return rewards, mask
