"""Thin page modules: each has ``PATH``, ``NAME``, ``layout(ctx)`` and ``register(app, ctx)``."""

from confscale.planner.web.pages import diagnostics, forecast, nodes, overview

PAGES = (overview, forecast, nodes, diagnostics)

__all__ = ["PAGES"]
