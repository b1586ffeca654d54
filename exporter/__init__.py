"""confscale exporter."""
