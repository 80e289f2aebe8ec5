"""The demo's trainer: verl's registered ``pdai_sync`` class (``get_trainer_cls``) plus read-only observation.

The subclass changes no behaviour: after each method runs as in training it records what the demo prints (the
priors handed to the prompts, every group's sessions with their hint spans, rewards and ``epgrpo`` advantages as
stored in TransferQueue, the step's metrics).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from verl_pdai.demo.report_lines import GroupView, SessionView, group_lines, step_line
from verl_pdai.plugin import fields as F

ROW_FIELDS = ["advantages", "response_mask", "responses", "rm_scores", "extra_fields", "uid", "pdai_problem_id"]


def _read_rows(batch: Any) -> dict[str, Any]:
    import transfer_queue as tq
    from verl.utils import tensordict_utils as tu

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=ROW_FIELDS)
    tensors = [k for k in ROW_FIELDS if isinstance(data.get(k), torch.Tensor)]
    padded = data.select(*tensors).to_padded_tensor()
    return {k: padded[k] if k in tensors else tu.get(data, k) for k in ROW_FIELDS}


def _mean(values: torch.Tensor) -> float | None:
    return float(values.mean()) if values.numel() else None


def _session(row: int, rows: dict[str, Any], decode: Callable[[list[int]], str]) -> SessionView:
    extra = rows["extra_fields"][row]
    info = extra.get("reward_extra_info", {})
    mask = rows["response_mask"][row]
    adv = rows["advantages"][row]
    spans = extra.get(F.HINT_SPANS_FIELD) or []
    span = (int(spans[0][0]), int(spans[0][1])) if spans else None
    model = mask == 1
    if span is None:
        before, after, text = _mean(adv[model]), None, ""
    else:
        positions = torch.arange(mask.shape[0])
        before = _mean(adv[model & (positions < span[0])])
        after = _mean(adv[model & (positions >= span[1])])
        text = decode(rows["responses"][row, span[0] : span[1]].tolist())
    return SessionView(
        index=int(extra.get(F.SESSION_FIELD, -1)),
        role=str(extra.get(F.ROLE_FIELD, "")),
        decision=str(extra.get(F.DECISION_FIELD, "")),
        hint_level=int(extra.get(F.HINT_LEVEL_FIELD, 0)),
        hint_span=span,
        hint_text=text,
        acc=float(info.get("acc", 0.0)),
        score=float(rows["rm_scores"][row].sum()),
        step_scores=[float(x) for x in F.decode_list(info.get("step_scores", "[]"))],
        adv_before=before,
        adv_after=after,
        model_tokens=int(mask.sum()),
    )


def demo_trainer_class(base: type, tiers: dict[str, str], emit: Callable[[str], None]) -> type:
    """A subclass of the registered trainer class that records and prints what the demo shows."""

    class DemoTrainer(base):  # type: ignore[misc, valid-type]
        def _next_train_batch(self, num_prompts: int | None = None) -> Any:
            from verl.utils import tensordict_utils as tu

            batch = super()._next_train_batch(num_prompts)
            ids, priors = tu.get(batch, "pdai_problem_id"), tu.get(batch, F.PRIOR_FIELD)
            self.demo_priors = {pid: (float(p["alpha"]), float(p["beta"])) for pid, p in zip(ids, priors, strict=True)}
            return batch

        def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
            batch = super()._compute_advantage(batch, metrics)
            rows = _read_rows(batch)
            groups: dict[str, GroupView] = {}
            padding = [bool(tag.get("is_padding", False)) for tag in batch.tags]
            for row, uid in enumerate(rows["uid"]):
                if padding[row]:
                    continue
                pid = str(rows["pdai_problem_id"][row])
                extra = rows["extra_fields"][row]
                group = groups.get(str(uid))
                if group is None:
                    prior = self.demo_priors.get(pid, (1.0, 1.0))
                    group = groups[str(uid)] = GroupView(pid, tiers.get(pid, "?"), prior, 0, 0, None)
                session = _session(row, rows, self.tokenizer.decode)
                if session.role == "preview":
                    group.preview_trials += 1
                    group.preview_successes += int(extra.get(F.PREVIEW_SUCCESS_FIELD, -1) == 1)
                elif float(extra.get(F.DIFFICULTY_FIELD, -1)) >= 0:
                    group.difficulty = float(extra[F.DIFFICULTY_FIELD])
                group.sessions.append(session)
            for group in groups.values():
                group.sessions.sort(key=lambda s: s.index)
                group.store_after = tuple(self.pdai_store.prior_for(group.problem_id))  # type: ignore[assignment]
                for line in group_lines(group):
                    emit(line)
            self.demo_groups.append(sorted(groups.values(), key=lambda g: g.problem_id))
            return batch

        def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
            super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
            self.demo_metrics.append(json.loads(json.dumps(metrics, default=float)))
            emit(step_line(global_steps, metrics))

        def _get_n_gpus_for_throughput(self) -> int:
            return 1  # no resource pool: one stand-in worker

    DemoTrainer.__name__ = DemoTrainer.__qualname__ = f"Demo{base.__name__}"
    return DemoTrainer
