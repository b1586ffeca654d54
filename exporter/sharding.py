"""``--shard I/N``: which nodes of the pool this exporter polls.

Rendezvous (highest-random-weight) hashing on the node name: every shard scores every
node with a hash of (shard number, node name) and the highest score owns the node. A
shard's scores do not depend on how many shards there are, so going from N to N+1
shards moves only the nodes the new shard wins (about 1/(N+1) of them), and every node
has exactly one owner whatever the node list. Each exporter reads the same pool file
and keeps its own part; no coordination between exporters is needed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable

from confscale.exporter.config import PoolConfig

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1024


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based, like Prometheus' ``hashmod``) of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ValueError(
                f"--poll.shard: expected I/N with 0 <= I < N <= {MAX_SHARDS}, "
                f"got {self.index}/{self.count}"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        """True when this shard polls the node ``name``."""
        return self.count == 1 or owner(name, self.count) == self.index

    def select(self, config: PoolConfig) -> PoolConfig:
        """``config`` with only this shard's nodes (pool, interval, timeout unchanged)."""
        if self.count == 1:
            return config
        return dataclasses.replace(
            config, nodes=tuple(n for n in config.nodes if self.owns(n.name))
        )


def parse_shard(text: str) -> Shard:
    """``I/N`` (``0/2``, ``1/2``); ValueError naming what was expected."""
    match = _SHARD.match(text)
    if not match:
        raise ValueError(f"--poll.shard: expected I/N such as 0/2 (0-based), got {text!r}")
    return Shard(int(match.group(1)), int(match.group(2)))


def score(shard: int, name: str) -> int:
    """The rendezvous weight of ``name`` for shard number ``shard`` (stable across runs)."""
    digest = hashlib.blake2b(f"{shard}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The shard (0 … count-1) that owns node ``name`` among ``count`` shards."""
    return max(range(count), key=lambda shard: score(shard, name))


def assignment(names: Iterable[str], count: int) -> dict[str, int]:
    """Owner shard per node name."""
    return {name: owner(name, count) for name in names}
