"""How many polls run at once: as many as hide the pool's latency, no more.

The poller keeps ``--poll.workers`` threads because a remote pool's answers take tens of
milliseconds and a dead node holds a thread for its whole timeout. On a pool that answers
at once the same threads only contend for the GIL: every socket call hands it over, and
with 64 runnable workers the 1,000-node cycle made ~20,000 voluntary context switches
where two workers made ~4,000, for 0.2–0.5 s more CPU and a longer cycle
(in-process, one hour: 2 workers 1.24–1.28 s CPU, 1.15 s wall; 64: 1.38–1.79 s, 1.3–1.6 s).

So polls whose last answer was quick run from one queue on at most ``limit`` workers,
each taking the next poll as soon as it is done (no hand-off between threads), and a
:class:`Limiter` sets that limit after each cycle from what the process did: a cycle
that kept the process busy (CPU ÷ wall at least ``BUSY``) cannot go faster with more
polls at once, so the limit is halved, down to ``FLOOR``; a halving that made a poll's
share of the cycle ``SLOWER`` times longer is undone and not tried again for ``HOLD``
cycles; a cycle that left the process idle (below ``IDLE``: waiting for answers)
doubles it, up to the workers; a late cycle lets every worker in. Polls that were slow
last time (a timeout, an answer near it) start first, each on a worker of its own: their
waiting is what the threads are for. ``Limiter.observe`` is a pure function of the
cycle's figures.
"""

from __future__ import annotations

from dataclasses import dataclass

FLOOR = 2  # polls at once at least (a socket's kernel work overlaps the Python of another)
BUSY = 0.85  # CPU ÷ wall from which a cycle is CPU-bound (the GIL: about one core)
IDLE = 0.6  # … below which it waited for answers
SLOWER = 1.25  # a halving that made a poll's share of the cycle this much longer is undone
HOLD = 20  # cycles before a limit that was undone is tried again


@dataclass
class Limiter:
    """The gate's limit from cycle to cycle (see the module)."""

    workers: int
    limit: int = 0  # 0: start at the workers
    _before: tuple[int, float] | None = None  # (limit, seconds per poll) before a halving
    _held: int = 0  # cycles left before a limit that was undone may be halved again

    def __post_init__(self) -> None:
        self.limit = self.workers if self.limit <= 0 else min(self.limit, self.workers)

    def observe(self, *, cpu: float, wall: float, polls: int, late: bool) -> int:
        """The limit for the next cycle, given this one's process CPU and wall seconds,
        its number of gated polls, and whether it ran late (overruns, or more than half
        its interval): then every worker is let in again."""
        if late:
            self.limit, self._before, self._held = self.workers, None, HOLD
            return self.limit
        if polls <= 0 or wall <= 0:
            return self.limit
        per_poll = wall / polls
        if self._before is not None:
            limit, seconds = self._before
            self._before = None
            if per_poll > seconds * SLOWER:  # the halving cost time: undo it, hold
                self.limit, self._held = limit, HOLD
                return self.limit
        if self._held > 0:
            self._held -= 1
            return self.limit
        busy = cpu / wall
        if busy >= BUSY and self.limit > FLOOR:
            self._before = (self.limit, per_poll)
            self.limit = max(FLOOR, self.limit // 2)
        elif busy < IDLE and self.limit < self.workers:
            self.limit = min(self.workers, self.limit * 2)
        return self.limit
