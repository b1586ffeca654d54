"""What every source of the exporter is: the one interface (registry.py lists them).

A source is one kind of thing the exporter polls on a node (a BBB API, a Jitsi bridge,
a host's counters, …). Each one is a ``SourceKind`` defined beside its poll code: the key
it has in the pool file and in the ``source`` label, how its settings are read from the
YAML, how it is polled, and how its figures become metric families.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from confscale.exporter.config import ParseContext
from confscale.exporter.fetch import HttpClient
from prometheus_client.core import Metric


class FamilySet(Protocol):
    """The families of one source for one snapshot, filled node by node."""

    def add(self, figures: Any, labels: dict[str, str], /) -> None:
        """Add one node's figures; ``labels`` (node, pool) is shared, never mutated."""

    def families(self) -> Sequence[Metric]:
        """Every family, in a stable order (empty ones included)."""


class Poll(Protocol):
    def __call__(
        self, client: HttpClient, settings: Any, /, *, timeout: float, max_bytes: int
    ) -> object:
        """One poll; the figures, or PollError with the reason."""


@dataclass(frozen=True)
class SourceKind:
    key: str  # the value of the `source` label (and the node's key in the pool file)
    # YAML value -> frozen settings; None: the source is not enabled on this node
    parse: Callable[[object, str, ParseContext], object | None]
    poll: Poll  # (client, settings) -> figures, or PollError
    families: Callable[[Sequence[str]], FamilySet]  # node label names -> empty family set
    # The pool-file key whose value ``parse`` reads, when not ``key``: a source derived
    # from another one's settings (``bbb_recordings`` reads ``bbb:``).
    config_key: str | None = None
    # Seconds between polls for these settings; None: every cycle. A slower source keeps
    # its last result (and its up/error state) between its polls.
    every: Callable[[Any], float | None] | None = None

    @property
    def yaml_key(self) -> str:
        return self.config_key or self.key

    def interval(self, settings: Any) -> float | None:
        return self.every(settings) if self.every is not None else None
