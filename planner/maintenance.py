"""Maintenance mode: nodes an operator takes out of placement and capacity on purpose.

One :class:`MaintenanceRegistry` per planner (shared by every pool's loop). An entry says
which node, why, who, since when and optionally until when; it is kept in a state file
(``--maintenance.file``; written with fsync and an atomic rename, validated on read) so
it survives a restart, and it ends by itself when its end time passes. The readers mark
a node's readings (:func:`with_maintenance`), so the placement calls it ``maintenance``
(weight 0, not online capacity; the adapters cordon or drain it) and ``/metrics``
exports ``confscale_node_maintenance{node,pool} 1``, on which Alertmanager inhibits the
node's alerts (alerts/alertmanager.yml).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from confscale.planner.placement import NodeReading

from confscale.files import write_atomic

log = logging.getLogger(__name__)
SCHEMA = 1
NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")  # the exporter's node names
WHO = re.compile(r"^[\w.@+-]{1,64}$")
MAX_REASON = 200
MAX_ENTRIES = 1000  # one file per planner; more is a bug upstream, not maintenance
MAX_FILE_BYTES = 1 << 20


class MaintenanceError(ValueError):
    """A request or state file that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class Maintenance:
    """One node in maintenance."""

    node: str
    reason: str
    by: str
    since: float
    until: float | None = None  # None: until an operator ends it
    pool: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        end = "" if self.until is None else f" until {_iso(self.until)}"
        return f"maintenance by {self.by}{end}: {self.reason}"


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def checked(
    node: object, reason: object, by: object, until: object, pool: object, *, now: float
) -> Maintenance:
    """A validated entry from request values (MaintenanceError naming the field)."""
    if not isinstance(node, str) or not NODE.match(node):
        raise MaintenanceError(f"node: expected a node name, got {str(node)[:70]!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise MaintenanceError("reason: say why the node goes into maintenance")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise MaintenanceError(f"reason: at most {MAX_REASON} characters, got {len(reason)}")
    if not isinstance(by, str) or not WHO.match(by):
        raise MaintenanceError("by: expected a user name (letters, digits, . @ + - _)")
    end: float | None = None
    if until is not None:
        if isinstance(until, bool) or not isinstance(until, int | float):
            raise MaintenanceError("until: expected a Unix time in seconds")
        end = float(until)
        if not math.isfinite(end) or end <= now:
            raise MaintenanceError("until: the end time must lie in the future")
        if end > now + 366 * 86400:
            raise MaintenanceError("until: at most a year ahead (end it by hand otherwise)")
    if pool is not None and (not isinstance(pool, str) or not re.match(r"^[\w.-]{1,63}$", pool)):
        raise MaintenanceError(f"pool: expected a pool name, got {str(pool)[:70]!r}")
    return Maintenance(node, reason, by, now, end, pool)


class MaintenanceRegistry:
    """The nodes in maintenance; thread-safe; persisted to ``path`` when given."""

    def __init__(self, path: Path | None = None, *, clock: Callable[[], float] = time.time):
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Maintenance] = {} if path is None else load(path)
        self.version = 0  # changes with every start, end or expiry (caches key on it)

    def active(self) -> dict[str, Maintenance]:
        """The current entries; ones whose end time passed are ended (and logged) here."""
        now = self._clock()
        with self._lock:
            expired = [e for e in self._entries.values() if e.until is not None and e.until <= now]
            for entry in expired:
                del self._entries[entry.node]
                log.info(
                    "maintenance of %s ended: its end time passed (set by %s: %s)",
                    entry.node,
                    entry.by,
                    entry.reason,
                )
            if expired:
                self._changed()
            return dict(self._entries)

    def start(self, entry: Maintenance) -> Maintenance:
        with self._lock:
            if entry.node not in self._entries and len(self._entries) >= MAX_ENTRIES:
                raise MaintenanceError(f"at most {MAX_ENTRIES} nodes in maintenance")
            self._entries[entry.node] = entry
            self._changed()
        log.info("maintenance of %s started by %s: %s", entry.node, entry.by, entry.describe())
        return entry

    def end(self, node: str, by: str) -> Maintenance | None:
        with self._lock:
            entry = self._entries.pop(node, None)
            if entry is not None:
                self._changed()
        if entry is not None:
            log.info("maintenance of %s ended by %s (was: %s)", node, by, entry.describe())
        return entry

    def _changed(self) -> None:  # under the lock
        self.version += 1
        if self._path is not None:
            save(self._path, list(self._entries.values()))


def save(path: Path, entries: Sequence[Maintenance]) -> None:
    """Write the entries atomically: a sibling file, fsync, rename, fsync the folder."""
    document = {"schema": SCHEMA, "nodes": [e.as_dict() for e in entries]}
    write_atomic(path, json.dumps(document))


def load(path: Path) -> dict[str, Maintenance]:
    """The saved entries; none without a file; MaintenanceError naming the file if bad.

    A bad file stops the planner rather than bringing nodes back into placement silently.
    """
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise MaintenanceError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if isinstance(exc, MaintenanceError):
            raise
        raise MaintenanceError(f"{path}: cannot read the maintenance state: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise MaintenanceError(f"{path}: not a maintenance state file (schema {SCHEMA})")
    nodes = document.get("nodes")
    if not isinstance(nodes, list) or len(nodes) > MAX_ENTRIES:
        raise MaintenanceError(f"{path}: key nodes: expected a list of entries")
    entries: dict[str, Maintenance] = {}
    for index, raw in enumerate(nodes):
        if not isinstance(raw, dict):
            raise MaintenanceError(f"{path}: nodes[{index}]: expected an entry")
        since = raw.get("since")
        if isinstance(since, bool) or not isinstance(since, int | float):
            raise MaintenanceError(f"{path}: nodes[{index}]: since: expected a Unix time")
        try:
            entry = checked(
                raw.get("node"),
                raw.get("reason"),
                raw.get("by"),
                None,
                raw.get("pool"),
                now=float(since),
            )
        except MaintenanceError as exc:
            raise MaintenanceError(f"{path}: nodes[{index}]: {exc}") from None
        until = raw.get("until")
        if until is not None and (isinstance(until, bool) or not isinstance(until, int | float)):
            raise MaintenanceError(f"{path}: nodes[{index}]: until: expected a Unix time")
        entries[entry.node] = replace(entry, until=None if until is None else float(until))
    return entries


def with_maintenance(
    read: Callable[[], Sequence[NodeReading]], registry: MaintenanceRegistry
) -> Callable[[], list[NodeReading]]:
    """``read`` with each reading of a node in maintenance marked (placement state)."""

    def readings() -> list[NodeReading]:
        active = registry.active()
        return [
            replace(r, maintenance=active[r.node].describe()) if r.node in active else r
            for r in read()
        ]

    return readings
