"""The pool split over two exporters, for real: every node's series present exactly once.

Both layouts of docs/scaling.md, with the Prometheus configuration taken from that page
(only host names, node names and intervals substituted): exporter shards
(``--poll.shard 0/2`` and ``1/2`` on the same pool file) and ``/probe`` targets spread over
two exporters with ``hashmod``. Every documented configuration passes
``promtool check config``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import harness
import pytest
import requests
import yaml
from confscale.exporter.sharding import owner
from test_exporter_support import exporter

DOC = harness.REPO / "docs" / "scaling.md"
BBB_NODES = 40
JITSI_NODES = 4

# (metric, labels besides node that make a series unique, which nodes must have it)
CONTRACT = [
    ("confscale_node_up", ("source",), "all"),
    ("confscale_node_poll_duration_seconds", ("source",), "all"),
    ("confscale_node_last_success_timestamp_seconds", ("source",), "all"),
    ("confscale_node_link_capacity_bytes_per_second", (), "all"),
    ("confscale_node_cpu_seconds_total", ("mode",), "all"),
    ("confscale_node_cpu_count", (), "all"),
    ("confscale_node_network_transmit_bytes_total", (), "all"),
    ("confscale_node_network_receive_bytes_total", (), "all"),
    ("bbb_meetings", (), "bbb"),
    ("bbb_breakout_rooms", (), "bbb"),
    ("bbb_meetings_participants", (), "bbb"),
    ("bbb_meetings_video_fanout", (), "bbb"),
    ("bbb_meetings_participants_max", (), "bbb"),
    ("jitsi_participants", (), "jitsi"),
    ("jitsi_conferences", (), "jitsi"),
]


def documented_configs() -> list[str]:
    """Every Prometheus configuration (a YAML block with scrape_configs) of the page."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    configs = [b for b in blocks if "scrape_configs:" in b]
    assert len(configs) >= 4, "docs/scaling.md lost its Prometheus configurations"
    return configs


def documented(job: str) -> dict:
    """The documented configuration whose scrape job is ``job``."""
    for text in documented_configs():
        config = yaml.safe_load(text)
        if [j["job_name"] for j in config["scrape_configs"]] == [job]:
            return config
    raise AssertionError(f"docs/scaling.md has no configuration with job {job}")


def test_documented_prometheus_configurations_pass_promtool(tmp_path: Path) -> None:
    promtool = harness.require_tool("promtool")
    for i, text in enumerate(documented_configs()):
        path = tmp_path / f"config-{i}.yml"
        path.write_text(text)
        check = subprocess.run(
            [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
        )
        assert check.returncode == 0, f"block {i} of docs/scaling.md:\n{check.stdout}{check.stderr}"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    work = tmp_path_factory.mktemp("scale-shards")
    with harness.simulator(nodes=BBB_NODES, jitsi=JITSI_NODES) as sim:
        path = sim.write_config(work / "pool.yml")
        data = yaml.safe_load(path.read_text())
        # wide enough that busy shared cores do not fail healthy polls (a failed poll's
        # figures are absent, which would look like a missing node)
        data["interval"], data["timeout"] = "2s", "1500ms"
        path.write_text(yaml.safe_dump(data))
        yield sim, path


def fast(config: dict) -> dict:
    config["global"].update({"scrape_interval": "2s", "scrape_timeout": "2s"})
    return config


def assert_every_node_once(url: str, names: list[str]) -> None:
    bbb = {n for n in names if n.startswith("bbb-")}
    jitsi = {n for n in names if n.startswith("jvb-")}
    expected = {"all": bbb | jitsi, "bbb": bbb, "jitsi": jitsi}
    for metric, extra, kind in CONTRACT:
        by = ", ".join(("node", *extra))
        found = harness.prom_query(url, f"count by ({by}) ({metric})")
        assert found, metric
        counts = {tuple(r["metric"].get(k, "") for k in ("node", *extra)): r for r in found}
        assert {key[0] for key in counts} == expected[kind], metric
        twice = {key: r["value"][1] for key, r in counts.items() if r["value"][1] != "1"}
        assert not twice, f"{metric}: series present more than once: {twice}"


def wait_for_pool(url: str, names: list[str]) -> None:
    """Until every contract series of every node is there exactly once (a poll that failed
    under load, or a remote-write batch still in flight, passes with the next scrape; a
    duplicate stays and fails with its message)."""

    def complete() -> bool:
        assert_every_node_once(url, names)
        return True

    harness.wait_until(complete, timeout=90, interval=1, what="every node's series once")


def test_two_exporter_shards_cover_the_pool_exactly_once(pool, tmp_path: Path) -> None:
    sim, path = pool
    names = sim.names
    with (
        exporter(path, "--poll.shard=0/2", log_level="info") as first,
        exporter(path, "--poll.shard=1/2", log_level="info") as second,
    ):
        polled = []
        for shard, running in enumerate((first, second)):
            samples = running.wait_cycles(1)
            nodes = {dict(k).get("node") for (name, k) in samples if name == "confscale_node_up"}
            assert nodes == {n for n in names if owner(n, 2) == shard}
            polled.append(len(nodes))
            # a shard does not probe what it does not own
            other = next(n for n in names if owner(n, 2) != shard)
            probe = requests.get(f"{running.url}/probe", params={"node": other}, timeout=10)
            assert probe.status_code == 404
        assert sum(polled) == len(names) and min(polled) > 0
        config = fast(documented("confscale"))
        targets = [r.url.removeprefix("http://") for r in (first, second)]
        config["scrape_configs"][0]["static_configs"] = [{"targets": targets}]
        with harness.prometheus(yaml.safe_dump(config), tmp_path / "prom") as url:
            wait_for_pool(url, names)


def test_probe_targets_spread_with_hashmod_cover_the_pool_exactly_once(
    pool, tmp_path: Path
) -> None:
    sim, path = pool
    names = sim.names
    with (
        exporter(path, log_level="info") as first,
        exporter(path, log_level="info") as second,
    ):
        config = fast(documented("confscale-probe"))
        job = config["scrape_configs"][0]
        job["static_configs"] = [{"targets": names}]
        addresses = {
            "exporter-0:9688": first.url.removeprefix("http://"),
            "exporter-1:9688": second.url.removeprefix("http://"),
        }
        for rule in job["relabel_configs"]:
            if rule.get("replacement") in addresses:
                rule["replacement"] = addresses[rule["replacement"]]
        if "__tmp_shard" in str(job):
            pytest.fail("picked the sharded-Prometheus block instead of layout B")
        with harness.prometheus(yaml.safe_dump(config), tmp_path / "prom") as url:
            wait_for_pool(url, names)
            active = requests.get(f"{url}/api/v1/targets", timeout=10).json()["data"]
            used = {t["scrapeUrl"].split("/")[2] for t in active["activeTargets"]}
    assert used == set(addresses.values())  # both exporters got probes


def documented_sharded_prometheus() -> dict:
    """Layout C: the block with external_labels (one Prometheus of several)."""
    for text in documented_configs():
        config = yaml.safe_load(text)
        if "external_labels" in config["global"] and "remote_write" in config:
            return config
    raise AssertionError("docs/scaling.md has no sharded-Prometheus configuration")


def test_two_prometheus_shards_remote_write_every_node_once(pool, tmp_path: Path) -> None:
    from test_scale_victoria import victoria_metrics

    sim, path = pool
    names = sim.names
    with exporter(path, log_level="info") as running, victoria_metrics(tmp_path) as vm_url:
        configs = []
        for shard in ("0", "1"):
            config = fast(documented_sharded_prometheus())
            config["global"]["external_labels"]["prometheus_shard"] = shard
            job = config["scrape_configs"][0]
            job["static_configs"] = [{"targets": names}]
            for rule in job["relabel_configs"]:
                if rule.get("action") == "keep":
                    rule["regex"] = shard
                if rule.get("replacement") == "exporter:9688":
                    rule["replacement"] = running.url.removeprefix("http://")
            config["remote_write"] = [{"url": f"{vm_url}/api/v1/write"}]
            configs.append(yaml.safe_dump(config))
        with (
            harness.prometheus(configs[0], tmp_path / "prom-0") as first,
            harness.prometheus(configs[1], tmp_path / "prom-1") as second,
        ):
            wait_for_pool(vm_url, names)
            shares = [
                {r["metric"]["node"] for r in harness.prom_query(url, "confscale_node_up")}
                for url in (first, second)
            ]
            per_shard = harness.prom_query(
                vm_url, "count by (node) (count by (node, prometheus_shard) (confscale_node_up))"
            )
    assert shares[0] and shares[1] and not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(names)
    assert {r["metric"]["node"]: r["value"][1] for r in per_shard} == {n: "1" for n in names}
