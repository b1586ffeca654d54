"""Current node data as a table: readings from a history's last rows, the node table."""

from __future__ import annotations

import math

import pandas as pd
from confscale.planner.placement import NodeReading, Placement


def readings_from_history(frame: pd.DataFrame) -> list[NodeReading]:
    """Current data in the embedded default: each node's last row of the history."""
    if frame.empty:
        return []
    last = frame.groupby("node", sort=True).tail(1)
    return [
        NodeReading(
            node=str(row.node),
            kind=str(row.kind),
            up=True,
            timestamp=row.timestamp.timestamp(),
            meetings=_num(row.meetings),
            participants=_num(row.participants),
            participants_max=_num(row.participants_max),
            webcams=_num(row.video_participants),
            cpu_utilisation=_num(row.cpu_utilisation),
            transmit_utilisation=_num(row.transmit_utilisation),
            receive_utilisation=_num(row.receive_utilisation),
        )
        for row in last.itertuples(index=False)
    ]


NODE_COLUMNS = (
    "node",
    "kind",
    "state",
    "meetings",
    "participants",
    "largest_meeting",
    "webcams",
    "cpu_utilisation",
    "link_utilisation",
    "pressure",
    "weight",
    "timestamp",
    "reason",
)


def node_table(placement: Placement) -> pd.DataFrame:
    """The node table of the page, in placement order."""
    rows = []
    for p in placement.nodes:
        r = p.reading
        link = max(
            (
                v
                for v in (r.transmit_utilisation, r.receive_utilisation)
                if v is not None and math.isfinite(v)
            ),
            default=None,
        )
        rows.append(
            (
                p.node,
                p.kind,
                p.state,
                r.meetings,
                r.participants,
                r.participants_max,
                r.webcams,
                r.cpu_utilisation,
                link,
                p.pressure,
                p.weight,
                p.timestamp,
                p.reason,
            )
        )
    return pd.DataFrame(rows, columns=list(NODE_COLUMNS))


def _num(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
