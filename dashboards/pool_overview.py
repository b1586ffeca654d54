"""Pool overview: is the pool healthy right now, and how loaded is it?"""

from __future__ import annotations

from dashboards.board import dashboard, datasource_variable, pool_variable
from dashboards.panels import (
    GREEN_ORANGE_RED_LINK,
    LINK_WARNING,
    Json,
    Query,
    Step,
    alertlist,
    bargauge,
    linked_to_node_detail,
    stat,
    state_timeline,
    table,
    timeseries,
    up_down_mapping,
)

UID = "confscale-pool-overview"
POOL = 'pool=~"$pool"'
# the planner's series of a whole pool (a tagged sub-pool's carry tag="…")
WHOLE = POOL + ',tag=""'


def build() -> Json:
    """The pool overview dashboard."""
    status = [
        stat(
            "Nodes up",
            [Query(f"sum(pool:confscale_nodes_up:count{{{POOL}}})")],
            "none",
            description="Nodes whose every configured source (bbb, jitsi, host) answered "
            "the last poll.",
            graph=False,
        ),
        stat(
            "Nodes down",
            [
                Query(
                    f"sum(pool:confscale_nodes:count{{{POOL}}}) - "
                    f"sum(pool:confscale_nodes_up:count{{{POOL}}})"
                )
            ],
            "none",
            description="Configured nodes with at least one failing source.",
            steps=(Step("green"), Step("red", 1)),
            graph=False,
        ),
        stat(
            "Participants",
            [
                Query(
                    f"sum(pool:bbb_meetings_participants:sum{{{POOL}}}) + "
                    f"sum(pool:jitsi_participants:sum{{{POOL}}} or vector(0))"
                )
            ],
            "none",
            description="BBB participants (moderators included) plus Jitsi "
            "participants, over the pool.",
        ),
        stat(
            "Meetings",
            [Query(f"sum(pool:bbb_meetings:sum{{{POOL}}})")],
            "none",
            description="BBB meetings including breakout rooms.",
        ),
        stat(
            "Servers needed (planner)",
            [Query(f"max(confscale_pool_servers_needed{{{WHOLE}}})")],
            "none",
            description="The planner's servers needed, the largest over its forecast "
            "horizons (docs/design.md §4); compare with nodes up.",
        ),
        stat(
            "Servers online (planner)",
            [Query(f"max(confscale_pool_servers_online{{{WHOLE}}})")],
            "none",
            description="Servers the planner counts as online and usable.",
        ),
    ]
    load = [
        timeseries(
            "Participants and meetings",
            [
                Query(
                    f"sum by (pool) (pool:bbb_meetings_participants:sum{{{POOL}}})",
                    "participants {{pool}}",
                ),
                Query(f"sum by (pool) (pool:bbb_meetings:sum{{{POOL}}})", "meetings {{pool}}"),
                Query(
                    f"sum by (pool) (pool:jitsi_participants:sum{{{POOL}}})",
                    "jitsi participants {{pool}}",
                ),
            ],
            "none",
            description="Pool totals from the recording rules in alerts/.",
        ),
        timeseries(
            "Webcams and video fan-out",
            [
                Query(
                    f"sum by (pool) (pool:bbb_meetings_video_participants:sum{{{POOL}}})",
                    "webcams {{pool}}",
                ),
                Query(
                    f"sum by (pool) (pool:bbb_meetings_video_fanout:sum{{{POOL}}})",
                    "forwarded streams {{pool}}",
                ),
            ],
            "none",
            description="Video fan-out is Σ W·(n−1) per meeting: it, not the "
            "participant count, drives outbound bandwidth.",
        ),
        timeseries(
            "Outbound bandwidth against capacity",
            [
                Query(
                    f"8 * sum by (pool) "
                    f"(pool:confscale_network_transmit_bytes:sum_rate5m{{{POOL}}})",
                    "transmit {{pool}}",
                ),
                Query(
                    f"8 * sum by (pool) "
                    f"(pool:confscale_link_capacity_bytes_per_second:sum{{{POOL}}})",
                    "configured capacity {{pool}}",
                ),
            ],
            "bps",
            description="Uplink transmit of all nodes against the sum of their "
            "configured link capacity (not NIC speed).",
        ),
        linked_to_node_detail(
            state_timeline(
                "Nodes up / down",
                [Query(f"min by (node) (confscale_node_up{{{POOL}}})", "{{node}}")],
                "none",
                mappings=up_down_mapping(),
                description="Per node, the worst of its sources; gaps are missing "
                "data, not idle nodes.",
            )
        ),
    ]
    per_node = [
        linked_to_node_detail(
            bargauge(
                "Link utilisation per node",
                [
                    Query(
                        f"node:confscale_network_transmit_utilisation:ratio_rate5m{{{POOL}}}",
                        "{{node}}",
                    )
                ],
                "percentunit",
                steps=GREEN_ORANGE_RED_LINK,
                min_value=0,
                max_value=1,
                description="Transmit bit/s ÷ configured link capacity (500 Mbit/s unless "
                f"configured); orange where the link warning clears "
                f"({LINK_WARNING.clear:g}), red where it fires ({LINK_WARNING.fire:g}).",
            )
        ),
        linked_to_node_detail(
            timeseries(
                "CPU utilisation per node",
                [Query(f"node:confscale_cpu_utilisation:ratio_rate5m{{{POOL}}}", "{{node}}")],
                "percentunit",
                min_value=0,
                max_value=1,
                show_thresholds=True,
                steps=(Step("green"), Step("red", 0.8)),
                description="BBB audio degrades from about 80 % CPU.",
            )
        ),
    ]
    alerts = [
        alertlist(
            "Firing alerts", description="Alerts from the rules in alerts/, as Grafana sees them."
        ),
        table(
            "Alerts in Prometheus",
            [
                Query(
                    "count by (alertname, severity, alertstate) "
                    '(ALERTS{alertstate=~"firing|pending"})'
                )
            ],
            "none",
            description="Straight from Prometheus' ALERTS series, firing and pending, with the "
            "number of instances. Watchdog always fires: it shows the alert pipeline works.",
        ),
        timeseries(
            "Servers needed vs online (planner)",
            [
                Query(f"confscale_pool_servers_needed{{{WHOLE}}}", "{{pool}} needed {{horizon}}"),
                Query(f"confscale_pool_servers_online{{{WHOLE}}}", "{{pool}} online"),
            ],
            "none",
            width=24,
            description="Published by confscale-planner; needed includes the "
            "N+1 reserve and the largest meeting.",
        ),
    ]
    return dashboard(
        UID,
        "confscale / Pool overview",
        description="Nodes, load, bandwidth and alerts of the whole BBB/Jitsi pool.",
        variables=[datasource_variable(), pool_variable()],
        rows=[
            ("Status", status),
            ("Load", load),
            ("Nodes", per_node),
            ("Alerts and capacity", alerts),
        ],
    )
