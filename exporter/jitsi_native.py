"""A bridge's own Prometheus page (``jitsi: {metrics: URL}``) mapped onto the Jitsi contract.

Recent jitsi-videobridge versions serve their metrics natively on the private HTTP
interface (``/metrics``, namespace ``jitsi_jvb``: jitsi/jitsi-videobridge@a29d97d,
jvb/src/main/kotlin/org/jitsi/videobridge/metrics/VideobridgeMetrics.kt and
VideobridgePeriodicMetrics.kt, JvbHealthChecker.kt). Their /colibri/stats is a shim over
the same figures (stats/VideobridgeStatisticsShim.kt), so each family maps onto the
colibri field the shim fills from it, with the shim's units (bit rates in kbit/s).
"""

from __future__ import annotations

import math
from types import MappingProxyType

from confscale.exporter.contract import JITSI_CONFERENCE_SIZE_BUCKETS
from confscale.exporter.fetch import PollError
from prometheus_client.parser import text_string_to_metric_families

# native sample name -> ((contract field, factor), …)
NATIVE_FIELDS = MappingProxyType(
    {
        "jitsi_jvb_conferences": (("conferences", 1.0),),
        # the shim's PARTICIPANTS and "endpoints" are both current_endpoints
        "jitsi_jvb_current_endpoints": (("participants", 1.0), ("endpoints", 1.0)),
        "jitsi_jvb_largest_conference": (("largest_conference", 1.0),),
        "jitsi_jvb_endpoints_sending_video": (("endpoints_sending_video", 1.0),),
        "jitsi_jvb_stress": (("stress_level", 1.0),),
        "jitsi_jvb_outgoing_bitrate": (("bit_rate_upload", 0.001),),  # bit/s -> kbit/s
        "jitsi_jvb_incoming_bitrate": (("bit_rate_download", 0.001),),
        "jitsi_jvb_outgoing_packet_rate": (("packet_rate_upload", 1.0),),
        "jitsi_jvb_incoming_packet_rate": (("packet_rate_download", 1.0),),
        "jitsi_jvb_average_rtt": (("rtt_aggregate", 1.0),),
        "jitsi_jvb_incoming_loss_fraction": (("loss_rate_download", 1.0),),
        "jitsi_jvb_outgoing_loss_fraction": (("loss_rate_upload", 1.0),),
        "jitsi_jvb_healthy": (("healthy", 1.0),),
        "jitsi_jvb_drain_mode": (("drain", 1.0),),
        "jitsi_jvb_graceful_shutdown": (("graceful_shutdown", 1.0),),
    }
)
NATIVE_SIZES = "jitsi_jvb_conferences_by_size_bucket"


NativeFigures = tuple[tuple[tuple[str, float], ...], tuple[tuple[float, float], ...] | None]


def parse_native(document: bytes) -> NativeFigures:
    """(values, conference sizes) from a bridge's Prometheus text page, as in JitsiFigures;
    PollError('parse') on the wrong shape."""
    try:
        text = document.decode("utf-8")
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except (UnicodeDecodeError, ValueError, TypeError, IndexError):
        raise PollError("parse", "the bridge's metrics page is not Prometheus text") from None
    found: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for sample in samples:
        if not math.isfinite(sample.value) and sample.name != NATIVE_SIZES:
            raise PollError("parse", f"{sample.name} is not finite")
        if sample.name == NATIVE_SIZES:
            le = _bound(sample.labels.get("le", ""))
            if le is not None:
                buckets[le] = buckets.get(le, 0.0) + sample.value
            continue
        for field, factor in NATIVE_FIELDS.get(sample.name, ()):
            found[field] = found.get(field, 0.0) + sample.value * factor
    if "conferences" not in found:
        raise PollError("parse", "no jitsi_jvb_conferences on the bridge's metrics page")
    sizes = None
    if buckets:
        wanted = [float(le) for le in JITSI_CONFERENCE_SIZE_BUCKETS] + [math.inf]
        if not set(wanted) <= set(buckets):
            raise PollError("parse", "jitsi_jvb_conferences_by_size has unexpected buckets")
        sizes = tuple((le, buckets[le]) for le in wanted)
    order = [field for pairs in NATIVE_FIELDS.values() for field, _ in pairs]
    return tuple((f, found[f]) for f in dict.fromkeys(order) if f in found), sizes


def _bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
