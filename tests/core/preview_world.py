"""A simulated training run in which the intervention policy sees the preview posterior, not the true rate.

Each problem has a true unassisted success rate q; a session that sees a share f of the reference solution succeeds
with probability sigmoid(logit(q) + w_true * f). Per training step, as the trainer and the ``pdai_hint`` agent loop
do it:

* every prompt gets its prior from a real ``DifficultyStore`` (decayed Beta posterior; or a fixed prior for a run
  whose prompts are all unseen);
* its k preview sessions run unassisted (outcomes drawn from q); each main session reaches its injection point
  with each preview finished or not (a successful preview finishes earlier than a failing one, which runs long)
  and computes p = (alpha + c) / (alpha + beta + k_done + rho * k_running) with ``previewed_success_rate`` and
  ``InjectionConfig``'s running weight, exactly as ``injection.decide``;
* the policy chooses the level from p, the outcome is drawn from the true model;
* after the step the store learns from the unassisted outcomes (previews and level-0 sessions) and the policy is
  updated with the main sessions' (p, level, success), as ``_pdai_learn`` does.

Pure Python, seeded: a run of 40 steps x 64 prompts takes a fraction of a second.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from verl_pdai.core.injection import InjectionConfig
from verl_pdai.core.policy import InterventionPolicy, PolicyConfig, previewed_success_rate
from verl_pdai.core.store import DifficultyStore, StoreConfig


def _hard_mix(rng: random.Random) -> float:
    # Many hard problems: 40% with q ~ Beta(1, 12) (mean 0.08, which a 75% hint at w = 4 lifts to about 0.5),
    # 40% in between, 20% easy.
    u = rng.random()
    if u < 0.4:
        return rng.betavariate(1.0, 12.0)
    if u < 0.8:
        return rng.betavariate(2.0, 2.0)
    return rng.betavariate(8.0, 1.0)


def _skewed(rng: random.Random) -> float:
    # A continuum piled up at 0: a fifth of the problems below q = 0.05, half below 0.25.
    return rng.betavariate(0.5, 1.0)


def _bench_signal(rng: random.Random) -> float:
    # benchmarks/bench_signal.py's world: a third never solved (q = 0.005, beyond any hint at w <= 6), a third
    # Beta(2, 2), a third always solved.
    u = rng.random()
    if u < 1.0 / 3.0:
        return 0.005
    if u < 2.0 / 3.0:
        return rng.betavariate(2.0, 2.0)
    return 0.995


RATES: dict[str, Callable[[random.Random], float]] = {
    "hard_mix": _hard_mix,
    "skewed": _skewed,
    "bench_signal": _bench_signal,
}


@dataclass(frozen=True)
class World:
    """One simulated run's settings."""

    rates: str = "hard_mix"  # key of RATES: how the true unassisted rates q are spread
    w_true: float = 4.0
    store_prior: tuple[float, float] = (1.0, 1.0)  # Beta prior of an unseen problem
    use_store: bool = True  # False: every prompt decides from store_prior (a first epoch that never ends)
    preview: tuple[int, int] = (2, 2)  # k drawn uniformly from this range per group
    group: tuple[int, ...] = (8,)  # n drawn from these per group
    finish: tuple[float, float] = (0.6, 0.3)  # P(a successful / failing preview has finished at the decision)
    problems: int = 256
    prompts: int = 64  # groups per step
    steps: int = 40
    warmup: int = 16  # steps not counted in the result (policy and store still learning)
    seed: int = 0


@dataclass
class Result:
    """What the hinted sessions after warm-up did, per level: (sessions, mean predicted success, successes)."""

    by_level: dict[int, list[float]] = field(default_factory=dict)
    policy: InterventionPolicy | None = None

    @property
    def hinted(self) -> int:
        return int(sum(v[0] for v in self.by_level.values()))

    @property
    def hinted_success(self) -> float:
        return sum(v[2] for v in self.by_level.values()) / self.hinted

    def level_gaps(self, min_sessions: int = 200) -> dict[int, float]:
        """Observed minus mean predicted success, for each level with at least ``min_sessions`` sessions."""
        return {level: (succ - pred) / n for level, (n, pred, succ) in self.by_level.items() if n >= min_sessions}

    def worst_gap(self, min_sessions: int = 200) -> float:
        return max(abs(gap) for gap in self.level_gaps(min_sessions).values())


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def simulate(world: World, config: PolicyConfig | None = None) -> Result:
    """Run ``world`` with a fresh policy of ``config``; see the module docstring."""
    rng = random.Random(world.seed)
    rates = RATES[world.rates]
    qs = [min(max(rates(rng), 0.002), 0.998) for _ in range(world.problems)]
    store = DifficultyStore(StoreConfig(default_prior=world.store_prior))
    policy = InterventionPolicy(config)
    rho = InjectionConfig().running_weight
    result = Result(policy=policy)
    order: list[int] = []
    for step in range(world.steps):
        observations: list[tuple[float, int, bool]] = []
        records: list[dict[str, object]] = []
        for _ in range(world.prompts):
            if not order:  # epochs: every problem once, in a fresh order
                order = list(range(world.problems))
                rng.shuffle(order)
            pid = order.pop()
            q = qs[pid]
            alpha, beta = store.prior_for(str(pid)) if world.use_store else world.store_prior
            k = rng.randint(*world.preview)
            n = rng.choice(world.group)
            previews = [rng.random() < q for _ in range(k)]
            unassisted_ok, unassisted = sum(previews), k
            for _ in range(k, n):
                done = [rng.random() < (world.finish[0] if ok else world.finish[1]) for ok in previews]
                k_done = sum(done)
                c = sum(ok for ok, d in zip(previews, done, strict=True) if d)
                p = previewed_success_rate(alpha, beta, k_done, c, running=k - k_done, running_weight=rho)
                level = policy.choose_level(p, rng)
                f = policy.fraction(level)
                success = rng.random() < _sigmoid(math.log(q) - math.log1p(-q) + world.w_true * f)
                observations.append((p, level, success))
                if level == 0:
                    unassisted_ok += success
                    unassisted += 1
                elif step >= world.warmup:
                    cell = result.by_level.setdefault(level, [0, 0.0, 0])
                    cell[0] += 1
                    cell[1] += policy.predicted_success(p, level)
                    cell[2] += success
            records.append({"problem_id": str(pid), "successes": unassisted_ok, "trials": unassisted})
        store.update_many(records, step=step + 1)
        policy.update(observations)
    return result
