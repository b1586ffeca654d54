"""The command-line conventions the three commands share (node_exporter's and Prometheus').

Every flag that takes a value is ``--area.name`` (``--web.listen-address``,
``--config.file``, ``--refit.interval``); words inside a name are joined by ``-``. Durations
use Prometheus' grammar (``500ms``, ``15s``, ``1h30m``, ``7d``, ``4w``); listen addresses
are ``HOST:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (every interface). Every command has
``--version``, ``--log.level`` and ``--log.format``; a renamed flag keeps its old spelling
for one release, with a warning (:func:`parse_command`). docs/cli.md lists the flags.
"""

from __future__ import annotations

import argparse
import platform
import re
import socket
import sys
from argparse import ArgumentParser
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from confscale import __version__
from confscale.log import LEVELS, configure_logging, get_logger

LOG_FORMATS = ("logfmt", "json")

# Prometheus' model.ParseDuration: units largest first, each at most once, integers only.
_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60))
_DURATION = re.compile(
    r"^(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration: ``500ms``, ``15s``, ``5m``, ``1h30m``, ``7d``, ``4w``.

    ``0`` is zero; anything else (``1.5h``, ``5``, ``m5``, ``5m1h``) raises ValueError.
    """
    text = text.strip()
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(
            f"{text!r} is not a duration: write an integer and a unit (ms, s, m, h, d, w, y), "
            "largest first, like 500ms, 15s, 1h30m or 7d"
        )
    parts = match.groupdict()
    seconds = sum(int(parts[unit] or 0) * factor for unit, factor in _UNITS)
    seconds += int(parts["s"] or 0)
    return seconds + int(parts["ms"] or 0) / 1000


def duration(text: str) -> float:
    """argparse ``type=`` for durations (seconds as float)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for ``seconds`` (inverse of parse_duration)."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    out = []
    for unit, factor in (*_UNITS, ("s", 1)):
        count, millis = divmod(millis, factor * 1000)
        if count:
            out.append(f"{count}{unit}")
    if millis:
        out.append(f"{millis}ms")
    return "".join(out)


class ListenAddress(NamedTuple):
    """A parsed listen address; ``host`` has no brackets, ``""`` means every interface."""

    host: str
    port: int

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def bind_host(self) -> str:
        return self.host or "0.0.0.0"  # noqa: S104 - ":PORT" asks for every interface

    def url(self, port: int | None = None) -> str:
        """``http://host:port`` (IPv6 in brackets); ``port`` replaces 0 once bound."""
        host = f"[{self.host}]" if ":" in self.host else self.bind_host
        return f"http://{host}:{self.port if port is None else port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen_address(text: str) -> ListenAddress:
    """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT``; port 0 asks for a free one."""
    expected = f"expected HOST:PORT, [IPV6]:PORT or :PORT, got {text!r}"
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or not host:
            raise ValueError(expected)
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(expected)
        if ":" in host:
            raise ValueError(f"{expected}: write an IPv6 address in brackets, [{host}]:{port}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{expected}: the port must be 0-65535")
    return ListenAddress(host, int(port))


def listen_address(text: str) -> ListenAddress:
    """argparse ``type=`` for listen addresses."""
    try:
        return parse_listen_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts that must be at least 1."""
    if not text.strip().isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def version_text(prog: str) -> str:
    """What ``--version`` prints, in node_exporter's shape."""
    return (
        f"{prog}, version {__version__}\n"
        f"  python version: {platform.python_version()} ({platform.python_implementation()})\n"
        f"  platform: {sys.platform}/{platform.machine()}"
    )


def new_parser(prog: str, description: str | None = None, **kwargs: Any) -> ArgumentParser:
    """An ArgumentParser with ``--version``, ``--log.level`` and ``--log.format``.

    Abbreviations are off (``--pool`` must never mean ``--pool.nodes``), as in Go's flags.
    """
    parser = ArgumentParser(prog=prog, description=description, allow_abbrev=False, **kwargs)
    add_common_flags(parser)
    _add_version(parser)
    return parser


def _add_version(parser: ArgumentParser) -> None:
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")


class _Version(argparse.Action):
    """``--version`` printing :func:`version_text` as it is (argparse's reflows lines)."""

    def __call__(self, parser: ArgumentParser, *_: object) -> None:
        print(version_text(parser.prog.split()[0]))
        parser.exit()


def add_subcommand(subparsers: Any, name: str, **kwargs: Any) -> ArgumentParser:
    """A subcommand parser (from ``add_subparsers()``) that takes the logging flags too."""
    parser: ArgumentParser = subparsers.add_parser(name, allow_abbrev=False, **kwargs)
    add_common_flags(parser, inherited=True)
    _add_version(parser)
    return parser


def add_common_flags(parser: ArgumentParser, *, inherited: bool = False) -> None:
    """``--log.level`` and ``--log.format``; ``inherited`` for subcommands (no own default)."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log.level",
        dest="log_level",
        choices=list(LEVELS),
        default=argparse.SUPPRESS if inherited else "info",
        help="only log messages of this level or above (default: info)",
    )
    group.add_argument(
        "--log.format",
        dest="log_format",
        choices=LOG_FORMATS,
        default=argparse.SUPPRESS if inherited else "logfmt",
        help="log lines as logfmt or JSON, on stderr (default: logfmt)",
    )


def rewrite_renamed(argv: Sequence[str], renamed: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """``argv`` with old flag spellings replaced by new ones, and one warning per old flag.

    ``renamed`` maps an old spelling (``--refit-interval``) to its new one
    (``--refit.interval``); ``--old value`` and ``--old=value`` both work. Arguments after
    ``--`` are left alone.
    """
    out: list[str] = []
    warnings: list[str] = []
    rest = False
    for arg in argv:
        if rest or arg == "--":
            rest = True
            out.append(arg)
            continue
        name, eq, value = arg.partition("=")
        new = renamed.get(name)
        if new is None:
            out.append(arg)
            continue
        out.append(f"{new}{eq}{value}")
        note = f"flag {name} is deprecated: use {new} (the old spelling goes in the next release)"
        if note not in warnings:
            warnings.append(note)
    return out, warnings


def parse_command(
    parser: ArgumentParser,
    argv: Sequence[str] | None,
    renamed: Mapping[str, str] | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``), set up logging, warn about old spellings."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    args_in, warnings = rewrite_renamed(args_in, renamed or {})
    args = parser.parse_args(args_in)
    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "logfmt"))
    log = get_logger("confscale.flags")
    for note in warnings:
        log.warning(note)
    return args
