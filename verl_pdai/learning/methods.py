"""The methods the learning benchmark compares, as config overrides of verl's ``ppo_trainer``. Pure (strings only).

``grpo`` is the recipe's baseline (``recipes/.../method_grpo.yaml``): verl's ``sync`` trainer, its single-turn
agent loop, verl's ``naive`` reward manager over ``verl_pdai.api.compute_score`` with the process part off (a
binary outcome reward), verl's ``grpo`` estimator. ``eprli`` is the recipe's method (``method_eprli.yaml``):
``pdai_sync``, ``pdai_hint``, ``pdai_stepwise``, ``epgrpo`` with its defaults. Each ablation changes one thing.
"""

from __future__ import annotations

GRPO = [
    "trainer.v1.trainer_mode=sync",
    "algorithm.adv_estimator=grpo",
    "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
    "reward.reward_manager.name=naive",
    "reward.custom_reward_function.path=pkg://verl_pdai.api",
    "reward.custom_reward_function.name=compute_score",
    "+reward.custom_reward_function.reward_kwargs.process_weight=0.0",
]

EPRLI = [
    "trainer.v1.trainer_mode=pdai_sync",
    "algorithm.adv_estimator=epgrpo",
    "actor_rollout_ref.rollout.agent.default_agent_loop=pdai_hint",
    "reward.reward_manager.name=pdai_stepwise",
    "+reward.reward_kwargs.process_weight=0.2",
    "+reward.reward_kwargs.process_cap=0.2",
    "+pdai.rollout.preview_size=2",
    "+pdai.policy.target_rate=0.5",
    "+pdai.store.decay=0.9",
    "+pdai.advantage.process_weight=1.0",
    "+pdai.advantage.pre_hint_weight=0.0",
]

METHODS: dict[str, tuple[list[str], str]] = {
    "grpo": (GRPO, "verl's grpo, binary outcome reward, no preview, no hints"),
    "eprli": (EPRLI, "preview + hints + stepwise reward + epgrpo, the recipe's settings"),
    "eprli_level_baseline": (
        [*EPRLI, "+pdai.advantage.baseline=level"],
        "eprli with the per-hint-level outcome baseline instead of the whole group's",
    ),
    "eprli_discount": ([*EPRLI, "+pdai.advantage.discount=0.5"], "eprli, a helped success counts r * (1 - 0.5 f)"),
    "eprli_no_process": (
        [
            *[o for o in EPRLI if "process_weight" not in o],
            "+reward.reward_kwargs.process_weight=0.0",
            "+pdai.advantage.process_weight=0.0",
        ],
        "eprli with the step reward and the process part off (outcome only)",
    ),
    "eprli_blocking": (
        [*EPRLI, "+pdai.rollout.blocking=true"],
        "eprli, main sessions wait for the previews at the injection point",
    ),
}


# issue 14's evidence: only a third of the training problems carry a reference (as in public data sets), with the
# trainer harvesting references from unassisted verified successes (the default) and without
METHODS["eprli_third_refs"] = (EPRLI, "eprli, a third of the training problems with a reference, harvesting on")
METHODS["eprli_third_refs_no_harvest"] = (
    [*EPRLI, "+pdai.harvest.enabled=false"],
    "eprli, a third of the training problems with a reference, harvesting off",
)
REFERENCE_SHARE = {"eprli_third_refs": 1 / 3, "eprli_third_refs_no_harvest": 1 / 3}


def reference_share(name: str) -> float:
    """The share of training problems whose row keeps its reference solution (1.0: all)."""
    return REFERENCE_SHARE.get(name, 1.0)


def method_overrides(name: str) -> list[str]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return list(METHODS[name][0])
