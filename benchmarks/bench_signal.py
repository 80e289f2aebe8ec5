"""Benchmark (simulated): training signal per rollout of plain GRPO, DAPO dynamic sampling and EPRLI.

No model and no GPU: each problem has a true unassisted success rate p, each rollout is a Bernoulli draw, and a
hinted rollout succeeds with P(success | p, f) = sigmoid(logit(p) + w_true * f), f the revealed share of the
reference solution. Everything else is the project's real code: the EPRLI regime decides every non-preview
session with ``verl_pdai.core.injection.decide`` (a ``PreviewSnapshot``, the prior from a real
``DifficultyStore``, a real ``InterventionPolicy``, ``HintSet``s built by ``build_hints``), updates the store and
refits the policy after each step the way ``verl_pdai.plugin.trainer`` does, and all three regimes compute their
advantages with ``compute_epgrpo_advantage`` (whole-group baseline; without hints it equals verl's
``grpo``). A rollout "carries signal" when one of its model-written tokens gets a non-zero advantage; a group
is "informative" when one of its rollouts does.

All assumptions are in ``docs/benchmarks.md`` ("Signal efficiency") and ``--help``. Seeded; seconds on 2 cores::

    python benchmarks/bench_signal.py [--markdown] [--quick]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from verl_pdai.core.advantage import compute_epgrpo_advantage
from verl_pdai.core.hints import HintSet, build_hints
from verl_pdai.core.injection import InjectionConfig, decide
from verl_pdai.core.policy import InterventionPolicy, PolicyConfig
from verl_pdai.core.preview import PreviewSnapshot, preview_size_for
from verl_pdai.core.store import DifficultyStore, StoreConfig

BUCKETS = ("hard", "mid", "easy")  # never solved (p = 0), intermediate (Beta), always solved (p = 1)
BUCKET_COLUMNS = ("groups", "informative", "rollouts", "signal", "hinted", "hinted_success", "level_sum")

# A reference solution of exactly 8 steps (7 + the boxed answer), so hint levels 0.25/0.5/0.75 reveal exactly
# 2/4/6 steps: the revealed share equals the level's nominal fraction. The answer never appears in the steps.
REFERENCE = (
    "\n\n".join(f"Step {i}: from the previous quantity we derive the next intermediate value q_{i}." for i in range(7))
    + "\n\nHence the result is $\\boxed{42}$."
)


@dataclass(frozen=True)
class Settings:
    """Simulation settings (see ``--help`` and docs/benchmarks.md for why each default)."""

    problems: int = 1024  # dataset size; 128 prompts per step -> 8 steps per epoch
    prompts: int = 128  # prompts (groups) per training step
    n: int = 8  # rollouts per prompt
    steps: int = 40  # training steps (5 epochs at the defaults)
    mix: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)  # shares of hard (p=0), mid, easy (p=1) problems
    mid_beta: tuple[float, float] = (2.0, 2.0)  # p of the mid problems ~ Beta(a, b)
    p_clamp: float = 0.005  # true p lies in [p_clamp, 1 - p_clamp]: "never solved" = 0.005 unassisted
    w_true: float = 4.0  # true hint effect in log-odds per unit of revealed solution
    hint_share: float = 0.8  # share of problems with a usable reference solution
    preview: int = 2  # k, preview sessions per group
    finish_success: float = 0.15  # P(a successful preview has finished when the others reach their injection point)
    finish_failure: float = 0.03  # same for a failing preview (failures run long, often to the length limit)
    dapo_max_batches: int = 10  # DAPO's max_num_gen_batches: generation rounds per step at most
    store_prior: tuple[float, float] = (1.0, 1.0)  # StoreConfig.default_prior (the project's default)
    w_prior_std: float = 1.0  # PolicyConfig.w_prior_std (the project's default); tiny = w held at w_init
    seed: int = 0


# ----------------------------------------------------------------------------------------------- the world


@dataclass
class World:
    """The problems: true unassisted success rate, difficulty bucket, hints (usable for ``hint_share`` of them)."""

    p: np.ndarray
    bucket: np.ndarray  # index into BUCKETS
    hints: list[HintSet]


def make_world(s: Settings) -> World:
    rng = np.random.default_rng(s.seed)
    bucket = rng.choice(3, size=s.problems, p=np.asarray([s.mix[0], s.mix[1], s.mix[2]]) / sum(s.mix))
    p = np.where(bucket == 0, 0.0, np.where(bucket == 2, 1.0, rng.beta(*s.mid_beta, size=s.problems)))
    p = np.clip(p, s.p_clamp, 1.0 - s.p_clamp)
    usable, unusable = build_hints(REFERENCE, "42"), build_hints(None, "42")
    assert usable.usable and [h.steps_revealed for h in usable.hints] == [0, 2, 4, 6], usable
    has_hint = rng.random(s.problems) < s.hint_share
    return World(p=p, bucket=bucket, hints=[usable if ok else unusable for ok in has_hint])


class PromptStream:
    """Prompts in epochs: each epoch is a fresh shuffle of the dataset (as a shuffling data loader)."""

    def __init__(self, size: int, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._size = size
        self._order = np.empty(0, dtype=np.int64)

    def take(self, count: int) -> np.ndarray:
        while len(self._order) < count:
            self._order = np.concatenate([self._order, self._rng.permutation(self._size)])
        out, self._order = self._order[:count], self._order[count:]
        return out


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def hinted_rate(p: float, f: float, w_true: float) -> float:
    """True success model of a session that sees a share f of the reference solution."""
    return p if f == 0.0 else _sigmoid(math.log(p) - math.log1p(-p) + w_true * f)


# ----------------------------------------------------------------------------------------------- signal


@dataclass
class StepStats:
    """What one training step spent and what its trained batch carries."""

    spent: int = 0  # rollouts generated
    trained: int = 0  # rollouts in the trained batch
    groups: int = 0
    informative: int = 0  # groups with a non-zero advantage somewhere
    signal: int = 0  # trained rollouts with a non-zero advantage on a model-written token
    signal_unhinted: int = 0
    hinted: int = 0
    hinted_success: int = 0
    unhinted: int = 0
    unhinted_success: int = 0
    cap_hit: int = 0  # DAPO only: the step ran out of generation rounds
    # per difficulty bucket: the BUCKET_COLUMNS counts
    by_bucket: np.ndarray = field(default_factory=lambda: np.zeros((3, len(BUCKET_COLUMNS)), dtype=np.int64))


def signal_of(scores: np.ndarray, group: np.ndarray, levels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(row carries signal [B], group informative [G]) from the real ``epgrpo`` advantage.

    Each response is 3 tokens: [before the injection point, hint, after it]. An unhinted row owns all three; a
    hinted row's hint token is masked (response_mask 0) and its pre-hint token gets the outcome part scaled by
    ``pre_hint_weight`` (0, the default). Without hints this is verl's ``grpo``.
    """
    bsz = len(scores)
    mask = torch.ones((bsz, 3), dtype=torch.int64)
    kwargs: dict = {}
    if levels is not None:
        hinted = torch.from_numpy(levels > 0)
        mask[hinted, 1] = 0
        kwargs = {
            "hint_level": torch.from_numpy(levels.astype(np.int64)),
            "hint_start": torch.where(hinted, 1, -1),
        }
    adv, _ = compute_epgrpo_advantage(
        torch.from_numpy(scores.astype(np.float32)), mask, torch.from_numpy(group), **kwargs
    )
    row = ((adv.abs() > 1e-6) & (mask != 0)).any(dim=1).numpy()
    informative = np.zeros(int(group.max()) + 1, dtype=bool)
    np.logical_or.at(informative, group, row)
    return row, informative


def account(st: StepStats, world: World, pids: np.ndarray, scores: np.ndarray, levels: np.ndarray | None) -> None:
    """Add a trained batch (groups of n consecutive rows, group g = problem pids[g]) to the step's stats."""
    n = len(scores) // len(pids)
    group = np.repeat(np.arange(len(pids)), n)
    row, informative = signal_of(scores, group, levels)
    lv = np.zeros(len(scores), dtype=np.int64) if levels is None else levels
    st.trained += len(scores)
    st.groups += len(pids)
    st.informative += int(informative.sum())
    st.signal += int(row.sum())
    st.signal_unhinted += int((row & (lv == 0)).sum())
    st.hinted += int((lv > 0).sum())
    st.hinted_success += int(scores[lv > 0].sum())
    st.unhinted += int((lv == 0).sum())
    st.unhinted_success += int(scores[lv == 0].sum())
    per_group = np.stack(
        [
            np.ones(len(pids), dtype=np.int64),
            informative.astype(np.int64),
            np.full(len(pids), n, dtype=np.int64),
            row.reshape(-1, n).sum(axis=1),
            (lv > 0).reshape(-1, n).sum(axis=1),
            (scores * (lv > 0)).reshape(-1, n).sum(axis=1).astype(np.int64),
            lv.reshape(-1, n).sum(axis=1),
        ],
        axis=1,
    )
    np.add.at(st.by_bucket, world.bucket[pids], per_group)


# ----------------------------------------------------------------------------------------------- regimes


def run_grpo(s: Settings, world: World) -> list[StepStats]:
    """Plain GRPO: n unassisted samples for each of the step's prompts."""
    stream, rng = PromptStream(s.problems, s.seed + 1), np.random.default_rng(s.seed + 2)
    out = []
    for _ in range(s.steps):
        pids = stream.take(s.prompts)
        scores = (rng.random((s.prompts, s.n)) < world.p[pids, None]).astype(np.float64).reshape(-1)
        st = StepStats(spent=len(scores))
        account(st, world, pids, scores, None)
        out.append(st)
    return out


def run_dapo(s: Settings, world: World) -> list[StepStats]:
    """DAPO dynamic sampling (verl's DAPO recipe): generate rounds of ``prompts`` fresh prompts x n, keep the
    groups whose outcomes differ, until ``prompts`` groups are kept (the surplus is dropped, as verl truncates)
    or ``dapo_max_batches`` rounds were spent (verl raises there; here the step trains on what it kept)."""
    stream, rng = PromptStream(s.problems, s.seed + 1), np.random.default_rng(s.seed + 2)
    out = []
    for _ in range(s.steps):
        st = StepStats()
        kept_pids: list[np.ndarray] = []
        kept_scores: list[np.ndarray] = []
        kept = 0
        for _round in range(s.dapo_max_batches):
            pids = stream.take(s.prompts)
            scores = (rng.random((s.prompts, s.n)) < world.p[pids, None]).astype(np.float64)
            st.spent += scores.size
            mixed = scores.std(axis=1) > 0  # DAPO's filter: the group's outcome std is non-zero
            kept_pids.append(pids[mixed])
            kept_scores.append(scores[mixed])
            kept += int(mixed.sum())
            if kept >= s.prompts:
                break
        else:
            st.cap_hit = 1
        pids = np.concatenate(kept_pids)[: s.prompts]
        scores = np.concatenate(kept_scores)[: s.prompts].reshape(-1)
        if len(pids):
            account(st, world, pids, scores, None)
        out.append(st)
    return out


@dataclass
class EprliRun:
    steps: list[StepStats]
    policy: InterventionPolicy
    store: DifficultyStore


def run_eprli(s: Settings, world: World) -> EprliRun:
    """EPRLI with the project's store, policy and decision code (defaults of StoreConfig/PolicyConfig/InjectionConfig).

    Per group: sessions 0..k-1 run unassisted (the preview); every other session decides at its injection point
    from the store's prior and a PreviewSnapshot: each preview has finished by then with probability
    ``finish_success`` or ``finish_failure`` (one snapshot per group: all sessions start together and reach their
    injection point at about the same token count). After the step, as the trainer: the store is updated from
    every unassisted rollout (previews and level-0 sessions), the policy from every decided session's
    (p, level, success).
    """
    stream, rng = PromptStream(s.problems, s.seed + 1), np.random.default_rng(s.seed + 3)
    store = DifficultyStore(StoreConfig(default_prior=s.store_prior))
    policy = InterventionPolicy(PolicyConfig(w_prior_std=s.w_prior_std))
    config = InjectionConfig(preview_size=s.preview, seed=s.seed)
    decide_rng = random.Random(s.seed)
    k = preview_size_for(s.n, s.preview)
    out = []
    for step in range(s.steps):
        pids = stream.take(s.prompts)
        scores = np.zeros((s.prompts, s.n))
        levels = np.zeros((s.prompts, s.n), dtype=np.int64)
        records, observations = [], []
        for g, pid in enumerate(pids):
            p, hints = float(world.p[pid]), world.hints[pid]
            prior = store.prior_for(str(pid))
            preview = rng.random(k) < p
            done = rng.random(k) < np.where(preview, s.finish_success, s.finish_failure)
            snapshot = PreviewSnapshot(k, int(done.sum()), int((preview & done).sum()), 0)
            scores[g, :k] = preview
            for j in range(k, s.n):
                d = decide(prior, snapshot, policy, hints, config, decide_rng)
                hint = hints.for_level(d.level)
                f = hint.steps_revealed / hint.total_steps if d.level else 0.0
                ok = bool(rng.random() < hinted_rate(p, f, s.w_true))
                scores[g, j], levels[g, j] = ok, d.level
                observations.append((d.difficulty, d.level, ok))
            unassisted = levels[g] == 0
            records.append((str(pid), int(scores[g, unassisted].sum()), int(unassisted.sum())))
        st = StepStats(spent=scores.size)
        account(st, world, pids, scores.reshape(-1), levels.reshape(-1))
        store.update_many(records, step=step + 1)
        policy.update(observations)
        out.append(st)
    return EprliRun(out, policy, store)


# ----------------------------------------------------------------------------------------------- report


def total(steps: Sequence[StepStats]) -> StepStats:
    t = StepStats()
    for st in steps:
        for name in ("spent", "trained", "groups", "informative", "signal", "signal_unhinted", "hinted"):
            setattr(t, name, getattr(t, name) + getattr(st, name))
        for name in ("hinted_success", "unhinted", "unhinted_success", "cap_hit"):
            setattr(t, name, getattr(t, name) + getattr(st, name))
        t.by_bucket += st.by_bucket
    return t


def pct(a: float, b: float) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "-"


def main_row(name: str, steps: Sequence[StepStats]) -> list[str]:
    t, n = total(steps), max(len(steps), 1)
    return [
        name,
        f"{t.spent / n:.0f}",
        f"{t.trained / n:.0f}",
        pct(t.informative, t.groups),
        pct(t.signal, t.trained),
        f"{t.signal / n:.0f}",
        f"{t.signal_unhinted / n:.0f}",
        f"{t.signal / t.spent:.3f}" if t.spent else "-",
        pct(t.hinted, t.trained),
        pct(t.hinted_success, t.hinted),
        pct(t.unhinted_success, t.unhinted),
        str(t.cap_hit),
    ]


MAIN_HEADER = [
    "regime",
    "rollouts spent/step",
    "trained/step",
    "informative groups",
    "rollouts w/ signal",
    "signal rollouts/step",
    "of which unhinted",
    "signal per rollout spent",
    "hinted rollouts",
    "hinted success",
    "unhinted success",
    "cap hits",
]


def bucket_row(name: str, steps: Sequence[StepStats]) -> list[str]:
    """Informative groups / rollouts with signal, per bucket and overall."""
    b = total(steps).by_bucket
    cells = [f"{pct(b[i, 1], b[i, 0])} / {pct(b[i, 3], b[i, 2])}" for i in range(3)]
    return [name] + cells + [f"{pct(b[:, 1].sum(), b[:, 0].sum())} / {pct(b[:, 3].sum(), b[:, 2].sum())}"]


def hint_row(bucket: int, steps: Sequence[StepStats]) -> list[str]:
    """EPRLI per bucket: hinted share of the rollouts, mean level of the hinted ones, their success."""
    b = total(steps).by_bucket[bucket]
    mean_level = f"{b[6] / b[4]:.2f}" if b[4] else "-"
    return [BUCKETS[bucket], pct(b[4], b[2]), mean_level, pct(b[5], b[4])]


def store_row(run: EprliRun, world: World) -> list[str]:
    """Mean store estimate per bucket at the end vs the true p, and the fitted w."""
    means = np.asarray([run.store.mean(str(i)) for i in range(len(world.p))])
    cells = [f"{means[world.bucket == i].mean():.3f} (true {world.p[world.bucket == i].mean():.3f})" for i in range(3)]
    return cells + [f"{np.abs(means - world.p).mean():.3f}", f"{run.policy.w:.2f}"]


def table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [header, *rows])


def parse_args() -> tuple[Settings, argparse.Namespace]:
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", type=int, default=d.problems, help="dataset size")
    ap.add_argument("--prompts", type=int, default=d.prompts, help="prompts (groups) per step")
    ap.add_argument("--n", type=int, default=d.n, help="rollouts per prompt")
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--mix", type=float, nargs=3, default=list(d.mix), metavar=("HARD", "MID", "EASY"))
    ap.add_argument("--mid-beta", type=float, nargs=2, default=list(d.mid_beta), metavar=("A", "B"))
    ap.add_argument("--p-clamp", type=float, default=d.p_clamp)
    ap.add_argument("--w-true", type=float, default=d.w_true)
    ap.add_argument("--hint-share", type=float, default=d.hint_share)
    ap.add_argument("--preview", type=int, default=d.preview, help="k")
    ap.add_argument("--finish-success", type=float, default=d.finish_success)
    ap.add_argument("--finish-failure", type=float, default=d.finish_failure)
    ap.add_argument("--dapo-max-batches", type=int, default=d.dapo_max_batches)
    ap.add_argument("--store-prior", type=float, nargs=2, default=list(d.store_prior), metavar=("ALPHA", "BETA"))
    ap.add_argument("--w-prior-std", type=float, default=d.w_prior_std)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--quick", action="store_true", help="256 problems, 12 steps (overrides both), no sensitivity")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    s = Settings(
        problems=a.problems,
        prompts=a.prompts,
        n=a.n,
        steps=a.steps,
        mix=tuple(a.mix),
        mid_beta=tuple(a.mid_beta),
        p_clamp=a.p_clamp,
        w_true=a.w_true,
        hint_share=a.hint_share,
        preview=a.preview,
        finish_success=a.finish_success,
        finish_failure=a.finish_failure,
        dapo_max_batches=a.dapo_max_batches,
        store_prior=tuple(a.store_prior),
        w_prior_std=a.w_prior_std,
        seed=a.seed,
    )
    if a.quick:
        s = replace(s, problems=256, steps=12)
    problems = []
    if not 0 < s.p_clamp < 0.5:
        problems.append("--p-clamp must lie in (0, 0.5)")
    if not 1 <= s.preview < s.n:
        problems.append("--preview must satisfy 1 <= k < n")
    if min(s.problems, s.prompts, s.steps, s.dapo_max_batches) < 1 or s.n < 2:
        problems.append("--problems, --prompts, --steps, --dapo-max-batches must be >= 1 and --n >= 2")
    if min(s.mix) < 0 or sum(s.mix) <= 0 or min(s.mid_beta) <= 0 or min(s.store_prior) <= 0:
        problems.append("--mix must be >= 0 with a positive sum; --mid-beta and --store-prior must be > 0")
    if not all(0 <= x <= 1 for x in (s.hint_share, s.finish_success, s.finish_failure)):
        problems.append("--hint-share, --finish-success, --finish-failure are probabilities in [0, 1]")
    if s.w_true < 0 or s.w_prior_std <= 0:
        problems.append("--w-true must be >= 0 and --w-prior-std > 0")
    if problems:
        ap.error("; ".join(problems))
    return s, a


def main() -> None:
    s, args = parse_args()
    t0 = time.perf_counter()
    world = make_world(s)
    epoch = -(-s.problems // s.prompts)  # steps in the first epoch: the store has seen no problem twice yet
    grpo, dapo, eprli = run_grpo(s, world), run_dapo(s, world), run_eprli(s, world)
    warm = slice(epoch, None) if s.steps > epoch else slice(0, None)
    md = args.markdown

    print(f"settings: {s}")
    print(f"first epoch = steps 1..{epoch}; 'warm' = steps {warm.start + 1}..{s.steps}\n")
    rows = [
        main_row("plain GRPO", grpo),
        main_row(f"DAPO dynamic sampling (cap {s.dapo_max_batches} rounds)", dapo),
        main_row("EPRLI, all steps", eprli.steps),
        main_row("EPRLI, first epoch (cold store)", eprli.steps[:epoch]),
        main_row("EPRLI, later epochs (warm store)", eprli.steps[warm]),
    ]
    print(table(MAIN_HEADER, rows, md) + "\n")
    base, warm_eprli, all_dapo = total(grpo), total(eprli.steps[warm]), total(dapo)
    print(
        f"signal per rollout spent vs plain GRPO: EPRLI (warm store) "
        f"{(warm_eprli.signal / warm_eprli.spent) / (base.signal / base.spent):.2f}x, "
        f"DAPO {(all_dapo.signal / all_dapo.spent) / (base.signal / base.spent):.2f}x\n"
    )

    print("Informative groups / rollouts with signal, by difficulty bucket:\n")
    rows = [
        bucket_row("plain GRPO", grpo),
        bucket_row("DAPO (trained batch)", dapo),
        bucket_row("EPRLI, first epoch", eprli.steps[:epoch]),
        bucket_row("EPRLI, warm", eprli.steps[warm]),
    ]
    print(table(["regime", "hard (p=0)", "mid", "easy (p=1)", "all"], rows, md) + "\n")

    print("EPRLI hints by difficulty bucket (warm steps; share of all the bucket's rollouts):\n")
    rows = [hint_row(i, eprli.steps[warm]) for i in range(3)]
    print(table(["bucket", "hinted rollouts", "mean hint level", "hinted success"], rows, md) + "\n")

    print("EPRLI store and policy at the end:\n")
    header = ["store mean, hard", "store mean, mid", "store mean, easy", "store MAE vs true p", "policy w"]
    print(table(header, [store_row(eprli, world)], md) + "\n")

    if not args.quick:
        variants = [
            ("w_true 2 (hints help less)", replace(s, w_true=2.0)),
            ("w_true 8 (hints help more)", replace(s, w_true=8.0)),
            ("no preview finished (prior only)", replace(s, finish_success=0.0, finish_failure=0.0)),
            ("every preview finished (blocking)", replace(s, finish_success=1.0, finish_failure=1.0)),
            ("hint share 50%", replace(s, hint_share=0.5)),
            ("hint share 100%", replace(s, hint_share=1.0)),
            ("k = 1", replace(s, preview=1)),
            ("k = 4", replace(s, preview=4)),
            ("store prior Beta(1, 3)", replace(s, store_prior=(1.0, 3.0))),
            ("w held at 4 (w_prior_std 1e-3)", replace(s, w_prior_std=1e-3)),
            ("w_true 2, w held at 4", replace(s, w_true=2.0, w_prior_std=1e-3)),
        ]
        rows = [["default (as above)"] + _sens(eprli, world, warm)]
        for name, v in variants:
            vw = make_world(v)
            rows.append([name] + _sens(run_eprli(v, vw), vw, warm))
        header = ["EPRLI variant (warm steps)", "informative groups", "rollouts w/ signal", "hinted rollouts"]
        header += ["hinted success", "unhinted success", "hard informative", "mid informative", "policy w"]
        print("EPRLI sensitivity (GRPO on the same world is unaffected by these settings):\n")
        print(table(header, rows, md) + "\n")
    print(f"wall time {time.perf_counter() - t0:.1f} s")


def _sens(run: EprliRun, world: World, warm: slice) -> list[str]:
    t = total(run.steps[warm])
    return [
        pct(t.informative, t.groups),
        pct(t.signal, t.trained),
        pct(t.hinted, t.trained),
        pct(t.hinted_success, t.hinted),
        pct(t.unhinted_success, t.unhinted),
        pct(t.by_bucket[0, 1], t.by_bucket[0, 0]),
        pct(t.by_bucket[1, 1], t.by_bucket[1, 0]),
        f"{run.policy.w:.2f}",
    ]


if __name__ == "__main__":
    main()
