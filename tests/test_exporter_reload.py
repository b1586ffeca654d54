"""Reloads as Prometheus reports them, a broken secret file on SIGHUP, and /probe
coalescing: one poll of a node for many concurrent probes (real exporter processes)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hostile
import requests
from harness import wait_until
from test_exporter_support import exporter, parse_text, value

SECRET = "Reload-Test-Secret-51d2"


def pool(tmp_path: Path, url: str, *, timeout: str = "3s") -> Path:
    (tmp_path / "bbb.secret").write_text(SECRET + "\n")
    path = tmp_path / "pool.yml"
    path.write_text(
        f"interval: 60s\ntimeout: {timeout}\n"
        f"nodes: [{{name: bbb-x, bbb: {{url: '{url}', secret_file: bbb.secret}}}}]\n"
    )
    return path


def reload_state(running) -> tuple[float | None, float | None]:
    samples = running.metrics()
    return (
        value(samples, "confscale_exporter_config_last_reload_successful"),
        value(samples, "confscale_exporter_config_last_reload_success_timestamp_seconds"),
    )


def test_a_non_utf8_secret_on_sighup_is_reported_and_kept_out_of_service(tmp_path: Path) -> None:
    with hostile.HostileNode(hostile.slow_answer(0)) as node:
        config = pool(tmp_path, node.url)
        with exporter(config) as running:
            ok, started = reload_state(running)
            assert ok == 1 and started is not None  # the start counts as a successful load
            (tmp_path / "bbb.secret").write_bytes(b"\xff\xfe\x00S\x00e")
            running.proc.signal(signal.SIGHUP)
            wait_until(lambda: reload_state(running)[0] == 0, timeout=30, what="failed reload")
            log = running.proc.log()
            assert reload_state(running)[1] == started  # no success since
            (tmp_path / "bbb.secret").write_text(SECRET + "\n")
            answer = requests.post(f"{running.url}/-/reload", timeout=10)
            ok_again, when = reload_state(running)
    assert "reload failed, keeping the old configuration" in log
    assert f"{tmp_path / 'bbb.secret'} is not UTF-8 text" in log
    assert "Traceback" not in log
    assert answer.status_code == 200
    assert ok_again == 1 and when is not None and when > started


def test_concurrent_probes_of_one_node_share_one_poll(tmp_path: Path) -> None:
    with hostile.HostileNode(hostile.slow_answer(1.0)) as node:
        config = pool(tmp_path, node.url)
        with exporter(config) as running:
            wait_until(lambda: node.requests, timeout=30, what="the first cycle's poll")
            polled_by_cycle = len(node.requests)

            def probe(_: int) -> float | None:
                response = requests.get(f"{running.url}/probe?node=bbb-x", timeout=30)
                samples = parse_text(response.text)
                return value(samples, "confscale_node_up", node="bbb-x", source="bbb")

            with ThreadPoolExecutor(max_workers=30) as executor:
                ups = list(executor.map(probe, range(30)))
            probes = len(node.requests) - polled_by_cycle
    assert ups == [1] * 30
    # 30 concurrent probes, one poll (two if a late one came after the reuse window)
    assert 1 <= probes <= 2, probes


def test_the_reload_metrics_are_documented() -> None:
    from confscale.exporter.reload import Reloader
    from harness import REPO

    names = [family.name for family in Reloader(lambda: None, print).collect()]
    assert len(names) == 2
    for doc in ("exporter.md", "contracts.md"):
        text = (REPO / "docs" / doc).read_text()
        for name in names:
            assert f"`{name}`" in text, (doc, name)
