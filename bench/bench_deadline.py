"""What the poll deadline costs per request: HttpClient.fetch vs bare urllib3.

The exporter's fetch puts every exchange under a total deadline (exporter/deadline.py:
a guard on a heap, the connection attached at connect, request and response). The
obvious alternative is urllib3's PoolManager alone, whose timeouts restart on every
byte. Both fetch the same 2 KB answer from a local keep-alive server, sequentially,
in the same run; CPU per request and the ratio are printed.

    .venv/bin/python -m bench.bench_deadline [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3
from confscale.exporter.fetch import HttpClient

BODY = b"<response><returncode>SUCCESS</returncode>" + b" " * 2000 + b"</response>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a BBB node behind nginx
    disable_nagle_algorithm = True  # head and body are separate writes: no 40 ms stall

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        return


def _cpu_per_request(run: object, count: int) -> tuple[float, float]:
    run()  # warm: connection open
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        run()
    return (time.thread_time() - cpu) / count, (time.perf_counter() - wall) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/getMeetings?checksum=x"
    client = HttpClient()
    pool = urllib3.PoolManager(retries=False)
    timeout = urllib3.Timeout(connect=5, read=5)

    def ours() -> None:
        client.fetch(url, timeout=5, max_bytes=1 << 20, sink=lambda chunk: None)

    def bare() -> None:
        response = pool.request("GET", url, preload_content=False, timeout=timeout)
        while response.read1(65536):
            pass
        response.release_conn()

    rows = []
    for _ in range(args.rounds):  # interleaved rounds: a busy machine hits both alike
        rows.append((_cpu_per_request(ours, args.requests), _cpu_per_request(bare, args.requests)))
    client.close()
    server.shutdown()
    print(f"{args.requests} requests per round, {args.rounds} rounds, client thread CPU")
    for (ours_cpu, ours_wall), (bare_cpu, bare_wall) in rows:
        print(
            f"  fetch with deadline {ours_cpu * 1e6:6.1f} us CPU ({ours_wall * 1e6:6.1f} wall)"
            f" | bare urllib3 {bare_cpu * 1e6:6.1f} us CPU ({bare_wall * 1e6:6.1f} wall)"
            f" | ratio {ours_cpu / bare_cpu:.2f}x"
        )
    ratios = sorted(ours[0] / bare[0] for ours, bare in rows)
    print(f"median ratio (ours / bare, CPU): {ratios[len(ratios) // 2]:.2f}x")


if __name__ == "__main__":
    main()
