"""Re-reading the configuration (SIGHUP, ``POST /-/reload``) and how the last try went.

As Prometheus does, the outcome is on ``/metrics``:
``confscale_exporter_config_last_reload_successful`` (1 at start, 0 after a failed
reload until one succeeds) and ``confscale_exporter_config_last_reload_success_timestamp_seconds``
(the start, then each successful reload). A failed reload keeps the running configuration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from confscale.exporter.config import ConfigError, PoolConfig
from prometheus_client.core import GaugeMetricFamily, Metric

from confscale.log import get_logger

log = get_logger("confscale.exporter")


class Reloader:
    """``load`` reads the configuration, ``apply`` puts it into service."""

    def __init__(
        self,
        load: Callable[[], PoolConfig],
        apply: Callable[[PoolConfig], object],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._load = load
        self._apply = apply
        self._clock = clock
        self._lock = threading.Lock()
        self.successful = True  # the configuration the process started with loaded
        self.success_at = clock()

    def reload(self) -> PoolConfig:
        """Load and apply; raises ConfigError (already logged) and keeps the old one."""
        with self._lock:
            try:
                config = self._load()
            except ConfigError as exc:
                self.successful = False
                log.error("reload failed, keeping the old configuration: %s", exc)
                raise
            except Exception as exc:  # a bug must not end a SIGHUP thread in a traceback
                self.successful = False
                frame = exc.__traceback__
                while frame is not None and frame.tb_next is not None:
                    frame = frame.tb_next
                where = (
                    f"{Path(frame.tb_frame.f_code.co_filename).name}:{frame.tb_lineno}"
                    if frame is not None
                    else "?"
                )
                log.error(
                    "reload failed, keeping the old configuration: internal error",
                    extra={"exception": type(exc).__name__, "at": where},
                )
                raise ConfigError(f"internal error ({type(exc).__name__})") from None
            self._apply(config)
            self.successful = True
            self.success_at = self._clock()
            log.info("configuration reloaded", extra={"nodes": len(config.nodes)})
            return config

    def reload_quietly(self) -> None:
        """``reload`` for a signal handler's thread: the failure is logged, nothing raised."""
        try:
            self.reload()
        except ConfigError:
            return

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "confscale_exporter_config_last_reload_successful",
            "1 when the last configuration reload (or the start) succeeded, 0 after a failure.",
        )
        ok.add_metric([], 1 if self.successful else 0)
        yield ok
        when = GaugeMetricFamily(
            "confscale_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (start or reload).",
        )
        when.add_metric([], self.success_at)
        yield when
