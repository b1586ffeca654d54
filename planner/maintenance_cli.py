"""``confscale-planner maintenance start|end|list``: talk to the running planner's API.

The planner keeps the state (planner.maintenance); this command only sends the request
with the admin token from ``--web.admin-token-file`` and prints the planner's answer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import requests

from confscale.flags import add_subcommand, duration

DEFAULT_PLANNER = "http://127.0.0.1:9689"


def add_maintenance_command(sub) -> None:
    parser = add_subcommand(
        sub, "maintenance", help="put a node into maintenance or take it out (running planner)"
    )
    parser.add_argument("action", choices=["start", "end", "list"])
    parser.add_argument("node", nargs="?", help="the node (start, end)")
    parser.add_argument(
        "--planner.url",
        dest="planner_url",
        default=DEFAULT_PLANNER,
        help="the running planner (default %(default)s)",
    )
    parser.add_argument(
        "--web.admin-token-file",
        dest="admin_token_file",
        type=Path,
        help="the planner's admin token (start, end)",
    )
    parser.add_argument("--reason", help="why (start; logged and shown)")
    parser.add_argument("--by", help="who (default: $USER)")
    parser.add_argument(
        "--for", dest="duration", type=duration, help="end by itself after this (e.g. 2h)"
    )
    parser.add_argument("--until", help="end by itself at this ISO 8601 time (Z or offset)")
    parser.add_argument(
        "--pool.name", dest="pool", help="the node's pool (label of the maintenance series)"
    )


def cmd_maintenance(args: argparse.Namespace, read_secret) -> dict[str, object]:
    """Send the request; ValueError with the planner's own words when it refuses."""
    import os

    base = args.planner_url.rstrip("/")
    if args.action == "list":
        return _call("GET", f"{base}/api/v1/maintenance", None, None)
    if not args.node:
        raise ValueError(f"maintenance {args.action}: name the node")
    if args.admin_token_file is None:
        raise ValueError("--web.admin-token-file is needed to change maintenance")
    token = read_secret(args.admin_token_file, what="--web.admin-token-file")
    url = f"{base}/api/v1/nodes/{args.node}/maintenance"
    by = args.by or os.environ.get("USER") or "operator"
    if args.action == "end":
        return _call("DELETE", url, token, None, params={"by": by})
    if not args.reason:
        raise ValueError("maintenance start: --reason is required (it is logged and shown)")
    if args.duration is not None and args.until is not None:
        raise ValueError("give --for or --until, not both")
    body: dict[str, object] = {"reason": args.reason, "by": by}
    if args.duration is not None:
        body["until"] = time.time() + args.duration
    elif args.until is not None:
        body["until"] = args.until
    if args.pool:
        body["pool"] = args.pool
    return _call("POST", url, token, body)


def _call(
    method: str,
    url: str,
    token: str | None,
    body: dict | None,
    params: dict | None = None,
) -> dict[str, object]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        response = requests.request(
            method, url, json=body, params=params, headers=headers, timeout=30
        )
    except requests.RequestException as exc:
        raise ValueError(f"planner at {url.split('/api/')[0]}: {type(exc).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": response.text[:200]}
    if response.status_code >= 400:
        raise ValueError(f"planner answered {response.status_code}: {answer.get('error', answer)}")
    return answer
