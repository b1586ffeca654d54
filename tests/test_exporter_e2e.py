"""End to end against the pool simulator: every contract metric equals /_admin/truth,
every fault mode gives up 0 with the right reason while healthy nodes stay exact, and the
shared secret never shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from confscale.exporter.contract import (
    BREAKOUTS_STARTED,
    CLIENTS,
    JITSI_METRICS,
    MEETING_SIZES,
    MEETINGS_STARTED,
    ORIGINS,
)
from confscale.exporter.fetch import REASONS
from harness import simulator, wait_until
from test_exporter_support import Exporter, Samples, exporter, parse_text, series, value

SECRET = "E2E-Sim-Secret-7d41b9aa"
BBB_FIELDS = (
    "meetings",
    "breakout_rooms",
    "participants",
    "moderators",
    "listeners",
    "voice_participants",
    "video_participants",
    "participants_max",
    "video_fanout",
)
BBB_METRIC = {
    "meetings": "bbb_meetings",
    "breakout_rooms": "bbb_breakout_rooms",
    **{f: f"bbb_meetings_{f}" for f in BBB_FIELDS[2:]},
}
JITSI_METRIC = JITSI_METRICS  # field -> metric, the contract's table


def exporter_config(
    sim: Any,
    path: Path,
    *,
    interval: str = "2s",
    timeout: str = "1500ms",
    auto_interface: bool = False,
) -> Path:
    """The simulator's own --exporter.write-config output with test-friendly timing."""
    sim.write_config(path)
    data = yaml.safe_load(path.read_text())
    data["interval"], data["timeout"] = interval, timeout
    for node in data["nodes"]:
        if "bbb" in node:  # getRecordings every cycle, so each cycle equals the truth
            node["bbb"]["recordings"] = {"interval": "1s"}
    if auto_interface:
        for node in data["nodes"]:
            node.get("host", {}).pop("interface", None)
    path.write_text(yaml.safe_dump(data))
    assert SECRET not in path.read_text()
    return path


def assert_node_matches_truth(samples: Samples, node: str, truth: dict[str, Any]) -> None:
    labels = {"node": node, "pool": "sim"}
    kind = truth["kind"]
    assert value(samples, "confscale_node_up", **labels, source=kind) == 1, node
    assert value(samples, "confscale_node_up", **labels, source="host") == 1, node
    if kind == "bbb":
        for field in BBB_FIELDS:
            assert value(samples, BBB_METRIC[field], **labels) == truth[field], (node, field)
        clients = {
            dict(k)["type"]: v
            for k, v in series(samples, "bbb_meetings_participant_clients", **labels).items()
        }
        assert clients == truth["clients"], node
        cumulative = [sum(truth["sizes"][: i + 1]) for i in range(len(truth["sizes"]))]
        buckets = [
            value(samples, "bbb_meetings_size_bucket", **labels, le=le)
            for le in ("0", "5", "25", "50", "100", "200", "+Inf")
        ]
        assert buckets == cumulative, node
        origins = {
            dict(k)["server"]: v
            for k, v in series(samples, "bbb_meetings_participants_origin", **labels).items()
        }
        assert origins == truth["origins"], node  # at most 4 origins: none folded into other
        states = {
            dict(k)["state"]: v for k, v in series(samples, "bbb_recordings", **labels).items()
        }
        assert states == truth["recordings"], node
        oldest = value(samples, "bbb_recordings_oldest_processing_timestamp_seconds", **labels)
        assert oldest == truth["oldest_processing"], node
        versions = series(samples, "bbb_version_info", **labels)
        assert [dict(k)["bbb_version"] for k in versions] == [truth["bbb_version"]], node
    else:
        assert_bridge_matches_truth(samples, labels, truth)
    assert (
        value(samples, "confscale_node_memory_available_bytes", **labels)
        == (truth["memory_available_bytes"])
    )
    assert (
        value(samples, "confscale_node_memory_total_bytes", **labels)
        == (truth["memory_total_bytes"])
    )
    avail = {
        dict(k)["mountpoint"]: v
        for k, v in series(samples, "confscale_node_filesystem_avail_bytes", **labels).items()
    }
    size = {
        dict(k)["mountpoint"]: v
        for k, v in series(samples, "confscale_node_filesystem_size_bytes", **labels).items()
    }
    assert avail == {m: a for m, (a, _) in truth["filesystems"].items()}, node
    assert size == {m: s for m, (_, s) in truth["filesystems"].items()}, node
    cpu = {
        dict(k)["mode"]: v
        for k, v in series(samples, "confscale_node_cpu_seconds_total", **labels).items()
    }
    assert cpu == pytest.approx(truth["cpu_seconds"], rel=1e-12), node
    assert value(samples, "confscale_node_cpu_count", **labels) == truth["cpu_count"]
    assert (
        value(samples, "confscale_node_network_transmit_bytes_total", **labels)
        == truth["transmit_bytes"]
    ), node
    assert (
        value(samples, "confscale_node_network_receive_bytes_total", **labels)
        == truth["receive_bytes"]
    ), node
    assert (
        value(samples, "confscale_node_link_capacity_bytes_per_second", **labels)
        == truth["link_capacity_bytes_per_second"]
    )
    assert (
        value(samples, "confscale_node_last_success_timestamp_seconds", **labels, source=kind)
        is not None
    )


def assert_bridge_matches_truth(samples: Samples, labels: dict, truth: dict[str, Any]) -> None:
    """Every Jitsi contract field: present with the truth's value, or absent when the
    bridge's generation does not send it (the field drift)."""
    for field, metric in JITSI_METRIC.items():
        got = value(samples, metric, **labels)
        if field in truth:
            assert got == pytest.approx(truth[field]), (labels, field)
        else:
            assert got is None, (labels, field, truth["style"])
    versions = series(samples, "jitsi_version_info", **labels)
    assert [dict(k)["version"] for k in versions] == [truth["version"]], labels
    sizes = {
        dict(k)["le"]: v
        for k, v in series(samples, "jitsi_conferences_by_size_bucket", **labels).items()
    }
    assert sizes == (truth["conference_sizes"] or {}), (labels, truth["style"])


@pytest.mark.parametrize("auto_interface", [False, True], ids=["interface-eth0", "auto-uplinks"])
def test_every_contract_metric_equals_the_truth(tmp_path: Path, auto_interface: bool) -> None:
    with simulator(nodes=3, jitsi=2, secret=SECRET) as sim:
        config = exporter_config(sim, tmp_path / "pool.yml", auto_interface=auto_interface)
        with exporter(config) as running:
            samples = running.wait_cycles(1)
            truth = sim.truth()["nodes"]
            assert set(truth) == {"bbb-01", "bbb-02", "bbb-03", "jvb-01", "jvb-02"}
            for node, figures in truth.items():
                assert_node_matches_truth(samples, node, figures)
                if figures["kind"] == "bbb":  # running at the first poll: not seen starting
                    assert value(samples, MEETINGS_STARTED.sample, node=node, pool="sim") == 0
            # the clock moves on: the next cycle reports the new instant, exactly
            sim.advance(2 * 3600 + 17 * 60)
            samples = running.wait_cycles(2)
            moved = sim.truth()["nodes"]
            for node, figures in moved.items():
                assert_node_matches_truth(samples, node, figures)
            # meetings seen starting: the internal IDs the second instant has and the first
            # had not (the counters started at 0 with the exporter's first poll)
            started = 0
            for node in ("bbb-01", "bbb-02", "bbb-03"):
                for kind, metric in (
                    ("meetings", MEETINGS_STARTED.sample),
                    ("breakout_rooms", BREAKOUTS_STARTED.sample),
                ):
                    new = set(moved[node]["internal_ids"][kind])
                    new -= set(truth[node]["internal_ids"][kind])
                    assert value(samples, metric, node=node, pool="sim") == len(new), node
                    started += len(new)
            assert started > 0  # the two instants are hours apart on a Tuesday
            log = running.proc.log()
    assert moved != truth
    assert value(samples, "confscale_exporter_nodes", state="up") == 5
    assert SECRET not in log


def test_state_faults_and_the_native_bridge_page_equal_the_truth(tmp_path: Path) -> None:
    with simulator(nodes=2, jitsi=2, secret=SECRET, extra_args=["--pool.proxy"]) as sim:
        config = exporter_config(sim, tmp_path / "pool.yml")
        data = yaml.safe_load(config.read_text())
        native = next(n for n in data["nodes"] if n["name"] == "jvb-01")
        native["jitsi"] = {
            "metrics": native["jitsi"]["url"].replace("colibri/stats", "jvb/metrics")
        }
        config.write_text(yaml.safe_dump(data))
        for node, mode, arg in (
            ("jvb-01", "jvb_graceful_shutdown", None),
            ("jvb-02", "jvb_drain", None),
            ("bbb-01", "disk_full", 0.02),
            ("bbb-02", "memory_low", 0.03),
            ("proxy-01", "proxy_refusing", 0.25),
        ):
            sim.set_fault(node, mode, arg)
        sim.advance(600)  # the frozen clock moves: the refusing proxy drops a quarter from now
        with exporter(config) as running:
            samples = running.wait_cycles(1)
            whole = sim.truth()
            truth = whole["nodes"]
    labels = {"pool": "sim"}
    assert_proxy_matches_truth(samples, whole["proxy"])
    for node in ("bbb-01", "bbb-02", "jvb-02"):
        assert_node_matches_truth(samples, node, truth[node])
    assert truth["bbb-01"]["filesystems"]["/var/bigbluebutton"][0] < 0.03 * 500 * 1024**3
    assert value(samples, "jitsi_drain", node="jvb-02", **labels) == 1
    assert value(samples, "jitsi_graceful_shutdown", node="jvb-01", **labels) == 1
    bridge = truth["jvb-01"]["native"]
    for field, metric in JITSI_METRICS.items():
        got = value(samples, metric, node="jvb-01", **labels)
        assert got == (pytest.approx(bridge[field]) if field in bridge else None), field
    sizes = {
        dict(k)["le"]: v
        for k, v in series(
            samples, "jitsi_conferences_by_size_bucket", node="jvb-01", **labels
        ).items()
    }
    assert sizes == bridge["conference_sizes"]
    assert not series(samples, "jitsi_version_info", node="jvb-01", **labels)  # not native


def assert_proxy_matches_truth(samples: Samples, truth: dict[str, Any]) -> None:
    """The cluster proxy's stub_status series (exporter/proxy.py) equal the simulator's."""
    labels = {"node": truth["name"], "pool": "sim"}
    assert value(samples, "confscale_node_up", **labels, source="proxy") == 1
    for state in ("active", "reading", "writing", "waiting"):
        got = value(samples, "confscale_proxy_connections", **labels, state=state)
        assert got == truth[state], state
    for field, metric in (
        ("accepted", "confscale_proxy_connections_accepted_total"),
        ("handled", "confscale_proxy_connections_handled_total"),
        ("requests", "confscale_proxy_requests_total"),
    ):
        assert value(samples, metric, **labels) == truth[field], field
    assert truth["active"] > 0
    assert truth["handled"] < truth["accepted"]  # the fault: connections refused


@pytest.mark.parametrize("algorithm", ["sha1", "sha384", "sha512"])
def test_every_checksum_algorithm(tmp_path: Path, algorithm: str) -> None:
    with simulator(nodes=1, secret=SECRET, checksum=algorithm) as sim:
        config = exporter_config(sim, tmp_path / "pool.yml", interval="30s", timeout="5s")
        assert f"checksum: {algorithm}" in config.read_text()
        with exporter(config) as running:
            response = requests.get(f"{running.url}/probe", params={"node": "bbb-01"}, timeout=30)
            truth = sim.truth()["nodes"]["bbb-01"]
    assert_node_matches_truth(parse_text(response.text), "bbb-01", truth)


# node -> (fault mode, argument, expected bbb reason, expected host reason or None if up)
FAULTS = {
    "bbb-01": ("timeout", 4, "timeout", "timeout"),
    "bbb-02": ("refused", None, "connect", "connect"),
    "bbb-03": ("html", None, "parse", "parse"),
    "bbb-04": ("http_error", 503, "http", "http"),
    "bbb-05": ("invalid_xml", None, "parse", "parse"),
    "bbb-06": ("checksum", None, "checksum", None),
    "bbb-07": ("huge", 2, "too_large", None),
}
HEALTHY = ("bbb-08", "bbb-09", "jvb-01")


def bbb_gauges(samples: Samples, node: str) -> dict:
    found = {}
    for name in (
        *BBB_METRIC.values(),
        CLIENTS.name,
        MEETING_SIZES.name,
        ORIGINS.name,
        MEETINGS_STARTED.sample,
        BREAKOUTS_STARTED.sample,
    ):
        found.update(series(samples, name, node=node))
    return found


def test_fault_modes_give_up_0_with_the_reason_and_never_leak_the_secret(tmp_path: Path) -> None:
    with simulator(nodes=9, jitsi=2, secret=SECRET) as sim:
        config = exporter_config(sim, tmp_path / "pool.yml")
        for node, (mode, arg, _, _) in FAULTS.items():
            sim.set_fault(node, mode, arg)
        sim.set_fault("jvb-02", "invalid_xml")  # a bridge answering garbage
        sim.set_fault("bbb-09", "slow", 0.1)  # slow but within the timeout: healthy
        sim.set_fault("bbb-08", "link_saturated", 1.05)  # load faults change figures only
        sim.set_fault("jvb-01", "cpu_high", 0.95)
        with exporter(config, "--poll.max-body-bytes=1000000") as running:
            samples = running.wait_cycles(2)
            truth = sim.truth()["nodes"]
            pages = [requests.get(f"{running.url}/metrics", timeout=10).text]
            for node in FAULTS:
                pages.append(probe(running, node))
            sim.clear_faults()
            recovered = running.wait_cycles(2)
            truth_after = sim.truth()["nodes"]
            log = running.proc.log()
    for node, (mode, _, bbb_reason, host_reason) in FAULTS.items():
        labels = {"node": node, "pool": "sim"}
        assert value(samples, "confscale_node_up", **labels, source="bbb") == 0, mode
        errors = value(
            samples, "confscale_node_poll_errors_total", **labels, source="bbb", reason=bbb_reason
        )
        assert errors is not None and errors >= 1, (mode, bbb_reason)
        other = {
            dict(k)["reason"]
            for k in series(samples, "confscale_node_poll_errors_total", **labels, source="bbb")
        }
        assert other == {bbb_reason}, mode
        assert bbb_gauges(samples, node) == {}, f"{mode}: absent, not zero"
        assert (
            value(samples, "confscale_node_last_success_timestamp_seconds", **labels, source="bbb")
            is None
        )
        host_up = value(samples, "confscale_node_up", **labels, source="host")
        if host_reason is None:
            assert host_up == 1, mode
            assert series(samples, "confscale_node_cpu_seconds_total", **labels), mode
        else:
            assert host_up == 0, mode
            assert value(
                samples,
                "confscale_node_poll_errors_total",
                **labels,
                source="host",
                reason=host_reason,
            ), (mode, host_reason)
            assert not series(samples, "confscale_node_cpu_seconds_total", **labels), mode
    bridge = {"node": "jvb-02", "pool": "sim"}
    assert value(samples, "confscale_node_up", **bridge, source="jitsi") == 0
    assert value(
        samples, "confscale_node_poll_errors_total", **bridge, source="jitsi", reason="parse"
    )
    assert not series(samples, "jitsi_participants", node="jvb-02")
    seen = {dict(k)["reason"] for k in series(samples, "confscale_node_poll_errors_total")}
    assert seen <= set(REASONS), "every reason is one docs/exporter.md lists"
    for node in HEALTHY:
        assert_node_matches_truth(samples, node, truth[node])
    assert value(samples, "confscale_exporter_nodes", state="up") == len(HEALTHY)
    # after the faults clear every node is exact again and the error counters are kept
    for node, figures in truth_after.items():
        assert_node_matches_truth(recovered, node, figures)
    for node, (_, _, bbb_reason, _) in FAULTS.items():
        assert value(
            recovered,
            "confscale_node_poll_errors_total",
            node=node,
            pool="sim",
            source="bbb",
            reason=bbb_reason,
        )
    for text in [*pages, log, config.read_text()]:
        assert SECRET not in text
    # the getMeetings checksum never changes, so it is as good as the secret for that call
    assert "checksum=" not in log
    assert "is down reason=checksum" in log


def probe(running: Exporter, node: str) -> str:
    response = requests.get(f"{running.url}/probe", params={"node": node}, timeout=30)
    assert response.status_code == 200
    up = value(parse_text(response.text), "confscale_node_up", node=node, pool="sim", source="bbb")
    assert up == 0, node
    return response.text


def test_probe_polls_one_node_now(tmp_path: Path) -> None:
    with simulator(nodes=2, secret=SECRET) as sim:
        config = exporter_config(sim, tmp_path / "pool.yml", interval="30s", timeout="2s")
        with exporter(config) as running:
            wait_until(
                lambda: value(running.metrics(), "confscale_exporter_nodes", state="polled"),
                timeout=30,
                what="first cycle",
            )
            sim.advance(3 * 3600)  # /metrics still shows the old cycle, /probe polls now
            truth = sim.truth()["nodes"]["bbb-02"]
            response = requests.get(f"{running.url}/probe", params={"node": "bbb-02"}, timeout=30)
    samples = parse_text(response.text)
    assert_node_matches_truth(samples, "bbb-02", truth)
    assert not series(samples, "confscale_node_up", node="bbb-01")
