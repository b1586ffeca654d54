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
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confscale.planner.placement import Placement
from confscale.planner.snapshot import Snapshot, json_safe

from confscale.files import write_atomic

SCHEMA = 1
MAX_STATE_BYTES = 64 * 1024 * 1024
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LastResult:
    """What a previous run of the planner last published (bodies checked on read)."""

    saved_at: float
    out: frozenset[str]
    placement: dict | None
    capacity: dict | None


def save_last_result(
    path: Path, placement: Placement, snapshot: Snapshot | None, *, now: float
) -> None:
    """Write ``placement`` and the snapshot's capacity answer to ``path`` atomically.

    Written to a sibling, flushed to disk (fsync) and renamed over the old file, then the
    folder is synced: a crash leaves the old file or the new one, never half of one.
    """
    document = {
        "schema": SCHEMA,
        "saved_at": now,
        "out": sorted(placement.out),
        "placement": json_safe(placement.as_dict()),
        "capacity": None if snapshot is None else json.loads(snapshot.capacity_json),
    }
    write_atomic(path, json.dumps(document))


def load_last_result(path: Path, *, now: float | None = None) -> LastResult | None:
    """The saved result; None when there is none or it cannot be used.

    A corrupt, truncated, oversized or wrong-schema file is logged and set aside as
    ``FILE.corrupt-<unix time>`` (kept for a post-mortem, never read again), so the planner
    starts without it instead of failing.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        return None
    except StateFileError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(now or time.time())}")
        try:
            os.replace(path, aside)
        except OSError as move:
            log.error("%s; cannot set it aside: %s", exc, move)
        else:
            log.error("%s; set aside as %s, starting without it", exc, aside)
        return None


class StateFileError(ValueError):
    """The state file cannot be used; the message names the file and what is wrong."""


def _read(path: Path) -> LastResult:
    try:
        if not path.is_file():
            if path.exists():
                raise StateFileError(f"{path}: not a regular file")
            raise FileNotFoundError(path)
        if path.stat().st_size > MAX_STATE_BYTES:
            raise StateFileError(f"{path}: larger than {MAX_STATE_BYTES} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError | StateFileError):
            raise
        raise StateFileError(f"{path}: cannot read the planner's last result: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise StateFileError(f"{path}: not a planner state file (schema {SCHEMA} expected)")
    out = document.get("out")
    if not isinstance(out, list) or not all(isinstance(n, str) for n in out):
        raise StateFileError(f"{path}: key out: expected a list of node names")
    saved_at = document.get("saved_at")
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float):
        raise StateFileError(f"{path}: key saved_at: expected a Unix time")
    placement, capacity = document.get("placement"), document.get("capacity")
    if placement is not None and not _is_placement(placement):
        raise StateFileError(f"{path}: key placement: not a placement answer")
    if capacity is not None and not (isinstance(capacity, dict) and "servers_needed" in capacity):
        raise StateFileError(f"{path}: key capacity: not a capacity answer")
    return LastResult(float(saved_at), frozenset(out), placement, capacity)


def _is_placement(body: object) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("nodes"), list):
        return False
    return all(
        isinstance(n, dict) and isinstance(n.get("node"), str) and "state" in n
        for n in body["nodes"]
    )


def aged(body: dict, *, made_at: float, now: float, max_age: float, restored: bool) -> dict:
    """``body`` with its age; once older than ``max_age`` marked stale, and a stale
    placement recommends nothing (every node stale, weight 0): an old answer never passes
    for a current one."""
    age = max(0.0, now - made_at)
    stale = age > max_age
    out = dict(body)
    out["answer"] = {
        "made_at": made_at,
        "age_seconds": round(age, 3),
        "stale": stale,
        "max_age_seconds": max_age,
        "restored": restored,
    }
    if stale and isinstance(body.get("nodes"), list):
        out["recommended"] = None
        out["nodes"] = [
            {**node, "state": "stale", "weight": 0.0} if isinstance(node, dict) else node
            for node in body["nodes"]
        ]
    return out


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
