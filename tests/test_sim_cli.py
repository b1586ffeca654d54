"""confscale-sim's command line: actionable errors, no secret in help or output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import yaml
from harness import REPO

SECRET = "cli-test-secret-value"


def sim(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONFSCALE_SIM_SECRET": SECRET}
    return subprocess.run(
        [sys.executable, "-m", "confscale.simulator.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_never_shows_the_secret():
    done = sim("--help")
    assert done.returncode == 0
    assert "--exporter.write-config" in done.stdout
    assert SECRET not in done.stdout + done.stderr


def test_write_config_without_listen_writes_and_exits(tmp_path):
    out = tmp_path / "pool.yml"
    done = sim(
        "--pool.nodes=2",
        "--pool.jitsi=1",
        "--bbb.checksum=sha512,sha1",
        "--exporter.base-url=http://sim:1/",
        f"--exporter.write-config={out}",
    )
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr + out.read_text()
    config = yaml.safe_load(out.read_text())
    assert [n["name"] for n in config["nodes"]] == ["bbb-01", "bbb-02", "jvb-01"]
    assert config["nodes"][0]["bbb"] == {
        "url": "http://sim:1/bbb-01/bigbluebutton/api/",
        "secret_file": str(out) + ".secret",
        "checksum": "sha512",
    }
    assert config["nodes"][0]["host"]["node_exporter"] == "http://sim:1/bbb-01/metrics"
    assert config["nodes"][2]["jitsi"]["url"] == "http://sim:1/jvb-01/colibri/stats"


def test_node_names_are_zero_padded_to_the_pool_size(tmp_path):
    out = tmp_path / "pool.yml"
    assert sim("--pool.nodes=1000", f"--exporter.write-config={out}").returncode == 0
    names = [n["name"] for n in yaml.safe_load(out.read_text())["nodes"]]
    assert names[0] == "bbb-0001" and names[-1] == "bbb-1000"


def test_errors_say_what_was_expected(tmp_path):
    bad_fault = sim(
        "--pool.nodes=2",
        "--pool.fault=bbb-07=slow",
        f"--exporter.write-config={tmp_path / 'x.yml'}",
    )
    assert bad_fault.returncode != 0
    assert "bbb-07" in bad_fault.stderr and "bbb-01" in bad_fault.stderr
    bad_mode = sim(
        "--pool.nodes=2",
        "--pool.fault=bbb-01=melt",
        f"--exporter.write-config={tmp_path / 'x.yml'}",
    )
    assert "melt" in bad_mode.stderr and "timeout" in bad_mode.stderr
    bad_flag = sim(
        "--pool.nodes=2", "--pool.fault=bbb-01", f"--exporter.write-config={tmp_path / 'x.yml'}"
    )
    assert "NODE=MODE[:ARG]" in bad_flag.stderr
    bad_checksum = sim("--bbb.checksum=md5", f"--exporter.write-config={tmp_path / 'x.yml'}")
    assert "md5" in bad_checksum.stderr and "sha256" in bad_checksum.stderr
    nothing = sim("--pool.nodes=2")
    assert "--web.listen-address" in nothing.stderr


def test_busy_port_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = sim(f"--web.listen-address=127.0.0.1:{port}", "--pool.nodes=1")
    assert done.returncode == 1
    assert f"127.0.0.1:{port}" in done.stderr
