"""The pool's TURN server as coturn shows itself with ``--prometheus`` (``/_turn/metrics``).

Family names, types and labels follow coturn/coturn@8024aa6 src/apps/relay/prom_server.c:
``turn_total_allocations{type}`` (a gauge by socket type) and the ``turn_total_traffic_*``
counters of finished sessions (libprom writes counters without a ``_total`` suffix).
A tenth of the pool's participants relay through TURN (strict firewalls), most over UDP;
the fault ``turn=turn_allocations:N`` makes it N allocations (near coturn's port limit).
"""

from __future__ import annotations

from confscale.simulator.pool import TURN_NAME, Pool

RELAYED_SHARE = 0.1
TCP_SHARE = 0.2  # of the relayed: networks that allow only TCP/443


def metrics_page(pool: Pool, t: float) -> bytes:
    participants = 0
    for name in pool.names:
        node = pool.node(name)
        if node is None:
            continue
        with node.lock:
            participants += sum(m.attendance(t).participants for m in node.active(t))
    relayed = round(participants * RELAYED_SHARE)
    fault = pool.fault(TURN_NAME)
    if fault is not None and fault.mode == "turn_allocations":
        relayed = int(fault.number())
    tcp = round(relayed * TCP_SHARE)
    # finished sessions' bytes: grows with simulated time, as a counter must
    sent = int(t - 1_700_000_000) * 125_000
    lines = [
        "# HELP turn_total_allocations Represents current allocations number",
        "# TYPE turn_total_allocations gauge",
        f'turn_total_allocations{{type="UDP"}} {relayed - tcp}',
        f'turn_total_allocations{{type="TCP"}} {tcp}',
        "# HELP turn_total_traffic_sentb Represents total finished sessions sent bytes",
        "# TYPE turn_total_traffic_sentb counter",
        f"turn_total_traffic_sentb {sent}",
        "# HELP turn_total_traffic_rcvb Represents total finished sessions received bytes",
        "# TYPE turn_total_traffic_rcvb counter",
        f"turn_total_traffic_rcvb {sent // 4}",
    ]
    return ("\n".join(lines) + "\n").encode()
