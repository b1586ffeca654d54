"""Capacity: peaks over time, servers needed vs online, headroom, placement weights."""

from __future__ import annotations

from confscale.thresholds import PARTICIPANTS_PER_NODE, TARGET
from dashboards.board import dashboard, datasource_variable, pool_variable
from dashboards.panels import (
    GREEN_ORANGE_RED_PRESSURE,
    Json,
    Query,
    Step,
    bargauge,
    heatmap,
    linked_to_node_detail,
    stat,
    table,
    timeseries,
)

UID = "confscale-capacity"
POOL = 'pool=~"$pool"'
# the planner's series of a whole pool (a tagged sub-pool's carry tag="…")
WHOLE = POOL + ',tag=""'


def build() -> Json:
    """The capacity dashboard."""
    # Peaks read raw series (subqueries), so they also cover history imported or backfilled
    # before the recording rules existed.
    history = [
        timeseries(
            "Daily peak participants",
            [
                Query(
                    f"max_over_time(sum by (pool) (bbb_meetings_participants{{{POOL}}})[1d:5m])",
                    "{{pool}}",
                )
            ],
            "none",
            width=12,
            description="Highest 5-minute pool total within the preceding 24 h.",
        ),
        timeseries(
            "Daily peak video fan-out",
            [
                Query(
                    f"max_over_time(sum by (pool) (bbb_meetings_video_fanout{{{POOL}}})[1d:5m])",
                    "{{pool}}",
                )
            ],
            "none",
            width=12,
            description="Highest 5-minute pool fan-out within the preceding 24 h.",
        ),
        timeseries(
            "Daily peak outbound bandwidth",
            [
                Query(
                    f"max_over_time((8 * sum by (pool) (rate("
                    f"confscale_node_network_transmit_bytes_total{{{POOL}}}[10m])))[1d:5m])",
                    "{{pool}}",
                )
            ],
            "bps",
            width=24,
            description="Highest 10-minute average of pool uplink transmit within the "
            "preceding 24 h.",
        ),
    ]
    sizing = [
        timeseries(
            "Servers needed vs online",
            [
                Query(f"confscale_pool_servers_needed{{{WHOLE}}}", "{{pool}} needed {{horizon}}"),
                Query(f"confscale_pool_servers_online{{{WHOLE}}}", "{{pool}} online"),
            ],
            "none",
            width=12,
            description="From confscale-planner: max over constraints of demand ÷ "
            "(target × capacity − largest meeting), with N+1.",
        ),
        stat(
            "Binding constraint",
            [
                Query(
                    f"confscale_pool_binding_constraint{{{WHOLE}}} == 1",
                    "{{pool}} {{constraint}}",
                )
            ],
            "none",
            text_mode="name",
            graph=False,
            width=6,
            height=8,
            description="The constraint that decides the server count.",
        ),
        stat(
            "Time to saturation",
            [Query(f"min(confscale_pool_time_to_saturation_seconds{{{WHOLE}}})")],
            "s",
            graph=False,
            width=6,
            height=8,
            steps=(Step("red"), Step("orange", 7 * 86400), Step("green", 30 * 86400)),
            description="When forecast demand reaches the online capacity.",
        ),
        bargauge(
            "Headroom per constraint",
            [Query(f"pool:confscale_headroom:ratio{{{POOL}}}", "{{pool}} {{constraint}}")],
            "percentunit",
            min_value=0,
            max_value=1,
            steps=(Step("red"), Step("orange", 0.1), Step("green", 0.25)),
            description="1 − used ÷ (target × capacity of the nodes that are up).",
        ),
        timeseries(
            "Headroom over time",
            [Query(f"pool:confscale_headroom:ratio{{{POOL}}}", "{{pool}} {{constraint}}")],
            "percentunit",
            max_value=1,
            description="Negative headroom: the pool is over its targets.",
        ),
    ]
    placement = [
        linked_to_node_detail(
            bargauge(
                "Placement weight per node",
                [Query(f"confscale_node_placement_weight{{{POOL}}}", "{{node}}")],
                "none",
                min_value=0,
                max_value=1,
                steps=(Step("red"), Step("orange", 0.2), Step("green", 0.5)),
                description="Published by the planner: 0 for nodes that are down, stale or "
                "above the hard threshold.",
            )
        ),
        linked_to_node_detail(
            table(
                "Pressure per node",
                [Query(f"node:confscale_pressure:ratio{{{POOL}}}", "{{node}}")],
                "percentunit",
                steps=GREEN_ORANGE_RED_PRESSURE,
                description=f"Recording rule: max(cpu/{TARGET['cpu']:g}, "
                f"tx/{TARGET['transmit']:g}, rx/{TARGET['receive']:g}, "
                f"participants/{TARGET['participants'] * PARTICIPANTS_PER_NODE:g}, "
                f"stress/{TARGET['jitsi_stress']:g}).",
            )
        ),
        heatmap(
            "Pressure distribution over nodes",
            [Query(f"node:confscale_pressure:ratio{{{POOL}}}", "{{node}}")],
            "percentunit",
            width=24,
            description="How many nodes sit at which pressure, over time: a pool that "
            "is balanced shows one narrow band.",
        ),
    ]
    return dashboard(
        UID,
        "confscale / Capacity",
        description="Demand peaks, servers needed vs online, headroom and placement.",
        variables=[datasource_variable(), pool_variable()],
        rows=[("Peaks", history), ("Sizing", sizing), ("Placement", placement)],
        time_from="now-7d",
    )
