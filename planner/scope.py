"""Which nodes one planning unit covers: a pool, or a tagged sub-pool of it.

A planner plans one or more *units*; each has its own forecast, sizing and placement
(planner.pools). A unit is a pool (``campus``; series labelled ``pool="campus"``) or a
tagged sub-pool of a pool (``campus/lecture``: the pool's nodes whose
``confscale_node_info`` lists the tag, a Scalelite tag or a b3lb cluster). Backfilled or
older data may carry no ``pool`` label at all: that is the unnamed pool (``pool=None``,
every series), which is what a single-pool planner has always planned.

The Prometheus side is one wrapper, :class:`ScopedClient`: it adds the unit's label
matchers to every contract selector of every query (the queries of planner.prometheus
stay as they are), so history, pool peaks and current readings all see only the unit's
nodes. A tag is turned into ``node=~"a|b"`` from the info series at each load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

# Names the exporter config allows for pools and tags (exporter.config._LABEL_WORD).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# A selector of the metric contract: our metric and recording-rule names, optionally with
# a matcher block. Function names (max_over_time, label_replace …) never start like this.
_SELECTOR = re.compile(
    r"(?<![\w:])((?:bbb|jitsi|confscale)_[A-Za-z0-9_]*|node:[A-Za-z0-9_:]+)(\{[^}]*\})?"
)
INFO = "confscale_node_info"


class ScopeError(ValueError):
    """A pool or tag name that cannot name a unit (the message says which)."""


@dataclass(frozen=True)
class Scope:
    """One planning unit: ``pool`` (None: the unnamed pool) and optionally a ``tag``."""

    pool: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        for what, value in (("pool", self.pool), ("tag", self.tag)):
            if value is not None and value != "" and not NAME.match(value):
                raise ScopeError(
                    f"{what} {value[:70]!r}: expected letters, digits, - _ . (at most 63)"
                )
        if self.tag == "":
            raise ScopeError("tag: expected a tag name, got an empty one")

    @property
    def name(self) -> str:
        """``campus``, ``campus/lecture``; ``""`` (``/lecture``) for the unnamed pool."""
        pool = self.pool or ""
        return f"{pool}/{self.tag}" if self.tag else pool

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``campus`` or ``campus/lecture`` (the ``--pool`` flag and unit names)."""
        pool, sep, tag = text.partition("/")
        return cls(pool=pool or None, tag=tag if sep else None)

    def pool_matcher(self) -> str:
        """``pool="campus"``; nothing for the unnamed pool (every series)."""
        return "" if self.pool is None else f"pool={_quote(self.pool)}"

    def labels(self) -> dict[str, str]:
        """The labels the planner's own series carry for this unit."""
        labels = {} if self.pool is None else {"pool": self.pool}
        if self.tag:
            labels["tag"] = self.tag
        return labels


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_regex(tag: str) -> str:
    """The ``tags`` label regex matching one whole tag (``,T,`` anywhere)."""
    return _quote(".*," + re.escape(tag) + ",.*")


def nodes_matcher(nodes: Iterable[str]) -> str:
    """``node=~"a|b"`` (RE2, anchored by PromQL); matches nothing for no nodes."""
    names = sorted(set(nodes))
    if not names:
        return 'node="__no_node_has_this_tag__"'
    return "node=~" + _quote("|".join(re.escape(n) for n in names))


def scoped(expr: str, matchers: str) -> str:
    """``expr`` with ``matchers`` added to every contract selector in it."""
    if not matchers:
        return expr

    def add(match: re.Match[str]) -> str:
        name, block = match.group(1), match.group(2)
        inner = block[1:-1].strip() if block else ""
        return f"{name}{{{inner + ',' if inner else ''}{matchers}}}"

    return _SELECTOR.sub(add, expr)


def tag_members_query(scope: Scope, window: str = "1h") -> str:
    """The nodes of ``scope``'s pool that carry its tag (the info series of the last hour)."""
    tags = f"tags=~{tag_regex(scope.tag or '')}"
    matchers = ",".join(m for m in (scope.pool_matcher(), tags) if m)
    return f"max by (node) (last_over_time({INFO}{{{matchers}}}[{window}]))"


# Pools that have BBB data (the planner sizes BBB nodes) over the last day, and the tags
# each pool's nodes carry.
POOLS_QUERY = "count by (pool) (last_over_time(bbb_meetings_participants[1d]))"
TAGS_QUERY = f"count by (pool, tags) (last_over_time({INFO}[1h]))"


def units_from(pools: Sequence[dict], tags: Sequence[dict]) -> list[Scope]:
    """Units from the discovery queries' answers: every pool, then its tags' sub-pools.

    With only the unnamed pool (no ``pool`` label anywhere) there is one unit, every
    series; an unnamed pool beside named ones is selected by ``pool=""``.
    """
    names = sorted({item.get("metric", {}).get("pool", "") for item in pools})
    # A pool label the exporter would refuse (written by something else) is not planned.
    names = [name for name in names if name == "" or NAME.match(name)]
    units = [Scope()] if names == [""] else [Scope(pool=name) for name in names]
    by_pool: dict[str, set[str]] = {}
    for item in tags:
        metric = item.get("metric", {})
        pool = metric.get("pool", "")
        for tag in str(metric.get("tags", "")).split(","):
            if tag and NAME.match(tag):
                by_pool.setdefault(pool, set()).add(tag)
    out: list[Scope] = []
    for unit in units:
        out.append(unit)
        for tag in sorted(by_pool.get(unit.pool or "", ())):
            out.append(Scope(pool=unit.pool, tag=tag))
    return out


class ScopedClient:
    """A PrometheusClient whose every query only sees one unit's nodes.

    ``matchers`` are fixed at construction: build one per load (a tag's node list is
    read from the info series just before, see :func:`scoped_client`).
    """

    def __init__(self, client, matchers: str) -> None:  # client: PrometheusClient
        self._client = client
        self.matchers = matchers

    @property
    def base_url(self) -> str:
        return self._client.base_url

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        return self._client.query(scoped(expr, self.matchers), at)

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> dict[tuple[tuple[str, str], ...], pd.Series]:
        return self._client.query_range(scoped(expr, self.matchers), start, end, step)


def scoped_client(client, scope: Scope) -> ScopedClient:
    """A client for ``scope``: its pool matcher, and for a tag its nodes (read now)."""
    matchers = [scope.pool_matcher()] if scope.pool is not None else []
    if scope.tag:
        answer = client.query(tag_members_query(scope))
        matchers.append(nodes_matcher(n for n in (i["metric"].get("node") for i in answer) if n))
    return ScopedClient(client, ",".join(m for m in matchers if m))
