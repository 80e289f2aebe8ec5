"""The preparation run: read every set, adapt, dedupe, decontaminate the training set, write, report."""

from __future__ import annotations

import json
from pathlib import Path

from verl_pdai.data.io import read_raw, write_parquet
from verl_pdai.data.rows import SetReport, adapt_rows, decontaminate, verl_rows
from verl_pdai.data.sources import RawProblem, schema_of

REPORT_FILE = "prepare_report.json"


def _adapted(name: str, location: str) -> tuple[list[RawProblem], SetReport]:
    schema = schema_of(name)
    report = SetReport(name)
    return adapt_rows(name, schema.adapter, read_raw(name, location, schema), report), report


def _print_table(reports: list[SetReport]) -> None:
    print(f"{'set':<14} {'read':>7} {'written':>7} {'dropped':>7} {'decontam':>8} {'solutions':>9} {'priors':>6}")
    for r in reports:
        dropped, removed = sum(r.dropped.values()), sum(r.decontaminated.values())
        coverage = f"{100 * r.with_solution / r.written:.0f}%" if r.written else "-"
        print(f"{r.name:<14} {r.read:>7} {r.written:>7} {dropped:>7} {removed:>8} {coverage:>9} {r.with_prior:>6}")


def _empty_message(report: SetReport, training: bool) -> str:
    """Why a set has no usable rows, with what to do about it."""
    if not report.read:
        why = "the source has no rows"
    else:
        lost = {**dict(report.dropped), **{f"decontaminated_{k}": v for k, v in report.decontaminated.items()}}
        why = f"all {report.read} rows were dropped {dict(sorted(lost.items()))}"
    option = "--train NAME=PATH" if training else "--eval NAME=PATH"
    return (
        f"{report.name}: no usable rows ({why}); nothing was written. Give a non-empty file in the {report.name} "
        f"raw schema of docs/data.md with {option}"
    )


def prepare(
    train: tuple[str, str], evals: list[tuple[str, str]], out: Path, *, max_train: int | None = None
) -> dict[str, object]:
    """Write ``train.parquet`` and ``<name>.parquet`` per benchmark into ``out``; returns the report it writes.

    Every set is read and checked before anything is written, so a bad source leaves ``out`` untouched."""
    names = [name for name, _ in evals]
    if len(set(names)) != len(names) or train[0] in names:
        raise ValueError(f"each data set once: train {train[0]!r}, benchmarks {names}")
    eval_sets = {name: _adapted(name, location) for name, location in evals}
    train_problems, train_report = _adapted(*train)
    train_problems = decontaminate(train_problems, {n: p for n, (p, _) in eval_sets.items()}, train_report)
    if max_train is not None:
        train_report.dropped["over_max_train"] += max(0, len(train_problems) - max_train)
        train_problems = train_problems[:max_train]
    outputs = {"train": verl_rows(train[0], train_problems, "train", train_report)}
    for name, (problems, report) in eval_sets.items():
        outputs[name] = verl_rows(name, problems, "test", report)
    # a 0-row file is not a data set: verl's loader yields no batch (train) or no score (benchmark), so fail here,
    # before anything is written, rather than after a launch
    for stem, report in (("train", train_report), *((n, r) for n, (_, r) in eval_sets.items())):
        if not outputs[stem]:
            raise ValueError(_empty_message(report, stem == "train"))
    for file_stem, rows in outputs.items():
        write_parquet(rows, Path(out) / f"{file_stem}.parquet")
    reports = [train_report, *(report for _, report in eval_sets.values())]
    _print_table(reports)
    removed = dict(train_report.decontaminated)
    print(f"decontamination: {sum(removed.values())} training problem(s) removed {removed or ''}".rstrip())
    result: dict[str, object] = {
        "train": {"name": train[0], "source": train[1], **train_report.as_dict()},
        "eval": {name: {"source": loc, **eval_sets[name][1].as_dict()} for name, loc in evals},
        "totals": {
            "train_written": train_report.written,
            "train_solution_coverage": train_report.as_dict()["solution_coverage"],
            "decontaminated": sum(removed.values()),
            "eval_written": {name: report.written for name, (_, report) in eval_sets.items()},
            "files": sorted(f"{stem}.parquet" for stem in outputs),
        },
    }
    (Path(out) / REPORT_FILE).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
