"""One log format for every confscale command: logfmt (default) or JSON lines on stderr.

A line carries ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and ``msg``,
then any fields passed as ``extra={...}``::

    ts=2026-12-01T21:30:00.123Z level=info logger=confscale.exporter msg=listening address=http://127.0.0.1:9688

logfmt values with a space, ``=``, a quote or a control character are quoted with
backslash escapes (go-logfmt's rules), so every line parses. No line carries a URL query
or a credential (confscale.redact is installed on the handler, fields are cleaned too).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

from confscale import redact

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
LEVELS["error"] = logging.ERROR
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
_NAMES |= {logging.ERROR: "error", logging.CRITICAL: "error"}
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def get_logger(name: str) -> logging.Logger:
    """The logger for a confscale component (``confscale.exporter``, …)."""
    return logging.getLogger(name)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one line, in order: ts, level, logger, msg, extras, error."""
    stamp = dt.datetime.fromtimestamp(record.created, dt.UTC)
    fields: dict[str, Any] = {
        "ts": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "level": _NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = redact.redact_text(value) if isinstance(value, str) else value
    if record.exc_text:  # redact's filter renders (and cleans) a traceback here
        fields["error"] = record.exc_text
    elif record.exc_info:
        fields["error"] = redact.redact_text(logging.Formatter().formatException(record.exc_info))
    return fields


def logfmt_value(value: object) -> str:
    """One logfmt value: bare when it can be, else quoted with backslash escapes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and not any(c in ' ="\\' or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def logfmt_key(key: str) -> str:
    """A key with the characters logfmt forbids (space, ``=``, quote, controls) removed."""
    clean = "".join(c for c in key if c not in ' ="' and ord(c) > 0x20 and ord(c) != 0x7F)
    return clean or "_"


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        items = record_fields(record).items()
        return " ".join(f"{logfmt_key(k)}={logfmt_value(v)}" for k, v in items)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str, ensure_ascii=False)


def configure_logging(
    level: str = "info", fmt: str = "logfmt", stream: IO[str] | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) as one logfmt or JSON line, with URL
    queries and credentials redacted (confscale.redact) whichever library logged it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    redact.install(root)
