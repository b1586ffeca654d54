"""confscale benchmarks: each prints its figures and a ratio against the obvious alternative."""
