"""``confscale-exporter``: flags in the node_exporter style, signals, start and stop."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from confscale.exporter.collector import build_version
from confscale.exporter.config import ConfigError, load_config
from confscale.exporter.fetch import DEFAULT_MAX_BODY_BYTES
from confscale.exporter.http import ExporterApp, serve
from confscale.exporter.poller import DEFAULT_WORKERS, Poller
from confscale.exporter.sharding import Shard, parse_shard

from confscale import redact

log = logging.getLogger("confscale.exporter")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="confscale-exporter",
        description="Poll every node of a BigBlueButton/Jitsi pool concurrently and serve "
        "the confscale metric contract on /metrics (and one node on "
        "/probe?node=NAME). SIGHUP or POST /-/reload re-reads the configuration "
        "and keeps counters.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="FILE",
        default="pool.yml",
        help="YAML pool configuration (default: %(default)s); see "
        "docs/exporter.md. Secrets come from secret_file or ${ENV}.",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        default="127.0.0.1:9688",
        help="HOST:PORT to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=list(LEVELS),
        help="log verbosity (default: %(default)s)",
    )
    parser.add_argument(
        "--poll.workers",
        dest="workers",
        type=_positive_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="concurrent polls: worker threads sharing one keep-alive HTTP client "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--poll.max-body-bytes",
        dest="max_bytes",
        metavar="BYTES",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest answer accepted from a node; larger ones count as "
        "reason too_large (default: %(default)s)",
    )
    parser.add_argument(
        "--shard",
        dest="shard",
        metavar="I/N",
        type=_shard,
        default=Shard(),
        help="poll only shard I (0-based) of N of the configured nodes, by rendezvous "
        "hashing of the node name; run N exporters on the same file (default: %(default)s, "
        "the whole pool); see docs/scaling.md",
    )
    parser.add_argument(
        "--config.check",
        dest="check",
        action="store_true",
        help="validate the configuration, print a summary and exit",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {build_version()}")
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard: ")) from exc


def parse_listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT``; raises ValueError naming what was expected."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--web.listen-address: expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=LEVELS[args.log_level],
        stream=sys.stderr,
        format="ts=%(asctime)s level=%(levelname)s msg=%(message)s",
    )
    # A getMeetings URL carries a checksum that stays valid forever (the query never
    # changes); urllib3 prints URLs in its warnings and debug lines. Redact every record.
    redact.install(logging.getLogger())
    try:
        host, port = parse_listen_address(args.listen)
        config = args.shard.select(load_config(args.config_file))
    except (ConfigError, ValueError) as exc:
        print(f"confscale-exporter: {exc}", file=sys.stderr)
        return 2
    if args.check:
        sources = sum(len(n.sources()) for n in config.nodes)
        shard = "" if args.shard.count == 1 else f" in shard {args.shard}"
        print(
            f"{config.path}: OK, {len(config.nodes)} nodes{shard}, {sources} sources, "
            f"interval {config.interval:g}s, timeout {config.timeout:g}s"
        )
        return 0
    poller = Poller(config, workers=args.workers, max_bytes=args.max_bytes)
    reload_lock = threading.Lock()

    def reload() -> None:
        with reload_lock:
            try:
                new = args.shard.select(load_config(args.config_file))
            except ConfigError as exc:
                log.error("reload failed, keeping the old configuration: %s", exc)
                raise
            poller.replace_config(new)
            log.info("configuration reloaded nodes=%d", len(new.nodes))

    try:
        server = serve(ExporterApp(poller, reload), host, port)
    except OSError as exc:
        print(
            f"confscale-exporter: cannot listen on {args.listen}: {exc.strerror}", file=sys.stderr
        )
        return 2

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=_quiet(reload), name="confscale-reload", daemon=True).start()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="confscale-stop", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    poller.start()
    log.info(
        "listening on http://%s:%d nodes=%d shard=%s version=%s",
        host,
        port,
        len(config.nodes),
        args.shard,
        build_version(),
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        poller.stop()
        log.info("stopped")
    return 0


def _quiet(reload: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(ConfigError):  # already logged; the old config stays
            reload()

    return run


if __name__ == "__main__":
    sys.exit(main())
