"""confscale planner."""
