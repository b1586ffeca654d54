"""Planner page benchmark: what one what-if move costs the page vs refitting.

A what-if callback re-sizes through the engine's ``what_if`` and redraws the cards, the
constraint chart, the fan chart and the server heatmap; the obvious alternative is a
full ``compute_snapshot`` (fit, backtest, forecast) with the changed inputs. Both run on
the same synthetic history (default 12 nodes × 12 weeks, like the demo pool).

    .venv/bin/python -m bench.bench_web [--nodes 12] [--weeks 12] [--moves 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from confscale.planner.snapshot import PlannerConfig, compute_snapshot, what_if
from confscale.planner.synthetic import synthetic_history
from confscale.planner.web.figures import constraint_chart, fan_chart, heatmaps
from confscale.planner.web.view import overview_cards


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_web", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--moves", type=int, default=20, help="what-if moves to time")
    parser.add_argument("--refits", type=int, default=3, help="full recomputes to time")
    args = parser.parse_args(argv)

    history = synthetic_history(nodes=args.nodes, weeks=args.weeks, weekly_growth=1.01)
    config = PlannerConfig()
    snapshot = compute_snapshot(history, config)
    growths = [1.0 + 0.05 * (i % 20) for i in range(args.moves)]

    def move(growth: float) -> None:
        sizing = what_if(snapshot, growth=growth, webcam_share=0.3)
        overview_cards(snapshot, sizing, 28)
        constraint_chart(sizing)
        fan_chart(snapshot, sizing, "4w")
        heatmaps(snapshot, sizing.what_if)

    def cards_only(growth: float) -> None:
        sizing = what_if(snapshot, growth=growth, webcam_share=0.3)
        overview_cards(snapshot, sizing, 28)
        constraint_chart(sizing)

    def timed(fn, values) -> list[float]:
        out = []
        for value in values:
            started = time.perf_counter()
            fn(value)
            out.append(time.perf_counter() - started)
        return out

    overview = timed(cards_only, growths)
    full_page = timed(move, growths)
    refits = []
    for growth in growths[: args.refits]:
        changed = replace(config, what_if=replace(config.what_if, growth=growth))
        started = time.perf_counter()
        compute_snapshot(history, changed)
        refits.append(time.perf_counter() - started)
    med_overview = statistics.median(overview)
    med_page = statistics.median(full_page)
    med_refit = statistics.median(refits)
    print(f"history: {args.nodes} nodes × {args.weeks} weeks ({len(history):,} rows)")
    print(f"what-if → cards + constraint chart : median {med_overview * 1000:7.1f} ms")
    print(f"what-if → every figure of the pages: median {med_page * 1000:7.1f} ms")
    print(f"full recompute (compute_snapshot)  : median {med_refit * 1000:7.1f} ms")
    print(
        f"ratio refit / overview what-if: {med_refit / med_overview:.0f}x; "
        f"refit / all figures: {med_refit / med_page:.1f}x"
    )


if __name__ == "__main__":
    main()
