"""https sources: the system trust store by default, a CA file, or (asked for) no check.

A real TLS server on 127.0.0.1 with certificates made by openssl; the exporter's own
poll functions fetch from it.
"""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confscale.exporter.bbb import poll_bbb
from confscale.exporter.config import BbbSource, ConfigValueError, Secret, TlsOptions, parse_config
from confscale.exporter.fetch import HttpClient, PollError
from harness import fixture_path, require_tool

BODY = fixture_path("bbb", "getMeetings_apiphp_3meetings_breakout.xml").read_bytes()


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def https_server(cert: Path, key: Path) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/bigbluebutton/api/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    return {name: make_cert(folder, name) for name in ("node", "other")}


def poll(url: str, tls: TlsOptions | None) -> str | int:
    """Meetings seen, or the failure's reason and detail."""
    source = BbbSource(url=url, secret=Secret("tls-test-secret"), checksum="sha256", tls=tls)
    client = HttpClient()
    try:
        return poll_bbb(client, source, timeout=5, max_bytes=1 << 20).meetings
    except PollError as exc:
        return f"{exc.reason}: {exc.detail}"
    finally:
        client.close()


def test_ca_file_trusts_the_node_and_only_it(certs) -> None:
    cert, key = certs["node"]
    with https_server(cert, key) as url:
        assert poll(url, TlsOptions(ca_file=str(cert))) == 3
        # the system store does not know a self-signed node, nor does another CA
        assert poll(url, None) == "connect: TLS handshake failed"
        assert poll(url, TlsOptions(ca_file=str(certs["other"][0]))) == (
            "connect: TLS handshake failed"
        )


def test_insecure_skip_verify_accepts_any_certificate(certs) -> None:
    cert, key = certs["other"]
    with https_server(cert, key) as url:
        assert poll(url, TlsOptions(insecure_skip_verify=True)) == 3


def node(tls: object, url: str = "https://bbb-01.example.org/bigbluebutton/api/") -> dict:
    return {"name": "bbb-01", "jitsi": {"url": url, "tls": tls}}


@pytest.mark.parametrize(
    ("tls", "url", "message"),
    [
        ({"ca_file": "/nonexistent/ca.pem"}, None, "tls.ca_file: /nonexistent/ca.pem is not"),
        ({"insecure_skip_verify": "yes"}, None, "insecure_skip_verify: expected true or false"),
        ({"verify": False}, None, "unknown key(s) verify"),
        ({"insecure_skip_verify": True}, "http://jvb-01:8080/colibri/stats", "need an https URL"),
        ("on", None, "tls: expected a mapping"),
    ],
)
def test_tls_config_errors_name_node_and_key(tls, url, message) -> None:
    data = {"nodes": [node(tls, url or "https://jvb-01.example.org/colibri/stats")]}
    with pytest.raises(ConfigValueError) as caught:
        parse_config(data, "pool.yml", {})
    assert "pool.yml: nodes[0] (node bbb-01): key 'jitsi'" in str(caught.value)
    assert message in str(caught.value)


def test_ca_file_relative_to_the_config_file(tmp_path: Path, certs) -> None:
    (tmp_path / "ca.pem").write_bytes(certs["node"][0].read_bytes())
    data = {"nodes": [node({"ca_file": "ca.pem"})]}
    config = parse_config(data, "pool.yml", {}, base_dir=tmp_path)
    assert config.nodes[0].source("jitsi").tls == TlsOptions(ca_file=str(tmp_path / "ca.pem"))
