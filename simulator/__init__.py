"""confscale simulator."""
