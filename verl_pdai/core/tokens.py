"""Token <-> character bookkeeping for scoring, without re-tokenizing model output.

The reward is placed on tokens (the step ends), but scored on text. We decode the response once, token by
token, and keep for every token the character offset where its text ends, so a character position found by
the text scorer maps back to the exact token that produced it. Hint tokens injected by the rollout are cut
out before decoding: only model-written spans become text.

For byte-level BPE tokenizers (GPT-2, Qwen2/2.5, Llama-3) the per-token bytes are exact and an incremental
UTF-8 decoder gives exact character offsets in one linear pass; other tokenizers fall back to decoding
token by token (slower, same contract). Nothing here imports verl.
"""

from __future__ import annotations

import bisect
import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

Span = tuple[int, int]


def normalize_spans(spans: object, length: int) -> list[Span]:
    """Validate and clip ``[start, end)`` token spans to ``[0, length)``; sort and merge overlaps.

    Spans come from a rollout's extra fields, so malformed entries (wrong shape, negative, reversed) are
    dropped rather than trusted. Returns disjoint sorted spans.
    """
    clean: list[Span] = []
    if spans is None:
        return clean
    try:
        items = list(spans)  # type: ignore[call-overload]
    except TypeError:
        return clean
    for item in items:
        try:
            start, end = int(item[0]), int(item[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        start, end = max(0, start), min(length, end)
        if end > start:
            clean.append((start, end))
    clean.sort()
    merged: list[Span] = []
    for start, end in clean:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def complement_spans(excluded: Sequence[Span], length: int) -> list[Span]:
    """The parts of ``[0, length)`` not covered by the disjoint sorted ``excluded`` spans."""
    kept: list[Span] = []
    cursor = 0
    for start, end in excluded:
        if start > cursor:
            kept.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < length:
        kept.append((cursor, length))
    return kept


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of the GPT-2 byte-to-unicode table used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    byte_values = printable[:]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in byte_values:
            byte_values.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(byte_values, chars, strict=True)}


@dataclass(frozen=True)
class DecodedSpan:
    """Text of the tokens ``[token_start, token_end)`` and, per token, the character offset where it ends."""

    token_start: int
    token_end: int
    text: str
    char_ends: list[int]


class TokenTextMapper:
    """Decodes token ids to text with per-token character offsets for one tokenizer.

    The tokenizer needs ``convert_ids_to_tokens`` and ``decode`` (any Hugging Face tokenizer). Special tokens
    decode to nothing, as with ``skip_special_tokens=True`` in verl's reward managers.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._special_ids = frozenset(getattr(tokenizer, "all_special_ids", []) or [])
        added = getattr(tokenizer, "added_tokens_decoder", None) or {}
        self._added_text = {int(i): str(getattr(t, "content", t)) for i, t in added.items()}
        self._token_bytes: list[bytes] | None = None
        self._token_lengths: np.ndarray | None = None
        self.byte_level = self._check_byte_level()
        if self.byte_level:
            self._build_byte_table()
            self.byte_level = self._check_byte_level()  # the table path must reproduce decode() as well

    def _build_byte_table(self) -> None:
        """The bytes of every vocabulary entry, once: decoding a response is then one join (~10x faster)."""
        table = _byte_decoder()
        size = max(len(self.tokenizer), max(self._special_ids, default=-1) + 1)
        token_bytes = []
        for token_id, piece in enumerate(self.tokenizer.convert_ids_to_tokens(list(range(size)))):
            if token_id in self._special_ids or piece is None:
                token_bytes.append(b"")
            elif token_id in self._added_text:
                token_bytes.append(self._added_text[token_id].encode("utf-8"))
            else:
                token_bytes.append(self._piece_bytes(piece, table))
        self._token_bytes = token_bytes
        self._token_lengths = np.fromiter((len(b) for b in token_bytes), dtype=np.int64, count=len(token_bytes))

    @staticmethod
    def _piece_bytes(piece: str, table: dict[str, int]) -> bytes:
        return bytes(table[c] for c in piece) if all(c in table for c in piece) else piece.encode("utf-8")

    def _check_byte_level(self) -> bool:
        """True when per-token byte decoding reproduces ``tokenizer.decode`` on a probe text."""
        probe = "Step 1: $3 \\cdot 4 = 12$, so x = 12.\n\nÜber 你好 🙂 \\boxed{\\frac{1}{2}}"
        try:
            ids = self.tokenizer.encode(probe, add_special_tokens=False)
            reference = self.tokenizer.decode(ids, skip_special_tokens=True)
            return self._decode_byte_level(list(ids))[0] == reference
        except Exception:  # any tokenizer that does not fit the byte-level contract uses the slow path
            return False

    def _decode_byte_level(self, ids: list[int]) -> tuple[str, list[int]]:
        """Fast path: join the tokens' bytes; a character ends at a byte not followed by a continuation byte."""
        if self._token_bytes is None or not ids:
            return self._decode_incremental(ids)
        try:
            data = b"".join([self._token_bytes[i] for i in ids])
            text = data.decode("utf-8")  # strict: invalid UTF-8 (a cut multi-byte char) takes the exact slow path
        except (IndexError, UnicodeDecodeError):
            return self._decode_incremental(ids)
        byte_ends = np.cumsum(self._token_lengths[np.asarray(ids, dtype=np.int64)])
        if len(text) == len(data):  # ASCII: characters are bytes
            return text, byte_ends.tolist()
        raw = np.frombuffer(data, dtype=np.uint8)
        char_done = np.ones(len(raw), dtype=np.int64)
        char_done[:-1] = (raw[1:] & 0xC0) != 0x80
        chars_before = np.concatenate([[0], np.cumsum(char_done)])
        return text, chars_before[byte_ends].tolist()

    def _decode_incremental(self, ids: list[int]) -> tuple[str, list[int]]:
        """Exact for any byte sequence: an incremental UTF-8 decoder fed token by token."""
        table = _byte_decoder()
        pieces = self.tokenizer.convert_ids_to_tokens(ids)
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        out: list[str] = []
        char_ends: list[int] = []
        length = 0
        for token_id, piece in zip(ids, pieces, strict=True):
            if token_id in self._special_ids or piece is None:
                char_ends.append(length)
                continue
            if token_id in self._added_text:
                chunk = decoder.decode(b"", final=True) + self._added_text[token_id]
                decoder.reset()
            else:
                chunk = decoder.decode(self._piece_bytes(piece, table))
            out.append(chunk)
            length += len(chunk)
            char_ends.append(length)
        tail = decoder.decode(b"", final=True)
        if tail:
            out.append(tail)
            length += len(tail)
            if char_ends:
                char_ends[-1] = length
        return "".join(out), char_ends

    def _decode_slow(self, ids: list[int]) -> tuple[str, list[int]]:
        # Decoding growing prefixes is quadratic; decoding token by token is linear and exact for
        # tokenizers whose tokens map to whole characters (SentencePiece-style), which is when we get here.
        out: list[str] = []
        char_ends: list[int] = []
        length = 0
        for token_id in ids:
            chunk = self.tokenizer.decode([token_id], skip_special_tokens=True)
            out.append(chunk)
            length += len(chunk)
            char_ends.append(length)
        return "".join(out), char_ends

    def decode(self, ids: Sequence[int], token_start: int = 0) -> DecodedSpan:
        """Decode ``ids`` (the tokens starting at response position ``token_start``)."""
        id_list = [int(i) for i in ids]
        text, char_ends = self._decode_byte_level(id_list) if self.byte_level else self._decode_slow(id_list)
        return DecodedSpan(token_start, token_start + len(id_list), text, char_ends)

    def decode_model_written(self, ids: Sequence[int], hint_spans: object = None) -> list[DecodedSpan]:
        """Decode the model-written parts of a response: every token outside the (validated) hint spans."""
        excluded = normalize_spans(hint_spans, len(ids))
        return [self.decode(ids[start:end], start) for start, end in complement_spans(excluded, len(ids))]


def char_ends_to_token_ends(spans: Sequence[DecodedSpan], char_ends: Sequence[int]) -> list[int]:
    """Map character end offsets in ``"".join(span.text for span in spans)`` to response token indices.

    A character end ``e`` maps to the last token of the step: the first token whose text reaches ``e``.
    """
    offsets: list[int] = []
    token_of: list[int] = []
    base = 0
    for span in spans:
        for position, end in enumerate(span.char_ends):
            offsets.append(base + end)
            token_of.append(span.token_start + position)
        base += len(span.text)
    if not offsets:
        return [0 for _ in char_ends]
    result = []
    for end in char_ends:
        index = min(bisect.bisect_left(offsets, end), len(offsets) - 1)
        result.append(token_of[index])
    return result
