"""CPU per getMeetings poll, whole process, black box: confscale-exporter vs an exporter
built the widely used way (requests + xmltodict + prometheus_client), same answer.

The simulator (frozen clock) serves one BBB node whose getMeetings is its ``huge``
answer: ~200 meetings x 25 attendees, ~1.65 MB. Three processes poll it in turn, each
alone on the machine's cores with the simulator:

- ``confscale-exporter`` (its own poll timer; scraped once per interval, as Prometheus);
- the same exporter with the reference parser in place of the fast one (``before``:
  lxml's pull parser, one meeting tree at a time, as the exporter parsed until #18);
- ``bench/greenstatic_like.py``: greenstatic's design, one poll per scrape.

CPU is the process's user+system time from /proc, over ``--polls`` polls after a
warm-up, divided by the polls; ratios come from the same run.

    .venv/bin/python -m bench.bench_poll [--polls 30] [--interval 1] [--megabytes 1.65]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import requests
import xmltodict
import yaml

from bench.simpool import (
    REPO,
    cpu_seconds_of,
    free_port,
    load_average,
    prepare,
    set_fault_everywhere,
    start_simulator,
)

REFERENCE = (
    "import sys; import confscale.exporter.bbb as bbb; bbb.AnswerParser = bbb.MeetingsParser; "
    "from confscale.exporter.cli import main; sys.exit(main(sys.argv[1:]))"
)


def last_cycle(url: str) -> float | None:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("confscale_exporter_last_cycle_timestamp_seconds "):
            return float(line.split()[1])
    return None


def poll_errors(url: str) -> dict[str, float]:
    """confscale_node_poll_errors_total by reason, from the exporter's page."""
    errors: dict[str, float] = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("confscale_node_poll_errors_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            errors[reason] = errors.get(reason, 0) + float(line.rsplit(" ", 1)[1])
    return errors


class Measured(NamedTuple):
    cpu_per_poll: float  # CPU seconds over the measured polls / the polls that succeeded
    polls: int
    failed: dict[str, float]  # reason -> failed polls in the measured window


def wait_new_cycle(url: str, after: float | None, limit: float) -> float:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        seen = last_cycle(url)
        if seen is not None and (after is None or seen > after):
            return seen
        time.sleep(0.05)
    raise SystemExit(f"no new poll cycle within {limit:g} s")


def measure_ours(
    config: Path, env: dict[str, str], polls: int, interval: float, reference: bool
) -> Measured:
    port = free_port()
    flags = [f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]
    command = [sys.executable, "-c", REFERENCE, *flags] if reference else [
        sys.executable, "-m", "confscale.exporter.cli", *flags
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = wait_new_cycle(url, None, 60)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        start = wait_new_cycle(url, first, 10 * interval)  # a warm cycle, then measure
        cpu, began = cpu_seconds_of(process.pid), time.monotonic()
        errors = poll_errors(url)
        # One scrape per interval, as Prometheus (the other process gets one per poll):
        # no polling for the last cycle's end inside the window, which would add scrapes
        # of ours only; half an interval after the last cycle's start it is over.
        for number in range(1, polls):
            time.sleep(max(began + (number - 0.5) * interval - time.monotonic(), 0))
            end = last_cycle(url)
        used = cpu_seconds_of(process.pid) - cpu
        if end is None:
            raise SystemExit("the exporter's page lost its last cycle timestamp")
        done = round((end - start) / interval)
        failed = {
            reason: count - errors.get(reason, 0)
            for reason, count in poll_errors(url).items()
            if count > errors.get(reason, 0)
        }
        # A failed poll (an overrun, a timeout) did less work: count only the good ones.
        good = done - int(sum(failed.values()))
        if good <= 0:
            raise SystemExit(f"no successful poll in the measured window: {failed}")
        return Measured(used / good, good, failed)
    finally:
        process.terminate()
        process.wait(30)


def measure_greenstatic(bbb_url: str, secret: str, env: dict[str, str], polls: int) -> float:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.greenstatic_like",
            f"--url={bbb_url}",
            f"--secret={secret}",
            f"--port={port}",
        ],
        cwd=REPO,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if "bbb_meetings_participants" in requests.get(url, timeout=30).text:
                    break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cpu = cpu_seconds_of(process.pid)
        for _ in range(polls):
            requests.get(url, timeout=30).raise_for_status()  # a scrape is a poll
        return (cpu_seconds_of(process.pid) - cpu) / polls
    finally:
        process.terminate()
        process.wait(30)


ROUNDS = 10
TARGET_RATIO, AIM_RATIO = 8.0, 15.0  # issue #18: CPU per poll, greenstatic-style / ours


def fetch_answer(bbb_url: str, secret: str) -> bytes:
    checksum = hashlib.sha1(("getMeetings" + secret).encode()).hexdigest()  # noqa: S324 - BBB's
    return requests.get(f"{bbb_url}getMeetings?checksum={checksum}", timeout=30).content


def best_cpu(run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def breakdown(bbb_url: str, secret: str, answer: bytes) -> list[tuple[str, float]]:
    """Where a poll's CPU goes, measured part by part in this process."""
    from confscale.exporter.bbb import (
        _PARSER_OPTIONS,
        _NoTree,
        parse_meetings,
        parse_meetings_reference,
        signed_url,
    )
    from confscale.exporter.bbbscan import scan_meetings
    from confscale.exporter.bbbtags import scan_tags
    from confscale.exporter.config import BbbSource, Secret
    from confscale.exporter.fetch import HttpClient
    from lxml import etree

    client = HttpClient()
    source = BbbSource(url=bbb_url, secret=Secret(secret), checksum="sha1")

    def fetch() -> None:
        client.fetch(signed_url(source), timeout=10, max_bytes=16 << 20, sink=lambda b: None)

    def check() -> None:
        parser = etree.XMLParser(target=_NoTree(), **_PARSER_OPTIONS)
        parser.feed(answer)
        parser.close()

    steps = [
        ("fetch (HTTP, 64 KiB reads, no parse)", best_cpu(fetch)),
        ("well-formedness (libxml2, no tree)", best_cpu(check)),
        ("scan: tag table + figures (what this answer takes)", best_cpu(lambda: scan_tags(answer))),
        ("scan: grammar + figures (below TABLE_FROM)", best_cpu(lambda: scan_meetings(answer))),
        ("fast parse in all", best_cpu(lambda: parse_meetings(answer))),
        ("reference parse", best_cpu(lambda: parse_meetings_reference(answer))),
        ("xmltodict.parse alone", best_cpu(lambda: xmltodict.parse(answer))),
    ]
    client.close()
    return steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--megabytes", type=float, default=1.65)
    args = parser.parse_args(argv)
    started_load = load_average()
    secret = secrets.token_hex(16)
    sim, url, sim_args = start_simulator(1, secret)
    env = {**os.environ, "CONFSCALE_SIM_SECRET": secret}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = prepare(url, sim_args, secret, Path(tmp))
            data = yaml.safe_load(config.read_text())
            node = data["nodes"][0]
            node.pop("host", None)  # getMeetings only
            data["nodes"] = [node]
            data["interval"] = f"{args.interval * 1000:.0f}ms"
            data["timeout"] = f"{args.interval * 900:.0f}ms"
            config.write_text(yaml.safe_dump(data))
            set_fault_everywhere(url, 1, "huge", args.megabytes)
            bbb_url = node["bbb"]["url"]
            answer = fetch_answer(bbb_url, secret)
            steps = breakdown(bbb_url, secret, answer)
            ours = measure_ours(config, env, args.polls, args.interval, reference=False)
            before = measure_ours(config, env, args.polls, args.interval, reference=True)
            theirs = measure_greenstatic(bbb_url, secret, env, args.polls)
    finally:
        sim.terminate()
        sim.wait(30)
    print(
        f"in one process, best CPU of {ROUNDS} (the poll's parts): "
        + ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in steps)
    )
    print(
        f"getMeetings answer {len(answer) / 1e6:.2f} MB, {args.polls} polls each, CPU per "
        f"successful poll of the whole process (user+system from /proc), {os.cpu_count()} "
        f"cores; {started_load} at the start, {load_average()} at the end"
    )
    for name, run in (("fast scan", ours), ("reference parser", before)):
        print(
            f"  confscale-exporter ({name}){' ' * (18 - len(name))}: "
            f"{run.cpu_per_poll * 1e3:6.1f} ms  ({run.polls} good polls"
            + (f"; failed: {run.failed}" if run.failed else "")
            + ")"
        )
    print(f"  requests + xmltodict + prometheus_client (greenstatic's way): {theirs * 1e3:6.1f} ms")
    ratio = theirs / ours.cpu_per_poll
    print(
        f"ratio greenstatic-style / confscale: {ratio:.1f}x (target >= {TARGET_RATIO:g}x "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}, aim {AIM_RATIO:g}x "
        f"{'met' if ratio >= AIM_RATIO else 'not reached'}); reference parser / fast scan: "
        f"{before.cpu_per_poll / ours.cpu_per_poll:.1f}x"
    )


if __name__ == "__main__":
    main()
