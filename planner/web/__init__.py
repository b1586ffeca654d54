"""The planner's Dash page: overview, forecast, nodes, diagnostics (docs/planner-ui.md)."""

from confscale.planner.web.app import create_app, mount, options_from_env
from confscale.planner.web.context import WebOptions

__all__ = ["WebOptions", "create_app", "mount", "options_from_env"]
