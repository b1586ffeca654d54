"""``--write-config``: the exporter's YAML for the simulated pool (docs/contracts.md)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

LINK_CAPACITY_MBIT = 500


def exporter_config(
    base_url: str,
    bbb: list[str],
    jitsi: list[str],
    secret_file: Path,
    checksum: str,
    pool: str = "sim",
    proxy: str = "",
) -> dict[str, object]:
    """The configuration as data; secrets only by reference to ``secret_file``."""
    base = base_url.rstrip("/")
    nodes: list[dict[str, object]] = []
    for name in bbb:
        nodes.append(
            {
                "name": name,
                "link_capacity_mbit": LINK_CAPACITY_MBIT,
                "bbb": {
                    "url": f"{base}/{name}/bigbluebutton/api/",
                    "secret_file": str(secret_file),
                    "checksum": checksum,
                },
                "host": {"node_exporter": f"{base}/{name}/metrics", "interface": "eth0"},
            }
        )
    for name in jitsi:
        nodes.append(
            {
                "name": name,
                "link_capacity_mbit": LINK_CAPACITY_MBIT,
                "jitsi": {"url": f"{base}/{name}/colibri/stats"},
                "host": {"node_exporter": f"{base}/{name}/metrics", "interface": "eth0"},
            }
        )
    if proxy:  # the cluster proxy: its stub_status only (the simulator has no host page for it)
        nodes.append({"name": proxy, "proxy": {"stub_status": f"{base}/{proxy}/nginx_status"}})
    return {"pool": pool, "interval": "15s", "timeout": "5s", "nodes": nodes}


def write_config(
    path: Path,
    *,
    base_url: str,
    bbb: list[str],
    jitsi: list[str],
    secret: str,
    checksum: str,
    proxy: str = "",
) -> Path:
    """Write FILE and FILE.secret (mode 0600); returns the config path."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret_file = path.with_name(path.name + ".secret")
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    os.chmod(secret_file, 0o600)
    config = exporter_config(base_url, bbb, jitsi, secret_file, checksum, proxy=proxy)
    header = "# written by confscale-sim --write-config for the simulated pool\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path
