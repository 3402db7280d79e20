"""What `p2c check` reports: one problem, where it is and the nearest valid name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CheckProblem:
    flow: str
    service: str
    entity_set: str
    name: str
    problem: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.flow}: {self.service} {self.entity_set}.{self.name}: {self.problem}{hint}"
