"""``confscale-demo``: simulated pool → exporter → planner, one command, one Ctrl-C.

Starts a time-accelerated simulated pool (in this process), writes the exporter's config
for it (what ``confscale-sim --write-config`` writes), starts ``confscale-exporter``
polling it, generates (or reuses) an embedded history with ``confscale-sim history``
ending where the live pool starts, and starts ``confscale-planner serve`` on that history
and the exporter's live figures. Prints the URLs; Ctrl-C (or SIGTERM) stops every child
and the pool.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from confscale.simulator.cli import DEFAULT_START, parse_time
from confscale.simulator.config_writer import write_config
from confscale.simulator.pool import Pool, SimClock
from confscale.simulator.server import Settings, serve
from confscale.simulator.terms import DEFAULT_TERMS

from confscale.flags import listen_address, new_parser, parse_command, parse_listen_address

STOP_TIMEOUT = 10.0  # seconds a child gets after SIGTERM before SIGKILL
READY_TIMEOUT = 180.0  # the planner's first result on 12 weeks of history takes seconds
# Old spellings that still work for one release, with a warning (docs/cli.md).
RENAMED = {
    "--listen": "--web.listen-address",
    "--exporter-listen": "--exporter.listen-address",
    "--planner-listen": "--planner.listen-address",
    "--live-placement": "--planner.live-placement",
    "--nodes": "--pool.nodes",
    "--jitsi": "--pool.jitsi",
    "--pool-only": "--pool.only",
    "--speed": "--clock.speed",
    "--start": "--clock.start",
    "--seed": "--model.seed",
    "--weeks": "--history.weeks",
    "--config": "--exporter.config-file",
}


class DemoError(RuntimeError):
    """A part of the demo did not come up; the message says which and where its log is."""


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def parser() -> argparse.ArgumentParser:
    p = new_parser("confscale-demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        type=listen_address,
        default=parse_listen_address("127.0.0.1:8090"),
        help="HOST:PORT of the simulated pool (default 127.0.0.1:8090)",
    )
    p.add_argument(
        "--exporter.listen-address",
        dest="exporter_listen",
        type=listen_address,
        default=parse_listen_address("127.0.0.1:9688"),
        help="HOST:PORT of the exporter (default 127.0.0.1:9688; a free port if taken)",
    )
    p.add_argument(
        "--planner.listen-address",
        dest="planner_listen",
        type=listen_address,
        default=parse_listen_address("127.0.0.1:9689"),
        help="HOST:PORT of the planner page and API (default 127.0.0.1:9689; a free port if taken)",
    )
    p.add_argument(
        "--pool.nodes", dest="nodes", type=int, default=12, help="BBB nodes (default 12)"
    )
    p.add_argument(
        "--pool.jitsi", dest="jitsi", type=int, default=2, help="Jitsi bridges (default 2)"
    )
    p.add_argument(
        "--clock.speed",
        dest="speed",
        type=float,
        default=600.0,
        help="simulated seconds per wall second (default 600: a day in 2.4 min)",
    )
    p.add_argument(
        "--clock.start", dest="start", type=parse_time, default=parse_time(DEFAULT_START)
    )
    p.add_argument("--model.seed", dest="seed", type=int, default=1)
    p.add_argument(
        "--history.weeks",
        dest="weeks",
        type=int,
        default=12,
        help="weeks of embedded history before --clock.start (default 12; cached)",
    )
    p.add_argument(
        "--exporter.config-file",
        dest="config",
        type=Path,
        default=Path("var/demo/exporter.yml"),
        help="where to write the exporter config (default var/demo/exporter.yml); the "
        "history cache and the children's logs go beside it",
    )
    p.add_argument(
        "--planner.live-placement",
        dest="live_placement",
        choices=("auto", "on", "off"),
        default="auto",
        help="planner node table from the live exporter (auto and on; the demo pool's "
        "counters grow at wall-clock rates) or, with off, from the history's last instant",
    )
    p.add_argument(
        "--pool.only",
        dest="pool_only",
        action="store_true",
        help="only the simulated pool and its exporter config (no exporter, no planner)",
    )
    return p


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _port_or_free(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host`` now, else a free one (the demo says so)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
            return port
        except OSError:
            sock.bind((host, 0))
            free = sock.getsockname()[1]
    print(f"  port {host}:{port} is taken; using {host}:{free}", flush=True)
    return free


def _start(name: str, args: Sequence[str], logs: Path, env: dict[str, str] | None = None) -> Child:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [str(a) for a in args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    return Child(name, popen, log_path)


def stop_children(children: Sequence[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child still running, wait, SIGKILL the ones that do not exit."""
    for child in children:
        if child.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.popen.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.popen.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"  {child.name} did not stop in {timeout:g}s; killing it", flush=True)
            child.popen.kill()
            child.popen.wait(timeout)


def _wait_ready(
    child: Child,
    url: str,
    stop: threading.Event,
    *,
    ready_key: str | None = None,
    timeout: float = READY_TIMEOUT,
) -> bool:
    """Poll ``url`` until it answers 200 (and ``ready_key`` is true); False when stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            return False
        if child.popen.poll() is not None:
            raise DemoError(
                f"{child.name} exited with status {child.popen.returncode}; its log "
                f"{child.log_path} ends with:\n{child.tail()}"
            )
        try:
            response = requests.get(url, timeout=2)
            if response.ok and (ready_key is None or response.json().get(ready_key)):
                return True
        except (requests.RequestException, ValueError):
            pass
        stop.wait(0.25)
    raise DemoError(f"{child.name} not ready at {url} after {timeout:g}s; see {child.log_path}")


def write_calendar(path: Path, start: float) -> Path:
    """The simulated pool's terms as the planner's calendar YAML (its holidays are real)."""
    year = dt.datetime.fromtimestamp(start, dt.UTC).year
    lines = ["# written by confscale-demo: the simulator's default academic terms", "terms:"]
    for y in range(year - 1, year + 2):
        for (m1, d1), (m2, d2) in DEFAULT_TERMS:
            lines.append(f"  - {{start: {dt.date(y, m1, d1)}, end: {dt.date(y, m2, d2)}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def history_file(folder: Path, args: argparse.Namespace) -> Path:
    """The cached history's name: every input that changes its content is in it."""
    end = dt.datetime.fromtimestamp(args.start, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return (
        folder
        / f"history-{args.nodes}bbb-{args.jitsi}jvb-{args.weeks}w-seed{args.seed}-{end}.csv.gz"
    )


def ensure_history(
    path: Path, args: argparse.Namespace, logs: Path, stop: threading.Event, children: list[Child]
) -> bool:
    """Generate the history once (atomically); False when stopped meanwhile."""
    if path.exists():
        print(f"  history          {path} (cached)", flush=True)
        return True
    partial = path.with_name(path.name + ".partial.csv.gz")
    end = dt.datetime.fromtimestamp(args.start, dt.UTC).isoformat()
    child = _start(
        "history",
        [
            sys.executable,
            "-m",
            "confscale.simulator.cli",
            "history",
            f"--history.weeks={args.weeks}",
            f"--pool.nodes={args.nodes}",
            f"--pool.jitsi={args.jitsi}",
            f"--model.seed={args.seed}",
            f"--history.end={end}",
            f"--output.file={partial}",
        ],
        logs,
    )
    children.append(child)
    print(f"  history          generating {args.weeks} weeks to {end} …", flush=True)
    while child.popen.poll() is None:
        if stop.wait(0.2):
            return False
    if child.popen.returncode != 0:
        raise DemoError(f"history generation failed; {child.log_path} ends with:\n{child.tail()}")
    partial.replace(path)
    print(f"  history          {path}", flush=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command(parser(), argv, RENAMED)
    stop = _stop_on_signals()
    clock = SimClock(args.start, speed=args.speed)
    # wall-rate counters: the meetings run --speed times faster, but CPU and link rates
    # read per wall-clock second stay true, so the live exporter feeds the planner
    pool = Pool(
        nodes=args.nodes,
        jitsi=args.jitsi,
        seed=args.seed,
        clock=clock,
        counter_scale=1.0 / args.speed,
    )
    secret = secrets.token_hex(16)  # fresh per run; only ever written to the 0600 file
    listen = args.listen
    try:
        server = serve(
            pool,
            Settings(secret, ("sha1", "sha256", "sha384", "sha512")),
            listen.bind_host,
            listen.port,
        )
    except OSError as exc:
        print(
            f"confscale-demo: cannot listen on {listen}: {exc} (try --web.listen-address)",
            file=sys.stderr,
        )
        return 1
    thread = threading.Thread(target=server.serve_forever, name="pool", daemon=True)
    thread.start()
    url = listen.url(server.server_address[1])
    config = write_config(
        args.config,
        base_url=url,
        bbb=pool.bbb_names,
        jitsi=pool.jitsi_names,
        secret=secret,
        checksum="sha256",
    )
    first = pool.names[0]
    print(
        f"confscale demo: {len(pool.bbb_names)} BBB nodes, {len(pool.jitsi_names)} Jitsi "
        f"bridges, {args.speed:g} simulated seconds per second",
        flush=True,
    )
    print(f"  pool truth       {url}/_admin/truth")
    print(f"  node metrics     {url}/{first}/metrics")
    print(f"  BBB API          {url}/{first}/bigbluebutton/api/")
    if pool.jitsi_names:
        print(f"  JVB stats        {url}/{pool.jitsi_names[0]}/colibri/stats")
    print(f"  exporter config  {config} (secret in {config.name}.secret)", flush=True)
    children: list[Child] = []
    code = 0
    try:
        if not args.pool_only:
            _run_stack(args, config, stop, children)
        if not stop.is_set():
            print("Ctrl-C stops it.", flush=True)
        while not stop.wait(0.5):
            dead = next(
                (c for c in children if c.name != "history" and c.popen.poll() is not None), None
            )
            if dead is not None:
                raise DemoError(
                    f"{dead.name} stopped by itself (status {dead.popen.returncode}); "
                    f"{dead.log_path} ends with:\n{dead.tail()}"
                )
    except DemoError as exc:
        print(f"confscale-demo: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        stop_children(children)
        server.shutdown()
        server.server_close()
    print("confscale demo stopped", flush=True)
    return code


def _run_stack(
    args: argparse.Namespace, config: Path, stop: threading.Event, children: list[Child]
) -> None:
    folder = config.parent
    logs = folder / "logs"
    exporter_host, exporter_port = args.exporter_listen.bind_host, args.exporter_listen.port
    exporter_port = _port_or_free(exporter_host, exporter_port)
    exporter_url = args.exporter_listen.url(exporter_port)
    exporter = _start(
        "exporter",
        [
            sys.executable,
            "-m",
            "confscale.exporter.cli",
            f"--config.file={config}",
            f"--web.listen-address={args.exporter_listen._replace(port=exporter_port)}",
        ],
        logs,
    )
    children.append(exporter)
    if not _wait_ready(exporter, f"{exporter_url}/-/healthy", stop, timeout=60):
        return
    print(f"  exporter         {exporter_url}/metrics (log {exporter.log_path})", flush=True)
    history = history_file(folder, args)
    if not ensure_history(history, args, logs, stop, children):
        return
    planner_host, planner_port = args.planner_listen.bind_host, args.planner_listen.port
    planner_port = _port_or_free(planner_host, planner_port)
    planner_url = args.planner_listen.url(planner_port)
    live = args.live_placement != "off"
    calendar = write_calendar(folder / "calendar.yml", args.start)
    planner_args = [
        sys.executable,
        "-m",
        "confscale.planner.cli",
        "serve",
        f"--history.file={history}",
        f"--calendar.file={calendar}",
        f"--web.listen-address={args.planner_listen._replace(port=planner_port)}",
    ]
    if live:
        planner_args.append(f"--exporter.url={exporter_url}/metrics")
        source = f"demo history {history.name} + live exporter {exporter_url}"
    else:
        source = f"demo history {history.name}"
        print("  planner nodes    from the history's last instant", flush=True)
    planner = _start("planner", planner_args, logs, env={"CONFSCALE_WEB_SOURCE": source})
    children.append(planner)
    print("  planner          computing the first forecast …", flush=True)
    if not _wait_ready(planner, f"{planner_url}/-/healthy", stop, ready_key="ready"):
        return
    print(f"  planner page     {planner_url}/", flush=True)
    print(f"  capacity API     {planner_url}/api/v1/capacity")
    print(f"  placement API    {planner_url}/api/v1/placement")
    print(f"  planner metrics  {planner_url}/metrics (log {planner.log_path})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
