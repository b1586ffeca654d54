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

from confscale.flags import ListenAddress, listen_address, new_parser, parse_command
from confscale.log import get_logger

DEFAULT_START = "2026-10-05T10:00:00Z"  # a Monday morning in term: meetings are running
log = get_logger("confscale.simulator")
# Old spellings that still work for one release, with a warning (docs/cli.md); the
# history subcommand's are here too, so both read one table.
RENAMED = {
    "--listen": "--web.listen-address",
    "--no-render-cache": "--web.no-render-cache",
    "--nodes": "--pool.nodes",
    "--jitsi": "--pool.jitsi",
    "--fault": "--pool.fault",
    "--secret": "--bbb.secret",
    "--checksum": "--bbb.checksum",
    "--seed": "--model.seed",
    "--load-scale": "--model.load-scale",
    "--counters": "--model.counters",
    "--term-calendar": "--model.term-calendar",
    "--speed": "--clock.speed",
    "--start": "--clock.start",
    "--frozen": "--clock.frozen",
    "--write-config": "--exporter.write-config",
    "--base-url": "--exporter.base-url",
    "--weeks": "--history.weeks",
    "--end": "--history.end",
    "--out": "--output.file",
    "--format": "--output.format",
}


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


def parse_checksums(text: str) -> tuple[str, ...]:
    names = tuple(a.strip().lower() for a in text.split(",") if a.strip())
    if text.strip().lower() == "all":
        return bbbapi.ALL_ALGORITHMS
    bad = [n for n in names if n not in bbbapi.ALL_ALGORITHMS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"--bbb.checksum {text!r}: expected sha1, sha256, sha384, sha512 "
            "(comma-separated) or all"
        )
    return names


def serve_parser() -> argparse.ArgumentParser:
    p = new_parser(
        "confscale-sim",
        description="Serve a simulated pool of BBB nodes and Jitsi bridges on one address. "
        "Also: `confscale-sim history --help`.",
    )
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        type=listen_address,
        help="HOST:PORT, [IPV6]:PORT or :PORT to serve on (port 0: any free one)",
    )
    p.add_argument(
        "--pool.nodes", dest="nodes", type=int, default=20, help="BBB nodes (default 20)"
    )
    p.add_argument(
        "--pool.jitsi", dest="jitsi", type=int, default=0, help="Jitsi bridges (default 0)"
    )
    p.add_argument(
        "--pool.proxy",
        dest="proxy",
        action="store_true",
        help="a cluster proxy proxy-01 in front of the BBB nodes (nginx stub_status at "
        "/proxy-01/nginx_status, fault proxy_refusing:SHARE)",
    )
    p.add_argument(
        "--bbb.secret",
        dest="secret",
        default=os.environ.get("CONFSCALE_SIM_SECRET", ""),
        help="shared secret of every node (or env CONFSCALE_SIM_SECRET)",
    )
    p.add_argument(
        "--bbb.checksum",
        dest="checksum",
        type=parse_checksums,
        default=bbbapi.ALL_ALGORITHMS,
        help="checksum algorithm(s) the nodes accept, comma-separated or 'all' "
        "(default all); the first is written by --exporter.write-config",
    )
    p.add_argument("--model.seed", dest="seed", type=int, default=1)
    p.add_argument(
        "--clock.speed",
        dest="speed",
        type=float,
        default=60.0,
        help="simulated seconds per wall second (default 60)",
    )
    p.add_argument(
        "--clock.start",
        dest="start",
        type=parse_time,
        default=parse_time(DEFAULT_START),
        help=f"simulated start time, ISO 8601 (default {DEFAULT_START})",
    )
    p.add_argument(
        "--clock.frozen",
        dest="frozen",
        action="store_true",
        help="the clock moves only through POST /_admin/clock",
    )
    p.add_argument(
        "--model.counters",
        dest="counters",
        choices=("simulated", "wall"),
        default="simulated",
        help="simulated: CPU and byte counters integrate the load over simulated time "
        "(history and truth agree); wall: they grow at the load's rate per wall-clock second, "
        "so rate() over live scrapes reads true utilisation while time runs --speed times "
        "faster (default simulated)",
    )
    p.add_argument(
        "--model.load-scale",
        dest="load_scale",
        type=float,
        default=1.0,
        help="multiply the model's meetings per day (default 1; 4 ≈ 10 meetings per node "
        "on a term afternoon)",
    )
    p.add_argument(
        "--web.no-render-cache", dest="no_render_cache", action="store_true", help=argparse.SUPPRESS
    )
    p.add_argument(
        "--pool.fault", dest="fault", action="append", default=[], metavar="NODE=MODE[:ARG]"
    )
    p.add_argument(
        "--exporter.write-config",
        dest="write_config",
        type=Path,
        metavar="FILE",
        help="write the exporter's YAML (secret in FILE.secret)",
    )
    p.add_argument(
        "--exporter.base-url",
        dest="base_url",
        help="URL the pool is reached at, for --exporter.write-config "
        "without --web.listen-address (default http://127.0.0.1:8090)",
    )
    p.add_argument(
        "--model.term-calendar",
        dest="term_calendar",
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
        proxy=args.proxy,
    )


def serve_main(argv: Sequence[str]) -> int:
    parser = serve_parser()
    args = parse_command(parser, argv, RENAMED)
    if args.nodes < 0 or args.jitsi < 0 or args.nodes + args.jitsi == 0:
        parser.error("--pool.nodes and --pool.jitsi must be >= 0 and at least one node in total")
    if args.speed <= 0:
        parser.error("--clock.speed must be > 0")
    if args.load_scale < 0:
        parser.error("--model.load-scale must be >= 0")
    if not args.secret and args.nodes:
        parser.error("--bbb.secret (or CONFSCALE_SIM_SECRET) is required for BBB nodes")
    try:
        pool = build_pool(args)
        faults = [parse_fault_flag(f) for f in args.fault]
        for node, mode, arg in faults:
            pool.set_fault(node, mode, arg)
    except (CalendarError, FaultError) as exc:
        parser.error(str(exc))
    if args.listen is None:
        if not args.write_config:
            parser.error(
                "give --web.listen-address HOST:PORT to serve, or --exporter.write-config FILE"
            )
        base = args.base_url or "http://127.0.0.1:8090"
        write_config(
            args.write_config,
            base_url=base,
            bbb=pool.bbb_names,
            jitsi=pool.jitsi_names,
            proxy=pool.proxy_name,
            secret=args.secret,
            checksum=args.checksum[0],
        )
        print(f"wrote {args.write_config}")
        return 0
    from confscale.simulator.server import Settings, serve

    listen: ListenAddress = args.listen
    try:
        server = serve(
            pool,
            Settings(args.secret, args.checksum, not args.no_render_cache),
            listen.bind_host,
            listen.port,
        )
    except OSError as exc:
        print(f"confscale-sim: cannot listen on {listen}: {exc}", file=sys.stderr)
        return 1
    url = listen.url(server.server_address[1])
    if args.write_config:
        write_config(
            args.write_config,
            base_url=args.base_url or url,
            bbb=pool.bbb_names,
            jitsi=pool.jitsi_names,
            proxy=pool.proxy_name,
            secret=args.secret,
            checksum=args.checksum[0],
        )
    return run_forever(server, url)


def run_forever(server: object, address: str) -> int:
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
    log.info("listening", extra={"address": address})
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
