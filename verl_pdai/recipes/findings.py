"""What a recipe check found: problems (the run would fail or train wrongly), warnings, and what was not checked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One finding: which check, what is wrong, and how to fix it."""

    check: str
    message: str
    fix: str

    def render(self) -> str:
        return f"[{self.check}] {self.message}\n    fix: {self.fix}"


@dataclass
class Findings:
    """Everything a dry run found; a recipe passes when ``problems`` is empty."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)

    def problem(self, check: str, message: str, fix: str) -> None:
        self.problems.append(Problem(check, message, fix))

    def warn(self, check: str, message: str, fix: str) -> None:
        self.warnings.append(Problem(check, message, fix))

    def skip(self, what: str) -> None:
        self.not_checked.append(what)

    @property
    def ok(self) -> bool:
        return not self.problems
