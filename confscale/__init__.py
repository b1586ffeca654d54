"""confscale: monitoring and capacity planning for pools of BigBlueButton and Jitsi servers.

The installed package is one import namespace: ``confscale.exporter``,
``confscale.planner`` and ``confscale.simulator`` (the repository's top-level folders,
mapped by ``pyproject.toml``), and this package's own modules, which the three commands
share.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("confscale")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
