"""avg@k and pass@k against hand-computed values and a brute-force enumeration of sample subsets."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verl_pdai.evaluation.metrics import ProblemOutcome, average_metrics, benchmark_metrics, ks_up_to, pass_at_k


def brute_force_pass_at_k(correct: list[bool], k: int) -> float:
    """Share of the k-subsets of the samples that hold at least one correct sample."""
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in subset) for subset in subsets) / len(subsets)


@given(st.lists(st.booleans(), min_size=1, max_size=12), st.data())
def test_unbiased_estimator_equals_subset_enumeration(correct: list[bool], data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=len(correct)))
    assert pass_at_k(len(correct), sum(correct), k) == pytest.approx(brute_force_pass_at_k(correct, k), abs=1e-12)


def test_hand_computed_values() -> None:
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(16, 3, 1) == pytest.approx(3 / 16)  # pass@1 is the sample mean
    assert pass_at_k(16, 2, 4) == pytest.approx(1 - math.comb(14, 4) / math.comb(16, 4))


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_impossible_counts_fail(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_reported_ks() -> None:
    assert ks_up_to(16) == [1, 2, 4, 8, 16]
    assert ks_up_to(12) == [1, 2, 4, 8, 12]
    assert ks_up_to(1) == [1]
    with pytest.raises(ValueError):
        ks_up_to(0)


def test_benchmark_metrics_average_over_problems() -> None:
    t, f = True, False
    problems = [
        ProblemOutcome((t, t, f, f), (10, 20, 30, 40)),  # c = 2
        ProblemOutcome((f, f, f, f), (40, 40, 40, 40)),  # c = 0
        ProblemOutcome((None, None, None, None), (1, 1, 1, 1)),  # no ground truth: counted, not scored
    ]
    metrics = benchmark_metrics(problems, k=4, max_tokens=40)
    assert metrics["problems"] == 3 and metrics["scored_problems"] == 2
    assert metrics["avg_at_k"] == pytest.approx((2 / 4 + 0) / 2)
    assert metrics["pass_at_1"] == pytest.approx(metrics["avg_at_k"])
    assert metrics["pass_at_2"] == pytest.approx((1 - 1 / 6 + 0) / 2)  # 1 - C(2,2)/C(4,2) for the first
    assert metrics["pass_at_4"] == metrics["pass_at_k"] == pytest.approx(0.5)
    assert metrics["mean_tokens"] == pytest.approx((100 + 160 + 4) / 12)
    assert metrics["truncated_share"] == pytest.approx(5 / 12)  # five samples reached max_tokens=40


def test_wrong_number_of_samples_fails() -> None:
    with pytest.raises(ValueError, match="k=4"):
        benchmark_metrics([ProblemOutcome((True, False))], k=4)


def test_average_weighs_benchmarks_equally() -> None:
    small = benchmark_metrics([ProblemOutcome((True, True))], k=2)
    large = benchmark_metrics([ProblemOutcome((False, False))] * 9, k=2)
    average = average_metrics({"small": small, "large": large})
    assert average["avg_at_k"] == pytest.approx(0.5)  # not 1/10: each benchmark weighs the same
    assert average["problems"] == 10 and average["benchmarks"] == 2


def test_benchmark_without_any_ground_truth_has_no_values() -> None:
    metrics = benchmark_metrics([ProblemOutcome((None, None))], k=2)
    assert metrics["avg_at_k"] is None and metrics["pass_at_k"] is None


def test_metric_core_imports_no_verl() -> None:
    code = (
        "import sys, verl_pdai.evaluation.metrics, verl_pdai.evaluation.runner, verl_pdai.evaluation.command;"
        "import verl_pdai.evaluation.checkpoint, verl_pdai.evaluation.hf_backend;"
        "bad = [m for m in sys.modules if m == 'verl' or m.startswith(('verl.', 'vllm', 'torch'))];"
        "assert not bad, bad"
    )
    root = str(Path(__file__).resolve().parents[2])  # this checkout's verl_pdai, not an installed one
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": root})
