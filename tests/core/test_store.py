"""Tests of the difficulty store and its persistence helpers (pure, CPU, fast)."""

from __future__ import annotations

import json
import logging
import math
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_pdai.core import persistence as persistence_module
from verl_pdai.core.persistence import load_state, save_atomic
from verl_pdai.core.store import DifficultyStore, StoreConfig

PRIORS = {
    "priors_by_source": {"aime": (1.0, 4.0), "aime_hard": (1.0, 9.0), "gsm8k": (4.0, 1.0)},
    "priors_by_level": {"1": (5.0, 1.0), "Level 5": (1.0, 5.0)},
    "default_prior": (2.0, 2.0),
}


def _store(**overrides) -> DifficultyStore:
    return DifficultyStore(StoreConfig(**overrides))


def _feed(store: DifficultyStore, steps: range, seed: int) -> None:
    """A deterministic stream of batches over a few problems with mixed priors."""
    rng = random.Random(seed)
    for step in steps:
        records = []
        for _ in range(rng.randint(1, 6)):
            pid = f"p{rng.randint(0, 9)}"
            trials = rng.randint(0, 8)
            source = rng.choice([None, "aime24", "gsm8k", "math"])
            records.append(
                {"problem_id": pid, "successes": rng.randint(0, trials), "trials": trials, "data_source": source}
            )
        store.update_many(records, step=step)


# ------------------------------------------------------------------------------------ priors


def test_default_config_is_uniform_prior():
    store = DifficultyStore()
    assert store.prior_for("x") == (1.0, 1.0)
    assert store.mean("x") == 0.5
    assert len(store) == 0 and "x" not in store


def test_prior_precedence():
    store = _store(**PRIORS)
    # given_prior (the row's own estimate) beats everything configured
    assert store.prior_for("a", data_source="aime24", level=5, given_prior=(3, 7)) == (3.0, 7.0)
    assert store.prior_for("a", given_prior={"alpha": 0.5, "beta": 1.5}) == (0.5, 1.5)
    # then the level, in any spelling
    assert store.prior_for("a", data_source="aime24", level="Level 5") == (1.0, 5.0)
    assert store.prior_for("a", data_source="aime24", level=5) == (1.0, 5.0)
    assert store.prior_for("a", level=1.0) == (5.0, 1.0)
    assert store.prior_for("a", level=" 1 ") == (5.0, 1.0)
    # an unconfigured level falls through to the data source
    assert store.prior_for("a", data_source="gsm8k", level="Level ?") == (4.0, 1.0)
    assert store.prior_for("a", data_source="gsm8k", level=3) == (4.0, 1.0)
    # data source: exact, then the longest prefix
    assert store.prior_for("a", data_source="aime") == (1.0, 4.0)
    assert store.prior_for("a", data_source="aime_2025") == (1.0, 4.0)
    assert store.prior_for("a", data_source="aime_hard_v2") == (1.0, 9.0)
    assert store.prior_for("a", data_source="AIME24") == (2.0, 2.0)  # case-sensitive
    assert store.prior_for("a", data_source="math") == (2.0, 2.0)
    assert store.prior_for("a") == (2.0, 2.0)


def test_known_problem_uses_posterior_and_keeps_its_starting_prior():
    store = _store(**PRIORS)
    store.update("a", 1, 2, data_source="aime24")
    assert store.prior_for("a") == (1.0 + 1, 4.0 + 1)
    # hints for an unseen problem no longer matter once it is known
    assert store.prior_for("a", data_source="gsm8k", level=1, given_prior=(9, 9)) == (2.0, 5.0)
    # the decayed evidence sits on top of the prior it started from, not the one a later call suggests
    store.update("a", 0, 0, data_source="gsm8k")  # no observation
    store.update("a", 0, 1, data_source="gsm8k")
    assert store.prior_for("a") == pytest.approx((1.0 + 0.9 * 1, 4.0 + 0.9 * 1 + 1))


def test_reads_do_not_create_entries():
    store = DifficultyStore()
    store.prior_for("a")
    store.mean("a")
    assert len(store) == 0 and store.visits("a") == 0


# ------------------------------------------------------------------------------------ update arithmetic


def test_update_arithmetic_by_hand():
    store = _store(decay=0.5, default_prior=(1.0, 2.0), max_evidence=1000.0)
    assert store.update("a", 3, 4) == (1.0 + 3, 2.0 + 1)
    # evidence (3, 1) decays to (1.5, 0.5), then 1 of 4
    assert store.update("a", 1, 4) == (1.0 + 1.5 + 1, 2.0 + 0.5 + 3)
    # evidence (2.5, 3.5) -> (1.25, 1.75) + (0, 2)
    assert store.update("a", 0, 2) == (1.0 + 1.25, 2.0 + 1.75 + 2)
    assert store.mean("a") == pytest.approx(2.25 / (2.25 + 5.75))
    assert store.visits("a") == 3


def test_decay_one_is_plain_beta_update_and_zero_keeps_only_latest():
    keep = _store(decay=1.0, max_evidence=1e9)
    for s, t in [(1, 4), (2, 4), (4, 4)]:
        keep.update("a", s, t)
    assert keep.prior_for("a") == (1.0 + 7, 1.0 + 5)
    forget = _store(decay=0.0)
    for s, t in [(1, 4), (2, 4), (4, 4)]:
        forget.update("a", s, t)
    assert forget.prior_for("a") == (1.0 + 4, 1.0 + 0)


def test_prior_is_a_floor():
    store = _store(decay=0.0, default_prior=(0.5, 0.25))
    store.update("a", 0, 3)
    a, b = store.prior_for("a")
    assert a == 0.5 and b == 0.25 + 3
    store.update("a", 3, 3)
    assert store.prior_for("a") == (0.5 + 3, 0.25)


def test_zero_trials_is_a_no_op():
    store = DifficultyStore()
    assert store.update("a", 0, 0) == (1.0, 1.0)
    assert len(store) == 0 and store.step == 0
    store.update("a", 1, 2)
    before = store.state_dict()
    assert store.update("a", 0, 0) == (2.0, 2.0)
    assert store.state_dict() == before  # no decay, no visit, no step


def test_update_validation_messages():
    store = DifficultyStore()
    with pytest.raises(ValueError, match=r"successes \(3\) cannot exceed trials \(2\)"):
        store.update("a", 3, 2)
    with pytest.raises(ValueError, match="trials must be >= 0"):
        store.update("a", 0, -1)
    with pytest.raises(ValueError, match="successes must be an integer"):
        store.update("a", 1.0, 2)
    with pytest.raises(ValueError, match="successes must be an integer"):
        store.update("a", True, 2)
    with pytest.raises(ValueError, match=r"problem_id must be a non-empty string \(convert ids with str\(\)\)"):
        store.update(7, 1, 2)
    with pytest.raises(ValueError, match="problem_id must be a non-empty string"):
        store.prior_for("")
    with pytest.raises(ValueError, match="given_prior must have alpha > 0"):
        store.prior_for("a", given_prior=(0, 1))
    with pytest.raises(ValueError, match="given_prior must be a pair"):
        store.prior_for("a", given_prior=(1, 2, 3))
    with pytest.raises(ValueError, match="exactly the keys 'alpha' and 'beta'"):
        store.prior_for("a", given_prior={"a": 1, "b": 2})
    with pytest.raises(ValueError, match="given_prior beta must be finite"):
        store.update("a", 1, 2, given_prior=(1, math.inf))
    with pytest.raises(ValueError, match="data_source must be a string or None"):
        store.prior_for("a", data_source=3)
    with pytest.raises(ValueError, match="step must be >= 0"):
        store.update("a", 1, 2, step=-1)
    assert len(store) == 0


def test_numpy_counts_accepted():
    np = pytest.importorskip("numpy")
    store = DifficultyStore()
    assert store.update("a", np.int64(2), np.int32(3), level=np.int64(5)) == (3.0, 2.0)


# ------------------------------------------------------------------------------------ update_many


def test_update_many_merges_records_of_a_problem():
    split = _store(decay=0.5)
    split.update("a", 1, 2)
    out = split.update_many([("a", 1, 1), {"problem_id": "a", "successes": 0, "trials": 3}, ("b", 2, 2, "aime")])
    whole = _store(decay=0.5)
    whole.update("a", 1, 2)
    whole.update("a", 1, 4)  # one decay for the whole batch
    assert out["a"] == whole.prior_for("a")
    assert out["b"] == (3.0, 1.0)
    assert split.visits("a") == 2


def test_update_many_tuple_fields_and_priors():
    store = _store(**PRIORS)
    out = store.update_many(
        [
            ("s", 1, 1, "aime24"),
            ("l", 0, 1, None, "Level 5"),
            ("g", 1, 2, "gsm8k", 1, [3, 3]),
            ("z", 0, 0),  # no observation: not created, not reported
        ]
    )
    assert out == {"s": (2.0, 4.0), "l": (1.0, 6.0), "g": (4.0, 4.0)}
    assert "z" not in store


def test_update_many_is_atomic_on_malformed_record():
    store = DifficultyStore()
    store.update("a", 1, 1)
    before = store.state_dict()
    bad_batches = [
        ([("b", 1, 1), ("c", 2, 1)], r"record 1 successes \(2\) cannot exceed trials \(1\)"),
        ([("b", 1, 1), {"problem_id": "c", "successes": 1}], r"record 1 is missing keys \['trials'\]"),
        ([{"problem_id": "c", "successes": 1, "trials": 1, "prior": (1, 1)}], r"unknown keys \['prior'\]"),
        ([("b", 1)], "record 0 must have 3 to 6 fields"),
        ([("b", 1, 1, None, None, (0, 1))], "record 0: given_prior must have alpha > 0"),
        (["abc"], "record 0 must be a mapping or a tuple"),
        ([5], "record 0 must be a mapping or a tuple"),
    ]
    for batch, match in bad_batches:
        with pytest.raises(ValueError, match=match):
            store.update_many(batch)
        assert store.state_dict() == before
    with pytest.raises(ValueError, match="not a single record"):
        store.update_many({"problem_id": "a", "successes": 1, "trials": 1})


def test_steps_default_and_never_go_back():
    store = DifficultyStore()
    store.update("a", 1, 1)
    assert store.step == 1
    store.update_many([("a", 1, 1), ("b", 0, 1)])
    assert store.step == 2
    store.update_many([("c", 1, 1)], step=10)
    store.update("d", 1, 1, step=4)  # older than the latest: stamped as the latest
    rows = {row[0]: row for row in store.state_dict()["problems"]}
    assert store.step == 10
    assert [rows[p][6] for p in "abcd"] == [2, 2, 10, 10]


# ------------------------------------------------------------------------------------ following the policy


def _track(decay: float, seed: int, rates: list[float], trials: int = 8, max_evidence: float = 64.0) -> list[float]:
    """Posterior means of one problem whose true success rate follows ``rates`` (one visit each)."""
    rng = random.Random(seed)
    store = _store(decay=decay, max_evidence=max_evidence)
    means = []
    for rate in rates:
        store.update("q", sum(rng.random() < rate for _ in range(trials)), trials)
        means.append(store.mean("q"))
    return means


@pytest.mark.parametrize("seed", range(5))
def test_decay_follows_an_improving_policy(seed):
    # The true unassisted success rate climbs from 0.1 to 0.8 over 150 visits, then stays.
    rates = [0.1 + 0.7 * min(i / 150, 1.0) for i in range(200)]
    decayed = _track(0.9, seed, rates)
    no_forget = _track(1.0, seed, rates, max_evidence=1e9)

    errors = [abs(m - r) for m, r in zip(decayed, rates, strict=True)]
    assert sum(errors[20:]) / len(errors[20:]) < 0.08  # tracks it throughout
    assert abs(sum(decayed[-30:]) / 30 - 0.8) < 0.1  # and settles at the new rate
    assert abs(decayed[40] - rates[40]) < 0.2 and abs(decayed[100] - rates[100]) < 0.2
    # without forgetting the posterior averages over the whole history and lags far behind
    assert no_forget[-1] < 0.65
    assert sum(abs(m - r) for m, r in zip(no_forget[20:], rates[20:], strict=True)) > 2 * sum(errors[20:])


def test_decay_reacts_to_a_jump():
    rates = [0.1] * 60 + [0.8] * 30
    means = _track(0.9, 0, rates)
    assert means[59] < 0.25
    assert means[-1] > 0.65


# ------------------------------------------------------------------------------------ bounds


def test_max_evidence_caps_and_keeps_the_success_share():
    store = _store(decay=1.0, max_evidence=10.0, default_prior=(1.0, 1.0))
    store.update("a", 6, 8)
    assert store.prior_for("a") == (7.0, 3.0)  # evidence 8 <= 10: untouched
    a, b = store.update("a", 2, 8)  # evidence (8, 8) = 16 -> scaled to 10
    assert (a - 1.0) + (b - 1.0) == pytest.approx(10.0)
    assert (a - 1.0) / (a + b - 2.0) == pytest.approx(0.5)
    for _ in range(50):
        a, b = store.update("a", 100, 100)
    assert (a - 1.0) + (b - 1.0) == pytest.approx(10.0)
    assert b >= 1.0
    # a fresh group still moves the capped posterior substantially
    before = store.mean("a")
    store.update("a", 0, 8)
    assert before - store.mean("a") > 0.3


def test_eviction_drops_least_recently_updated():
    store = _store(max_problems=3)
    for pid in ["a", "b", "c"]:
        store.update(pid, 1, 1)
    store.update("a", 1, 1)  # a is now the most recent
    store.update("d", 0, 1)  # evicts b
    assert [row[0] for row in store.state_dict()["problems"]] == ["c", "a", "d"]
    assert len(store) == 3 and "b" not in store
    assert store.prior_for("b") == (1.0, 1.0)  # back to its prior
    assert store.stats()["evicted"] == 1.0
    out = store.update_many([(p, 1, 1) for p in "efghi"])
    assert len(store) == 3 and set(out) == {"g", "h", "i"}
    assert store.stats()["evicted"] == 6.0


def test_eviction_bound_under_many_problems():
    store = _store(max_problems=100)
    for i in range(1000):
        store.update(f"p{i}", i % 2, 1)
        assert len(store) <= 100
    assert set(row[0] for row in store.state_dict()["problems"]) == {f"p{i}" for i in range(900, 1000)}


# ------------------------------------------------------------------------------------ stats


def test_stats():
    store = DifficultyStore()
    empty = store.stats()
    assert empty["problems"] == 0.0 and empty["updates"] == 0.0
    assert math.isnan(empty["mean_p"]) and math.isnan(empty["share_p_below_0.1"])
    store.update("easy", 30, 30)  # mean 31/32
    store.update("hard", 0, 30)  # mean 1/32
    store.update("mid", 1, 2)  # mean 0.5
    store.update("mid", 1, 2)  # still 0.5
    stats = store.stats()
    assert stats["problems"] == 3.0
    assert stats["mean_p"] == pytest.approx((31 / 32 + 1 / 32 + 0.5) / 3)
    assert stats["share_p_below_0.1"] == pytest.approx(1 / 3)
    assert stats["share_p_above_0.9"] == pytest.approx(1 / 3)
    assert stats["updates"] == 4.0
    assert stats["trials"] == 64.0
    assert stats["success_rate_observed"] == pytest.approx(32 / 64)
    assert stats["step"] == 4.0
    assert all(isinstance(v, float) for v in stats.values())


# ------------------------------------------------------------------------------------ state


def test_state_round_trip_is_exact():
    store = _store(**PRIORS, decay=0.7, max_evidence=20.0)
    _feed(store, range(1, 40), seed=3)
    state = store.state_dict()
    text = json.dumps(state, allow_nan=False)
    assert json.loads(text) == state
    restored = DifficultyStore.from_state_dict(json.loads(text))
    assert restored.state_dict() == state
    assert restored.config == store.config
    assert restored.stats() == store.stats()


def test_resumed_store_continues_identically():
    cfg = dict(PRIORS, decay=0.8, max_evidence=25.0, max_problems=7)  # small cap and bound: both get exercised
    uninterrupted = _store(**cfg)
    _feed(uninterrupted, range(1, 30), seed=11)
    _feed(uninterrupted, range(30, 60), seed=99)

    first = _store(**cfg)
    _feed(first, range(1, 30), seed=11)
    resumed = DifficultyStore.from_state_dict(json.loads(json.dumps(first.state_dict())))
    _feed(resumed, range(30, 60), seed=99)

    assert resumed.state_dict() == uninterrupted.state_dict()
    assert resumed.stats()["evicted"] > 0


def test_load_state_dict_into_existing_store_and_keep_config():
    source = _store(decay=1.0, max_evidence=100.0, max_problems=10)
    for i in range(10):
        source.update(f"p{i}", i, 40, step=i + 1)
    target = DifficultyStore()
    target.load_state_dict(source.state_dict())
    assert target.state_dict() == source.state_dict()

    tight = _store(max_evidence=10.0, max_problems=4)
    tight.load_state_dict(source.state_dict(), keep_config=True)
    assert tight.config.max_evidence == 10.0
    assert [row[0] for row in tight.state_dict()["problems"]] == ["p6", "p7", "p8", "p9"]
    assert tight.stats()["evicted"] == 6.0
    for pid in ["p6", "p9"]:
        a, b = tight.prior_for(pid)
        assert (a - 1) + (b - 1) == pytest.approx(10.0)
        # evidence (i, 40 - i) scaled to a total of 10, on top of the Beta(1, 1) prior
        assert tight.mean(pid) == pytest.approx((1 + 10 * int(pid[1:]) / 40) / 12)


def _valid_state() -> dict:
    store = _store(max_evidence=10.0)
    store.update("a", 1, 2, step=1)
    store.update("b", 2, 3, step=2)
    return json.loads(json.dumps(store.state_dict()))


def _with(path: tuple, value) -> dict:
    state = _valid_state()
    node = state
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return state


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("version",), 2, "unsupported store state version 2"),
        (("step",), _DELETE, r"missing keys \['step'\]"),
        (("step",), -1, "step must be >= 0"),
        (("config", "decay"), 1.5, "decay must lie in"),
        (("config", "bogus"), 1, r"unknown store config keys \['bogus'\]"),
        (("counters", "n_updates"), 1.5, "counter n_updates must be an integer"),
        (("counters", "extra"), 1, r"unknown counters \['extra'\]"),
        (("counters", "n_evicted"), _DELETE, "counters miss 'n_evicted'"),
        (("problems",), {"a": 1}, "problems must be a list"),
        (("problems", 0), ["a", 2.0, 2.0], r"problems\[0\] must be \[problem_id, prior_alpha, prior_beta"),
        (("problems", 0, 0), 5, r"problems\[0\] problem_id must be a non-empty string"),
        (("problems", 1, 0), "a", "problem 'a' appears twice"),
        (("problems", 0, 3), -0.5, r"evidence \(-0.5, 1.0\) of problem 'a' must be >= 0"),
        (("problems", 0, 4), math.nan, r"problems\[0\] failures must be finite"),
        (("problems", 0, 1), -1.0, r"problems\[0\] prior must have alpha > 0"),
        (("problems", 0, 2), "1", r"problems\[0\] prior beta must be a real number"),
        (("problems", 0, 5), 0, "visits must be >= 1"),
        (("problems", 0, 6), 3, "last_step 3 must be non-decreasing along the list and <= step 2"),
        (("problems", 1, 3), 50.0, "evidence 51.0 of problem 'b' exceeds max_evidence 10.0"),
        (("config", "max_problems"), 1, "holds 2 problems, more than max_problems 1"),
    ],
)
def test_load_state_dict_validation(path, value, match):
    store = DifficultyStore()
    store.update("keep", 1, 1)
    before = store.state_dict()
    with pytest.raises(ValueError, match=match):
        store.load_state_dict(_with(path, value))
    assert store.state_dict() == before  # unchanged on failure


def test_from_state_dict_needs_a_mapping():
    with pytest.raises(ValueError, match="must be a mapping with a 'config' entry"):
        DifficultyStore.from_state_dict([])
    with pytest.raises(ValueError, match="store state must be a mapping"):
        DifficultyStore().load_state_dict("x")


# ------------------------------------------------------------------------------------ config


def test_config_normalizes_and_round_trips():
    cfg = StoreConfig.from_dict(
        {
            "default_prior": [1, 2],
            "priors_by_source": {"aime": [1, 4]},
            "priors_by_level": {5: [1, 5], "Level 1": {"alpha": 5, "beta": 1}},
        }
    )
    assert cfg.default_prior == (1.0, 2.0)
    assert cfg.priors_by_source == {"aime": (1.0, 4.0)}
    assert cfg.priors_by_level == {"5": (1.0, 5.0), "1": (5.0, 1.0)}
    again = StoreConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert StoreConfig.from_dict({}) == StoreConfig()


def test_config_copies_caller_dicts():
    sources = {"aime": (1, 4)}
    cfg = StoreConfig(priors_by_source=sources)
    sources["aime"] = (9, 9)
    assert cfg.priors_by_source == {"aime": (1.0, 4.0)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"decay": -0.1}, r"StoreConfig.decay must lie in \[0, 1\]"),
        ({"decay": "0.9"}, "StoreConfig.decay must be a real number"),
        ({"default_prior": (0, 1)}, "StoreConfig.default_prior must have alpha > 0"),
        ({"default_prior": 1.0}, r"StoreConfig.default_prior must be a pair \(alpha, beta\)"),
        ({"priors_by_source": {"aime": (1, -4)}}, r"StoreConfig.priors_by_source\['aime'\] must have alpha > 0"),
        ({"priors_by_source": {"": (1, 4)}}, "priors_by_source keys must be non-empty data source names"),
        ({"priors_by_source": [("aime", (1, 4))]}, "priors_by_source must be a mapping"),
        ({"priors_by_level": {3: (1, 1), "3": (2, 2)}}, "two keys for level '3'"),
        ({"priors_by_level": {"": (1, 1)}}, "priors_by_level keys must be levels"),
        ({"max_problems": 0}, r"StoreConfig.max_problems must be >= 1 \(e.g. the dataset size\)"),
        ({"max_problems": 10.0}, "StoreConfig.max_problems must be an integer"),
        ({"max_evidence": 0.0}, r"StoreConfig.max_evidence must be > 0 \(e.g. 64"),
        ({"max_evidence": math.inf}, "StoreConfig.max_evidence must be finite"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StoreConfig(**kwargs)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match=r"unknown store config keys \['decai'\]; valid keys are \["):
        StoreConfig.from_dict({"decai": 0.5})
    with pytest.raises(ValueError, match="store config must be a mapping"):
        StoreConfig.from_dict([("decay", 0.5)])
    with pytest.raises(ValueError, match="config must be a StoreConfig"):
        DifficultyStore({"decay": 0.5})


# ------------------------------------------------------------------------------------ files


def test_save_atomic_round_trip_leaves_no_temp_files(tmp_path):
    store = _store(**PRIORS)
    _feed(store, range(1, 20), seed=5)
    target = tmp_path / "sub" / "store.json"
    save_atomic(target, store.state_dict())
    save_atomic(target, store.state_dict())  # overwrite
    assert os.listdir(target.parent) == ["store.json"]
    assert target.stat().st_mode & 0o777 == 0o644
    assert load_state(target) == store.state_dict()
    store.save(str(target))
    assert DifficultyStore.load(target).state_dict() == store.state_dict()


def test_save_atomic_rejects_non_json_without_touching_the_file(tmp_path):
    target = tmp_path / "s.json"
    save_atomic(target, {"ok": 1})
    with pytest.raises(ValueError, match="not JSON-serializable"):
        save_atomic(target, {"bad": math.nan})
    with pytest.raises(ValueError, match="not JSON-serializable"):
        save_atomic(target, {"bad": object()})
    assert load_state(target) == {"ok": 1}
    assert os.listdir(tmp_path) == ["s.json"]


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "store.json"
    save_atomic(target, {"generation": 1})
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(persistence_module.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_atomic(target, {"generation": 2, "payload": "x" * 10_000})
    monkeypatch.setattr(persistence_module.os, "fsync", real_fsync)
    assert load_state(target) == {"generation": 1}
    assert os.listdir(tmp_path) == ["store.json"]

    # a crash between write and rename (os.replace never runs) leaves the old file too
    def failing_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(persistence_module.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        save_atomic(target, {"generation": 3})
    monkeypatch.undo()
    assert load_state(target) == {"generation": 1}
    assert os.listdir(tmp_path) == ["store.json"]


def test_garbage_in_a_temp_file_never_reaches_the_target(tmp_path):
    target = tmp_path / "store.json"
    save_atomic(target, {"generation": 1})
    # a stray half-written temp file from a killed process does not affect the target or the next save
    stray = tmp_path / ".store.json.abc.tmp"
    stray.write_text('{"generation": 2, "pay')
    assert load_state(target) == {"generation": 1}
    save_atomic(target, {"generation": 3})
    assert load_state(target) == {"generation": 3}


def test_load_state_missing(tmp_path):
    assert load_state(tmp_path / "nope.json") is None
    assert load_state(tmp_path / "nope.json", on_corrupt="fresh") is None
    fresh = DifficultyStore.load(tmp_path / "nope.json", config=StoreConfig(decay=0.5))
    assert len(fresh) == 0 and fresh.config.decay == 0.5


@pytest.mark.parametrize(
    "content",
    [b"", b'{"version": 1, "config": {"decay": 0.9', b"\xff\xfe garbage", b"[1, 2, 3]", b"not json at all"],
    ids=["empty", "truncated", "not-utf8", "not-an-object", "garbage"],
)
def test_load_state_corrupt(tmp_path, caplog, content):
    target = tmp_path / "store.json"
    target.write_bytes(content)
    with pytest.raises(ValueError, match="corrupt or truncated") as info:
        load_state(target)
    assert str(target) in str(info.value) and "on_corrupt='fresh'" in str(info.value)
    with caplog.at_level(logging.WARNING, logger="verl_pdai.core.persistence"):
        assert load_state(target, on_corrupt="fresh") is None
    assert "starting fresh" in caplog.text and str(target) in caplog.text
    assert target.read_bytes() == content  # never modified or deleted


def test_truncated_real_state_file(tmp_path):
    store = DifficultyStore()
    _feed(store, range(1, 10), seed=1)
    target = tmp_path / "store.json"
    save_atomic(target, store.state_dict())
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        DifficultyStore.load(target)
    assert len(DifficultyStore.load(target, on_corrupt="fresh")) == 0


def test_store_load_invalid_state(tmp_path, caplog):
    target = tmp_path / "store.json"
    target.write_text(json.dumps({"version": 1, "config": {}}))
    with pytest.raises(ValueError, match="is not a valid store state: store state is missing keys"):
        DifficultyStore.load(target)
    with caplog.at_level(logging.WARNING, logger="verl_pdai.core.store"):
        assert len(DifficultyStore.load(target, on_corrupt="fresh")) == 0
    assert "not a valid store state" in caplog.text


def test_store_load_with_config_keeps_new_config(tmp_path):
    store = _store(max_evidence=100.0)
    store.update("a", 30, 40)
    target = tmp_path / "store.json"
    store.save(target)
    loaded = DifficultyStore.load(target, config=StoreConfig(max_evidence=20.0))
    assert loaded.config.max_evidence == 20.0
    a, b = loaded.prior_for("a")
    assert (a - 1) + (b - 1) == pytest.approx(20.0)


def test_load_state_bad_choice(tmp_path):
    with pytest.raises(ValueError, match="on_corrupt must be 'fail' or 'fresh', got 'ignore'"):
        load_state(tmp_path / "x.json", on_corrupt="ignore")


def test_paths_as_strings(tmp_path):
    target = str(Path(tmp_path) / "s.json")
    save_atomic(target, {"a": [1, 2.5]})
    assert load_state(target) == {"a": [1, 2.5]}


# ------------------------------------------------------------------------------------ properties

_updates = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=0, max_value=10**12),
        st.integers(min_value=0, max_value=10**12),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    updates=_updates,
    decay=st.floats(min_value=0.0, max_value=1.0),
    cap=st.floats(min_value=1e-6, max_value=1e12),
    prior=st.tuples(st.floats(min_value=1e-6, max_value=1e6), st.floats(min_value=1e-6, max_value=1e6)),
)
def test_posterior_stays_positive_finite_and_capped(updates, decay, cap, prior):
    store = _store(decay=decay, max_evidence=cap, default_prior=prior, max_problems=2)
    for pid, x, y in updates:
        successes, trials = min(x, y), max(x, y)
        a, b = store.update(pid, successes, trials)
        assert math.isfinite(a) and math.isfinite(b)
        assert a >= prior[0] > 0 and b >= prior[1] > 0
        assert 0.0 <= store.mean(pid) <= 1.0
    assert len(store) <= 2
    for _, pa, pb, e_s, e_f, visits, _ in store.state_dict()["problems"]:
        assert (pa, pb) == prior and e_s >= 0 and e_f >= 0 and visits >= 1
        assert e_s + e_f <= cap * (1 + 1e-12)
    state = json.loads(json.dumps(store.state_dict(), allow_nan=False))
    assert DifficultyStore.from_state_dict(state).state_dict() == store.state_dict()
