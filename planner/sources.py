"""Where one unit's data comes from: its history loader, current reader and the discovery.

The command line names a history file or a Prometheus-compatible store, and optionally
an exporter for current data; these functions bind them to one
:class:`~planner.scope.Scope`, so every planning loop reads only its own pool's nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from confscale.planner.history import load_history
from confscale.planner.placement import NodeReading
from confscale.planner.prometheus import (
    PrometheusClient,
    load_prometheus_history,
    read_prometheus_current,
)
from confscale.planner.scope import POOLS_QUERY, TAGS_QUERY, Scope, scoped_client, units_from

STEP = 300.0


def file_loader(path: Path) -> Callable[[], pd.DataFrame]:
    """A history file is one pool (it has no pool column)."""
    return lambda: load_history(path)


def prometheus_loader(
    client: PrometheusClient, scope: Scope, *, lookback: float, node_lookback: float | None
) -> Callable[[], pd.DataFrame]:
    """The unit's history from the store (a tag's nodes are read anew at each load)."""

    def load() -> pd.DataFrame:
        end = time.time() // STEP * STEP  # on the 5-minute grid the history is kept in
        frame, _ = load_prometheus_history(
            scoped_client(client, scope),  # type: ignore[arg-type]  # same query interface
            start=end - lookback,
            end=end,
            node_lookback=node_lookback,
        )
        return frame

    return load


def prometheus_reader(
    client: PrometheusClient, scope: Scope
) -> Callable[[], Sequence[NodeReading]]:
    """The unit's current readings from instant queries."""
    return lambda: read_prometheus_current(scoped_client(client, scope))  # type: ignore[arg-type]


def discover_units(
    client: PrometheusClient, *, pools: Sequence[str] = (), tags: bool = True
) -> list[Scope]:
    """The pools with BBB data (restricted to ``pools`` when given) and their tags."""
    found = units_from(client.query(POOLS_QUERY), client.query(TAGS_QUERY) if tags else [])
    if pools:
        wanted = set(pools)
        found = [unit for unit in found if (unit.pool or "") in wanted]
    return found
