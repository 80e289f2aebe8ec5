"""High-level intervention policy: how much of the reference solution to reveal, from the previewed difficulty.

Model. A problem whose previewed unassisted success rate is p gets hint level h, which reveals a fraction f_h
of the reference steps (f_0 = 0: no hint). The chance that a session at level h succeeds is modelled as

    P(success | p, f) = sigmoid(b0 + b1 * logit(p) + w * f)

with one shared hint effect w >= 0 ("how much a whole reference solution is worth, in log-odds") and a
logistic recalibration (intercept b0, slope b1 > 0) of the previewed difficulty. p is clamped to
[min_p, max_p] before the logit so one extreme estimate cannot dominate. The policy picks the smallest level
whose predicted success reaches the target rate tau; easy problems (p >= tau) get no hint, and when no level
reaches tau the highest level is used. Since b1 > 0 and w >= 0, the chosen level never decreases as p decreases.

Why b0 and b1. p is not the true rate q but a posterior mean shrunk towards its prior (a Beta(1, 1) prior and
two finished previews give p in {1/4, 1/2, 3/4} whatever q is; a hard pool puts q near 0 behind p = 1/4). With
b0 = 0, b1 = 1 (the plain ``logit(p) + w f``) the fit must absorb that shrinkage into w alone, which makes it
wrong for every level at once (simulated in docs/algorithm.md section 3: w 15-60% below the true effect,
observed success 0.07-0.26 above the predicted one at the lower levels; the recalibration roughly halves that).
b0 and b1 are the standard logistic calibration of a probability estimate (intercept: the pool is harder or
easier than the prior says; slope > 1: logit(p) is compressed), learnt from the same hinted outcomes as w. With
b0 = 0 and b1 = 1 held (``intercept_prior_std`` = ``slope_prior_std`` = 0) the model is the plain one.

Difficulty. p is the preview posterior mean (see ``previewed_success_rate``):

    p = (alpha + c) / (alpha + beta + k_done + rho * k_running)

where c of the k_done finished preview sessions succeeded and each of the k_running still-running ones
counts as rho of a failure (failing attempts run long).

Fitting. theta = (b0, b1, w) is refitted online from the hinted outcomes (p_i, f_i, y_i) in a window of the
most recent ones (level-0 outcomes stay out: the model only ever decides between hint levels). It is the MAP
estimate under independent Gaussian priors b0 ~ N(0, s0^2), b1 ~ N(1, s1^2), w ~ N(mu, sigma^2), restricted
to a box (the bounds of each):

    L(theta) = sum_i [y_i log s_i + (1 - y_i) log(1 - s_i)] - b0^2 / (2 s0^2) - (b1 - 1)^2 / (2 s1^2)
               - (w - mu)^2 / (2 sigma^2),         s_i = sigmoid(b0 + b1 a_i + w f_i),  a_i = logit(clamp(p_i))
    dL/dtheta_j = sum_i x_ij (y_i - s_i) - (theta_j - m_j) / sd_j^2,      x_i = (1, a_i, f_i)

L is strictly concave (its Hessian is -X'SX minus the prior precisions), so the box holds exactly one maximizer;
it is found by projected Newton steps on the parameters not held at a bound, each accepted only when it raises L
(halved until it does; a projected gradient step when even a tiny Newton step fails). The priors keep every
parameter finite and near its prior mean for few, all-success or all-failure observations (the unregularized
MLE would be +-inf there; SEELE's 3-point curve fit was its worst setting): at the optimum
(theta_j - m_j) / sd_j^2 = sum_i x_ij (y_i - s_i) for a parameter inside its bounds, so
|w - mu| <= sigma^2 * sum_i f_i, |b0| <= s0^2 * n and |b1 - 1| <= s1^2 * sum_i |a_i| whatever the outcomes.
Nothing here imports verl.
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

STATE_VERSION = 2  # 2 added the calibration (intercept, slope); version 1 states (w only) still load
_READABLE_VERSIONS = (1, 2)

# prior means of the calibration: p taken at face value (the plain model) until the outcomes say otherwise
INTERCEPT_PRIOR_MEAN = 0.0
SLOPE_PRIOR_MEAN = 1.0


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
    - ``intercept_prior_std`` 1.0, ``intercept_bounds`` (-4, 4): the calibration intercept b0 ~ N(0, 1). One
      standard deviation is a pool whose odds are e times those the preview says; +-4 lies well beyond any
      pool seen in simulation (|b0| < 1.3). 0 holds b0 at 0.
    - ``slope_prior_std`` 0.5, ``slope_bounds`` (0.25, 4): the calibration slope b1 ~ N(1, 0.25). A preview
      posterior shrunk by its prior needs b1 > 1 (simulated: 1.1 to 3 once fitted on thousands of outcomes);
      the tighter prior keeps b1 near 1 while few outcomes are in, since with few distinct p it trades off
      against b0. b1 >= 0.25 > 0 keeps the level choice monotone in p. 0 holds b1 at 1.
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
    intercept_prior_std: float = 1.0
    intercept_bounds: tuple[float, float] = (-4.0, 4.0)
    slope_prior_std: float = 0.5
    slope_bounds: tuple[float, float] = (0.25, 4.0)

    def __post_init__(self) -> None:
        # Accept lists (JSON, OmegaConf ListConfig) for the tuple fields, then fail early on anything invalid.
        if not isinstance(self.fractions, (str, bytes, Mapping)):
            try:
                object.__setattr__(self, "fractions", tuple(self.fractions))
            except TypeError:
                pass
        for name in ("w_bounds", "intercept_bounds", "slope_bounds"):
            value = getattr(self, name)
            if not isinstance(value, (str, bytes, Mapping)):
                try:
                    object.__setattr__(self, name, tuple(value))
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

        for name, mean, what in (
            ("intercept", INTERCEPT_PRIOR_MEAN, "the preview taken at face value"),
            ("slope", SLOPE_PRIOR_MEAN, "the preview taken at face value"),
        ):
            std = as_float(f"PolicyConfig.{name}_prior_std", getattr(self, f"{name}_prior_std"))
            if std < 0.0:
                raise ValueError(f"PolicyConfig.{name}_prior_std must be >= 0 (0 holds it at {mean}), got {std}")
            low, high = _as_pair(f"PolicyConfig.{name}_bounds", getattr(self, f"{name}_bounds"))
            if not low <= mean <= high or not low < high:
                raise ValueError(
                    f"PolicyConfig.{name}_bounds must satisfy low < high and contain the prior mean {mean} "
                    f"({what}), got ({low}, {high})"
                )
        if self.slope_bounds[0] <= 0.0:
            raise ValueError(
                f"PolicyConfig.slope_bounds low must be > 0 (a harder preview must never get a smaller hint), "
                f"got {self.slope_bounds[0]}"
            )

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
            "intercept_prior_std": float(self.intercept_prior_std),
            "intercept_bounds": [float(b) for b in self.intercept_bounds],
            "slope_prior_std": float(self.slope_prior_std),
            "slope_bounds": [float(b) for b in self.slope_bounds],
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
        self._intercept = INTERCEPT_PRIOR_MEAN
        self._slope = SLOPE_PRIOR_MEAN
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
    def intercept(self) -> float:
        """Calibration intercept b0 of the previewed difficulty (0: the preview taken at face value)."""
        return self._intercept

    @property
    def slope(self) -> float:
        """Calibration slope b1 on logit(p) (1: the preview taken at face value; > 1: p is shrunk)."""
        return self._slope

    def decision_params(self) -> dict[str, float]:
        """Everything a copy of this policy needs to choose levels as it does: ``{"w", "intercept", "slope"}``.

        The rollout side rebuilds a deciding policy from these with :meth:`for_decisions` (the window and the
        counters only matter for fitting, which stays with the trainer).
        """
        return {"w": self._w, "intercept": self._intercept, "slope": self._slope}

    @classmethod
    def for_decisions(cls, config: PolicyConfig, params: Mapping[str, object] | None = None) -> InterventionPolicy:
        """A fresh policy that decides with the fitted ``params`` (from :meth:`decision_params`).

        A missing or None entry keeps the fresh value (w_init, intercept 0, slope 1: what a trainer that sends
        only ``w`` implies); every value is clamped to ``config``'s bounds, and a held parameter (prior std 0)
        stays at its prior mean. A non-numeric value raises ValueError.
        """
        policy = cls(config)
        values = dict(params or {})
        unknown = sorted(str(k) for k in values if k not in ("w", "intercept", "slope"))
        if unknown:
            raise ValueError(f"unknown decision params {unknown} (expected w, intercept, slope)")
        cfg = policy.config
        if values.get("w") is not None:
            policy._w = _clip(as_float("decision param w", values["w"]), *cfg.w_bounds)
        if values.get("intercept") is not None and cfg.intercept_prior_std > 0.0:
            policy._intercept = _clip(as_float("decision param intercept", values["intercept"]), *cfg.intercept_bounds)
        if values.get("slope") is not None and cfg.slope_prior_std > 0.0:
            policy._slope = _clip(as_float("decision param slope", values["slope"]), *cfg.slope_bounds)
        policy._thresholds = policy._compute_thresholds()
        return policy

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    def fraction(self, level: int) -> float:
        """Fraction of the reference steps revealed at ``level``."""
        return float(self.config.fractions[self._check_level(level)])

    def predicted_success(self, p: float, level: int) -> float:
        """P(success | p, f_level) = sigmoid(b0 + b1 * logit(clamp(p)) + w * f_level)."""
        prob = _as_probability("p", p)
        f = self.fraction(level)
        return _sigmoid(self._linear(_logit(self._clamp(prob)), f))

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
        no information about w and stay out of the fit. Exactly one ``rng.random()`` draw is taken per call
        whenever exploration is on, so a seeded rng gives a reproducible stream regardless of p.
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
        """Record (p, level, success) outcomes and refit (b0, b1, w) on the window of hinted ones.

        The whole batch is validated before anything is recorded, so a malformed batch changes nothing.
        Level-0 outcomes only feed the diagnostics. When the batch holds no hinted outcome, nothing is refitted.
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
        # Outcomes sharing (p, f) enter as one binomial cell: same likelihood, and a window of repeated p (a
        # fixed prior, few previews) costs a handful of cells per Newton step instead of thousands.
        cells: dict[tuple[float, float], list[float]] = {}
        for p, f, y in self._window:
            cell = cells.setdefault((p, f), [0.0, 0.0])
            cell[0] += 1.0
            cell[1] += 1.0 if y else 0.0
        data = [(_logit(self._clamp(p)), f, n, s) for (p, f), (n, s) in cells.items()]
        fitted = _map_fit(
            data,
            means=(INTERCEPT_PRIOR_MEAN, SLOPE_PRIOR_MEAN, float(cfg.w_prior_mean)),
            stds=(float(cfg.intercept_prior_std), float(cfg.slope_prior_std), float(cfg.w_prior_std)),
            bounds=(cfg.intercept_bounds, cfg.slope_bounds, cfg.w_bounds),
            start=(self._intercept, self._slope, self._w),
        )
        self._intercept, self._slope, self._w = fitted
        self._counters["n_refits"] += 1
        self._thresholds = self._compute_thresholds()

    # ---------------------------------------------------------------- persistence

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable snapshot: config, w, intercept, slope, the window of hinted outcomes, counters."""
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "w": self._w,
            "intercept": self._intercept,
            "slope": self._slope,
            "window": [[p, f, y] for p, f, y in self._window],
            "counters": {k: (int(v) if k in _INT_COUNTERS else float(v)) for k, v in self._counters.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], keep_config: bool = False) -> None:
        """Restore a ``state_dict`` snapshot (exact round trip).

        By default the saved config is restored too. With ``keep_config=True`` this policy's config is kept
        (e.g. a resumed run with an edited recipe): w, intercept and slope are clamped to its bounds (a held
        one set to its prior mean) and the window trimmed to its size, the newest outcomes kept. A version 1
        state (w only, from before the calibration existed) loads with intercept 0 and slope 1, the model it
        was fitted under; the next update refits all three. Malformed state raises ValueError and leaves the
        policy unchanged.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"policy state must be a mapping, got {type(state).__name__}")
        missing = sorted({"version", "config", "w", "window", "counters"} - set(state))
        if missing:
            raise ValueError(f"policy state is missing keys {missing}")
        version = state["version"]
        if isinstance(version, bool) or version not in _READABLE_VERSIONS:
            raise ValueError(f"unsupported policy state version {version!r} (expected one of {_READABLE_VERSIONS})")
        if version >= 2:
            missing = sorted({"intercept", "slope"} - set(state))
            if missing:
                raise ValueError(f"policy state is missing keys {missing}")
        saved_config = PolicyConfig.from_dict(state["config"])
        config = self.config if keep_config else saved_config

        w = as_float("policy state w", state["w"])
        lo, hi = config.w_bounds
        if keep_config:
            w = min(max(w, lo), hi)
        elif not lo <= w <= hi:
            raise ValueError(f"policy state w ({w}) lies outside w_bounds ({lo}, {hi})")
        calibration: list[float] = []
        for name, mean in (("intercept", INTERCEPT_PRIOR_MEAN), ("slope", SLOPE_PRIOR_MEAN)):
            value = as_float(f"policy state {name}", state[name]) if version >= 2 else mean
            low, high = getattr(config, f"{name}_bounds")
            if keep_config:
                value = mean if getattr(config, f"{name}_prior_std") == 0.0 else _clip(value, low, high)
            elif not low <= value <= high:
                raise ValueError(f"policy state {name} ({value}) lies outside {name}_bounds ({low}, {high})")
            calibration.append(value)

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
        self._intercept, self._slope = calibration
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
            predicted = sum(_sigmoid(self._linear(_logit(self._clamp(p)), f)) for p, f, _ in self._window) / n
        else:
            observed = predicted = math.nan
        n0 = c["n_unhinted"]
        return {
            "w": self._w,
            "intercept": self._intercept,
            "slope": self._slope,
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

    def _linear(self, a: float, f: float) -> float:
        """The model's log-odds b0 + b1 * a + w * f for a = logit(clamp(p))."""
        return self._intercept + self._slope * a + self._w * f

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
        # b0 + b1 logit(p) + w f >= logit(tau)  <=>  logit(p) >= (logit(tau) - b0 - w f) / b1, as b1 > 0
        tau = self.config.target_rate
        z_tau = _logit(tau)
        b0, b1 = self._intercept, self._slope
        return (tau,) + tuple(_sigmoid((z_tau - b0 - self._w * f) / b1) for f in self.config.fractions[1:])

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


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _log_sigmoid(z: float) -> float:
    """log(sigmoid(z)) without overflow or cancellation for large |z|."""
    if z >= 0.0:
        return -math.log1p(math.exp(-z))
    return z - math.log1p(math.exp(z))


def _solve_spd(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve ``matrix @ x = rhs`` for a small symmetric positive definite matrix (Cholesky, no pivoting needed)."""
    n = len(rhs)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            acc = matrix[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            low[i][j] = math.sqrt(max(acc, 1e-300)) if i == j else acc / low[j][j]
    y = [0.0] * n
    for i in range(n):
        y[i] = (rhs[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def _map_fit(
    data: list[tuple[float, float, float, float]],
    means: tuple[float, float, float],
    stds: tuple[float, float, float],
    bounds: tuple[tuple[float, float], tuple[float, float], tuple[float, float]],
    start: tuple[float, float, float],
) -> tuple[float, float, float]:
    """MAP (b0, b1, w) of ``s ~ Binomial(n, sigmoid(b0 + b1 a + w f))`` under independent Gaussian priors, in a box.

    ``data`` holds binomial cells (a, f, n, s), a = logit(p). A parameter whose prior std is 0 is held at its
    prior mean. Projected Newton: each step solves the Newton system on the parameters that are not held at a
    bound by the gradient, is clipped to the box, and is halved until it raises the log posterior (Armijo); if
    even a tiny step fails, a projected gradient step is tried instead, and the fit stops when neither helps.
    The log posterior is strictly concave, so the maximizer is unique and this ends at it.
    """
    free = [std > 0.0 for std in stds]
    precision = [1.0 / (std * std) if std > 0.0 else 0.0 for std in stds]
    lows = [float(b[0]) for b in bounds]
    highs = [float(b[1]) for b in bounds]
    theta = [
        _clip(float(x), lo, hi) if ok else m for x, lo, hi, ok, m in zip(start, lows, highs, free, means, strict=True)
    ]

    def objective(t: list[float]) -> float:
        total = -0.5 * sum(pr * (x - m) ** 2 for x, m, pr in zip(t, means, precision, strict=True))
        for a, f, n, s in data:
            z = t[0] + t[1] * a + t[2] * f
            total += s * _log_sigmoid(z) + (n - s) * _log_sigmoid(-z)
        return total

    def grad_hess(t: list[float]) -> tuple[list[float], list[list[float]]]:
        g = [-pr * (x - m) for x, m, pr in zip(t, means, precision, strict=True)]
        h = [[0.0] * 3 for _ in range(3)]
        for j in range(3):
            h[j][j] = precision[j]  # of the negated Hessian, positive definite
        for a, f, n, s in data:
            sig = _sigmoid(t[0] + t[1] * a + t[2] * f)
            resid = s - n * sig
            weight = n * sig * (1.0 - sig)
            x = (1.0, a, f)
            for j in range(3):
                g[j] += x[j] * resid
                for k in range(j + 1):
                    h[j][k] += weight * x[j] * x[k]
        for j in range(3):
            for k in range(j + 1, 3):
                h[j][k] = h[k][j]
        return g, h

    scale = 1.0 + sum(n for _, _, n, _ in data)
    current = objective(theta)
    for _ in range(200):
        g, h = grad_hess(theta)
        # Free to move: not held, and not pressed against a bound by the gradient.
        active = [
            j
            for j in range(3)
            if free[j] and not (theta[j] <= lows[j] and g[j] <= 0.0) and not (theta[j] >= highs[j] and g[j] >= 0.0)
        ]
        if not active or max(abs(g[j]) for j in active) <= 1e-10 * scale:
            break
        newton = _solve_spd([[h[j][k] for k in active] for j in active], [g[j] for j in active])
        moved = False
        for direction in (newton, [g[j] for j in active]):
            step = 1.0
            while step > 1e-12:
                trial = list(theta)
                for j, d in zip(active, direction, strict=True):
                    trial[j] = _clip(theta[j] + step * d, lows[j], highs[j])
                value = objective(trial)
                if value >= current + 1e-4 * sum(g[j] * (trial[j] - theta[j]) for j in active) and trial != theta:
                    moved = True
                    break
                step *= 0.5
            if moved:
                break
        if not moved:
            break  # no representable step raises L: at the maximizer to float precision
        change = max(abs(trial[j] - theta[j]) / (1.0 + abs(theta[j])) for j in active)
        theta, current = trial, value
        if change <= 1e-12:
            break
    return theta[0], theta[1], theta[2]
