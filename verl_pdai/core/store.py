"""Difficulty store: a decayed Beta posterior of the policy's unassisted success rate, per problem.

Model. Each problem id keeps Beta(alpha, beta) = Beta(prior_alpha + e_s, prior_beta + e_f), where the prior is
fixed when the problem is first updated and (e_s, e_f) >= 0 is the evidence: decayed pseudo-counts of observed
unassisted successes and failures. An update with s successes out of t trials does

    e_s <- decay * e_s + s,        e_f <- decay * e_f + (t - s)
    if e_s + e_f > max_evidence:   (e_s, e_f) <- (e_s, e_f) * max_evidence / (e_s + e_f)
    alpha = prior_alpha + e_s,     beta = prior_beta + e_f

i.e. alpha <- prior_alpha + decay * (alpha - prior_alpha) + s, and likewise for beta. Only the evidence decays:
old outcomes fade (the posterior follows the improving policy) while the prior stays a floor, so alpha and beta
never drop below it (never to 0, even with decay = 0). ``max_evidence`` caps the evidence part (not the prior):
scaling keeps its success share and bounds how sure the store can get, so fresh outcomes always move the mean
by a noticeable amount. Decay is applied per update of the problem (per visit), not per training step: a
problem seen once an epoch is decayed once an epoch, between which the policy changed the most.

Priors of unseen problems, most specific first (see ``DifficultyStore.prior_for``):

1. ``given_prior``: a prior the dataset row carried (a deliberate per-problem estimate, e.g. offline pass@k);
2. ``priors_by_level[level]`` (MATH levels; "Level 3", 3 and "3" all mean "3");
3. ``priors_by_source``: the exact data source name, else the longest configured name it starts with;
4. ``default_prior``.

Per-prompt state travels in the batch (data-loader workers do not see the trainer's objects), so the trainer
asks ``prior_for`` for each row and puts (alpha, beta) into the batch. Nothing here imports verl.
"""

from __future__ import annotations

import logging
import math
import operator
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from verl_pdai.core.config_values import as_count, as_float, require_known_keys
from verl_pdai.core.persistence import load_state, save_atomic

__all__ = ["DifficultyStore", "StoreConfig"]

logger = logging.getLogger(__name__)

STATE_VERSION = 1
# Posterior means below / above these count as "hard" / "easy" in ``stats``.
HARD_BELOW = 0.1
EASY_ABOVE = 0.9
# Relative slack when checking a loaded evidence total against max_evidence (scaling can overshoot by an ulp).
_CAP_SLACK = 1e-9

_RECORD_FIELDS = ("problem_id", "successes", "trials", "data_source", "level", "given_prior")


# ----------------------------------------------------------------------------------------------- helpers


def _as_prior(name: str, value: object) -> tuple[float, float]:
    """A Beta prior as (alpha, beta), from a pair or a mapping {"alpha": a, "beta": b}; both finite and > 0."""
    if isinstance(value, Mapping):
        keys = set(value)
        if keys != {"alpha", "beta"}:
            raise ValueError(f"{name} as a mapping must have exactly the keys 'alpha' and 'beta', got {sorted(keys)}")
        items: tuple[Any, ...] = (value["alpha"], value["beta"])
    elif isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a pair (alpha, beta), got {value!r}")
    else:
        try:
            items = tuple(value)  # type: ignore[call-overload]
        except TypeError:
            raise ValueError(f"{name} must be a pair (alpha, beta), got {value!r}") from None
        if len(items) != 2:
            raise ValueError(f"{name} must be a pair (alpha, beta), got {value!r}")
    a = as_float(f"{name} alpha", items[0])
    b = as_float(f"{name} beta", items[1])
    if a <= 0.0 or b <= 0.0:
        raise ValueError(f"{name} must have alpha > 0 and beta > 0, got ({a}, {b})")
    return a, b


def _as_problem_id(value: object, name: str = "problem_id") -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string (convert ids with str()), got {value!r}")
    return value


def _level_key(level: object) -> str | None:
    """Normalize a difficulty level for lookup: "Level 3", 3, 3.0 and "3" all give "3"; None/empty give None."""
    if level is None or isinstance(level, bool):
        return None
    if isinstance(level, str):
        text = level.strip()
        if text[:5].lower() == "level":
            text = text[5:].strip()
        return text or None
    try:
        return str(operator.index(level))  # type: ignore[arg-type]
    except TypeError:
        pass
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)


# ----------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class StoreConfig:
    """Settings of :class:`DifficultyStore`; validated on construction (frozen, so it stays valid).

    - ``decay`` 0.9: factor applied to a problem's evidence at each of its updates (1 = never forget, 0 = keep
      only the latest outcomes). The prior is never decayed.
    - ``default_prior`` (1, 1): uniform, for problems nothing more specific is known about.
    - ``priors_by_source``: data source name (or name prefix) -> prior, e.g. {"aime": (1, 4)}.
    - ``priors_by_level``: difficulty level -> prior, e.g. MATH {"1": (4, 1), ..., "5": (1, 4)}; keys are
      normalized like looked-up levels ("Level 5" and 5 become "5").
    - ``max_problems`` 1_000_000: problems kept; beyond it the least recently updated one is dropped (it
      restarts from its prior if seen again), which bounds memory and checkpoint size.
    - ``max_evidence`` 64: cap on the evidence part of alpha + beta, about four visits of a 16-sample group;
      once reached, a fresh group of 16 outcomes still carries a fifth of the weight.
    """

    decay: float = 0.9
    default_prior: tuple[float, float] = (1.0, 1.0)
    priors_by_source: dict[str, tuple[float, float]] = field(default_factory=dict)
    priors_by_level: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_problems: int = 1_000_000
    max_evidence: float = 64.0

    def __post_init__(self) -> None:
        # Normalize what JSON / OmegaConf hand us (lists, DictConfig) into tuples and plain dicts of tuples, so
        # the config compares and serializes the same however it was built; then fail early on anything invalid.
        object.__setattr__(self, "default_prior", _as_prior("StoreConfig.default_prior", self.default_prior))
        object.__setattr__(self, "priors_by_source", self._normalize_sources(self.priors_by_source))
        object.__setattr__(self, "priors_by_level", self._normalize_levels(self.priors_by_level))
        self.validate()

    @staticmethod
    def _normalize_sources(value: object) -> dict[str, tuple[float, float]]:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"StoreConfig.priors_by_source must be a mapping like {{'aime': (1, 4)}}, got {type(value).__name__}"
            )
        out: dict[str, tuple[float, float]] = {}
        for key, prior in value.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"StoreConfig.priors_by_source keys must be non-empty data source names, got {key!r}")
            out[key] = _as_prior(f"StoreConfig.priors_by_source[{key!r}]", prior)
        return out

    @staticmethod
    def _normalize_levels(value: object) -> dict[str, tuple[float, float]]:
        if not isinstance(value, Mapping):
            raise ValueError(
                f"StoreConfig.priors_by_level must be a mapping like {{'5': (1, 4)}}, got {type(value).__name__}"
            )
        out: dict[str, tuple[float, float]] = {}
        for raw_key, prior in value.items():
            key = _level_key(raw_key)
            if key is None:
                raise ValueError(f"StoreConfig.priors_by_level keys must be levels like '3', got {raw_key!r}")
            if key in out:
                raise ValueError(f"StoreConfig.priors_by_level has two keys for level {key!r} (e.g. 3 and '3')")
            out[key] = _as_prior(f"StoreConfig.priors_by_level[{raw_key!r}]", prior)
        return out

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting and what a valid one looks like."""
        decay = as_float("StoreConfig.decay", self.decay)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"StoreConfig.decay must lie in [0, 1] (1 = never forget), got {decay}")
        _as_prior("StoreConfig.default_prior", self.default_prior)
        for key, prior in self.priors_by_source.items():
            _as_prior(f"StoreConfig.priors_by_source[{key!r}]", prior)
        for key, prior in self.priors_by_level.items():
            _as_prior(f"StoreConfig.priors_by_level[{key!r}]", prior)
        max_problems = as_count("StoreConfig.max_problems", self.max_problems)
        if max_problems < 1:
            raise ValueError(f"StoreConfig.max_problems must be >= 1 (e.g. the dataset size), got {max_problems}")
        cap = as_float("StoreConfig.max_evidence", self.max_evidence)
        if cap <= 0.0:
            raise ValueError(f"StoreConfig.max_evidence must be > 0 (e.g. 64, a few groups of outcomes), got {cap}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists)."""
        return {
            "decay": float(self.decay),
            "default_prior": list(self.default_prior),
            "priors_by_source": {k: list(v) for k, v in self.priors_by_source.items()},
            "priors_by_level": {k: list(v) for k, v in self.priors_by_level.items()},
            "max_problems": int(self.max_problems),
            "max_evidence": float(self.max_evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoreConfig:
        """Build from a mapping (e.g. a recipe's config section); unknown keys are an error, missing keys default."""
        return cls(**require_known_keys(cls, data, "store config"))


# ----------------------------------------------------------------------------------------------- store


class _Entry:
    """One problem's posterior: its starting prior and the decayed evidence on top of it.

    The evidence is kept apart rather than as alpha - prior_alpha: next to a large prior, the subtraction would
    lose the evidence's low bits, so decay and the cap would drift and a saved state could fail its own checks.
    """

    __slots__ = ("prior_alpha", "prior_beta", "successes", "failures", "visits", "last_step")

    def __init__(
        self, prior_alpha: float, prior_beta: float, successes: float, failures: float, visits: int, last_step: int
    ) -> None:
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.successes = successes  # decayed pseudo-counts of observed unassisted successes
        self.failures = failures
        self.visits = visits
        self.last_step = last_step

    @property
    def alpha(self) -> float:
        return self.prior_alpha + self.successes

    @property
    def beta(self) -> float:
        return self.prior_beta + self.failures

    def to_list(self, problem_id: str) -> list[Any]:
        return [
            problem_id,
            self.prior_alpha,
            self.prior_beta,
            self.successes,
            self.failures,
            self.visits,
            self.last_step,
        ]


def _zero_counters() -> dict[str, int]:
    return {"n_updates": 0, "n_trials": 0, "n_successes": 0, "n_evicted": 0}


class DifficultyStore:
    """Per-problem Beta posteriors of the unassisted success rate (see the module docstring for the rules).

    Problems are kept in least-recently-updated order; reads (``prior_for``, ``mean``) neither create entries
    nor change that order. ``step`` is the trainer step of the latest update (stamped on each problem as
    ``last_step``). Not thread-safe: one instance lives in the trainer.
    """

    def __init__(self, config: StoreConfig | None = None) -> None:
        self.config = config if config is not None else StoreConfig()
        if not isinstance(self.config, StoreConfig):
            raise ValueError(f"config must be a StoreConfig, got {type(self.config).__name__}")
        self.config.validate()
        self._problems: OrderedDict[str, _Entry] = OrderedDict()
        self._step = 0
        self._counters = _zero_counters()
        self._index_sources()

    def _index_sources(self) -> None:
        # Longest name first, so the most specific configured prefix wins.
        self._source_prefixes = sorted(self.config.priors_by_source, key=lambda k: (-len(k), k))

    # ---------------------------------------------------------------- reads

    def __len__(self) -> int:
        return len(self._problems)

    def __contains__(self, problem_id: object) -> bool:
        return problem_id in self._problems

    @property
    def step(self) -> int:
        """Step of the latest update (0 before any)."""
        return self._step

    def initial_prior(
        self,
        data_source: str | None = None,
        level: object = None,
        given_prior: tuple[float, float] | Mapping[str, float] | None = None,
    ) -> tuple[float, float]:
        """The prior an unseen problem starts from: given_prior, else by level, else by data source, else default.

        Data sources match exactly first, else the longest configured name the source starts with
        ("aime" covers "aime24"); case-sensitive. A level or source with no configured prior falls through.
        """
        if given_prior is not None:
            return _as_prior("given_prior", given_prior)
        cfg = self.config
        key = _level_key(level)
        if key is not None and key in cfg.priors_by_level:
            return cfg.priors_by_level[key]
        if data_source is not None:
            if not isinstance(data_source, str):
                raise ValueError(f"data_source must be a string or None, got {data_source!r}")
            if data_source in cfg.priors_by_source:
                return cfg.priors_by_source[data_source]
            for prefix in self._source_prefixes:
                if data_source.startswith(prefix):
                    return cfg.priors_by_source[prefix]
        return cfg.default_prior

    def prior_for(
        self,
        problem_id: str,
        data_source: str | None = None,
        level: object = None,
        given_prior: tuple[float, float] | Mapping[str, float] | None = None,
    ) -> tuple[float, float]:
        """(alpha, beta) to inject into a prompt: the current posterior of a known problem, else its initial prior.

        The other arguments matter only for an unseen problem (see ``initial_prior``), but are validated always
        so that a malformed row is caught the first time it is seen.
        """
        pid = _as_problem_id(problem_id)
        prior = self.initial_prior(data_source, level, given_prior)
        entry = self._problems.get(pid)
        if entry is None:
            return prior
        return entry.alpha, entry.beta

    def mean(
        self,
        problem_id: str,
        data_source: str | None = None,
        level: object = None,
        given_prior: tuple[float, float] | Mapping[str, float] | None = None,
    ) -> float:
        """Posterior mean alpha / (alpha + beta) of ``prior_for`` with the same arguments."""
        a, b = self.prior_for(problem_id, data_source, level, given_prior)
        return a / (a + b)

    def visits(self, problem_id: str) -> int:
        """How many updates the problem has had since it was (last) added; 0 when unknown."""
        entry = self._problems.get(_as_problem_id(problem_id))
        return 0 if entry is None else entry.visits

    # ---------------------------------------------------------------- updates

    def update(
        self,
        problem_id: str,
        successes: int,
        trials: int,
        data_source: str | None = None,
        level: object = None,
        given_prior: tuple[float, float] | Mapping[str, float] | None = None,
        step: int | None = None,
    ) -> tuple[float, float]:
        """Record ``successes`` out of ``trials`` unassisted attempts; return the new (alpha, beta).

        ``trials == 0`` (every session hinted) is no observation: nothing changes, no decay. ``step`` defaults to
        one past the latest; a step older than the latest is stamped as the latest, so ``last_step`` never goes
        backwards.
        """
        pid, n_ok, n = self._check_record(problem_id, successes, trials, "")
        prior = self.initial_prior(data_source, level, given_prior)
        stamp = self._next_step(step)
        if n == 0:
            return self.prior_for(pid, given_prior=prior)
        self._step = stamp
        out = self._apply(pid, n_ok, n, prior, stamp)
        self._evict()
        return out

    def update_many(self, records: Iterable[Any], step: int | None = None) -> dict[str, tuple[float, float]]:
        """Apply one training step's outcomes; return {problem_id: new (alpha, beta)} for the problems updated.

        A record is a mapping with keys problem_id, successes, trials and optionally data_source, level,
        given_prior, or a tuple in that order (the first three required). Records of the same problem are summed
        into one update, so a problem is decayed once per batch however its outcomes were split. The whole batch
        is validated first: a malformed record changes nothing. All records share one step.
        """
        if isinstance(records, (str, bytes, Mapping)):
            raise ValueError("records must be an iterable of records (mappings or tuples), not a single record")
        merged: dict[str, list[Any]] = {}  # pid -> [successes, trials, prior]; dicts keep first-seen order
        for i, record in enumerate(records):
            pid, n_ok, n, prior = self._parse_record(record, i)
            if pid in merged:
                merged[pid][0] += n_ok
                merged[pid][1] += n
            else:
                merged[pid] = [n_ok, n, prior]
        stamp = self._next_step(step)
        out: dict[str, tuple[float, float]] = {}
        for pid, (n_ok, n, prior) in merged.items():
            if n == 0:
                continue
            out[pid] = self._apply(pid, n_ok, n, prior, stamp)
        if out:
            self._step = stamp
            self._evict()
        # Report what is current after eviction (a tiny max_problems can drop a problem updated just now).
        return {pid: ab for pid, ab in out.items() if pid in self._problems}

    def _parse_record(self, record: object, i: int) -> tuple[str, int, int, tuple[float, float]]:
        what = f"record {i}"
        if isinstance(record, Mapping):
            unknown = sorted(str(k) for k in record if k not in _RECORD_FIELDS)
            if unknown:
                raise ValueError(f"{what} has unknown keys {unknown}; valid keys are {list(_RECORD_FIELDS)}")
            missing = [k for k in _RECORD_FIELDS[:3] if k not in record]
            if missing:
                raise ValueError(f"{what} is missing keys {missing}")
            values = [record.get(k) for k in _RECORD_FIELDS]
        elif isinstance(record, (str, bytes)):
            raise ValueError(
                f"{what} must be a mapping or a tuple (problem_id, successes, trials, ...), got {record!r}"
            )
        else:
            try:
                values = list(record)  # type: ignore[call-overload]
            except TypeError:
                raise ValueError(f"{what} must be a mapping or a tuple (problem_id, successes, trials, ...)") from None
            if not 3 <= len(values) <= len(_RECORD_FIELDS):
                raise ValueError(
                    f"{what} must have 3 to {len(_RECORD_FIELDS)} fields {list(_RECORD_FIELDS)}, got {len(values)}"
                )
            values += [None] * (len(_RECORD_FIELDS) - len(values))
        pid, n_ok, n = self._check_record(values[0], values[1], values[2], f"{what} ")
        try:
            prior = self.initial_prior(values[3], values[4], values[5])
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
        return pid, n_ok, n, prior

    @staticmethod
    def _check_record(problem_id: object, successes: object, trials: object, what: str) -> tuple[str, int, int]:
        pid = _as_problem_id(problem_id, f"{what}problem_id")
        n_ok = as_count(f"{what}successes", successes)
        n = as_count(f"{what}trials", trials)
        if n_ok > n:
            raise ValueError(f"{what}successes ({n_ok}) cannot exceed trials ({n}) for problem {pid!r}")
        return pid, n_ok, n

    def _next_step(self, step: object) -> int:
        if step is None:
            return self._step + 1
        return max(as_count("step", step), self._step)

    def _apply(self, pid: str, n_ok: int, n: int, prior: tuple[float, float], stamp: int) -> tuple[float, float]:
        cfg = self.config
        entry = self._problems.get(pid)
        if entry is None:
            entry = _Entry(prior[0], prior[1], 0.0, 0.0, 0, stamp)
            self._problems[pid] = entry
        else:
            self._problems.move_to_end(pid)
        e_s = cfg.decay * entry.successes + n_ok
        e_f = cfg.decay * entry.failures + (n - n_ok)
        total = e_s + e_f
        if total > cfg.max_evidence:
            scale = cfg.max_evidence / total
            e_s *= scale
            e_f *= scale
        entry.successes = e_s
        entry.failures = e_f
        entry.visits += 1
        entry.last_step = stamp
        c = self._counters
        c["n_updates"] += 1
        c["n_trials"] += n
        c["n_successes"] += n_ok
        return entry.alpha, entry.beta

    def _evict(self) -> None:
        while len(self._problems) > self.config.max_problems:
            self._problems.popitem(last=False)
            self._counters["n_evicted"] += 1

    # ---------------------------------------------------------------- diagnostics

    def stats(self) -> dict[str, float]:
        """Numbers for the training log (means over tracked problems; NaN when none is tracked)."""
        n = len(self._problems)
        if n:
            means = [e.alpha / (e.alpha + e.beta) for e in self._problems.values()]
            mean_p = sum(means) / n
            hard = sum(1 for m in means if m < HARD_BELOW) / n
            easy = sum(1 for m in means if m > EASY_ABOVE) / n
            evidence = sum(e.successes + e.failures for e in self._problems.values()) / n
        else:
            mean_p = hard = easy = evidence = math.nan
        c = self._counters
        return {
            "problems": float(n),
            "mean_p": mean_p,
            f"share_p_below_{HARD_BELOW}": hard,
            f"share_p_above_{EASY_ABOVE}": easy,
            "mean_evidence": evidence,
            "updates": float(c["n_updates"]),
            "trials": float(c["n_trials"]),
            "success_rate_observed": c["n_successes"] / c["n_trials"] if c["n_trials"] else math.nan,
            "evicted": float(c["n_evicted"]),
            "step": float(self._step),
        }

    # ---------------------------------------------------------------- persistence

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable snapshot.

        ``problems`` lists [problem_id, prior_alpha, prior_beta, successes, failures, visits, last_step] from least
        to most recently updated (a list, so the eviction order survives any serializer); successes and failures
        are the decayed evidence, so alpha = prior_alpha + successes and beta = prior_beta + failures.
        """
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "step": self._step,
            "counters": dict(self._counters),
            "problems": [entry.to_list(pid) for pid, entry in self._problems.items()],
        }

    def load_state_dict(self, state: Mapping[str, Any], keep_config: bool = False) -> None:
        """Restore a ``state_dict`` snapshot (exact round trip).

        By default the saved config is restored too. With ``keep_config=True`` this store's config is kept (a
        resumed run with an edited recipe): evidence is rescaled to its ``max_evidence`` and the least recently
        updated problems beyond its ``max_problems`` are dropped; each problem keeps the prior it started from.
        Malformed state raises ValueError saying what is wrong and leaves the store unchanged.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"store state must be a mapping, got {type(state).__name__}")
        missing = sorted({"version", "config", "step", "counters", "problems"} - set(state))
        if missing:
            raise ValueError(f"store state is missing keys {missing}")
        if state["version"] != STATE_VERSION:
            raise ValueError(f"unsupported store state version {state['version']!r} (expected {STATE_VERSION})")
        saved_config = StoreConfig.from_dict(state["config"])
        config = self.config if keep_config else saved_config
        step = as_count("store state step", state["step"])

        raw_counters = state["counters"]
        if not isinstance(raw_counters, Mapping):
            raise ValueError("store state counters must be a mapping")
        counters = _zero_counters()
        unknown = sorted(str(k) for k in raw_counters if k not in counters)
        if unknown:
            raise ValueError(f"store state has unknown counters {unknown}")
        for key in counters:
            if key not in raw_counters:
                raise ValueError(f"store state counters miss {key!r}")
            counters[key] = as_count(f"store state counter {key}", raw_counters[key])

        raw_problems = state["problems"]
        if isinstance(raw_problems, (str, bytes, Mapping)) or not isinstance(raw_problems, Iterable):
            raise ValueError("store state problems must be a list of [problem_id, prior_alpha, prior_beta, ...] rows")
        problems: OrderedDict[str, _Entry] = OrderedDict()
        last = 0
        for i, row in enumerate(raw_problems):
            entry_what = f"store state problems[{i}]"
            if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Iterable):
                raise ValueError(f"{entry_what} must be a list of 7 fields, got {row!r}")
            items = list(row)
            if len(items) != 7:
                raise ValueError(
                    f"{entry_what} must be [problem_id, prior_alpha, prior_beta, successes, failures, visits, "
                    "last_step], "
                    f"got {len(items)} fields"
                )
            pid = _as_problem_id(items[0], f"{entry_what} problem_id")
            if pid in problems:
                raise ValueError(f"{entry_what}: problem {pid!r} appears twice")
            pa, pb = _as_prior(f"{entry_what} prior", items[1:3])
            e_s = as_float(f"{entry_what} successes", items[3])
            e_f = as_float(f"{entry_what} failures", items[4])
            if e_s < 0.0 or e_f < 0.0:
                raise ValueError(f"{entry_what}: evidence ({e_s}, {e_f}) of problem {pid!r} must be >= 0")
            visits = as_count(f"{entry_what} visits", items[5])
            if visits < 1:
                raise ValueError(f"{entry_what}: visits must be >= 1 (problems are stored only once updated)")
            last_step = as_count(f"{entry_what} last_step", items[6])
            if last_step < last or last_step > step:
                raise ValueError(
                    f"{entry_what}: last_step {last_step} must be non-decreasing along the list and <= step {step}"
                )
            last = last_step
            evidence = e_s + e_f
            if evidence > config.max_evidence * (1.0 + _CAP_SLACK):
                if not keep_config:
                    raise ValueError(
                        f"{entry_what}: evidence {evidence} of problem {pid!r} exceeds max_evidence "
                        f"{config.max_evidence}"
                    )
                scale = config.max_evidence / evidence
                e_s *= scale
                e_f *= scale
            problems[pid] = _Entry(pa, pb, e_s, e_f, visits, last_step)
        excess = len(problems) - config.max_problems
        if excess > 0:
            if not keep_config:
                raise ValueError(
                    f"store state holds {len(problems)} problems, more than max_problems {config.max_problems}"
                )
            for _ in range(excess):
                problems.popitem(last=False)
            counters["n_evicted"] += excess

        # Everything checked: commit.
        self.config = config
        self._problems = problems
        self._step = step
        self._counters = counters
        self._index_sources()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> DifficultyStore:
        """A new store restored from ``state_dict`` output, saved config included."""
        if not isinstance(state, Mapping) or "config" not in state:
            raise ValueError("store state must be a mapping with a 'config' entry")
        store = cls(StoreConfig.from_dict(state["config"]))
        store.load_state_dict(state)
        return store

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``state_dict`` to ``path`` atomically (see :func:`verl_pdai.core.persistence.save_atomic`)."""
        save_atomic(path, self.state_dict())

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], config: StoreConfig | None = None, on_corrupt: str = "fail"
    ) -> DifficultyStore:
        """Restore a store saved with ``save``; a missing file gives a fresh store.

        With ``config`` given, it replaces the saved one (``load_state_dict(keep_config=True)``). A file that is
        not valid JSON or not a valid store state raises ValueError with ``on_corrupt="fail"``, and gives a fresh
        store with a logged warning with ``on_corrupt="fresh"``.
        """
        state = load_state(path, on_corrupt)
        if state is None:
            return cls(config)
        try:
            if config is None:
                return cls.from_state_dict(state)
            store = cls(config)
            store.load_state_dict(state, keep_config=True)
            return store
        except ValueError as err:
            if on_corrupt == "fresh":
                logger.warning("difficulty store file %s is not a valid store state (%s); starting fresh", path, err)
                return cls(config)
            raise ValueError(
                f"difficulty store file {path} is not a valid store state: {err}; repair or delete it, "
                "or pass on_corrupt='fresh' to start from the priors"
            ) from None
