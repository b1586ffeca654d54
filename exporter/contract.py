"""The metric contract (docs/design.md §2): one table, read by every component.

The exporter emits these families (BBB, Jitsi, host, poll health), the simulator writes
them into its history, and the planner reads them back from Prometheus or a scrape; a
gauge names the same field of a node's figures in all of them.
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
BBB_FIELDS: tuple[str, ...] = tuple(g.field for g in BBB_GAUGES)  # history columns too


# BBB beyond getMeetings: the API root's versions (exporter/bbb_version.py) and
# getRecordings by state (exporter/recordings.py, optional and slower).
BBB_VERSION_INFO = "bbb_version_info"
BBB_RECORDINGS = "bbb_recordings"
BBB_RECORDINGS_OLDEST_PROCESSING = "bbb_recordings_oldest_processing_timestamp_seconds"
BBB_RECORDINGS_UNPROCESSED = "bbb_recordings_unprocessed"  # host: local (exporter/host.py)
RECORDING_STATES = ("processing", "processed", "published", "unpublished", "deleted")


# The cluster proxy's nginx stub_status (exporter/proxy.py); counters without _total.
PROXY_CONNECTIONS = "confscale_proxy_connections"
PROXY_ACCEPTED = "confscale_proxy_connections_accepted"
PROXY_HANDLED = "confscale_proxy_connections_handled"
PROXY_REQUESTS = "confscale_proxy_requests"


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
# History column -> the Jitsi gauge that fills it on a bridge's rows (docs/contracts.md):
# the simulator's history writer and the planner's Prometheus reader both use it.
JITSI_HISTORY_GAUGES = MappingProxyType(
    {
        "meetings": JITSI_METRICS["conferences"],
        "participants": JITSI_METRICS["participants"],
        "participants_max": JITSI_METRICS["largest_conference"],
        "video_participants": JITSI_METRICS["endpoints_sending_video"],
        "jitsi_stress": JITSI_METRICS["stress_level"],
    }
)
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

#: The placement signal's per-node readings that BBB and Jitsi both report, under their
#: own names: (reading, BBB field, Jitsi field). The planner reads either.
READING_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("meetings", "meetings", "conferences"),
    ("participants", "participants", "participants"),
    ("participants_max", "participants_max", "largest_conference"),
    ("webcams", "video_participants", "endpoints_sending_video"),
)


class MetricSpec(NamedTuple):
    """A family whose name is fixed by the contract; counters are named without ``_total``
    (as prometheus_client's families are), their samples with it."""

    name: str
    type: str  # "gauge" | "counter"
    help: str

    @property
    def sample(self) -> str:
        return f"{self.name}_total" if self.type == "counter" else self.name


# --- host: CPU and uplink of every node, from node_exporter or /proc ---------------------
CPU_SECONDS = MetricSpec(
    "confscale_node_cpu_seconds", "counter", "CPU seconds summed over CPUs, by mode."
)
CPU_COUNT = MetricSpec("confscale_node_cpu_count", "gauge", "Number of CPUs.")
TRANSMIT_BYTES = MetricSpec(
    "confscale_node_network_transmit_bytes", "counter", "Bytes sent on the uplink interface(s)."
)
RECEIVE_BYTES = MetricSpec(
    "confscale_node_network_receive_bytes", "counter", "Bytes received on the uplink interface(s)."
)
LINK_CAPACITY = MetricSpec(
    "confscale_node_link_capacity_bytes_per_second",
    "gauge",
    "Configured uplink capacity in bytes per second.",
)

# --- every node's poll health ---------------------------------------------------------
#: The sources polled every cycle whose health is the node's: a node is up, and its
#: reading fresh, when these are. The slower, optional ones (bbb_version, bbb_recordings)
#: have their own up series and alerts, but do not take a node out of placement.
LOAD_SOURCES = ("bbb", "jitsi", "host")
LOAD_SOURCE_SELECTOR = 'source=~"' + "|".join(LOAD_SOURCES) + '"'

NODE_UP = MetricSpec("confscale_node_up", "gauge", "1 when the last poll of the source succeeded.")
POLL_DURATION = MetricSpec(
    "confscale_node_poll_duration_seconds", "gauge", "Duration of the last poll of the source."
)
POLL_ERRORS = MetricSpec(
    "confscale_node_poll_errors", "counter", "Failed polls by reason (see docs/exporter.md)."
)
LAST_SUCCESS = MetricSpec(
    "confscale_node_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful poll of the source.",
)
NODE_INFO = MetricSpec(
    "confscale_node_info",
    "gauge",
    "Per node its pool and balancer tags (tags=',a,b,'); the value is always 1.",
)

#: Attendees by client type (label ``type``), from the attendee lists of getMeetings.
CLIENTS = MetricSpec(
    "bbb_meetings_participant_clients",
    "gauge",
    "Attendees by clientType, lower case (html5, dial-in; missing or empty: unknown).",
)
# Upper bounds (participants) of the meeting-size buckets; +Inf takes the rest. The 0
# bucket keeps created-but-empty meetings apart from the 1-5 ones.
MEETING_SIZE_BOUNDS: tuple[int, ...] = (0, 5, 25, 50, 100, 200)
#: Meetings by participantCount (label ``le``: the bounds above and +Inf), cumulative, the
#: bucket series of a gauge histogram as jitsi_conferences_by_size_bucket.
MEETING_SIZES = MetricSpec(
    "bbb_meetings_size_bucket",
    "gauge",
    "Meetings with at most le participants (le 0, 5, 25, 50, 100, 200, +Inf).",
)
#: Participants by the meetings' bbb-origin-server-name metadata (label ``server``).
ORIGINS = MetricSpec(
    "bbb_meetings_participants_origin",
    "gauge",
    "Participants by the meeting's bbb-origin-server-name metadata (the origins_top largest, "
    "the rest as other; none without the metadata).",
)
DEFAULT_ORIGINS_TOP = 10  # origins per node by default (config key origins_top)
MAX_ORIGINS_TOP = 64
MEETINGS_STARTED = MetricSpec(
    "bbb_meetings_started",
    "counter",
    "Meetings (not breakout rooms) seen starting: new internalMeetingIDs since the "
    "exporter's first good poll of the node.",
)
BREAKOUTS_STARTED = MetricSpec(
    "bbb_breakout_rooms_started",
    "counter",
    "Breakout rooms seen starting (new internalMeetingIDs).",
)

#: Every family the exporter emits per node (each sample carries ``node``).
NODE_FAMILIES: tuple[MetricSpec, ...] = (
    *(MetricSpec(g.metric, "gauge", g.help) for g in BBB_GAUGES),
    CLIENTS,
    MEETING_SIZES,
    ORIGINS,
    MEETINGS_STARTED,
    BREAKOUTS_STARTED,
    MetricSpec(BBB_VERSION_INFO, "gauge", "The node's BBB and API versions; always 1."),
    MetricSpec(BBB_RECORDINGS, "gauge", "Recordings on the node by state."),
    MetricSpec(BBB_RECORDINGS_OLDEST_PROCESSING, "gauge", "Oldest recording still processing."),
    MetricSpec(BBB_RECORDINGS_UNPROCESSED, "gauge", "Recordings waiting to be processed."),
    MetricSpec(PROXY_CONNECTIONS, "gauge", "Cluster proxy connections by state."),
    MetricSpec(PROXY_ACCEPTED, "counter", "Cluster proxy connections accepted."),
    MetricSpec(PROXY_HANDLED, "counter", "Cluster proxy connections handled."),
    MetricSpec(PROXY_REQUESTS, "counter", "Cluster proxy requests."),
    *(MetricSpec(g.metric, "gauge", g.help) for g in JITSI_GAUGES),
    MetricSpec(JITSI_CONFERENCE_SIZES, "gauge", "Conferences with at most le endpoints."),
    MetricSpec(JITSI_VERSION_INFO, "gauge", "The bridge's version; the value is always 1."),
    *(MetricSpec(g.metric, "gauge", g.help) for g in HOST_GAUGES),
    MetricSpec(HOST_FILESYSTEM_AVAIL, "gauge", "Bytes available on a watched filesystem."),
    MetricSpec(HOST_FILESYSTEM_SIZE, "gauge", "Size of a watched filesystem in bytes."),
    CPU_SECONDS,
    CPU_COUNT,
    TRANSMIT_BYTES,
    RECEIVE_BYTES,
    LINK_CAPACITY,
    NODE_UP,
    POLL_DURATION,
    POLL_ERRORS,
    LAST_SUCCESS,
    NODE_INFO,
)
