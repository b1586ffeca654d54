"""No log line carries a URL's query, user or password, whichever library wrote it.

A BBB getMeetings URL never changes, so its ``checksum`` is a lasting credential; urllib3
prints whole URLs in its own warnings (``Failed to parse headers (url=…?checksum=…)``)
and debug lines. Redaction therefore happens at the logging boundary, for every logger:

    import logging
    from confscale import redact

    logging.basicConfig(...)                 # or any handlers, any formatter
    redact.install(logging.getLogger())      # every record, ours and third-party

``redact_url`` cleans one URL for an error message; ``redact_text`` cleans free text.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from urllib.parse import urlsplit, urlunsplit

MARK = "<redacted>"
# user:password@ after a scheme
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@")
# a query: "?" and everything up to a space, a quote or a bracket
_QUERY = re.compile(r"\?[^\s\"'<>()\[\]{}]+")
# credential-looking pairs outside a query (a form body, a header dump)
_PAIR = re.compile(
    r"(?i)\b(checksum|secret|password|passwd|token|api_?key|attendeePW|moderatorPW)"
    r"(\s*=\s*['\"]?)[^\s&'\",;)}\]]+"
)


def redact_url(url: str) -> str:
    """``url`` without user:password, query and fragment (scheme, host, port, path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL we can take apart: fall back to the text rules
        return redact_text(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` with every URL query, URL user:password and credential pair replaced."""
    if "?" not in text and "@" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(rf"\1{MARK}@", text)
    text = _QUERY.sub(f"?{MARK}", text)
    return _PAIR.sub(rf"\1\2{MARK}", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record in place: message, traceback and stack with nothing secret.

    The message is formatted once here (``args`` emptied), and a traceback is rendered
    and cleaned into ``exc_text`` (``exc_info`` dropped, so no formatter renders the raw
    exception again). Idempotent: a record passing twice is cleaned once.
    """

    _FORMATTER = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        clean(record)
        return True


def clean(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record`` in place (see RedactingFilter); returns it."""
    if getattr(record, "_confscale_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the template, drop the arguments
        message = str(record.msg)
    record.msg = redact_text(message)
    record.args = ()
    if record.exc_info:
        record.exc_text = RedactingFilter._FORMATTER.formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    record._confscale_redacted = True
    return record


def install(logger: logging.Logger | None = None) -> None:
    """Redact every record from now on: a filter on each handler of ``logger`` (default
    the root logger) and a record factory, so handlers added later are covered too.
    Python warnings (``py.warnings``) and uncaught exceptions, in any thread, are routed
    through logging so they pass here too (Python would print them straight to stderr).

    Call it again after adding handlers if you like; it never installs anything twice.
    """
    logging.captureWarnings(True)
    _route_uncaught_exceptions()
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "_confscale_redacts", False):

        def redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            return clean(factory(*args, **kwargs))

        redacting_factory._confscale_redacts = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)


def _route_uncaught_exceptions() -> None:
    if getattr(threading.excepthook, "_confscale_redacts", False):
        return
    uncaught = logging.getLogger("confscale.uncaught")

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        uncaught.critical(
            "uncaught exception in thread %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def main_hook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)  # type: ignore[arg-type]
            return
        uncaught.critical("uncaught exception", exc_info=(kind, value, tb))  # type: ignore[arg-type]

    thread_hook._confscale_redacts = True  # type: ignore[attr-defined]
    threading.excepthook = thread_hook
    sys.excepthook = main_hook
