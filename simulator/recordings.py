"""A simulated BBB node's recordings: a deterministic library per node and instant, the
getRecordings answer bbb-web gives for it (state filter, offset/limit paging), and the
truth the exporter must show.

Follows bigbluebutton/bigbluebutton's RecordingController.groovy (getRecordingsHandler:
``state`` a comma list, default published and unpublished; ``offset``, ``limit``) and
MeetingService.getRecordings2x (offset below 0 is 0, limit clamped to 1…100, no limit:
every recording, as with ``allowFetchAllRecordings=true``).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from confscale.simulator.model import stable_seed

STATES = ("processing", "processed", "published", "unpublished", "deleted")
DEFAULT_STATES = ("published", "unpublished")
BACKLOG_FAULT = "recordings_backlog"  # arg: hours the oldest processing one has waited


def library(name: str, t: float, mode: str = "", arg: float = 0.0) -> list[dict[str, Any]]:
    """The node's recordings at ``t``: a few dozen, two still processing (ended 10 and 25
    minutes ago); under ``recordings_backlog`` one more has waited ``arg`` hours."""
    count = 20 + stable_seed("recordings", name) % 30
    cycle = ("published", "published", "published", "unpublished", "processed", "deleted")
    now_ms = int(t) * 1000
    out = []
    for i in range(count):
        state = cycle[i % len(cycle)]
        end = now_ms - (i + 2) * 86_400_000  # a day apart, the newest two days ago
        out.append(_rec(name, i, state, end))
    out.append(_rec(name, count, "processing", now_ms - 10 * 60_000))
    out.append(_rec(name, count + 1, "processing", now_ms - 25 * 60_000))
    if mode == BACKLOG_FAULT:
        out.append(_rec(name, count + 2, "processing", now_ms - int(arg * 3_600_000)))
    return out


def _rec(name: str, i: int, state: str, end_ms: int) -> dict[str, Any]:
    return {
        "recordID": f"{stable_seed(name, 'rec', i):040x}"[:40] + f"-{end_ms - 3_600_000}",
        "meetingID": f"{name}-lecture-{i}",
        "state": state,
        "startTime": end_ms - 3_600_000,
        "endTime": end_ms,
    }


def get_recordings(recordings: list[dict[str, Any]], params: dict[str, str]) -> bytes:
    states = [s for s in params.get("state", "").split(",") if s] or list(DEFAULT_STATES)
    chosen = [r for r in recordings if "any" in states or r["state"] in states]
    if params.get("limit", "") != "":
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 1), 1), 100)
        chosen = chosen[max(offset, 0) : max(offset, 0) + limit]
    if not chosen:
        return (
            b"<response><returncode>SUCCESS</returncode><recordings></recordings>"
            b"<messageKey>noRecordings</messageKey><message>There are no recordings for the "
            b"meeting(s).</message></response>"
        )
    parts = ["<response><returncode>SUCCESS</returncode><recordings>"]
    for r in chosen:
        parts.append(
            f"<recording><recordID>{r['recordID']}</recordID>"
            f"<meetingID>{escape(r['meetingID'])}</meetingID>"
            f"<internalMeetingID>{r['recordID']}</internalMeetingID>"
            f"<name>{escape(r['meetingID'])}</name><isBreakout>false</isBreakout>"
            f"<published>{'true' if r['state'] == 'published' else 'false'}</published>"
            f"<state>{r['state']}</state><startTime>{r['startTime']}</startTime>"
            f"<endTime>{r['endTime']}</endTime><participants>14</participants>"
            f"<rawSize>951067</rawSize><metadata><isBreakout>false</isBreakout>"
            f"<meetingName>{escape(r['meetingID'])}</meetingName></metadata>"
            f"<size>{0 if r['state'] == 'processing' else 1104836}</size><playback/>"
            f"<data/></recording>"
        )
    parts.append("</recordings></response>")
    return "".join(parts).encode()


def _int(text: str | None, default: int) -> int:
    try:
        return int(str(text))
    except ValueError:
        return default


def truth(recordings: list[dict[str, Any]]) -> dict[str, Any]:
    processing = [r["endTime"] / 1000 for r in recordings if r["state"] == "processing"]
    return {
        "recordings": {s: sum(1 for r in recordings if r["state"] == s) for s in STATES},
        "oldest_processing": min(processing) if processing else None,
    }
