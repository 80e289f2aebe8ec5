"""Reading the problems to route: the eval command's ``samples.jsonl`` or any JSONL of
``{"problem", "ground_truth"?, "responses": [...]}`` (``problem_id``, ``benchmark``, ``correct`` optional).

The file is untrusted: lines, responses and texts are size-capped, and a line that is not a usable row is
counted and reported with its line number and reason instead of stopping the run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from verl_pdai.core.answers import ground_truth_candidates

__all__ = ["InputError", "MalformedLine", "ProblemInput", "read_problems"]

MAX_LINE_BYTES = 64 * 1024 * 1024
MAX_RESPONSES = 256  # per problem (k is usually 1..64)
# A longer response keeps its head (what the step checks read) and its tail (where the final answer is).
MAX_RESPONSE_CHARS = 400_000
_KEEP_HEAD = 380_000
_KEEP_TAIL = MAX_RESPONSE_CHARS - _KEEP_HEAD
MAX_PROBLEM_CHARS = 100_000


class InputError(Exception):
    """The input cannot be used at all (missing file, nothing readable): the message says what to fix."""


@dataclass(frozen=True)
class MalformedLine:
    line: int
    reason: str


@dataclass
class ProblemInput:
    problem_id: str
    benchmark: str
    problem: str
    ground_truth: object  # str | list | float | None, as given
    responses: list[str]
    given_correct: list[bool | None] = field(default_factory=list)  # the eval's per-sample labels, if any
    notes: list[str] = field(default_factory=list)

    @property
    def has_ground_truth(self) -> bool:
        return bool(ground_truth_candidates(self.ground_truth))


def _cap_response(text: str) -> str:
    if len(text) <= MAX_RESPONSE_CHARS:
        return text
    return text[:_KEEP_HEAD] + text[-_KEEP_TAIL:]


def _derived_id(benchmark: str, problem: str, line: int) -> str:
    if not problem:
        return f"line/{line}"
    digest = hashlib.sha256(problem.encode("utf-8", errors="replace")).hexdigest()[:16]
    return f"{benchmark or 'input'}/{digest}"


def _parse_row(row: object, line: int) -> ProblemInput | str:
    """A ProblemInput, or the reason the row cannot be used."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    responses = row.get("responses")
    if not isinstance(responses, list) or not responses:
        return 'no "responses" list (a non-empty list of response strings is required)'
    if not all(isinstance(r, str) or r is None for r in responses):
        return '"responses" must hold strings'
    notes = []
    if len(responses) > MAX_RESPONSES:
        notes.append(f"kept the first {MAX_RESPONSES} of {len(responses)} responses")
        responses = responses[:MAX_RESPONSES]
    problem = row.get("problem")
    problem = problem[:MAX_PROBLEM_CHARS] if isinstance(problem, str) else ""
    benchmark = row.get("benchmark") if isinstance(row.get("benchmark"), str) else ""
    problem_id = row.get("problem_id")
    if not isinstance(problem_id, (str, int)) or isinstance(problem_id, bool) or str(problem_id) == "":
        problem_id = _derived_id(benchmark, problem, line)
    given = row.get("correct")
    given_correct: list[bool | None] = []
    if isinstance(given, list) and len(given) == len(row["responses"]):
        given_correct = [c if isinstance(c, bool) else None for c in given[: len(responses)]]
    return ProblemInput(
        problem_id=str(problem_id)[:1000],
        benchmark=benchmark[:200],
        problem=problem,
        ground_truth=row.get("ground_truth"),
        responses=[_cap_response(r or "") for r in responses],
        given_correct=given_correct,
        notes=notes,
    )


def read_problems(path: Path) -> tuple[list[ProblemInput], list[MalformedLine]]:
    """Rows of ``path`` and the lines that could not be used. Raises InputError for a missing or unusable file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path} (pass the eval command's samples.jsonl or a JSONL of rows)")
    problems: list[ProblemInput] = []
    malformed: list[MalformedLine] = []
    seen: dict[str, int] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES:
                malformed.append(MalformedLine(number, f"line longer than {MAX_LINE_BYTES} bytes"))
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = handle.readline(MAX_LINE_BYTES)
                continue
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                malformed.append(MalformedLine(number, f"not valid JSON: {str(exc)[:120]}"))
                continue
            parsed = _parse_row(row, number)
            if isinstance(parsed, str):
                malformed.append(MalformedLine(number, parsed))
                continue
            copies = seen.get(parsed.problem_id, 0)
            seen[parsed.problem_id] = copies + 1
            if copies:
                parsed.notes.append(f"duplicate problem_id {parsed.problem_id!r}: renamed")
                parsed.problem_id = f"{parsed.problem_id}#{copies + 1}"
            problems.append(parsed)
    return problems, malformed
