"""confscale-demo serves an accelerated pool, writes the exporter config, stops on Ctrl-C."""

from __future__ import annotations

import signal

import requests
from harness import Proc, free_port, python_module, wait_http, wait_until


def test_demo_runs_accelerated_and_stops_cleanly(tmp_path):
    port = free_port()
    config = tmp_path / "exporter.yml"
    args = python_module(
        "confscale.simulator.demo",
        f"--web.listen-address=127.0.0.1:{port}",
        "--pool.nodes=3",
        "--pool.jitsi=1",
        "--clock.speed=3600",
        f"--exporter.config-file={config}",
    )
    proc = Proc("confscale-demo", args)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_admin/health")
        first = requests.get(f"{url}/_admin/clock", timeout=5).json()["now"]
        wait_until(
            lambda: requests.get(f"{url}/_admin/clock", timeout=5).json()["now"] > first + 60,
            timeout=20,
            what="the accelerated clock to move",
        )
        assert config.exists()
        secret = (tmp_path / "exporter.yml.secret").read_text()
        proc.signal(signal.SIGINT)
        proc.popen.wait(20)
        assert proc.popen.returncode == 0
        log = proc.log()
        assert f"{url}/_admin/truth" in log
        assert "demo stopped" in log
        assert secret not in log
    finally:
        proc.stop()
