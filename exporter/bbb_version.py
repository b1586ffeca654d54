"""The BBB API root (``GET …/bigbluebutton/api/``, no checksum): the node's ``bbbVersion``
and ``apiVersion``, as one info series. bbb-web answers it with
``<response><returncode>SUCCESS</returncode><version>2.0</version><apiVersion>2.0</apiVersion>
<bbbVersion>2.7.12</bbbVersion></response>`` (``bbbVersion`` since 2.5; older nodes
leave the label empty). Polled every ``VERSION_INTERVAL``: versions change at upgrades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confscale.exporter.config import BbbSource, parse_bbb
from confscale.exporter.contract import BBB_VERSION_INFO
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient
from confscale.exporter.safexml import SafeFeed
from confscale.exporter.source import SourceKind

VERSION_INTERVAL = 300.0
_MAX_VERSION = 40


@dataclass(frozen=True)
class BbbVersion:
    bbb_version: str
    api_version: str


def parse_root(document: bytes) -> BbbVersion:
    feed = SafeFeed("response")
    for _ in feed.feed(document):
        pass
    root = feed.close()
    return BbbVersion(
        bbb_version=(root.findtext("bbbVersion") or "").strip()[:_MAX_VERSION],
        api_version=(root.findtext("apiVersion") or root.findtext("version") or "").strip()[
            :_MAX_VERSION
        ],
    )


def poll_version(
    client: HttpClient, source: BbbSource, *, timeout: float, max_bytes: int
) -> BbbVersion:
    chunks: list[bytes] = []
    # the root is small: a few hundred bytes, so a tight cap
    client.fetch(
        source.url,
        timeout=timeout,
        max_bytes=min(max_bytes, 64 * 1024),
        sink=chunks.append,
        tls=source.tls,
    )
    return parse_root(b"".join(chunks))


class VersionFamilies:
    def __init__(self, base: Sequence[str]) -> None:
        self._info = gauge(
            BBB_VERSION_INFO,
            "The node's BBB and API versions (API root); the value is always 1.",
            [*base, "bbb_version", "api_version"],
        )

    def add(self, figures: BbbVersion, labels: dict[str, str]) -> None:
        self._info.add(
            {**labels, "bbb_version": figures.bbb_version, "api_version": figures.api_version}, 1
        )

    def families(self) -> list[Family]:
        return [self._info]


SOURCE = SourceKind(
    key="bbb_version",
    config_key="bbb",
    parse=parse_bbb,
    poll=poll_version,
    families=VersionFamilies,
    every=lambda _settings: VERSION_INTERVAL,
)
