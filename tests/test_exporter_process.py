"""The exporter as a process: flags, startup errors, routes, SIGHUP, a real Prometheus."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import requests
from harness import (
    REPO,
    Proc,
    artifacts_dir,
    free_port,
    node_exporter,
    prom_query,
    prometheus,
    python_module,
    require_tool,
    running,
    wait_until,
)
from test_exporter_support import closed_port_url, exporter, parse_text, series, value

SECRET = "Kn0wn-Test-Secret-93f1c2"


def write_pool(tmp_path: Path, nodes: str, *, interval: str = "1s", timeout: str = "800ms") -> Path:
    (tmp_path / "pool.secret").write_text(SECRET)
    path = tmp_path / "pool.yml"
    path.write_text(f"pool: test\ninterval: {interval}\ntimeout: {timeout}\nnodes:\n{nodes}")
    return path


def dead_bbb(name: str) -> str:
    return (
        f"  - name: {name}\n    bbb:\n      url: {closed_port_url('/bigbluebutton/api/')}\n"
        f"      secret_file: pool.secret\n"
    )


def test_help_documents_every_flag() -> None:
    done = subprocess.run(
        python_module("exporter", "--help"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    for flag in (
        "--config.file",
        "--web.listen-address",
        "--log.level",
        "--poll.workers",
        "--poll.max-body-bytes",
        "--config.check",
        "--version",
    ):
        assert flag in done.stdout
    assert "127.0.0.1:9688" in done.stdout


def test_bad_config_exits_with_a_message_naming_node_and_key(tmp_path: Path) -> None:
    config = write_pool(
        tmp_path,
        "  - name: bbb-01\n    bbb:\n      url: http://x/\n"
        "      secret_file: pool.secret\n      checksum: md5\n",
    )
    done = subprocess.run(
        python_module("exporter", f"--config.file={config}"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "pool.yml" in done.stderr and "bbb-01" in done.stderr and "checksum" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_config_check(tmp_path: Path) -> None:
    config = write_pool(tmp_path, dead_bbb("bbb-01") + "  - name: me\n    host: local\n")
    done = subprocess.run(
        python_module("exporter", f"--config.file={config}", "--config.check"),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=True,
    )
    assert "2 nodes" in done.stdout


def test_routes_and_absent_not_zero(tmp_path: Path) -> None:
    with node_exporter() as ne_url:
        config = write_pool(
            tmp_path,
            dead_bbb("bbb-dead") + f"  - name: host-ne\n    link_capacity_mbit: 1000\n"
            f"    host:\n      node_exporter: {ne_url}\n"
            "  - name: host-local\n    host: local\n",
        )
        with exporter(config) as running_exporter:
            samples = running_exporter.wait_cycles(2)
            base = running_exporter.url
            probe = requests.get(f"{base}/probe", params={"node": "host-ne"}, timeout=10)
            unknown = requests.get(f"{base}/probe", params={"node": "nope"}, timeout=10)
            healthy = requests.get(f"{base}/-/healthy", timeout=10)
            wrong_method = requests.get(f"{base}/-/reload", timeout=10)
            log = running_exporter.proc.log()
    assert running_exporter.proc.popen.returncode == 0  # SIGTERM is a clean stop
    assert "stopped" in running_exporter.proc.log_path.read_text()
    assert value(samples, "confscale_node_up", node="bbb-dead", pool="test", source="bbb") == 0
    assert value(samples, "confscale_node_up", node="host-ne", pool="test", source="host") == 1
    assert value(samples, "confscale_node_up", node="host-local", pool="test", source="host") == 1
    errors = value(
        samples,
        "confscale_node_poll_errors_total",
        node="bbb-dead",
        pool="test",
        source="bbb",
        reason="connect",
    )
    assert errors is not None and errors >= 2
    # absent, not zero: nothing about meetings for the dead node
    assert not series(samples, "bbb_meetings", node="bbb-dead")
    assert (
        value(
            samples,
            "confscale_node_last_success_timestamp_seconds",
            node="bbb-dead",
            pool="test",
            source="bbb",
        )
        is None
    )
    assert (
        value(samples, "confscale_node_link_capacity_bytes_per_second", node="host-ne", pool="test")
        == 125e6
    )
    cpu = series(samples, "confscale_node_cpu_seconds_total", node="host-ne")
    assert {dict(k)["mode"] for k in cpu} >= {"idle", "user", "system"}
    assert value(samples, "confscale_node_cpu_count", node="host-ne", pool="test") == value(
        samples, "confscale_node_cpu_count", node="host-local", pool="test"
    )
    assert value(samples, "confscale_exporter_nodes", state="polled") == 3
    assert value(samples, "confscale_exporter_nodes", state="up") == 2
    assert series(samples, "confscale_exporter_build_info")
    assert value(samples, "confscale_exporter_cycle_duration_seconds") is not None
    assert value(samples, "process_resident_memory_bytes")  # the exporter's own process
    assert probe.status_code == 200
    probed = parse_text(probe.text)
    assert value(probed, "confscale_node_up", node="host-ne", pool="test", source="host") == 1
    assert "host-local" not in probe.text and "confscale_exporter_cycle" not in probe.text
    assert unknown.status_code == 404 and "nope" in unknown.text
    assert healthy.status_code == 200
    assert wrong_method.status_code == 405
    assert SECRET not in log
    assert "node=bbb-dead source=bbb is down reason=connect" in log


def test_sighup_reload_keeps_counters(tmp_path: Path) -> None:
    config = write_pool(tmp_path, dead_bbb("bbb-dead"))
    with exporter(config) as running_exporter:
        before = running_exporter.wait_cycles(2)
        count_before = value(
            before,
            "confscale_node_poll_errors_total",
            node="bbb-dead",
            pool="test",
            source="bbb",
            reason="connect",
        )
        text = config.read_text() + "  - name: added\n    host: local\n"
        config.write_text(text)
        running_exporter.proc.signal(signal.SIGHUP)

        def reloaded() -> dict | None:
            samples = running_exporter.metrics()
            up = value(samples, "confscale_node_up", node="added", pool="test", source="host")
            return samples if up == 1 else None

        after = wait_until(reloaded, timeout=30, what="the added node after SIGHUP")
        # a broken file on the next SIGHUP keeps the running configuration
        config.write_text("nodes: [")
        running_exporter.proc.signal(signal.SIGHUP)
        wait_until(
            lambda: "reload failed" in running_exporter.proc.log(),
            timeout=30,
            what="the reload failure in the log",
        )
        still = running_exporter.wait_cycles(1)
        assert running_exporter.proc.alive()
        bad_reload = requests.post(f"{running_exporter.url}/-/reload", timeout=10)
    count_after = value(
        after,
        "confscale_node_poll_errors_total",
        node="bbb-dead",
        pool="test",
        source="bbb",
        reason="connect",
    )
    assert count_before is not None and count_after is not None
    assert count_after > count_before  # kept and still counting, not reset by the reload
    assert value(still, "confscale_node_up", node="added", pool="test", source="host") == 1
    assert bad_reload.status_code == 500 and "pool.yml" in bad_reload.text


def scrape_config(exporter_address: str) -> str:
    return f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: confscale
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["{exporter_address}"]
  # the multi-target pattern: Prometheus shards the pool across /probe by itself
  - job_name: confscale-probe
    metrics_path: /probe
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["host-local"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_node
      - source_labels: [__param_node]
        target_label: instance
      - target_label: __address__
        replacement: "{exporter_address}"
"""


def test_real_prometheus_scrapes_the_exporter(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    config = write_pool(tmp_path, dead_bbb("bbb-dead") + "  - name: host-local\n    host: local\n")
    with exporter(config) as running_exporter:
        address = running_exporter.url.removeprefix("http://")
        text = scrape_config(address)
        workdir = artifacts_dir("exporter-prometheus") / tmp_path.name
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "check.yml").write_text(text)
        check = subprocess.run(
            [promtool, "check", "config", str(workdir / "check.yml")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with prometheus(text, workdir) as prom:

            def scraped() -> list | None:
                result = prom_query(prom, 'up{job=~"confscale|confscale-probe"} == 1')
                return result if len(result) == 2 else None

            wait_until(scraped, timeout=60, what="both confscale jobs up in Prometheus")
            down = wait_until(
                lambda: prom_query(prom, 'confscale_node_up{job="confscale",node="bbb-dead"} == 0'),
                timeout=30,
                what="the dead node in Prometheus",
            )
            probed = prom_query(prom, 'confscale_node_up{job="confscale-probe"}')
    assert down[0]["metric"]["source"] == "bbb"
    assert [r["metric"]["node"] for r in probed] == ["host-local"]


def test_serves_on_ipv6_loopback(tmp_path: Path) -> None:
    config = write_pool(tmp_path, "  - name: me\n    host: local\n")
    port = free_port()
    proc = Proc(
        "confscale-exporter-v6",
        python_module("exporter", f"--config.file={config}", f"--web.listen-address=[::1]:{port}"),
        cwd=REPO,
    )
    with running(proc, f"http://[::1]:{port}/-/healthy"):
        body = wait_until(
            lambda: (
                (t := requests.get(f"http://[::1]:{port}/metrics", timeout=10).text)
                and 'confscale_node_up{node="me",pool="test",source="host"} 1\n' in t
            ),
            timeout=30,
            what="the IPv6 listener's metrics",
        )
    assert body


def test_reload_over_http(tmp_path: Path) -> None:
    config = write_pool(tmp_path, dead_bbb("bbb-dead"))
    with exporter(config) as running_exporter:
        running_exporter.wait_cycles(1)
        config.write_text(config.read_text() + "  - name: added\n    host: local\n")
        response = requests.post(f"{running_exporter.url}/-/reload", timeout=10)
        samples = running_exporter.wait_cycles(1)
    assert response.status_code == 200
    assert value(samples, "confscale_node_up", node="added", pool="test", source="host") == 1
