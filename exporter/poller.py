"""The poll cycle: every source of every node, concurrently, into an immutable snapshot.

A background thread runs one cycle per interval on its own clock. Each cycle submits
one task per (node, source) to a fixed pool of worker threads sharing one keep-alive
HTTP client, so the number of open connections and queued tasks is bounded by the
configuration. ``/metrics`` only ever reads the last finished snapshot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from confscale.exporter.bbbfigures import BbbFigures
from confscale.exporter.coalesce import Coalescer
from confscale.exporter.concurrency import Limiter
from confscale.exporter.config import NodeConfig, PoolConfig
from confscale.exporter.exposition import Labels, Writer
from confscale.exporter.fetch import DEFAULT_MAX_BODY_BYTES, HttpClient, PollError
from confscale.exporter.registry import BY_KEY

log = logging.getLogger("confscale.exporter")

DEFAULT_WORKERS = 64
BASE_LABELS = ("node", "pool")  # documentation only: a node without a pool has no pool label


def node_label_sets(config: PoolConfig) -> dict[str, Labels]:
    """Per node its base labels: ``node``, and ``pool`` when the node or the file names one."""
    labels: dict[str, Labels] = {}
    for node in config.nodes:
        pool = node.pool or config.pool
        labels[node.name] = Labels({"node": node.name, **({"pool": pool} if pool else {})})
    return labels


def source_text(
    source: str, figures: object, labels: Labels, writer: Writer | None = None
) -> tuple[str, ...]:
    """``labels``'s text, then the lines of each family of ``source`` for one node."""
    kind = BY_KEY[source]
    families = kind.families(BASE_LABELS)
    families.add(figures, labels)
    writer = writer or Writer()
    return (labels.text, *(writer.lines(family) for family in families.families()))


@dataclass(frozen=True)
class SourceResult:
    """The outcome of polling one source of one node once."""

    node: str
    source: str
    duration: float
    finished_at: float
    figures: object | None = None  # what the source's poll returned (its kind's figures)
    reason: str | None = None
    # the node's label text, then the lines of each of the kind's families for these
    # figures: written by the worker when the poll completed (collector.snapshot_text)
    text: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.figures is not None


@dataclass(frozen=True)
class Snapshot:
    """One complete poll cycle plus the state that outlives cycles (counters, last success)."""

    config: PoolConfig
    results: tuple[SourceResult, ...]
    started_at: float
    finished_at: float
    duration: float
    errors: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    last_success: Mapping[tuple[str, str], float] = field(default_factory=dict)
    # node -> (meetings, breakout rooms) seen starting since the node's first good poll
    started: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def is_stale(self, now: float) -> bool:
        """Data older than two intervals is not served as current."""
        return now - self.finished_at > 2 * self.config.interval


def poll_source(
    client: HttpClient,
    node: NodeConfig,
    source: str,
    *,
    timeout: float,
    max_bytes: int,
    clock: Callable[[], float] = time.time,
    labels: Labels | None = None,
) -> SourceResult:
    """Poll one source of one node; never raises, the failure is in ``reason``. With the
    node's ``labels``, a success also carries its families' text (``SourceResult.text``)."""
    started = time.monotonic()
    figures: object | None = None
    reason: str | None = None
    try:
        kind, settings = BY_KEY.get(source), node.source(source)
        if kind is None or settings is None:
            raise PollError("internal", f"source {source} is not configured")
        figures = kind.poll(client, settings, timeout=timeout, max_bytes=max_bytes)
    except PollError as exc:
        reason = exc.reason
        log.debug(
            "poll failed node=%s source=%s reason=%s detail=%r",
            node.name,
            source,
            exc.reason,
            exc.detail,
        )
    except Exception as exc:  # a bug must cost one poll, not the poll loop
        reason = "internal"
        # the type and where it was raised; never the message, which may hold a signed URL
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.warning(
            "poll crashed node=%s source=%s error=%s at=%s:%d",
            node.name,
            source,
            type(exc).__name__,
            Path(frame.filename).name,
            frame.lineno or 0,
        )
    text = None
    if figures is not None and labels is not None:
        try:
            text = source_text(source, figures, labels)
        except Exception as exc:  # the page writes it again; a bug must not cost the poll
            log.warning(
                "text of node=%s source=%s failed error=%s", node.name, source, type(exc).__name__
            )
    return SourceResult(
        node=node.name,
        source=source,
        duration=time.monotonic() - started,
        finished_at=clock(),
        figures=figures,
        reason=reason,
        text=text,
    )


class PollState:
    """Counters and last-success times that survive cycles and reloads."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str, str], int] = {}
        self.last_success: dict[tuple[str, str], float] = {}
        self.was_up: dict[tuple[str, str], bool] = {}
        self.started: dict[str, tuple[int, int]] = {}
        # the internal meeting IDs (64-bit digests, at most MAX_TRACKED_IDS per node) of
        # the last good poll: a meeting is new when its ID was not there
        self._seen: dict[str, tuple[frozenset[int], frozenset[int]]] = {}
        # the last result of each slower source, reused until its next poll is due
        self.held: dict[tuple[str, str], SourceResult] = {}
        # how long each source's last poll took: the next cycle starts the longest first
        self.duration: dict[tuple[str, str], float] = {}

    def _count_started(self, node: str, figures: BbbFigures) -> None:
        seen = self._seen.get(node)
        if seen is None:
            self.started[node] = (0, 0)  # running before the first poll: not seen starting
        else:
            meetings, breakouts = self.started[node]
            self.started[node] = (
                meetings + len(figures.meeting_ids - seen[0]),
                breakouts + len(figures.breakout_ids - seen[1]),
            )
        self._seen[node] = (figures.meeting_ids, figures.breakout_ids)

    def record(self, results: tuple[SourceResult, ...]) -> None:
        for result in results:
            key = (result.node, result.source)
            self.duration[key] = result.duration
            if isinstance(result.figures, BbbFigures):
                self._count_started(result.node, result.figures)
            if result.ok:
                self.last_success[key] = result.finished_at
            else:
                error_key = (result.node, result.source, result.reason or "internal")
                self.errors[error_key] = self.errors.get(error_key, 0) + 1
            if self.was_up.get(key, True) != result.ok:
                log.warning(
                    "node=%s source=%s is %s%s",
                    result.node,
                    result.source,
                    "up" if result.ok else "down",
                    "" if result.ok else f" reason={result.reason}",
                )
            self.was_up[key] = result.ok

    def prune(self, config: PoolConfig) -> None:
        """Forget nodes and sources that are no longer configured."""
        keep = {(n.name, s) for n in config.nodes for s in n.sources()}
        self.errors = {k: v for k, v in self.errors.items() if (k[0], k[1]) in keep}
        self.last_success = {k: v for k, v in self.last_success.items() if k in keep}
        self.was_up = {k: v for k, v in self.was_up.items() if k in keep}
        bbb = {n.name for n in config.nodes if "bbb" in n.sources()}
        self.started = {k: v for k, v in self.started.items() if k in bbb}
        self._seen = {k: v for k, v in self._seen.items() if k in bbb}
        self.held = {k: v for k, v in self.held.items() if k in keep}
        self.duration = {k: v for k, v in self.duration.items() if k in keep}

    def longest_first(self, tasks: list[tuple[NodeConfig, str]]) -> list[tuple[NodeConfig, str]]:
        """``tasks`` by their last poll's duration, longest first (a stable sort: new
        sources and equals keep the configured order). A source that timed out last time
        starts at once beside the others instead of when the queue reaches it, so with a
        worker for each the cycle is one timeout, not the healthy polls plus a timeout."""
        last = self.duration
        return sorted(tasks, key=lambda task: -last.get((task[0].name, task[1]), 0.0))

    def due(self, node: NodeConfig, source: str, now: float) -> SourceResult | None:
        """The held result of a slower source that is not due yet, else None (poll it)."""
        kind = BY_KEY.get(source)
        every = kind.interval(node.source(source)) if kind is not None else None
        held = self.held.get((node.name, source))
        if every is None or held is None or now - held.finished_at >= every:
            return None
        return held

    def hold(self, results: tuple[SourceResult, ...], nodes: dict[str, NodeConfig]) -> None:
        """Keep the successes of slower sources; a failure is retried the next cycle."""
        for result in results:
            kind, node = BY_KEY.get(result.source), nodes.get(result.node)
            if kind is None or node is None or kind.every is None:
                continue
            if result.ok:
                self.held[(result.node, result.source)] = result
            else:
                self.held.pop((result.node, result.source), None)


class Poller:
    """Runs poll cycles in a background thread and keeps the last complete snapshot."""

    def __init__(
        self,
        config: PoolConfig,
        *,
        workers: int = DEFAULT_WORKERS,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._max_bytes = max_bytes
        self._clock = clock
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="confscale-poll"
        )
        self._client = HttpClient(connections_per_host=workers, hosts=2 * len(config.nodes))
        # polls that answered quickly last time run from one queue on at most the
        # limiter's number of workers, set after each cycle (exporter/concurrency.py)
        self._limiter = Limiter(workers)
        self._queue: deque[tuple[Future[SourceResult], tuple[Any, ...]]] = deque()
        self._state = PollState()
        self._probes: Coalescer[Snapshot] = Coalescer()
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Callable[[Snapshot], object] | None = None

    @property
    def config(self) -> PoolConfig:
        return self._config

    def snapshot(self) -> Snapshot | None:
        """The last complete cycle (None before the first one ends)."""
        return self._snapshot

    def on_snapshot(self, listener: Callable[[Snapshot], object]) -> None:
        """Call ``listener`` (in the poller's thread) with every new snapshot."""
        self._listener = listener

    def replace_config(self, config: PoolConfig) -> None:
        """Use ``config`` from the next cycle on (started at once); counters are kept."""
        with self._lock:
            self._config = config
            self._state.prune(config)
        self._wake.set()

    @property
    def concurrency(self) -> int:
        """How many quick polls may run at once in the next cycle (exporter/concurrency.py)."""
        return self._limiter.limit

    def _run_queue(
        self,
        queue: deque[tuple[Future[SourceResult], tuple[Any, ...]]],
        drained: list[tuple[float, float]],
    ) -> None:
        """One of the cycle's quick-poll workers: polls from the shared queue back to back
        (no hand-off to another thread between them) until it is empty, then notes when
        (monotonic and process CPU seconds) in ``drained``."""
        while not self._stop.is_set():
            try:
                future, args = queue.popleft()
            except IndexError:
                drained.append((time.monotonic(), time.process_time()))
                return
            if not future.set_running_or_notify_cancel():
                continue  # an overrun cancelled it
            try:
                future.set_result(self._task(*args))
            except BaseException as exc:  # poll_source does not raise; keep the future honest
                future.set_exception(exc)

    def _task(
        self, node: NodeConfig, source: str, timeout: float, labels: Labels | None
    ) -> SourceResult:
        return poll_source(
            self._client,
            node,
            source,
            timeout=timeout,
            max_bytes=self._max_bytes,
            clock=self._clock,
            labels=labels,
        )

    def probe(self, node: NodeConfig) -> Snapshot:
        """Poll one node now, outside the cycle, into a snapshot of its own (``/probe``).

        Concurrent probes of one node share one poll, and a probe finished less than
        PROBE_REUSE_SECONDS ago is served again (exporter/coalesce.py).
        """
        config = self._config
        return self._probes.get(
            (node, config.pool, config.timeout),
            lambda: probe_node(
                self._client, node, config, max_bytes=self._max_bytes, clock=self._clock
            ),
        )

    def run_cycle(self) -> Snapshot:
        """Poll every source of every node once and publish the snapshot."""
        config = self._config
        started_wall, started, cpu = self._clock(), time.monotonic(), time.process_time()
        pairs = [(node, source) for node in config.nodes for source in node.sources()]
        with self._lock:
            held = {(n.name, s): self._state.due(n, s, started_wall) for n, s in pairs}
        tasks = [(node, source) for node, source in pairs if held[(node.name, source)] is None]
        with self._lock:
            tasks = self._state.longest_first(tasks)
            # slow last time (a timeout, an answer near it): its waiting is what threads are for
            slow = {
                (n.name, s)
                for n, s in tasks
                if self._state.duration.get((n.name, s), 0.0) >= config.timeout / 2
            }
        labels = node_label_sets(config)
        futures: list[Future[SourceResult]] = []
        quick: deque[tuple[Future[SourceResult], tuple[Any, ...]]] = deque()
        for node, source in tasks:
            args = (node, source, config.timeout, labels[node.name])
            if (node.name, source) in slow:  # started first, each on a worker of its own
                futures.append(self._executor.submit(self._task, *args))
            else:
                future: Future[SourceResult] = Future()
                quick.append((future, args))
                futures.append(future)
        self._queue = quick
        gated = len(quick)
        drained: list[tuple[float, float]] = []  # when each quick worker found the queue empty
        for _ in range(min(self._limiter.limit, gated)):
            self._executor.submit(self._run_queue, quick, drained)
        # A cycle gets one interval: what the workers did not reach by then is an overrun
        # (too few workers for the pool), not a reason to delay every other node.
        done, _ = wait(futures, timeout=config.interval)
        fresh = {
            (node.name, source): future.result()
            if future in done
            else self._overrun(node, source, future, config.interval)
            for (node, source), future in zip(tasks, futures, strict=True)
        }
        polled = tuple(fresh.values())
        # every pair was polled now or is held (the filter drops nothing; it types the tuple)
        either = (fresh.get((n.name, s)) or held[(n.name, s)] for n, s in pairs)
        results = tuple(r for r in either if r is not None)
        with self._lock:
            if config is not self._config:
                # Reloaded meanwhile: publish (and count) only nodes still configured.
                names = {node.name for node in self._config.nodes}
                results = tuple(r for r in results if r.node in names)
                polled = tuple(r for r in polled if r.node in names)
                config = dataclasses.replace(
                    config, nodes=tuple(n for n in config.nodes if n.name in names)
                )
            self._state.record(polled)  # a held result was counted when it was fresh
            self._state.hold(polled, {n.name: n for n in config.nodes})
            snapshot = Snapshot(
                config=config,
                results=results,
                started_at=started_wall,
                finished_at=self._clock(),
                duration=time.monotonic() - started,
                errors=MappingProxyType(dict(self._state.errors)),
                last_success=MappingProxyType(dict(self._state.last_success)),
                started=MappingProxyType(dict(self._state.started)),
            )
            self._snapshot = snapshot
        log.debug("cycle done nodes=%d duration=%.3fs", len(config.nodes), snapshot.duration)
        late = snapshot.duration > config.interval / 2 or any(r.reason == "overrun" for r in polled)
        before = self._limiter.limit
        # The gated polls' own span: from the start until the last quick worker found the
        # queue empty. Sources that wait out a timeout on workers of their own stretch the
        # cycle, not the quick polls: judged by the whole cycle, a pool with dead nodes
        # looked idle and let every worker in (256 bodies in flight, 150 MB).
        ended, spent = max(drained) if drained else (time.monotonic(), time.process_time())
        limit = self._limiter.observe(
            cpu=spent - cpu,
            wall=ended - started,
            polls=gated,
            late=late,
        )
        if limit != before:
            log.debug("quick polls at once limit=%d was=%d", limit, before)
        if self._listener is not None:
            self._listener(snapshot)
        return snapshot

    def _overrun(
        self, node: NodeConfig, source: str, future: Future[SourceResult], budget: float
    ) -> SourceResult:
        future.cancel()  # not started yet: drop it; running: it finishes on its own
        return SourceResult(
            node=node.name,
            source=source,
            duration=budget,
            finished_at=self._clock(),
            reason="overrun",
        )

    def start(self) -> None:
        """Start the background loop (one cycle at once, then one per interval)."""
        self._thread = threading.Thread(target=self._loop, name="confscale-poller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_cycle()
            except Exception as exc:  # keep polling; the snapshot goes stale visibly
                log.error("poll cycle failed error=%s", type(exc).__name__)
            wait = self._config.interval - (time.monotonic() - started)
            self._wake.wait(max(wait, 0.0))
            self._wake.clear()

    def stop(self) -> None:
        """Stop at once: polls in flight end now (as timeouts), nothing new starts."""
        self._stop.set()
        self._wake.set()
        self._client.close()
        while self._queue:  # quick polls not started: cancelled, so the cycle's wait ends
            with contextlib.suppress(IndexError):
                self._queue.popleft()[0].cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._thread is not None:
            self._thread.join(timeout=self._config.timeout + 5)


def probe_node(
    client: HttpClient,
    node: NodeConfig,
    config: PoolConfig,
    *,
    max_bytes: int,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """Poll one node now with fresh state: its own counters, no history (``/probe``).

    The node's sources are polled side by side, so a probe lasts about one timeout.
    """
    started_wall, started = clock(), time.monotonic()
    sources = node.sources()
    with ThreadPoolExecutor(
        max_workers=len(sources), thread_name_prefix="confscale-probe"
    ) as executor:
        results = tuple(
            executor.map(
                lambda source: poll_source(
                    client, node, source, timeout=config.timeout, max_bytes=max_bytes, clock=clock
                ),
                sources,
            )
        )
    state = PollState()
    state.record(results)
    probe_config = PoolConfig(
        nodes=(node,),
        pool=config.pool,
        interval=config.interval,
        timeout=config.timeout,
        path=config.path,
    )
    return Snapshot(
        config=probe_config,
        results=results,
        started_at=started_wall,
        finished_at=clock(),
        duration=time.monotonic() - started,
        errors=state.errors,
        last_success=state.last_success,
    )
