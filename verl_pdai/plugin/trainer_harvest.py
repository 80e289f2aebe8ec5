"""Harvested references in the trainer: which problems lack a usable reference, what a step's verified unassisted
solutions add to the :class:`~verl_pdai.core.references.ReferenceBank`, and the coverage metrics.

:class:`ReferenceHarvester` belongs to :class:`~verl_pdai.plugin.trainer.PdaiTrainerMixin`. Before generation the
trainer hands each training row its problem's harvested reference (``pdai_harvested_reference``, "" when none);
the agent loop uses it only when the row's own reference gives no usable hint. After scoring, ``learn`` harvests
(see ``docs/trainer.md``, "Harvested references"):

* candidates: unassisted sessions (as the difficulty store counts them) whose final answer the reward's checker
  graded right (``acc``), of rows the stepwise checker grades, of problems without a usable reference of their own;
* per problem and step, the ``CANDIDATES_PER_PROBLEM`` shortest responses (in tokens) are decoded, only their last
  ``max_bytes_per_problem + 32`` tokens (a concise part within the byte bound lies there), as the reward decodes;
* each goes through :func:`~verl_pdai.core.references.harvest_reference` with the rollout's hint settings; the
  shortest accepted one is offered to the bank (which keeps the shortest per problem).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import transfer_queue as tq
from transfer_queue import KVBatchMeta

from verl_pdai.core.extraction import split_thinking
from verl_pdai.core.hints import HintSet, build_hints
from verl_pdai.core.references import (
    HARVESTED,
    SOURCES,
    ReferenceBank,
    concise_solution,
    harvest_reference,
)
from verl_pdai.plugin.trainer_rows import _column, _Rows
from verl_pdai.plugin.trainer_settings import PdaiSettings

__all__ = ["CANDIDATES_PER_PROBLEM", "ReferenceHarvester"]

CANDIDATES_PER_PROBLEM = 4  # responses decoded per problem and step: bounds the trainer's decode work
_TAIL_MARGIN = 32  # tokens beyond max_bytes_per_problem: special tokens (EOS) and "</think>" itself
_MEMO_LIMIT = 200_000  # problems whose own reference's usability is remembered (cleared when full)


class ReferenceHarvester:
    """The trainer's harvested references: the bank, what rows get from it, what a step adds to it."""

    def __init__(self, settings: PdaiSettings) -> None:
        self.settings = settings
        self.bank = ReferenceBank(settings.harvest)
        # problem id -> (hash of its row reference and ground truth, usable): built once per problem, not per step
        self._row_usable: dict[str, tuple[int, bool]] = {}

    @property
    def active(self) -> bool:
        """Harvesting needs the reward's own checker settings (the grading and the thinking mode)."""
        return self.settings.harvest.enabled and self.settings.reward is not None

    def reference_for(self, problem_id: str) -> str:
        """What the trainer hands a row: the problem's harvested reference, or "" (always "" with harvesting off:
        a bank restored from an earlier run is kept in the state file, not used)."""
        return (self.bank.get(problem_id) or "") if self.active else ""

    def hints(self, reference: str, ground_truth: Any) -> HintSet:
        """The hint set of a reference exactly as the agent loop builds it."""
        rollout = self.settings.rollout
        return build_hints(
            reference,
            ground_truth,
            self.settings.policy.fractions,
            prefix=rollout.hint_prefix,
            suffix=rollout.boundary,
            max_chars=rollout.hint_max_chars,
        )

    def row_reference_usable(self, problem_id: str, reference: str, ground_truth: Any) -> bool:
        """Whether a row's own reference gives a usable hint set (remembered per problem)."""
        if not reference:
            return False
        key = hash((reference, repr(ground_truth)))
        known = self._row_usable.get(problem_id)
        if known is not None and known[0] == key:
            return known[1]
        if len(self._row_usable) >= _MEMO_LIMIT:
            self._row_usable.clear()
        usable = self.hints(reference, ground_truth).usable
        self._row_usable[problem_id] = (key, usable)
        return usable

    # ------------------------------------------------------------------ after scoring

    def source_of(self, rows: _Rows, i: int) -> str:
        """The source of the reference the rollout had for row ``i``'s hints ("" none usable): the row's own when
        usable, else the harvested one it was handed."""
        text, source = rows.references[i]
        if self.row_reference_usable(rows.problem_ids[i], text, rows.ground_truths[i]):
            return source
        return HARVESTED if rows.harvested[i] else ""

    def coverage_metrics(self, rows: _Rows, real: Sequence[int], metrics: dict) -> dict[str, str]:
        """``pdai/reference/coverage`` (share of the batch's problems with a usable reference) and
        ``coverage_<source>``; returns each problem's source for the ledger."""
        sources: dict[str, str] = {}
        for i in real:
            pid = rows.problem_ids[i]
            if pid not in sources:
                sources[pid] = self.source_of(rows, i)
        if sources:
            values = list(sources.values())
            metrics["pdai/reference/coverage"] = sum(bool(s) for s in values) / len(values)
            for source in SOURCES:
                metrics[f"pdai/reference/coverage_{source}"] = values.count(source) / len(values)
        return sources

    def learn(
        self,
        rows: _Rows,
        unassisted: Sequence[int],
        response_mask: torch.Tensor,
        batch: KVBatchMeta,
        tokenizer: Any,
        step: int,
        metrics: dict,
    ) -> None:
        """Harvest this step's verified unassisted solutions of problems without a usable reference."""
        metrics.update({f"pdai/harvest/{k}": v for k, v in self.bank.stats().items()})
        if not self.active or tokenizer is None:
            return
        reward = self.settings.reward
        assert reward is not None
        by_problem: dict[str, list[int]] = {}
        for i in unassisted:
            if not rows.verified(i) or not reward.routing.uses_stepwise(rows.prior_args[i]["data_source"]):
                continue
            text, _ = rows.references[i]
            if self.row_reference_usable(rows.problem_ids[i], text, rows.ground_truths[i]):
                continue  # the row's own reference comes first: nothing to harvest
            by_problem.setdefault(rows.problem_ids[i], []).append(i)
        lengths = response_mask.sum(dim=-1).tolist()
        chosen = {
            pid: sorted(idx, key=lambda i: lengths[i])[:CANDIDATES_PER_PROBLEM] for pid, idx in by_problem.items()
        }
        texts = self._decode(batch, [i for idx in chosen.values() for i in idx], tokenizer)
        counts = {"candidates": 0, "added": 0, "replaced": 0, "rejected": 0}
        for pid, idx in chosen.items():
            counts["candidates"] += len(idx)
            self._harvest_problem(pid, [texts[i] for i in idx], rows.ground_truths[idx[0]], step, counts)
        for name, value in counts.items():
            metrics[f"pdai/harvest/batch_{name}"] = float(value)
        metrics.update({f"pdai/harvest/{k}": v for k, v in self.bank.stats().items()})

    def _harvest_problem(self, pid: str, texts: list[str], ground_truth: Any, step: int, counts: dict) -> None:
        """Offer the shortest acceptable of one problem's candidates to the bank."""
        thinking = self.settings.reward.stepwise.thinking if self.settings.reward is not None else "auto"
        concise = [(len((concise_solution(t, thinking) or "").encode("utf-8")), t) for t in texts]
        stored = self.bank.get(pid)
        stored_bytes = len(stored.encode("utf-8")) if stored is not None else None
        for size, text in sorted(concise, key=lambda pair: pair[0]):
            if size == 0 or (stored_bytes is not None and size >= stored_bytes):
                counts["rejected"] += 1
                continue
            reference, _ = harvest_reference(
                text, lambda ref: self.hints(ref, ground_truth), self.settings.harvest, thinking
            )
            if reference is None:
                counts["rejected"] += 1
                continue
            outcome = self.bank.offer(pid, reference, step)
            if outcome in ("added", "replaced"):
                counts[outcome] += 1
            return

    def _decode(self, batch: KVBatchMeta, indices: list[int], tokenizer: Any) -> dict[int, str]:
        """The text of each chosen response, as the reward decodes it (special tokens dropped), its last
        ``max_bytes_per_problem + 32`` tokens only: a longer concise part could not be stored anyway. A longer
        response whose tail does not close its thinking gives "" (a tail without "</think>" is a fragment)."""
        if not indices:
            return {}
        data = tq.kv_batch_get(
            keys=[batch.keys[i] for i in indices], partition_id=batch.partition_id, select_fields=["responses"]
        )
        responses = _column(data, "responses", len(indices))
        limit = self.settings.harvest.max_bytes_per_problem + _TAIL_MARGIN
        eos = getattr(tokenizer, "eos_token_id", None)
        out: dict[int, str] = {}
        for i, ids in zip(indices, responses, strict=True):
            ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
            if eos is not None and eos not in ids[-limit:]:  # cut at the length limit or aborted: not a solution
                out[i] = ""
                continue
            text = tokenizer.decode(ids[-limit:], skip_special_tokens=True)
            out[i] = text if len(ids) <= limit or split_thinking(text).closed else ""
        return out
