"""``confscale-sim``: serve a simulated pool, or write its history (docs/contracts.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from confscale.simulator import bbbapi
from confscale.simulator.config_writer import write_config
from confscale.simulator.pool import FaultError, Pool, SimClock, parse_fault_flag
from confscale.simulator.terms import CalendarError, TermCalendar, load_calendar

DEFAULT_START = "2026-10-05T10:00:00Z"  # a Monday morning in term: meetings are running


def parse_time(text: str) -> float:
    """ISO 8601 (``Z`` allowed) or epoch seconds, as UTC epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"--listen {text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def parse_checksums(text: str) -> tuple[str, ...]:
    names = tuple(a.strip().lower() for a in text.split(",") if a.strip())
    if text.strip().lower() == "all":
        return bbbapi.ALL_ALGORITHMS
    bad = [n for n in names if n not in bbbapi.ALL_ALGORITHMS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"--checksum {text!r}: expected sha1, sha256, sha384, sha512 (comma-separated) or all"
        )
    return names


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="confscale-sim",
        description="Serve a simulated pool of BBB nodes and Jitsi bridges on one address. "
        "Also: `confscale-sim history --help`.",
    )
    p.add_argument("--listen", type=parse_listen, help="HOST:PORT to serve on (port 0: any)")
    p.add_argument("--nodes", type=int, default=20, help="BBB nodes (default 20)")
    p.add_argument("--jitsi", type=int, default=0, help="Jitsi bridges (default 0)")
    p.add_argument(
        "--secret",
        default=os.environ.get("CONFSCALE_SIM_SECRET", ""),
        help="shared secret of every node (or env CONFSCALE_SIM_SECRET)",
    )
    p.add_argument(
        "--checksum",
        type=parse_checksums,
        default=bbbapi.ALL_ALGORITHMS,
        help="checksum algorithm(s) the nodes accept, comma-separated or 'all' "
        "(default all); the first is written by --write-config",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per wall second (default 60)"
    )
    p.add_argument(
        "--start",
        type=parse_time,
        default=parse_time(DEFAULT_START),
        help=f"simulated start time, ISO 8601 (default {DEFAULT_START})",
    )
    p.add_argument(
        "--frozen", action="store_true", help="the clock moves only through POST /_admin/clock"
    )
    p.add_argument(
        "--counters",
        choices=("simulated", "wall"),
        default="simulated",
        help="simulated: CPU and byte counters integrate the load over simulated time "
        "(history and truth agree); wall: they grow at the load's rate per wall-clock second, "
        "so rate() over live scrapes reads true utilisation while time runs --speed times "
        "faster (default simulated)",
    )
    p.add_argument(
        "--load-scale",
        type=float,
        default=1.0,
        help="multiply the model's meetings per day (default 1; 4 ≈ 10 meetings per node "
        "on a term afternoon)",
    )
    p.add_argument("--no-render-cache", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--fault", action="append", default=[], metavar="NODE=MODE[:ARG]")
    p.add_argument(
        "--write-config",
        type=Path,
        metavar="FILE",
        help="write the exporter's YAML (secret in FILE.secret)",
    )
    p.add_argument(
        "--base-url",
        help="URL the pool is reached at, for --write-config "
        "without --listen (default http://127.0.0.1:8090)",
    )
    p.add_argument(
        "--term-calendar",
        type=Path,
        metavar="FILE",
        help="YAML with terms: [{start, end}] (default: built-in academic year)",
    )
    return p


def build_pool(args: argparse.Namespace) -> Pool:
    calendar = TermCalendar()
    if args.term_calendar:
        calendar = load_calendar(args.term_calendar)
    clock = SimClock(args.start, speed=args.speed, frozen=args.frozen)
    return Pool(
        nodes=args.nodes,
        jitsi=args.jitsi,
        seed=args.seed,
        clock=clock,
        calendar=calendar,
        load_scale=args.load_scale,
        counter_scale=1.0 / args.speed if args.counters == "wall" else 1.0,
    )


def serve_main(argv: Sequence[str]) -> int:
    parser = serve_parser()
    args = parser.parse_args(argv)
    if args.nodes < 0 or args.jitsi < 0 or args.nodes + args.jitsi == 0:
        parser.error("--nodes and --jitsi must be >= 0 and at least one node in total")
    if args.speed <= 0:
        parser.error("--speed must be > 0")
    if args.load_scale < 0:
        parser.error("--load-scale must be >= 0")
    if not args.secret and args.nodes:
        parser.error("--secret (or CONFSCALE_SIM_SECRET) is required for BBB nodes")
    try:
        pool = build_pool(args)
        faults = [parse_fault_flag(f) for f in args.fault]
        for node, mode, arg in faults:
            pool.set_fault(node, mode, arg)
    except (CalendarError, FaultError) as exc:
        parser.error(str(exc))
    if args.listen is None:
        if not args.write_config:
            parser.error("give --listen HOST:PORT to serve, or --write-config FILE")
        base = args.base_url or "http://127.0.0.1:8090"
        write_config(
            args.write_config,
            base_url=base,
            bbb=pool.bbb_names,
            jitsi=pool.jitsi_names,
            secret=args.secret,
            checksum=args.checksum[0],
        )
        print(f"wrote {args.write_config}")
        return 0
    from confscale.simulator.server import Settings, serve

    host, port = args.listen
    try:
        server = serve(
            pool, Settings(args.secret, args.checksum, not args.no_render_cache), host, port
        )
    except OSError as exc:
        print(f"confscale-sim: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host}:{bound_port}"
    if args.write_config:
        write_config(
            args.write_config,
            base_url=args.base_url or url,
            bbb=pool.bbb_names,
            jitsi=pool.jitsi_names,
            secret=args.secret,
            checksum=args.checksum[0],
        )
    return run_forever(server, url)


def run_forever(server: object, url: str) -> int:
    """Serve until SIGTERM or Ctrl-C; prints the ready line first."""
    from confscale.simulator.server import SimServer

    assert isinstance(server, SimServer)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    print(f"listening on {url}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "history":
        from confscale.simulator.history import main as history_main

        return history_main(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve_main(argv)


if __name__ == "__main__":
    sys.exit(main())
