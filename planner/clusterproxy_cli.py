"""``confscale-planner cluster-proxy``: write the BBB cluster proxy's files."""

from __future__ import annotations

import argparse
from pathlib import Path

from confscale.flags import add_subcommand


def add_cluster_proxy_command(sub) -> None:
    proxy = add_subcommand(
        sub, "cluster-proxy", help="BBB cluster proxy: nginx locations and node settings"
    )
    proxy.add_argument("--config.file", dest="config_file", type=Path, required=True,
                       help="the exporter's pool file (every node with a bbb: source)")  # fmt: skip
    proxy.add_argument("--proxy.url", dest="proxy_url", required=True,
                       help="the proxy's public URL (https://bbb-proxy.example.com)")  # fmt: skip
    proxy.add_argument("--output.dir", dest="output_dir", type=Path, required=True)


def cmd_cluster_proxy(args: argparse.Namespace) -> dict[str, object]:
    """Write the proxy's nginx snippet and each BBB node's settings (planner.clusterproxy)."""
    from confscale.exporter.config import ConfigError, load_config
    from confscale.planner.clusterproxy import generate, write_files

    try:
        pool = load_config(args.config_file)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    files = generate(pool, args.proxy_url)
    written = write_files(files, args.output_dir)
    return {"output_dir": str(args.output_dir), "files": [str(p) for p in written]}
