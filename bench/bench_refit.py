"""The planner's refit against the refit of an earlier commit, same history, same run.

Exports ``--against`` (a commit) with ``git archive`` into a temporary folder laid out as
the ``confscale`` package (its ``planner/``, ``exporter/``, ``simulator/`` linked under
``confscale/``), writes one synthetic history (``--weeks`` × ``--nodes``) as Parquet,
then alternates processes — this tree, the old one — ``--rounds`` times; each process
loads the history and runs ``compute_snapshot`` twice: the first includes importing
statsmodels (once per process), the second is a running service's steady state.
Prints each run and the best of each, with the ratios.

    nice .venv/bin/python -m bench.bench_refit --against a40cbae
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time
from confscale.planner.history import load_history
from confscale.planner.snapshot import PlannerConfig, compute_snapshot
history = load_history(sys.argv[1])
times = []
for _ in range(2):
    started = time.perf_counter()
    snapshot = compute_snapshot(history, PlannerConfig())
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "servers": snapshot.servers_needed}))
"""


def export(commit: str, into: Path) -> Path:
    """The commit's tree as an importable ``confscale`` package under ``into``."""
    tree = into / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    package = into / "path" / "confscale"
    package.parent.mkdir()
    subprocess.run(["cp", "-r", str(tree / "confscale"), str(package)], check=True)
    for part in ("exporter", "planner", "simulator"):
        (package / part).symlink_to(tree / part)
    return into / "path"


def run(path: Path | None, history: Path, label: str) -> dict:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path)  # first on sys.path: before the editable install
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(history)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=history.parent,  # not the repository: its confscale/ would shadow the old one
        timeout=1800,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    load = os.getloadavg()[0]
    first, warm = figures["times"]
    print(f"{label:6} first {first:6.2f} s  steady {warm:6.2f} s  load {load:4.1f}  "
          f"servers {figures['servers']}", flush=True)  # fmt: skip
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_refit")
    parser.add_argument("--against", required=True, help="the commit to compare with")
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from confscale.planner.synthetic import synthetic_history

    with tempfile.TemporaryDirectory() as tmp:
        old = export(args.against, Path(tmp) / "old")
        history = Path(tmp) / "history.parquet"
        synthetic_history(nodes=args.nodes, weeks=args.weeks, seed=1).to_parquet(history)
        runs: dict[str, list[list[float]]] = {"now": [], "before": []}
        for _ in range(args.rounds):
            runs["now"].append(run(None, history, "now")["times"])
            runs["before"].append(run(old, history, "before")["times"])
    best = {k: [min(r[i] for r in v) for i in (0, 1)] for k, v in runs.items()}
    print(
        f"best of {args.rounds}: first {best['now'][0]:.2f} s vs {best['before'][0]:.2f} s "
        f"({best['now'][0] / best['before'][0]:.2f}x), steady {best['now'][1]:.2f} s vs "
        f"{best['before'][1]:.2f} s ({best['now'][1] / best['before'][1]:.2f}x)"
    )


if __name__ == "__main__":
    main()
