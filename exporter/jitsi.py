"""Jitsi Videobridge ``/colibri/stats``: the JSON figures, as the JVB reports them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from confscale.exporter.config import JitsiSource
from confscale.exporter.fetch import HttpClient, PollError

# colibri key -> exported gauge suffix (systemli's names, docs/design.md §2)
JITSI_FIELDS = (
    "conferences",
    "participants",
    "largest_conference",
    "endpoints_sending_video",
    "stress_level",
    "bit_rate_upload",
    "bit_rate_download",
)


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
