"""HTTP routes of maintenance mode: reads open, writes authenticated and logged.

``GET /api/v1/maintenance`` lists the nodes in maintenance; ``GET``, ``POST`` (JSON
``{"reason": …, "until": unix seconds or ISO 8601, "by": …, "pool": …}``) and ``DELETE``
``/api/v1/nodes/NAME/maintenance`` read, start and end one. A write needs the admin
token (``Authorization: Bearer …``, from ``--web.admin-token-file``; ``by`` names the
operator) or the page's basic auth (the user name is who). After a write every pool's
placement is recomputed at once, so the answer already shows the node's new state.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from confscale.planner.maintenance import (
    Maintenance,
    MaintenanceError,
    MaintenanceRegistry,
    checked,
)
from flask import Blueprint, Response, request

log = logging.getLogger("confscale.planner.maintenance")
JSON = "application/json"
MAX_BODY = 4096


@dataclass(frozen=True)
class AdminAuth:
    """Who may write: the holder of the admin token, or a user of the page's basic auth."""

    token: str | None = field(default=None, repr=False)
    basic: object | None = None  # planner.web.auth.BasicAuth

    def who(self, claimed: object) -> str | None:
        """The writer's name, or None when the request is not authenticated."""
        header = request.headers.get("Authorization", "")
        if self.token and header.startswith("Bearer "):
            if hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
                return claimed if isinstance(claimed, str) and claimed else "admin-token"
            return None
        if self.basic is not None and self.basic.allows(header):  # type: ignore[attr-defined]
            return self.basic.user  # type: ignore[attr-defined]
        return None

    @property
    def configured(self) -> bool:
        return bool(self.token) or self.basic is not None


def _answer(status: int, body: object) -> Response:
    return Response(json.dumps(body), status=status, mimetype=JSON)


def _until(value: object) -> object:
    """Unix seconds as they are; an ISO 8601 text (``Z`` or an offset) as Unix seconds."""
    if not isinstance(value, str):
        return value
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MaintenanceError(f"until: {value[:40]!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise MaintenanceError("until: give a time zone (Z or +01:00)")
    return when.timestamp()


def maintenance_blueprint(
    registry: MaintenanceRegistry,
    auth: AdminAuth,
    *,
    changed: Callable[[], None] = lambda: None,
    clock: Callable[[], float] | None = None,
) -> Blueprint:
    """The maintenance routes; ``changed`` runs after every write (placement refresh)."""
    import time

    now = clock or time.time
    routes = Blueprint("confscale_planner_maintenance", __name__)

    def listing() -> list[dict[str, object]]:
        return [e.as_dict() for e in sorted(registry.active().values(), key=lambda e: e.node)]

    @routes.get("/api/v1/maintenance")
    def all_nodes() -> Response:
        return _answer(200, {"nodes": listing()})

    @routes.get("/api/v1/nodes/<node>/maintenance")
    def one(node: str) -> Response:
        entry = registry.active().get(node)
        if entry is None:
            return _answer(404, {"error": f"node {node[:70]!r} is not in maintenance"})
        return _answer(200, entry.as_dict())

    def writer(claimed: object) -> str | Response:
        if not auth.configured:
            return _answer(
                403,
                {
                    "error": "maintenance writes are off: start the planner with "
                    "--web.admin-token-file (or the page's basic auth)"
                },
            )
        who = auth.who(claimed)
        if who is None:
            return Response(
                json.dumps({"error": "authentication required (admin token or page login)"}),
                status=401,
                mimetype=JSON,
                headers={"WWW-Authenticate": 'Bearer realm="confscale"'},
            )
        return who

    @routes.post("/api/v1/nodes/<node>/maintenance")
    def start(node: str) -> Response:
        if (request.content_length or 0) > MAX_BODY:
            return _answer(413, {"error": f"body larger than {MAX_BODY} bytes"})
        body = request.get_json(silent=True) if request.get_data() else {}
        if not isinstance(body, dict):
            return _answer(400, {"error": "expected a JSON object with reason (and until)"})
        unknown = sorted(set(body) - {"reason", "until", "by", "pool"})
        if unknown:
            return _answer(400, {"error": f"unknown key(s) {', '.join(map(str, unknown))[:100]}"})
        who = writer(body.get("by"))
        if isinstance(who, Response):
            return who
        try:
            entry: Maintenance = checked(
                node,
                body.get("reason"),
                who,
                _until(body.get("until")),
                body.get("pool"),
                now=now(),
            )
        except MaintenanceError as exc:
            return _answer(400, {"error": str(exc)})
        registry.start(entry)
        changed()
        return _answer(201, entry.as_dict())

    @routes.delete("/api/v1/nodes/<node>/maintenance")
    def end(node: str) -> Response:
        claimed = request.args.get("by")
        who = writer(claimed)
        if isinstance(who, Response):
            return who
        entry = registry.end(node, who)
        if entry is None:
            return _answer(404, {"error": f"node {node[:70]!r} is not in maintenance"})
        changed()
        return _answer(200, {**entry.as_dict(), "ended_by": who})

    return routes
