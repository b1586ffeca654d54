"""``confscale-demo``: a time-accelerated simulated pool with the exporter config beside it.

For now only the pool; later the exporter and the planner join the same command.
Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from simulator.cli import DEFAULT_START, parse_listen, parse_time, run_forever
from simulator.config_writer import write_config
from simulator.pool import Pool, SimClock
from simulator.server import Settings, serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="confscale-demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--listen",
        type=parse_listen,
        default=("127.0.0.1", 8090),
        help="HOST:PORT of the simulated pool (default 127.0.0.1:8090)",
    )
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--jitsi", type=int, default=4)
    p.add_argument(
        "--speed",
        type=float,
        default=600.0,
        help="simulated seconds per wall second (default 600: a day in 2.4 min)",
    )
    p.add_argument("--start", type=parse_time, default=parse_time(DEFAULT_START))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--config",
        type=Path,
        default=Path("var/demo/exporter.yml"),
        help="where to write the exporter config (default var/demo/exporter.yml)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    clock = SimClock(args.start, speed=args.speed)
    pool = Pool(nodes=args.nodes, jitsi=args.jitsi, seed=args.seed, clock=clock)
    secret = secrets.token_hex(16)  # fresh per run; only ever written to the 0600 file
    host, port = args.listen
    try:
        server = serve(pool, Settings(secret, ("sha1", "sha256", "sha384", "sha512")), host, port)
    except OSError as exc:
        print(
            f"confscale-demo: cannot listen on {host}:{port}: {exc} (try --listen)", file=sys.stderr
        )
        return 1
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host}:{bound_port}"
    config = write_config(
        args.config,
        base_url=url,
        bbb=pool.bbb_names,
        jitsi=pool.jitsi_names,
        secret=secret,
        checksum="sha256",
    )
    first = pool.names[0]
    print(
        f"confscale demo: {len(pool.bbb_names)} BBB nodes, {len(pool.jitsi_names)} Jitsi "
        f"bridges, {args.speed:g} simulated seconds per second",
        flush=True,
    )
    print(f"  pool truth       {url}/_admin/truth")
    print(f"  node metrics     {url}/{first}/metrics")
    print(f"  BBB API          {url}/{first}/bigbluebutton/api/")
    if pool.jitsi_names:
        print(f"  JVB stats        {url}/{pool.jitsi_names[0]}/colibri/stats")
    print(f"  exporter config  {config} (secret in {config.name}.secret)")
    print("Ctrl-C stops it.", flush=True)
    code = run_forever(server, url)
    print("confscale demo stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
