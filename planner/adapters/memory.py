"""What an adapter changed (servers it cordoned, bridges it drained), across restarts.

Adapters only undo their own changes; after a planner restart they must still know which
ones were theirs, so the set lives in a small JSON file when a state directory is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RememberedNodes:
    """A set of node names, saved to ``path`` (atomically) on every change."""

    path: Path | None = None
    nodes: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: cannot read adapter state: {exc}") from exc
        if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
            raise ValueError(f"{self.path}: adapter state must be a JSON list of node names")
        self.nodes = set(data)

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def frozen(self) -> frozenset[str]:
        return frozenset(self.nodes)

    def add(self, node: str) -> None:
        if node not in self.nodes:
            self.nodes.add(node)
            self._save()

    def discard(self, node: str) -> None:
        if node in self.nodes:
            self.nodes.discard(node)
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        temporary.write_text(json.dumps(sorted(self.nodes)))
        os.replace(temporary, self.path)
