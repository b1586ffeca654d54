"""``confscale-planner scalelite-check``: Scalelite's servers and tags against the pool file.

The planner sizes a tagged sub-pool ``POOL/TAG`` from the nodes the exporter's pool file
tags ``TAG`` (``confscale_node_info{tags}``), while Scalelite routes meetings created with
``meta_server-tag=TAG`` by the ``tag`` of its own servers. The two are set apart, by hand;
when they disagree the sub-pool is sized from nodes Scalelite does not send its meetings
to. This reads ``getServers`` once (the adapter's own read: checksum, secrets dropped),
matches servers to nodes as the adapter does (``--scalelite.server-map``, else the node
name as the URL's host), and exits 1 when a matched server's tag disagrees with its node's
tags; nodes Scalelite does not know and servers no node matches are listed as warnings.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confscale.planner.adapters import add_scalelite_flags
from confscale.planner.adapters.scalelite import Server, match_servers

from confscale.flags import add_subcommand


@dataclass(frozen=True)
class TagCheck:
    """What the comparison found (pure data, printed as JSON)."""

    mismatched: tuple[dict[str, object], ...]
    unmatched_nodes: tuple[str, ...]  # BBB nodes of the pool file no server matches
    unknown_servers: tuple[str, ...]  # Scalelite servers no node of the file matches

    @property
    def ok(self) -> bool:
        return not self.mismatched


def tags_agree(scalelite_tag: str, node_tags: Sequence[str]) -> bool:
    """Scalelite holds one tag per server: it must be one of the node's tags, and a node
    without tags must have an untagged server."""
    if not node_tags:
        return not scalelite_tag
    return scalelite_tag in node_tags


def compare(
    node_tags: Mapping[str, Sequence[str]], servers: list[Server], mapping: Mapping[str, str]
) -> TagCheck:
    """Each BBB node of the pool file (name → its tags) against Scalelite's servers."""
    matched = match_servers(sorted(node_tags), servers, mapping)
    mismatched: tuple[dict[str, object], ...] = tuple(
        {
            "node": node,
            "server": server.id,
            "scalelite_tag": server.tag or None,
            "pool_file_tags": list(node_tags[node]),
        }
        for node, server in sorted(matched.items())
        if not tags_agree(server.tag, node_tags[node])
    )
    used = {server.id for server in matched.values()}
    return TagCheck(
        mismatched=mismatched,
        unmatched_nodes=tuple(n for n in sorted(node_tags) if n not in matched),
        unknown_servers=tuple(sorted(s.id for s in servers if s.id not in used)),
    )


def add_scalelite_check_command(sub) -> None:
    check = add_subcommand(
        sub, "scalelite-check", help="compare Scalelite's servers and tags with the pool file"
    )
    check.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        required=True,
        help="the exporter's pool file",
    )
    check.add_argument("--pool.name", dest="pool", help="only this pool's nodes of the file")
    add_scalelite_flags(check, required=True)


def cmd_scalelite_check(args: argparse.Namespace, read_secret) -> dict[str, object]:
    """Read the pool file and getServers; the comparison as a dict (``ok`` false: exit 1)."""
    from confscale.exporter.config import ConfigError, load_config
    from confscale.planner.adapters import read_node_map
    from confscale.planner.adapters.http import AdapterError
    from confscale.planner.adapters.scalelite import ScaleliteAdapter

    try:
        pool = load_config(args.config_file)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    nodes = {
        node.name: node.tags
        for node in pool.nodes
        if node.source("bbb") is not None and (args.pool is None or node.pool == args.pool)
    }
    if not nodes:
        raise ValueError(f"{args.config_file}: no node with a bbb: source in pool {args.pool}")
    secret = read_secret(args.scalelite_secret_file, what="--scalelite.secret-file")
    mapping = read_node_map(args.scalelite_map, "server map") if args.scalelite_map else {}
    adapter = ScaleliteAdapter(
        args.scalelite_url, secret, mapping, dry_run=True, algorithm=args.scalelite_algorithm
    )
    try:
        servers = adapter.servers()
    except AdapterError as exc:
        raise ValueError(str(exc)) from None
    found = compare(nodes, servers, mapping)
    return {
        "ok": found.ok,
        "nodes": len(nodes),
        "servers": len(servers),
        "mismatched": list(found.mismatched),
        "unmatched_nodes": list(found.unmatched_nodes),
        "unknown_servers": list(found.unknown_servers),
    }
