"""Restarts lose nothing that matters.

- The planner (``serve --state.file``) answers its last capacity and placement after a
  restart even while its store is unreachable, and a node it had taken out stays out
  across the restart while its pressure sits inside the hysteresis band (no flap of the
  balancer: the b3lb adapter's load value does not change).
- Prometheus keeps the exporter's history across its own restart (same storage).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import harness
import pytest
import requests
import yaml
from confscale.planner.adapters.b3lb import FULL, B3lbAdapter
from confscale.planner.laststate import LastResultFile, load_last_result
from confscale.planner.placement import NodeReading
from confscale.planner.service import PlannerService
from test_exporter_support import exporter


def readings(pressure_a: float) -> list[NodeReading]:
    now = time.time()
    return [
        NodeReading(node="bbb-a", timestamp=now, pressure=pressure_a, participants=10),
        NodeReading(node="bbb-b", timestamp=now, pressure=0.3, participants=10),
    ]


def service(state: Path, pressure: dict[str, float], *, restore: bool) -> tuple:
    """A planner service with the real b3lb adapter and the state file, no history."""
    b3lb = B3lbAdapter(dry_run=False)
    recorder = LastResultFile(state)

    def no_history():
        raise RuntimeError("history not needed here")

    planner = PlannerService(
        no_history,
        read_current=lambda: readings(pressure["bbb-a"]),
        actuators=[recorder, b3lb],
        restored=load_last_result(state) if restore else None,
    )
    recorder.snapshot = planner.snapshot
    return planner, b3lb


@pytest.mark.parametrize("restore", [True, False], ids=["state-restored", "no-state"])
def test_a_restart_does_not_flap_a_node_inside_the_hysteresis_band(
    tmp_path: Path, restore: bool
) -> None:
    state = tmp_path / "planner-state.json"
    pressure = {"bbb-a": 0.95}  # above the "out" threshold (0.9)
    first, first_b3lb = service(state, pressure, restore=True)
    placement = first.refresh_placement()
    assert placement is not None and "bbb-a" in placement.out
    assert first_b3lb.body("bbb-a") == f"{FULL}\n"
    pressure["bbb-a"] = 0.8  # inside the band: stays out until it falls to 0.72
    assert "bbb-a" in first.refresh_placement().out
    # restart: a new service (and a new adapter) in a new process would start like this
    second, second_b3lb = service(state, pressure, restore=restore)
    after = second.refresh_placement()
    if restore:
        assert "bbb-a" in after.out
        assert second_b3lb.body("bbb-a") == f"{FULL}\n"  # the balancer sees no change
        pressure["bbb-a"] = 0.7  # now below the "back" threshold: it may return
        assert "bbb-a" not in second.refresh_placement().out
    else:
        # without the state the node flaps back in at 0.8 (what the state file prevents)
        assert "bbb-a" not in after.out
        assert second_b3lb.body("bbb-a") == f"{round(0.8 * FULL)}\n"


def planner_serve(port: int, *args: str) -> harness.Proc:
    return harness.Proc(
        "confscale-planner",
        harness.python_module(
            "confscale.planner.cli", "serve", f"--web.listen-address=127.0.0.1:{port}", *args
        ),
        cwd=harness.REPO,
    )


def test_restarted_planner_answers_its_last_result_while_the_store_is_down(
    tmp_path: Path,
) -> None:
    history = tmp_path / "history.csv"
    subprocess.run(
        harness.python_module(
            "confscale.simulator.cli",
            "history",
            "--history.weeks=3",
            "--pool.nodes=4",
            "--model.seed=3",
            f"--output.file={history}",
        ),
        check=True,
        cwd=harness.REPO,
        capture_output=True,
        timeout=120,
    )
    state = tmp_path / "state" / "planner.json"
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = planner_serve(port, f"--history.file={history}", f"--state.file={state}")
    with harness.running(proc, f"{base}/-/healthy", timeout=60):
        harness.wait_until(
            lambda: requests.get(f"{base}/api/v1/capacity", timeout=5).status_code == 200,
            timeout=120,
            what="the first planner result",
        )
        capacity = requests.get(f"{base}/api/v1/capacity", timeout=5).json()
        placement = requests.get(f"{base}/api/v1/placement", timeout=5).json()
    assert json.loads(state.read_text())["capacity"] == capacity
    # restart against a store that does not answer (a closed port)
    down = f"http://127.0.0.1:{harness.free_port()}"
    proc = planner_serve(port, f"--prometheus.url={down}", f"--state.file={state}")
    with harness.running(proc, f"{base}/-/healthy", timeout=60):
        harness.wait_until(
            lambda: requests.get(f"{base}/-/healthy", timeout=5).json()["last_error"],
            timeout=120,
            what="the first (failing) refresh",
        )
        again = requests.get(f"{base}/api/v1/capacity", timeout=5)
        placement_again = requests.get(f"{base}/api/v1/placement", timeout=5)
    # served with their age, marked restored (and not stale: a minute old)
    assert again.status_code == 200, again.text
    again_body, placement_body = again.json(), placement_again.json()
    for body in (again_body, placement_body):
        assert body.pop("answer")["restored"] is True
    assert again.status_code == 200 and again_body == capacity
    assert placement_again.status_code == 200 and placement_body == placement
    assert capacity["servers_needed"]


def test_prometheus_keeps_history_across_its_restart(tmp_path: Path) -> None:
    with harness.simulator(nodes=3) as sim:
        pool = sim.write_config(tmp_path / "pool.yml")
        data = yaml.safe_load(pool.read_text())
        data["interval"], data["timeout"] = "1s", "800ms"
        pool.write_text(yaml.safe_dump(data))
        with exporter(pool, log_level="warn") as running:
            config = yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "confscale",
                            "honor_labels": True,
                            "static_configs": [{"targets": [running.url.removeprefix("http://")]}],
                        }
                    ],
                }
            )
            storage = tmp_path / "prom-data"
            query = "count_over_time(confscale_node_up{source='bbb'}[10m])"
            with harness.prometheus(config, tmp_path / "p1", storage=storage) as url:
                harness.wait_until(
                    lambda: len(harness.prom_query(url, f"{query} >= 3")) == 3,
                    timeout=60,
                    what="three scrapes of every node",
                )
                before = {
                    r["metric"]["node"]: float(r["value"][1])
                    for r in harness.prom_query(url, query)
                }
            with harness.prometheus(config, tmp_path / "p2", storage=storage) as url:
                after = {
                    r["metric"]["node"]: float(r["value"][1])
                    for r in harness.prom_query(url, query)
                }
    assert set(after) == set(sim.names[:3]) == set(before)
    assert all(after[n] >= before[n] for n in before)
