"""``confscale-planner``: backtest, size, serve.

``backtest`` and ``size`` print JSON on stdout; errors go to stderr as one line naming
the file, column or URL, with exit status 2 (usage / input) or 1 (unexpected).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from confscale.planner.adapters import ADAPTER_FLAGS_RENAMED
from confscale.planner.backtest_cli import add_backtest_command, cmd_backtest
from confscale.planner.calendar import CalendarError
from confscale.planner.cli_inputs import UsageError, read_secret_file, what_if_flag
from confscale.planner.clusterproxy_cli import add_cluster_proxy_command, cmd_cluster_proxy
from confscale.planner.history import HistoryError
from confscale.planner.prometheus import PrometheusError
from confscale.planner.scalelite_check import add_scalelite_check_command, cmd_scalelite_check
from confscale.planner.serve_cli import add_serve_command, cmd_serve
from confscale.planner.size_cli import add_size_command, cmd_size
from confscale.planner.snapshot import json_safe

from confscale.flags import new_parser, parse_command

# Old spellings that still work for one release, with a warning (docs/cli.md).
_UNDOTTED_WHAT_IF = (
    "growth", "webcam_share", "camera_kbit", "screen_share_share", "screen_share_kbit",
    "headroom_participants", "headroom_cpu", "headroom_transmit", "failure_participants",
    "failure_cpu", "failure_transmit", "link_capacity_bytes_per_second", "redundancy",
    "min_servers", "cameras_per_viewer", "band",
)  # fmt: skip

RENAMED = {
    "--history": "--history.file",
    "--prometheus": "--prometheus.url",
    "--lookback": "--prometheus.lookback",
    "--node-lookback": "--prometheus.node-lookback",
    "--calendar": "--calendar.file",
    "--country": "--calendar.country",
    "--subdivision": "--calendar.subdivision",
    "--timezone": "--calendar.timezone",
    "--csv": "--csv.file",
    "--time-column": "--csv.time-column",
    "--value-column": "--csv.value-column",
    "--horizon": "--backtest.horizon",
    "--step": "--backtest.step",
    "--exporter": "--exporter.url",
    "--refit-interval": "--refit.interval",
    "--placement-interval": "--placement.interval",
    "--pool": "--pool.name",
    # only the inputs that had an undotted flag in 0.1.0 keep one; later inputs never did
    **{f"--{name.replace('_', '-')}": what_if_flag(name) for name in _UNDOTTED_WHAT_IF},
    **ADAPTER_FLAGS_RENAMED,
}

__all__ = ["RENAMED", "UsageError", "build_parser", "main", "read_secret_file"]


def build_parser() -> argparse.ArgumentParser:
    from confscale.planner.maintenance_cli import add_maintenance_command

    parser = new_parser("confscale-planner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_backtest_command(sub)
    add_size_command(sub)
    add_serve_command(sub)
    add_maintenance_command(sub)
    add_cluster_proxy_command(sub)
    add_scalelite_check_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_command(build_parser(), argv, RENAMED)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "cluster-proxy":
            result = cmd_cluster_proxy(args)
        elif args.command == "scalelite-check":
            result = cmd_scalelite_check(args, read_secret_file)
        elif args.command == "maintenance":
            from confscale.planner.maintenance_cli import cmd_maintenance

            result = cmd_maintenance(args, read_secret_file)
        else:
            result = cmd_backtest(args) if args.command == "backtest" else cmd_size(args)
    except (UsageError, HistoryError, CalendarError, PrometheusError, ValueError, OSError) as exc:
        print(f"confscale-planner {args.command}: error: {exc}", file=sys.stderr)
        return 2
    json.dump(json_safe(result), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    if args.command == "scalelite-check" and not result["ok"]:
        return 1  # Scalelite's tags disagree with the pool file's: the JSON says where
    return 0


if __name__ == "__main__":
    sys.exit(main())
