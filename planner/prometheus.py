"""History and current data from a Prometheus-compatible HTTP API.

Only ``/api/v1/query`` and ``/api/v1/query_range`` are used, so Thanos, Mimir and
VictoriaMetrics work unchanged. Ranges are chunked below Prometheus' limit of 11,000
points per series; each request has one total deadline and a size cap, and is retried
with backoff within a time budget; an unreachable store gives one clear error naming the
URL (credentials removed).

Derived figures come from the recording rules of ``alerts/`` (``node:…:ratio_rate5m``).
Backfilled blocks (``promtool tsdb create-blocks-from openmetrics``) have no recorded
series, so every rule has a fallback: the rule's own formula on the raw contract
series, used when the rule returns nothing.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import numpy as np
import pandas as pd
from confscale.exporter import contract as c
from confscale.exporter.contract import (
    BBB_METRICS,
    JITSI_HISTORY_GAUGES,
    JITSI_METRICS,
    READING_FIELDS,
)
from confscale.exporter.fetch import HttpClient, PollError
from confscale.planner.placement import NodeReading

from confscale.redact import redact_url as redact

CHUNK_POINTS = 2_000  # keeps one answer far below MAX_ANSWER_BYTES (about 28 bytes a point)


class PrometheusError(RuntimeError):
    """Prometheus answered with an error (bad query, limit…); the message is its own."""


class PrometheusUnreachable(PrometheusError):
    """No answer from the store after the retries."""


#: Most bytes one answer may have, and most seconds one request may take end to end
#: (connect, headers and body: a store that drips its answer costs this, not for ever).
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# Prometheus answers errors with these statuses and a JSON body saying why
_ERROR_STATUSES = (200, 400, 422, 503)


@dataclass
class PrometheusClient:
    """Minimal client of the Prometheus HTTP API (query and query_range).

    Every request has one total deadline (``timeout``) and a size cap
    (``max_bytes``), through the exporter's bounded HTTP client; ``budget`` bounds the
    retries of one call in total. Credentials come from ``username``/``password`` (a
    password file on the command line), or from the URL's user info as a fallback.
    """

    base_url: str
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.25
    sleep: Callable[[float], None] = time.sleep
    max_bytes: int = MAX_ANSWER_BYTES
    budget: float = 60.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    http: HttpClient | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.username is not None or parts.password is not None:
            if self.username is None and self.password is None:
                self.username = unquote(parts.username or "")
                self.password = unquote(parts.password or "")
            host = parts.hostname or ""
            netloc = f"[{host}]" if ":" in host else host
            if parts.port is not None:
                netloc += f":{parts.port}"
            self.base_url = urlunsplit(parts._replace(netloc=netloc))
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if self.password is not None and self.username:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        elif self.password:
            self._headers["Authorization"] = f"Bearer {self.password}"

    def _get(self, path: str, params: dict[str, str]) -> dict:
        url = self.base_url.rstrip("/") + path + "?" + urlencode(params)
        http = self.http or _shared_http()
        started = time.monotonic()
        last: str = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1)
                if time.monotonic() - started + pause >= self.budget:
                    last += f"; gave up after {self.budget:g}s in total"
                    break
                self.sleep(pause)
            left = self.budget - (time.monotonic() - started)
            try:
                status, raw = http.get(
                    url,
                    timeout=max(0.1, min(self.timeout, left)),
                    max_bytes=self.max_bytes,
                    headers=self._headers,
                    statuses=_ERROR_STATUSES,
                )
            except PollError as exc:
                if exc.reason == "too_large":
                    raise PrometheusError(
                        f"{redact(self.base_url)}: answer larger than {self.max_bytes:,} bytes "
                        f"(query {params.get('query')!r}); narrow it or raise the cap"
                    ) from None
                if exc.status in (401, 403):
                    raise PrometheusError(
                        f"{redact(self.base_url)}: HTTP {exc.status}: authentication refused "
                        "(check --prometheus.username and --prometheus.password-file)"
                    ) from None
                refused = exc.status
                if (
                    exc.reason == "http"
                    and refused is not None
                    and refused < 500
                    and refused != 429
                ):
                    raise PrometheusError(
                        f"{redact(self.base_url)}: HTTP {refused}; is this a "
                        "Prometheus-compatible API?"
                    ) from None
                last = exc.detail
                continue
            try:
                body = json.loads(raw)
            except ValueError:
                if status == 503:  # a proxy or an overloaded store: try again
                    last = "HTTP 503"
                    continue
                raise PrometheusError(
                    f"{redact(self.base_url)}: answer is not JSON (HTTP {status}); is "
                    "this a Prometheus-compatible API?"
                ) from None
            if not isinstance(body, dict):
                raise PrometheusError(f"{redact(self.base_url)}: answer is not a JSON object")
            if body.get("status") != "success":
                if status == 503:  # Prometheus: query timed out or was aborted
                    last = f"HTTP 503: {str(body.get('error', ''))[:200]}"
                    continue
                raise PrometheusError(
                    f"{redact(self.base_url)}: {str(body.get('errorType', 'error'))[:40]}: "
                    f"{str(body.get('error', 'unknown error'))[:300]} "
                    f"(query {params.get('query')!r})"
                )
            data = body.get("data")
            if not isinstance(data, dict):
                raise PrometheusError(f"{redact(self.base_url)}: answer has no data object")
            return data
        raise PrometheusUnreachable(
            f"Prometheus at {redact(self.base_url)} unreachable after {attempt + 1} "
            f"attempt(s): {last}"
        )

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Instant vector: list of ``{"metric": {...}, "value": [t, "v"]}``."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return _results(self._get("/api/v1/query", params), self.base_url)

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> dict[tuple[tuple[str, str], ...], pd.Series]:
        """Series per label set over [start, end], fetched in chunks of ≤ 10,000 points."""
        if step <= 0 or end < start:
            raise ValueError("query_range needs step > 0 and end ≥ start")
        span = step * (CHUNK_POINTS - 1)
        out: dict[tuple[tuple[str, str], ...], list[pd.Series]] = {}
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + span)
            data = self._get(
                "/api/v1/query_range",
                {
                    "query": expr,
                    "start": f"{chunk_start:.3f}",
                    "end": f"{chunk_end:.3f}",
                    "step": f"{step:g}",
                },
            )
            for item in _results(data, self.base_url):
                values = item.get("values")
                if not isinstance(values, list) or not isinstance(item.get("metric"), dict):
                    raise PrometheusError(f"{redact(self.base_url)}: a series without values")
                key = tuple(sorted(item["metric"].items()))
                try:
                    index = pd.to_datetime([float(t) for t, _ in values], unit="s", utc=True)
                except (TypeError, ValueError, OverflowError):
                    raise PrometheusError(f"{redact(self.base_url)}: bad sample times") from None
                out.setdefault(key, []).append(
                    pd.Series([_float(v) for _, v in values], index=index, dtype=float)
                )
            chunk_start = chunk_end + step
        return {k: pd.concat(parts).groupby(level=0).last() for k, parts in out.items()}


@functools.cache
def _shared_http() -> HttpClient:
    """One bounded HTTP client (keep-alive pool, deadline thread) for the process."""
    return HttpClient(connections_per_host=4, hosts=8)


def _results(data: dict, base_url: str) -> list[dict]:
    result = data.get("result")
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise PrometheusError(f"{redact(base_url)}: answer has no result list")
    return result


def _float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


# 5-minute peaks of gauges: max over the step's own window (t − step, t], so samples are
# never counted in two steps. Rates without the recording rules: the counter's change over
# one step (step_delta_formulas), which every Prometheus-compatible store computes alike.
GAUGES = BBB_METRICS  # column -> metric of the contract
LINK_RAW = f"max by (node) ({c.LINK_CAPACITY.name})"


def raw_formulas(window: str) -> dict[str, str]:
    """The recording rules' formulas on the raw contract series, with a rate window."""
    cpu = c.CPU_SECONDS.sample
    tx = f"sum by (node) (rate({c.TRANSMIT_BYTES.sample}[{window}]))"
    rx = f"sum by (node) (rate({c.RECEIVE_BYTES.sample}[{window}]))"
    return {
        "cpu_utilisation": f'1 - (sum by (node) (rate({cpu}{{mode="idle"}}[{window}])) / '
        f"sum by (node) (rate({cpu}[{window}])))",
        "transmit_bytes_per_second": tx,
        "receive_bytes_per_second": rx,
        "transmit_utilisation": f"{tx} / on (node) {LINK_RAW}",
        "receive_utilisation": f"{rx} / on (node) {LINK_RAW}",
    }


def step_delta_formulas(seconds: int) -> dict[str, str]:
    """The recording rules' formulas on raw counters, as the change over one step.

    ``c - c offset S`` means the same in every Prometheus-compatible store, unlike
    ``rate()``: PromQL extrapolates from the samples inside the window, MetricsQL starts
    from the sample before it and does not extrapolate, so on 5-minute backfill the two
    answer 5- and 10-minute averages (docs/scaling.md). A counter reset gives no value
    for that step, as in the history file's own rates.
    """

    def change(selector: str) -> str:
        return f"(({selector} - {selector} offset {seconds}s) >= 0)"

    cpu = c.CPU_SECONDS.sample
    idle = change(cpu + '{mode="idle"}')
    tx = f"sum by (node) {change(c.TRANSMIT_BYTES.sample)} / {seconds}"
    rx = f"sum by (node) {change(c.RECEIVE_BYTES.sample)} / {seconds}"
    return {
        "cpu_utilisation": f"1 - (sum by (node) {idle} / sum by (node) {change(cpu)})",
        "transmit_bytes_per_second": tx,
        "receive_bytes_per_second": rx,
        "transmit_utilisation": f"({tx}) / on (node) {LINK_RAW}",
        "receive_utilisation": f"({rx}) / on (node) {LINK_RAW}",
    }


RULES: dict[str, str] = {
    "cpu_utilisation": "node:confscale_cpu_utilisation:ratio_rate5m",
    "transmit_bytes_per_second": "node:confscale_network_transmit_bytes:rate5m",
    "receive_bytes_per_second": "node:confscale_network_receive_bytes:rate5m",
    "transmit_utilisation": "node:confscale_network_transmit_utilisation:ratio_rate5m",
    "receive_utilisation": "node:confscale_network_receive_utilisation:ratio_rate5m",
}


def history_queries(step: float) -> dict[str, tuple[str, ...]]:
    """Per history column: expressions to try in order (recording rule first)."""
    seconds = max(int(step), 2)
    queries: dict[str, tuple[str, ...]] = {
        column: (f"max by (node) (max_over_time({metric}[{seconds - 1}s]))",)
        for column, metric in GAUGES.items()
    }
    queries["cpu_count"] = (f"max by (node) ({c.CPU_COUNT.name})",)
    queries["link_capacity_bytes_per_second"] = (LINK_RAW,)
    raw = step_delta_formulas(seconds)
    for column, rule in RULES.items():
        queries[column] = (f"max by (node) ({rule})", raw[column])
    return queries


def jitsi_history_queries(step: float) -> dict[str, tuple[str, ...]]:
    """Per history column: the Jitsi gauge that fills it on a bridge's rows (5-minute max)."""
    seconds = max(int(step), 2)
    return {
        column: (f"max by (node) (max_over_time({metric}[{seconds - 1}s]))",)
        for column, metric in JITSI_HISTORY_GAUGES.items()
    }


def _range_column(
    client: PrometheusClient, exprs: tuple[str, ...], start: float, end: float, step: float
) -> tuple[dict[str, pd.Series], str]:
    """Per node series of the first expression that returns anything; which one was used."""
    for expr in exprs:
        found = client.query_range(expr, start, end, step)
        if found:
            return {dict(k).get("node", ""): v for k, v in found.items()}, expr
    return {}, exprs[-1]


POOL_HOURLY_ATTR = "pool_hourly_participants"
# Hourly peak of the pool's 5-minute participant totals, evaluated at hh:55 so that the
# subquery's 5-minute points are exactly hh:00 … hh:55 (the hour labelled hh:00); 59m,
# not 1h, so that a store whose ranges include their left end does not add hh-1:55.
POOL_HOURLY = "max_over_time(sum(max_over_time(bbb_meetings_participants[299s]))[59m:5m])"


def load_pool_hourly(client: PrometheusClient, *, start: float, end: float) -> pd.Series:
    """Hourly peaks of pool participants over [start, end], one cheap series."""
    first = pd.Timestamp(start, unit="s", tz="UTC").floor("1h") + pd.Timedelta(minutes=55)
    last = pd.Timestamp(end, unit="s", tz="UTC")
    if first > last:
        return pd.Series(dtype=float)
    found = client.query_range(POOL_HOURLY, first.timestamp(), last.timestamp(), 3600)
    if not found:
        return pd.Series(dtype=float)
    (series,) = found.values()
    series.index = series.index - pd.Timedelta(minutes=55)
    return series.asfreq("1h")


def load_prometheus_history(
    client: PrometheusClient,
    *,
    start: float,
    end: float,
    step: float = 300.0,
    node_lookback: float | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """History frame (per node, 5-minute steps) with the rate columns already filled.

    Per-node series cover the last ``node_lookback`` seconds only (default: all of
    [start, end]); the pool's hourly participant peaks for the whole range come from one
    cheap query and ride along in ``frame.attrs[POOL_HOURLY_ATTR]`` for the forecast.
    Returns the frame and, per column, the expression that answered (recording rule or
    raw fallback), so callers can say which was used.
    """
    node_start = start if node_lookback is None else max(start, end - node_lookback)
    columns: dict[str, dict[str, pd.Series]] = {}
    used: dict[str, str] = {}
    for column, exprs in history_queries(step).items():
        columns[column], used[column] = _range_column(client, exprs, node_start, end, step)
    bridges: dict[str, dict[str, pd.Series]] = {}
    for column, exprs in jitsi_history_queries(step).items():
        bridges[column], expr = _range_column(client, exprs, node_start, end, step)
        if bridges[column]:
            used[f"jitsi:{column}"] = expr
    jitsi = sorted(set(bridges["participants"]) - set(columns["participants"]))
    nodes = sorted(columns["participants"]) + jitsi
    if not nodes:
        raise PrometheusError(
            f"Prometheus at {redact(client.base_url)} has no bbb_meetings_participants "
            f"between {pd.Timestamp(node_start, unit='s')} and {pd.Timestamp(end, unit='s')}"
        )
    frames = []
    names = [*columns, "jitsi_stress"] if jitsi else list(columns)
    for node in nodes:
        kind = "jitsi" if node in jitsi else "bbb"
        data = {
            c: (bridges if kind == "jitsi" and c in bridges else columns).get(c, {}).get(node)
            for c in names
        }
        frame = pd.DataFrame({c: s for c, s in data.items() if s is not None})
        frame = frame.reindex(columns=names)
        if kind == "bbb" and jitsi:
            frame["jitsi_stress"] = 0.0  # a BBB node has no stress (docs/contracts.md)
        frame["node"] = node
        frame["kind"] = kind
        frames.append(frame.rename_axis("timestamp").reset_index())
    history = pd.concat(frames, ignore_index=True)
    history = history.dropna(subset=["participants"])
    history["cpu_busy_cores"] = history["cpu_utilisation"] * history["cpu_count"]
    history["pressure"] = np.nan
    history = history.sort_values(["node", "timestamp"]).reset_index(drop=True)
    if node_start > start:
        history.attrs[POOL_HOURLY_ATTR] = load_pool_hourly(client, start=start, end=end)
        used[POOL_HOURLY_ATTR] = POOL_HOURLY
    return history, used


INSTANT_QUERIES: dict[str, tuple[str, ...]] = {
    "up": (f"min by (node) ({c.NODE_UP.name}{{{c.LOAD_SOURCE_SELECTOR}}})",),
    # when the exporter last succeeded; on backfilled data, the up sample's own time
    "timestamp": (
        f"min by (node) ({c.LAST_SUCCESS.name}{{{c.LOAD_SOURCE_SELECTOR}}})",
        f"min by (node) (timestamp({c.NODE_UP.name}{{{c.LOAD_SOURCE_SELECTOR}}}))",
    ),
    "pressure": ("max by (node) (node:confscale_pressure:ratio)",),
    **{
        reading: (f"max by (node) ({BBB_METRICS[bbb]})", f"max by (node) ({JITSI_METRICS[jvb]})")
        for reading, bbb, jvb in READING_FIELDS
    },
    "jitsi_stress": (f"max by (node) ({JITSI_METRICS['stress_level']})",),
    # rooms started per node (a counter): the reservations for rooms a balancer placed
    "meetings_started": (f"max by (node) ({c.MEETINGS_STARTED.sample})",),
    # recordings processing or waiting for it, as the exporter scrape sums them
    # (planner/scrape.py): a node with any is not safe to scale in
    "recordings_processing": (
        f'sum by (node) ({c.BBB_RECORDINGS}{{state="processing"}} '
        f"or {c.BBB_RECORDINGS_UNPROCESSED})",
    ),
    **{
        k: (f"max by (node) ({RULES[k]})", raw)
        for k, raw in raw_formulas("5m").items()
        if k.endswith("utilisation")
    },
}


def read_prometheus_current(client: PrometheusClient, at: float | None = None) -> list[NodeReading]:
    """Current readings per node from instant queries (rules first, raw fallback)."""
    values: dict[str, dict[str, float]] = {}
    for field_name, exprs in INSTANT_QUERIES.items():
        merged: dict[str, float] = {}
        for expr in exprs:
            for item in client.query(expr, at):
                node = item["metric"].get("node")
                if node and node not in merged:
                    merged[node] = _float(item["value"][1])
            if (field_name in RULES or field_name == "timestamp") and merged:
                break  # the recording rule answered; its raw fallback is not needed
        values[field_name] = merged
    jitsi = set(values["jitsi_stress"])
    readings = []
    for node in sorted(values["up"]):

        def get(name: str, node: str = node) -> float | None:
            value = values[name].get(node)
            return None if value is None or math.isnan(value) else value

        readings.append(
            NodeReading(
                node=node,
                kind="jitsi" if node in jitsi else "bbb",
                up=get("up") == 1.0,
                timestamp=get("timestamp"),
                meetings=get("meetings"),
                meetings_started=get("meetings_started"),
                participants=get("participants"),
                participants_max=get("participants_max"),
                webcams=get("webcams"),
                cpu_utilisation=get("cpu_utilisation"),
                transmit_utilisation=get("transmit_utilisation"),
                receive_utilisation=get("receive_utilisation"),
                jitsi_stress=get("jitsi_stress"),
                pressure=get("pressure"),
                recordings_processing=get("recordings_processing"),
            )
        )
    return readings
