"""What a simulated Jitsi bridge answers: /colibri/stats in two bridge generations, and the
bridge's own Prometheus page — all from one set of figures, which is also the truth.

Field names and types follow jitsi-videobridge (jitsi/jitsi-videobridge@a29d97d):
``stats/VideobridgeStatisticsShim.kt`` for the recent JSON (booleans as booleans, no
``conference_sizes``), its doc/statistics.md before 38ea5ea4 for the older one
(``loss_rate_*``, ``jitter_aggregate``, ``conference_sizes`` as a 22-entry list), and
``metrics/VideobridgeMetrics.kt`` / ``VideobridgePeriodicMetrics.kt`` for the native page
(namespace ``jitsi_jvb``, bit rates in bit/s, conference sizes as a histogram, le 0…20).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from confscale.simulator import model
from confscale.simulator.model import Meeting
from confscale.simulator.node import TX_BASE_BYTES

JVB_VERSION = "2.3.209-gb5fbe618"
OLDER_VERSION = "2.1-681-g3544ed05"
# Faults that change what a bridge says about itself (its answers stay valid).
STATE_FAULTS = ("jvb_unhealthy", "jvb_graceful_shutdown", "jvb_drain")
SIZE_BUCKETS = 21  # le = 0 … 20, then +Inf

# jitsi-videobridge's stress (jitsi/jitsi-videobridge@a29d97d1,
# jvb/src/main/kotlin/org/jitsi/videobridge/load_management/): with load-measurement
# "packet-rate", PacketRateLoadSampler sums every local endpoint's RTP packet rate received
# plus sent (and relays'), every 10 s, and JvbLoadManager.getCurrentStressLevel() is that
# measurement divided by the configured load-threshold — 50,000 packets/s in
# jvb/src/main/resources/reference.conf (videobridge.load-management.load-measurements.
# packet-rate.load-threshold). So stress is linear in the streams a bridge forwards, 1.0 at
# the threshold. (The reference.conf default measurement is "cpu-usage", CPU ÷ 0.9; the
# packet rate is what a deployment tunes per machine and what the streams determine.)
JVB_PACKET_RATE_LOAD_THRESHOLD = 50_000.0
AUDIO_PACKETS_PER_SECOND = 50.0  # Opus in 20 ms frames, per audio stream
VIDEO_PACKET_BYTES = 1_200.0  # a full RTP video packet (the MTU-bound size)


def packet_rates(sizes: list[model.Attendance], tx: float) -> tuple[float, float]:
    """RTP packets/s the bridge sends and receives for these conferences' streams.

    Audio: 50 packets/s per stream (one to each participant as the bit-rate model sends,
    one from each talker); video: the webcam bit rates in 1,200-byte packets, sent W·(n − 1)
    times and received W times (a screen share: n − 1 and 1). A saturated link (fault)
    scales what is sent with it.
    """
    up = down = 0.0
    modelled = 0.0
    for a in sizes:
        webcam = model.WEBCAM_BPS_MANY if a.video >= model.MANY_CAMS else model.WEBCAM_BPS
        video_pps = webcam / 8.0 / VIDEO_PACKET_BYTES
        up += AUDIO_PACKETS_PER_SECOND * (a.voice + a.listeners) + video_pps * a.fanout
        down += AUDIO_PACKETS_PER_SECOND * a.voice + video_pps * a.video
        if a.screenshare:  # one screen stream in, one to every other participant
            screen_pps = model.SCREEN_BPS / 8.0 / VIDEO_PACKET_BYTES
            up += screen_pps * max(a.participants - 1, 0)
            down += screen_pps
        modelled += a.tx_bytes_per_second()
    if modelled > 0 and tx > TX_BASE_BYTES + modelled * 1.01:  # link_saturated override
        up *= (tx - TX_BASE_BYTES) / modelled
    elif modelled == 0 and tx > TX_BASE_BYTES * 2:
        up = (tx - TX_BASE_BYTES) / VIDEO_PACKET_BYTES
    return up, down


def style(name: str) -> str:
    """``recent`` for odd-numbered bridges (jvb-01, jvb-03, …), ``older`` for even ones, so
    every pool with two bridges shows both generations' field drift."""
    digits = "".join(c for c in name if c.isdigit())
    return "recent" if not digits or int(digits) % 2 else "older"


def figures(
    meetings: list[Meeting], t: float, rates: tuple[float, float], mode: str = ""
) -> dict[str, Any]:
    """Every figure of one bridge at ``t`` (bit rates in kbit/s as colibri reports them)."""
    sizes = [m.attendance(t) for m in meetings]
    participants = sum(a.participants for a in sizes)
    senders = sum(a.video for a in sizes)
    tx, rx = rates
    upload_kbps = round(tx * 8 / 1000)
    download_kbps = round(rx * 8 / 1000)
    up, down = packet_rates(sizes, tx)
    stress = round((up + down) / JVB_PACKET_RATE_LOAD_THRESHOLD, 4)
    histogram = [0] * 22
    for a in sizes:
        histogram[min(a.participants, 21)] += 1
    return {
        "conferences": len(sizes),
        "participants": participants,
        "endpoints": participants,
        "largest_conference": max((a.participants for a in sizes), default=0),
        "endpoints_sending_video": senders,
        "endpoints_sending_audio": sum(a.voice for a in sizes),
        "sizes": histogram,
        "stress_level": stress,
        "bit_rate_upload": upload_kbps,
        "bit_rate_download": download_kbps,
        "packet_rate_upload": round(up),
        "packet_rate_download": round(down),
        # quality worsens with load: a loaded bridge queues (RTT) and drops (loss)
        "rtt_aggregate": round(20 + 60 * stress, 1),
        "jitter_aggregate": round(2 + 10 * stress, 2),
        "loss_rate_download": round(0.001 + 0.03 * stress, 5),
        "loss_rate_upload": round(0.0005 + 0.02 * stress, 5),
        "healthy": mode != "jvb_unhealthy",
        "graceful_shutdown": mode == "jvb_graceful_shutdown",
        "drain": mode == "jvb_drain",
    }


def colibri(fig: dict[str, Any], name: str, t: float) -> dict[str, Any]:
    """The /colibri/stats document, as a bridge of this node's generation sends it."""
    common = {
        key: fig[key]
        for key in (
            "conferences",
            "participants",
            "endpoints",
            "largest_conference",
            "endpoints_sending_video",
            "endpoints_sending_audio",
            "stress_level",
            "bit_rate_upload",
            "bit_rate_download",
            "packet_rate_upload",
            "packet_rate_download",
            "graceful_shutdown",
            "drain",
        )
    }
    common["current_timestamp"] = time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime(t))
    if style(name) == "recent":
        return {
            **common,
            "incoming_loss": fig["loss_rate_download"],
            "outgoing_loss": str(float(fig["loss_rate_upload"])),  # drift: a number as text
            "overall_loss": round((fig["loss_rate_download"] + fig["loss_rate_upload"]) / 2, 6),
            "rtt_aggregate": fig["rtt_aggregate"],
            "healthy": fig["healthy"],
            "shutting_down": False,
            "conference_sizes": "[]",  # drift: the empty list sent as a string
            "version": JVB_VERSION,
        }
    return {
        **common,
        "loss_rate_download": fig["loss_rate_download"],
        "loss_rate_upload": fig["loss_rate_upload"],
        "jitter_aggregate": fig["jitter_aggregate"],
        "rtt_aggregate": str(fig["rtt_aggregate"]),
        "conference_sizes": fig["sizes"],
        "videochannels": fig["endpoints_sending_video"],
        "version": OLDER_VERSION,
    }


def colibri_json(fig: dict[str, Any], name: str, t: float) -> bytes:
    return json.dumps(colibri(fig, name, t)).encode()


def cumulative(sizes: list[int]) -> dict[str, int]:
    """Conferences with at most ``le`` endpoints, keyed like the exported ``le`` label."""
    out, running = {}, 0
    for le in range(SIZE_BUCKETS):
        running += sizes[le]
        out[str(le)] = running
    out["+Inf"] = sum(sizes)
    return out


_NATIVE = (  # (family, figure, factor): what the native page carries
    ("jitsi_jvb_conferences", "conferences", 1),
    ("jitsi_jvb_current_endpoints", "endpoints", 1),
    ("jitsi_jvb_largest_conference", "largest_conference", 1),
    ("jitsi_jvb_endpoints_sending_video", "endpoints_sending_video", 1),
    ("jitsi_jvb_stress", "stress_level", 1),
    ("jitsi_jvb_incoming_bitrate", "bit_rate_download", 1000),
    ("jitsi_jvb_outgoing_bitrate", "bit_rate_upload", 1000),
    ("jitsi_jvb_incoming_packet_rate", "packet_rate_download", 1),
    ("jitsi_jvb_outgoing_packet_rate", "packet_rate_upload", 1),
    ("jitsi_jvb_average_rtt", "rtt_aggregate", 1),
    ("jitsi_jvb_incoming_loss_fraction", "loss_rate_download", 1),
    ("jitsi_jvb_outgoing_loss_fraction", "loss_rate_upload", 1),
    ("jitsi_jvb_healthy", "healthy", 1),
    ("jitsi_jvb_drain_mode", "drain", 1),
    ("jitsi_jvb_graceful_shutdown", "graceful_shutdown", 1),
)


def native_page(fig: dict[str, Any]) -> bytes:
    """The bridge's own /metrics in the 0.0.4 text format."""
    out = []
    for family, key, factor in _NATIVE:
        out.append(f"# TYPE {family} gauge\n{family} {float(fig[key]) * factor!r}\n")
    out.append("# TYPE jitsi_jvb_conferences_created counter\n")
    out.append("jitsi_jvb_conferences_created_total 0.0\n")
    out.append(
        "# HELP jitsi_jvb_conferences_by_size Histogram of conferences by total number of "
        "endpoints.\n# TYPE jitsi_jvb_conferences_by_size histogram\n"
    )
    for le, count in cumulative(fig["sizes"]).items():
        bound = le if le == "+Inf" else f"{float(le)!r}"
        out.append(f'jitsi_jvb_conferences_by_size_bucket{{le="{bound}"}} {float(count)!r}\n')
    out.append(f"jitsi_jvb_conferences_by_size_count {float(fig['conferences'])!r}\n")
    total = sum(i * n for i, n in enumerate(fig["sizes"]))
    out.append(f"jitsi_jvb_conferences_by_size_sum {float(total)!r}\n")
    out.append("# TYPE jvm_threads_current gauge\njvm_threads_current 312.0\n")
    return "".join(out).encode()


_CONTRACT = (
    "conferences",
    "participants",
    "endpoints",
    "largest_conference",
    "endpoints_sending_video",
    "stress_level",
    "bit_rate_upload",
    "bit_rate_download",
    "packet_rate_upload",
    "packet_rate_download",
    "rtt_aggregate",
    "jitter_aggregate",
    "loss_rate_download",
    "loss_rate_upload",
    "healthy",
    "drain",
    "graceful_shutdown",
)


def truth(fig: dict[str, Any], name: str) -> dict[str, Any]:
    """What the exporter must show for this bridge: from its colibri stats (the contract
    fields its generation sends, booleans as 0/1), and from its native page."""
    recent = style(name) == "recent"
    absent = {"jitter_aggregate"} if recent else {"healthy"}
    values = {k: _number(fig[k]) for k in _CONTRACT if k not in absent}
    native_fields = {key for _, key, _ in _NATIVE} | {"participants"}
    return {
        **values,
        "style": style(name),
        "version": JVB_VERSION if recent else OLDER_VERSION,
        "conference_sizes": None if recent else cumulative(fig["sizes"]),
        "native": {
            **{k: _number(fig[k]) for k in _CONTRACT if k in native_fields},
            "conference_sizes": cumulative(fig["sizes"]),
        },
    }


def _number(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0
