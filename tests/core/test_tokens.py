"""Token/character bookkeeping on the real Qwen2.5 tokenizer: exact text, exact token ends, hint cut-outs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_pdai.core.tokens import (
    TokenTextMapper,
    char_ends_to_token_ends,
    complement_spans,
    normalize_spans,
)

TEXTS = [
    "Step 1: $3 \\cdot 4 = 12$.\n\nStep 2: so \\boxed{12}.",
    "<think>\nÜber straße, 你好世界 🙂🙂 — ∑ᵢ xᵢ² ≥ 0\n</think>\n\n\\boxed{\\frac{1}{2}}",
    "  leading spaces\r\n\r\nand CRLF\t tabs",
    "",
]


@pytest.fixture(scope="module")
def mapper(tokenizer):
    return TokenTextMapper(tokenizer)


def test_qwen_tokenizer_takes_the_exact_byte_level_path(mapper):
    assert mapper.byte_level


@pytest.mark.parametrize("text", TEXTS)
def test_decoded_text_matches_tokenizer_decode(mapper, tokenizer, text):
    ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
    span = mapper.decode(ids)
    assert span.text == tokenizer.decode(ids, skip_special_tokens=True)
    assert len(span.char_ends) == len(ids) and span.char_ends == sorted(span.char_ends)
    # every token's char end is where the decode of the prefix through that token ends
    for i in range(0, len(ids), 3):
        assert span.char_ends[i] == len(tokenizer.decode(ids[: i + 1], skip_special_tokens=True))


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_decode_matches_on_arbitrary_text(tokenizer, text):
    mapper = TokenTextMapper(tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert mapper.decode(ids).text == tokenizer.decode(ids, skip_special_tokens=True)


def test_slow_path_gives_the_same_contract(tokenizer):
    slow = TokenTextMapper(tokenizer)
    slow.byte_level = False
    ids = tokenizer.encode(TEXTS[0], add_special_tokens=False)
    span = slow.decode(ids)
    assert span.text == tokenizer.decode(ids) and span.char_ends[-1] == len(span.text)


def test_hint_spans_are_cut_out_and_ends_map_to_model_tokens(mapper, tokenizer):
    before = tokenizer.encode("First step.\n\n", add_special_tokens=False)
    hint = tokenizer.encode("HINT TEXT\n\n", add_special_tokens=False)
    after = tokenizer.encode("Second step.", add_special_tokens=False)
    ids = before + hint + after
    spans = mapper.decode_model_written(ids, [[len(before), len(before) + len(hint)]])
    assert [s.text for s in spans] == ["First step.\n\n", "Second step."]
    assert [(s.token_start, s.token_end) for s in spans] == [(0, len(before)), (len(before) + len(hint), len(ids))]
    joined = "".join(s.text for s in spans)
    ends = char_ends_to_token_ends(spans, [len("First step."), len(joined)])
    assert ends == [len(before) - 1 - (1 if tokenizer.decode(before[-1:]) == "\n\n" else 0), len(ids) - 1]


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        (None, []),
        ("garbage", []),
        ([[2, 5], [4, 8]], [(2, 8)]),
        ([[9, 3]], []),
        ([[-5, 2], [8, 100]], [(0, 2), (8, 10)]),
        ([["a", 1], [1]], []),
        ([(3, 4), (0, 1)], [(0, 1), (3, 4)]),
    ],
)
def test_normalize_spans_rejects_malformed_and_clips(spans, expected):
    assert normalize_spans(spans, 10) == expected


def test_complement_spans():
    assert complement_spans([(2, 4), (6, 7)], 10) == [(0, 2), (4, 6), (7, 10)]
    assert complement_spans([], 3) == [(0, 3)]
    assert complement_spans([(0, 3)], 3) == []


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=0, max_value=5))
def test_fast_table_path_equals_the_incremental_path(tokenizer, text, cut):
    """Including token lists cut inside a multi-byte character (the fast path falls back there)."""
    mapper = TokenTextMapper(tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=False)
    ids = ids[: max(0, len(ids) - cut)] + [tokenizer.eos_token_id]
    assert mapper._decode_byte_level(ids) == mapper._decode_incremental(ids)


def test_cut_multibyte_character_is_decoded_exactly(tokenizer):
    ids = tokenizer.encode("🙂", add_special_tokens=False)
    mapper = TokenTextMapper(tokenizer)
    if len(ids) > 1:  # an emoji split over byte tokens: the first token alone is invalid UTF-8
        text, ends = mapper._decode_byte_level(ids[:1])
        assert (text, ends) == mapper._decode_incremental(ids[:1])
    assert mapper.decode(ids).text == "🙂"
