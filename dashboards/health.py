"""Node health: recordings, Jitsi bridge quality and states, versions, memory and disks.

Every threshold line comes from confscale/thresholds.py, the table the health alerts
(alerts/rules/confscale-health.yml) read too.
"""

from __future__ import annotations

from confscale.thresholds import (
    DISK_FREE,
    MEMORY_AVAILABLE_MIN,
    RECORDINGS_BACKLOG_SECONDS,
    TURN_ALLOCATIONS_WARN,
    TURN_RELAY_PORTS,
)
from dashboards.board import dashboard, datasource_variable, pool_variable
from dashboards.panels import Json, Query, Step, linked_to_node_detail, table, timeseries

UID = "confscale-health"
POOL = 'pool=~"$pool"'


def build() -> Json:
    """The node health dashboard."""
    recordings = [
        timeseries(
            "Recordings processing",
            [Query(f'sum by (node) (bbb_recordings{{{POOL},state="processing"}})', "{{node}}")],
            "none",
            description="getRecordings state=processing per node (exporter `recordings:`).",
        ),
        timeseries(
            "Oldest recording still processing",
            [
                Query(
                    f"time() - min by (node) "
                    f"(bbb_recordings_oldest_processing_timestamp_seconds{{{POOL}}})",
                    "{{node}}",
                )
            ],
            "s",
            show_thresholds=True,
            steps=(Step("green"), Step("red", RECORDINGS_BACKLOG_SECONDS)),
            description="Time since the meeting of the oldest processing recording ended; "
            f"ConfscaleRecordingsBacklog above {RECORDINGS_BACKLOG_SECONDS // 3600} h.",
        ),
        linked_to_node_detail(
            table(
                "Recordings by state",
                [Query(f"sum by (node, state) (bbb_recordings{{{POOL}}})")],
                "none",
                width=24,
                description="Processing, processed, published, unpublished, deleted.",
            )
        ),
    ]
    bridges = [
        timeseries(
            "Packet loss",
            [
                Query(f"max by (node) (jitsi_loss_rate_download{{{POOL}}})", "{{node}} in"),
                Query(f"max by (node) (jitsi_loss_rate_upload{{{POOL}}})", "{{node}} out"),
            ],
            "percentunit",
            min_value=0,
            description="Fraction of RTP packets lost, incoming and outgoing, per bridge.",
        ),
        timeseries(
            "Round-trip time",
            [Query(f"max by (node) (jitsi_rtt_aggregate{{{POOL}}})", "{{node}}")],
            "ms",
            min_value=0,
            description="The bridge's average RTT over all streams.",
        ),
        timeseries(
            "Conferences by size",
            [
                Query(
                    f"sum by (le) (jitsi_conferences_by_size_bucket{{{POOL}}})",
                    "≤ {{le}} endpoints",
                )
            ],
            "none",
            description="Cumulative: conferences with at most le endpoints, over the bridges.",
        ),
        linked_to_node_detail(
            table(
                "Bridge states",
                [
                    Query(f"max by (node) (jitsi_healthy{{{POOL}}})", "healthy"),
                    Query(f"max by (node) (jitsi_drain{{{POOL}}})", "drain"),
                    Query(f"max by (node) (jitsi_graceful_shutdown{{{POOL}}})", "shutdown"),
                ],
                "none",
                description="1/0 per bridge; healthy is absent on bridges that do not send it.",
            )
        ),
    ]
    versions = [
        table(
            "BBB versions per pool",
            [Query(f"count by (pool, bbb_version) (bbb_version_info{{{POOL}}})")],
            "none",
            description="Nodes per BBB version; more than one for a day: "
            "ConfscaleBBBVersionsMixed.",
        ),
        table(
            "Jitsi bridge versions",
            [Query(f"count by (pool, version) (jitsi_version_info{{{POOL}}})")],
            "none",
            description="Bridges per version (from colibri stats).",
        ),
    ]
    resources = [
        timeseries(
            "Memory available",
            [
                Query(
                    f"min by (node) (confscale_node_memory_available_bytes{{{POOL}}}"
                    f" / confscale_node_memory_total_bytes{{{POOL}}})",
                    "{{node}}",
                )
            ],
            "percentunit",
            min_value=0,
            max_value=1,
            show_thresholds=True,
            steps=(Step("red"), Step("green", MEMORY_AVAILABLE_MIN)),
            description=f"MemAvailable ÷ MemTotal; ConfscaleNodeMemoryLow below "
            f"{MEMORY_AVAILABLE_MIN:.0%}.",
        ),
        timeseries(
            "Filesystem free",
            [
                Query(
                    f"min by (node, mountpoint) (confscale_node_filesystem_avail_bytes{{{POOL}}}"
                    f" / confscale_node_filesystem_size_bytes{{{POOL}}})",
                    "{{node}} {{mountpoint}}",
                )
            ],
            "percentunit",
            min_value=0,
            max_value=1,
            show_thresholds=True,
            steps=(
                Step("red"),
                Step("orange", DISK_FREE["critical"]),
                Step("green", DISK_FREE["warning"]),
            ),
            description="Free share of the watched filesystems (/, /var/bigbluebutton).",
        ),
    ]
    turn = [
        timeseries(
            "TURN allocations",
            [Query(f"sum by (instance, type) (turn_total_allocations{{{POOL}}})")],
            "none",
            show_thresholds=True,
            steps=(
                Step("green"),
                Step("red", int(TURN_RELAY_PORTS * TURN_ALLOCATIONS_WARN)),
            ),
            description="coturn's current allocations by socket type (job coturn); "
            f"ConfscaleTurnAllocationsNearLimit above {TURN_ALLOCATIONS_WARN:.0%} "
            f"of {TURN_RELAY_PORTS} relay ports.",
        ),
        timeseries(
            "TURN relayed traffic",
            [
                Query(
                    f"8 * rate(turn_total_traffic_sentb{{{POOL}}}[$__rate_interval])",
                    "{{instance}} sent",
                ),
                Query(
                    f"8 * rate(turn_total_traffic_rcvb{{{POOL}}}[$__rate_interval])",
                    "{{instance}} received",
                ),
            ],
            "bps",
            description="Bytes of finished TURN sessions (coturn counts a session when it ends).",
        ),
    ]
    return dashboard(
        UID,
        "confscale / Node health",
        description="Recordings, Jitsi bridge quality and states, versions, memory and disks.",
        variables=[datasource_variable(), pool_variable()],
        rows=[
            ("Recordings", recordings),
            ("Jitsi bridges", bridges),
            ("Versions", versions),
            ("Memory and disks", resources),
            ("TURN (coturn)", turn),
        ],
    )
