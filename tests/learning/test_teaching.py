"""Teaching the learning benchmark's base model, and the held-out evaluator, on the real Qwen2.5 tokenizer."""

from __future__ import annotations

import copy

import pytest
import torch

from verl_pdai.demo.lessons import prompt_ids
from verl_pdai.learning import teaching as T
from verl_pdai.learning.heldout import evaluate_unassisted
from verl_pdai.learning.tasks import SumProblem, generate_problems


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_lessons_are_the_rollout_token_sequences(tokenizer):
    p = SumProblem((3, 5, 8))
    prompt = prompt_ids(tokenizer, p)
    hint = T.hint_set(p).for_level(1)
    assert hint.text == T.HINT_PREFIX + "3 + 5 = 8.\n\n"
    lesson = T.hint_lesson(tokenizer, p)
    opening, hint_ids = encode(tokenizer, T.OPENING), encode(tokenizer, hint.text)
    rest = encode(tokenizer, "8 + 8 = 16.\n\nThe answer is $\\boxed{16}$.")
    assert list(lesson.ids) == prompt + opening + hint_ids + rest + [tokenizer.eos_token_id]
    trained = [False] * len(prompt) + [True] * len(opening) + [False] * len(hint_ids) + [True] * (len(rest) + 1)
    assert list(lesson.train) == trained and lesson.prompt_len == len(prompt)
    solution = T.solution_lesson(tokenizer, SumProblem((4, 7)))
    body = encode(tokenizer, "4 + 7 = 11.\n\nThe answer is $\\boxed{11}$.")
    assert list(solution.ids) == prompt_ids(tokenizer, SumProblem((4, 7))) + opening + body + [tokenizer.eos_token_id]
    # the rollout injects at the first "\n\n" after its first few tokens: the opening ends there, and only there
    texts = [tokenizer.decode([i]) for i in opening]
    assert len(opening) == 9 and texts[-1].endswith("\n\n") and "\n" not in "".join(texts[:-1])


def test_teaching_set_is_disjoint_and_teaches_no_long_chain():
    train, heldout = generate_problems(0)
    teaching = T.teaching_set(0, train + heldout)
    taught = [p.operands for p in teaching.problems]
    assert len(set(taught)) == len(taught)
    assert not set(taught) & {p.operands for p in train + heldout}
    assert {p.n for p in teaching.solutions} == {2, 3} and {p.n for p in teaching.hinted} == {3}
    held_back = {p.operands for p in train + heldout if p.n == 2}
    assert sum(p.n == 2 for p in teaching.solutions) == 81 - len(held_back)
    for a, b in held_back:  # each held-back one-digit fact is taught as a first step and as a hinted continuation
        assert sum(p.operands[:2] == (a, b) for p in teaching.solutions) == T.FIRST_STEP_COVER
        facts = [p for p in teaching.hinted if p.operands[0] + p.operands[1] == a and p.operands[2] == b]
        assert len(facts) >= (1 if a >= 2 else 0)  # (x, a - x, b) for up to FACT_HINTS free x
    assert len(teaching.hinted) >= T.HINTED_SUM3


def test_vocabulary_holds_every_token_of_every_kind(tokenizer):
    vocab = set(T.teaching_vocab(tokenizer))
    train, heldout = generate_problems(1)
    for p in train + heldout:
        ids = prompt_ids(tokenizer, p)[-30:] + encode(tokenizer, T.OPENING + p.reference_solution)
        hints = T.hint_set(p)
        for level in range(1, hints.num_levels):
            ids += encode(tokenizer, hints.for_level(level).text)
        question = encode(tokenizer, p.prompt[0]["content"])
        assert set(question) <= vocab and set(ids[30:]) <= vocab, p.problem_id
    assert all(set(encode(tokenizer, str(n))) <= vocab for n in range(46))


@pytest.fixture(scope="module")
def small_model(tokenizer):
    """A small teaching set taught quickly: its sum2 solutions must come out right, greedily."""
    taught = [SumProblem(ops) for ops in ((2, 3), (4, 7), (6, 1), (9, 5), (8, 8), (3, 9))]
    hinted = [SumProblem(ops) for ops in ((2, 3, 4), (5, 1, 7))]
    model, report = T.teach_base_model(
        tokenizer, T.TeachingSet(tuple(taught), tuple(hinted)), seed=0, hidden_size=64, steps=120, batch_size=8, lr=1e-2
    )
    return model, report, taught


def test_teaching_a_small_set_solves_a_taught_sum2_problem(small_model, tokenizer):
    model, report, taught = small_model
    assert report.lessons == {"sum2-solution": 6, "sum3-hint1": 2}
    assert report.final_loss < 0.1 < report.first_loss
    result = evaluate_unassisted(model, tokenizer, taught[:2], k=1, temperature=0, keep_texts=True)
    assert result.accuracy == 1.0, result.samples
    text = result.samples[taught[0].problem_id][0]
    assert text == T.OPENING + taught[0].reference_solution  # EOS is special: decoded away
    assert 0 < result.restricted_vocab < 200  # the exact taught-ids path


def test_teaching_is_reproducible(tokenizer):
    teaching = T.TeachingSet((SumProblem((2, 3)), SumProblem((4, 7))), (SumProblem((5, 1, 7)),))
    first, _ = T.teach_base_model(tokenizer, teaching, seed=4, hidden_size=64, steps=30, batch_size=2)
    second, _ = T.teach_base_model(tokenizer, teaching, seed=4, hidden_size=64, steps=30, batch_size=2)
    other, _ = T.teach_base_model(tokenizer, teaching, seed=5, hidden_size=64, steps=30, batch_size=2)
    a, b, c = (m.state_dict() for m in (first, second, other))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)
    assert not torch.are_deterministic_algorithms_enabled()  # the caller's setting is restored


def test_evaluator_matches_the_full_vocabulary_model(small_model, tokenizer):
    """The taught-ids shortcut decodes what the full model decodes: greedy equals HF generate, and a model whose
    untaught rows are no longer zero takes the full path and still agrees."""
    model, _, taught = small_model
    p = taught[1]
    prompt = torch.tensor([prompt_ids(tokenizer, p)])
    full = model.generate(prompt, do_sample=False, max_new_tokens=40, eos_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(full[0, prompt.shape[1] :], skip_special_tokens=True)
    fast = evaluate_unassisted(model, tokenizer, [p], k=1, temperature=0, max_new_tokens=40, keep_texts=True)
    assert fast.samples[p.problem_id] == [expected]
    state = torch.random.get_rng_state()
    sampled = evaluate_unassisted(model, tokenizer, [p], k=4, temperature=0.6, seed=3, keep_texts=True)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    again = evaluate_unassisted(model, tokenizer, [p], k=4, temperature=0.6, seed=3, keep_texts=True)
    assert again.samples == sampled.samples and again.pass_rates == sampled.pass_rates
    dense = copy.deepcopy(model)
    with torch.no_grad():  # every untaught row a tiny nonzero value: no exact shortcut, the full softmax
        weight = dense.get_output_embeddings().weight
        weight[weight.eq(0).all(dim=1)] = 1e-8
    slow = evaluate_unassisted(dense, tokenizer, [p], k=1, temperature=0, max_new_tokens=40, keep_texts=True)
    assert slow.restricted_vocab == 0 and slow.samples[p.problem_id] == [expected]


def test_saved_model_loads_through_transformers_and_verl(small_model, tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM
    from verl.workers.config import HFModelConfig

    model, _, taught = small_model
    folder = T.save_base_model(model, tokenizer, tmp_path / "base")
    loaded = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    ids = torch.tensor([prompt_ids(tokenizer, taught[0])])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert loaded.dtype == torch.float32 and loaded.generation_config.eos_token_id == tokenizer.eos_token_id
    config = HFModelConfig(path=str(folder))
    assert config.hf_config.model_type == "qwen2" and config.tokenizer.eos_token_id == tokenizer.eos_token_id
