"""Helpers to run and read a real exporter: shared by the exporter's tests and by other
areas' tests that need one (alerts, dashboards, deploy). This module holds no tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import requests
from harness import Proc, free_port, python_module, running, wait_until
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page keyed by (name, labels)."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return parse_text(response.text)


def parse_text(text: str) -> Samples:
    """Samples of a Prometheus text page keyed by (name, labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of one series, or None when it is absent."""
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    """Every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and wanted <= key}


class Exporter:
    """A running confscale-exporter process."""

    def __init__(self, proc: Proc, url: str) -> None:
        self.proc = proc
        self.url = url

    def metrics(self) -> Samples:
        return scrape(f"{self.url}/metrics")

    def wait_cycles(self, count: int = 1, timeout: float = 30) -> Samples:
        """Wait until ``count`` more poll cycles have ended; returns the last scrape."""

        def finished() -> float:
            return value(self.metrics(), "confscale_exporter_last_cycle_timestamp_seconds") or 0

        start = finished()
        seen: list[float] = [start]

        def advanced() -> Samples | None:
            current = finished()
            if current > seen[-1]:
                seen.append(current)
            return self.metrics() if len(seen) > count else None

        return wait_until(
            advanced, timeout=timeout, interval=0.05, what=f"{count} exporter poll cycle(s)"
        )


@contextlib.contextmanager
def exporter(
    config: Path, *extra: str, env: dict[str, str] | None = None, log_level: str = "debug"
) -> Iterator[Exporter]:
    """confscale-exporter on a free port, ready once /-/healthy answers."""
    port = free_port()
    args = python_module(
        "exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--log.level={log_level}",
        *extra,
    )
    proc = Proc("confscale-exporter", args, cwd=Path(__file__).resolve().parent.parent, env=env)
    url = f"http://127.0.0.1:{port}"
    with running(proc, f"{url}/-/healthy"):
        yield Exporter(proc, url)


def closed_port_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens (a true TCP refusal)."""
    return f"http://127.0.0.1:{free_port()}{path}"
