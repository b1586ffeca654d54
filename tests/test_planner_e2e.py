"""Placement end to end with real processes: simulator → exporter → planner serve.

A node with its CPU at 97 % gets weight 0 and is not recommended; a node that refuses
connections is down; the healthy node is recommended. Sizing comes from the
simulator's history file, current data from the exporter's /metrics.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import harness
import requests
import yaml
from test_exporter_support import exporter


def test_saturated_and_down_nodes_leave_the_placement(tmp_path: Path) -> None:
    history = tmp_path / "history.csv.gz"
    subprocess.run(
        harness.python_module(
            "confscale.simulator.cli",
            "history",
            "--history.weeks",
            "3",
            "--pool.nodes",
            "3",
            "--output.file",
            str(history),
        ),
        check=True,
        cwd=harness.REPO,
        capture_output=True,
        timeout=120,
    )
    faults = ["bbb-02=cpu_high:0.97", "bbb-03=refused"]
    with harness.simulator(nodes=3, faults=faults) as sim:
        config = sim.write_config(tmp_path / "pool.yml")
        data = yaml.safe_load(config.read_text())
        data["interval"], data["timeout"] = "2s", "1500ms"  # as the other e2e tests: busy cores
        config.write_text(yaml.safe_dump(data))
        with exporter(config, log_level="info") as running_exporter:
            port = harness.free_port()
            base = f"http://127.0.0.1:{port}"
            planner = harness.Proc(
                "planner",
                harness.python_module(
                    "confscale.planner.cli",
                    "serve",
                    "--history.file",
                    str(history),
                    "--exporter.url",
                    f"{running_exporter.url}/metrics",
                    "--placement.interval",
                    "1s",
                    "--refit.interval",
                    "1h",
                    "--web.listen-address",
                    f"127.0.0.1:{port}",
                ),
                cwd=harness.REPO,
            )
            with harness.running(planner, f"{base}/-/healthy"):

                def settled() -> dict | None:
                    sim.advance(60)  # counters move only when the frozen clock does
                    answer = requests.get(f"{base}/api/v1/placement", timeout=5)
                    if answer.status_code != 200:
                        return None
                    body = answer.json()
                    states = {n["node"]: n["state"] for n in body["nodes"]}
                    return body if states.get("bbb-02") == "out" else None

                placement = harness.wait_until(
                    settled, timeout=90, interval=0.5, what="bbb-02 taken out"
                )
                # the first refit may still be running once placement settled
                capacity = harness.wait_until(
                    lambda: (
                        answer.json()
                        if (answer := requests.get(f"{base}/api/v1/capacity", timeout=5)).ok
                        else None
                    ),
                    timeout=180,
                    interval=1,
                    what="the first capacity answer",
                )
    nodes = {n["node"]: n for n in placement["nodes"]}
    assert nodes["bbb-02"]["weight"] == 0.0 and nodes["bbb-02"]["pressure"] > 0.9
    assert nodes["bbb-03"]["state"] == "down" and nodes["bbb-03"]["weight"] == 0.0
    assert nodes["bbb-01"]["state"] == "available" and nodes["bbb-01"]["weight"] > 0
    assert placement["recommended"] == "bbb-01"
    assert placement["nodes"][0]["node"] == "bbb-01"
    assert capacity["servers_online"] == 2  # down is not online; out still is
