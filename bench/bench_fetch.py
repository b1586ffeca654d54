"""CPU of one HTTP exchange: the exporter's HttpClient, its urllib3 path, a bare socket GET.

Measures what is left to take in a cycle's fetch (issue #18): the 1,000-node pool's 2,000
exchanges (getMeetings of ~75 KB and the node_exporter page) from the pool simulator on
127.0.0.1, in one thread, through ``exporter.fetch.HttpClient`` as it polls ``http://``
(exporter/plainhttp.py, with the total deadline, the caps and the strict header checks),
through the same client's urllib3 path (what every exchange used before, and what
``https://`` uses: urllib3 + http.client with the same checks), and through a bare
HTTP/1.1 GET on one kept-alive socket (status line, a dict of headers, Content-Length or
chunked body; none of the deadline, caps or checks). The bare GET is a floor, not an
alternative to ship: it says how much of an exchange is the client's Python.

    .venv/bin/python -m bench.bench_fetch [--nodes 1000]     # ~1 min
"""

from __future__ import annotations

import argparse
import socket
import time
from urllib.parse import urlsplit

from bench.simpool import huge_answers_pool, load_average

MAX_HEAD = 64 * 1024


def _bare_get(sock: socket.socket, url: str) -> bytes:
    """One GET on a kept-alive socket: the least Python an exchange can cost."""
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: identity\r\n"
        "User-Agent: bench\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > MAX_HEAD:
            raise SystemExit("the simulator closed the connection or sent a huge head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        received, got = [body], len(body)
        while got < length:
            chunk = sock.recv(min(65536, length - got))
            received.append(chunk)
            got += len(chunk)
        return b"".join(received)
    decoded = []
    while True:  # chunked
        while b"\r\n" not in body:
            body += sock.recv(65536)
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(body) < size + 2:
            body += sock.recv(65536)
        if size == 0:
            return b"".join(decoded)
        decoded.append(body[:size])
        body = body[size + 2 :]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--meetings", type=int, default=10)
    args = parser.parse_args(argv)
    from confscale.exporter.bbb import signed_url
    from confscale.exporter.config import load_config
    from confscale.exporter.fetch import HttpClient

    with huge_answers_pool(args.nodes, args.meetings) as config_path:
        config = load_config(config_path)
        urls = []
        for node in config.nodes:
            bbb, host = node.source("bbb"), node.source("host")
            if bbb is not None:
                urls.append(signed_url(bbb))
            if host is not None and host.node_exporter is not None:
                urls.append(host.node_exporter)
        client = HttpClient(connections_per_host=4, hosts=2 * len(urls))
        first = urlsplit(urls[0])
        sock = socket.create_connection((first.hostname, first.port), timeout=10)
        try:
            sizes = {}
            for target in urls:  # warm-up: connections, and both bodies must agree
                sizes[target] = len(client.get(target, timeout=10, max_bytes=16 << 20)[1])
                if len(_bare_get(sock, target)) != sizes[target]:
                    raise SystemExit("the bare GET read a different body")
            started = time.process_time()
            for target in urls:
                client.get(target, timeout=10, max_bytes=16 << 20)
            ours = (time.process_time() - started) / len(urls)
            client._plain_http = False  # the urllib3 path, same checks
            for target in urls[:64]:  # its own keep-alive connections, warm
                client.get(target, timeout=10, max_bytes=16 << 20)
            started = time.process_time()
            for target in urls:
                client.get(target, timeout=10, max_bytes=16 << 20)
            pooled = (time.process_time() - started) / len(urls)
            started = time.process_time()
            for target in urls:
                _bare_get(sock, target)
            bare = (time.process_time() - started) / len(urls)
        finally:
            sock.close()
            client.close()
    mean_kb = sum(sizes.values()) / len(sizes) / 1e3
    print(
        f"{len(urls)} exchanges (mean body {mean_kb:.0f} KB) in one thread, CPU per exchange: "
        f"HttpClient {ours * 1e3:.3f} ms, its urllib3 path {pooled * 1e3:.3f} ms "
        f"({pooled / ours:.1f}x the plain path), bare keep-alive socket GET {bare * 1e3:.3f} ms "
        f"(HttpClient / bare: {ours / bare:.1f}x); over the pool: {ours * len(urls):.2f} s, "
        f"{pooled * len(urls):.2f} s, {bare * len(urls):.2f} s; {load_average()}"
    )


if __name__ == "__main__":
    main()
