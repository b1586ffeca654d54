"""Node detail: one server (template variable ``node``), its load and its poll health."""

from __future__ import annotations

from confscale.thresholds import HYSTERESIS, TARGET
from dashboards.board import dashboard, datasource_variable, pool_variable, query_variable
from dashboards.panels import (
    GREEN_ORANGE_RED_CPU,
    GREEN_ORANGE_RED_LINK,
    GREEN_ORANGE_RED_PRESSURE,
    NODE_DETAIL_UID,
    Json,
    Query,
    Step,
    gauge,
    stat,
    state_timeline,
    table,
    timeseries,
    up_down_mapping,
)

UID = NODE_DETAIL_UID
NODE = 'node="$node"'


def build() -> Json:
    """The node detail dashboard."""
    node = query_variable(
        "node",
        "Node",
        'label_values(confscale_node_up{pool=~"$pool"}, node)',
        multi=False,
        include_all=False,
    )
    now = [
        stat(
            "Meetings",
            [Query(f"bbb_meetings{{{NODE}}}")],
            "none",
            description="Meetings on this node, breakout rooms included.",
        ),
        stat(
            "Participants",
            [Query(f"bbb_meetings_participants{{{NODE}}}")],
            "none",
            description="Σ participantCount (moderators included).",
        ),
        stat(
            "Largest meeting",
            [Query(f"bbb_meetings_participants_max{{{NODE}}}")],
            "none",
            description="A meeting cannot be split across nodes: this bounds placement.",
        ),
        gauge(
            "CPU",
            [Query(f"node:confscale_cpu_utilisation:ratio_rate5m{{{NODE}}}")],
            "percentunit",
            min_value=0,
            max_value=1,
            steps=GREEN_ORANGE_RED_CPU,
            description=f"1 − idle share over 5 minutes; target {TARGET['cpu']:g}.",
        ),
        gauge(
            "Uplink transmit",
            [Query(f"node:confscale_network_transmit_utilisation:ratio_rate5m{{{NODE}}}")],
            "percentunit",
            min_value=0,
            max_value=1,
            steps=GREEN_ORANGE_RED_LINK,
            description="Transmit ÷ configured link capacity.",
        ),
        gauge(
            "Pressure",
            [Query(f"node:confscale_pressure:ratio{{{NODE}}}")],
            "percentunit",
            min_value=0,
            max_value=1.2,
            steps=GREEN_ORANGE_RED_PRESSURE,
            description="max over constraints of use ÷ target; the placement signal takes "
            f"the node out at {HYSTERESIS.out:g} and back at {HYSTERESIS.back:g}.",
        ),
    ]
    meetings = [
        timeseries(
            "Meetings and breakout rooms",
            [
                Query(f"bbb_meetings{{{NODE}}}", "meetings"),
                Query(f"bbb_breakout_rooms{{{NODE}}}", "of which breakout rooms"),
            ],
            "none",
            description="From getMeetings on every poll.",
        ),
        timeseries(
            "Participants by role and media",
            [
                Query(f"bbb_meetings_participants{{{NODE}}}", "participants"),
                Query(f"bbb_meetings_voice_participants{{{NODE}}}", "voice"),
                Query(f"bbb_meetings_listeners{{{NODE}}}", "listen only"),
                Query(f"bbb_meetings_video_participants{{{NODE}}}", "webcams"),
                Query(f"bbb_meetings_moderators{{{NODE}}}", "moderators"),
            ],
            "none",
            description="Σ of getMeetings' counters over the node's meetings.",
        ),
        timeseries(
            "Video fan-out and largest meeting",
            [
                Query(f"bbb_meetings_video_fanout{{{NODE}}}", "forwarded webcam streams"),
                Query(f"bbb_meetings_participants_max{{{NODE}}}", "largest meeting"),
            ],
            "none",
            description="Fan-out Σ W·(n−1) grows with the square of meeting size.",
        ),
        timeseries(
            "Jitsi bridge",
            [
                Query(f"jitsi_participants{{{NODE}}}", "participants"),
                Query(f"jitsi_conferences{{{NODE}}}", "conferences"),
                Query(f"jitsi_largest_conference{{{NODE}}}", "largest conference"),
                Query(f"jitsi_endpoints_sending_video{{{NODE}}}", "sending video"),
            ],
            "none",
            description="From the JVB's /colibri/stats (Jitsi bridges only).",
        ),
    ]
    resources = [
        timeseries(
            "CPU utilisation",
            [Query(f"node:confscale_cpu_utilisation:ratio_rate5m{{{NODE}}}", "cpu")],
            "percentunit",
            min_value=0,
            max_value=1,
            show_thresholds=True,
            steps=(Step("green"), Step("red", 0.8)),
            description="From the recording rule (5-minute rate).",
        ),
        timeseries(
            "Uplink bit/s against capacity",
            [
                Query(
                    f"8 * rate(confscale_node_network_transmit_bytes_total{{{NODE}}}"
                    "[$__rate_interval])",
                    "transmit",
                ),
                Query(
                    f"8 * rate(confscale_node_network_receive_bytes_total{{{NODE}}}"
                    "[$__rate_interval])",
                    "receive",
                ),
                Query(
                    f"8 * confscale_node_link_capacity_bytes_per_second{{{NODE}}}",
                    "configured capacity",
                ),
            ],
            "bps",
            description="Uplink interface only; capacity as configured (default 500 Mbit/s).",
        ),
        timeseries(
            "Jitsi stress level",
            [Query(f"jitsi_stress_level{{{NODE}}}", "stress")],
            "percentunit",
            min_value=0,
            show_thresholds=True,
            steps=(Step("green"), Step("red", 0.8)),
            description="JVB stress (jicofo avoids a bridge above 0.8).",
        ),
    ]
    health = [
        state_timeline(
            "Poll health by source",
            [Query(f"confscale_node_up{{{NODE}}}", "{{source}}")],
            "none",
            mappings=up_down_mapping(),
            description="1 when the last poll of the source succeeded (BBB's returncode included).",
        ),
        timeseries(
            "Poll errors by reason",
            [
                Query(
                    f"sum by (source, reason) (increase("
                    f"confscale_node_poll_errors_total{{{NODE}}}[$__rate_interval]))",
                    "{{source}} {{reason}}",
                )
            ],
            "none",
            stack=True,
            description="timeout, connect, http, checksum, parse, too_large, …",
        ),
        timeseries(
            "Poll duration",
            [Query(f"confscale_node_poll_duration_seconds{{{NODE}}}", "{{source}}")],
            "s",
            description="Duration of the last poll per source.",
        ),
        table(
            "Seconds since last successful poll",
            [
                Query(
                    f"time() - confscale_node_last_success_timestamp_seconds{{{NODE}}}",
                    "{{source}}",
                )
            ],
            "s",
            steps=(Step("green"), Step("orange", 60), Step("red", 300)),
            description="Staleness is shown, never hidden.",
        ),
    ]
    return dashboard(
        UID,
        "confscale / Node detail",
        description="One BBB node or Jitsi bridge: meetings, media, CPU, link and poll health.",
        variables=[datasource_variable(), pool_variable(), node],
        rows=[
            ("Now", now),
            ("Meetings and media", meetings),
            ("Resources", resources),
            ("Poll health", health),
        ],
    )
