"""Shared fixtures. Process helpers live in harness.py (one way to start a real program)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness


def pytest_report_header(config):
    return [f"confscale test artifacts (logs, screenshots): {harness.ARTIFACTS}"]
