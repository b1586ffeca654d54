"""Scalelite admin API: ``load_multiplier`` and enable/cordon from the placement signal.

``POST /scalelite/api/updateServer?checksum=C`` with the JSON body
``{"id": ID, "server": {"state": "enable"|"cordon", "load_multiplier": X}}``; Scalelite
checks C = sha256(``updateServer`` + query string without the checksum + LOADBALANCER
secret), so with the documented JSON body the query string part is empty (the checksum
does not cover the body: use TLS). ``GET /scalelite/api/servers`` reads the current
states. Rules: cordon a node the placement takes out; enable it when it comes back —
also after Scalelite turned the drained cordoned server into ``disabled`` by itself;
only undo what this adapter did (a server an operator disabled stays disabled); never
``disable`` (it would end running meetings); set ``load_multiplier`` = 1 + pressure
(> 0, higher = less preferred), rounded to 0.05 to avoid churn. Dry-run unless enabled.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from confscale.planner.adapters.memory import RememberedNodes
from confscale.planner.placement import Placement
from confscale.planner.prometheus import redact

log = logging.getLogger(__name__)
API = "/scalelite/api"


def checksum(action: str, query: str, secret: str) -> str:
    """Scalelite's checksum: sha256 hex of action + query (without checksum) + secret."""
    return hashlib.sha256(f"{action}{query}{secret}".encode()).hexdigest()


@dataclass(frozen=True)
class Action:
    """One updateServer call and why."""

    node: str
    server_id: str
    server: dict[str, object]
    reason: str


def match_servers(
    nodes: list[str], servers: list[dict], mapping: dict[str, str]
) -> dict[str, dict]:
    """node → Scalelite server: by the explicit map, else the node name as URL host label."""
    by_id = {str(s.get("id")): s for s in servers}
    matched: dict[str, dict] = {}
    for node in nodes:
        if node in mapping and mapping[node] in by_id:
            matched[node] = by_id[mapping[node]]
            continue
        for server in servers:
            host = urlsplit(str(server.get("url", ""))).hostname or ""
            if host == node or host.split(".")[0] == node:
                matched[node] = server
                break
    return matched


def plan(
    placement: Placement, servers: dict[str, dict], cordoned_by_us: frozenset[str]
) -> list[Action]:
    """The updateServer calls this placement asks for (pure)."""
    actions = []
    for node in placement.nodes:
        server = servers.get(node.node)
        if server is None or node.state in ("down", "stale"):
            continue  # Scalelite polls health itself; never touch an unknown state
        state = str(server.get("state", ""))
        change: dict[str, object] = {}
        reason = node.reason
        if node.state == "out" and state == "enabled":
            change["state"] = "cordon"
        elif (
            node.state == "available"
            and state in ("cordoned", "disabled")
            and node.node in cordoned_by_us
        ):
            change["state"] = "enable"
            reason += "; re-enable" + (
                " after Scalelite's auto-disable" if state == "disabled" else ""
            )
        if node.state == "available" and node.pressure is not None:
            wanted = round(round((1.0 + node.pressure) * 20) / 20, 2)
            try:
                current = float(server.get("load_multiplier", 1.0))
            except (TypeError, ValueError):
                current = -1.0
            if abs(current - wanted) >= 0.05:
                change["load_multiplier"] = wanted
        if change:
            actions.append(Action(node.node, str(server["id"]), change, reason))
    return actions


@dataclass
class ScaleliteAdapter:
    """Applies placements to Scalelite (dry-run: only logs what it would do)."""

    url: str
    secret: str = field(repr=False)
    mapping: dict[str, str] = field(default_factory=dict)
    dry_run: bool = True
    timeout: float = 10.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    cordoned_by_us: RememberedNodes = field(default_factory=RememberedNodes)

    def servers(self) -> list[dict]:
        response = self.session.get(
            f"{self.url.rstrip('/')}{API}/servers",
            params={"checksum": checksum("servers", "", self.secret)},
            timeout=self.timeout,
        )
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, list):
            raise ValueError(f"scalelite {redact(self.url)}: servers answer is not a list")
        return body

    def apply(self, placement: Placement) -> list[Action]:
        nodes = [n.node for n in placement.nodes if n.kind == "bbb"]
        servers = match_servers(nodes, self.servers(), self.mapping)
        actions = plan(placement, servers, self.cordoned_by_us.frozen())
        for action in actions:
            self._do(action)
        return actions

    def _do(self, action: Action) -> None:
        what = (
            f"updateServer id={action.server_id} ({action.node}) "
            f"{action.server} because {action.reason}"
        )
        if self.dry_run:
            log.info("scalelite dry-run: would %s", what)
            return
        response = self.session.post(
            f"{self.url.rstrip('/')}{API}/updateServer",
            params={"checksum": checksum("updateServer", "", self.secret)},
            json={"id": action.server_id, "server": action.server},
            timeout=self.timeout,
        )
        log.info("scalelite: did %s -> HTTP %s", what, response.status_code)
        if response.ok:
            state = action.server.get("state")
            if state == "cordon":
                self.cordoned_by_us.add(action.node)
            elif state == "enable":
                self.cordoned_by_us.discard(action.node)
