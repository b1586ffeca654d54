"""confscale-demo: pool → exporter → planner from one command; Ctrl-C stops every child."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import requests
from harness import REPO, Proc, free_port, python_module, wait_http, wait_until

URL_LINE = re.compile(
    r"^\s+(pool truth|exporter|history|planner page|capacity API|"
    r"placement API|planner metrics)\s+(\S+)",
    re.MULTILINE,
)


def demo(tmp_path: Path, *extra: str) -> tuple[Proc, dict[str, int]]:
    ports = {"pool": free_port(), "exporter": free_port(), "planner": free_port()}
    args = python_module(
        "confscale.simulator.demo",
        f"--web.listen-address=127.0.0.1:{ports['pool']}",
        f"--exporter.listen-address=127.0.0.1:{ports['exporter']}",
        f"--planner.listen-address=127.0.0.1:{ports['planner']}",
        "--pool.nodes=3",
        "--pool.jitsi=1",
        f"--exporter.config-file={tmp_path / 'exporter.yml'}",
        *extra,
    )
    return Proc("confscale-demo", args, cwd=REPO), ports


def children_of(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def gone(pid: int) -> bool:
    """The process no longer exists (exited and reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_demo_brings_up_pool_exporter_planner_and_ctrl_c_stops_all(tmp_path):
    proc, ports = demo(tmp_path, "--history.weeks=4", "--clock.speed=3600")
    try:
        wait_until(
            lambda: "Ctrl-C stops it." in proc.log() or not proc.alive(),
            timeout=150,
            interval=0.5,
            what="the demo's URLs",
        )
        log = proc.log()
        assert proc.alive(), log
        urls = dict(URL_LINE.findall(log))
        planner = f"http://127.0.0.1:{ports['planner']}"
        exporter = f"http://127.0.0.1:{ports['exporter']}"
        assert urls["planner page"] == f"{planner}/"
        assert urls["exporter"] == f"{exporter}/metrics"
        page = requests.get(urls["planner page"], timeout=10)
        assert page.status_code == 200 and "_dash-config" in page.text
        capacity = requests.get(urls["capacity API"], timeout=10).json()
        assert capacity["servers_online"] >= 1
        assert set(capacity["servers_needed"]) == {"now", "next_peak", "4w"}
        placement = requests.get(urls["placement API"], timeout=10).json()
        assert {n["node"] for n in placement["nodes"]} == {"bbb-01", "bbb-02", "bbb-03", "jvb-01"}
        assert (
            "confscale_pool_servers_needed"
            in requests.get(urls["planner metrics"], timeout=10).text
        )
        truth = requests.get(urls["pool truth"], timeout=10).json()
        assert set(truth["nodes"]) == {"bbb-01", "bbb-02", "bbb-03", "jvb-01"}
        # the exporter polls the pool: its participants equal the simulated ones of some poll
        metrics = wait_until(
            lambda: (
                (t := requests.get(urls["exporter"], timeout=10).text)
                and 'bbb_meetings_participants{node="bbb-01"' in t
                and t
            ),
            timeout=30,
            what="the exporter's first poll",
        )
        assert 'confscale_node_up{node="bbb-01",source="bbb"' in metrics.replace(',pool="sim"', "")
        history = Path(urls["history"])
        assert history.exists() and history.parent == tmp_path
        kids = children_of(proc.popen.pid)
        assert len(kids) == 2, f"expected exporter and planner, got {kids}"  # history finished
        proc.signal(signal.SIGINT)
        assert proc.popen.wait(30) == 0
        assert all(gone(pid) for pid in kids), kids
        for port in ports.values():
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
        log = proc.log()
        assert "confscale demo stopped" in log
        secret = (tmp_path / "exporter.yml.secret").read_text()
        assert secret not in log
        for child_log in (tmp_path / "logs").glob("*.log"):
            assert secret not in child_log.read_text(errors="replace"), child_log
    finally:
        proc.stop()


def test_sigterm_while_history_is_generated_stops_cleanly_and_caches_nothing(tmp_path):
    proc, _ = demo(tmp_path, "--history.weeks=30", "--clock.speed=60")
    try:
        wait_until(lambda: "generating" in proc.log(), timeout=60, what="history generation")
        kids = children_of(proc.popen.pid)
        assert kids, "the exporter and the history generator run as children"
        proc.signal(signal.SIGTERM)
        assert proc.popen.wait(30) == 0
        assert all(gone(pid) for pid in kids)
        assert "confscale demo stopped" in proc.log()
        assert not list(tmp_path.glob("history-*.csv.gz")), "a partial history was kept"
    finally:
        proc.stop()


def test_second_run_reuses_the_cached_history(tmp_path):
    cached = tmp_path / "history-3bbb-1jvb-4w-seed1-20261005T100000Z.csv.gz"
    logs = []
    for _ in range(2):
        proc, ports = demo(tmp_path, "--history.weeks=4", "--clock.speed=60")
        try:
            wait_http(f"http://127.0.0.1:{ports['planner']}/-/healthy", timeout=150)
            wait_until(
                lambda p=proc: "Ctrl-C stops it." in p.log(), timeout=150, what="the demo's URLs"
            )
            proc.signal(signal.SIGINT)
            assert proc.popen.wait(30) == 0
            logs.append(proc.log())
        finally:
            proc.stop()
        assert cached.exists()
    assert "generating" in logs[0] and "(cached)" not in logs[0]
    assert "(cached)" in logs[1] and "generating" not in logs[1]


def test_accelerated_demo_places_on_the_live_exporter(tmp_path):
    # At 600x the meetings change ten times a wall second, yet the pool's counters grow
    # at wall-clock rates, so the planner's live pressures are true utilisations (with
    # simulated-time counters every node would read ~600x its link and be taken out).
    proc, ports = demo(tmp_path, "--history.weeks=4", "--clock.speed=600")
    planner = f"http://127.0.0.1:{ports['planner']}"
    try:
        wait_until(
            lambda: "Ctrl-C stops it." in proc.log() or not proc.alive(),
            timeout=150,
            interval=0.5,
            what="the demo's URLs",
        )
        assert proc.alive(), proc.log()
        assert "planner nodes    from the history" not in proc.log()
        started = time.time()

        def live_placement() -> dict | None:
            body = requests.get(f"{planner}/api/v1/placement", timeout=10).json()
            fresh = body["generated_at"] >= started - 120
            polled = all((n.get("timestamp") or 0) >= started - 60 for n in body["nodes"])
            return body if fresh and polled and len(body["nodes"]) == 4 else None

        # node timestamps are the exporter's last successful polls: wall-clock, not history
        body = wait_until(live_placement, timeout=90, interval=1, what="a live placement")
        assert {n["node"] for n in body["nodes"]} == {"bbb-01", "bbb-02", "bbb-03", "jvb-01"}
        assert all(n["state"] == "available" for n in body["nodes"]), body["nodes"]
        assert all(n["pressure"] < 0.9 for n in body["nodes"]), body["nodes"]
        proc.signal(signal.SIGINT)
        assert proc.popen.wait(30) == 0
    finally:
        proc.stop()
