"""Jitsi: colibri stats across bridge versions, the native Prometheus page, the families."""

from __future__ import annotations

import json
import math

import pytest
from confscale.exporter.config import ConfigValueError, parse_config
from confscale.exporter.contract import JITSI_METRICS
from confscale.exporter.exposition import render
from confscale.exporter.fetch import PollError
from confscale.exporter.jitsi import JitsiFamilies, parse_colibri
from confscale.exporter.jitsi_native import NATIVE_FIELDS, parse_native
from test_exporter_support import parse_text, value

# Keys and value types as VideobridgeStatisticsShim.getStatsJson writes them
# (jitsi/jitsi-videobridge@a29d97d): booleans as JSON booleans, no conference_sizes.
RECENT = {
    "incoming_loss": 0.012,
    "outgoing_loss": "0.0",  # drift: numbers sent as text
    "overall_loss": 0.006,
    "bit_rate_download": 2400,
    "bit_rate_upload": 9100,
    "packet_rate_download": 300,
    "packet_rate_upload": 1100,
    "rtt_aggregate": 41.5,
    "endpoints": 12,
    "participants": 12,
    "endpoints_sending_video": 5,
    "largest_conference": 7,
    "stress_level": 0.08,
    "conferences": 3,
    "graceful_shutdown": False,
    "shutting_down": False,
    "drain": True,
    "healthy": True,
    "version": "2.3.209-gb5fbe618",
    "conference_sizes": "[]",  # drift: some bridges send the empty list as a string
}
# An older bridge (doc/statistics.md before 38ea5ea4): loss_rate_*, jitter, sizes list.
OLDER = {
    "conferences": 2,
    "participants": 5,
    "loss_rate_download": 0.02,
    "loss_rate_upload": 0.01,
    "jitter_aggregate": 3.0,
    "rtt_aggregate": "12.0",
    "graceful_shutdown": "false",
    "conference_sizes": [0, 0, 1, 1] + [0] * 17 + [1],  # 22 entries, the last is 21+
}


def test_recent_bridge_fields() -> None:
    figures = parse_colibri(json.dumps(RECENT).encode())
    values = dict(figures.values)
    assert values["loss_rate_download"] == 0.012 and values["loss_rate_upload"] == 0.0
    assert values["healthy"] == 1 and values["drain"] == 1 and values["graceful_shutdown"] == 0
    assert values["rtt_aggregate"] == 41.5 and values["endpoints"] == 12
    assert values["packet_rate_upload"] == 1100
    assert "jitter_aggregate" not in values  # gone from recent bridges: absent, not 0
    assert figures.version == "2.3.209-gb5fbe618"
    assert figures.conference_sizes is None


def test_older_bridge_fields_and_sizes() -> None:
    figures = parse_colibri(json.dumps(OLDER).encode())
    values = dict(figures.values)
    assert values["loss_rate_download"] == 0.02 and values["jitter_aggregate"] == 3.0
    assert values["rtt_aggregate"] == 12.0 and values["graceful_shutdown"] == 0
    assert "healthy" not in values and figures.version is None
    sizes = dict(figures.conference_sizes or ())
    assert sizes[0.0] == 0 and sizes[1.0] == 0 and sizes[2.0] == 1 and sizes[3.0] == 2
    assert sizes[20.0] == 2 and sizes[math.inf] == 3  # the 21+ entry only in +Inf


@pytest.mark.parametrize(
    "change",
    [{"healthy": "maybe"}, {"conference_sizes": "[1, "}, {"conference_sizes": {"a": 1}}],
)
def test_colibri_garbage_in_new_fields_is_a_parse_error(change: dict) -> None:
    with pytest.raises(PollError) as raised:
        parse_colibri(json.dumps({**RECENT, **change}).encode())
    assert raised.value.reason == "parse"


def native_page(conferences: int = 3) -> bytes:
    """A bridge's /metrics in the 0.0.4 text format, families as VideobridgeMetrics.kt
    and VideobridgePeriodicMetrics.kt register them under the jitsi_jvb namespace."""
    lines = [
        "# HELP jitsi_jvb_conferences Current number of conferences.",
        "# TYPE jitsi_jvb_conferences gauge",
        f"jitsi_jvb_conferences {conferences}.0",
        "# TYPE jitsi_jvb_current_endpoints gauge",
        "jitsi_jvb_current_endpoints 12.0",
        "# TYPE jitsi_jvb_stress gauge",
        "jitsi_jvb_stress 0.08",
        "# TYPE jitsi_jvb_incoming_bitrate gauge",
        "jitsi_jvb_incoming_bitrate 2400000.0",
        "# TYPE jitsi_jvb_outgoing_bitrate gauge",
        "jitsi_jvb_outgoing_bitrate 9100000.0",
        "# TYPE jitsi_jvb_average_rtt gauge",
        "jitsi_jvb_average_rtt 41.5",
        "# TYPE jitsi_jvb_incoming_loss_fraction gauge",
        "jitsi_jvb_incoming_loss_fraction 0.012",
        "# TYPE jitsi_jvb_healthy gauge",
        "jitsi_jvb_healthy 1.0",
        "# TYPE jitsi_jvb_graceful_shutdown gauge",
        "jitsi_jvb_graceful_shutdown 0.0",
        "# TYPE jitsi_jvb_conferences_created counter",
        "jitsi_jvb_conferences_created_total 40.0",
        "# HELP jitsi_jvb_conferences_by_size Histogram of conferences by total endpoints.",
        "# TYPE jitsi_jvb_conferences_by_size histogram",
    ]
    cumulative = 0
    for le in range(21):
        cumulative += {2: 1, 3: 1}.get(le, 0)
        lines.append(f'jitsi_jvb_conferences_by_size_bucket{{le="{le:.1f}"}} {cumulative}.0')
    lines += [
        'jitsi_jvb_conferences_by_size_bucket{le="+Inf"} 3.0',
        "jitsi_jvb_conferences_by_size_count 3.0",
        "jitsi_jvb_conferences_by_size_sum 5.0",
        "# TYPE jvm_threads_current gauge",
        "jvm_threads_current 300.0",
    ]
    return ("\n".join(lines) + "\n").encode()


def test_native_page_maps_onto_the_colibri_fields() -> None:
    values, sizes = parse_native(native_page())
    got = dict(values)
    assert got["conferences"] == 3 and got["participants"] == 12 and got["endpoints"] == 12
    assert got["bit_rate_download"] == 2400 and got["bit_rate_upload"] == 9100  # kbit/s
    assert got["rtt_aggregate"] == 41.5 and got["loss_rate_download"] == 0.012
    assert got["healthy"] == 1 and got["graceful_shutdown"] == 0
    assert "drain" not in got  # not on this page: absent
    buckets = dict(sizes or ())
    assert buckets[1.0] == 0 and buckets[2.0] == 1 and buckets[3.0] == 2 and buckets[math.inf] == 3
    assert {f for pairs in NATIVE_FIELDS.values() for f, _ in pairs} <= set(JITSI_METRICS)


@pytest.mark.parametrize(
    "page", [b"jitsi_jvb_stress 0.1\n", b"<html>bad gateway</html>", b"\xff\xfe"]
)
def test_native_page_wrong_shape(page: bytes) -> None:
    with pytest.raises(PollError) as raised:
        parse_native(page)
    assert raised.value.reason == "parse"


def test_families_render_sizes_version_and_flags() -> None:
    families = JitsiFamilies(["node"])
    families.add(parse_colibri(json.dumps(OLDER).encode()), {"node": "jvb-old"})
    families.add(parse_colibri(json.dumps(RECENT).encode()), {"node": "jvb-new"})
    samples = parse_text(render(families.families()).decode())
    assert value(samples, "jitsi_conferences_by_size_bucket", node="jvb-old", le="3") == 2
    assert value(samples, "jitsi_conferences_by_size_bucket", node="jvb-old", le="+Inf") == 3
    assert value(samples, "jitsi_version_info", node="jvb-new", version="2.3.209-gb5fbe618") == 1
    assert value(samples, "jitsi_drain", node="jvb-new") == 1
    assert not [k for k in samples if k[0] == "jitsi_healthy" and ("node", "jvb-old") in k[1]]


def test_config_takes_colibri_url_or_metrics_url() -> None:
    def load(jitsi: dict):
        return parse_config({"nodes": [{"name": "jvb-01", "jitsi": jitsi}]}, "t.yml", {})

    native = load({"metrics": "http://jvb:8080/metrics"}).nodes[0].source("jitsi")
    assert native.metrics == "http://jvb:8080/metrics" and native.url is None
    for bad in ({}, {"url": "http://a/colibri/stats", "metrics": "http://a/metrics"}):
        with pytest.raises(ConfigValueError, match="exactly one of url"):
            load(bad)
