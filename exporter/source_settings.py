"""The settings of each source of a node (``bbb:``, ``host:``, ``jitsi:``) as small
immutable value objects, and the parsers the sources register (exporter/registry.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from confscale.exporter.config_values import (
    ConfigValueError,
    ParseContext,
    Secret,
    TlsOptions,
    parse_tls,
    parse_url,
    read_secret,
    reject_unknown,
)
from confscale.exporter.contract import DEFAULT_FILESYSTEMS, DEFAULT_ORIGINS_TOP, MAX_ORIGINS_TOP

CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
_BBB_KEYS = frozenset(
    {"url", "secret", "secret_file", "checksum", "tls", "origins_top", "recordings"}
)
_HOST_KEYS = frozenset({"node_exporter", "interface", "filesystems", "tls"})
_MAX_FILESYSTEMS = 8  # one series pair each: keep the mountpoint label bounded
_JITSI_KEYS = frozenset({"url", "metrics", "tls"})


@dataclass(frozen=True)
class BbbSource:
    url: str
    secret: Secret = field(repr=False)
    checksum: str = "sha256"
    tls: TlsOptions | None = None
    origins_top: int = DEFAULT_ORIGINS_TOP  # origins shown, the rest summed as "other"


@dataclass(frozen=True)
class HostSource:
    """``node_exporter`` is a /metrics URL, or None for this machine's /proc."""

    node_exporter: str | None
    interface: str | None = None
    tls: TlsOptions | None = None
    # mountpoints whose free space is exported (root and BBB's recordings by default)
    filesystems: tuple[str, ...] = DEFAULT_FILESYSTEMS

    @property
    def local(self) -> bool:
        return self.node_exporter is None


@dataclass(frozen=True)
class JitsiSource:
    """``url``: the bridge's /colibri/stats; or ``metrics``: its own Prometheus page."""

    url: str | None = None
    tls: TlsOptions | None = None
    metrics: str | None = None


def parse_bbb(raw: object, where: str, context: ParseContext) -> BbbSource:
    """The ``bbb:`` settings of a node."""
    environ, base_dir = context.environ, context.base_dir
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with url and secret_file or secret")
    reject_unknown(raw, _BBB_KEYS, where)
    url = parse_url(raw.get("url"), f"{where}.url")
    if not url.endswith("/"):
        url += "/"
    checksum = str(raw.get("checksum", "sha256")).lower()
    if checksum not in CHECKSUM_ALGORITHMS:
        raise ConfigValueError(
            f"{where}.checksum: expected one of "
            f"{', '.join(CHECKSUM_ALGORITHMS)}, got {raw.get('checksum')!r}"
        )
    secret = read_secret(raw, where, environ, base_dir)
    tls = parse_tls(raw.get("tls"), url, f"{where}.tls", base_dir)
    top = raw.get("origins_top", DEFAULT_ORIGINS_TOP)
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_ORIGINS_TOP:
        raise ConfigValueError(
            f"{where}.origins_top: expected a whole number from 0 to {MAX_ORIGINS_TOP}, got {top!r}"
        )
    return BbbSource(url=url, secret=secret, checksum=checksum, tls=tls, origins_top=top)


def parse_host(raw: object, where: str, context: ParseContext) -> HostSource:
    """The ``host:`` settings of a node (``local`` or a node_exporter URL)."""
    base_dir = context.base_dir
    if raw == "local":
        return HostSource(node_exporter=None)
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with node_exporter: URL or local")
    reject_unknown(raw, _HOST_KEYS, where)
    target = raw.get("node_exporter")
    url = None if target == "local" else parse_url(target, f"{where}.node_exporter")
    interface = raw.get("interface")
    if interface is not None and (not isinstance(interface, str) or not interface):
        raise ConfigValueError(f"{where}.interface: expected an interface name, got {interface!r}")
    tls = parse_tls(raw.get("tls"), url, f"{where}.tls", base_dir) if url else None
    filesystems = raw.get("filesystems", HostSource.filesystems)
    if (
        not isinstance(filesystems, list | tuple)
        or not 0 < len(filesystems) <= _MAX_FILESYSTEMS
        or not all(isinstance(m, str) and m.startswith("/") for m in filesystems)
    ):
        raise ConfigValueError(
            f"{where}.filesystems: expected 1 to {_MAX_FILESYSTEMS} absolute mountpoints "
            f"like [/, /var/bigbluebutton], got {filesystems!r}"
        )
    return HostSource(
        node_exporter=url,
        interface=interface,
        tls=tls,
        filesystems=tuple(dict.fromkeys(filesystems)),
    )


def parse_jitsi(raw: object, where: str, context: ParseContext) -> JitsiSource:
    """The ``jitsi:`` settings of a node: ``url`` (colibri stats) or ``metrics``."""
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with url or metrics")
    reject_unknown(raw, _JITSI_KEYS, where)
    if (raw.get("url") is None) == (raw.get("metrics") is None):
        raise ConfigValueError(
            f"{where}: expected exactly one of url (/colibri/stats) or metrics (/metrics)"
        )
    key = "url" if raw.get("url") is not None else "metrics"
    url = parse_url(raw.get(key), f"{where}.{key}")
    tls = parse_tls(raw.get("tls"), url, f"{where}.tls", context.base_dir)
    if key == "url":
        return JitsiSource(url=url, tls=tls)
    return JitsiSource(metrics=url, tls=tls)
