"""The answer checks of the metric: the project's checker, str/float/list ground truths, thinking, no ground truth."""

from __future__ import annotations

import pytest

from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.evaluation.checking import CheckJob, check_all
from verl_pdai.evaluation.data import ground_truth_of

CONFIG = StepwiseConfig(num_workers=2)


@pytest.mark.parametrize(
    ("response", "ground_truth", "correct", "extracted"),
    [
        ("So the answer is \\boxed{25}.", "025", True, "25"),  # AIME zero padding compares numerically
        ("So the answer is \\boxed{025}.", "25", True, "025"),
        ("\\boxed{24}", "025", False, "24"),
        ("\\boxed{142}", 142.0, True, "142"),  # AMC floats
        ("\\boxed{142.5}", 142.0, False, "142.5"),
        ("\\boxed{\\frac{1}{2}}", ["0.5\n", "1/2"], True, "\\frac{1}{2}"),  # Minerva lists, trailing newline
        ("\\boxed{0.5}", ["0.5\n"], True, "0.5"),
        ("\\boxed{3}", ["0.5\n", "1/2"], False, "3"),
        ("\\boxed{(3, 4)}", "$(3,4)$", True, "(3, 4)"),
        ("I cannot solve it.", "7", False, ""),
        ("<think>maybe \\boxed{7}</think> The answer is \\boxed{8}.", "8", True, "8"),  # graded after </think>
        ("<think>\\boxed{8} and I keep thinking", "8", False, ""),  # unclosed thinking: no outcome (auto)
        ("The answer is \\boxed{5}.", None, None, "5"),  # no ground truth: extracted, not judged
        ("The answer is \\boxed{5}.", [], None, "5"),
    ],
)
def test_verdicts(response: str, ground_truth: object, correct: bool | None, extracted: str) -> None:
    [verdict] = check_all([CheckJob(response, ground_truth)], CONFIG)
    assert (verdict.correct, verdict.extracted, verdict.failed) == (correct, extracted, False)


def test_many_checks_keep_their_order_and_report_progress() -> None:
    jobs = [CheckJob(f"\\boxed{{{i}}}", str(i if i % 3 else i + 1)) for i in range(40)]
    seen: list[tuple[int, int]] = []
    verdicts = check_all(jobs, CONFIG, lambda done, total: seen.append((done, total)))
    assert [v.correct for v in verdicts] == [bool(i % 3) for i in range(40)]
    assert [v.extracted for v in verdicts] == [str(i) for i in range(40)]
    assert seen[-1] == (40, 40) and len(seen) == 40


def test_required_thinking_grades_only_closed_thinking() -> None:
    required = StepwiseConfig(num_workers=1, thinking="required")
    jobs = [CheckJob("\\boxed{8}", "8"), CheckJob("reasoning</think>\\boxed{8}", "8")]
    assert [v.correct for v in check_all(jobs, required)] == [False, True]


def test_ground_truths_from_parquet_become_plain_values() -> None:
    import numpy as np

    assert ground_truth_of({"ground_truth": "025"}) == "025"
    assert ground_truth_of({"ground_truth": 142}) == 142.0
    assert ground_truth_of({"ground_truth": np.array(["a", "b"], dtype=object)}) == ["a", "b"]
    assert ground_truth_of({"ground_truth": None}) is None
    assert ground_truth_of("not a mapping") is None
