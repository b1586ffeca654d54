"""What an adapter changed on its balancer, remembered across planner restarts.

Adapters only undo their own changes and restore the operator's own settings (Scalelite's
``load_multiplier``), so after a restart they must still know which changes were theirs:
per node, a small record of plain values (booleans, numbers, a server id) lives in a
JSON file when ``--adapters.state-dir`` is given. The schema is fixed per adapter and
checked on load and save, so a record can never carry a secret or a checksum.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confscale.files import write_atomic

# field name → allowed JSON types (None = null allowed)
Schema = Mapping[str, tuple[type | None, ...]]


def _check(path: Path | None, node: object, record: object, schema: Schema) -> dict:
    where = f"{path}: node {node!r}" if path else f"node {node!r}"
    if not isinstance(node, str) or not isinstance(record, dict):
        raise ValueError(f"{where}: adapter state must map node names to objects")
    unknown = set(record) - set(schema)
    if unknown:
        raise ValueError(f"{where}: unknown adapter state fields {sorted(unknown)}")
    for key, value in record.items():
        kinds = schema[key]
        ok = (value is None and None in kinds) or any(
            kind is not None
            and isinstance(value, kind)
            and not (kind in (int, float) and isinstance(value, bool))
            for kind in kinds
        )
        if not ok or (isinstance(value, str) and len(value) > 128):
            raise ValueError(f"{where}: adapter state field {key!r} has a wrong value")
    return dict(record)


@dataclass
class NodeRecords:
    """node → record (a dict of plain values), saved to ``path`` atomically on change."""

    schema: Schema
    path: Path | None = None
    legacy_path: Path | None = None  # an old JSON list of node names ...
    legacy_field: str = "ours"  # ... each read as {legacy_field: True}
    records: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        source = self.path
        if source is None or not source.exists():
            source = self.legacy_path if self.legacy_path and self.legacy_path.exists() else None
        if source is None:
            return
        try:
            data = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{source}: cannot read adapter state: {exc}") from exc
        if source == self.legacy_path and isinstance(data, list):
            data = {str(node): {self.legacy_field: True} for node in data}
        if not isinstance(data, dict):
            raise ValueError(f"{source}: adapter state must be a JSON object of node records")
        self.records = {n: _check(source, n, r, self.schema) for n, r in data.items()}

    def get(self, node: str) -> dict | None:
        record = self.records.get(node)
        return None if record is None else dict(record)

    def snapshot(self) -> dict[str, dict]:
        return {n: dict(r) for n, r in self.records.items()}

    def put(self, node: str, record: Mapping[str, object] | None) -> None:
        """Set (or with None drop) one node's record; saves only when it changed."""
        if record is None:
            if node in self.records:
                del self.records[node]
                self._save()
            return
        checked = _check(self.path, node, dict(record), self.schema)
        if self.records.get(node) != checked:
            self.records[node] = checked
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        write_atomic(self.path, json.dumps(self.records, sort_keys=True, indent=1))
