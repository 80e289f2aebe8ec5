"""High-level intervention policy: how much of the reference solution to reveal, from the previewed difficulty.

Model. A problem whose previewed unassisted success rate is p gets hint level h, which reveals a fraction f_h
of the reference steps (f_0 = 0: no hint). The chance that a session at level h succeeds is modelled as

    P(success | p, f) = sigmoid(logit(p) + w * f)

with one shared slope w >= 0 ("how much a whole reference solution is worth, in log-odds"). p is clamped to
[min_p, max_p] before the logit so one extreme estimate cannot dominate. The policy picks the smallest level
whose predicted success reaches the target rate tau; easy problems (p >= tau) get no hint, and when no level
reaches tau the highest level is used.

Difficulty. p is the preview posterior mean (see ``previewed_success_rate``):

    p = (alpha + c) / (alpha + beta + k_done + rho * k_running)

where c of the k_done finished preview sessions succeeded and each of the k_running still-running ones
counts as rho of a failure (failing attempts run long).

Fitting. w is refitted online from the hinted outcomes (p_i, f_i, y_i) in a window of the most recent ones
(level-0 outcomes say nothing about w). It is the MAP estimate under a Gaussian prior N(mu, sigma^2):

    L(w)  = sum_i [y_i * log s_i + (1 - y_i) * log(1 - s_i)] - (w - mu)^2 / (2 sigma^2),  s_i = sigmoid(a_i + w f_i)
    L'(w) = sum_i f_i (y_i - s_i) - (w - mu) / sigma^2
    L''(w) = -sum_i f_i^2 s_i (1 - s_i) - 1 / sigma^2 < 0,      a_i = logit(clamp(p_i))

L is strictly concave, so L' has at most one root; it is found on [w_lo, w_hi] by Newton steps kept inside
a shrinking bisection bracket (the bound itself when L' does not change sign there). The prior term keeps
w finite and near mu for few, all-success or all-failure observations (the unregularized MLE would be
+-inf there; SEELE's 3-point curve fit was its worst setting): since (w - mu) / sigma^2 = sum_i f_i (y_i - s_i)
at the optimum, |w - mu| <= sigma^2 * sum_i f_i whatever the outcomes. Nothing here imports verl.
"""

from __future__ import annotations

import math
import operator
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from verl_pdai.core.config_values import as_count, as_float, require_known_keys

__all__ = ["InterventionPolicy", "PolicyConfig", "previewed_success_rate"]

STATE_VERSION = 1


# ----------------------------------------------------------------------------------------------- helpers


def _sigmoid(z: float) -> float:
    """Logistic function without overflow for large |z|."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _as_probability(name: str, value: object) -> float:
    out = as_float(name, value)
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {out}")
    return out


def _as_outcome(name: str, value: object) -> bool:
    """A binary outcome: a bool or a number equal to 0 or 1 (a reward of 1.0 is fine, 0.5 is not)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a bool or 0/1, got {value!r}")
    try:
        if value == 1:
            return True
        if value == 0:
            return False
    except Exception:  # exotic objects whose == raises: treat as malformed
        pass
    raise ValueError(f"{name} must be a bool or 0/1 (threshold graded rewards first), got {value!r}")


def _as_pair(name: str, value: object) -> tuple[float, float]:
    if isinstance(value, (str, bytes, Mapping)):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    try:
        items = tuple(value)  # type: ignore[call-overload]
    except TypeError:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    return as_float(f"{name}[0]", items[0]), as_float(f"{name}[1]", items[1])


# ----------------------------------------------------------------------------------------------- difficulty


def previewed_success_rate(
    prior_alpha: float,
    prior_beta: float,
    finished: int,
    successes: int,
    running: int = 0,
    running_weight: float = 0.0,
) -> float:
    """Posterior mean of the unassisted success rate given the preview seen so far.

    ``p = (alpha + successes) / (alpha + beta + finished + running_weight * running)``: a Beta(alpha, beta)
    prior updated with the finished preview sessions, plus each still-running preview counted as
    ``running_weight`` (in [0, 1]) of a failure, because failing attempts tend to run long. The result lies
    in (0, 1).
    """
    alpha = as_float("prior_alpha", prior_alpha)
    beta = as_float("prior_beta", prior_beta)
    if alpha <= 0.0 or beta <= 0.0:
        raise ValueError(f"prior_alpha and prior_beta must be > 0, got alpha={alpha}, beta={beta}")
    n_done = as_count("finished", finished)
    n_ok = as_count("successes", successes)
    n_run = as_count("running", running)
    if n_ok > n_done:
        raise ValueError(f"successes ({n_ok}) cannot exceed finished ({n_done})")
    rho = as_float("running_weight", running_weight)
    if not 0.0 <= rho <= 1.0:
        # A session that has not finished is at most as informative as one that finished and failed.
        raise ValueError(f"running_weight must lie in [0, 1], got {rho}")
    return (alpha + n_ok) / (alpha + beta + n_done + rho * n_run)


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PolicyConfig:
    """Settings of :class:`InterventionPolicy`; validated on construction (frozen, so it stays valid).

    Defaults:

    - ``fractions`` (0, .25, .5, .75): level h reveals ``fractions[h]`` of the reference steps. Never 1: a
      hint must leave the final steps (and the answer) to the model.
    - ``target_rate`` 0.5: a group with half its answers right has the largest reward variance, the most
      GRPO signal (SEELE found the same optimum).
    - ``w_init`` = ``w_prior_mean`` = 4.0: a hint revealing 75% of the steps is assumed to lift a hard
      problem from p = 0.05 to about 0.5, i.e. w = (logit(0.5) - logit(0.05)) / 0.75 = 3.93.
    - ``w_prior_std`` 1.0: w in [2, 6] at two standard deviations (a 75% hint lifts p = 0.05 to 0.2..0.8).
      At the optimum (w - mu) / sigma^2 = sum_i f_i (y_i - s_i), so each outcome moves w by at most
      f_i * sigma^2 <= 0.75: a handful of outcomes cannot swing it. Its weight (precision 1) matches some
      10-30 hinted outcomes near the target rate, so it fades after a few hundred (simulated: true w 0.5 or
      10 is recovered to within 0.3 after 4000 outcomes; std 2 let three saturated outcomes push w to a bound).
    - ``w_bounds`` (0, 12): hints never hurt in the model (w >= 0 also keeps the level choice monotone in
      p); 12 log-odds for a full solution is already beyond any realistic effect.
    - ``window`` 4096: hinted outcomes kept for refitting, a few training steps' worth, so w follows the
      improving policy.
    - ``min_p``/``max_p`` 0.005/0.995: logits within +-5.3, so a single extreme difficulty estimate has bounded
      leverage on the fit.
    - ``explore_spread`` 0: probability that a hinted session uses an adjacent hint level instead, which
      spreads observations over f and makes w better identified; off by default.
    """

    fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    target_rate: float = 0.5
    w_init: float = 4.0
    w_prior_mean: float = 4.0
    w_prior_std: float = 1.0
    w_bounds: tuple[float, float] = (0.0, 12.0)
    window: int = 4096
    min_p: float = 0.005
    max_p: float = 0.995
    explore_spread: float = 0.0

    def __post_init__(self) -> None:
        # Accept lists (JSON, OmegaConf ListConfig) for the tuple fields, then fail early on anything invalid.
        if not isinstance(self.fractions, (str, bytes, Mapping)):
            try:
                object.__setattr__(self, "fractions", tuple(self.fractions))
            except TypeError:
                pass
        if not isinstance(self.w_bounds, (str, bytes, Mapping)):
            try:
                object.__setattr__(self, "w_bounds", tuple(self.w_bounds))
            except TypeError:
                pass
        self.validate()

    @property
    def num_levels(self) -> int:
        """Number of levels, level 0 (no hint) included."""
        return len(self.fractions)

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting and what a valid one looks like."""
        fr = self.fractions
        if not isinstance(fr, tuple) or not fr:
            raise ValueError(f"PolicyConfig.fractions must be a non-empty sequence like (0.0, 0.25, 0.5), got {fr!r}")
        values = [as_float(f"PolicyConfig.fractions[{i}]", v) for i, v in enumerate(fr)]
        if values[0] != 0.0:
            raise ValueError(f"PolicyConfig.fractions must start at 0.0 (level 0 is the unhinted level), got {fr!r}")
        for i in range(1, len(values)):
            if not values[i] > values[i - 1]:
                raise ValueError(f"PolicyConfig.fractions must be strictly increasing, got {fr!r}")
        if values[-1] >= 1.0:
            raise ValueError(
                f"PolicyConfig.fractions must stay below 1.0 (a hint never reveals the whole solution), got {fr!r}"
            )

        tau = as_float("PolicyConfig.target_rate", self.target_rate)
        if not 0.0 < tau < 1.0:
            raise ValueError(f"PolicyConfig.target_rate must lie in (0, 1), got {tau}")

        lo, hi = _as_pair("PolicyConfig.w_bounds", self.w_bounds)
        if lo < 0.0:
            raise ValueError(f"PolicyConfig.w_bounds low must be >= 0 (hints are modelled as never hurting), got {lo}")
        if not lo < hi:
            raise ValueError(f"PolicyConfig.w_bounds must satisfy low < high, got ({lo}, {hi})")
        w_init = as_float("PolicyConfig.w_init", self.w_init)
        if not lo <= w_init <= hi:
            raise ValueError(f"PolicyConfig.w_init ({w_init}) must lie within w_bounds ({lo}, {hi})")
        mu = as_float("PolicyConfig.w_prior_mean", self.w_prior_mean)
        if not lo <= mu <= hi:
            raise ValueError(f"PolicyConfig.w_prior_mean ({mu}) must lie within w_bounds ({lo}, {hi})")
        sigma = as_float("PolicyConfig.w_prior_std", self.w_prior_std)
        if sigma <= 0.0:
            raise ValueError(f"PolicyConfig.w_prior_std must be > 0 (it keeps w finite on little data), got {sigma}")

        window = as_count("PolicyConfig.window", self.window)
        if window < 1:
            raise ValueError(f"PolicyConfig.window must be >= 1, got {window}")

        min_p = as_float("PolicyConfig.min_p", self.min_p)
        max_p = as_float("PolicyConfig.max_p", self.max_p)
        if not 0.0 < min_p < max_p < 1.0:
            raise ValueError(f"PolicyConfig needs 0 < min_p < max_p < 1, got min_p={min_p}, max_p={max_p}")
        if not min_p < tau < max_p:
            raise ValueError(f"PolicyConfig.target_rate ({tau}) must lie strictly between min_p and max_p")

        spread = as_float("PolicyConfig.explore_spread", self.explore_spread)
        if not 0.0 <= spread <= 1.0:
            raise ValueError(f"PolicyConfig.explore_spread is a probability in [0, 1], got {spread}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {
            "fractions": [float(f) for f in self.fractions],
            "target_rate": float(self.target_rate),
            "w_init": float(self.w_init),
            "w_prior_mean": float(self.w_prior_mean),
            "w_prior_std": float(self.w_prior_std),
            "w_bounds": [float(b) for b in self.w_bounds],
            "window": int(self.window),
            "min_p": float(self.min_p),
            "max_p": float(self.max_p),
            "explore_spread": float(self.explore_spread),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyConfig:
        """Build from a mapping (e.g. a recipe's config section); unknown keys are an error, missing keys default."""
        return cls(**require_known_keys(cls, data, "policy config"))


# ----------------------------------------------------------------------------------------------- policy


class InterventionPolicy:
    """Chooses the hint level from the previewed difficulty and refits the hint effect w online.

    Not thread-safe; one instance lives in the trainer (updates) and is copied into rollout workers through
    ``state_dict`` (choices).
    """

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config if config is not None else PolicyConfig()
        if not isinstance(self.config, PolicyConfig):
            raise ValueError(f"config must be a PolicyConfig, got {type(self.config).__name__}")
        self.config.validate()
        self._w = float(self.config.w_init)
        # Hinted outcomes as (p, f, success); f rather than the level index so the data keep their meaning.
        self._window: deque[tuple[float, float, bool]] = deque(maxlen=int(self.config.window))
        self._counters: dict[str, float] = _zero_counters()
        self._thresholds = self._compute_thresholds()

    # ---------------------------------------------------------------- model

    @property
    def w(self) -> float:
        """Current hint effect: log-odds gained per unit of revealed solution."""
        return self._w

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    def fraction(self, level: int) -> float:
        """Fraction of the reference steps revealed at ``level``."""
        return float(self.config.fractions[self._check_level(level)])

    def predicted_success(self, p: float, level: int) -> float:
        """P(success | p, f_level) = sigmoid(logit(clamp(p)) + w * f_level)."""
        prob = _as_probability("p", p)
        f = self.fraction(level)
        return _sigmoid(_logit(self._clamp(prob)) + self._w * f)

    def level_thresholds(self) -> tuple[float, ...]:
        """For each level, the smallest p whose predicted success at that level reaches tau.

        Level 0's threshold is tau itself. The level choice compares p with these numbers, which makes it
        exactly monotone in p (no rounding of the sigmoid in between).
        """
        return self._thresholds

    def choose_level(self, p: float, rng: random.Random | None = None) -> int:
        """Hint level for a problem with previewed success rate ``p``.

        Base choice: 0 when p >= tau; else the smallest hint level whose predicted success reaches tau; else
        the highest level. Exploration (``explore_spread`` > 0 and an ``rng``): with that probability a hinted
        choice moves to an adjacent *hint* level (down or up with equal chance; the only neighbour at the
        ends). An easy problem is never hinted and a hard one never loses its hint: level-0 outcomes carry
        no information about w. Exactly one ``rng.random()`` draw is taken per call whenever exploration is
        on, so a seeded rng gives a reproducible stream regardless of p.
        """
        prob = _as_probability("p", p)
        level = self._base_level(prob)
        spread = self.config.explore_spread
        if spread <= 0.0 or rng is None:
            return level
        u = rng.random()
        if level == 0 or u >= spread:
            return level
        can_down = level - 1 >= 1
        can_up = level + 1 <= self.num_levels - 1
        if can_down and can_up:
            return level - 1 if u < spread / 2.0 else level + 1
        if can_down:
            return level - 1
        if can_up:
            return level + 1
        return level  # a single hint level: nowhere to explore

    # ---------------------------------------------------------------- learning

    def update(self, observations: Iterable[tuple[float, int, bool]]) -> None:
        """Record (p, level, success) outcomes and refit w on the window of hinted ones.

        The whole batch is validated before anything is recorded, so a malformed batch changes nothing.
        Level-0 outcomes only feed the diagnostics. When the window holds no hinted outcome, w is left as is.
        """
        parsed: list[tuple[float, int, bool]] = []
        for i, obs in enumerate(observations):
            if isinstance(obs, (str, bytes, Mapping)):
                raise ValueError(f"observation {i} must be a (p, level, success) triple, got {obs!r}")
            try:
                items = tuple(obs)
            except TypeError:
                raise ValueError(f"observation {i} must be a (p, level, success) triple, got {obs!r}") from None
            if len(items) != 3:
                raise ValueError(f"observation {i} must be a (p, level, success) triple, got {obs!r}")
            p = _as_probability(f"observation {i} p", items[0])
            level = self._check_level(items[1], what=f"observation {i} level")
            success = _as_outcome(f"observation {i} success", items[2])
            parsed.append((p, level, success))
        if not parsed:
            return

        c = self._counters
        hinted = 0
        for p, level, success in parsed:
            if level == 0:
                c["n_unhinted"] += 1
                c["n_unhinted_success"] += int(success)
                c["unhinted_p_sum"] += p
            else:
                hinted += 1
                c["n_hinted"] += 1
                c["n_hinted_success"] += int(success)
                self._window.append((p, float(self.config.fractions[level]), success))
        c["n_updates"] += 1
        if hinted:
            self._refit()

    def _refit(self) -> None:
        cfg = self.config
        data = [(_logit(self._clamp(p)), f, 1.0 if y else 0.0) for p, f, y in self._window]
        lo, hi = cfg.w_bounds
        self._w = _map_slope(data, cfg.w_prior_mean, cfg.w_prior_std, lo, hi, self._w)
        self._counters["n_refits"] += 1
        self._thresholds = self._compute_thresholds()

    # ---------------------------------------------------------------- persistence

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable snapshot: config, w, the window of hinted outcomes, counters."""
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "w": self._w,
            "window": [[p, f, y] for p, f, y in self._window],
            "counters": {k: (int(v) if k in _INT_COUNTERS else float(v)) for k, v in self._counters.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], keep_config: bool = False) -> None:
        """Restore a ``state_dict`` snapshot (exact round trip).

        By default the saved config is restored too. With ``keep_config=True`` this policy's config is kept
        (e.g. a resumed run with an edited recipe): w is clamped to its bounds and the window trimmed to its
        size, the newest outcomes kept. Malformed state raises ValueError and leaves the policy unchanged.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"policy state must be a mapping, got {type(state).__name__}")
        missing = sorted({"version", "config", "w", "window", "counters"} - set(state))
        if missing:
            raise ValueError(f"policy state is missing keys {missing}")
        if state["version"] != STATE_VERSION:
            raise ValueError(f"unsupported policy state version {state['version']!r} (expected {STATE_VERSION})")
        saved_config = PolicyConfig.from_dict(state["config"])
        config = self.config if keep_config else saved_config

        w = as_float("policy state w", state["w"])
        lo, hi = config.w_bounds
        if keep_config:
            w = min(max(w, lo), hi)
        elif not lo <= w <= hi:
            raise ValueError(f"policy state w ({w}) lies outside w_bounds ({lo}, {hi})")

        raw_window = state["window"]
        if isinstance(raw_window, (str, bytes, Mapping)) or not isinstance(raw_window, Iterable):
            raise ValueError("policy state window must be a list of [p, f, success] entries")
        window: list[tuple[float, float, bool]] = []
        for i, entry in enumerate(raw_window):
            if isinstance(entry, (str, bytes, Mapping)) or not isinstance(entry, Iterable):
                raise ValueError(f"policy state window[{i}] must be [p, f, success], got {entry!r}")
            items = tuple(entry)
            if len(items) != 3:
                raise ValueError(f"policy state window[{i}] must be [p, f, success], got {entry!r}")
            p = _as_probability(f"policy state window[{i}] p", items[0])
            f = as_float(f"policy state window[{i}] f", items[1])
            if not 0.0 < f < 1.0:
                raise ValueError(f"policy state window[{i}] f must lie in (0, 1) (hinted outcomes only), got {f}")
            window.append((p, f, _as_outcome(f"policy state window[{i}] success", items[2])))
        if len(window) > saved_config.window:
            raise ValueError(f"policy state window has {len(window)} entries, more than its size {saved_config.window}")

        raw_counters = state["counters"]
        if not isinstance(raw_counters, Mapping):
            raise ValueError("policy state counters must be a mapping")
        counters = _zero_counters()
        unknown = sorted(str(k) for k in raw_counters if k not in counters)
        if unknown:
            raise ValueError(f"policy state has unknown counters {unknown}")
        for key in counters:
            if key not in raw_counters:
                raise ValueError(f"policy state counters miss {key!r}")
            if key in _INT_COUNTERS:
                counters[key] = as_count(f"policy state counter {key}", raw_counters[key])
            else:
                counters[key] = as_float(f"policy state counter {key}", raw_counters[key])
                if counters[key] < 0.0:
                    raise ValueError(f"policy state counter {key} must be >= 0")

        # Everything checked: commit.
        self.config = config
        self._w = w
        self._window = deque(window, maxlen=int(config.window))
        self._counters = counters
        self._thresholds = self._compute_thresholds()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> InterventionPolicy:
        """A new policy restored from ``state_dict`` output, saved config included."""
        if not isinstance(state, Mapping) or "config" not in state:
            raise ValueError("policy state must be a mapping with a 'config' entry")
        policy = cls(PolicyConfig.from_dict(state["config"]))
        policy.load_state_dict(state)
        return policy

    # ---------------------------------------------------------------- diagnostics

    def diagnostics(self) -> dict[str, float]:
        """Numbers for the training log.

        ``hinted_success_observed`` vs ``hinted_success_predicted`` are means over the window at the current
        w; ``calibration_gap`` is their difference (near 0 when the model fits). The unhinted pair compares
        level-0 outcomes with their previewed p over the policy's lifetime (calibration of the difficulty
        prior). Undefined means (no data yet) are NaN.
        """
        c = self._counters
        n = len(self._window)
        if n:
            observed = sum(1.0 for _, _, y in self._window if y) / n
            predicted = sum(_sigmoid(_logit(self._clamp(p)) + self._w * f) for p, f, _ in self._window) / n
        else:
            observed = predicted = math.nan
        n0 = c["n_unhinted"]
        return {
            "w": self._w,
            "n_window": float(n),
            "n_hinted_total": float(c["n_hinted"]),
            "n_unhinted_total": float(n0),
            "n_updates": float(c["n_updates"]),
            "hinted_success_observed": observed,
            "hinted_success_predicted": predicted,
            "calibration_gap": observed - predicted,
            "unhinted_success_observed": c["n_unhinted_success"] / n0 if n0 else math.nan,
            "unhinted_success_predicted": c["unhinted_p_sum"] / n0 if n0 else math.nan,
        }

    # ---------------------------------------------------------------- internals

    def _clamp(self, p: float) -> float:
        return min(max(p, self.config.min_p), self.config.max_p)

    def _check_level(self, level: object, what: str = "level") -> int:
        if isinstance(level, bool):
            raise ValueError(f"{what} must be an integer, got {level!r}")
        try:
            out = operator.index(level)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"{what} must be an integer, got {level!r}") from None
        if not 0 <= out < self.num_levels:
            raise ValueError(f"{what} must lie in [0, {self.num_levels - 1}], got {out}")
        return out

    def _compute_thresholds(self) -> tuple[float, ...]:
        tau = self.config.target_rate
        z_tau = _logit(tau)
        return (tau,) + tuple(_sigmoid(z_tau - self._w * f) for f in self.config.fractions[1:])

    def _base_level(self, p: float) -> int:
        if p >= self.config.target_rate:
            return 0
        q = self._clamp(p)
        for level in range(1, self.num_levels):
            if q >= self._thresholds[level]:
                return level
        return self.num_levels - 1


_INT_COUNTERS = ("n_updates", "n_refits", "n_hinted", "n_hinted_success", "n_unhinted", "n_unhinted_success")


def _zero_counters() -> dict[str, float]:
    counters: dict[str, float] = {k: 0 for k in _INT_COUNTERS}
    counters["unhinted_p_sum"] = 0.0
    return counters


def _map_slope(
    data: list[tuple[float, float, float]], mu: float, sigma: float, lo: float, hi: float, w0: float
) -> float:
    """MAP slope of ``y ~ Bernoulli(sigmoid(a + w f))`` under ``w ~ N(mu, sigma^2)``, restricted to [lo, hi].

    ``data`` holds (a, f, y) with a = logit(p). Safeguarded Newton on the strictly decreasing derivative:
    a Newton step that leaves the current bracket is replaced by bisection, so it always converges.
    """
    precision = 1.0 / (sigma * sigma)

    def grad_curv(w: float) -> tuple[float, float]:
        g = -(w - mu) * precision
        h = precision
        for a, f, y in data:
            s = _sigmoid(a + w * f)
            g += f * (y - s)
            h += f * f * s * (1.0 - s)
        return g, h

    g_lo, _ = grad_curv(lo)
    if g_lo <= 0.0:
        return lo
    g_hi, _ = grad_curv(hi)
    if g_hi >= 0.0:
        return hi
    left, right = lo, hi
    w = min(max(w0, lo), hi)
    for _ in range(200):
        g, h = grad_curv(w)
        if g == 0.0:
            return w
        if g > 0.0:
            left = w
        else:
            right = w
        step = w + g / h
        if not left < step < right:
            step = 0.5 * (left + right)
        if abs(step - w) <= 1e-12 * (1.0 + abs(w)) or right - left <= 1e-12 * (1.0 + abs(w)):
            return step
        w = step
    return w
