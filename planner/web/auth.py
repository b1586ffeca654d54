"""Optional HTTP basic auth for the page (and the API beside it) when exposed.

Credentials come from a file (one ``user:password`` line) or the environment, are
compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, request

ENV_FILE = "CONFSCALE_WEB_AUTH_FILE"
ENV_USER = "CONFSCALE_WEB_USER"
ENV_PASSWORD = "CONFSCALE_WEB_PASSWORD"  # noqa: S105 - the variable's name, not a secret
OPEN_PATHS = frozenset({"/-/healthy"})
BEARER_PATHS = ("/api/v1/nodes/",)  # maintenance writes with the admin token


class AuthConfigError(ValueError):
    """Unusable credentials file or environment (the message never holds the secret)."""


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str = field(repr=False)

    def allows(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return (
            bool(sep)
            & hmac.compare_digest(user.encode(), self.user.encode())
            & (hmac.compare_digest(password.encode(), self.password.encode()))
        )


def load_auth_file(path: Path) -> BasicAuth:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthConfigError(f"{path}: cannot read credentials file: {exc.strerror}") from exc
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    user, sep, password = line.partition(":")
    if not sep or not user or not password:
        raise AuthConfigError(f"{path}: expected one line 'user:password'")
    return BasicAuth(user, password)


def auth_from_env(env: Mapping[str, str] | None = None) -> BasicAuth | None:
    """Credentials from ``$CONFSCALE_WEB_AUTH_FILE`` or ``$CONFSCALE_WEB_USER``/``…_PASSWORD``."""
    env = os.environ if env is None else env
    if env.get(ENV_FILE):
        return load_auth_file(Path(env[ENV_FILE]))
    user, password = env.get(ENV_USER), env.get(ENV_PASSWORD)
    if user and password:
        return BasicAuth(user, password)
    if user or password:
        raise AuthConfigError(f"set both {ENV_USER} and {ENV_PASSWORD}, or neither")
    return None


def protect(server: Flask, auth: BasicAuth, realm: str = "confscale") -> None:
    """Ask every request except the health check for the credentials."""

    @server.before_request
    def check() -> Response | None:
        header = request.headers.get("Authorization")
        if request.path in OPEN_PATHS or auth.allows(header):
            return None
        if (
            request.method in ("POST", "DELETE")
            and (header or "").startswith("Bearer ")
            and request.path.startswith(BEARER_PATHS)
        ):
            return None  # the admin token: the maintenance route checks it itself
        return Response(
            "authentication required\n",
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{realm}"'},
            mimetype="text/plain",
        )
