"""Every capacity target, failure target, hysteresis level and alert level, once.

node-mixin's ``config.libsonnet`` is the model: each number lives here with the reason it
has that value, and everything else reads it — the planner's sizing and placement, its
page, the dashboard generator. The recording and alerting rules are PromQL written in
``alerts/rules/``; ``tests/test_thresholds.py`` checks every number there against this
table, so the two cannot drift apart. ``docs/design.md`` §4–§5 explain the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

# --- capacity model (docs/design.md §4) -----------------------------------------------

#: Participants one node carries at most: a prior for BBB's minimum spec (8 cores,
#: bbb-install's recommendation), and the participants capacity of every node.
PARTICIPANTS_PER_NODE = 200.0

#: Headroom target per constraint, the most a node should carry in normal operation, as a
#: share of its capacity: CPU 0.75 because BBB's audio (FreeSWITCH) breaks up from about
#: 80 %; the link 0.8 because a 500 Mbit/s uplink loses packets in bursts before it is
#: full; participants at the prior itself; a Jitsi bridge at stress 0.8, jicofo's own
#: overload threshold.
TARGET = MappingProxyType(
    {
        "participants": 1.0,
        "cpu": 0.75,
        "transmit": 0.8,
        "receive": 0.8,
        "jitsi_stress": 0.8,
    }
)

#: Failure target per constraint: what the survivors may carry while R nodes are lost
#: (short, so closer to the limit than the normal target, but short of it).
FAILURE = MappingProxyType(
    {
        "participants": 1.0,
        "cpu": 0.9,
        "transmit": 0.95,
        "receive": 0.95,
        "jitsi_stress": 0.9,
    }
)

#: Packing-aware sizing (planner/packing.py): the share of simulated placements of a peak's
#: meetings allowed to put some node over a target (and, with R nodes lost, over a failure
#: target). 1 %: a pool sized for its forecast peak should overfill a node about once in a
#: hundred such peaks, and then only briefly (the placement signal takes it out).
PACKING_RISK = 0.01

#: Forecast method choice (planner/backtest.py): per lead-time bucket the lowest backtest
#: MASE among the methods whose 80 % and 95 % bands covered within this of nominal (the
#: 95 % band is the demand sizing buys servers for: a band that covers 85 % would under-buy).
BAND_COVERAGE_TOLERANCE = 0.07

#: Nodes kept in reserve for failures (N+R) and the smallest pool the planner proposes.
REDUNDANCY = 1
MIN_SERVERS = 1


# --- placement signal (docs/design.md §5) ---------------------------------------------


@dataclass(frozen=True)
class Hysteresis:
    """Take a node out at ``out`` pressure, put it back at ``back``.

    The JVB's own pair (a bridge drains at 0.9 of its stress and is taken back at 0.72,
    80 % of it): the gap keeps a node near the edge from flapping in and out.
    """

    out: float = 0.9
    back: float = 0.72


HYSTERESIS = Hysteresis()


# --- alerts (alerts/rules/confscale-alerts.yml, docs/alerts.md) ------------------------


@dataclass(frozen=True)
class AlertLevel:
    """An alert fires at ``fire`` held for ``hold`` and clears only below ``clear``."""

    fire: float
    clear: float
    hold: str


#: (alert name, severity) -> its level. Warnings sit at the point where users notice
#: (80 % link or CPU, a bridge at jicofo's threshold), clearing at the headroom target;
#: criticals where meetings are already degrading.
ALERT_LEVELS = MappingProxyType(
    {
        ("ConfscaleLinkSaturated", "warning"): AlertLevel(TARGET["transmit"], 0.75, "10m"),
        ("ConfscaleLinkSaturated", "critical"): AlertLevel(0.9, 0.85, "5m"),
        ("ConfscaleCPUSaturated", "warning"): AlertLevel(0.8, TARGET["cpu"], "10m"),
        ("ConfscaleCPUSaturated", "critical"): AlertLevel(0.9, 0.85, "5m"),
        ("ConfscaleJitsiBridgeStressed", "warning"): AlertLevel(
            TARGET["jitsi_stress"], HYSTERESIS.back, "5m"
        ),
    }
)

#: ConfscaleLinkSaturationImminent warns only when the link is already this busy, so a
#: quiet link whose trend doubles from 5 % does not warn.
LINK_IMMINENT_MIN_UTILISATION = 0.70


# --- the planner page's colours --------------------------------------------------------

#: Node table and dashboards: amber from the hysteresis "back in" level, red at "out".
PRESSURE_WARN = HYSTERESIS.back
PRESSURE_BAD = HYSTERESIS.out
#: Utilisation colours: amber from 60 %, red at the CPU target.
UTILISATION_WARN = 0.6
UTILISATION_BAD = TARGET["cpu"]


# --- health of the rest of a node (alerts/rules/confscale-health.yml) -----------------

#: A recording whose meeting ended this long ago and is still processing is a backlog:
#: bbb-record-core processes a recording in about its length on one core, so a two-hour
#: lecture is done within about two hours unless the queue is stuck or starved.
RECORDINGS_BACKLOG_SECONDS = 4 * 3600
#: MemAvailable below this share of MemTotal: the kernel is about to reclaim hard or
#: the OOM killer will pick FreeSWITCH or a bridge.
MEMORY_AVAILABLE_MIN = 0.10
#: Free space of a watched filesystem (root, recordings): warn while there is time to
#: act (raw recordings of a busy afternoon are tens of GB), page when writes will fail.
DISK_FREE = MappingProxyType({"warning": 0.10, "critical": 0.05})
#: A bridge in graceful shutdown waits for its conferences to end: longer than a long
#: meeting and it is stuck (an empty bridge exits at once).
JVB_SHUTDOWN_STUCK = "1h"
#: Different BBB versions in one pool for longer than this: an upgrade was left half done
#: (a rolling upgrade of a pool takes hours, not days).
VERSIONS_MIXED_FOR = "24h"

#: coturn relays each allocation on one port of its relay range (--min-port … --max-port,
#: 49152 … 65535 by default): the range bounds the allocations a TURN server can hold,
#: whatever its --total-quota. Warn at 80 % of it (set to your range's size).
TURN_RELAY_PORTS = 65535 - 49152 + 1
TURN_ALLOCATIONS_WARN = 0.8
