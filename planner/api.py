"""HTTP routes of the planner (a Flask blueprint): JSON API, /metrics, /-/healthy.

Every answer comes from the service's last snapshot, serialised once per snapshot; a
request never recomputes anything. The Dash page mounts on the same Flask server.
"""

from __future__ import annotations

import json
import math

from confscale.planner.adapters import adapter_health
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.metrics import AdapterCollector, AnswerCollector, PlannerCollector
from confscale.planner.reservations import NoNodeAvailable
from confscale.planner.service import PlannerService
from flask import Blueprint, Flask, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

JSON = "application/json"
MAX_EXPECTED_PARTICIPANTS = 10000


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype=JSON)


def blueprint(service: PlannerService, b3lb: B3lbAdapter | None = None) -> Blueprint:
    """Routes bound to ``service``; register it on any Flask app (Dash's ``app.server``).

    With a ``b3lb`` adapter, ``/<node>/b3lb/load`` answers its load values.
    """
    routes = Blueprint("confscale_planner_api", __name__)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlannerCollector(service.snapshot, service.placement))
    # adapter health changes between snapshots: its own registry, exposed on every scrape
    adapters = CollectorRegistry(auto_describe=False)
    adapters.register(AdapterCollector(lambda: adapter_health(service.actuators)))
    adapters.register(AnswerCollector(service.answer_ages))
    # The last exposition and the (snapshot, placement) it came from (held, not by id).
    cache: list[tuple[tuple[object, object], bytes]] = []

    def not_ready() -> Response:
        status = service.status()
        body = {"error": "no planner result yet", "last_error": status.last_error}
        return Response(json.dumps(body), status=503, mimetype=JSON)

    @routes.get("/api/v1/placement")
    def placement() -> Response:
        body = service.placement_json()
        if body is None:
            return not_ready()
        return Response(body, mimetype=JSON)

    @routes.get("/api/v1/placement/next")
    def placement_next() -> Response:
        args = request.args
        unknown = sorted(set(args) - {"pool", "expected_participants"})
        if unknown:
            return _error(
                400,
                f"unknown parameter(s) {', '.join(unknown)}; known: pool, expected_participants",
            )
        size = None
        if "expected_participants" in args:
            text = args["expected_participants"]
            try:
                size = float(text)
            except ValueError:
                size = math.nan
            if not (0 < size <= MAX_EXPECTED_PARTICIPANTS):
                return _error(
                    400,
                    f"expected_participants must be a number in "
                    f"(0, {MAX_EXPECTED_PARTICIPANTS}], got {text[:40]!r}",
                )
        try:
            answer = service.next_node(pool=args.get("pool"), expected_participants=size)
        except LookupError as exc:
            return _error(404, str(exc))
        except NoNodeAvailable as exc:
            return _error(503, str(exc))
        except RuntimeError as exc:
            return not_ready() if service.placement() is None else _error(503, str(exc))
        return Response(json.dumps(answer), mimetype=JSON, headers={"Cache-Control": "no-store"})

    @routes.get("/api/v1/capacity")
    def capacity() -> Response:
        body = service.capacity_json()
        if body is None:
            return not_ready()
        return Response(body, mimetype=JSON)

    @routes.get("/metrics")
    def metrics() -> Response:
        key = (service.snapshot(), service.placement())
        if cache and cache[0][0][0] is key[0] and cache[0][0][1] is key[1]:
            body = cache[0][1]
        else:
            body = generate_latest(registry)  # the collector reads the same two objects
            cache[:] = [(key, body)]
        return Response(body + generate_latest(adapters), mimetype=CONTENT_TYPE_LATEST)

    @routes.get("/-/healthy")
    def healthy() -> Response:
        status = service.status()
        body = {
            "status": "ok",
            "ready": service.snapshot() is not None,
            "placement_ready": service.placement() is not None,
            "last_refit": status.last_refit,
            "last_error": status.last_error,
        }
        return Response(json.dumps(body), mimetype=JSON)

    @routes.get("/<node>/b3lb/load")
    def b3lb_load(node: str) -> Response:
        body = None if b3lb is None else b3lb.body(node)
        if body is None:
            return Response("not found\n", status=404, mimetype="text/plain")
        return Response(body, mimetype="text/plain")

    return routes


def create_app(service: PlannerService, b3lb: B3lbAdapter | None = None) -> Flask:
    """A Flask app with the planner routes (what ``confscale-planner serve`` runs)."""
    app = Flask("confscale_planner")
    app.register_blueprint(blueprint(service, b3lb))
    return app
