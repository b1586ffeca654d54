"""A simulated pool on 127.0.0.1 for the exporter benches (bench_exporter, bench_poll,
bench_scale, bench_fetch, bench_interleave, bench_soak): the simulator started and
waited for, the exporter configuration it writes, faults set on every node, and the
process figures they print."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
BYTES_PER_MEETING = 8_300  # a 25-attendee meeting in bbb-web's getMeetings XML


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (float(fields[11]) + float(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_simulator(nodes: int, secret: str) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    port = free_port()
    args = [
        f"--pool.nodes={nodes}",
        "--pool.jitsi=0",
        "--clock.frozen",
        "--clock.start=2026-10-06T10:30:00Z",
    ]
    env = {**os.environ, "CONFSCALE_SIM_SECRET": secret}
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "confscale.simulator.cli",
            f"--web.listen-address=127.0.0.1:{port}",
            *args,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_admin/health", timeout=2).ok:
                return sim, url, args
        except requests.RequestException:
            time.sleep(0.2)
    sim.kill()
    raise SystemExit("the simulator did not start within 120 s")


def prepare(url: str, args: list[str], secret: str, workdir: Path) -> Path:
    config = workdir / "pool.yml"
    env = {**os.environ, "CONFSCALE_SIM_SECRET": secret}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "confscale.simulator.cli",
            *args,
            "--exporter.base-url",
            url,
            "--exporter.write-config",
            str(config),
        ],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    data = yaml.safe_load(config.read_text())
    data["interval"], data["timeout"] = "15s", "5s"
    config.write_text(yaml.safe_dump(data))
    return config


def set_fault_everywhere(url: str, nodes: int, mode: str | None, arg: float) -> None:
    """One fault mode on every node (``huge`` for big answers, ``slow`` for latency)."""
    width = max(2, len(str(nodes)))
    with requests.Session() as session:
        session.delete(f"{url}/_admin/faults", timeout=30).raise_for_status()
        if mode is None:
            return
        for index in range(1, nodes + 1):
            session.post(
                f"{url}/_admin/faults",
                timeout=30,
                json={"node": f"bbb-{index:0{width}d}", "mode": mode, "arg": arg},
            ).raise_for_status()


def cycle_config(config: Any, nodes: int, interval: float) -> Any:
    """The exporter configuration a measured cycle polls: the first ``nodes`` nodes with
    getMeetings, the node_exporter page and Jitsi only (the API root and getRecordings
    sources that ride on a node's bbb settings poll on their own slower clocks in
    production), and an ``interval`` long enough that no poll is cut as an overrun."""
    kept = ("bbb", "host", "jitsi")
    return dataclasses.replace(
        config,
        interval=max(config.interval, interval),
        nodes=tuple(
            dataclasses.replace(n, settings={k: v for k, v in n.settings.items() if k in kept})
            for n in config.nodes[:nodes]
        ),
    )


@contextlib.contextmanager
def huge_answers_pool(nodes: int, meetings: int) -> Iterator[Path]:
    """The simulator with ``nodes`` BBB nodes whose getMeetings answers hold about
    ``meetings`` 25-attendee meetings each: yields the exporter configuration it wrote."""
    secret = secrets.token_hex(16)
    sim, url, sim_args = start_simulator(nodes, secret)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = prepare(url, sim_args, secret, Path(tmp))
            set_fault_everywhere(url, nodes, "huge", meetings * BYTES_PER_MEETING / 1e6)
            yield config
    finally:
        sim.terminate()
        sim.wait(30)
