"""Jitsi Videobridge: ``/colibri/stats`` JSON (or the bridge's own ``/metrics``) as figures.

Field names follow jitsi-videobridge's VideobridgeStatisticsShim.kt (jitsi/jitsi-videobridge
@a29d97d, jvb/src/main/kotlin/org/jitsi/videobridge/stats/) and, for fields recent bridges
no longer send (``jitter_aggregate``, ``loss_rate_*``, ``conference_sizes``), its older
doc/statistics.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from confscale.exporter.config import JitsiSource, parse_jitsi
from confscale.exporter.contract import (
    JITSI_CONFERENCE_SIZE_BUCKETS,
    JITSI_CONFERENCE_SIZES,
    JITSI_GAUGES,
    JITSI_VERSION_INFO,
)
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.jitsi_native import parse_native
from confscale.exporter.source import SourceKind

# contract field -> the colibri keys that carry it, newest spelling first
_COLIBRI_KEYS = MappingProxyType(
    {
        **{g.field: (g.field,) for g in JITSI_GAUGES},
        "loss_rate_download": ("incoming_loss", "loss_rate_download"),
        "loss_rate_upload": ("outgoing_loss", "loss_rate_upload"),
    }
)
_FLAGS = frozenset({"healthy", "drain", "graceful_shutdown"})  # booleans, exported as 0/1
_MAX_VERSION = 64


@dataclass(frozen=True)
class JitsiFigures:
    values: tuple[tuple[str, float], ...]  # (field, value) for the fields the JVB sent
    version: str | None = None
    # cumulative (le, conferences) over the contract's buckets, +Inf last; None: not sent
    conference_sizes: tuple[tuple[float, float], ...] | None = None


def parse_colibri(document: bytes) -> JitsiFigures:
    """Figures from a colibri stats document; PollError('parse') on the wrong shape.

    Tolerates the drift across bridge versions: a field that is missing stays absent,
    numbers may come as text (``"0.0"``), booleans as ``"true"``, and ``conference_sizes``
    as a list, as the text of one (``"[]"``, recent bridges) or not at all.
    """
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        raise PollError("parse", "colibri stats are not valid JSON") from None
    if not isinstance(data, dict) or "conferences" not in data:
        raise PollError("parse", "colibri stats without a 'conferences' figure")
    values = []
    for field, keys in _COLIBRI_KEYS.items():
        key = next((k for k in keys if data.get(k) is not None), None)
        if key is None:
            continue
        if field in _FLAGS:
            values.append((field, _flag(data[key], key)))
        else:
            values.append((field, _number(data[key], key)))
    version = str(data.get("version") or "").strip()[:_MAX_VERSION]
    return JitsiFigures(
        values=tuple(values),
        version=version or None,
        conference_sizes=_sizes(data.get("conference_sizes")),
    )


def _number(value: object, key: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise PollError("parse", f"colibri field {key} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PollError("parse", f"colibri field {key} is not a number")
    return float(value)


def _flag(value: object, key: str) -> float:
    if isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise PollError("parse", f"colibri field {key} is not true or false")


def _sizes(value: object) -> tuple[tuple[float, float], ...] | None:
    """conference_sizes (index i: conferences of i endpoints, the last one: that many or
    more) as cumulative buckets; an empty or absent histogram is absent, not zero."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PollError("parse", "colibri conference_sizes is not a list") from None
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise PollError("parse", "colibri conference_sizes is not a list")
    counts = [_number(v, "conference_sizes") for v in value]
    buckets, running = [], 0.0
    for le in JITSI_CONFERENCE_SIZE_BUCKETS:
        running += counts[le] if le < len(counts) else 0.0
        buckets.append((float(le), running))
    buckets.append((math.inf, sum(counts)))
    return tuple(buckets)


def poll_jitsi(
    client: HttpClient, source: JitsiSource, *, timeout: float, max_bytes: int
) -> JitsiFigures:
    """One poll of a JVB (colibri stats, or its own Prometheus page); raises PollError."""
    chunks: list[bytes] = []
    url = source.metrics or source.url or ""
    client.fetch(url, timeout=timeout, max_bytes=max_bytes, sink=chunks.append, tls=source.tls)
    if source.metrics:
        values, sizes = parse_native(b"".join(chunks))
        return JitsiFigures(values=values, conference_sizes=sizes)
    return parse_colibri(b"".join(chunks))


class JitsiFamilies:
    """One gauge per contract field; a field the bridge did not send stays absent."""

    def __init__(self, base: Sequence[str]) -> None:
        self._gauges = {g.field: gauge(g.metric, g.help, base) for g in JITSI_GAUGES}
        self._version = gauge(
            JITSI_VERSION_INFO, "The bridge's version; the value is always 1.", [*base, "version"]
        )
        self._sizes = gauge(
            JITSI_CONFERENCE_SIZES,
            "Conferences with at most le endpoints (a gauge histogram, the bridge's buckets).",
            [*base, "le"],
        )

    def add(self, figures: JitsiFigures, labels: dict[str, str]) -> None:
        for key, value in figures.values:
            self._gauges[key].add(labels, value)
        if figures.version:
            self._version.add({**labels, "version": figures.version}, 1)
        for le, count in figures.conference_sizes or ():
            self._sizes.add({**labels, "le": "+Inf" if math.isinf(le) else f"{le:g}"}, count)

    def families(self) -> list[Family]:
        return [*self._gauges.values(), self._version, self._sizes]


SOURCE = SourceKind(key="jitsi", parse=parse_jitsi, poll=poll_jitsi, families=JitsiFamilies)
