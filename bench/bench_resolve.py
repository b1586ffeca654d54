"""What looking a host name up inside the poll's deadline costs: Resolver vs getaddrinfo.

The exporter looks a name up on one of the Resolver's threads and waits for it with the
time its poll has left (exporter/resolve.py); the obvious alternative is calling the
system's getaddrinfo in the worker itself, which cannot be bounded. Both look up the
same name (default ``localhost``, answered from /etc/hosts as a cached name would be),
sequentially, in interleaved rounds of the same run; wall time and the calling thread's
CPU per lookup and the ratio are printed. A lookup happens once per new connection:
keep-alive connections do not repeat it.

    .venv/bin/python -m bench.bench_resolve [--name localhost] [--lookups 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

from confscale.exporter.resolve import Resolver, system_lookup


def _per_lookup(run: object, count: int) -> tuple[float, float]:
    run()  # warm: the thread started, the name in the system's caches
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(count):
        run()
    return (time.perf_counter() - wall) / count, (time.thread_time() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="localhost")
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    resolver = Resolver()

    def ours() -> None:
        resolver.resolve(args.name, 80, 5.0)

    def direct() -> None:
        system_lookup(args.name, 80)

    rows = [
        (_per_lookup(ours, args.lookups), _per_lookup(direct, args.lookups))
        for _ in range(args.rounds)  # interleaved: a busy machine hits both alike
    ]
    resolver.close()
    print(f"{args.lookups} lookups of {args.name!r} per round, {args.rounds} rounds")
    for (ours_wall, ours_cpu), (direct_wall, direct_cpu) in rows:
        print(
            f"  Resolver {ours_wall * 1e6:6.1f} us wall ({ours_cpu * 1e6:5.1f} caller CPU)"
            f" | getaddrinfo {direct_wall * 1e6:6.1f} us wall ({direct_cpu * 1e6:5.1f} CPU)"
            f" | ratio {ours_wall / direct_wall:.2f}x"
        )
    ratios = sorted(ours[0] / direct[0] for ours, direct in rows)
    print(f"median ratio (Resolver / getaddrinfo, wall): {ratios[len(ratios) // 2]:.2f}x")


if __name__ == "__main__":
    main()
