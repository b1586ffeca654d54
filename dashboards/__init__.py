"""Grafana dashboards for confscale, generated from code (``python -m dashboards.generate``).

The committed JSON under ``dashboards/json/`` is what Grafana loads; a test checks it is
exactly what this package generates, and validates it against Grafana's own schema.
"""
