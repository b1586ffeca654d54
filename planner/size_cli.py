"""``confscale-planner size``: each pool's capacity answer, once, as JSON."""

from __future__ import annotations

import argparse
import time

from confscale.planner.cli_inputs import (
    UsageError,
    add_model_flags,
    planner_config,
    planning_units,
    prometheus_client,
    what_if_changes,
)
from confscale.planner.prometheus import redact
from confscale.planner.snapshot import compute_snapshot, what_if

from confscale.flags import add_subcommand


def add_size_command(sub) -> None:
    size = add_subcommand(sub, "size", help="servers needed now, at the next peak, in 4 weeks")
    add_model_flags(size)


def cmd_size(args: argparse.Namespace) -> dict[str, object]:
    """One pool's capacity answer; with several pools, ``{"pools": {name: answer}}``."""
    from confscale.planner.sources import file_loader, prometheus_loader, prometheus_reader

    config = planner_config(args)
    units, discover = planning_units(args)
    if not units and discover is not None:
        units = discover()
        if not units:
            raise UsageError(
                f"Prometheus at {redact(args.prometheus)} has no bbb_meetings_participants "
                "in the last day: no pool to size"
            )
    answers: dict[str, dict[str, object]] = {}
    for scope in units:
        if args.history is not None:
            history, readings, now = file_loader(args.history)(), None, None
        else:
            client = prometheus_client(args)
            history = prometheus_loader(
                client, scope, lookback=args.lookback, node_lookback=args.node_lookback
            )()
            readings, now = prometheus_reader(client, scope)(), time.time()
        snapshot = compute_snapshot(
            history,
            config,
            readings=readings,
            now=now,
            rates_included=args.history is None,
        )
        answer = snapshot.capacity_dict()
        changes = what_if_changes(args)
        if changes:
            answer = {**answer, **what_if(snapshot, **changes).as_dict()}
        answers[scope.name] = answer
    if len(answers) == 1:
        return next(iter(answers.values()))
    return {"pools": answers}
