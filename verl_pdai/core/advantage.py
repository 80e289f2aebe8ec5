"""The ``epgrpo`` advantage: a whole-group outcome baseline that gives hinted successes their signal, plus a
bounded process part. Pure torch, no verl (the adapter is ``verl_pdai.plugin.advantage``).

For sample i of group g (same prompt), verified outcome r_i, hint fraction f_i (0 unhinted), response tokens t::

    r'_i     = r_i * (1 - lambda * f_i)                        (lambda = ``discount``, default 0)
    O_i      = (r'_i - mean_g(r')) / (std_g(r) + eps)           if the r of g are not all equal, else exactly 0
             = r'_i - mean_g(r')                               when norm_adv_by_std_in_grpo is off
    S_{i,t}  = sum of sample i's step rewards over the steps that end at a token >= t
    P_{i,t}  = clip(beta_proc * (S_{i,t} - mean_g(S_{j,0})), -c_g, +c_g)
    c_g      = min(beta_proc * process_cap, rho * m_g)          m_g: the group's smallest non-zero |outcome part|
             = beta_proc * process_cap                         when g has no outcome contrast
    A_{i,t}  = mask_{i,t} * (w_{i,t} * O_i + P_{i,t})
    w_{i,t}  = pre_hint_weight  if i is hinted and t < hint_start_i,  else 1

The std is that of the *undiscounted* outcomes, and a group whose outcomes are all equal gets an outcome part of
exactly 0 (no float residue, whatever its hints and discount). ``baseline="level"`` (an ablation) replaces
mean_g(r') by the mean over the sample's (group, hint level) cell when that cell has two members or more.
The process part is on the reward's own scale (never divided by a std), so it stays within
``beta_proc * process_cap`` on each side, and below ``rho`` (``process_clip_ratio`` < 1) times the smallest
non-zero outcome magnitude of its group: in a group with outcome contrast the process part can never flip the
sign the outcome part gives a token.

With no hints and no step rewards this is verl's ``grpo`` (same statistics, same singleton rule: a group of one
has mean 0 and std 1); ``tests/core/test_advantage.py`` checks it against verl's own function.

Conventions:

* ``hint_start`` is the response index of the first hint token, read on hinted rows only (``-1`` elsewhere) and
  clipped to ``[0, T]``.
* Only the *outcome* part is scaled before the hint; the process part there is what the model's own steps earned.
* A step whose end token is masked (a hint or padding token) is dropped: a reward placed on a masked position
  would leak into the group while no token of the sample could earn it (verl PR 6310).
* ``valid`` (``[B]`` bool) drops rows from the loss: they leave the group statistics and get advantage 0 (the
  trainer's ``pdai.drop_unscored`` for responses the reward could not score).
* ``returns`` is the same tensor as ``advantages`` (outcome supervision, no critic), as in verl's ``grpo``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "BASELINES",
    "EpgrpoParts",
    "compute_epgrpo_advantage",
    "check_epgrpo_settings",
    "compute_epgrpo_parts",
    "dense_step_rewards",
    "group_ids",
]

BASELINES = ("group", "level")
# rho near 1 would let float rounding cancel a token's outcome part exactly: keep a visible margin
MAX_CLIP_RATIO = 0.95

GroupIndex = torch.Tensor | np.ndarray | Sequence[Hashable]
IntLike = torch.Tensor | np.ndarray | Sequence[int]
FloatLike = torch.Tensor | np.ndarray | Sequence[float]


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


def _masked(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``values * response_mask`` (verl's own product for float masks, a select for bool/int ones)."""
    if response_mask.is_floating_point():
        return (values * response_mask).to(values.dtype)
    return torch.where(_keep(response_mask), values, torch.zeros((), dtype=values.dtype, device=values.device))


def _as_float_vector(name: str, value: FloatLike, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.as_tensor(value, device=device).to(dtype)
    if tensor.dim() != 1 or tensor.numel() != size:
        raise ValueError(f"{name} must have shape ({size},), got {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite")
    return tensor


def _group_extremes(values: torch.Tensor, ids: torch.Tensor, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group (min, max); empty groups get (+inf, -inf)."""
    lo = torch.full((n_groups,), math.inf, dtype=values.dtype, device=values.device)
    hi = torch.full((n_groups,), -math.inf, dtype=values.dtype, device=values.device)
    return lo.scatter_reduce(0, ids, values, "amin"), hi.scatter_reduce(0, ids, values, "amax")


@dataclass(frozen=True)
class EpgrpoParts:
    """``epgrpo``'s token advantages and their outcome part, masked; the process part is the difference."""

    advantages: torch.Tensor  # [B, T] w_{i,t} O_i + P_{i,t}
    outcome: torch.Tensor  # [B, T] w_{i,t} O_i
    outcome_per_row: torch.Tensor  # [B] O_i (full weight)
    contrast: torch.Tensor  # [B] bool: the row's group has outcome contrast (its outcomes are not all equal)
    valid: torch.Tensor  # [B] bool: the row took part (``valid`` argument)

    @property
    def process(self) -> torch.Tensor:
        """[B, T] P_{i,t} (all zeros without step rewards)."""
        return self.advantages - self.outcome


@dataclass(frozen=True)
class _Prepared:
    """What both entry points share: per-row outcome parts and what the token pass needs."""

    outcome_row: torch.Tensor
    contrast: torch.Tensor
    keep_row: torch.Tensor
    pre_len: torch.Tensor | None  # [B] pre-hint tokens per row (0: none), None when no row has any
    gid: torch.Tensor
    n_groups: int
    dtype: torch.dtype


def compute_epgrpo_parts(
    outcome_scores: torch.Tensor,
    response_mask: torch.Tensor,
    group_index: GroupIndex,
    hint_level: IntLike | None = None,
    hint_start: IntLike | None = None,
    step_rewards: torch.Tensor | None = None,
    step_mask: torch.Tensor | None = None,
    **settings: Any,
) -> EpgrpoParts:
    """The advantages of ``epgrpo`` with their outcome part (arguments as ``compute_epgrpo_advantage``)."""
    prep, adv = _epgrpo(outcome_scores, response_mask, group_index, hint_level, hint_start, step_rewards, step_mask,
                        **settings)  # fmt: skip
    pre_hint_weight = float(settings.get("pre_hint_weight", 0.0))
    outcome = _outcome_tokens(prep.outcome_row, response_mask, prep.pre_len, pre_hint_weight)
    return EpgrpoParts(adv, outcome, prep.outcome_row, prep.contrast & prep.keep_row, prep.keep_row)


def compute_epgrpo_advantage(
    outcome_scores: torch.Tensor,
    response_mask: torch.Tensor,
    group_index: GroupIndex,
    hint_level: IntLike | None = None,
    hint_start: IntLike | None = None,
    step_rewards: torch.Tensor | None = None,
    step_mask: torch.Tensor | None = None,
    **settings: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token advantages of ``epgrpo`` (equations in the module docstring) and the returns (the same tensor).

    Args:
        outcome_scores: ``[B]`` verified outcome of each response (the reward's explicit outcome part, never a
            total minus step scores).
        response_mask: ``[B, T]``; 0 on hint and padding tokens, which get advantage 0. Float masks multiply
            (as verl); bool/int masks select (nonzero = 1).
        group_index: ``[B]`` group labels (verl's ``uid`` strings, ints, ...).
        hint_level: ``[B]`` ints >= 0 (0 = unhinted); None = nobody hinted.
        hint_start: ``[B]`` response index of the first hint token (read on hinted rows, clipped to ``[0, T]``);
            needed on hinted rows when ``pre_hint_weight != 1``.
        step_rewards / step_mask: ``[B, T]`` a step's reward on the token where it ends, and where steps end.
        settings: the keywords of ``_epgrpo`` (their defaults live there only):
            ``hint_fraction`` ``[B]`` in [0, 1], the share of the reference revealed (f_i; needed when
            ``discount > 0``); ``valid`` ``[B]`` bool, rows that take part (the others get 0 and leave the
            statistics); ``epsilon``, ``norm_adv_by_std_in_grpo`` as verl's ``grpo``; ``process_weight``
            (beta_proc >= 0); ``process_cap`` (the reward's bound on a response's process score);
            ``process_clip_ratio`` (rho in (0, 0.95]: the process part stays below rho times the group's smallest
            non-zero outcome magnitude); ``pre_hint_weight`` (in [0, 1], the outcome part on a hinted response's
            tokens before its hint); ``discount`` (lambda in [0, 1]); ``baseline`` (``group``, default, or
            ``level``, an ablation). An unknown keyword raises TypeError.
    """
    _, adv = _epgrpo(outcome_scores, response_mask, group_index, hint_level, hint_start, step_rewards, step_mask,
                     **settings)  # fmt: skip
    return adv, adv


def _epgrpo(
    outcome_scores: torch.Tensor,
    response_mask: torch.Tensor,
    group_index: GroupIndex,
    hint_level: IntLike | None,
    hint_start: IntLike | None,
    step_rewards: torch.Tensor | None,
    step_mask: torch.Tensor | None,
    *,
    hint_fraction: FloatLike | None = None,
    valid: torch.Tensor | np.ndarray | Sequence[bool] | None = None,
    epsilon: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    process_weight: float = 1.0,
    process_cap: float = 0.2,
    process_clip_ratio: float = 0.5,
    pre_hint_weight: float = 0.0,
    discount: float = 0.0,
    baseline: str = "group",
) -> tuple[_Prepared, torch.Tensor]:
    if not isinstance(outcome_scores, torch.Tensor) or not isinstance(response_mask, torch.Tensor):
        raise TypeError("outcome_scores and response_mask must be torch tensors")
    if response_mask.dim() != 2:
        raise ValueError(f"response_mask must be [B, T], got shape {tuple(response_mask.shape)}")
    bsz, seq_len = response_mask.shape
    if outcome_scores.shape != (bsz,):
        raise ValueError(f"outcome_scores must have shape ({bsz},), got {tuple(outcome_scores.shape)}")
    check_epgrpo_settings(
        epsilon=epsilon,
        norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo,
        process_weight=process_weight,
        process_cap=process_cap,
        process_clip_ratio=process_clip_ratio,
        pre_hint_weight=pre_hint_weight,
        discount=discount,
        baseline=baseline,
    )
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
    keep_row = torch.ones(bsz, dtype=torch.bool, device=device)
    if valid is not None:
        keep_row = torch.as_tensor(valid, device=device).to(torch.bool).reshape(-1)
        if keep_row.numel() != bsz:
            raise ValueError(f"valid must have shape ({bsz},), got {tuple(keep_row.shape)}")
    original_count = torch.bincount(gid, minlength=n_groups).to(dtype)[gid]  # group sizes before dropping
    # dropped rows form one extra group of their own, zeroed at the end: the real groups never see them
    gid = torch.where(keep_row, gid, torch.full_like(gid, n_groups))
    n_groups += 1

    level = torch.zeros(bsz, dtype=torch.long, device=device)
    if hint_level is not None:
        level = _as_int_vector("hint_level", hint_level, bsz, device)
        if bool((level < 0).any()):
            raise ValueError("hint_level must be >= 0")
    hinted = level > 0

    with torch.no_grad():
        outcome_row, contrast = _outcome_per_row(
            scores, original_count, gid, n_groups, level, hinted, hint_fraction, epsilon, norm_adv_by_std_in_grpo,
            discount, baseline,
        )  # fmt: skip
        outcome_row = torch.where(keep_row, outcome_row, torch.zeros_like(outcome_row))
        pre_len = _pre_hint_lengths(hinted, hint_start, pre_hint_weight, bsz, seq_len, device)
        prep = _Prepared(outcome_row, contrast, keep_row, pre_len, gid, n_groups, dtype)
        if step_rewards is None or process_weight == 0.0 or seq_len == 0:
            return prep, _outcome_tokens(outcome_row, response_mask, pre_len, pre_hint_weight)
        smallest = outcome_row.abs()
        if pre_len is not None and 0.0 < pre_hint_weight < 1.0:  # pre-hint tokens carry w * |O_i|
            smallest = torch.where(pre_len > 0, smallest * pre_hint_weight, smallest)
        adv = _with_process(
            prep,
            response_mask,
            step_rewards,
            step_mask,
            smallest,
            beta=process_weight,
            bound=process_weight * process_cap,
            ratio=process_clip_ratio,
            pre_hint_weight=pre_hint_weight,
        )
    return prep, adv


def check_epgrpo_settings(
    *,
    epsilon: float,
    norm_adv_by_std_in_grpo: bool,
    process_weight: float,
    process_cap: float,
    process_clip_ratio: float,
    pre_hint_weight: float,
    discount: float,
    baseline: str,
) -> None:
    """Raise ValueError naming the first setting of ``epgrpo`` out of its range."""
    if not math.isfinite(epsilon) or epsilon < 0 or (norm_adv_by_std_in_grpo and epsilon == 0):
        raise ValueError(f"epsilon must be finite and > 0 (>= 0 without std normalization), got {epsilon}")
    if not math.isfinite(process_weight) or process_weight < 0:
        raise ValueError(f"process_weight (beta_proc) must be finite and >= 0, got {process_weight}")
    if not math.isfinite(process_cap) or process_cap < 0:
        raise ValueError(f"process_cap must be finite and >= 0, got {process_cap}")
    if not 0.0 < process_clip_ratio <= MAX_CLIP_RATIO:
        raise ValueError(f"process_clip_ratio must be in (0, {MAX_CLIP_RATIO}], got {process_clip_ratio}")
    if not 0.0 <= pre_hint_weight <= 1.0:
        raise ValueError(f"pre_hint_weight must be in [0, 1], got {pre_hint_weight}")
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount (lambda) must be in [0, 1], got {discount}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")


def _outcome_per_row(
    scores: torch.Tensor,
    original_count: torch.Tensor,
    gid: torch.Tensor,
    n_groups: int,
    level: torch.Tensor,
    hinted: torch.Tensor,
    hint_fraction: FloatLike | None,
    epsilon: float,
    norm: bool,
    discount: float,
    baseline: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(O_i, group has outcome contrast) per row."""
    bsz = scores.numel()
    count, _, std = _group_stats(scores, gid, n_groups)
    lo, hi = _group_extremes(scores, gid, n_groups)
    contrast = (hi > lo)[gid]
    # verl's singleton rule is for groups of one by design; a group left with one row by dropping gets 0
    single = (count <= 1.0)[gid] & (original_count <= 1.0)
    discounted = scores
    if discount > 0.0 and bool(hinted.any()):
        if hint_fraction is None:
            raise ValueError("hint_fraction is required when discount > 0 and a row is hinted")
        fraction = _as_float_vector("hint_fraction", hint_fraction, bsz, scores.device, scores.dtype)
        if bool(((fraction < 0) | (fraction > 1)).any()):
            raise ValueError("hint_fraction must be in [0, 1]")
        discounted = scores * (1.0 - discount * torch.where(hinted, fraction, torch.zeros_like(fraction)))
    _, mean, _ = _group_stats(discounted, gid, n_groups)
    base = mean[gid]
    if baseline == "level" and bool(hinted.any()):
        cell_key = gid * (int(level.max()) + 1) + level
        _, cell = torch.unique(cell_key, return_inverse=True)
        c_count, c_mean, _ = _group_stats(discounted, cell, int(cell.max()) + 1)
        # a level alone in its group has no peer to compare with: the whole-group baseline
        base = torch.where(c_count[cell] >= 2, c_mean[cell], base)
    centred = discounted - base
    outcome = centred / (std[gid] + epsilon) if norm else centred
    # verl's singleton rule (mean 0, std 1) keeps ``epgrpo == grpo``; any larger group without contrast gets 0
    outcome = torch.where(contrast | single, outcome, torch.zeros_like(outcome))
    return outcome, contrast & ~single


def _pre_hint_lengths(
    hinted: torch.Tensor,
    hint_start: IntLike | None,
    pre_hint_weight: float,
    bsz: int,
    seq_len: int,
    device: torch.device,
) -> torch.Tensor | None:
    """``[B]`` number of pre-hint tokens per row (0 on unhinted rows), or None when no row has any or they are not
    scaled (``pre_hint_weight == 1``)."""
    if pre_hint_weight == 1.0 or not bool(hinted.any()):
        return None
    if hint_start is None:
        raise ValueError("hint_start is required when a row is hinted and pre_hint_weight != 1")
    start = _as_int_vector("hint_start", hint_start, bsz, device).clamp(0, seq_len)
    pre_len = torch.where(hinted, start, torch.zeros_like(start))
    return pre_len if bool((pre_len > 0).any()) else None


def _outcome_tokens(
    outcome: torch.Tensor, response_mask: torch.Tensor, pre_len: torch.Tensor | None, pre_hint_weight: float
) -> torch.Tensor:
    """``[B, T]`` w_{i,t} O_i, masked: one pass like verl's, then the pre-hint slice of the hinted rows only."""
    bsz, seq_len = response_mask.shape
    adv = _masked(outcome.unsqueeze(-1).expand(bsz, seq_len), response_mask)
    if pre_len is not None:
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
    return adv


def _with_process(
    prep: _Prepared,
    response_mask: torch.Tensor,
    step_rewards: torch.Tensor,
    step_mask: torch.Tensor,
    smallest_outcome: torch.Tensor,
    *,
    beta: float,
    bound: float,
    ratio: float,
    pre_hint_weight: float,
) -> torch.Tensor:
    """``[B, T]`` outcome part + process part, built as a difference array along T.

    S_{i,t} (the steps at or after t) is constant between two step ends, so P_{i,t} = clip(beta (S - mean_g)) is
    too: it is computed once per segment on the short step list, and the tokens get it from one cumulative sum
    (one zero-filled ``[B, T]`` allocation, one ``cumsum_``, one in-place mask; no per-token clip).
    """
    bsz, seq_len = response_mask.shape
    device, dtype = response_mask.device, prep.dtype
    gid = prep.gid.cpu().numpy()
    keep_row = prep.keep_row.cpu().numpy()

    # the steps, row-major and ascending within a row; a step whose end token is masked is dropped
    is_step = step_mask.to(device)
    flat = _flat_nonzero(is_step if is_step.dtype == torch.bool else is_step != 0)
    flat = flat[_take(response_mask, flat) != 0]
    values = _take(step_rewards, flat).astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("step_rewards must be finite where step_mask is set")
    rows, ends = flat // seq_len, flat % seq_len
    total = np.bincount(rows, weights=values, minlength=bsz)
    # S after each step: the row's total less its steps so far (a running sum restarted at each row)
    running = np.cumsum(values)
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    restart = np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    before_row = running[restart] - values[restart]
    after_step = total[rows] - (running - before_row)

    # the group's mean process score (a group of one is centred on itself), and the bound c_g
    count = np.bincount(gid, minlength=prep.n_groups).astype(np.float64)
    mean = np.bincount(gid, weights=total, minlength=prep.n_groups) / np.maximum(count, 1.0)
    magnitude = smallest_outcome.detach().cpu().numpy().astype(np.float64)
    magnitude = np.where(magnitude > 0, magnitude, np.inf)
    group_min = np.full(prep.n_groups, np.inf)
    np.minimum.at(group_min, gid, magnitude)
    limit = np.minimum(group_min * ratio, bound)

    def clip(s: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.clip(beta * (s - mean[g]), -limit[g], limit[g])

    start_value = clip(total, gid) * keep_row  # P_{i,0}, every row (a row without steps: -mean, clipped)
    after_value = clip(after_step, gid[rows]) * keep_row[rows]
    previous = np.where(first, start_value[rows], np.roll(after_value, 1))

    outcome = prep.outcome_row
    pre_len = prep.pre_len
    diff = torch.zeros((bsz, seq_len), dtype=dtype, device=device)
    head = outcome if pre_len is None else torch.where(pre_len > 0, outcome * pre_hint_weight, outcome)
    diff[:, 0] = head + torch.from_numpy(start_value).to(device=device, dtype=dtype)
    inside = ends + 1 < seq_len
    _add_at_(diff, flat[inside] + 1, (after_value - previous)[inside])
    if pre_len is not None:  # the outcome part switches to full weight at the first hint token
        sw_rows = torch.nonzero((pre_len > 0) & (pre_len < seq_len)).squeeze(-1)
        switch_at = (sw_rows * seq_len + pre_len[sw_rows]).cpu().numpy()
        _add_at_(diff, switch_at, (outcome[sw_rows] * (1.0 - pre_hint_weight)).cpu().numpy())
    adv = diff.cumsum_(-1)
    return _apply_mask_(adv, response_mask)


def _apply_mask_(values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``values *= response_mask`` in place."""
    if response_mask.is_floating_point():
        return values.mul_(response_mask)
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    return torch.where(_keep(response_mask), values, zero, out=values)


def _flat_nonzero(mask: torch.Tensor) -> np.ndarray:
    """Flat indices of the true entries of a bool tensor, ascending."""
    flat = mask.reshape(-1)
    if flat.device.type == "cpu":
        # numpy's flatnonzero is ~5x faster than torch.nonzero on CPU (one pass, no per-dim index tensors)
        return np.flatnonzero(flat.numpy())
    return torch.nonzero(flat).squeeze(-1).cpu().numpy()


def _take(tensor: torch.Tensor, flat: np.ndarray) -> np.ndarray:
    """``tensor.reshape(-1)[flat]`` as a numpy array."""
    if tensor.device.type == "cpu" and tensor.dtype not in (torch.bfloat16, torch.complex32):
        return tensor.detach().reshape(-1).numpy()[flat]
    picked = tensor.detach().reshape(-1).index_select(0, torch.from_numpy(flat).to(tensor.device))
    return (picked.float() if picked.dtype == torch.bfloat16 else picked).cpu().numpy()


def _add_at_(tensor: torch.Tensor, at: np.ndarray, values: np.ndarray) -> None:
    """``tensor.view(-1)[at] += values`` for unique flat indices ``at``."""
    if tensor.device.type == "cpu":
        tensor.view(-1).numpy()[at] += values
    else:
        device = tensor.device
        tensor.view(-1).index_add_(
            0, torch.from_numpy(at).to(device), torch.from_numpy(values).to(device, tensor.dtype)
        )


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
