"""One small adapter per raw schema: a raw row -> ``RawProblem`` (or the reason it cannot be used). Pure.

The schemas and their quirks are those of docs/data.md (from the data sets' cards): AIME answers zero-padded
("025", kept: the checker compares numerically), AMC answers as floats (142.0 -> "142"), Minerva answers as a
string or a list of 1-3 strings with trailing newlines, OlympiadBench ``final_answer`` a list of strings
(``['$69$,$84$']``) and ``solution`` a list, MATH-500 ``level`` an int and ``unique_id`` a path, hendrycks MATH
``level`` like "Level 3" and no answer column (the answer is the solution's last ``\\boxed{}``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from verl_pdai.core.extraction import extract_final_answer
from verl_pdai.core.normalization import ground_truth_candidates

MAX_PROBLEM_CHARS = 20_000
MAX_SOLUTION_CHARS = 50_000
MAX_ANSWER_CHARS = 1_000


@dataclass(frozen=True)
class RawProblem:
    problem: str
    answers: tuple[str, ...]  # acceptable final answers (the checker takes any of them)
    solution: str  # reference solution for hints; "" when the source has none
    source_id: str  # the row's own id where the source has one, else its index
    level: int | None = None  # the source's difficulty level, 1 (easy) .. 5 (hard)
    solution_too_long: bool = False  # the source had a reference over MAX_SOLUTION_CHARS: dropped, not cut


Adapter = Callable[[Mapping[str, object], int], "RawProblem | str"]


def _text(row: Mapping[str, object], key: str) -> str:
    value = row.get(key)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):  # OlympiadBench solution lists
        return "\n\n".join(str(v).strip() for v in value if isinstance(v, str) and v.strip())
    return ""


def _level(value: object) -> int | None:
    """1..5 from 3, "3" or "Level 3"; None for anything else ("Level ?", missing)."""
    match = re.fullmatch(r"\s*(?:level\s*)?([1-5])\s*", str(value), flags=re.IGNORECASE) if value is not None else None
    return int(match.group(1)) if match else None


def _problem(
    problem: str, answers: object, solution: str, source_id: object, level: int | None = None
) -> RawProblem | str:
    """The checks every schema shares: bounded sizes and a parseable answer; a string is the drop reason."""
    if not problem:
        return "no_problem"
    if len(problem) > MAX_PROBLEM_CHARS:
        return "problem_too_long"
    candidates = tuple(ground_truth_candidates(answers))
    if not candidates:
        return "no_answer"
    if any(len(c) > MAX_ANSWER_CHARS for c in candidates):
        return "answer_too_long"
    too_long = len(solution) > MAX_SOLUTION_CHARS  # cannot be a hint; the problem itself stays
    return RawProblem(problem, candidates, "" if too_long else solution, str(source_id), level, too_long)


def deepscaler(row: Mapping[str, object], index: int) -> RawProblem | str:
    return _problem(_text(row, "problem"), _text(row, "answer"), _text(row, "solution"), index)


def hendrycks_math(row: Mapping[str, object], index: int) -> RawProblem | str:
    solution = _text(row, "solution")
    answer = extract_final_answer(solution) or ""
    return _problem(_text(row, "problem"), answer, solution, index, _level(row.get("level")))


def aime2024(row: Mapping[str, object], index: int) -> RawProblem | str:
    source_id = row.get("id", index)
    return _problem(_text(row, "problem"), _text(row, "answer"), _text(row, "solution"), source_id)


def math500(row: Mapping[str, object], index: int) -> RawProblem | str:
    source_id = row.get("unique_id") or index
    return _problem(
        _text(row, "problem"), _text(row, "answer"), _text(row, "solution"), source_id, _level(row.get("level"))
    )


def amc(row: Mapping[str, object], index: int) -> RawProblem | str:
    answer = row.get("answer")
    if isinstance(answer, float) and not answer.is_integer():
        answer = repr(answer)
    return _problem(_text(row, "problem"), answer, "", row.get("id", index))


def minerva(row: Mapping[str, object], index: int) -> RawProblem | str:
    answer = row.get("answer")
    answers = [a.strip() for a in answer] if isinstance(answer, (list, tuple)) else answer
    return _problem(_text(row, "question"), answers, _text(row, "solution"), row.get("id", index))


def olympiadbench(row: Mapping[str, object], index: int) -> RawProblem | str:
    return _problem(_text(row, "question"), row.get("final_answer"), _text(row, "solution"), row.get("id", index))


@dataclass(frozen=True)
class Schema:
    adapter: Adapter
    columns: tuple[str, ...]  # the raw columns the adapter needs (checked before any row is read)
    hub_id: str  # default Hugging Face data set
    split: str
    config: str | None = None


SCHEMAS: dict[str, Schema] = {
    "deepscaler": Schema(deepscaler, ("problem", "answer"), "agentica-org/DeepScaleR-Preview-Dataset", "train"),
    "math": Schema(hendrycks_math, ("problem", "solution"), "DigitalLearningGmbH/MATH-lighteval", "train"),
    "aime2024": Schema(aime2024, ("problem", "answer"), "HuggingFaceH4/aime_2024", "train"),
    "math500": Schema(math500, ("problem", "answer"), "HuggingFaceH4/MATH-500", "test"),
    "amc": Schema(amc, ("problem", "answer"), "AI-MO/aimo-validation-amc", "train"),
    "minerva": Schema(minerva, ("question", "answer"), "math-ai/minervamath", "test"),
    "olympiadbench": Schema(
        olympiadbench, ("question", "final_answer"), "Hothan/OlympiadBench", "train", "OE_TO_maths_en_COMP"
    ),
}
TRAIN_DEFAULT = "deepscaler"
EVAL_DEFAULTS = ("aime2024", "math500", "amc", "minerva", "olympiadbench")


def schema_of(name: str) -> Schema:
    """The schema a data set name selects; the message lists the known ones."""
    schema = SCHEMAS.get(name)
    if schema is None:
        raise ValueError(f"unknown data set name {name!r}: use one of {sorted(SCHEMAS)} (NAME=ID_OR_PATH)")
    return schema
