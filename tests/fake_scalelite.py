"""A fake Scalelite admin API that follows Scalelite's own source, not our reading of it.

Upstream: blindsidenetworks/scalelite at 7498a81dc813efcb5116143c64d23493292f7b57
- config/routes.rb: scope 'scalelite/api' — GET getServers, GET getServerInfo,
  POST addServer, POST updateServer, POST deleteServer, POST panicServer (and the tenant
  routes); anything else falls to ``match '*any' → errors#unsupported_request``.
- app/controllers/api/scalelite_api_controller.rb: before_action verify_content_type (a
  POST with a body must be application/json) then verify_checksum(true).
- app/controllers/concerns/api_helper.rb verify_checksum: the algorithm is guessed from
  the checksum's length (40 sha1, 64 sha256, 128 sha512) and must be in
  LOADBALANCER_CHECKSUM_ALGORITHM (default SHA1:SHA256:SHA512); the checked string is
  ``action_name.camelcase(:lower)`` + the raw query string with the checksum removed by
  the regex ``&checksum=C|checksum=C&|checksum=C`` + one of the loadbalancer secrets.
- app/controllers/application_controller.rb + concerns/bbb_errors.rb: ChecksumError,
  UnsupportedContentType, UnsupportedRequestError and a missing param are rendered as
  XML ``<response><returncode>FAILED</returncode><messageKey>…`` with HTTP 200.
- app/controllers/api/servers_controller.rb: get_servers answers 404
  ``{"error": "No servers are configured"}`` when empty; server_to_json renders id, url,
  secret, tag ('' when nil), bbb_version, state, load ('unavailable' when none),
  load_multiplier (a BigDecimal — a JSON string — or the number 1.0 when never set) and
  online ('online'/'offline'); set_server 404 ``{"error": "Couldn't find server with id=X"}``.
- app/services/server_update_service.rb: state enable/cordon/disable → enabled/cordoned/
  disabled, else 400 "Invalid state parameter: X"; load_multiplier ``to_d``, zero is 400
  "Load-multiplier must be a non-zero number"; permitted keys state, load_multiplier,
  secret, tag.
- lib/tasks/poll.rake: load = attendees × load_multiplier while online, and
  ``server.state = 'disabled' if server.cordoned? && server.load.to_f.zero?``.
- app/models/server.rb: the load lives in the Redis sorted sets ``server_load`` (enabled)
  and ``cordoned_server_load``; ``save!`` drops the load of a disabled server, a cordon
  moves it to ``cordoned_server_load`` and an enable moves it back — from ``disabled``
  there is none, so the server is not in ``server_load`` (cannot take a create) until the
  next poll sets its load; a new ``load_multiplier`` leaves the load as it is (the next
  poll and the next increments use it). ``find_available``: the lowest score of
  ``server_load`` (ties by id); ``increment_load(n)`` adds n × load_multiplier only to a
  server in ``server_load`` (``zadd … xx: true, incr: true``).
- app/controllers/bigbluebutton_api_controller.rb: ``create`` of a new meeting
  ``increment_load(1)`` on the server find_available chose; every ``join``
  ``increment_load(1)`` on the meeting's server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, urlsplit

from localhttp import Incoming, answering

ROUTES = {
    ("GET", "getServers"),
    ("GET", "getServerInfo"),
    ("POST", "addServer"),
    ("POST", "updateServer"),
    ("POST", "deleteServer"),
    ("POST", "panicServer"),
    ("GET", "getTenants"),
    ("GET", "getTenantInfo"),
    ("POST", "addTenant"),
    ("POST", "updateTenant"),
    ("POST", "deleteTenant"),
}
DIGESTS = {40: "SHA1", 64: "SHA256", 128: "SHA512"}


def ruby_decimal(value: Decimal) -> str:
    """BigDecimal#to_s as ActiveSupport renders it ("F" format: 2 → "2.0")."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


@dataclass
class FakeServer:
    id: str
    url: str
    secret: str
    state: str = "enabled"
    load_multiplier: str | None = None  # what Scalelite stores in Redis (a string)
    tag: str | None = None
    online: bool = True
    attendees: int = 0
    load: float | None = 0.0

    def as_json(self) -> dict[str, object]:
        multiplier: object = 1.0
        if self.load_multiplier is not None:
            multiplier = ruby_decimal(Decimal(self.load_multiplier))
        return {
            "id": self.id,
            "url": self.url,
            "secret": self.secret,
            "tag": self.tag or "",
            "bbb_version": "3.0.4",
            "state": self.state,
            "load": "unavailable" if self.load is None else self.load,
            "load_multiplier": multiplier,
            "online": "online" if self.online else "offline",
        }


@dataclass
class Request:
    method: str
    path: str
    query: str
    content_type: str | None
    body: bytes


@dataclass
class FakeScalelite:
    secrets: tuple[str, ...] = ("lb-secret-0123456789",)
    algorithms: tuple[str, ...] = ("SHA1", "SHA256", "SHA512")
    servers: dict[str, FakeServer] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    checksums: set[str] = field(default_factory=set)  # every checksum a client sent
    hang: threading.Event | None = None  # given: every request waits until it is set
    # a fault in front of Scalelite (a proxy's 401/404/500, a broken body): not Scalelite's
    fault: str | None = None
    arrivals: int = 0  # requests received (counted before a hang)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, server: FakeServer) -> FakeServer:
        self.servers[server.id] = server
        return server

    def poll(self) -> None:
        """One run of Scalelite's poll:servers for the load/state part (poll.rake)."""
        with self.lock:
            for server in self.servers.values():
                if not server.online:
                    continue
                multiplier = Decimal(server.load_multiplier or "1.0")
                server.load = float(server.attendees * multiplier)
                if server.state == "cordoned" and server.load == 0:
                    server.state = "disabled"
                if server.state == "disabled":
                    server.load = None  # save!: a disabled server's load is dropped

    def find_available(self, tags: str | None = None) -> FakeServer:
        """Server.find_available: the lowest load in ``server_load`` among the servers of
        the ``meta_server-tag`` tags ("a;b", "a!" = required), else the untagged ones."""
        required = bool(tags) and tags.endswith("!")
        wanted = (tags[:-1] if required else tags or "").split(";")
        with self.lock:
            ranked = sorted(
                (s.load, s.id, s.tag)
                for s in self.servers.values()
                if s.state == "enabled" and s.online and s.load is not None
            )
            if not ranked:
                raise LookupError("Could not find any available servers.")
            tagged = [r for r in ranked if (r[2] or "none") in wanted] if tags else []
            if not tagged:
                if required:
                    raise LookupError(f"no server with tag {tags[:-1]!r} (ServerTagUnavailable)")
                tagged = [r for r in ranked if r[2] is None]
            if not tagged:
                raise LookupError("Could not find any available servers.")
            return self.servers[tagged[0][1]]

    def increment_load(self, server: FakeServer, amount: int = 1) -> None:
        """Server#increment_load: only a server in ``server_load`` (enabled, with a load)."""
        with self.lock:
            if server.state == "enabled" and server.online and server.load is not None:
                server.load += amount * float(Decimal(server.load_multiplier or "1.0"))

    def create(self, tags: str | None = None) -> FakeServer:
        """A create of a new meeting: find_available, then increment_load(1)."""
        server = self.find_available(tags)
        self.increment_load(server)
        return server

    def updates(self) -> list[dict]:
        return [
            json.loads(r.body)
            for r in self.requests
            if r.method == "POST" and r.path.endswith("/updateServer") and r.body
        ]

    # --- the checks of api_helper.rb ---------------------------------------------------

    def verify_checksum(self, action: str, query: str) -> bool:
        given = (parse_qs(query).get("checksum") or [""])[0]
        if not given:
            return False
        self.checksums.add(given)
        algorithm = DIGESTS.get(len(given))
        if algorithm is None or algorithm not in self.algorithms:
            return False
        escaped = re.escape(given)
        rest = re.sub(f"&checksum={escaped}|checksum={escaped}&|checksum={escaped}", "", query)
        digest = getattr(hashlib, algorithm.lower())
        return any(
            digest(f"{action}{rest}{secret}".encode()).hexdigest() == given
            for secret in self.secrets
        )

    def handle(self, request: Request) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests.append(request)
        self.verify_checksum("", request.query)  # records the checksum that was sent
        if self.fault in ("401", "404", "500"):
            page = f"<html><body><h1>{self.fault}</h1></body></html>".encode()
            return int(self.fault), "text/html", page
        if self.fault == "badjson":
            return 200, "application/json", b'[{"id": "id-1", "secret": "half'
        prefix = "/scalelite/api/"
        action = request.path[len(prefix) :] if request.path.startswith(prefix) else ""
        if (request.method, action) not in ROUTES:
            return xml_failed("unsupportedRequest", "This request is not supported.")
        if request.method == "POST" and request.body:
            mime = (request.content_type or "").split(";")[0].strip()
            if mime != "application/json":
                return xml_failed(
                    "unsupportedContentType", "POST request Content-Type is missing or unsupported"
                )
        if not self.verify_checksum(action, request.query):
            return xml_failed("checksumError", "You did not pass the checksum security check")
        params: dict[str, object] = {k: v[-1] for k, v in parse_qs(request.query).items()}
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return 400, "application/json", b'{"status":400,"error":"Bad Request"}'
            if isinstance(body, dict):
                params.update(body)
        with self.lock:
            if action == "getServers":
                if not self.servers:
                    return jsonify(404, {"error": "No servers are configured"})
                return jsonify(200, [s.as_json() for s in self.servers.values()])
            if action == "updateServer":
                return self._update(params)
        return jsonify(400, {"error": f"{action}: not part of this fake"})

    def _update(self, params: dict[str, object]) -> tuple[int, str, bytes]:
        server = self.servers.get(str(params.get("id")))
        if server is None:
            return jsonify(404, {"error": f"Couldn't find server with id={params.get('id')}"})
        change = params.get("server")
        if not isinstance(change, dict):
            return xml_failed("internalError", "param is missing or the value is empty: server")
        change = {
            k: v for k, v in change.items() if k in ("state", "load_multiplier", "secret", "tag")
        }
        states = {"enable": "enabled", "cordon": "cordoned", "disable": "disabled"}
        if change.get("state"):
            if change["state"] not in states:
                return jsonify(400, {"error": f"Invalid state parameter: {change['state']}"})
            state = states[str(change["state"])]
            if state == "disabled" or (state == "enabled" and server.state == "disabled"):
                server.load = None  # none until the next poll (server.rb save!)
            server.state = state
        if change.get("load_multiplier") not in (None, ""):
            try:
                value = Decimal(str(change["load_multiplier"]))
            except InvalidOperation:
                value = Decimal(0)  # Ruby's "abc".to_d is 0
            if value == 0:
                return jsonify(400, {"error": "Load-multiplier must be a non-zero number"})
            server.load_multiplier = str(value)
        if change.get("secret"):
            server.secret = str(change["secret"])
        if change.get("tag") is not None:
            server.tag = str(change["tag"]) or None
        return jsonify(200, server.as_json())


def jsonify(status: int, body: object) -> tuple[int, str, bytes]:
    return status, "application/json; charset=utf-8", json.dumps(body).encode()


def xml_failed(key: str, message: str) -> tuple[int, str, bytes]:
    body = (
        '<?xml version="1.0"?>\n<response><returncode>FAILED</returncode>'
        f"<messageKey>{key}</messageKey><message>{message}</message></response>\n"
    )
    return 200, "application/xml; charset=utf-8", body.encode()


@contextlib.contextmanager
def serve(fake: FakeScalelite) -> Iterator[str]:
    """Run the fake on 127.0.0.1 (a free port); yields its base URL."""

    def respond(incoming: Incoming) -> tuple[int, str, bytes]:
        with fake.lock:
            fake.arrivals += 1
        if fake.hang is not None:
            fake.hang.wait(30)
        parts = urlsplit(incoming.target)
        content_type = incoming.headers.get("Content-Type")
        request = Request(incoming.method, parts.path, parts.query, content_type, incoming.body)
        return fake.handle(request)

    with answering(respond) as url:
        try:
            yield url
        finally:
            if fake.hang is not None:
                fake.hang.set()  # before the server's shutdown waits for its requests
