"""The checks one value of the exporter's YAML goes through, and the errors they raise.

Durations, URLs, TLS options and secrets are read the same way wherever they appear (the
pool file's top, a node, any source's settings); every error names the file, node and key,
and a secret's value never appears in an error, a repr or a log line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from confscale import flags
from confscale.files import read_small_file

MAX_DURATION = 24 * 3600.0  # interval and timeout: anything longer is a typo
MAX_SECRET_BYTES = 4096  # a BBB secret is 32-64 characters
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_TLS_KEYS = frozenset({"ca_file", "insecure_skip_verify"})


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class EmptyConfigError(ConfigError):
    """The file holds no configuration at all."""


class ConfigFileError(ConfigError):
    """The file cannot be read or is not YAML."""


class ConfigValueError(ConfigError):
    """A key is missing, unknown or has a value of the wrong kind."""


class SecretError(ConfigError):
    """A secret cannot be read (missing file, unset variable, empty)."""


class Secret:
    """A shared secret whose repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class TlsOptions:
    """How an https source's certificate is checked (default: the system trust store)."""

    ca_file: str | None = None  # PEM bundle of the CA(s) that signed the node's certificate
    insecure_skip_verify: bool = False  # no check at all: a lab's self-signed node only


@dataclass(frozen=True)
class ParseContext:
    """What a source's settings parser may need beyond its own YAML value."""

    environ: Mapping[str, str]
    base_dir: Path | None = None  # relative files (secrets, CA bundles) are read from here


def parse_duration(value: object, where: str) -> float:
    """Seconds from a duration (``15s``, ``500ms``, ``1m30s``: confscale.flags' grammar,
    the same as on the command line) or a YAML number of seconds."""
    if isinstance(value, bool):
        raise ConfigValueError(f"{where}: expected a duration like 15s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        try:
            seconds = flags.parse_duration(str(value))
        except ValueError:
            raise ConfigValueError(
                f"{where}: expected a duration like 15s, 500ms or 1m30s, got {value!r}"
            ) from None
    if not math.isfinite(seconds):  # YAML's .nan and .inf are floats
        raise ConfigValueError(f"{where}: expected a finite duration like 15s, got {value!r}")
    if seconds <= 0:
        raise ConfigValueError(f"{where}: must be greater than zero, got {value!r}")
    if seconds > MAX_DURATION:
        raise ConfigValueError(
            f"{where}: at most {MAX_DURATION / 3600:g}h, got {value!r} ({seconds:g}s)"
        )
    return seconds


def reject_unknown(data: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """ConfigValueError naming the keys of ``data`` that are not ``allowed``."""
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(allowed))}"
        )


def parse_url(value: object, where: str) -> str:
    """An http(s) URL without credentials (they would end up in logs and errors)."""
    if not isinstance(value, str):
        raise ConfigValueError(f"{where}: expected an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigValueError(f"{where}: expected an http(s) URL, got {value!r}")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and errors: refuse them without echoing.
        raise ConfigValueError(f"{where}: the URL must not carry a user or password")
    return value


def parse_tls(raw: object, url: str, where: str, base_dir: Path | None) -> TlsOptions | None:
    """A source's ``tls:`` mapping (only for an https ``url``), or None without one."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigValueError(f"{where}: expected a mapping with ca_file or insecure_skip_verify")
    reject_unknown(raw, _TLS_KEYS, where)
    if urlsplit(url).scheme != "https":
        raise ConfigValueError(f"{where}: TLS options need an https URL")
    skip = raw.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        raise ConfigValueError(f"{where}.insecure_skip_verify: expected true or false")
    ca_file = raw.get("ca_file")
    if ca_file is not None:
        if skip:
            raise ConfigValueError(f"{where}: ca_file and insecure_skip_verify exclude each other")
        path = Path(str(ca_file))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ConfigValueError(f"{where}.ca_file: {path} is not a readable file")
        ca_file = str(path)
    return TlsOptions(ca_file=ca_file, insecure_skip_verify=skip)


def read_secret(
    raw: dict[str, Any], where: str, environ: Mapping[str, str], base_dir: Path | None
) -> Secret:
    """The secret of ``secret_file: PATH`` or ``secret: ${ENV_VAR}`` (exactly one)."""
    has_file, has_value = raw.get("secret_file") is not None, raw.get("secret") is not None
    if has_file == has_value:
        raise SecretError(f"{where}: expected exactly one of secret_file or secret: ${{ENV_VAR}}")
    if has_file:
        path = Path(str(raw["secret_file"]))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = read_small_file(path, MAX_SECRET_BYTES).decode("utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{where}.secret_file: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SecretError(f"{where}.secret_file: {path} is not UTF-8 text") from None
        except ValueError as exc:
            raise SecretError(f"{where}.secret_file: {path} {exc}") from None
        if not value:
            raise SecretError(f"{where}.secret_file: {path} is empty")
        return Secret(value)
    match = _ENV_REF.match(str(raw["secret"]).strip())
    if not match:
        # Never echo the value: it is probably the secret itself.
        raise SecretError(
            f"{where}.secret: expected a reference like ${{BBB_SECRET}}; "
            "put literal secrets in a file and use secret_file"
        )
    value = environ.get(match.group(1), "").strip()
    if not value:
        raise SecretError(
            f"{where}.secret: environment variable {match.group(1)} is unset or empty"
        )
    return Secret(value)
