"""``confscale-exporter``: flags in the node_exporter style, signals, start and stop."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from confscale.exporter.collector import build_version
from confscale.exporter.config import ConfigError, load_config
from confscale.exporter.fetch import DEFAULT_MAX_BODY_BYTES
from confscale.exporter.http import ExporterApp, serve
from confscale.exporter.memory import keep_freed_memory
from confscale.exporter.poller import DEFAULT_WORKERS, Poller
from confscale.exporter.reload import Reloader
from confscale.exporter.sharding import Shard, parse_shard

from confscale.flags import (
    listen_address,
    new_parser,
    parse_command,
    parse_listen_address,
    positive_int,
)
from confscale.log import get_logger

log = get_logger("confscale.exporter")
# Old spellings that still work for one release, with a warning (docs/cli.md).
RENAMED = {"--shard": "--poll.shard"}


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "confscale-exporter",
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
        type=listen_address,
        default=parse_listen_address("127.0.0.1:9688"),
        help="HOST:PORT, [IPV6]:PORT or :PORT to serve on (default: %(default)s)",
    )
    parser.add_argument(
        "--poll.workers",
        dest="workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help="concurrent polls at most: worker threads sharing one keep-alive HTTP client; "
        "polls that answer at once use as few as keep the process busy (default: %(default)s)",
    )
    parser.add_argument(
        "--poll.max-body-bytes",
        dest="max_bytes",
        metavar="BYTES",
        type=positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest answer accepted from a node; larger ones count as "
        "reason too_large (default: %(default)s)",
    )
    parser.add_argument(
        "--poll.shard",
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
    return parser


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--poll.shard: ")) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command(build_parser(), argv, RENAMED)
    listen = args.listen
    try:
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
    keep_freed_memory()  # a poll's buffers reuse the last one's pages (exporter/memory.py)
    poller = Poller(config, workers=args.workers, max_bytes=args.max_bytes)
    reloader = Reloader(
        lambda: args.shard.select(load_config(args.config_file)), poller.replace_config
    )

    try:
        app = ExporterApp(poller, reloader.reload, collectors=(reloader,))
        server = serve(app, listen.bind_host, listen.port)
    except OSError as exc:
        print(f"confscale-exporter: cannot listen on {listen}: {exc.strerror}", file=sys.stderr)
        return 2

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(
            target=reloader.reload_quietly, name="confscale-reload", daemon=True
        ).start()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="confscale-stop", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    poller.start()
    log.info(
        "listening",
        extra={
            "address": listen.url(server.server_port),
            "nodes": len(config.nodes),
            "shard": str(args.shard),
            "version": build_version(),
        },
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        poller.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
