"""BBB getRecordings as an optional, slower source (``bbb: {recordings: …}``): recordings
by state and the oldest one still processing.

bbb-web (bigbluebutton/bigbluebutton, bigbluebutton-web/…/RecordingController.groovy
getRecordingsHandler and MeetingService.getRecordings2x) takes ``state`` as a comma list
(processing, processed, published, unpublished, deleted; without it only published and
unpublished), and since 2.6 ``offset`` (>= 0) and ``limit`` (clamped to 1…100). Without
``limit`` a 2.6+ server that does not allow fetching every recording answers none, so a
limit is always sent. An older server ignores both and answers everything at once: a
first page longer than the limit is read as the whole list. Each ``<recording>`` is
streamed through the safe parser and dropped; only counts, ids (to skip a recording that
moved between pages) and the oldest processing time are kept, up to ``max_recordings``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confscale.exporter.bbb import signed_url
from confscale.exporter.config import (
    BbbSource,
    ConfigValueError,
    ParseContext,
    parse_bbb,
    parse_duration,
)
from confscale.exporter.contract import (
    BBB_RECORDINGS,
    BBB_RECORDINGS_OLDEST_PROCESSING,
    RECORDING_STATES,
)
from confscale.exporter.exposition import Family, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.safexml import SafeFeed
from confscale.exporter.source import SourceKind

DEFAULT_INTERVAL = 300.0
PAGE_SIZE = 100  # bbb-web's largest limit
DEFAULT_MAX_RECORDINGS = 20_000
_STATE_QUERY = ",".join(RECORDING_STATES)


@dataclass(frozen=True)
class RecordingsSource:
    bbb: BbbSource
    interval: float = DEFAULT_INTERVAL
    max_recordings: int = DEFAULT_MAX_RECORDINGS


@dataclass(frozen=True)
class RecordingsFigures:
    states: tuple[tuple[str, int], ...]  # every state of RECORDING_STATES, in that order
    oldest_processing: float | None  # unix seconds the oldest processing meeting ended


def parse_recordings_settings(raw: object, where: str, context: ParseContext) -> Any:
    """``bbb: {…, recordings: true | {interval: 5m, max_recordings: N}}``; None if off."""
    if not isinstance(raw, dict):
        return None  # parse_bbb reports the shape
    options = raw.get("recordings")
    if options is None or options is False:
        return None
    if options is True:
        options = {}
    if not isinstance(options, dict):
        raise ConfigValueError(f"{where}.recordings: expected true or a mapping")
    unknown = sorted(set(options) - {"interval", "max_recordings"})
    if unknown:
        raise ConfigValueError(
            f"{where}.recordings: unknown key(s) {', '.join(map(str, unknown))}; "
            "expected some of interval, max_recordings"
        )
    interval = parse_duration(
        options.get("interval", DEFAULT_INTERVAL), f"{where}.recordings.interval"
    )
    cap = options.get("max_recordings", DEFAULT_MAX_RECORDINGS)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
        raise ConfigValueError(f"{where}.recordings.max_recordings: expected a positive count")
    return RecordingsSource(
        bbb=parse_bbb(raw, where, context), interval=interval, max_recordings=cap
    )


class _Page:
    """One getRecordings answer, streamed: counts into the shared tally."""

    def __init__(self, tally: _Tally) -> None:
        self._feed = SafeFeed("recording")
        self._tally = tally
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        for recording in self._feed.feed(chunk):
            parent = recording.getparent()
            if parent is None or parent.tag != "recordings":
                continue  # user metadata, not a recording
            self.count += 1
            self._tally.add(recording)
            recording.clear()
            while recording.getprevious() is not None:
                del parent[0]

    def close(self) -> None:
        self._feed.close()


class _Tally:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()
        self.states: Counter[str] = Counter()
        self.oldest: float | None = None

    def add(self, recording: Any) -> None:
        record_id = (recording.findtext("recordID") or "").strip()
        if record_id in self.seen:
            return  # moved from one page to the next while we read
        if len(self.seen) >= self.cap:
            raise PollError("too_large", f"more than {self.cap} recordings (max_recordings)")
        self.seen.add(record_id)
        state = (recording.findtext("state") or "").strip().lower()
        if state not in RECORDING_STATES:
            return
        self.states[state] += 1
        if state == "processing":
            ended = _millis(recording.findtext("endTime")) or _millis(
                recording.findtext("startTime")
            )
            if ended is not None and (self.oldest is None or ended < self.oldest):
                self.oldest = ended


def _millis(text: str | None) -> float | None:
    digits = (text or "").strip()
    if not digits.isdigit() or len(digits) > 15:
        return None
    return int(digits) / 1000


def poll_recordings(
    client: HttpClient, source: RecordingsSource, *, timeout: float, max_bytes: int
) -> RecordingsFigures:
    """Every page of getRecordings within one ``timeout`` in total; PollError otherwise."""
    tally = _Tally(source.max_recordings)
    deadline = time.monotonic() + timeout
    offset = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PollError("timeout", f"getRecordings pages took longer than {timeout:g}s")
        query = f"state={_STATE_QUERY}&offset={offset}&limit={PAGE_SIZE}"
        page = _Page(tally)
        client.fetch(
            signed_url(source.bbb, "getRecordings", query),
            timeout=remaining,
            max_bytes=max_bytes,
            sink=page.feed,
            tls=source.bbb.tls,
        )
        page.close()
        if page.count != PAGE_SIZE:  # a short page ends the list; a long one: no paging
            break
        offset += PAGE_SIZE
    return RecordingsFigures(
        states=tuple((state, tally.states[state]) for state in RECORDING_STATES),
        oldest_processing=tally.oldest,
    )


class RecordingsFamilies:
    def __init__(self, base: Sequence[str]) -> None:
        self._states = gauge(
            BBB_RECORDINGS, "Recordings on the node by state (getRecordings).", [*base, "state"]
        )
        self._oldest = gauge(
            BBB_RECORDINGS_OLDEST_PROCESSING,
            "When the meeting of the oldest recording still processing ended (unix seconds); "
            "absent when none is processing.",
            base,
        )

    def add(self, figures: RecordingsFigures, labels: dict[str, str]) -> None:
        for state, count in figures.states:
            self._states.add({**labels, "state": state}, count)
        if figures.oldest_processing is not None:
            self._oldest.add(labels, figures.oldest_processing)

    def families(self) -> list[Family]:
        return [self._states, self._oldest]


SOURCE = SourceKind(
    key="bbb_recordings",
    config_key="bbb",
    parse=parse_recordings_settings,
    poll=poll_recordings,
    families=RecordingsFamilies,
    every=lambda settings: settings.interval,
)
