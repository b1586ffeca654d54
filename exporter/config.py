"""The exporter's pool file: its nodes, their pools and tags, as small immutable value
objects (each source's settings: exporter/source_settings.py; the checks of one value and
the ConfigError hierarchy: exporter/config_values.py).

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

import yaml
from confscale.exporter.config_values import (
    MAX_DURATION,
    MAX_SECRET_BYTES,
    ConfigError,
    ConfigFileError,
    ConfigValueError,
    EmptyConfigError,
    ParseContext,
    Secret,
    SecretError,
    TlsOptions,
    parse_duration,
    reject_unknown,
)
from confscale.exporter.source_settings import (
    CHECKSUM_ALGORITHMS,
    BbbSource,
    HostSource,
    JitsiSource,
    parse_bbb,
    parse_host,
    parse_jitsi,
)

from confscale.files import read_small_file

# Everything a caller reads from the configuration is importable from here.
__all__ = [
    "CHECKSUM_ALGORITHMS",
    "DEFAULT_INTERVAL",
    "DEFAULT_LINK_MBIT",
    "DEFAULT_TIMEOUT",
    "MAX_CONFIG_BYTES",
    "MAX_DURATION",
    "MAX_LINK_MBIT",
    "MAX_SECRET_BYTES",
    "MAX_TAGS_PER_FILE",
    "MAX_TAGS_PER_NODE",
    "BbbSource",
    "ConfigError",
    "ConfigFileError",
    "ConfigValueError",
    "EmptyConfigError",
    "HostSource",
    "JitsiSource",
    "NodeConfig",
    "ParseContext",
    "PoolConfig",
    "Secret",
    "SecretError",
    "TlsOptions",
    "load_config",
    "parse_bbb",
    "parse_config",
    "parse_duration",
    "parse_host",
    "parse_jitsi",
]

DEFAULT_LINK_MBIT = 500.0
DEFAULT_INTERVAL = 15.0
DEFAULT_TIMEOUT = 5.0
MAX_LINK_MBIT = 1e6  # 1 Tbit/s: more is a typo (and a larger float overflows to inf)
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # about 50,000 nodes
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
# Pool names and tags become label values and parts of the planner's API (?pool=, ?tag=,
# "pool/tag"): short words without ',' (the tags label's separator), '/' or spaces.
_LABEL_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_TAGS_PER_NODE = 8  # a Scalelite server has one tag, a b3lb node one cluster
MAX_TAGS_PER_FILE = 16  # each tag is a sub-pool the planner sizes on its own
_TOP_KEYS = frozenset({"pool", "interval", "timeout", "nodes"})
_NODE_KEYS = frozenset({"name", "pool", "tags", "link_capacity_mbit"})  # + source keys


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
class PoolConfig:
    nodes: tuple[NodeConfig, ...]
    pool: str | None = None
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    path: str = "<memory>"

    def node(self, name: str) -> NodeConfig | None:
        return next((n for n in self.nodes if n.name == name), None)


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
    reject_unknown(data, _TOP_KEYS, origin)
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
    reject_unknown(raw, _NODE_KEYS | {kind.yaml_key for kind in SOURCES}, where)
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
