"""A client for a running simulator's admin API (tests, benches and the demo use it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from confscale.simulator import bbbapi


class SimPool:
    """Handle on a running ``confscale-sim``: URLs, truth, faults and the clock."""

    def __init__(
        self,
        url: str,
        *,
        names: list[str] | None = None,
        secret: str = "",
        checksum: str = "sha256",
        serve_args: list[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        first = checksum.split(",")[0].strip().lower()
        self.checksum = "sha256" if first in ("", "all") else first
        self.timeout = timeout
        self._serve_args = serve_args or []
        self._session = requests.Session()
        self.names = names if names is not None else [n["name"] for n in self.nodes()]

    def _get(self, path: str) -> Any:
        response = self._session.get(f"{self.url}{path}", timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def nodes(self) -> list[dict[str, str]]:
        return self._get("/_admin/nodes")

    def node_url(self, name: str) -> str:
        """Base URL of one node (``…/NAME``); add ``/bigbluebutton/api/`` or ``/metrics``."""
        return f"{self.url}/{name}"

    def api_url(
        self,
        name: str,
        call: str,
        params: dict[str, str] | None = None,
        algorithm: str | None = None,
    ) -> str:
        """A signed BBB API URL for one node."""
        query = bbbapi.encode(params or {})
        signed = bbbapi.sign(call, query, self.secret, algorithm or self.checksum)
        return f"{self.node_url(name)}/bigbluebutton/api/{signed}"

    def truth(self, *nodes: str) -> dict[str, Any]:
        """Ground truth of the current simulated instant (all nodes, or those named)."""
        query = "&".join(f"node={n}" for n in nodes)
        return self._get(f"/_admin/truth?{query}" if query else "/_admin/truth")

    def now(self) -> float:
        return float(self._get("/_admin/clock")["now"])

    def faults(self) -> dict[str, Any]:
        return self._get("/_admin/faults")

    def set_fault(self, node: str, mode: str, arg: object = None) -> dict[str, Any]:
        response = self._session.post(
            f"{self.url}/_admin/faults",
            timeout=self.timeout,
            json={"node": node, "mode": mode, "arg": arg},
        )
        if response.status_code != 200:
            raise ValueError(f"set_fault({node}, {mode}) failed: {response.text}")
        return response.json()

    def clear_faults(self, node: str | None = None) -> None:
        params = {"node": node} if node else {}
        response = self._session.delete(
            f"{self.url}/_admin/faults", params=params, timeout=self.timeout
        )
        response.raise_for_status()

    def advance(self, seconds: float) -> float:
        """Move the simulated clock forward; returns the new simulated time."""
        response = self._session.post(
            f"{self.url}/_admin/clock", json={"advance": seconds}, timeout=self.timeout
        )
        response.raise_for_status()
        return float(response.json()["now"])

    def write_config(self, path: Path | str) -> Path:
        """Run ``confscale-sim --exporter.write-config`` for this same pool; returns the path."""
        path = Path(path)
        args = [
            sys.executable,
            "-m",
            "confscale.simulator.cli",
            *self._serve_args,
            "--exporter.base-url",
            self.url,
            "--exporter.write-config",
            str(path),
        ]
        env = {**os.environ, "CONFSCALE_SIM_SECRET": self.secret}
        done = subprocess.run(  # noqa: S603 - our own CLI, argument list
            args, capture_output=True, text=True, timeout=60, check=False, env=env
        )
        if done.returncode != 0:
            raise RuntimeError(f"--exporter.write-config failed: {done.stderr.strip()}")
        return path

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SimPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
