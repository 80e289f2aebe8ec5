"""Reference solutions by source, and references harvested from the policy's own verified solutions (pure: no verl).

A hint is only as good as its reference solution, and a problem without a usable one is never hinted. Rows carry a
reference in ``extra_info.reference_solution`` (source ``dataset``, or ``extra_info.reference_source``: ``backfill``
/ ``corpus`` for references written by ``verl-pdai backfill-references``). When a problem has none, the trainer
*harvests* one: a session that solved it unassisted, verified as the reward grades, gives its concise solution.

Rules (tests pin them):

* **What is harvested.** The part after the last ``</think>`` (thinking models write the concise solution there); a
  response without ``</think>`` is taken whole, unless its thinking was opened and never closed or the reward's
  thinking mode is ``required`` (the reward read nothing then). Stripped; at most ``max_bytes_per_problem`` bytes
  (UTF-8).
* **Usable or nothing.** The candidate must split into at least ``min_steps`` steps (the hint builder's segmenter,
  which drops the last step: it states the answer) and give a usable hint set through the same builder and
  answer-leak guard as a data-set reference (:func:`verl_pdai.core.hints.build_hints`). A reference whose every level
  leaks the answer is never stored.
* **One per problem, the shortest.** A problem keeps at most one harvested reference; a new one replaces it only
  when strictly shorter in bytes. Why the shortest: hints reveal whole steps and are capped by ``hint_max_chars``,
  so the tersest verified solution gives the most steps per hint token (and the least room for the model's
  detours). The 3-step floor keeps "the answer is 5" style texts out.
* **Bounded.** ``max_bytes`` bounds the whole bank (problem ids + texts, UTF-8): past it the references stored
  longest ago are dropped first. The bank is saved and restored with the trainer's ``pdai_state.json``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from verl_pdai.core.config_values import ConfigError, as_count, dataclass_from_mapping
from verl_pdai.core.extraction import split_thinking
from verl_pdai.core.hints import HintSet

__all__ = [
    "BACKFILL",
    "CORPUS",
    "DATASET",
    "HARVESTED",
    "ROW_SOURCES",
    "SOURCES",
    "HarvestConfig",
    "ReferenceBank",
    "concise_solution",
    "harvest_reference",
    "row_source",
]

DATASET = "dataset"  # the data set's own reference
HARVESTED = "harvested"  # the policy's own verified solution, kept by the trainer
BACKFILL = "backfill"  # written offline by `verl-pdai backfill-references` (a model's verified solution)
CORPUS = "corpus"  # written offline from a corpus of worked solutions
SOURCES = (DATASET, HARVESTED, BACKFILL, CORPUS)
ROW_SOURCES = (DATASET, BACKFILL, CORPUS)  # what a data row's extra_info.reference_source may say

STATE_VERSION = 1

# why a candidate was not harvested (harvest_reference's reason codes)
THINKING_OPEN = "thinking_open"
EMPTY = "empty"
TOO_LONG = "too_long"
TOO_FEW_STEPS = "too_few_steps"
UNUSABLE = "unusable"
ANSWER_NOT_LAST = "answer_not_last"


def row_source(value: object) -> str:
    """The source a data row names for its reference (``extra_info.reference_source``); ``dataset`` when it names
    none or one this version does not know."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in ROW_SOURCES else DATASET


@dataclass(frozen=True)
class HarvestConfig:
    """``pdai.harvest``: whether the trainer harvests references, and their bounds (see the module docstring)."""

    enabled: bool = True
    min_steps: int = 3  # steps the harvested text splits into (the last, stating the answer, is never shown)
    max_bytes_per_problem: int = 8192  # UTF-8 bytes of one reference
    max_bytes: int = 64 << 20  # the whole bank: problem ids + texts

    def __post_init__(self) -> None:
        for name in ("min_steps", "max_bytes_per_problem", "max_bytes"):
            try:
                as_count(f"pdai.harvest.{name}", getattr(self, name))
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if self.min_steps < 2:
            raise ConfigError(
                f"pdai.harvest.min_steps={self.min_steps}: must be >= 2 (the last step states the answer and is "
                "never shown, so a 1-step reference gives no hint)"
            )
        if self.max_bytes_per_problem < 1:
            raise ConfigError("pdai.harvest.max_bytes_per_problem must be >= 1")
        if self.max_bytes < self.max_bytes_per_problem:
            raise ConfigError(
                f"pdai.harvest.max_bytes={self.max_bytes} must be >= max_bytes_per_problem={self.max_bytes_per_problem}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, object] | None) -> HarvestConfig:
        return dataclass_from_mapping(cls, values, "pdai.harvest")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- harvesting


def concise_solution(response: str, thinking: str = "auto") -> str | None:
    """The concise solution of a response: after the last ``</think>``; the whole text when it never thinks; None
    when its thinking was opened and not closed, or ``thinking="required"`` and it was not closed."""
    split = split_thinking(response)
    if not split.closed and (split.opened or thinking == "required"):
        return None
    text = (split.answer_text if split.closed else response).strip()
    return text or None


def answer_is_last(text: str) -> bool:
    """The boxed answer is in the last paragraph. A hint never shows a reference's last step, which is meant to
    state the answer; a verification paragraph after the answer, or a response cut off after it, would leave the
    answer step in the hint."""
    at = text.rfind("\\boxed")
    return at >= 0 and "\n\n" not in text[at:].strip()


def harvest_reference(
    response: str,
    hints: Callable[[str], HintSet],
    config: HarvestConfig,
    thinking: str = "auto",
) -> tuple[str | None, str]:
    """(reference, "") for a verified unassisted response that makes a usable reference, else (None, reason).

    ``hints`` builds the hint set of a reference exactly as the rollout would (same fractions, prefix, boundary,
    ``hint_max_chars``, ground truth): the answer-leak guard of data-set references applies unchanged.
    """
    text = concise_solution(response, thinking)
    if text is None:
        return None, THINKING_OPEN if split_thinking(response).opened or thinking == "required" else EMPTY
    if len(text.encode("utf-8")) > config.max_bytes_per_problem:
        return None, TOO_LONG
    if not answer_is_last(text):
        return None, ANSWER_NOT_LAST
    hint_set = hints(text)
    total = hint_set.hints[0].total_steps if hint_set.hints else 0
    if total < config.min_steps:
        return None, TOO_FEW_STEPS
    if not hint_set.usable:
        return None, UNUSABLE
    return text, ""


# ----------------------------------------------------------------------------------------------- the bank


def _size(problem_id: str, text: str) -> int:
    return len(problem_id.encode("utf-8")) + len(text.encode("utf-8"))


def _zero_counters() -> dict[str, int]:
    return {"n_added": 0, "n_replaced": 0, "n_evicted": 0}


class ReferenceBank:
    """At most one harvested reference per problem, the shortest, within a byte bound (module docstring).

    Kept in the order stored (a replacement moves to the end); reads do not change it. Not thread-safe: one
    instance lives in the trainer.
    """

    def __init__(self, config: HarvestConfig | None = None) -> None:
        self.config = config if config is not None else HarvestConfig()
        self._refs: OrderedDict[str, tuple[str, int]] = OrderedDict()  # problem id -> (text, step stored)
        self._bytes = 0
        self._counters = _zero_counters()

    def __len__(self) -> int:
        return len(self._refs)

    def __contains__(self, problem_id: object) -> bool:
        return problem_id in self._refs

    @property
    def bytes(self) -> int:
        """UTF-8 bytes of the stored problem ids and texts."""
        return self._bytes

    def get(self, problem_id: str) -> str | None:
        entry = self._refs.get(problem_id)
        return entry[0] if entry is not None else None

    def offer(self, problem_id: str, text: str, step: int = 0) -> str:
        """Store ``text`` as ``problem_id``'s reference if it is the shortest so far and fits the per-problem bound.

        Returns ``added``, ``replaced``, ``kept`` (the stored one is as short or shorter) or ``too_long``. The
        caller has checked that the text is usable (:func:`harvest_reference`)."""
        if not isinstance(problem_id, str) or not problem_id or not isinstance(text, str) or not text:
            raise ValueError("offer needs a non-empty problem id and a non-empty reference text")
        size = len(text.encode("utf-8"))
        if size > self.config.max_bytes_per_problem:
            return "too_long"
        old = self._refs.get(problem_id)
        if old is not None and len(old[0].encode("utf-8")) <= size:
            return "kept"
        if old is not None:
            self._bytes -= _size(problem_id, old[0])
            del self._refs[problem_id]
        self._refs[problem_id] = (text, int(step))
        self._bytes += _size(problem_id, text)
        self._counters["n_replaced" if old is not None else "n_added"] += 1
        self._evict()
        return "replaced" if old is not None else "added"

    def _evict(self) -> None:
        while self._bytes > self.config.max_bytes and self._refs:
            pid, (text, _) = self._refs.popitem(last=False)
            self._bytes -= _size(pid, text)
            self._counters["n_evicted"] += 1

    def stats(self) -> dict[str, float]:
        c = self._counters
        return {
            "references": float(len(self._refs)),
            "bytes": float(self._bytes),
            "added": float(c["n_added"]),
            "replaced": float(c["n_replaced"]),
            "evicted": float(c["n_evicted"]),
        }

    # ---------------------------------------------------------------- persistence

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready: ``references`` lists ``[problem_id, text, step]`` in the order stored (oldest first)."""
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "counters": dict(self._counters),
            "references": [[pid, text, step] for pid, (text, step) in self._refs.items()],
        }

    def load_state_dict(self, state: Mapping[str, Any], keep_config: bool = False) -> None:
        """Restore a ``state_dict`` snapshot; malformed state raises ValueError and changes nothing.

        With ``keep_config=True`` (a resumed run whose recipe may have changed) this bank's bounds apply: longer
        references are dropped, then the oldest beyond ``max_bytes`` (both counted as evicted)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"reference bank state must be a mapping, got {type(state).__name__}")
        missing = sorted({"version", "config", "counters", "references"} - set(state))
        if missing:
            raise ValueError(f"reference bank state is missing keys {missing}")
        if state["version"] != STATE_VERSION:
            raise ValueError(f"unsupported reference bank state version {state['version']!r}")
        saved = state["config"]
        if not isinstance(saved, Mapping):
            raise ValueError("reference bank state config must be a mapping")
        config = self.config if keep_config else HarvestConfig.from_mapping(saved)
        counters = self._read_counters(state["counters"])
        refs: OrderedDict[str, tuple[str, int]] = OrderedDict()
        for i, row in enumerate(self._rows(state["references"])):
            what = f"reference bank state references[{i}]"
            if not (isinstance(row, list | tuple) and len(row) == 3):
                raise ValueError(f"{what} must be [problem_id, text, step]")
            pid, text, step = row
            if not isinstance(pid, str) or not pid or not isinstance(text, str) or not text:
                raise ValueError(f"{what}: problem id and text must be non-empty strings")
            if pid in refs:
                raise ValueError(f"{what}: problem {pid!r} appears twice")
            if len(text.encode("utf-8")) > config.max_bytes_per_problem:
                if not keep_config:
                    raise ValueError(f"{what}: reference of {pid!r} exceeds max_bytes_per_problem")
                counters["n_evicted"] += 1
                continue
            refs[pid] = (text, as_count(f"{what} step", step))
        total = sum(_size(pid, text) for pid, (text, _) in refs.items())
        if total > config.max_bytes and not keep_config:
            raise ValueError(f"reference bank state holds {total} bytes, more than max_bytes {config.max_bytes}")
        self.config, self._refs, self._bytes, self._counters = config, refs, total, counters
        self._evict()

    @staticmethod
    def _read_counters(raw: object) -> dict[str, int]:
        if not isinstance(raw, Mapping):
            raise ValueError("reference bank state counters must be a mapping")
        counters = _zero_counters()
        unknown = sorted(str(k) for k in raw if k not in counters)
        if unknown:
            raise ValueError(f"reference bank state has unknown counters {unknown}")
        for key in counters:
            counters[key] = as_count(f"reference bank counter {key}", raw.get(key, 0))
        return counters

    @staticmethod
    def _rows(raw: object) -> Iterable[Any]:
        if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Iterable):
            raise ValueError("reference bank state references must be a list of [problem_id, text, step] rows")
        return raw
