"""One way for an adapter to call its balancer: bounded, counted, and never leaking a credential.

Every request goes through :func:`call`. It counts the answer in the adapter's
:class:`~confscale.planner.adapters.health.AdapterHealth` under one of :data:`RESULTS`,
and turns every failure into an :class:`AdapterError` whose text is plain words and the
URL *without* its query: a Scalelite checksum of a parameterless call is a static,
replayable credential (the ``getServers`` checksum reads every BBB secret), so neither
the query nor a checksum may reach a log line, an error, a metric or the page.
urllib3 logs every request URL with its query at DEBUG; :func:`install_log_redaction`
turns on ``confscale.redact`` for every log record.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import requests

from confscale import redact

if TYPE_CHECKING:
    from confscale.planner.adapters.health import AdapterHealth

# The ``result`` label of confscale_planner_adapter_requests_total (bounded on purpose).
RESULTS = (
    "ok",
    "refused",  # connection refused: nothing listens there
    "timeout",
    "unreachable",  # DNS, TLS, reset: any other transport failure
    "unauthorized",  # 401/403, or Scalelite's checksumError (HTTP 200 with an XML body)
    "not_found",
    "server_error",  # 5xx
    "http_error",  # any other non-2xx
    "bad_answer",  # 2xx that is not what the balancer's source says it answers
)


class AdapterError(Exception):
    """A balancer call failed; ``str()`` is plain words without query or checksum."""

    def __init__(self, reason: str, result: str = "bad_answer") -> None:
        super().__init__(scrub(reason))
        self.result = result if result in RESULTS else "bad_answer"


def scrub(text: str) -> str:
    """The text with every URL query and credential pair (``checksum=…``) replaced."""
    return redact.redact_text(text)


def _cause(exc: requests.RequestException) -> tuple[str, str]:
    if isinstance(exc, requests.Timeout):
        return "timeout", "timed out"
    text = str(exc)
    if "refused" in text.lower():
        return "refused", "connection refused"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return "unreachable", errno.group(1).strip().rstrip(".")
    return "unreachable", "connection failed"


def _status_result(status: int) -> str:
    if status in (401, 403):
        return "unauthorized"
    if status == 404:
        return "not_found"
    if status >= 500:
        return "server_error"
    return "http_error"


def call(
    session: requests.Session,
    health: AdapterHealth,
    method: str,
    url: str,
    *,
    params: dict[str, str] | None = None,
    json_body: object = None,
    timeout: float,
    accept: tuple[int, ...] = (),
) -> requests.Response:
    """One request; a non-2xx answer (other than ``accept``) or a transport error raises.

    The caller counts a 2xx whose body is wrong with :meth:`AdapterHealth.count`
    (``bad_answer``) after raising; here the 2xx is counted ``ok`` only once the caller
    accepted it, so this returns the response uncounted for 2xx and ``accept`` statuses.
    """
    where = f"{method} {redact.redact_url(url)}"
    try:
        response = session.request(method, url, params=params, json=json_body, timeout=timeout)
    except requests.RequestException as exc:
        result, why = _cause(exc)
        health.count(result)
        raise AdapterError(f"{where}: {why}", result) from None
    if 200 <= response.status_code < 300 or response.status_code in accept:
        return response
    result = _status_result(response.status_code)
    health.count(result)
    raise AdapterError(f"{where}: HTTP {response.status_code}", result)


def install_log_redaction() -> None:
    """Make sure every log record is redacted (confscale.redact; idempotent).

    An adapter holds a credential, so it does not rely on the command having done it:
    urllib3 logs every request URL with its query at DEBUG.
    """
    redact.install(logging.getLogger())
