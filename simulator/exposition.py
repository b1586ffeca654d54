"""What a node shows besides the BBB API: node_exporter text, JVB colibri JSON, and truth."""

from __future__ import annotations

from collections import Counter
from typing import Any

from confscale.exporter.contract import MEETING_SIZE_BOUNDS
from confscale.simulator import jvb, model, recordings
from confscale.simulator.bbbapi import BBB_VERSION
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


def node_metrics(
    name: str,
    snap: Snapshot,
    t: float,
    load: float,
    kind: str = "bbb",
    fault: str = "",
    arg: float = 0.0,
) -> bytes:
    """node_exporter text format for one node (a realistic subset of families) under the
    fault mode ``fault`` (memory_low and disk_full change it)."""
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
    host = host_state(kind, snap.cpu_count, load, fault, arg)
    out.append(f"node_memory_MemTotal_bytes {float(host['memory_total_bytes'])!r}\n")
    out.append(
        "# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.\n"
    )
    out.append("# TYPE node_memory_MemAvailable_bytes gauge\n")
    out.append(f"node_memory_MemAvailable_bytes {float(host['memory_available_bytes'])!r}\n")
    # tmpfs mounts as on real hosts: only the watched mountpoints may be read
    mounts = {**host["filesystems"], "/run": [200 * 1024**2, 400 * 1024**2]}
    for stat, index in (("avail", 0), ("size", 1)):
        family = f"node_filesystem_{stat}_bytes"
        out.append(f"# HELP {family} Filesystem {stat} in bytes.\n# TYPE {family} gauge\n")
        for mount, values in mounts.items():
            device, fstype = ("tmpfs", "tmpfs") if mount == "/run" else ("/dev/vda1", "ext4")
            out.append(
                f'{family}{{device="{device}",fstype="{fstype}",mountpoint="{mount}"}} '
                f"{float(values[index])!r}\n"
            )
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
    totals: Counter[str] = Counter()
    clients: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    sizes = [0] * (len(MEETING_SIZE_BOUNDS) + 1)
    started: dict[str, list[str]] = {"meetings": [], "breakout_rooms": []}
    largest = 0
    for meeting in meetings:
        att = meeting.attendance(t)
        sizes[
            next((i for i, b in enumerate(MEETING_SIZE_BOUNDS) if att.participants <= b), -1)
        ] += 1
        if att.participants:
            server = dict(meeting.metadata).get("bbb-origin-server-name", "")
            origins[server.strip().lower() or "none"] += att.participants
        started["breakout_rooms" if meeting.is_breakout else "meetings"].append(meeting.internal_id)
        totals["meetings"] += 1
        totals["breakout_rooms"] += int(meeting.is_breakout)
        totals["participants"] += att.participants
        totals["moderators"] += att.moderators
        totals["listeners"] += att.listeners
        totals["voice_participants"] += att.voice
        totals["video_participants"] += att.video
        totals["video_fanout"] += att.fanout
        largest = max(largest, att.participants)
        # the same split bbbxml.attendees() renders (HTML5, DIAL-IN), spelt as the exporter
        # reports client types: lower case
        if att.participants - att.dialin:
            clients["html5"] += att.participants - att.dialin
        if att.dialin:
            clients["dial-in"] += att.dialin
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
    result["sizes"] = sizes  # meetings per bucket of MEETING_SIZE_BOUNDS, then the rest
    result["origins"] = dict(sorted(origins.items()))  # participants by origin server
    result["internal_ids"] = {k: sorted(v) for k, v in started.items()}
    return result


def current_rates(node: NodeState, meetings: list[Meeting], t: float) -> tuple[float, float]:
    """Uplink tx/rx bytes per second at ``t`` (for the JVB's instantaneous bit rates)."""
    tx = TX_BASE_BYTES + sum(m.attendance(t).tx_bytes_per_second() for m in meetings)
    saturated = node.override_at(t, "link_saturated")
    if saturated is not None:
        tx = saturated * model.LINK_CAPACITY_BYTES
    rx = RX_BASE_BYTES + sum(m.attendance(t).rx_bytes_per_second() for m in meetings)
    return tx, rx


def node_truth(
    node: NodeState,
    t: float,
    link_capacity: float,
    mode: str = "",
    arg: float = 0.0,
    arg_text: str = "",
) -> dict[str, Any]:
    """Ground truth of one node at ``t`` (the /_admin/truth entry) under fault ``mode``."""
    with node.lock:
        meetings = node.active(t)
        snap = node.snapshot(t)
        rates = current_rates(node, meetings, t)
        load = load_average(meetings, t, node.cpu_count)
    if node.kind == "jitsi":
        result: dict[str, Any] = {
            "kind": "jitsi",
            **jvb.truth(jvb.figures(meetings, t, rates, mode), node.name),
        }
    else:
        result = bbb_truth(meetings, t)
        result.update(recordings.truth(recordings.library(node.name, t, mode, arg)))
        result["bbb_version"] = str(arg_text) if mode == "bbb_version" else BBB_VERSION
    result.update(
        cpu_count=snap.cpu_count,
        cpu_seconds=snap.cpu_seconds(),
        transmit_bytes=_bytes(snap.tx),
        receive_bytes=_bytes(snap.rx),
        link_capacity_bytes_per_second=link_capacity,
        **host_state(node.kind, snap.cpu_count, load, mode, arg),
    )
    return result


def colibri_json(node: NodeState, t: float, mode: str = "") -> bytes:
    return jvb.colibri_json(_jvb_figures(node, t, mode), node.name, t)


def jvb_native_page(node: NodeState, t: float, mode: str = "") -> bytes:
    return jvb.native_page(_jvb_figures(node, t, mode))


def _jvb_figures(node: NodeState, t: float, mode: str) -> dict[str, Any]:
    with node.lock:
        meetings = node.active(t)
        rates = current_rates(node, meetings, t)
    return jvb.figures(meetings, t, rates, mode)


GIB = 1024**3
ROOT_SIZE = 100 * GIB
RECORDINGS_SIZE = 500 * GIB
HOST_FAULTS = ("memory_low", "disk_full")


def host_state(kind: str, cpu_count: int, load: float, mode: str, arg: float) -> dict[str, Any]:
    """Memory and the watched filesystems of a node: memory shrinks with load; BBB nodes
    hold recordings on /var/bigbluebutton. ``memory_low`` / ``disk_full`` set the share
    left (of memory / of the recordings filesystem, of / on a bridge)."""
    total = cpu_count * 2 * GIB
    busy = min(load / max(cpu_count, 1), 1.0)
    available = total * (arg if mode == "memory_low" else 0.7 - 0.5 * busy)
    filesystems = {"/": [int(ROOT_SIZE * 0.6), ROOT_SIZE]}
    if kind == "bbb":
        filesystems["/var/bigbluebutton"] = [int(RECORDINGS_SIZE * 0.55), RECORDINGS_SIZE]
    if mode == "disk_full":
        mount = "/var/bigbluebutton" if kind == "bbb" else "/"
        filesystems[mount][0] = int(filesystems[mount][1] * arg)
    return {
        "memory_available_bytes": int(available),
        "memory_total_bytes": total,
        "filesystems": filesystems,
    }


def load_average(meetings: list[Meeting], t: float, cpu_count: int) -> float:
    busy = model.CPU_NODE_BASE + sum(m.attendance(t).busy_cores() for m in meetings)
    return min(busy, cpu_count * 1.5)
