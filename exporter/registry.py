"""The exporter's sources, registered in one place.

Config, poller and collector only iterate over ``SOURCES``; adding a source is one
module defining a ``SourceKind`` (exporter/source.py) and one line here.
"""

from __future__ import annotations

from types import MappingProxyType

from confscale.exporter import bbb, bbb_version, host, jitsi, proxy, recordings
from confscale.exporter.source import SourceKind

# The order is the order of a node's sources and of the families on the page.
SOURCES: tuple[SourceKind, ...] = (
    bbb.SOURCE,
    bbb_version.SOURCE,
    recordings.SOURCE,
    jitsi.SOURCE,
    proxy.SOURCE,
    host.SOURCE,
)
BY_KEY = MappingProxyType({kind.key: kind for kind in SOURCES})
