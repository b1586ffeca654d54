"""Balancer adapters: Scalelite, b3lb, Jitsi. Dry-run unless ``--adapters.actuate`` is given.

Each adapter runs on its own worker thread (:mod:`.runner`), counts its requests and
failures (:mod:`.health`, exposed on ``/metrics`` and the page), and sends every request
through :mod:`.http` (timeouts; no URL query or checksum in any log line or error).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import yaml
from confscale.planner.adapters.autoscaler import add_autoscale_flags
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.adapters.health import AdapterHealth, HealthView
from confscale.planner.adapters.jitsi import RECORD_SCHEMA as JITSI_SCHEMA
from confscale.planner.adapters.jitsi import JitsiAdapter
from confscale.planner.adapters.memory import NodeRecords
from confscale.planner.adapters.runner import AdapterRunner
from confscale.planner.adapters.scalelite import ALGORITHMS, ScaleliteAdapter
from confscale.planner.adapters.scalelite import RECORD_SCHEMA as SCALELITE_SCHEMA
from confscale.planner.placement import NodeReading

# Old spellings that still work for one release, with a warning (docs/cli.md).
ADAPTER_FLAGS_RENAMED = {"--actuate": "--adapters.actuate", "--b3lb": "--b3lb.enable"}


def _admission_band(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 <= value < 100.0):
        raise argparse.ArgumentTypeError(
            f"--scalelite.admission must be a number of typical meetings from 0 to 100, "
            f"got {text!r}"
        )
    return value


def add_scalelite_flags(group, *, required: bool) -> None:
    """How to reach Scalelite's API: the serve adapter's and ``scalelite-check``'s flags."""
    group.add_argument("--scalelite.url", dest="scalelite_url", required=required)
    group.add_argument(
        "--scalelite.secret-file",
        dest="scalelite_secret_file",
        type=Path,
        required=required,
        help="file holding Scalelite's LOADBALANCER_SECRET",
    )
    group.add_argument(
        "--scalelite.checksum-algorithm",
        dest="scalelite_algorithm",
        choices=sorted(ALGORITHMS),
        default="sha256",
        help="checksum digest (Scalelite's LOADBALANCER_CHECKSUM_ALGORITHM must allow it)",
    )
    group.add_argument(
        "--scalelite.server-map",
        dest="scalelite_map",
        type=Path,
        help="YAML node: scalelite server id (default: match URL host)",
    )


def add_adapter_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("balancer adapters (dry-run unless --adapters.actuate)")
    group.add_argument(
        "--adapters.actuate",
        dest="actuate",
        action="store_true",
        help="really call the balancers (default: read them and log what would be done)",
    )
    add_scalelite_flags(group, required=False)
    group.add_argument(
        "--scalelite.admission",
        dest="scalelite_admission",
        type=_admission_band,
        metavar="MEETINGS",
        help="admission control: keep only the servers within MEETINGS typical meetings' "
        "pressure of the least-pressed one enabled, cordon the others until they are "
        "(default: off; 1 = the band /next uses, measured best: docs/benchmarks.md)",
    )
    group.add_argument(
        "--jitsi.bridges",
        dest="jitsi_bridges",
        type=Path,
        help="YAML node: JVB REST base URL (http://jvb-01:8080)",
    )
    group.add_argument(
        "--b3lb.enable", dest="b3lb", action="store_true", help="serve /<node>/b3lb/load"
    )
    group.add_argument(
        "--adapters.state-dir",
        dest="adapter_state_dir",
        type=Path,
        help="directory remembering what the adapters changed (and Scalelite operators' own "
        "load multipliers), so a restarted planner still undoes and restores them",
    )
    add_autoscale_flags(parser)


def read_node_map(path: Path, what: str) -> dict[str, str]:
    """A YAML mapping of node name to value (a server id, a bridge URL), or a ValueError."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read {what}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what} must be a mapping of node name to value")
    return {str(k): str(v) for k, v in data.items()}


def _records(args: argparse.Namespace, name: str, schema: dict) -> NodeRecords:
    directory = getattr(args, "adapter_state_dir", None)
    if directory is None:
        return NodeRecords(schema)
    legacy, field = {
        "scalelite": ("scalelite-cordoned.json", "cordoned"),
        "jitsi": ("jitsi-drained.json", "ours"),
    }[name]
    return NodeRecords(
        schema, directory / f"{name}.json", legacy_path=directory / legacy, legacy_field=field
    )


def build_actuators(args: argparse.Namespace) -> list[AdapterRunner]:
    """The adapters the command line asks for, each on its own runner."""
    dry_run = not args.actuate
    adapters: list[object] = []
    if args.scalelite_url:
        if not args.scalelite_secret_file:
            raise ValueError("--scalelite.url needs --scalelite.secret-file")
        try:
            secret = args.scalelite_secret_file.read_text().strip()
        except OSError as exc:
            raise ValueError(
                f"{args.scalelite_secret_file}: cannot read secret: {exc.strerror}"
            ) from exc
        mapping = read_node_map(args.scalelite_map, "server map") if args.scalelite_map else {}
        adapters.append(
            ScaleliteAdapter(
                args.scalelite_url,
                secret,
                mapping,
                dry_run,
                algorithm=getattr(args, "scalelite_algorithm", "sha256"),
                memory=_records(args, "scalelite", SCALELITE_SCHEMA),
                admission=getattr(args, "scalelite_admission", None),
            )
        )
    if args.jitsi_bridges:
        adapters.append(
            JitsiAdapter(
                read_node_map(args.jitsi_bridges, "bridge map"),
                dry_run,
                memory=_records(args, "jitsi", JITSI_SCHEMA),
            )
        )
    if args.b3lb:
        adapters.append(B3lbAdapter(dry_run))
    return [AdapterRunner(adapter) for adapter in adapters]  # type: ignore[arg-type]


def with_operator_holds(
    read: Callable[[], Sequence[NodeReading]], actuators: Sequence[object]
) -> Callable[[], list[NodeReading]]:
    """``read`` with each reading's ``held`` set where an adapter saw its operator hold the
    node out of the balancer (Scalelite cordoned/disabled, JVB drained by hand), so the
    placement calls it ``held`` and the sizing does not count it as online capacity."""

    def readings() -> list[NodeReading]:
        holds: dict[str, str] = {}
        for view in adapter_health(actuators):
            for node, why in view.held_by_operator.items():
                holds.setdefault(node, f"{why} ({view.adapter})")
        return [
            replace(r, held=holds[r.node]) if r.node in holds and not r.held else r for r in read()
        ]

    return readings


def adapter_health(actuators: object) -> list[HealthView]:
    """The health of every adapter among ``actuators`` (for /metrics and the page)."""
    return [a.health.view() for a in actuators if isinstance(a, AdapterRunner)]  # type: ignore[attr-defined]


__all__ = [
    "AdapterHealth",
    "AdapterRunner",
    "B3lbAdapter",
    "HealthView",
    "JitsiAdapter",
    "ScaleliteAdapter",
    "adapter_health",
    "add_adapter_flags",
    "build_actuators",
    "with_operator_holds",
]
