"""The autoscaler actuator: publishes each pool's desired server count and safe removals.

Every placement refresh, :class:`Autoscaler` sizes the pool at the lead time ahead
(:func:`planner.autoscale.servers_needed_ahead` on the last snapshot) and
:func:`planner.autoscale.decide` keeps it early out, late in. The decision goes to:

- ``/metrics`` always (:class:`AutoscaleCollector`): ``confscale_pool_servers_desired``,
  ``confscale_pool_servers_needed_ahead`` and ``confscale_pool_scale_in_removable{node}``,
  for KEDA's Prometheus scaler or a cloud scaling policy to read;
- a webhook (:class:`WebhookTarget`): ``POST`` of :meth:`Decision.as_dict` as JSON, signed
  ``X-Confscale-Signature: sha256=<hex HMAC-SHA256 of the body>`` with a secret from a file;
- jitsi-autoscaler (:class:`JitsiAutoscalerTarget`), checked against jitsi/jitsi-autoscaler
  c302ef1bbef1c5c303907c3d7a414dccfa20aa30 (``src/app.ts``, ``src/handlers.ts``,
  ``src/validator.ts``, ``src/asap.ts``): ``GET /groups/:name`` answers
  ``{"instanceGroup": {…, "scalingOptions": {minDesired, maxDesired, desiredCount}}}`` or
  404; ``PUT /groups/:name/desired`` with ``{"desiredCount": N}`` answers 200
  ``{"save": "OK"}``, 400 ``{"errors": […]}`` when the count is outside the group's
  [minDesired, maxDesired]; with ``PROTECTED_API`` (the default) every route needs
  ``Authorization: Bearer`` an RS256 JWT whose header has a ``kid`` (its public key is
  fetched from ``ASAP_PUB_KEY_BASE_URL/<sha256(kid)>.pem``) and whose ``iss``/``aud`` are
  accepted, else 401. jitsi-autoscaler picks the instances to stop itself: the count is
  lowered only by nodes that are safe to remove, and the removal list goes to the log.

Dry-run unless ``--adapters.actuate``: the series are published, the targets are not called.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

import requests
from confscale.planner.adapters.health import AdapterHealth
from confscale.planner.adapters.http import AdapterError, call, install_log_redaction
from confscale.planner.autoscale import (
    AutoscalePolicy,
    AutoscaleState,
    Decision,
    decide,
    servers_needed_ahead,
)
from confscale.planner.placement import Placement
from prometheus_client.core import GaugeMetricFamily, Metric

from confscale import redact
from confscale.flags import duration, positive_int

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Confscale-Signature"


def read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {what} is not UTF-8 text") from None
    if not value:
        raise ValueError(f"{path}: {what} is empty")
    return value


def sign(secret: str, body: bytes) -> str:
    """The webhook's signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class WebhookTarget:
    url: str = field(repr=False)  # may carry a token in its query: never shown
    secret: str = field(repr=False)
    timeout: float = 5.0
    name: str = "webhook"

    def __repr__(self) -> str:
        return f"WebhookTarget({redact.redact_url(self.url)!r})"

    def publish(self, decision: Decision, session: requests.Session, health: AdapterHealth) -> None:
        body = json.dumps(decision.as_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body)}
        where = "webhook"
        try:
            response = session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException:
            health.count("unreachable")
            raise AdapterError(f"{where}: cannot reach the webhook", "unreachable") from None
        if not 200 <= response.status_code < 300:
            result = "unauthorized" if response.status_code in (401, 403) else "http_error"
            health.count(result)
            raise AdapterError(f"{where}: HTTP {response.status_code}", result)
        health.count("ok")


@dataclass
class JitsiAutoscalerTarget:
    base: str = field(repr=False)
    group: str
    private_key: str = field(repr=False)  # PEM, RS256
    key_id: str = ""
    issuer: str = "confscale"
    audience: str = "jitsi-autoscaler"
    timeout: float = 5.0
    name: str = "jitsi-autoscaler"

    def __repr__(self) -> str:
        return f"JitsiAutoscalerTarget({redact.redact_url(self.base)!r}, {self.group!r})"

    # its own session: the bearer token must never go to another target
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _headers(self) -> dict[str, str]:
        import jwt  # PyJWT: RS256 needs an RSA signature, not something to write by hand

        now = int(time.time())
        token = jwt.encode(
            {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + 300},
            self.private_key,
            algorithm="RS256",
            headers={"kid": self.key_id},
        )
        return {"Authorization": f"Bearer {token}"}

    def publish(self, decision: Decision, session: requests.Session, health: AdapterHealth) -> None:
        url = f"{self.base.rstrip('/')}/groups/{quote(self.group, safe='')}"
        session = self.session
        session.headers.update(self._headers())
        group = call(session, health, "GET", url, timeout=self.timeout)
        try:
            options = group.json()["instanceGroup"]["scalingOptions"]
            low, high = int(options["minDesired"]), int(options["maxDesired"])
            now = int(options["desiredCount"])
        except (ValueError, KeyError, TypeError):
            health.count("bad_answer")
            raise AdapterError(f"jitsi-autoscaler group {self.group}: no scalingOptions") from None
        health.count("ok")
        count = min(max(decision.desired, low), high)
        if count != decision.desired:
            log.warning(
                "jitsi-autoscaler group %s: desired %d clamped to its [%d, %d]",
                self.group, decision.desired, low, high,
            )  # fmt: skip
        if count == now:
            return
        answer = call(
            session, health, "PUT", f"{url}/desired", json_body={"desiredCount": count},
            timeout=self.timeout,
        )  # fmt: skip
        try:
            saved = answer.json().get("save") == "OK"
        except (ValueError, AttributeError):
            saved = False
        if not saved:
            health.count("bad_answer")
            raise AdapterError(f"jitsi-autoscaler group {self.group}: the desired count not saved")
        health.count("ok")
        log.info("jitsi-autoscaler group %s: desiredCount %d → %d", self.group, now, count)


@dataclass
class Autoscaler:
    """One pool's actuator (an adapter on its own runner, like the balancer adapters)."""

    policy: AutoscalePolicy
    targets: list = field(default_factory=list)
    dry_run: bool = True
    labels: dict[str, str] = field(default_factory=dict)  # the unit's pool label
    snapshot: Callable[[], object] | None = None  # the unit's service.snapshot
    clock: Callable[[], float] = time.time
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    health: AdapterHealth = field(default_factory=lambda: AdapterHealth("autoscaler"))
    name: str = "autoscaler"
    last: Decision | None = None
    _state: AutoscaleState = field(default_factory=AutoscaleState)
    _published: object = None
    _ahead_cache: tuple[object, int | None] | None = None

    def __post_init__(self) -> None:
        self.health.actuating = not self.dry_run
        install_log_redaction()

    def _needed_ahead(self, snapshot: object, now: float) -> int | None:
        if snapshot is None:
            return None
        # the refit's forecast (a placement refresh copies the snapshot, same generated_at)
        key = (
            getattr(snapshot, "generated_at", id(snapshot)),
            getattr(snapshot, "servers_online", None),
            int((now + self.policy.lead) // 3600),
            int(now // 3600),
        )
        if self._ahead_cache is not None and self._ahead_cache[0] == key:
            return self._ahead_cache[1]
        value = servers_needed_ahead(snapshot, now, self.policy.lead)
        self._ahead_cache = (key, value)
        return value

    def apply(self, placement: Placement) -> Decision:
        now = self.clock()
        snapshot = self.snapshot() if self.snapshot is not None else None
        policy = self.policy
        if snapshot is not None:
            policy = replace(policy, min_servers=snapshot.sizing.what_if.min_servers)  # type: ignore[attr-defined]
        decision, self._state = decide(
            self._state,
            needed_ahead=self._needed_ahead(snapshot, now),
            placement=placement,
            now=now,
            policy=policy,
            pool=self.labels.get("pool"),
            kind=getattr(snapshot, "sized_kind", "bbb"),
        )
        self.last = decision
        key = (decision.desired, decision.remove, decision.drain_first)
        failures = []
        if key != self._published:
            for target in self.targets:
                if self.dry_run:
                    log.info(
                        "autoscaler dry-run: would tell %s desired %d, remove %s",
                        target.name, decision.desired, list(decision.remove),
                    )  # fmt: skip
                    continue
                try:
                    target.publish(decision, self.session, self.health)
                except AdapterError as exc:
                    failures.append(f"{target.name}: {exc}")
            if not failures:
                self._published = key
        if failures:
            raise AdapterError("; ".join(failures))
        self.health.succeeded()  # the removal list has its own series, not "held out"
        return decision


def autoscalers(actuators: object) -> list[Autoscaler]:
    """The :class:`Autoscaler` s among ``actuators`` (runners or bare)."""
    found = []
    for actuator in actuators:  # type: ignore[attr-defined]
        adapter = getattr(actuator, "adapter", actuator)
        if isinstance(adapter, Autoscaler):
            found.append(adapter)
    return found


def _family(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=labels)


class AutoscaleCollector:
    """The decisions as series (read per scrape from each pool's :class:`Autoscaler`)."""

    def __init__(self, autoscalers: Callable[[], list[Autoscaler]]) -> None:
        self._autoscalers = autoscalers

    def collect(self) -> Iterator[Metric]:
        desired = _family(
            "confscale_pool_servers_desired",
            "Servers the pool should run now: the count at the lead time ahead, early out, "
            "late in, never below min_servers (for an autoscaler to read)",
            ["pool"],
        )
        ahead = _family(
            "confscale_pool_servers_needed_ahead",
            "servers_needed at the forecast's upper band over the autoscaler's lead time",
            ["pool"],
        )
        remove = _family(
            "confscale_pool_scale_in_removable",
            "1 for each node that is safe to remove now (held out, idle, no recordings)",
            ["pool", "node"],
        )
        for scaler in self._autoscalers():
            decision = scaler.last
            if decision is None:
                continue
            pool = scaler.labels.get("pool", "")
            desired.add_metric([pool], decision.desired)
            if decision.needed_ahead is not None:
                ahead.add_metric([pool], decision.needed_ahead)
            for node in decision.remove:
                remove.add_metric([pool, node], 1.0)
        yield from (desired, ahead, remove)


def add_autoscale_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autoscaler actuator (dry-run unless --adapters.actuate)")
    add = group.add_argument
    add(
        "--autoscale.enable",
        dest="autoscale",
        action="store_true",
        help="publish each pool's desired server count on /metrics (targets imply it)",
    )
    add(
        "--autoscale.lead-time",
        dest="autoscale_lead",
        type=duration,
        default=900.0,
        help="procurement/boot lead time: size for the upper band this far ahead (15m)",
    )
    add(
        "--autoscale.scale-in-after",
        dest="autoscale_in_after",
        type=duration,
        default=3600.0,
        help="scale in only after the count ahead stayed lower this long (1h)",
    )
    add(
        "--autoscale.hold",
        dest="autoscale_hold",
        type=duration,
        default=1800.0,
        help="at least this long between two changes of the count (30m)",
    )
    add(
        "--autoscale.idle-for",
        dest="autoscale_idle",
        type=duration,
        default=1800.0,
        help="a held-out node without meetings this long may be removed (30m)",
    )
    add("--autoscale.max-servers", dest="autoscale_max", type=positive_int)
    add("--autoscale.webhook-url", dest="autoscale_webhook")
    add(
        "--autoscale.webhook-secret-file",
        dest="autoscale_webhook_secret",
        type=Path,
        help="HMAC-SHA256 key of the X-Confscale-Signature header",
    )
    add("--autoscale.jitsi-url", dest="autoscale_jitsi", help="jitsi-autoscaler base URL")
    add(
        "--autoscale.jitsi-group",
        dest="autoscale_jitsi_group",
        help="its instance group (default: the pool's name)",
    )
    add(
        "--autoscale.jitsi-key-file",
        dest="autoscale_jitsi_key",
        type=Path,
        help="PEM RSA private key for the RS256 JWT (jitsi-autoscaler's ASAP)",
    )
    add("--autoscale.jitsi-key-id", dest="autoscale_jitsi_kid", default="confscale")
    add("--autoscale.jitsi-issuer", dest="autoscale_jitsi_iss", default="confscale")
    add("--autoscale.jitsi-audience", dest="autoscale_jitsi_aud", default="jitsi-autoscaler")


def build_autoscaler(args: argparse.Namespace, labels: dict[str, str]) -> Autoscaler | None:
    """The pool's autoscaler the command line asks for (None: not asked for)."""
    webhook, jitsi = (
        getattr(args, "autoscale_webhook", None),
        getattr(args, "autoscale_jitsi", None),
    )
    if not (getattr(args, "autoscale", False) or webhook or jitsi):
        return None
    policy = AutoscalePolicy(
        lead=args.autoscale_lead,
        scale_in_after=args.autoscale_in_after,
        hold=args.autoscale_hold,
        idle_for=args.autoscale_idle,
        max_servers=args.autoscale_max,
    ).validated()
    targets: list = []
    if webhook:
        if not args.autoscale_webhook_secret:
            raise ValueError("--autoscale.webhook-url needs --autoscale.webhook-secret-file")
        targets.append(WebhookTarget(webhook, read_secret(args.autoscale_webhook_secret, "secret")))
    if jitsi:
        if not args.autoscale_jitsi_key:
            raise ValueError("--autoscale.jitsi-url needs --autoscale.jitsi-key-file")
        group = args.autoscale_jitsi_group or labels.get("pool")
        if not group:
            raise ValueError("--autoscale.jitsi-url needs --autoscale.jitsi-group (no pool name)")
        targets.append(
            JitsiAutoscalerTarget(
                jitsi, group, read_secret(args.autoscale_jitsi_key, "private key"),
                key_id=args.autoscale_jitsi_kid, issuer=args.autoscale_jitsi_iss,
                audience=args.autoscale_jitsi_aud,
            )
        )  # fmt: skip
    pool = labels.get("pool")
    return Autoscaler(
        policy,
        targets,
        dry_run=not args.actuate,
        labels=dict(labels),
        health=AdapterHealth(f"autoscaler/{pool}" if pool else "autoscaler"),
        name=f"autoscaler/{pool}" if pool else "autoscaler",
    )
