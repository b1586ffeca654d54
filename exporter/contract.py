"""The BBB part of the metric contract (docs/design.md §2): one table, read by every component.

The exporter emits these gauges, the simulator writes them into its history, and the
planner reads them back from Prometheus; each names the same field of a node's figures.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple


class Gauge(NamedTuple):
    field: str  # the figure's name in the exporter, the simulator's truth and history columns
    metric: str
    help: str


BBB_GAUGES: tuple[Gauge, ...] = (
    Gauge("meetings", "bbb_meetings", "Meetings on the node, breakout rooms included."),
    Gauge("breakout_rooms", "bbb_breakout_rooms", "Breakout rooms on the node."),
    Gauge(
        "participants",
        "bbb_meetings_participants",
        "Participants on the node (sum of participantCount; moderators included once).",
    ),
    Gauge("moderators", "bbb_meetings_moderators", "Sum of moderatorCount."),
    Gauge("listeners", "bbb_meetings_listeners", "Sum of listenerCount (listen-only audio)."),
    Gauge("voice_participants", "bbb_meetings_voice_participants", "Sum of voiceParticipantCount."),
    Gauge("video_participants", "bbb_meetings_video_participants", "Sum of videoCount."),
    Gauge(
        "participants_max", "bbb_meetings_participants_max", "Participants of the largest meeting."
    ),
    Gauge(
        "video_fanout",
        "bbb_meetings_video_fanout",
        "Forwarded webcam streams: sum over meetings of videoCount*(participantCount-1).",
    ),
)

# field -> metric name, for readers and writers of the series
BBB_METRICS = MappingProxyType({g.field: g.metric for g in BBB_GAUGES})
