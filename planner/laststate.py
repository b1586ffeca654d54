"""The planner's last answer on disk (``confscale-planner serve --state.file FILE``).

Written after every refresh, read once at start, so a restarted planner:

- answers ``/api/v1/capacity`` and ``/api/v1/placement`` with its last result until its
  first refresh succeeds (instead of 503 while the store is slow or down), and
- keeps its hysteresis: nodes it had taken out stay out until their pressure falls to
  the "back" threshold, so a restart does not flap a balancer.

The file is one JSON object, replaced atomically (write to a sibling, then rename).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confscale.planner.placement import Placement
from confscale.planner.snapshot import Snapshot, json_safe

SCHEMA = 1


@dataclass(frozen=True)
class LastResult:
    """What a previous run of the planner last published."""

    saved_at: float
    out: frozenset[str]
    placement_json: bytes | None
    capacity_json: bytes | None


def save_last_result(
    path: Path, placement: Placement, snapshot: Snapshot | None, *, now: float
) -> None:
    """Write ``placement`` and the snapshot's capacity answer to ``path`` atomically."""
    document = {
        "schema": SCHEMA,
        "saved_at": now,
        "out": sorted(placement.out),
        "placement": json_safe(placement.as_dict()),
        "capacity": None if snapshot is None else json.loads(snapshot.capacity_json),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document))
    os.replace(temporary, path)


def load_last_result(path: Path) -> LastResult | None:
    """The saved result, None when there is none yet; ValueError naming the file if bad."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the planner's last result: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a planner state file (schema {SCHEMA} expected)")
    out = document.get("out")
    if not isinstance(out, list) or not all(isinstance(n, str) for n in out):
        raise ValueError(f"{path}: key out: expected a list of node names")

    def body(key: str) -> bytes | None:
        value = document.get(key)
        return None if value is None else json.dumps(value).encode()

    return LastResult(
        saved_at=float(document.get("saved_at") or 0.0),
        out=frozenset(out),
        placement_json=body("placement"),
        capacity_json=body("capacity"),
    )


@dataclass
class LastResultFile:
    """An actuator that records every new placement (and the current snapshot) to disk.

    ``snapshot`` is bound to the service's reader once the service exists.
    """

    path: Path
    snapshot: Callable[[], Snapshot | None] = field(default=lambda: None)
    clock: Callable[[], float] = time.time

    def apply(self, placement: Placement) -> None:
        save_last_result(self.path, placement, self.snapshot(), now=self.clock())
