"""confscale.redact: no log line carries a URL's query, from our loggers or a library's."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import sys
import threading
from collections.abc import Iterator

import pytest
import urllib3

from confscale import redact
from confscale.redact import redact_text, redact_url

SUM = "5f1c0ffee5f1c0ffee5f1c0ffee5f1c0ffee0042"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"http://h:5/api/getMeetings?checksum={SUM}", "http://h:5/api/getMeetings?"),
        (f'"GET /bigbluebutton/api/getMeetings?checksum={SUM} HTTP/1.1" 200 9', "HTTP/1.1"),
        (f"(url=http://h/api/getMeetings?checksum={SUM}): bad", "): bad"),
        (f"checksum={SUM}&x=1", "checksum="),
        (f"https://admin:{SUM}@prom.example:9090/api", "prom.example:9090/api"),
    ],
)
def test_redact_text_removes_queries_and_credentials(text: str, kept: str) -> None:
    cleaned = redact_text(text)
    assert SUM not in cleaned
    assert kept in cleaned
    assert redact_text(cleaned) == cleaned  # idempotent


def test_redact_text_keeps_plain_messages() -> None:
    text = "node=bbb-01 source=bbb is down reason=timeout: no answer within 5s"
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://u:{SUM}@h:8443/p/?checksum={SUM}#f", "https://h:8443/p/"),
        ("http://[::1]:9090/api?x=1", "http://[::1]:9090/api"),
        ("http://h/p", "http://h/p"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@contextlib.contextmanager
def captured_root() -> Iterator[io.StringIO]:
    """A root handler writing to a buffer at DEBUG, redaction installed; all undone after."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    factory, level = logging.getLogRecordFactory(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        redact.install(root)
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)


def test_install_covers_third_party_loggers_tracebacks_and_later_handlers() -> None:
    late = io.StringIO()
    with captured_root() as stream:
        logging.getLogger("some.library").warning("fetching %s", f"http://h/x?checksum={SUM}")
        try:
            raise ValueError(f"bad answer from http://h/x?checksum={SUM}")
        except ValueError:
            logging.getLogger("other").exception("failed")
        # a handler added after install (another command's logging setup) is covered too
        handler = logging.StreamHandler(late)
        logging.getLogger("late").addHandler(handler)
        logging.getLogger("late").error("url=%s", f"http://h/y?checksum={SUM}")
        logging.getLogger("late").removeHandler(handler)
    out = stream.getvalue() + late.getvalue()
    assert "fetching http://h/x?<redacted>" in out
    assert "ValueError: bad answer from http://h/x?<redacted>" in out
    assert "url=http://h/y?<redacted>" in late.getvalue()
    assert SUM not in out


def test_urllib3_header_warning_is_redacted() -> None:
    """urllib3's own "Failed to parse headers (url=…)" warning, provoked by a real socket."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\nok"
            )

    server = threading.Thread(target=serve_one, daemon=True)
    server.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/getMeetings?checksum={SUM}"
    with captured_root() as stream, urllib3.PoolManager(retries=False) as pool:
        pool.request("GET", url, timeout=5)
    server.join(5)
    listener.close()
    out = stream.getvalue()
    assert "Failed to parse headers" in out  # the library did warn, so the test means something
    assert SUM not in out


def test_an_uncaught_exception_in_a_thread_is_logged_redacted() -> None:
    hooks = threading.excepthook, sys.excepthook
    try:
        with captured_root() as stream:

            def crash() -> None:
                raise RuntimeError(f"GET http://h/api/getMeetings?checksum={SUM} failed")

            worker = threading.Thread(target=crash, name="worker-x")
            worker.start()
            worker.join(10)
    finally:
        threading.excepthook, sys.excepthook = hooks
    out = stream.getvalue()
    assert "uncaught exception in thread worker-x" in out
    assert "RuntimeError: GET http://h/api/getMeetings?<redacted> failed" in out
    assert SUM not in out
