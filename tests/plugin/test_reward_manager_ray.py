"""The time bound inside a real async Ray actor, where verl runs reward managers (``RewardLoopManager``
wraps ``RewardLoopWorker`` with ``ray.remote``): signal-based timeouts cannot work there, worker processes do."""

from __future__ import annotations

import time

import pytest

from .verl_reward_helpers import agent_loop_sample, reward_config

PROMPT = "Add the numbers. Put the final answer within \\boxed{}."


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_overrunning_response_is_cut_and_flagged_inside_a_ray_actor(ray_session, tokenizer_dir, tokenizer):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    ray = ray_session
    # a bound far below what a long response needs, so the kill path runs for real inside the actor
    config = reward_config(tokenizer_dir, ["+reward.reward_kwargs.timeout_s=0.02"])
    actor = ray.remote(RewardLoopWorker).remote(config)
    short = tokenizer.encode("$1+1=2$, so \\boxed{2}.", add_special_tokens=False)
    long = tokenizer.encode("Step: $12 \\cdot 12 = 144$ and $13 \\cdot 13 = 169$.\n\n" * 6000, add_special_tokens=False)
    ray.get(actor.compute_score_batch.remote(agent_loop_sample(tokenizer, PROMPT, short, "2")))  # workers up

    start = time.monotonic()
    outs = ray.get(actor.compute_score_batch.remote(agent_loop_sample(tokenizer, PROMPT, long, "2"))) + ray.get(
        actor.compute_score_batch.remote(agent_loop_sample(tokenizer, PROMPT, short, "2"))
    )
    elapsed = time.monotonic() - start
    long_info, short_info = outs[0]["reward_extra_info"], outs[1]["reward_extra_info"]
    assert long_info["timed_out"] is True and outs[0]["reward_score"] == -0.2  # the floor: a time-out never pays
    assert short_info["timed_out"] is False and short_info["acc"] == 1.0  # the replaced worker serves
    assert elapsed < 10
    ray.kill(actor)
