"""The /metrics body, rendered once per snapshot rather than once per scrape.

The poller hands each new snapshot over as soon as its cycle ends, so the render runs
in the poller's thread and a scrape only copies bytes. A snapshot that goes stale is
rendered once more in its stale form (up 0, no figures). The exporter's own process
figures (CPU, memory, file descriptors) and the ``extra`` collectors (the reload status)
are small and rendered fresh on every scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from itertools import chain

from confscale.exporter.collector import build_info, exporter_families, snapshot_text
from confscale.exporter.exposition import render
from confscale.exporter.poller import Snapshot
from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector


class MetricsPage:
    """Cached text exposition of the latest snapshot."""

    def __init__(
        self,
        source: Callable[[], Snapshot | None],
        clock: Callable[[], float] = time.time,
        *,
        extra: Sequence[Collector] = (),
    ) -> None:
        self._source = source
        self._clock = clock
        self._lock = threading.Lock()
        self._rendered: tuple[Snapshot | None, bool, bytes] | None = None
        self._process = (
            *extra,
            ProcessCollector(registry=None),
            PlatformCollector(registry=None),
        )

    def body(self) -> bytes:
        """The page for the current snapshot (rendered now only if not yet cached)."""
        pool = self.refresh(self._source())
        return pool + render(chain.from_iterable(c.collect() for c in self._process))

    def refresh(self, snapshot: Snapshot | None) -> bytes:
        now = self._clock()
        stale = snapshot is not None and snapshot.is_stale(now)
        with self._lock:
            cached = self._rendered
            if cached is not None and cached[0] is snapshot and cached[1] == stale:
                return cached[2]
            if snapshot is None:
                body = render([build_info()])
            else:
                # as render(SnapshotCollector(...).collect()), the nodes' texts joined
                text = snapshot_text(snapshot, stale=stale)
                body = text.encode("utf-8") + render([*exporter_families(snapshot), build_info()])
            self._rendered = (snapshot, stale, body)
            return body
