"""Write (or check) the committed dashboard JSON: ``python -m dashboards.generate [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from dashboards import capacity, health, node_detail, pool_overview
from dashboards.panels import Json

JSON_DIR = Path(__file__).resolve().parent / "json"
BUILDERS: tuple[tuple[str, Callable[[], Json]], ...] = (
    ("pool-overview.json", pool_overview.build),
    ("node-detail.json", node_detail.build),
    ("capacity.json", capacity.build),
    ("health.json", health.build),
)


def render(board: Json) -> str:
    """The committed text of one dashboard (stable key order, trailing newline)."""
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name → JSON text for every dashboard."""
    return {name: render(build()) for name, build in BUILDERS}


def stale_files(directory: Path = JSON_DIR) -> list[str]:
    """Names of committed files that differ from (or are missing for) the generator's output."""
    stale = []
    for name, text in generated().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the committed JSON differs from the generator",
    )
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="output folder")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            print(
                f"{args.out / name}: differs from the generator; "
                "run `python -m dashboards.generate`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generated().items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
