"""Trainer modes ``pdai_sync`` and ``pdai_colocate_async``: verl's v1 trainers plus the EPRLI trainer-side state.

Select one with ``trainer.v1.trainer_mode=pdai_sync`` (or ``pdai_colocate_async``); verl's ``TaskRunnerV1`` resolves
the name with ``verl.trainer.ppo.v1.get_trainer_cls``, so this module must be imported in the driver's TaskRunner
process: the ``verl.plugins`` entry point does it (or ``VERL_USE_EXTERNAL_MODULES=verl_pdai.plugin.trainer``).

``PdaiTrainerMixin`` changes only what the method needs (see ``docs/trainer.md``):

* it owns the :class:`~verl_pdai.core.store.DifficultyStore` and the
  :class:`~verl_pdai.core.policy.InterventionPolicy`;
* ``_next_train_batch``: every training prompt gets ``pdai_prior`` (the store's Beta posterior), ``pdai_policy_w``
  (the policy's current w), ``pdai_policy_params`` (w, intercept, slope: what the rollout decides with) and
  ``pdai_problem_id`` as per-row non-tensor columns, so they travel with the batch to the rollout workers
  (agent-loop kwargs) and back through TransferQueue;
* ``_compute_advantage``: with ``algorithm.adv_estimator=epgrpo`` the advantage is computed here from the hint
  levels, hint spans and step rewards stored in TransferQueue (verl's estimator interface cannot pass them); any
  other estimator runs verl's method unchanged. Then the store and the policy learn from the batch and
  ``pdai/*`` metrics are logged;
* harvested references (:mod:`verl_pdai.plugin.trainer_harvest`): ``_next_train_batch`` hands each row its
  problem's harvested reference (``pdai_harvested_reference``); after scoring, verified unassisted solutions of
  problems without a usable reference are harvested into the bank;
* ``_save_checkpoint`` / ``_load_checkpoint``: ``pdai_state.json`` in the ``global_step_{N}`` folder (store,
  policy, reference bank).

The ``pdai`` config section is parsed in :mod:`verl_pdai.plugin.trainer_settings`; a batch's rows are read from
TransferQueue into the pdai view in :mod:`verl_pdai.plugin.trainer_rows`.

The base mode. verl branches on the literal mode name (``trainer_mode == "sync"`` picks the replay buffer, forces
``gen_batch_size``, persists and re-issues in-flight prompts, saves TransferQueue; ``trainer.v1.<mode>`` holds the
mode's settings). ``trainer_mode`` is therefore a property that reports the base mode (``sync`` /
``colocate_async``) to verl's code, and the configured name is kept in ``pdai_trainer_mode``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from tensordict import TensorDict
from transfer_queue import KVBatchMeta
from verl.protocol import DataProto
from verl.trainer.ppo.rollout_corr_helper import compute_rollout_correction_and_add_to_batch
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_colocate_async import PPOTrainerColocateAsync
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import response_to_nested

from verl_pdai.core.advantage import EpgrpoParts, compute_epgrpo_parts
from verl_pdai.core.persistence import load_state, save_atomic
from verl_pdai.core.policy import InterventionPolicy
from verl_pdai.core.references import ReferenceBank
from verl_pdai.core.rollout_metrics import rollout_metrics
from verl_pdai.core.store import DifficultyStore
from verl_pdai.ledger.records import build_records
from verl_pdai.ledger.writer import LedgerWriter
from verl_pdai.plugin import fields as F
from verl_pdai.plugin.advantage_inputs import NAME as EPGRPO
from verl_pdai.plugin.advantage_inputs import OUTCOME_FIELD, STEP_SCORES_FIELD, STEP_TOKEN_ENDS_FIELD, epgrpo_inputs
from verl_pdai.plugin.trainer_harvest import ReferenceHarvester
from verl_pdai.plugin.trainer_rows import (
    _PDAI_FIELDS,
    PROBLEM_ID_FIELD,
    _advantage_metrics,
    _as_float,
    _column,
    _fetch_rows,
    _finite,
    _initial_prior_args,
    _Rows,
    _signal_share,
    problem_id_of,
)
from verl_pdai.plugin.trainer_settings import PdaiSettings

__all__ = ["STATE_FILE", "PdaiColocateAsyncTrainer", "PdaiSyncTrainer", "PdaiTrainerMixin"]

logger = logging.getLogger("verl_pdai")

STATE_FILE = "pdai_state.json"
HINT_REMOVED_DECISION = "hint_removed_no_continuation"  # the agent loop took its hint back: cut at the boundary
STATE_FORMAT = "verl_pdai.trainer_state"
STATE_VERSION = 1


# ----------------------------------------------------------------------------------------------- the mixin


class PdaiTrainerMixin:
    """What EPRLI changes in verl's v1 trainer; combine with a verl trainer class (see the module docstring)."""

    BASE_MODE: ClassVar[str] = "sync"  # the verl mode whose behaviour (replay buffer, TQ checkpointing) applies

    # attributes verl's PPOTrainer provides (for type checkers)
    config: Any
    global_steps: int

    def __init__(self, config: Any) -> None:
        self.pdai_settings = PdaiSettings.from_config(config)  # fail before verl builds anything
        super().__init__(config)  # type: ignore[call-arg]
        self.pdai_store = DifficultyStore(self.pdai_settings.store)
        self.pdai_policy = InterventionPolicy(self.pdai_settings.policy)
        self.pdai_harvester = ReferenceHarvester(self.pdai_settings)
        if self.pdai_settings.harvest.enabled and not self.pdai_harvester.active:
            logger.warning(
                "verl_pdai: pdai.harvest.enabled, but the reward is not verl_pdai's checker (pdai_stepwise or "
                "verl_pdai.api.compute_score): no reference is harvested"
            )
        ledger = self.pdai_settings.ledger
        self.pdai_ledger: LedgerWriter | None = None
        if ledger.enabled:  # the folder is created at the first write
            folder = ledger.directory(OmegaConf.select(config, "trainer.default_local_dir", default=None))
            self.pdai_ledger = LedgerWriter(folder, ledger.max_bytes)
        agent_loop = OmegaConf.select(config, "actor_rollout_ref.rollout.agent.default_agent_loop", default=None)
        if agent_loop != "pdai_hint":
            logger.warning(
                "verl_pdai trainer %s runs with agent loop %r, not pdai_hint: no preview, no hints; the difficulty "
                "store still learns from every (unassisted) sample",
                self.pdai_trainer_mode,
                agent_loop,
            )

    # ------------------------------------------------------------------ mode name

    @property
    def trainer_mode(self) -> str:
        """The verl base mode, so verl's ``trainer_mode == "sync"`` branches see the mode they were written for."""
        return self.BASE_MODE

    @trainer_mode.setter
    def trainer_mode(self, value: str) -> None:  # PPOTrainer.__init__ assigns the configured name here
        self.pdai_trainer_mode = value

    # ------------------------------------------------------------------ prompts

    def _next_train_batch(self, num_prompts: int | None = None) -> TensorDict:
        batch = super()._next_train_batch(num_prompts)  # type: ignore[misc]
        self.pdai_inject(batch)
        return batch

    def pdai_inject(self, batch: TensorDict) -> None:
        """Add ``pdai_prior``, ``pdai_policy_w``, ``pdai_policy_params``, ``pdai_problem_id`` and
        ``pdai_harvested_reference`` (the problem's harvested reference, "" when none) to every row of a training
        batch.

        Per-row ``NonTensorStack`` columns (``tu.assign_non_tensor_stack``): verl's rollout worker turns each row of
        a stack into a keyword argument of the agent loop, and stores it with the trajectory in TransferQueue
        (async modes also persist it with the prompt for re-issue after a resume). A prior a row already carried
        in ``extra_info.pdai_prior`` is the store's starting prior for that problem; a top-level ``pdai_prior``
        column of the dataset is replaced.
        """
        n = int(batch.batch_size[0]) if len(batch.batch_size) else len(_column(batch, "uid", 1))
        extra_infos = _column(batch, "extra_info", n)
        data_sources = _column(batch, "data_source", n)
        prompts = _column(batch, "raw_prompt", n)
        priors, ids = [], []
        for info, source, prompt in zip(extra_infos, data_sources, prompts, strict=True):
            pid = problem_id_of(info, source, prompt)
            alpha, beta = self.pdai_store.prior_for(pid, **_initial_prior_args(info, source))
            priors.append({"alpha": float(alpha), "beta": float(beta)})
            ids.append(pid)
        tu.assign_non_tensor_stack(batch, F.PRIOR_FIELD, priors)
        tu.assign_non_tensor_stack(batch, F.POLICY_W_FIELD, [float(self.pdai_policy.w)] * n)
        params = {k: float(v) for k, v in self.pdai_policy.decision_params().items()}
        tu.assign_non_tensor_stack(batch, F.POLICY_PARAMS_FIELD, [dict(params) for _ in range(n)])
        tu.assign_non_tensor_stack(batch, PROBLEM_ID_FIELD, ids)
        tu.assign_non_tensor_stack(
            batch, F.HARVESTED_REFERENCE_FIELD, [self.pdai_harvester.reference_for(p) for p in ids]
        )

    # ------------------------------------------------------------------ advantage

    def _compute_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        if self.config.algorithm.adv_estimator != EPGRPO:
            batch = super()._compute_advantage(batch, metrics)  # type: ignore[misc]
            data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=_PDAI_FIELDS)
            rm_scores = data.select("rm_scores").to_padded_tensor()["rm_scores"]
            rows = _fetch_rows(batch, data, rm_scores)
            response_mask = data.select("response_mask").to_padded_tensor()["response_mask"]
            self._pdai_learn(rows, response_mask, metrics, batch)
            return batch
        return self._compute_epgrpo_advantage(batch, metrics)

    def _compute_epgrpo_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """verl's ``_compute_advantage`` (0.9.1) with step 3 replaced by ``epgrpo`` on the batch's pdai fields:
        same fields read, same rollout-correction helper, same nested write-back (KL in the reward is refused with
        epgrpo at start-up)."""
        keys = batch.keys
        for key in keys:  # epgrpo's group statistics count each session once
            parts = key.rsplit("_", 2)
            if len(parts) == 3 and parts[2] != "0":
                raise ValueError(
                    f"epgrpo expects one output per session (the pdai_hint agent loop), got trajectory key {key!r}; "
                    "use an agent loop with one output per session or another adv_estimator"
                )
        verl_fields = _VERL_ADVANTAGE_FIELDS
        select = verl_fields + [k for k in _PDAI_FIELDS if k not in verl_fields]
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=select)
        response_mask = data["response_mask"]
        pdai_data = data.select(*[k for k in data.keys() if k not in verl_fields or k == "uid"])
        tensors = data.select(*[k for k in verl_fields if k in data.keys()])
        data = DataProto(batch=tensors.to_padded_tensor())
        data.batch["token_level_scores"] = data.batch["rm_scores"]
        data.non_tensor_batch["uid"] = np.array(data.batch.pop("uid").tolist(), dtype=object)
        rows = _fetch_rows(batch, pdai_data, data.batch["rm_scores"])

        # 1. no KL penalty in the reward: PdaiSettings refuses use_kl_in_reward with epgrpo (it would put a float
        #    residue into every outcome); a KL term goes into the actor loss instead (use_kl_loss)
        data.batch["token_level_rewards"] = data.batch["token_level_scores"]

        model_mask = data.batch["response_mask"].clone()  # 0 on hint tokens only (rejection sampling may add more)

        # 2. rollout correction (decoupled mode only), as verl
        rollout_corr_config = self.config.algorithm.get("rollout_correction", None)
        bypass = rollout_corr_config and rollout_corr_config.get("bypass_mode", False)
        rollout_correction = rollout_corr_config is not None and "rollout_log_probs" in data.batch and not bypass
        if rollout_correction:
            data, is_metrics = compute_rollout_correction_and_add_to_batch(data, rollout_corr_config)
            metrics.update(is_metrics)

        # 3. epgrpo (hint-aware outcome part + process part)
        response_mask_padded = data.batch["response_mask"]
        parts, outcome, valid = self._epgrpo(rows, data.batch["token_level_rewards"], response_mask_padded)
        advantages = parts.advantages
        dropping = not bool(valid.all())
        if dropping:  # pdai.drop_unscored: those responses leave the loss (masks 0, advantage 0)
            keep = valid.to(response_mask_padded.device).unsqueeze(-1).to(response_mask_padded.dtype)
            data.batch["response_mask"] = data.batch["response_mask"] * keep
            # verl's engines normalise the loss by loss_mask (stored as the rollout's response_mask): zero it too
            data.batch["loss_mask"] = data.batch["response_mask"]
        data.batch["advantages"] = advantages
        data.batch["returns"] = advantages

        # 4. write nested advantages and returns back to TransferQueue, as verl
        out_fields = ["advantages", "returns"]
        if rollout_correction or dropping:
            out_fields.append("response_mask")
        if dropping:
            out_fields.append("loss_mask")
            if "rollout_is_weights" in data.batch:
                out_fields.append("rollout_is_weights")
        output = TensorDict(
            {name: response_to_nested(data.batch[name], response_mask) for name in out_fields}, batch_size=len(batch)
        )
        batch = tq.kv_batch_put(keys=keys, partition_id=batch.partition_id, fields=output)

        _advantage_metrics(rows, response_mask_padded, parts, outcome, metrics)
        self._pdai_learn(rows, model_mask, metrics, batch)
        return batch

    def _epgrpo(
        self,
        rows: _Rows,
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
    ) -> tuple[EpgrpoParts, torch.Tensor, torch.Tensor]:
        """(the parts of ``epgrpo``, outcome scores, rows that take part); padding rows get no hint, no steps.

        The outcome is the reward's explicit ``outcome`` field, never the total minus the step scores (KL in the
        reward is refused with ``epgrpo`` at start-up: it would put a float residue in every outcome).
        """
        n = len(rows)
        real = [not p for p in rows.padding]
        fields: dict[str, list[Any]] = {
            F.HINT_LEVEL_FIELD: [rows.level(i) if real[i] else 0 for i in range(n)],
            F.HINT_FRACTION_FIELD: [
                rows.extra[i].get(F.HINT_FRACTION_FIELD, 0.0) if real[i] else 0.0 for i in range(n)
            ],
            F.HINT_SPANS_FIELD: [rows.extra[i].get(F.HINT_SPANS_FIELD, []) if real[i] else [] for i in range(n)],
        }
        if any(OUTCOME_FIELD in r for r in rows.reward):
            fields[OUTCOME_FIELD] = [rows.outcome(i) for i in range(n)]
            if any(STEP_SCORES_FIELD in r and STEP_TOKEN_ENDS_FIELD in r for r in rows.reward):
                for key in (STEP_SCORES_FIELD, STEP_TOKEN_ENDS_FIELD):
                    fields[key] = [rows.reward[i].get(key, "[]") if real[i] else "[]" for i in range(n)]
        inputs = epgrpo_inputs(fields, token_level_rewards)
        outcome = inputs.pop("pdai_outcome_scores", None)
        if outcome is None:  # a reward without an outcome field (e.g. verl's naive manager): its score is the outcome
            outcome = token_level_rewards.sum(dim=-1)
        valid = torch.ones(n, dtype=torch.bool)
        if self.pdai_settings.drop_unscored:
            valid = torch.tensor([not rows.unscored(i) for i in range(n)], dtype=torch.bool)
        parts = compute_epgrpo_parts(
            outcome,
            response_mask,
            rows.uids,
            inputs["pdai_hint_level"],
            inputs["pdai_hint_start"],
            inputs.get("pdai_step_rewards"),
            inputs.get("pdai_step_mask"),
            hint_fraction=inputs["pdai_hint_fraction"],
            valid=valid.to(response_mask.device),
            **self.pdai_settings.advantage,
        )
        return parts, outcome, valid

    # ------------------------------------------------------------------ learning and metrics

    def _pdai_learn(self, rows: _Rows, response_mask: torch.Tensor, metrics: dict, batch: KVBatchMeta) -> None:
        """Update the store from unassisted outcomes, refit the policy, harvest references, log the metrics."""
        real = [i for i in range(len(rows)) if not rows.padding[i]]
        roles = rows.get(F.ROLE_FIELD, "")
        success = {i: rows.success(i) for i in real}

        # store: every unassisted session (previews, level-0 main sessions, loops without pdai roles), except one
        # cut at a hint that was then taken back (its failure says nothing of the unassisted policy) and one whose
        # outcome the reward could not decide
        decisions = rows.get(F.DECISION_FIELD, "")
        unknown = {i for i in real if rows.unscored(i)}
        unassisted = [
            i
            for i in real
            if roles[i] != "validation"
            and rows.level(i) == 0
            and decisions[i] != HINT_REMOVED_DECISION
            and i not in unknown
        ]
        priors_before = self._pdai_priors(rows, real) if self.pdai_ledger is not None else {}
        records = [
            {
                "problem_id": rows.problem_ids[i],
                "successes": int(success[i]),
                "trials": 1,
                **rows.prior_args[i],
            }
            for i in unassisted
        ]
        updated = self.pdai_store.update_many(records, step=max(int(self.global_steps), 0))
        trials = len(records)
        metrics["pdai/store/batch_problems"] = float(len(updated))
        metrics["pdai/store/batch_trials"] = float(trials)
        if trials:
            metrics["pdai/store/batch_success_rate"] = sum(success[i] for i in unassisted) / trials

        # policy: (p, level, success) of main sessions that reached their decision
        difficulty = rows.get(F.DIFFICULTY_FIELD, -1.0)
        levels = self.pdai_policy.num_levels
        observations, skipped = [], 0
        for i in real:
            p = _as_float(difficulty[i], -1.0)
            if roles[i] != "main" or p < 0.0 or i in unknown or decisions[i] == HINT_REMOVED_DECISION:
                continue
            if p > 1.0 or not 0 <= rows.level(i) < levels:  # a rollout run with another policy config
                skipped += 1
                continue
            observations.append((p, rows.level(i), success[i]))
        self.pdai_policy.update(observations)
        metrics["pdai/policy/batch_observations"] = float(len(observations))
        if skipped:
            metrics["pdai/policy/batch_skipped_observations"] = float(skipped)
            logger.warning("verl_pdai: %d policy observations with a level outside the policy's levels", skipped)

        metrics.update(_finite(self.pdai_store.stats(), "pdai/store/"))
        metrics.update(_finite(self.pdai_policy.diagnostics(), "pdai/policy/"))
        if real:
            columns = {
                name: [rows.extra[i].get(name) for i in real]
                for name in (
                    F.ROLE_FIELD,
                    F.HINT_LEVEL_FIELD,
                    F.HINT_TOKENS_FIELD,
                    F.DECISION_FIELD,
                    F.PREVIEWS_FINISHED_FIELD,
                    F.PREVIEW_SUCCESS_FIELD,
                    F.FALLBACK_FIELD,
                    F.DIFFICULTY_FIELD,
                    F.HINT_SOURCE_FIELD,
                )
                if any(name in rows.extra[i] for i in real)
            }
            metrics.update(rollout_metrics(columns, [float(success[i]) for i in real], response_mask[real]))
            # groups GRPO could learn from without the intervention: outcomes of the unassisted sessions only
            keep = set(unassisted)
            outcomes = [float(success.get(i, False)) for i in range(len(rows))]
            before = _signal_share(rows.uids, outcomes, [i in keep for i in range(len(rows))])
            if before is not None:
                metrics["pdai/adv/signal_groups_unassisted"] = before
        sources = self._pdai_harvest(rows, real, unassisted, response_mask, batch, metrics)
        if self.pdai_ledger is not None:
            try:
                self._pdai_write_ledger(rows, real, success, priors_before, metrics, sources)
            except Exception:  # the ledger records training; it is never a reason to stop it
                logger.exception("pdai ledger: building step %s's records failed; training goes on", self.global_steps)
                metrics["pdai/ledger/errors"] = metrics.get("pdai/ledger/errors", 0.0) + 1.0

    def _pdai_harvest(
        self,
        rows: _Rows,
        real: list[int],
        unassisted: list[int],
        response_mask: torch.Tensor,
        batch: KVBatchMeta,
        metrics: dict,
    ) -> dict[str, str]:
        """Coverage metrics and this step's harvest; returns each problem's reference source for the ledger. A
        failure is logged and counted, never raised: harvesting helps training, it is never a reason to stop it."""
        harvester, sources = self.pdai_harvester, {}
        try:
            sources = harvester.coverage_metrics(rows, real, metrics)
            tokenizer = getattr(self, "tokenizer", None)
            harvester.learn(rows, unassisted, response_mask, batch, tokenizer, max(int(self.global_steps), 0), metrics)
        except Exception:
            logger.exception("pdai harvest: step %s failed; training goes on", self.global_steps)
            metrics["pdai/harvest/errors"] = metrics.get("pdai/harvest/errors", 0.0) + 1.0
        return sources

    # ------------------------------------------------------------------ ledger

    def _pdai_priors(self, rows: _Rows, real: list[int]) -> dict[str, tuple[float, float]]:
        """The store's prior of each problem of the batch before this step's update (the ledger's prior where a
        session did not record the one it decided from)."""
        return {rows.problem_ids[i]: self.pdai_store.prior_for(rows.problem_ids[i], **rows.prior_args[i]) for i in real}

    def _pdai_write_ledger(
        self,
        rows: _Rows,
        real: list[int],
        success: dict[int, bool],
        priors_before: dict[str, tuple[float, float]],
        metrics: dict,
        sources: dict[str, str],
    ) -> None:
        """One ledger part for this step: a record per prompt, the store posterior after the update."""
        assert self.pdai_ledger is not None
        started = time.perf_counter()
        roles = rows.get(F.ROLE_FIELD, "")
        alphas, betas = rows.get(F.PRIOR_ALPHA_FIELD, -1.0), rows.get(F.PRIOR_BETA_FIELD, -1.0)
        prior_alphas, prior_betas = [], []
        for i in real:
            alpha, beta = _as_float(alphas[i], -1.0), _as_float(betas[i], -1.0)
            if alpha <= 0 or beta <= 0:  # no decision recorded: the prior the store handed out (sync mode)
                alpha, beta = priors_before[rows.problem_ids[i]]
            prior_alphas.append(alpha)
            prior_betas.append(beta)
        prior_args = {rows.problem_ids[i]: rows.prior_args[i] for i in real}
        columns = build_records(
            int(self.global_steps),
            group_ids=[rows.uids[i] for i in real],
            problem_ids=[rows.problem_ids[i] for i in real],
            data_sources=[rows.prior_args[i]["data_source"] for i in real],
            roles=[str(roles[i]) for i in real],
            hint_levels=[rows.level(i) for i in real],
            hint_tokens=[int(_as_float(rows.extra[i].get(F.HINT_TOKENS_FIELD, 0), 0.0)) for i in real],
            outcomes=[_as_float(rows.reward[i].get("acc"), float(success[i])) for i in real],
            difficulties=[_as_float(d, -1.0) for d in (rows.get(F.DIFFICULTY_FIELD, -1.0)[i] for i in real)],
            prior_alphas=prior_alphas,
            prior_betas=prior_betas,
            posteriors={pid: self.pdai_store.prior_for(pid, **args) for pid, args in prior_args.items()},
            visits={pid: self.pdai_store.visits(pid) for pid in prior_args},
            hint_sources=[str(rows.extra[i].get(F.HINT_SOURCE_FIELD) or "") for i in real],
            reference_sources=sources,
        )
        result = self.pdai_ledger.write(int(self.global_steps), columns)
        metrics["pdai/ledger/rows"] = float(result.rows)
        metrics["pdai/ledger/bytes"] = float(result.bytes)
        metrics["pdai/ledger/write_s"] = time.perf_counter() - started  # records + write
        metrics["pdai/ledger/dropped_rows"] = float(result.dropped_rows)
        if result.errors:
            metrics["pdai/ledger/errors"] = float(result.errors)

    # ------------------------------------------------------------------ checkpoints

    def pdai_state_dict(self) -> dict[str, Any]:
        """The content of ``pdai_state.json``."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "global_step": int(self.global_steps),
            "store": self.pdai_store.state_dict(),
            "policy": self.pdai_policy.state_dict(),
            "references": self.pdai_harvester.bank.state_dict(),
        }

    def _save_checkpoint(self) -> None:
        # Written before verl's save: verl writes latest_checkpointed_iteration.txt and calls the checkpoint
        # callback (which may upload the folder) at the end of its save, so the folder they point to holds it.
        folder = os.path.join(self.config.trainer.default_local_dir, f"global_step_{self.global_steps}")
        save_atomic(os.path.join(folder, STATE_FILE), self.pdai_state_dict())
        super()._save_checkpoint()  # type: ignore[misc]

    def _load_checkpoint(self) -> None:
        super()._load_checkpoint()  # type: ignore[misc]
        folder = self._pdai_resumed_folder()
        if folder is not None:
            self.pdai_load_state(os.path.join(folder, STATE_FILE))

    def _pdai_resumed_folder(self) -> str | None:
        """The ``global_step_{N}`` folder verl's ``_load_checkpoint`` resumed from, or None (fresh start)."""
        trainer = self.config.trainer
        if trainer.resume_mode == "resume_path":
            folder = str(trainer.resume_from_path)
        elif trainer.resume_mode == "auto" and self.global_steps > 0:
            folder = os.path.join(str(trainer.default_local_dir), f"global_step_{self.global_steps}")
        else:
            return None
        return folder if os.path.isabs(folder) else os.path.join(os.getcwd(), folder)

    def pdai_load_state(self, path: str) -> bool:
        """Restore the store, the policy and the reference bank from ``path``; True when restored.

        Missing file: a warning, fresh store and policy (e.g. a checkpoint written by verl's own ``sync`` mode).
        Corrupt or invalid file: ``pdai.on_corrupt_state`` decides, ``fail`` (default) raises ValueError naming the
        file and the option, ``fresh`` logs a warning and starts fresh. The current run's store and policy
        settings are kept (``keep_config=True``): a resumed run may edit its recipe. A file without a ``references``
        entry (an earlier version's) restores an empty reference bank.
        """
        if not os.path.exists(path):
            logger.warning(
                "verl_pdai: no %s in the resumed checkpoint (%s): the difficulty store and the intervention policy "
                "start fresh",
                STATE_FILE,
                path,
            )
            return False
        store = DifficultyStore(self.pdai_settings.store)
        policy = InterventionPolicy(self.pdai_settings.policy)
        bank = ReferenceBank(self.pdai_settings.harvest)
        try:
            state = load_state(path, "fail")
            if state is None:  # removed between the check and the read
                raise ValueError("the file disappeared while it was read")
            if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
                raise ValueError(
                    f"not a {STATE_FORMAT} v{STATE_VERSION} file (format={state.get('format')!r}, "
                    f"version={state.get('version')!r})"
                )
            for key in ("store", "policy"):
                if not isinstance(state.get(key), Mapping):
                    raise ValueError(f"missing or malformed {key!r} entry")
            store.load_state_dict(state["store"], keep_config=True)
            policy.load_state_dict(state["policy"], keep_config=True)
            if state.get("references") is not None:  # absent in files of earlier versions: an empty bank
                if not isinstance(state["references"], Mapping):
                    raise ValueError("malformed 'references' entry")
                bank.load_state_dict(state["references"], keep_config=True)
        except ValueError as err:
            if self.pdai_settings.on_corrupt_state == "fresh":
                logger.warning(
                    "verl_pdai: %s is corrupt (%s); the difficulty store and the intervention policy start fresh "
                    "(pdai.on_corrupt_state=fresh)",
                    path,
                    err,
                )
                self.pdai_store = DifficultyStore(self.pdai_settings.store)
                self.pdai_policy = InterventionPolicy(self.pdai_settings.policy)
                self.pdai_harvester.bank = ReferenceBank(self.pdai_settings.harvest)
                return False
            raise ValueError(
                f"verl_pdai trainer state {path} is corrupt: {err}. Repair or delete the file, or set "
                "pdai.on_corrupt_state=fresh to start the difficulty store and the intervention policy from their "
                "priors"
            ) from None
        self.pdai_store, self.pdai_policy, self.pdai_harvester.bank = store, policy, bank
        logger.info(
            "verl_pdai: restored the difficulty store (%d problems), the policy and %d harvested references from %s",
            len(store),
            len(bank),
            path,
        )
        return True


# what verl's _compute_advantage reads from TransferQueue (0.9.1)
_VERL_ADVANTAGE_FIELDS = [
    "uid",
    "response_mask",
    "rm_scores",
    "rollout_log_probs",
    "old_log_probs",
    "ref_log_prob",
    "values",
]


@register_trainer("pdai_sync")
class PdaiSyncTrainer(PdaiTrainerMixin, PPOTrainerSync):
    """verl's ``sync`` trainer with EPRLI's difficulty store, intervention policy and ``epgrpo``."""

    BASE_MODE = "sync"


@register_trainer("pdai_colocate_async")
class PdaiColocateAsyncTrainer(PdaiTrainerMixin, PPOTrainerColocateAsync):
    """verl's ``colocate_async`` trainer with EPRLI's difficulty store, intervention policy and ``epgrpo``."""

    BASE_MODE = "colocate_async"
