"""Jitsi Videobridge ``/colibri/stats``: the JSON figures, as the JVB reports them."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from confscale.exporter.config import JitsiSource, parse_jitsi
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind

# colibri key -> help of the exported gauge jitsi_<key> (systemli's names, docs/design.md §2)
_JITSI_HELP = MappingProxyType(
    {
        "conferences": "Conferences on the bridge.",
        "participants": "Participants on the bridge.",
        "largest_conference": "Participants of the largest conference.",
        "endpoints_sending_video": "Endpoints sending video.",
        "stress_level": "The bridge's own stress level (0-1, overload from about 0.8).",
        "bit_rate_upload": "Upload bit rate in kbit/s as the JVB reports it.",
        "bit_rate_download": "Download bit rate in kbit/s as the JVB reports it.",
    }
)
JITSI_FIELDS = tuple(_JITSI_HELP)


@dataclass(frozen=True)
class JitsiFigures:
    values: tuple[tuple[str, float], ...]  # (field, value) for the fields the JVB sent


def parse_colibri(document: bytes) -> JitsiFigures:
    """Figures from a colibri stats document; PollError('parse') on the wrong shape."""
    try:
        data = json.loads(document)
    except (ValueError, UnicodeDecodeError):
        raise PollError("parse", "colibri stats are not valid JSON") from None
    if not isinstance(data, dict) or "conferences" not in data:
        raise PollError("parse", "colibri stats without a 'conferences' figure")
    values = []
    for field in JITSI_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if isinstance(value, str):
            value = _number_from_text(value, field)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise PollError("parse", f"colibri field {field} is not a number")
        values.append((field, float(value)))
    return JitsiFigures(values=tuple(values))


def _number_from_text(text: str, field: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise PollError("parse", f"colibri field {field} is not a number") from None
    return value


def poll_jitsi(
    client: HttpClient, source: JitsiSource, *, timeout: float, max_bytes: int
) -> JitsiFigures:
    """One poll of a JVB; raises PollError with the failure reason."""
    chunks: list[bytes] = []
    client.fetch(
        source.url, timeout=timeout, max_bytes=max_bytes, sink=chunks.append, tls=source.tls
    )
    return parse_colibri(b"".join(chunks))


class JitsiFamilies:
    """One gauge per colibri field; a field the bridge did not send stays absent."""

    def __init__(self, base: Sequence[str]) -> None:
        self._gauges = {key: gauge(f"jitsi_{key}", text, base) for key, text in _JITSI_HELP.items()}

    def add(self, figures: JitsiFigures, labels: dict[str, str]) -> None:
        for key, value in figures.values:
            self._gauges[key].add(labels, value)

    def families(self) -> list[Family]:
        return list(self._gauges.values())


SOURCE = SourceKind(key="jitsi", parse=parse_jitsi, poll=poll_jitsi, families=JitsiFamilies)
