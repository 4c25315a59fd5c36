"""What an import did, entity by entity: the result of import_config."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DISABLED = "disabled"  # --prune: still referenced (keys, usage history, targets)
    DELETED = "deleted"  # --prune: nothing referenced it
    KEPT = "kept"  # --prune: referenced and cannot be disabled (teams)


ENTITIES = ("provider", "model", "route", "team", "guardrail")


@dataclass
class ImportReport:
    changes: list[tuple[str, str, Action]] = field(default_factory=list)  # (entity, name, action)
    dry_run: bool = False

    def add(self, entity: str, name: str, action: Action) -> None:
        self.changes.append((entity, name, action))

    def count(self, action: Action, entity: str | None = None) -> int:
        return sum(1 for e, _, a in self.changes if a == action and entity in (None, e))

    @property
    def created(self) -> int:
        return self.count(Action.CREATED)

    @property
    def updated(self) -> int:
        return self.count(Action.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(Action.UNCHANGED)

    @property
    def changed(self) -> bool:
        return any(a not in (Action.UNCHANGED, Action.KEPT) for _, _, a in self.changes)

    def summary(self) -> list[str]:
        """One line per entity, then a total; the --prune actions only when they happened."""

        def counts(entity: str | None) -> str:
            parts = [f"{self.count(a, entity)} {a}" for a in (Action.CREATED, Action.UPDATED, Action.UNCHANGED)]
            for action in (Action.DELETED, Action.DISABLED, Action.KEPT):
                if n := self.count(action, entity):
                    parts.append(f"{n} {action}")
            return ", ".join(parts)

        lines = [f"{entity + 's:':<11}{counts(entity)}" for entity in ENTITIES]
        return [*lines, f"{'total:':<11}{counts(None)}"]
