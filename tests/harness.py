"""Real processes for the tests: the simulator, Prometheus, Alertmanager, node_exporter.

Everything binds to 127.0.0.1 on a free port, logs to a file under the artifacts folder,
and is stopped by the test that started it. Under ``CI=true`` a missing tool fails the
test instead of skipping it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # real BBB answers, provenance in bbb/README.md
ARTIFACTS = Path(os.environ.get("CONFSCALE_TEST_ARTIFACTS", REPO / "test-artifacts"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """Path of a program the test needs; a failure under CI, a skip elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: run `bash scripts/install-debian-deps.sh test` as root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def fixture_path(*parts: str) -> Path:
    """A file from tests/fixtures (the real BBB answers); fails if it is gone."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture missing: {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``check`` until it returns a truthy value; bounded in time."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:  # the thing we wait for may not be up yet
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}: {last_error}")


def wait_http(url: str, *, timeout: float = 30.0) -> requests.Response:
    """Wait until ``url`` answers 200."""

    def ok() -> requests.Response | None:
        response = requests.get(url, timeout=2)
        return response if response.status_code == 200 else None

    return wait_until(ok, timeout=timeout, what=url)


def artifacts_dir(name: str) -> Path:
    path = ARTIFACTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


class Proc:
    """A child process with its output in a log file; stop() always reaps it."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = artifacts_dir("logs") / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **(env or {})}
        self.popen = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log.close()
        return self.popen.returncode

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def python_module(module: str, *args: str) -> list[str]:
    """Argument vector running one of our packages with this interpreter."""
    return [sys.executable, "-m", module, *args]


@contextlib.contextmanager
def running(proc: Proc, ready_url: str, *, timeout: float = 30.0) -> Iterator[Proc]:
    """Stop ``proc`` on exit; fail with its log if it never becomes ready."""
    try:
        try:
            wait_http(ready_url, timeout=timeout)
        except TimeoutError as exc:
            raise AssertionError(
                f"{proc.name} did not start: {exc}\n--- log ---\n{proc.log()}"
            ) from exc
        yield proc
    finally:
        proc.stop()


# --- Prometheus ------------------------------------------------------------------------


@contextlib.contextmanager
def prometheus(
    config: str, workdir: Path, *, extra_args: Sequence[str] = (), storage: Path | None = None
) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1 with ``config`` (YAML text); yields its base URL."""
    binary = require_tool("prometheus")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(config)
    args = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={storage or workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
        *extra_args,
    ]
    url = f"http://127.0.0.1:{port}"
    with running(Proc("prometheus", args, cwd=workdir), f"{url}/-/ready", timeout=60):
        yield url


def sim_history(out: Path, *, end: str, weeks: int, nodes: int, seed: int) -> None:
    """``confscale-sim history`` into ``out`` (its suffix picks the format: .om, .csv, …)."""
    subprocess.run(
        python_module(
            "confscale.simulator.cli",
            "history",
            *("--history.weeks", str(weeks), "--pool.nodes", str(nodes), "--model.seed", str(seed)),
            *("--history.end", end, "--output.file", str(out)),
        ),
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )


def backfill(openmetrics: Path, data: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics``: the file's samples as TSDB blocks
    in ``data`` (blocks of up to three weeks), for a Prometheus started on ``data``."""
    done = subprocess.run(
        [
            require_tool("promtool"),
            *("tsdb", "create-blocks-from", "openmetrics", "--quiet"),
            "--max-block-duration=504h",
            str(openmetrics),
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"promtool create-blocks-from {openmetrics}:\n{done.stderr}"


@contextlib.contextmanager
def backfilled_prometheus(openmetrics: Path, workdir: Path) -> Iterator[str]:
    """A real Prometheus serving the samples of ``openmetrics`` (backfilled before it
    starts, kept by a 10-year retention however old they are); yields its base URL."""
    data = workdir / "data"
    backfill(openmetrics, data)
    with prometheus(
        "global: {}\n", workdir, storage=data, extra_args=["--storage.tsdb.retention.time=10y"]
    ) as url:
        yield url


@contextlib.contextmanager
def alertmanager(config_file: Path, workdir: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 (no clustering); yields its base URL."""
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(Proc("alertmanager", args, cwd=workdir), f"{url}/-/ready", timeout=60):
        yield url


@contextlib.contextmanager
def node_exporter() -> Iterator[str]:
    """The real Debian prometheus-node-exporter; yields its /metrics URL."""
    binary = require_tool("prometheus-node-exporter")
    port = free_port()
    args = [binary, f"--web.listen-address=127.0.0.1:{port}"]
    url = f"http://127.0.0.1:{port}/metrics"
    with running(Proc("node-exporter", args), url):
        yield url


def prom_query(base_url: str, expr: str, **params: Any) -> list[dict[str, Any]]:
    """Instant query; returns the result vector (raises on a Prometheus error)."""
    response = requests.get(
        f"{base_url}/api/v1/query", params={"query": expr, **params}, timeout=10
    )
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"query {expr!r} failed: {body}")
    return body["data"]["result"]


# --- the pool simulator ----------------------------------------------------------------


@contextlib.contextmanager
def simulator(
    *,
    nodes: int = 3,
    jitsi: int = 0,
    secret: str = "sim-secret",  # noqa: S107 - a test pool's secret, not a credential
    seed: int = 1,
    frozen: bool = True,
    speed: float = 60,
    checksum: str = "sha256",
    faults: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> Iterator[Any]:
    """Start confscale-sim on a free 127.0.0.1 port; yields a handle with .url,
    .node_url(name), .truth(), .set_fault(node, mode, arg=None), .clear_faults(node=None),
    .advance(seconds), .write_config(path) (runs --exporter.write-config against the same pool
    and returns the path) and .names (BBB then Jitsi node names)."""
    from confscale.simulator.admin import SimPool

    port = free_port()
    pool_args = [
        f"--pool.nodes={nodes}",
        f"--pool.jitsi={jitsi}",
        f"--model.seed={seed}",
        f"--clock.speed={speed}",
        f"--bbb.checksum={checksum}",
        *extra_args,
    ]
    if frozen:
        pool_args.append("--clock.frozen")
    for fault in faults:
        pool_args.append(f"--pool.fault={fault}")
    # the secret goes through the environment so it never shows in a process listing
    env = {"CONFSCALE_SIM_SECRET": secret}
    args = python_module(
        "confscale.simulator.cli", f"--web.listen-address=127.0.0.1:{port}", *pool_args
    )
    url = f"http://127.0.0.1:{port}"
    with running(Proc("confscale-sim", args, cwd=REPO, env=env), f"{url}/_admin/health"):
        handle = SimPool(url, secret=secret, checksum=checksum, serve_args=pool_args)
        try:
            yield handle
        finally:
            handle.close()
