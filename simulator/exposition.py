"""What a node shows besides the BBB API: node_exporter text, JVB colibri JSON, and truth."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from confscale.simulator import model
from confscale.simulator.model import Meeting
from confscale.simulator.node import RX_BASE_BYTES, TX_BASE_BYTES, NodeState, Snapshot

NODE_EXPORTER_HEADER = """\
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 8
# HELP node_boot_time_seconds Node boot time, in unixtime.
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds {boot:.0f}
"""


CONTAINER_SHARE_OF_LO = 0.08


def _bytes(value: float) -> int:
    """Byte counters are whole numbers, as the kernel reports them."""
    return int(value)


def node_metrics(name: str, snap: Snapshot, t: float, load: float) -> bytes:
    """node_exporter text format for one node (a realistic subset of families)."""
    out = [NODE_EXPORTER_HEADER.format(boot=t - snap.uptime)]
    out.append("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n")
    out.append("# TYPE node_cpu_seconds_total counter\n")
    per_cpu = {mode: value / snap.cpu_count for mode, value in snap.cpu_seconds().items()}
    for cpu in range(snap.cpu_count):
        for mode in ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"):
            out.append(f'node_cpu_seconds_total{{cpu="{cpu}",mode="{mode}"}} {per_cpu[mode]!r}\n')
    out.append("# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n")
    out.append(f"node_load1 {load:.2f}\n")
    out.append("# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n")
    out.append("# TYPE node_memory_MemTotal_bytes gauge\n")
    out.append(f"node_memory_MemTotal_bytes {snap.cpu_count * 2 * 1024**3}\n")
    # container bridges as on real BBB hosts: uplink auto-detection must skip them
    container = snap.lo * CONTAINER_SHARE_OF_LO
    devices = {
        "docker0": (container, container * 1.3),
        "eth0": (snap.rx, snap.tx),
        "lo": (snap.lo, snap.lo),
        "veth3f2a9c1": (container * 1.3, container),
    }
    for direction, index in (("receive", 0), ("transmit", 1)):
        family = f"node_network_{direction}_bytes_total"
        out.append(f"# HELP {family} Network device statistic {direction}_bytes.\n")
        out.append(f"# TYPE {family} counter\n")
        for device, values in devices.items():
            out.append(f'{family}{{device="{device}"}} {_bytes(values[index])}\n')
    out.append("# HELP node_network_speed_bytes Network device property: speed_bytes\n")
    out.append("# TYPE node_network_speed_bytes gauge\n")
    out.append('node_network_speed_bytes{device="eth0"} 1.25e+09\n')
    out.append("# HELP node_uname_info Labeled system information as provided by uname.\n")
    out.append("# TYPE node_uname_info gauge\n")
    out.append(
        f'node_uname_info{{machine="x86_64",nodename="{name}",release="5.15.0-91"'
        f',sysname="Linux"}} 1\n'
    )
    return "".join(out).encode()


def bbb_truth(meetings: list[Meeting], t: float) -> dict[str, Any]:
    """The getMeetings sums of docs/design.md §2 for the meetings running at ``t``."""
    totals = Counter()
    clients: Counter[str] = Counter()
    largest = 0
    for meeting in meetings:
        att = meeting.attendance(t)
        totals["meetings"] += 1
        totals["breakout_rooms"] += int(meeting.is_breakout)
        totals["participants"] += att.participants
        totals["moderators"] += att.moderators
        totals["listeners"] += att.listeners
        totals["voice_participants"] += att.voice
        totals["video_participants"] += att.video
        totals["video_fanout"] += att.fanout
        largest = max(largest, att.participants)
        # the same split bbbxml.attendees() renders: dial-in users, everyone else HTML5
        if att.participants - att.dialin:
            clients["HTML5"] += att.participants - att.dialin
        if att.dialin:
            clients["DIAL-IN"] += att.dialin
    keys = (
        "meetings",
        "breakout_rooms",
        "participants",
        "moderators",
        "listeners",
        "voice_participants",
        "video_participants",
    )
    result: dict[str, Any] = {"kind": "bbb", **{k: totals[k] for k in keys}}
    result["participants_max"] = largest
    result["video_fanout"] = totals["video_fanout"]
    result["clients"] = dict(sorted(clients.items()))
    return result


def jitsi_stats(
    meetings: list[Meeting], t: float, snap_rates: tuple[float, float]
) -> dict[str, Any]:
    """JVB /colibri/stats fields (bit rates in kbit/s as the JVB reports them)."""
    sizes = [m.attendance(t) for m in meetings]
    participants = sum(a.participants for a in sizes)
    senders = sum(a.video for a in sizes)
    tx, rx = snap_rates
    upload_kbps = round(tx * 8 / 1000)
    download_kbps = round(rx * 8 / 1000)
    # JVB's stress is packet rate over a nominal maximum; bit rate is a fair stand-in
    stress = round(upload_kbps / 400_000, 4)
    histogram = [0] * 22
    for a in sizes:
        histogram[min(a.participants, 21)] += 1
    return {
        "conferences": len(sizes),
        "participants": participants,
        "largest_conference": max((a.participants for a in sizes), default=0),
        "endpoints_sending_video": senders,
        "endpoints_sending_audio": sum(a.voice for a in sizes),
        "receive_only_endpoints": sum(1 for a in sizes for _ in range(a.listeners)),
        "videochannels": senders,
        "conference_sizes": histogram,
        "stress_level": stress,
        "bit_rate_upload": upload_kbps,
        "bit_rate_download": download_kbps,
        "packet_rate_upload": round(upload_kbps / 9.6),
        "packet_rate_download": round(download_kbps / 9.6),
        "inactive_conferences": sum(1 for a in sizes if a.participants == 0),
        "total_participants": participants,
        "graceful_shutdown": False,
        "drain": False,
        "version": "2.3.92-g6f5c5dd6",
        "current_timestamp": _jvb_time(t),
    }


def _jvb_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(t))


def current_rates(node: NodeState, meetings: list[Meeting], t: float) -> tuple[float, float]:
    """Uplink tx/rx bytes per second at ``t`` (for the JVB's instantaneous bit rates)."""
    tx = TX_BASE_BYTES + sum(m.attendance(t).tx_bytes_per_second() for m in meetings)
    saturated = node.override_at(t, "link_saturated")
    if saturated is not None:
        tx = saturated * model.LINK_CAPACITY_BYTES
    rx = RX_BASE_BYTES + sum(m.attendance(t).rx_bytes_per_second() for m in meetings)
    return tx, rx


def node_truth(node: NodeState, t: float, link_capacity: float) -> dict[str, Any]:
    """Ground truth of one node at ``t`` (the /_admin/truth entry)."""
    with node.lock:
        meetings = node.active(t)
        snap = node.snapshot(t)
        rates = current_rates(node, meetings, t)
    if node.kind == "jitsi":
        stats = jitsi_stats(meetings, t, rates)
        keys = (
            "conferences",
            "participants",
            "largest_conference",
            "endpoints_sending_video",
            "stress_level",
            "bit_rate_upload",
            "bit_rate_download",
        )
        result: dict[str, Any] = {"kind": "jitsi", **{k: stats[k] for k in keys}}
    else:
        result = bbb_truth(meetings, t)
    result.update(
        cpu_count=snap.cpu_count,
        cpu_seconds=snap.cpu_seconds(),
        transmit_bytes=_bytes(snap.tx),
        receive_bytes=_bytes(snap.rx),
        link_capacity_bytes_per_second=link_capacity,
    )
    return result


def colibri_json(node: NodeState, t: float) -> bytes:
    with node.lock:
        meetings = node.active(t)
        rates = current_rates(node, meetings, t)
    return json.dumps(jitsi_stats(meetings, t, rates)).encode()


def load_average(meetings: list[Meeting], t: float, cpu_count: int) -> float:
    busy = model.CPU_NODE_BASE + sum(m.attendance(t).busy_cores() for m in meetings)
    return min(busy, cpu_count * 1.5)
