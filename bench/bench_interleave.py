"""Where the 1,000-node cycle's CPU beyond its parts goes: parsing between waits.

bench_exporter times a cycle's parts one by one over bodies already in memory, and their
sum falls short of the cycle's CPU. This bench tells whether the rest is the threads or
the interleaving of network waits with parsing. In one process, over the same 1,000
simulated nodes (frozen clock, about ten 25-attendee meetings each, as bench_exporter):

- the cycle itself, ``Poller.run_cycle``, with 64 workers and with one;
- one thread, parse as you fetch: each getMeetings answer is parsed right after its
  fetch (as a poll does, though a poll feeds libxml2 chunk by chunk as they arrive);
- one thread, fetch then parse: all answers read first, then all parsed (the parts'
  way; the bodies are held, so this is a measurement, not a design);

alternated for ``--rounds`` rounds, CPU by ``time.process_time`` (medians and ranges).

    .venv/bin/python -m bench.bench_interleave [--nodes 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench.simpool import cycle_config, huge_answers_pool, load_average


def measure(rounds: int, runs: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up: connections, caches, the limiter
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.process_time()
            run()
            cpu[name].append(time.process_time() - started)
    return cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--meetings", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from confscale.exporter.bbb import parse_meetings, signed_url
    from confscale.exporter.config import load_config
    from confscale.exporter.memory import keep_freed_memory
    from confscale.exporter.poller import Poller

    keep_freed_memory()  # as confscale-exporter's main does
    with huge_answers_pool(args.nodes, args.meetings) as config_path:
        config = cycle_config(load_config(config_path), args.nodes, 600.0)
        pooled, single = Poller(config, workers=64), Poller(config, workers=1)
        client = single._client
        urls = [signed_url(bbb) for n in config.nodes if (bbb := n.source("bbb"))]

        def get(target: str) -> bytes:
            return client.get(target, timeout=5, max_bytes=16 << 20)[1]

        def as_you_fetch() -> None:
            for target in urls:
                parse_meetings(get(target))

        def fetch_then_parse() -> None:
            for body in [get(target) for target in urls]:
                parse_meetings(body)

        try:
            cpu = measure(
                args.rounds,
                {
                    "cycle, 64 workers (getMeetings + node_exporter)": pooled.run_cycle,
                    "cycle, 1 worker (getMeetings + node_exporter)": single.run_cycle,
                    "one thread, getMeetings parsed as fetched": as_you_fetch,
                    "one thread, getMeetings fetched, then parsed": fetch_then_parse,
                },
            )
        finally:
            pooled.stop()
            single.stop()
    print(
        f"{args.nodes} simulated nodes, ~{args.meetings} meetings x 25 attendees each; "
        f"{args.rounds} alternated rounds; {load_average()}"
    )
    for name, values in cpu.items():
        print(
            f"  {name:<48} CPU median {statistics.median(values):.2f} s "
            f"({min(values):.2f}-{max(values):.2f})"
        )
    names = list(cpu)
    median = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"  1 worker / 64 workers: {median[names[1]] / median[names[0]]:.2f}x")
    print(
        f"  parsed as fetched / fetched, then parsed: {median[names[2]] / median[names[3]]:.2f}x "
        "(the same bytes parsed the same way; only the waits between them differ)"
    )


if __name__ == "__main__":
    main()
