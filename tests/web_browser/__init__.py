"""The planner page in a real browser (Debian chromium through the system chromedriver).

One ``confscale-planner serve`` on a simulator history serves every page (conftest.py: one
history, one planner and one browser for the whole folder); the failure tests start their
own. Screenshots of each page go under ``test-artifacts/screenshots`` (printed by the
tests). Helpers that read the page: pagetools.py.
"""
