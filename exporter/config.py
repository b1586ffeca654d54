"""The exporter's YAML configuration as small immutable value objects.

Every error names the file, the node and the key, and what was expected; secret values
never appear in an error, a repr or a log line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from confscale.exporter.contract import DEFAULT_FILESYSTEMS, DEFAULT_ORIGINS_TOP, MAX_ORIGINS_TOP

from confscale import flags
from confscale.files import read_small_file

CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")
DEFAULT_LINK_MBIT = 500.0
DEFAULT_INTERVAL = 15.0
DEFAULT_TIMEOUT = 5.0
MAX_DURATION = 24 * 3600.0  # interval and timeout: anything longer is a typo
MAX_LINK_MBIT = 1e6  # 1 Tbit/s: more is a typo (and a larger float overflows to inf)
MAX_SECRET_BYTES = 4096  # a BBB secret is 32-64 characters
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # about 50,000 nodes
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# Pool names and tags become label values and parts of the planner's API (?pool=, ?tag=,
# "pool/tag"): short words without ',' (the tags label's separator), '/' or spaces.
_LABEL_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_TAGS_PER_NODE = 8  # a Scalelite server has one tag, a b3lb node one cluster
MAX_TAGS_PER_FILE = 16  # each tag is a sub-pool the planner sizes on its own
_TOP_KEYS = frozenset({"pool", "interval", "timeout", "nodes"})
_NODE_KEYS = frozenset({"name", "pool", "tags", "link_capacity_mbit"})  # + source keys
_BBB_KEYS = frozenset(
    {"url", "secret", "secret_file", "checksum", "tls", "origins_top", "recordings"}
)
_HOST_KEYS = frozenset({"node_exporter", "interface", "filesystems", "tls"})
_MAX_FILESYSTEMS = 8  # one series pair each: keep the mountpoint label bounded
_JITSI_KEYS = frozenset({"url", "metrics", "tls"})
_TLS_KEYS = frozenset({"ca_file", "insecure_skip_verify"})


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class EmptyConfigError(ConfigError):
    """The file holds no configuration at all."""


class ConfigFileError(ConfigError):
    """The file cannot be read or is not YAML."""


class ConfigValueError(ConfigError):
    """A key is missing, unknown or has a value of the wrong kind."""


class SecretError(ConfigError):
    """A secret cannot be read (missing file, unset variable, empty)."""


class Secret:
    """A shared secret whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class TlsOptions:
    """How an https source's certificate is checked (default: the system trust store)."""

    ca_file: str | None = None  # PEM bundle of the CA(s) that signed the node's certificate
    insecure_skip_verify: bool = False  # no check at all: a lab's self-signed node only


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


@dataclass(frozen=True)
class NodeConfig:
    """One node: its name, its uplink and the settings of each configured source.

    ``settings`` maps a source's key (``bbb``, ``jitsi``, ``host``: exporter/registry.py
    registers them) to that source's settings, in the registry's order.
    """

    name: str
    link_capacity_bytes_per_second: float = DEFAULT_LINK_MBIT * 1e6 / 8
    settings: Mapping[str, object] = field(default_factory=dict, hash=False)
    pool: str | None = None  # the node's own ``pool:``, else the file's (resolved on load)
    tags: tuple[str, ...] = ()  # sorted, unique: the balancer's tags / clusters

    def tags_label(self) -> str:
        """The ``tags`` label value: ``,a,b,`` (empty without tags), so ``=~".*,a,.*"``."""
        return f",{','.join(self.tags)}," if self.tags else ""

    def sources(self) -> tuple[str, ...]:
        """Keys of the configured sources, in a stable order."""
        return tuple(self.settings)

    def source(self, key: str) -> Any:
        """The settings of source ``key`` (None when the node does not have it)."""
        return self.settings.get(key)


@dataclass(frozen=True)
class ParseContext:
    """What a source's settings parser may need beyond its own YAML value."""

    environ: Mapping[str, str]
    base_dir: Path | None = None  # relative files (secrets, CA bundles) are read from here


@dataclass(frozen=True)
class PoolConfig:
    nodes: tuple[NodeConfig, ...]
    pool: str | None = None
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    path: str = "<memory>"

    def node(self, name: str) -> NodeConfig | None:
        return next((n for n in self.nodes if n.name == name), None)


def parse_duration(value: object, where: str) -> float:
    """Seconds from a duration (``15s``, ``500ms``, ``1m30s``: confscale.flags' grammar,
    the same as on the command line) or a YAML number of seconds."""
    if isinstance(value, bool):
        raise ConfigValueError(f"{where}: expected a duration like 15s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = flags.parse_duration(str(value))
        except ValueError:
            raise ConfigValueError(
                f"{where}: expected a duration like 15s, 500ms or 1m30s, got {value!r}"
            ) from None
    if not math.isfinite(seconds):  # YAML's .nan and .inf are floats
        raise ConfigValueError(f"{where}: expected a finite duration like 15s, got {value!r}")
    if seconds <= 0:
        raise ConfigValueError(f"{where}: must be greater than zero, got {value!r}")
    if seconds > MAX_DURATION:
        raise ConfigValueError(
            f"{where}: at most {MAX_DURATION / 3600:g}h, got {value!r} ({seconds:g}s)"
        )
    return seconds


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> PoolConfig:
    """Read and validate ``path``; raises a ConfigError naming file, node and key."""
    file = Path(path)
    try:
        text = read_small_file(file, MAX_CONFIG_BYTES).decode("utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{file}: cannot read the configuration: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise ConfigFileError(f"{file}: cannot read the configuration: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigFileError(f"{file}:{line}: not valid YAML: {problem}") from None
    if data is None:
        raise EmptyConfigError(f"{file}: the configuration is empty; expected a 'nodes' list")
    return parse_config(
        data, str(file), os.environ if environ is None else environ, base_dir=file.parent
    )


def parse_config(
    data: object, origin: str, environ: Mapping[str, str], base_dir: Path | None = None
) -> PoolConfig:
    """Validate already-loaded YAML data (``origin`` names it in errors)."""
    if not isinstance(data, dict):
        raise ConfigValueError(f"{origin}: expected a mapping with a 'nodes' list at the top")
    _reject_unknown(data, _TOP_KEYS, origin)
    pool = _pool_name(data.get("pool"), f"{origin}: key 'pool'")
    interval = parse_duration(data.get("interval", DEFAULT_INTERVAL), f"{origin}: key 'interval'")
    timeout = parse_duration(data.get("timeout", DEFAULT_TIMEOUT), f"{origin}: key 'timeout'")
    if timeout >= interval:
        # A cycle lasts about one timeout; longer than the interval and data goes stale.
        raise ConfigValueError(
            f"{origin}: key 'timeout' ({timeout:g}s) must be shorter than "
            f"'interval' ({interval:g}s)"
        )
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ConfigValueError(f"{origin}: key 'nodes': expected a non-empty list of nodes")
    nodes: list[NodeConfig] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        node = _parse_node(raw, f"{origin}: nodes[{index}]", ParseContext(environ, base_dir), pool)
        if node.name in seen:
            raise ConfigValueError(
                f"{origin}: nodes[{index}]: node name {node.name!r} "
                "is used twice; names must be unique"
            )
        seen.add(node.name)
        nodes.append(node)
    tags = sorted({tag for node in nodes for tag in node.tags})
    if len(tags) > MAX_TAGS_PER_FILE:
        raise ConfigValueError(
            f"{origin}: {len(tags)} different tags ({', '.join(tags)}); at most "
            f"{MAX_TAGS_PER_FILE}: each tag is a sub-pool the planner sizes on its own"
        )
    return PoolConfig(
        nodes=tuple(nodes),
        pool=pool,
        interval=interval,
        timeout=timeout,
        path=origin,
    )


def _reject_unknown(data: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(allowed))}"
        )


def _pool_name(value: object, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigValueError(f"{where}: expected a pool name, got {value!r}")
    if not _LABEL_WORD.match(str(value)):
        raise ConfigValueError(
            f"{where}: expected a pool name of letters, digits, - _ . "
            f"(at most 63 characters), got {value!r}"
        )
    return str(value)


def _parse_tags(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigValueError(f"{where}: expected a list of tags like [lecture, region-eu]")
    if len(value) > MAX_TAGS_PER_NODE:
        raise ConfigValueError(f"{where}: {len(value)} tags; at most {MAX_TAGS_PER_NODE} per node")
    tags: set[str] = set()
    for tag in value:
        if (
            isinstance(tag, bool)
            or not isinstance(tag, str | int)
            or not _LABEL_WORD.match(str(tag))
        ):
            raise ConfigValueError(
                f"{where}: expected tags of letters, digits, - _ . (at most 63 "
                f"characters, no ',' or spaces), got {tag!r}"
            )
        if str(tag) in tags:
            raise ConfigValueError(f"{where}: tag {str(tag)!r} is listed twice")
        tags.add(str(tag))
    return tuple(sorted(tags))


def _parse_node(
    raw: object, where: str, context: ParseContext, file_pool: str | None = None
) -> NodeConfig:
    # The registry imports its sources, which import their settings from here.
    from confscale.exporter.registry import SOURCES

    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with 'name' and a source")
    name = raw.get("name")
    if not isinstance(name, str) or not _NODE_NAME.match(name):
        raise ConfigValueError(
            f"{where}: key 'name': expected a node name (letters, digits, - _ . :), got {name!r}"
        )
    where = f"{where} (node {name})"
    _reject_unknown(raw, _NODE_KEYS | {kind.yaml_key for kind in SOURCES}, where)
    pool = _pool_name(raw.get("pool"), f"{where}: key 'pool'") or file_pool
    tags = _parse_tags(raw.get("tags"), f"{where}: key 'tags'")
    link = raw.get("link_capacity_mbit", DEFAULT_LINK_MBIT)
    if (
        isinstance(link, bool)
        or not isinstance(link, int | float)
        or not math.isfinite(link)  # YAML's .nan and .inf are floats
        or not 0 < link <= MAX_LINK_MBIT
    ):
        raise ConfigValueError(
            f"{where}: key 'link_capacity_mbit': expected a positive number of Mbit/s "
            f"up to {MAX_LINK_MBIT:g}, got {link!r}"
        )
    settings = {}
    for kind in SOURCES:
        if raw.get(kind.yaml_key) is not None:
            parsed = kind.parse(raw[kind.yaml_key], f"{where}: key '{kind.yaml_key}'", context)
            if parsed is not None:
                settings[kind.key] = parsed
    if not settings:
        keys = dict.fromkeys(k.yaml_key for k in SOURCES)
        raise ConfigValueError(f"{where}: no source; expected at least one of {', '.join(keys)}")
    return NodeConfig(
        name=name,
        link_capacity_bytes_per_second=float(link) * 1e6 / 8,
        settings=settings,
        pool=pool,
        tags=tags,
    )


def _url(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigValueError(f"{where}: expected an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigValueError(f"{where}: expected an http(s) URL, got {value!r}")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and errors: refuse them without echoing.
        raise ConfigValueError(f"{where}: the URL must not carry a user or password")
    return value


def parse_bbb(raw: object, where: str, context: ParseContext) -> BbbSource:
    """The ``bbb:`` settings of a node."""
    environ, base_dir = context.environ, context.base_dir
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with url and secret_file or secret")
    _reject_unknown(raw, _BBB_KEYS, where)
    url = _url(raw.get("url"), f"{where}.url")
    if not url.endswith("/"):
        url += "/"
    checksum = str(raw.get("checksum", "sha256")).lower()
    if checksum not in CHECKSUM_ALGORITHMS:
        raise ConfigValueError(
            f"{where}.checksum: expected one of "
            f"{', '.join(CHECKSUM_ALGORITHMS)}, got {raw.get('checksum')!r}"
        )
    secret = _read_secret(raw, where, environ, base_dir)
    tls = _parse_tls(raw.get("tls"), url, f"{where}.tls", base_dir)
    top = raw.get("origins_top", DEFAULT_ORIGINS_TOP)
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_ORIGINS_TOP:
        raise ConfigValueError(
            f"{where}.origins_top: expected a whole number from 0 to {MAX_ORIGINS_TOP}, got {top!r}"
        )
    return BbbSource(url=url, secret=secret, checksum=checksum, tls=tls, origins_top=top)


def _parse_tls(raw: object, url: str, where: str, base_dir: Path | None) -> TlsOptions | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with ca_file or insecure_skip_verify")
    _reject_unknown(raw, _TLS_KEYS, where)
    if urlsplit(url).scheme != "https":
        raise ConfigValueError(f"{where}: TLS options need an https URL")
    skip = raw.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        raise ConfigValueError(f"{where}.insecure_skip_verify: expected true or false")
    ca_file = raw.get("ca_file")
    if ca_file is not None:
        if skip:
            raise ConfigValueError(f"{where}: ca_file and insecure_skip_verify exclude each other")
        path = Path(str(ca_file))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ConfigValueError(f"{where}.ca_file: {path} is not a readable file")
        ca_file = str(path)
    return TlsOptions(ca_file=ca_file, insecure_skip_verify=skip)


def _read_secret(
    raw: dict[str, Any], where: str, environ: Mapping[str, str], base_dir: Path | None
) -> Secret:
    has_file, has_value = raw.get("secret_file") is not None, raw.get("secret") is not None
    if has_file == has_value:
        raise SecretError(f"{where}: expected exactly one of secret_file or secret: ${{ENV_VAR}}")
    if has_file:
        path = Path(str(raw["secret_file"]))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = read_small_file(path, MAX_SECRET_BYTES).decode("utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{where}.secret_file: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SecretError(f"{where}.secret_file: {path} is not UTF-8 text") from None
        except ValueError as exc:
            raise SecretError(f"{where}.secret_file: {path} {exc}") from None
        if not value:
            raise SecretError(f"{where}.secret_file: {path} is empty")
        return Secret(value)
    match = _ENV_REF.match(str(raw["secret"]).strip())
    if not match:
        # Never echo the value: it is probably the secret itself.
        raise SecretError(
            f"{where}.secret: expected a reference like ${{BBB_SECRET}}; "
            "put literal secrets in a file and use secret_file"
        )
    value = environ.get(match.group(1), "").strip()
    if not value:
        raise SecretError(
            f"{where}.secret: environment variable {match.group(1)} is unset or empty"
        )
    return Secret(value)


def parse_host(raw: object, where: str, context: ParseContext) -> HostSource:
    """The ``host:`` settings of a node (``local`` or a node_exporter URL)."""
    base_dir = context.base_dir
    if raw == "local":
        return HostSource(node_exporter=None)
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with node_exporter: URL or local")
    _reject_unknown(raw, _HOST_KEYS, where)
    target = raw.get("node_exporter")
    url = None if target == "local" else _url(target, f"{where}.node_exporter")
    interface = raw.get("interface")
    if interface is not None and (not isinstance(interface, str) or not interface):
        raise ConfigValueError(f"{where}.interface: expected an interface name, got {interface!r}")
    tls = _parse_tls(raw.get("tls"), url, f"{where}.tls", base_dir) if url else None
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
    _reject_unknown(raw, _JITSI_KEYS, where)
    if (raw.get("url") is None) == (raw.get("metrics") is None):
        raise ConfigValueError(
            f"{where}: expected exactly one of url (/colibri/stats) or metrics (/metrics)"
        )
    key = "url" if raw.get("url") is not None else "metrics"
    url = _url(raw.get(key), f"{where}.{key}")
    tls = _parse_tls(raw.get("tls"), url, f"{where}.tls", context.base_dir)
    if key == "url":
        return JitsiSource(url=url, tls=tls)
    return JitsiSource(metrics=url, tls=tls)
