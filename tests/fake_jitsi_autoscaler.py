"""A fake jitsi-autoscaler group API that follows jitsi-autoscaler's own source.

Upstream: jitsi/jitsi-autoscaler at c302ef1bbef1c5c303907c3d7a414dccfa20aa30
- src/app.ts: ``expressjwt({secret: asapFetcher.secretCallback, audience:
  ASAP_JWT_AUD, issuer: ASAP_JWT_ACCEPTED_HOOK_ISS, algorithms: ['RS256']})`` on every
  route while PROTECTED_API (default true); an UnauthorizedError answers 401 with the
  text ``invalid token...``; any other error 500 ``internal server error``.
- src/asap.ts: the token's header must carry a ``kid``; its public key is
  ``ASAP_PUB_KEY_BASE_URL/<sha256(kid)>.pem`` (here: a dict by that hash).
- src/app.ts ``PUT /groups/:name/desired``: ``minDesired``, ``maxDesired``,
  ``desiredCount`` optional ints ≥ 0, and validator.groupHasValidDesiredInput (src/
  validator.ts: min ≤ desired ≤ max after merging with the group) — failures answer 400
  ``{"errors": [{msg, ...}]}`` (express-validator); the lookup of an unknown group throws
  inside that validator, which also comes out as a 400. Then handlers.ts
  updateDesiredCount saves and answers 200 ``{"save": "OK"}`` (404 without the group).
- src/app.ts ``GET /groups/:name`` → handlers.ts getInstanceGroup: 200
  ``{"instanceGroup": {...}}`` or 404 (``sendStatus``: body ``Not Found``).
- Anything else: Express' 404 ``Cannot GET /path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field

import jwt
from localhttp import Answer, Incoming, answering, json_or_html

# src/app.ts' own words, typo included
RANGE_ERROR = "Desired count must be between min and max; min cannot be grater than max"


@dataclass
class FakeAutoscaler:
    public_keys: dict[str, str]  # sha256(kid) hex -> PEM public key
    audience: str = "jitsi-autoscaler"
    issuers: tuple[str, ...] = ("confscale",)
    protected: bool = True
    groups: dict[str, dict] = field(default_factory=dict)
    calls: list[tuple[str, str, dict | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_group(self, name: str, minimum: int, maximum: int, desired: int) -> None:
        self.groups[name] = {
            "name": name,
            "type": "JVB",
            "scalingOptions": {
                "minDesired": minimum,
                "maxDesired": maximum,
                "desiredCount": desired,
            },
        }

    def _authorized(self, header: str | None) -> bool:
        if not self.protected:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            if not kid:
                return False
            key = self.public_keys.get(hashlib.sha256(kid.encode()).hexdigest())
            if key is None:
                return False
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience)
        except jwt.PyJWTError:
            return False
        return claims.get("iss") in self.issuers

    def handle(self, method: str, path: str, auth: str | None, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            parsed = json.loads(body) if body else None
            self.calls.append((method, path, parsed))
            if not self._authorized(auth):
                return 401, b"invalid token..."
            desired = re.fullmatch(r"/groups/([^/]+)/desired", path)
            group = re.fullmatch(r"/groups/([^/]+)", path)
            if desired and method == "PUT":
                return self._put_desired(desired.group(1), parsed or {})
            if group and method == "GET":
                found = self.groups.get(group.group(1))
                if found is None:
                    return 404, b"Not Found"
                return 200, json.dumps({"instanceGroup": found}).encode()
            return 404, f"Cannot {method} {path}".encode()

    def _put_desired(self, name: str, request: dict) -> tuple[int, bytes]:
        errors = []
        for key in ("minDesired", "maxDesired", "desiredCount"):
            value = request.get(key)
            if value is not None and (not isinstance(value, int) or value < 0):
                errors.append({"msg": "Value must be positive", "path": key, "location": "body"})
        group = self.groups.get(name)
        if group is None:
            errors.append({"msg": "Cannot read properties of undefined (reading 'scalingOptions')"})
        else:
            options = group["scalingOptions"]
            low = request.get("minDesired", options["minDesired"])
            high = request.get("maxDesired", options["maxDesired"])
            count = request.get("desiredCount", options["desiredCount"])
            if not (low <= count <= high and low <= high):
                errors.append({"msg": RANGE_ERROR})
        if errors:
            return 400, json.dumps({"errors": errors}).encode()
        options = group["scalingOptions"]  # type: ignore[index]
        for key in ("desiredCount", "maxDesired", "minDesired"):
            if request.get(key) is not None:
                options[key] = request[key]
        return 200, json.dumps({"save": "OK"}).encode()


def serve(fake: FakeAutoscaler) -> contextlib.AbstractContextManager[str]:
    """Run the fake on 127.0.0.1 (a free port); yields its base URL."""

    def respond(request: Incoming) -> Answer:
        auth = request.headers.get("Authorization")
        status, answer = fake.handle(request.method, request.target, auth, request.body)
        return status, json_or_html(answer), answer

    return answering(respond, methods=("GET", "PUT", "POST"))
