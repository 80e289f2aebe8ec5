"""The sum-chain task family: splits, reference solutions, rows in the one verl schema, hints, grading."""

from __future__ import annotations

import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from verl_pdai.core.hints import DEFAULT_FRACTIONS, RECOMMENDED_PREFIX, answer_leaks, build_hints
from verl_pdai.data.io import verl_row_schema
from verl_pdai.learning.heldout import grade
from verl_pdai.learning.tasks import (
    DATA_SOURCE,
    KINDS,
    SumProblem,
    generate_problems,
    kind_of,
    teaching_problems,
    verl_row,
    write_parquet,
)

SEEDS = (0, 1, 2)


def hints_of(problem: SumProblem):
    return build_hints(
        problem.reference_solution, problem.answer, DEFAULT_FRACTIONS, prefix=RECOMMENDED_PREFIX, suffix="\n\n"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_splits_are_disjoint_sized_and_hold_every_kind(seed):
    train, heldout = generate_problems(seed)
    assert len(train) == 48 and len(heldout) == 32
    for split, per_kind in ((train, 12), (heldout, 8)):
        kinds = [p.kind for p in split]
        assert {k: kinds.count(k) for k in KINDS} == dict.fromkeys(KINDS, per_kind)
        assert len({p.operands for p in split}) == len(split)
    assert not {p.operands for p in train} & {p.operands for p in heldout}
    teach = teaching_problems(seed, {2: None, 3: 10}, train + heldout)
    assert not {p.operands for p in teach} & {p.operands for p in train + heldout}
    assert len({p.operands for p in teach}) == len(teach)


def test_splits_depend_on_the_seed_only():
    assert generate_problems(3) == generate_problems(3)
    assert generate_problems(3)[0] != generate_problems(4)[0]
    train, heldout = generate_problems(0, train_size=10, heldout_size=6)
    assert [sum(p.kind == k for p in train) for k in KINDS] == [3, 3, 2, 2]
    assert [sum(p.kind == k for p in heldout) for k in KINDS] == [2, 2, 1, 1]


def test_teaching_set_covers_every_first_step_without_train_or_heldout_tuples():
    train, heldout = generate_problems(0)
    teach = teaching_problems(0, {2: None}, train + heldout, first_step_cover=2)
    sum2 = [p for p in teach if p.n == 2]
    assert len(sum2) == 81 - sum(p.n == 2 for p in train + heldout)  # every sum2 tuple left
    starts = [p.operands[:2] for p in teach]
    assert {(a, b) for a in range(1, 10) for b in range(1, 10)} <= set(starts)
    for p in train + heldout:
        if p.n == 2:  # a train/held-out pair is taught only inside sum3 problems, first_step_cover of them
            assert starts.count(p.operands) == 2
            assert all(q.n == 3 for q in teach if q.operands[:2] == p.operands)


def test_too_many_problems_fail_clearly():
    with pytest.raises(ValueError, match="distinct sum2"):
        generate_problems(0, train_size=4 * 70, heldout_size=4 * 20)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_solutions_add_up(seed):
    train, heldout = generate_problems(seed)
    for p in train + heldout:
        operands = [int(d) for d in re.findall(r"\d", p.question)]
        assert tuple(operands) == p.operands and p.kind == f"sum{len(operands)}" == kind_of(p.problem_id)
        steps = p.reference_solution.split("\n\n")
        assert len(steps) == len(operands)
        total = operands[0]
        for step, operand in zip(steps[:-1], operands[1:], strict=True):
            left, right, result = map(int, re.fullmatch(r"(\d+) \+ (\d+) = (\d+)\.", step).groups())
            assert (left, right) == (total, operand) and result == left + right
            total = result
        assert steps[-1] == f"The answer is $\\boxed{{{total}}}$."
        assert p.answer == str(total) == str(sum(operands))


def test_question_and_prompt_text():
    p = SumProblem((3, 5, 8, 2))
    assert p.question == "Add the numbers 3, 5, 8 and 2."
    assert p.reference_solution == "3 + 5 = 8.\n\n8 + 8 = 16.\n\n16 + 2 = 18.\n\nThe answer is $\\boxed{18}$."
    assert SumProblem((4, 7)).question == "Add the numbers 4 and 7."
    (message,) = p.prompt
    assert message["role"] == "user" and message["content"].startswith(p.question + " Let's think step by step")
    with pytest.raises(ValueError):
        SumProblem((0, 5))
    with pytest.raises(ValueError):
        SumProblem((5,))


def test_rows_follow_the_one_verl_schema(tmp_path):
    train, heldout = generate_problems(1)
    path = write_parquet(heldout, tmp_path / "heldout.parquet", split="test")
    table = pq.read_table(path)
    assert table.schema.equals(verl_row_schema())
    rows = table.to_pylist()
    assert rows == [verl_row(p, i, "test") for i, p in enumerate(heldout)]  # nothing dropped or changed on write
    schema = verl_row_schema()
    extra_fields = {f.name for f in schema.field("extra_info").type}
    for row, p in zip(rows, heldout, strict=True):
        assert set(row) == set(schema.names) and set(row["extra_info"]) == extra_fields
        assert row["data_source"] == DATA_SOURCE
        assert row["reward_model"] == {"style": "rule", "ground_truth": p.answer}
        info = row["extra_info"]
        assert info["answers"] == [p.answer] and info["problem_id"] == p.problem_id
        assert info["pdai_prior"] == {"alpha": 1.0, "beta": 1.0}  # neutral for every kind: nothing planted
        assert info["level"] is None and info["split"] == "test"
    assert [r["extra_info"]["index"] for r in rows] == list(range(len(heldout)))
    pa.Table.from_pylist([verl_row(p, 0) for p in train], schema=verl_row_schema())  # train rows too


def test_hints_are_usable_for_sum3_to_sum5_and_never_leak():
    train, heldout = generate_problems(0)
    revealed: dict[str, set[tuple[int, ...]]] = {}
    for p in train + heldout:
        hints = hints_of(p)
        if p.n == 2:  # the one addition step states the answer: no hint can be built
            assert not hints.usable
            continue
        assert hints.usable, (p.problem_id, hints.reason)
        revealed.setdefault(p.kind, set()).add(tuple(h.steps_revealed for h in hints.hints))
        steps = p.reference_solution.split("\n\n")
        for level in range(1, len(hints.hints)):
            hint = hints.for_level(level)
            assert hint.text.startswith(RECOMMENDED_PREFIX) and hint.text.endswith("\n\n")
            body = hint.text[len(RECOMMENDED_PREFIX) :].removesuffix("\n\n")
            assert body == "\n\n".join(steps[: hint.steps_revealed])  # whole steps, nothing rewritten
            assert p.answer not in re.findall(r"\d+", body) and "boxed" not in body
            assert not answer_leaks(hint.text, p.answer)
    # steps revealed by levels 0..3 (fractions 0, 1/4, 1/2, 3/4; the answer-stating step is never shown)
    assert revealed == {"sum3": {(0, 1, 1, 1)}, "sum4": {(0, 1, 2, 2)}, "sum5": {(0, 2, 3, 3)}}


def test_grading_uses_the_reward_outcome_check():
    p = SumProblem((3, 5, 8, 2))
    opening = "I add the numbers one at a time.\n\n"
    assert grade(opening + p.reference_solution, p.answer)
    assert grade("The answer is $\\boxed{18}$.", p.answer)
    assert not grade(opening + "3 + 5 = 8.\n\n8 + 8 = 16.\n\nThe answer is $\\boxed{16}$.", p.answer)
    assert not grade("3 + 5 + 8 + 2 = 18.", p.answer)  # no final answer stated: no outcome
    assert not grade("", p.answer)


def test_tasks_module_is_pure():
    code = (
        "import sys, verl_pdai.learning.tasks; "
        "print(sorted(m for m in ('torch', 'verl', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_third_of_the_rows_keep_their_reference_the_same_rows_for_every_method(tmp_path):
    """Issue 14's variant: most rows of a public set lack a reference; which rows do is drawn by the seed only."""
    import pyarrow.parquet as pq

    from verl_pdai.learning.methods import reference_share
    from verl_pdai.learning.tasks import generate_problems, rows_without_reference, write_parquet

    train, _ = generate_problems(0, 48, 32)
    dropped = rows_without_reference(len(train), reference_share("eprli_third_refs"), seed=0)
    assert len(dropped) == 32 and dropped == rows_without_reference(48, 1 / 3, seed=0)
    assert dropped != rows_without_reference(48, 1 / 3, seed=1)
    assert reference_share("eprli") == 1.0 and rows_without_reference(48, 1.0, seed=0) == []
    rows = pq.read_table(write_parquet(train, tmp_path / "t.parquet", without_reference=dropped)).to_pylist()
    with_reference = [i for i, row in enumerate(rows) if row["extra_info"]["reference_solution"]]
    assert with_reference == sorted(set(range(48)) - set(dropped))


def test_a_torn_metrics_line_is_skipped_not_fatal(tmp_path):
    """A 24-step run ended in a JSONDecodeError after training: its metrics file held a torn line."""
    from verl_pdai.learning.run import _per_step_metrics

    good = '{"step": 1, "data": {"pdai/rollout/intervention_rate": 0.5}}'
    path = tmp_path / "metrics.jsonl"
    path.write_text(good + '\nectory_spans/max":1,"training/x":0}\n' + good.replace('"step": 1', '"step": 2') + "\n")
    assert [row["step"] for row in _per_step_metrics(path)] == [1, 2]
