"""HTTP routes of the planner (a Flask blueprint): JSON API, /metrics, /-/healthy.

Every answer comes from a service's last snapshot, serialised once per snapshot; a
request never recomputes anything. With several pools (planner.pools) every pool answer
takes ``?pool=`` (and ``&tag=`` for a tagged sub-pool); ``/api/v1/pools`` lists them.
The Dash page mounts on the same Flask server.
"""

from __future__ import annotations

import json
import math
import operator

from confscale.planner.adapters import adapter_health
from confscale.planner.adapters.autoscaler import AutoscaleCollector, autoscalers
from confscale.planner.adapters.b3lb import B3lbAdapter
from confscale.planner.maintenance import MaintenanceRegistry
from confscale.planner.maintenance_api import AdminAuth, maintenance_blueprint
from confscale.planner.metrics import (
    AdapterCollector,
    AnswerCollector,
    MaintenanceCollector,
    PlannerCollector,
)
from confscale.planner.pools import PoolPlanners, UnknownPool
from confscale.planner.reservations import NoNodeAvailable
from confscale.planner.service import PlannerService
from flask import Blueprint, Flask, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

JSON = "application/json"
MAX_EXPECTED_PARTICIPANTS = 10000


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype=JSON)


def as_planners(planners: PoolPlanners | PlannerService) -> PoolPlanners:
    """A single service is one (unnamed, or its one named) pool."""
    return planners if isinstance(planners, PoolPlanners) else PoolPlanners.single(planners)


def blueprint(
    planners: PoolPlanners | PlannerService,
    b3lb: B3lbAdapter | None = None,
    maintenance: MaintenanceRegistry | None = None,
) -> Blueprint:
    """Routes bound to ``planners``; register it on any Flask app (Dash's ``app.server``).

    With a ``b3lb`` adapter, ``/<node>/b3lb/load`` answers its load values.
    """
    planners = as_planners(planners)
    routes = Blueprint("confscale_planner_api", __name__)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlannerCollector.of(planners))

    def actuators() -> tuple[object, ...]:  # the pools' loops share the same adapters
        return tuple({id(a): a for s in planners for a in s.actuators}.values())

    # adapter health changes between snapshots: its own registry, exposed on every scrape
    adapters = CollectorRegistry(auto_describe=False)
    adapters.register(AdapterCollector(lambda: adapter_health(actuators())))
    adapters.register(AnswerCollector.of(planners))
    if maintenance is not None:  # changes between snapshots too
        adapters.register(MaintenanceCollector(maintenance.active, pool_of(planners)))
    adapters.register(AutoscaleCollector(lambda: autoscalers(actuators())))
    # The last exposition and the (snapshot, placement) per unit it came from (held).
    cache: list[tuple[tuple[object, ...], bytes]] = []

    def not_ready(service: PlannerService) -> Response:
        status = service.status()
        body = {"error": "no planner result yet", "last_error": status.last_error}
        return Response(json.dumps(body), status=503, mimetype=JSON)

    def selected(known: frozenset[str] = frozenset({"pool", "tag"})) -> PlannerService:
        """The service ``?pool=`` / ``&tag=`` name (UnknownPool or ValueError if not)."""
        unknown = sorted(set(request.args) - known)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return planners.select(request.args.get("pool"), request.args.get("tag"))

    def answer(body_of) -> Response:  # body_of: PlannerService -> bytes | None
        try:
            service = selected()
        except UnknownPool as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        body = body_of(service)
        if body is None:
            return not_ready(service)
        return Response(body, mimetype=JSON)

    @routes.get("/api/v1/pools")
    def pools() -> Response:
        body = {
            "pools": [
                {
                    "name": scope.name,
                    "pool": scope.pool,
                    "tag": scope.tag,
                    "ready": service.snapshot() is not None,
                }
                for scope, service in planners.units()
            ],
            "discovery_error": planners.discovery_error,
        }
        return Response(json.dumps(body), mimetype=JSON)

    @routes.get("/api/v1/placement")
    def placement() -> Response:
        return answer(lambda service: service.placement_json())

    @routes.get("/api/v1/placement/next")
    def placement_next() -> Response:
        args = request.args
        try:
            service = selected(frozenset({"pool", "tag", "expected_participants"}))
        except UnknownPool as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
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
            pool = planners.scope_of(service).pool
            chosen = service.next_node(pool=pool, expected_participants=size)
        except LookupError as exc:
            return _error(404, str(exc))
        except NoNodeAvailable as exc:
            return _error(503, str(exc))
        except RuntimeError as exc:
            return not_ready(service) if service.placement() is None else _error(503, str(exc))
        chosen["tag"] = planners.scope_of(service).tag
        return Response(json.dumps(chosen), mimetype=JSON, headers={"Cache-Control": "no-store"})

    @routes.get("/api/v1/capacity")
    def capacity() -> Response:
        return answer(lambda service: service.capacity_json())

    @routes.get("/metrics")
    def metrics() -> Response:
        key = tuple(o for s in planners for o in (s.snapshot(), s.placement()))
        held = cache[0][0] if cache else None
        if held is not None and len(held) == len(key) and all(map(operator.is_, held, key)):
            body = cache[0][1]
        else:
            body = generate_latest(registry)  # the collector reads the same two objects
            cache[:] = [(key, body)]
        return Response(body + generate_latest(adapters), mimetype=CONTENT_TYPE_LATEST)

    @routes.get("/-/healthy")
    def healthy() -> Response:
        units = planners.units()
        statuses = [(scope, service, service.status()) for scope, service in units]
        errors = [
            f"{scope.name}: {status.last_error}" if scope.name else status.last_error
            for scope, _, status in statuses
            if status.last_error
        ]
        if planners.discovery_error:
            errors.insert(0, planners.discovery_error)
        refits = [status.last_refit for _, _, status in statuses if status.last_refit]
        body = {
            "status": "ok",
            "ready": bool(units) and all(s.snapshot() is not None for _, s in units),
            "placement_ready": bool(units) and all(s.placement() is not None for _, s in units),
            "last_refit": min(refits) if len(refits) == len(units) and refits else None,
            "last_error": "; ".join(errors) if errors else None,
            "pools": [scope.name for scope, _ in units],
        }
        return Response(json.dumps(body), mimetype=JSON)

    @routes.get("/<node>/b3lb/load")
    def b3lb_load(node: str) -> Response:
        body = None if b3lb is None else b3lb.body(node)
        if body is None:
            return Response("not found\n", status=404, mimetype="text/plain")
        return Response(body, mimetype="text/plain")

    return routes


def pool_of(planners: PoolPlanners):
    """node -> the pool whose own loop places it (for the maintenance series' label)."""

    def lookup() -> dict[str, str]:
        pools: dict[str, str] = {}
        for scope, service in planners.units():
            placement = service.placement()
            if scope.tag is None and scope.pool and placement is not None:
                for node in placement.nodes:
                    pools.setdefault(node.node, scope.pool)
        return pools

    return lookup


def create_app(
    planners: PoolPlanners | PlannerService,
    b3lb: B3lbAdapter | None = None,
    *,
    maintenance: MaintenanceRegistry | None = None,
    admin: AdminAuth | None = None,
) -> Flask:
    """A Flask app with the planner routes (what ``confscale-planner serve`` runs)."""
    planners = as_planners(planners)
    app = Flask("confscale_planner")
    app.register_blueprint(blueprint(planners, b3lb, maintenance))
    if maintenance is not None:
        app.register_blueprint(
            maintenance_blueprint(
                maintenance, admin or AdminAuth(), changed=planners.refresh_placements
            )
        )
    return app
