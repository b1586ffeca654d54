"""Balancer adapters: Scalelite, b3lb, Jitsi. Dry-run unless ``--actuate`` is given."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.adapters.jitsi import JitsiAdapter
from confscale.planner.adapters.memory import RememberedNodes
from confscale.planner.adapters.scalelite import ScaleliteAdapter


def add_adapter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("balancer adapters (dry-run unless --actuate)")
    group.add_argument(
        "--actuate",
        action="store_true",
        help="really call the balancers (default: log what would be done)",
    )
    group.add_argument("--scalelite.url", dest="scalelite_url")
    group.add_argument(
        "--scalelite.secret-file",
        dest="scalelite_secret_file",
        type=Path,
        help="file holding Scalelite's LOADBALANCER_SECRET",
    )
    group.add_argument(
        "--scalelite.server-map",
        dest="scalelite_map",
        type=Path,
        help="YAML node: scalelite server id (default: match URL host)",
    )
    group.add_argument(
        "--jitsi.bridges",
        dest="jitsi_bridges",
        type=Path,
        help="YAML node: colibri base URL (http://jvb-01:8080)",
    )
    group.add_argument("--b3lb", action="store_true", help="serve /<node>/b3lb/load")
    group.add_argument(
        "--adapters.state-dir",
        dest="adapter_state_dir",
        type=Path,
        help="directory remembering which servers the adapters cordoned or drained, so a "
        "restarted planner still re-enables them",
    )


def _yaml_map(path: Path, what: str) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read {what}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a mapping of node name to value")
    return {str(k): str(v) for k, v in data.items()}


def _state(args: argparse.Namespace, name: str) -> Path | None:
    directory = getattr(args, "adapter_state_dir", None)
    return None if directory is None else directory / name


def build_actuators(args: argparse.Namespace) -> list[object]:
    """The adapters the command line asks for."""
    dry_run = not args.actuate
    actuators: list[object] = []
    if args.scalelite_url:
        if not args.scalelite_secret_file:
            raise ValueError("--scalelite.url needs --scalelite.secret-file")
        try:
            secret = args.scalelite_secret_file.read_text().strip()
        except OSError as exc:
            raise ValueError(
                f"{args.scalelite_secret_file}: cannot read secret: {exc.strerror}"
            ) from exc
        mapping = _yaml_map(args.scalelite_map, "server map") if args.scalelite_map else {}
        actuators.append(
            ScaleliteAdapter(
                args.scalelite_url,
                secret,
                mapping,
                dry_run,
                cordoned_by_us=RememberedNodes(_state(args, "scalelite-cordoned.json")),
            )
        )
    if args.jitsi_bridges:
        actuators.append(
            JitsiAdapter(
                _yaml_map(args.jitsi_bridges, "bridge map"),
                dry_run,
                drained_by_us=RememberedNodes(_state(args, "jitsi-drained.json")),
            )
        )
    if args.b3lb:
        actuators.append(B3lbAdapter(dry_run))
    return actuators


__all__ = [
    "B3lbAdapter",
    "JitsiAdapter",
    "ScaleliteAdapter",
    "add_adapter_flags",
    "build_actuators",
]
