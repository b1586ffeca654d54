"""Jitsi: drain a JVB the placement takes out, undrain it when it comes back.

``POST {colibri}/colibri/drain/enable`` and ``…/drain/disable`` on the bridge's private
REST API (empty body). Only bridges this adapter drained are undrained; down or stale
bridges are left alone. Dry-run unless enabled: it logs what it would do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests
from confscale.planner.adapters.memory import RememberedNodes
from confscale.planner.placement import Placement
from confscale.planner.prometheus import redact

log = logging.getLogger(__name__)


def plan(
    placement: Placement, bridges: dict[str, str], drained_by_us: frozenset[str]
) -> list[tuple[str, str]]:
    """(node, "enable"|"disable") drain calls this placement asks for (pure)."""
    calls = []
    for node in placement.nodes:
        if node.node not in bridges:
            continue
        if node.state == "out" and node.node not in drained_by_us:
            calls.append((node.node, "enable"))
        elif node.state == "available" and node.node in drained_by_us:
            calls.append((node.node, "disable"))
    return calls


@dataclass
class JitsiAdapter:
    """Drains and undrains bridges given as node → colibri base URL."""

    bridges: dict[str, str]
    dry_run: bool = True
    timeout: float = 5.0
    drained_by_us: RememberedNodes = field(default_factory=RememberedNodes)

    def apply(self, placement: Placement) -> list[tuple[str, str]]:
        calls = plan(
            placement,
            self.bridges,
            self.drained_by_us.frozen(),
        )
        for node, action in calls:
            url = f"{self.bridges[node].rstrip('/')}/colibri/drain/{action}"
            if self.dry_run:
                log.info("jitsi dry-run: would POST %s (%s)", redact(url), node)
                continue
            response = requests.post(url, timeout=self.timeout)
            log.info("jitsi: did POST %s (%s) -> HTTP %s", redact(url), node, response.status_code)
            if response.ok:
                if action == "enable":
                    self.drained_by_us.add(node)
                else:
                    self.drained_by_us.discard(node)
        return calls
