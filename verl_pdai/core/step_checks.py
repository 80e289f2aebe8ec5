"""Rule-based checks on reasoning steps: arithmetic claims, key quantities, repeated steps.

The checks live in cohesive modules and are re-exported here, so callers import them all from this module:

* :mod:`verl_pdai.core.arithmetic`: the safe exact evaluator, :func:`evaluate_arithmetic`;
* :mod:`verl_pdai.core.claims`: :class:`ArithmeticClaim` and :func:`find_arithmetic_claims`;
* :mod:`verl_pdai.core.quantities`: :func:`key_quantities` and :func:`quantities_in`;
* this module: repetition detection, :func:`repeated_steps`.

The input is untrusted model output, so everything is bounded: scans are linear (regular expressions whose
alternatives cannot backtrack over more than a few characters), numbers are capped at about 10,000 digits,
nesting at MAX_DEPTH, and the number of relations, numerals and candidates looked at per call is capped.
Nothing raises on any string; what cannot be decided within the bounds comes back as ``None``. Arithmetic is
exact (``Fraction``) and never uses eval. All these modules use the standard library only.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from verl_pdai.core.arithmetic import (
    MAX_BINOM_N,
    MAX_BITS,
    MAX_DEPTH,
    MAX_EXPRESSION_CHARS,
    MAX_FACTORIAL,
    MAX_LITERAL_CHARS,
    MAX_ROOT_INDEX,
    Value,
    evaluate_arithmetic,
)
from verl_pdai.core.claims import MAX_RELATION_RUNS, ArithmeticClaim, find_arithmetic_claims
from verl_pdai.core.quantities import MAX_KEY_BITS, MAX_NUMERALS, MAX_QUANTITIES, key_quantities, quantities_in

__all__ = [
    "ArithmeticClaim",
    "evaluate_arithmetic",
    "find_arithmetic_claims",
    "key_quantities",
    "quantities_in",
    "repeated_steps",
    # the bounds of the parts, re-exported with the functions (tests read them from here)
    "MAX_BINOM_N",
    "MAX_BITS",
    "MAX_DEPTH",
    "MAX_EXPRESSION_CHARS",
    "MAX_FACTORIAL",
    "MAX_KEY_BITS",
    "MAX_LITERAL_CHARS",
    "MAX_NUMERALS",
    "MAX_QUANTITIES",
    "MAX_RELATION_RUNS",
    "MAX_ROOT_INDEX",
    "NEAR_DUPLICATE_JACCARD",
    "Value",
]

NEAR_DUPLICATE_JACCARD = 0.9


# ------------------------------------------------------------------------------------------- repetition

_SKETCH = 6  # smallest shingle hashes indexed per step; J >= 0.9 pairs share one with prob ~1 - 0.1^6
_BUCKET_CAP = 16
_CANDIDATE_CAP = 16


def repeated_steps(step_texts: Sequence[str], *, min_chars: int = 20) -> list[bool]:
    """True for a step that repeats an earlier one: equal up to whitespace and case, or a near duplicate
    (Jaccard >= NEAR_DUPLICATE_JACCARD of word 3-gram shingles). Steps shorter than ``min_chars`` (after
    whitespace normalisation) are never marked, nor matched against.

    Cost is linear in the total length: exact repeats are found by hashing the normalised text, near
    duplicates through an index of each step's few smallest shingle hashes (a bottom-k sketch), and each
    step is verified against at most a fixed number of candidates.
    """
    if min_chars < 0:
        raise ValueError(f"min_chars must be >= 0, got {min_chars}")
    result: list[bool] = []
    seen: set[str] = set()
    word_ids: dict[str, int] = {}
    shingle_sets: list[frozenset[tuple[int, ...]]] = []
    index: dict[int, list[int]] = {}
    for step in step_texts:
        words = step.casefold().split() if isinstance(step, str) else []
        normalised = " ".join(words)
        if len(normalised) < max(min_chars, 1):
            result.append(False)
            continue
        if normalised in seen:
            result.append(True)
            continue
        seen.add(normalised)
        # ids in order of first appearance: deterministic, unlike str hashes, so the output is too
        ids = [word_ids.setdefault(word, len(word_ids)) for word in words]
        shingles = frozenset(zip(ids, ids[1:], ids[2:], strict=False)) if len(ids) >= 3 else frozenset([tuple(ids)])
        sketch = heapq.nsmallest(_SKETCH, set(map(hash, shingles)))
        candidates: list[int] = []
        for h in sketch:
            for other in index.get(h, ()):
                if other not in candidates and len(candidates) < _CANDIDATE_CAP:
                    candidates.append(other)
        result.append(any(_jaccard(shingles, shingle_sets[c]) >= NEAR_DUPLICATE_JACCARD for c in candidates))
        me = len(shingle_sets)
        shingle_sets.append(shingles)
        for h in sketch:
            bucket = index.setdefault(h, [])
            if len(bucket) < _BUCKET_CAP:
                bucket.append(me)
    return result


def _jaccard(a: frozenset[tuple[int, ...]], b: frozenset[tuple[int, ...]]) -> float:
    if min(len(a), len(b)) < NEAR_DUPLICATE_JACCARD * max(len(a), len(b)):
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)
