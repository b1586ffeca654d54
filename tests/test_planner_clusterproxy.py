"""The cluster proxy generator (planner/clusterproxy.py): the pool file the exporter reads
gives the proxy's nginx locations and every BBB node's settings; nginx itself checks and
serves the result (Debian's nginx, a real process on a temp prefix)."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml
from confscale.exporter.config import load_config
from confscale.planner.cli import main as cli_main
from confscale.planner.clusterproxy import PROXY_SNIPPET, ClusterProxyError, generate
from harness import Proc, free_port, require_tool, wait_until


def pool_file(tmp_path: Path, bases: dict[str, str], extra: str = "") -> Path:
    secret = tmp_path / "bbb.secret"
    secret.write_text("not-a-real-secret\n")
    nodes = "".join(
        f"  - name: {name}\n    bbb:\n      url: {base}/bigbluebutton/api/\n"
        f"      secret_file: {secret}\n"
        for name, base in bases.items()
    )
    path = tmp_path / "pool.yml"
    path.write_text(
        "pool: campus\nnodes:\n" + nodes + "  - name: jvb-01\n    jitsi:\n"
        "      url: http://jvb-01.example.org:8080/colibri/stats\n" + extra
    )
    return path


def test_one_location_pair_per_bbb_node_and_each_node_points_at_the_proxy(tmp_path):
    path = pool_file(
        tmp_path, {"bbb-01": "https://bbb-01.example.org", "bbb-02": "https://bbb-02.example.org"}
    )
    files = generate(load_config(path), "https://bbb-proxy.example.org")
    snippet = files[PROXY_SNIPPET]
    assert snippet.count("location ") == 4  # html5client and api for each BBB node
    assert (
        "location /bbb-02/html5client/ {\n  proxy_pass https://bbb-02.example.org/bbb-02/html5client/;"
        in snippet
    )
    assert "jvb-01" not in snippet  # a bridge has no HTML5 client
    web = files["nodes/bbb-02/etc/bigbluebutton/bbb-web.properties"]
    assert "defaultHTML5ClientUrl=https://bbb-proxy.example.org/bbb-02/html5client/join" in web
    assert "presentationBaseURL=https://bbb-02.example.org/bigbluebutton/presentation" in web
    html5 = yaml.safe_load(files["nodes/bbb-02/etc/bigbluebutton/bbb-html5.yml"])
    assert html5["public"]["app"]["basename"] == "/bbb-02/html5client"
    assert html5["public"]["kurento"]["wsUrl"] == "wss://bbb-02.example.org/bbb-webrtc-sfu"
    assert "bbb-proxy.example.org" in files["nodes/bbb-01/etc/bigbluebutton/etherpad.json"]
    assert not any(p.startswith("nodes/jvb-01/") for p in files)


def test_bad_input_names_file_node_and_key(tmp_path):
    path = pool_file(tmp_path, {"bbb-01": "https://bbb-01.example.org"})
    pool = load_config(path)
    with pytest.raises(ClusterProxyError, match=r"--proxy\.url"):
        generate(pool, "https://bbb-proxy.example.org/some/path")
    with pytest.raises(ClusterProxyError, match=r"--proxy\.url"):
        generate(pool, "ftp://bbb-proxy")
    bad = pool_file(tmp_path, {"bbb:01": "https://bbb-01.example.org"})
    with pytest.raises(
        ClusterProxyError, match=r"pool\.yml: nodes\[0\] \(node bbb:01\): key 'name'"
    ):
        generate(load_config(bad), "https://bbb-proxy.example.org")


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # answers with its own name and the path it was asked for
        body = f"{self.server.name} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_nginx_accepts_the_snippet_and_routes_each_node_to_its_server(tmp_path):
    nginx = require_tool("nginx")
    upstreams = []
    for name in ("bbb-01", "bbb-02"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        upstreams.append(server)
    try:
        bases = {s.name: f"http://127.0.0.1:{s.server_port}" for s in upstreams}  # type: ignore[attr-defined]
        path = pool_file(tmp_path, bases)
        out = tmp_path / "out"
        done = subprocess.run(
            [sys.executable, "-m", "confscale.planner.cli", "cluster-proxy",
             "--config.file", str(path), "--proxy.url", "https://bbb-proxy.example.org",
             "--output.dir", str(out)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log stderr;\n"
            "events { worker_connections 64; }\nhttp {\n  access_log off;\n"
            + "".join(
                f"  {d}_temp_path {tmp_path}/{d};\n"
                for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  server {{\n    listen 127.0.0.1:{port};\n"
            f"    include {out / PROXY_SNIPPET};\n  }}\n}}\n"
        )
        check = subprocess.run(
            [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        assert "syntax is ok" in check.stderr
        with Proc("nginx-cluster-proxy", [nginx, "-e", "stderr", "-p", tmp_path, "-c", conf]):
            url = f"http://127.0.0.1:{port}/bbb-02/html5client/join?x=1"
            answer = wait_until(lambda: requests.get(url, timeout=2), timeout=30, what=url)
            assert answer.text == "bbb-02 /bbb-02/html5client/join?x=1"
            api = requests.get(f"http://127.0.0.1:{port}/bbb-01/bigbluebutton/api/stuns", timeout=5)
            assert api.text == "bbb-01 /bigbluebutton/api/stuns"
            other = requests.get(f"http://127.0.0.1:{port}/bbb-03/html5client/", timeout=5)
            assert other.status_code in (403, 404) and "bbb-0" not in other.text  # no node
    finally:
        for server in upstreams:
            server.shutdown()
            server.server_close()


def test_cli_error_names_the_problem_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "pool.yml"
    path.write_text(
        "nodes:\n  - name: jvb-01\n    jitsi:\n      url: http://jvb:8080/colibri/stats\n"
    )
    out = tmp_path / "out"
    code = cli_main(
        ["cluster-proxy", "--config.file", str(path), "--proxy.url", "https://p.example.org",
         "--output.dir", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "no node has a 'bbb' source" in err and str(path) in err
    assert not out.exists()
