"""The planner's HTTP server: waitress, a production WSGI server, in this process.

waitress rather than gunicorn: the planner keeps one PlannerService per process (the
refit and placement threads, the adapters, the last answer), and gunicorn's pre-fork
workers would each run their own copy or need a single worker anyway; waitress serves
the same WSGI app from a pool of threads inside the process that owns the service, and
runs on any platform. The werkzeug development server it replaces says in its own docs
that it is not for production.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import waitress

from confscale.flags import ListenAddress

DEFAULT_THREADS = 8


class PlannerServer:
    """``app`` bound to ``listen`` (port 0: a free one); :meth:`run` serves until a signal."""

    def __init__(
        self, app: Callable[..., Any], listen: ListenAddress, threads: int = DEFAULT_THREADS
    ) -> None:
        self._server = waitress.create_server(
            app,
            host=listen.bind_host,
            port=listen.port,
            threads=threads,
            ident="confscale-planner",
        )

    @property
    def port(self) -> int:
        """The bound port (the first one, when a name resolved to several addresses)."""
        port = getattr(self._server, "effective_port", None)
        if port is None:  # a MultiSocketServer: one socket per resolved address
            port = self._server.effective_listen[0][1]
        return int(port)

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; waitress' loop stops its worker threads then."""

        def stop(_signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt  # waitress' run() ends its loop and threads on this

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            self._server.run()
        finally:
            self._server.close()
