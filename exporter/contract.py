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


# The Jitsi part: one gauge jitsi_<field> per field, from /colibri/stats or from the
# bridge's own Prometheus page (exporter/jitsi_native.py maps its families onto these
# fields). Names follow systemli's prometheus-jitsi-meet-exporter where it has one.
JITSI_GAUGES: tuple[Gauge, ...] = (
    Gauge("conferences", "jitsi_conferences", "Conferences on the bridge."),
    Gauge("participants", "jitsi_participants", "Participants on the bridge."),
    Gauge(
        "largest_conference", "jitsi_largest_conference", "Participants of the largest conference."
    ),
    Gauge("endpoints_sending_video", "jitsi_endpoints_sending_video", "Endpoints sending video."),
    Gauge(
        "stress_level",
        "jitsi_stress_level",
        "The bridge's own stress level (0-1, overload from about 0.8).",
    ),
    Gauge(
        "bit_rate_upload",
        "jitsi_bit_rate_upload",
        "Upload bit rate in kbit/s as the JVB reports it.",
    ),
    Gauge(
        "bit_rate_download",
        "jitsi_bit_rate_download",
        "Download bit rate in kbit/s as the JVB reports it.",
    ),
    Gauge("endpoints", "jitsi_endpoints", "Endpoints on the bridge, relayed (octo) ones included."),
    Gauge("packet_rate_upload", "jitsi_packet_rate_upload", "Outgoing RTP packets per second."),
    Gauge("packet_rate_download", "jitsi_packet_rate_download", "Incoming RTP packets per second."),
    Gauge("rtt_aggregate", "jitsi_rtt_aggregate", "Average round-trip time over all streams, ms."),
    Gauge("jitter_aggregate", "jitsi_jitter_aggregate", "Average jitter, ms (older bridges only)."),
    Gauge(
        "loss_rate_download",
        "jitsi_loss_rate_download",
        "Fraction of incoming RTP packets lost (colibri incoming_loss, older loss_rate_download).",
    ),
    Gauge(
        "loss_rate_upload",
        "jitsi_loss_rate_upload",
        "Fraction of outgoing RTP packets lost (colibri outgoing_loss, older loss_rate_upload).",
    ),
    Gauge("healthy", "jitsi_healthy", "1 when the bridge's own health check passes."),
    Gauge("drain", "jitsi_drain", "1 when the bridge is in drain mode (no new conferences)."),
    Gauge(
        "graceful_shutdown",
        "jitsi_graceful_shutdown",
        "1 when the bridge is in graceful shutdown (no new conferences, exits when empty).",
    ),
)
JITSI_METRICS = MappingProxyType({g.field: g.metric for g in JITSI_GAUGES})
# Conferences by participants, as a gauge histogram with the bridge's own buckets
# (le = 0 … 20, +Inf), cumulative like jitsi_jvb_conferences_by_size_bucket.
JITSI_CONFERENCE_SIZES = "jitsi_conferences_by_size_bucket"
JITSI_CONFERENCE_SIZE_BUCKETS = tuple(range(21))
JITSI_VERSION_INFO = "jitsi_version_info"

# The host part beyond CPU and network (exporter/host.py).
HOST_GAUGES: tuple[Gauge, ...] = (
    Gauge(
        "memory_available_bytes",
        "confscale_node_memory_available_bytes",
        "MemAvailable: memory that new work can use without swapping.",
    ),
    Gauge("memory_total_bytes", "confscale_node_memory_total_bytes", "MemTotal."),
)
HOST_FILESYSTEM_AVAIL = "confscale_node_filesystem_avail_bytes"
HOST_FILESYSTEM_SIZE = "confscale_node_filesystem_size_bytes"
# The filesystems watched by default: root and BBB's recordings (raw and published).
DEFAULT_FILESYSTEMS = ("/", "/var/bigbluebutton")
