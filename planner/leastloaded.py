"""Least-loaded placement of drawn meetings on N nodes, several counts in one numpy pass.

The engine under :func:`planner.packing.packing_servers`: per trial, meetings arrive in
drawn order and each goes to the node of least pressure (max over constraints of load ÷
target), as the placement signal and Scalelite's ``find_available`` do. Pure numpy.
"""

from __future__ import annotations

import numpy as np

TAIL_PER_NODE = 4  # arrivals per node placed one by one (earlier ones: spread evenly)
TAIL_PER_NODE_BIG = 6  # … when meetings above half a node are packed (see Placements)


class Placements:
    """Least-loaded placements of one draw, on several node counts in one pass.

    ``costs``: trials × meetings × constraints; ``mask``: which meetings arrive;
    ``targets``: per constraint, the normal target the balancer's pressure divides by.
    :meth:`peaks` gives, per node count, trials × constraints of the highest node load
    per constraint ÷ ``targets``. With more than ``tail_per_node`` × N arrivals the
    earlier ones are spread evenly (least-loaded keeps nodes within one meeting of each
    other, and the last arrivals decide which node passes a target) and only the last
    ones are placed: the first N of them one per node in order (on equal nodes that is
    what least-loaded does, so no search), the rest one by one, each an argmin over a
    trials × nodes array. Several counts share that loop (their trials stacked, the
    smaller counts' missing nodes never least loaded), so a batch costs one loop's calls.
    4 per node gives the same counts as 6, 8, 12 and every arrival placed on the bench
    pools of meetings up to half a node (2 does not); with bigger meetings, whose early
    arrivals are lumpier than an even spread, the huge lecture took 27 at 4 where 6 and
    more take 24, so :func:`packing_servers` places 6 per node there.

    The loads are held as constraint × meeting × trial (``costs`` from
    :func:`planner.sizing.packing_problem` are laid out so): the running sums that spread
    the early arrivals are one cumulative sum along the draw, each step a vector over the
    trials, made once and read for every count (:meth:`early`), and a pass aligns only
    its own tail (:meth:`window`).
    """

    def __init__(
        self,
        costs: np.ndarray,
        mask: np.ndarray,
        targets: np.ndarray,
        tail_per_node: int | None = TAIL_PER_NODE,
        widest: int | None = None,
    ) -> None:
        arriving = np.flatnonzero(mask.any(axis=0))
        self.last = int(arriving.max()) + 1 if arriving.size else 0
        arrived = mask[:, : self.last]
        # right-aligned: each trial's own arrivals end at ``last`` (the ones left out cost
        # nothing, before them), so every trial's last arrivals are the ones placed; kept
        # in drawn order with each trial's ``shift``, aligned only for a pass's window
        length = (
            np.where(arrived.any(axis=1), self.last - arrived[:, ::-1].argmax(axis=1), 0)
            if self.last
            else np.zeros(len(mask), int)  # nothing arrives (every meeting has its own node)
        )
        self.shift = self.last - length
        self.trials, _, self.k = costs.shape
        # k × meetings × trials (``costs`` from planner.sizing.packing_problem are laid out
        # so), 0 where a meeting does not arrive
        self.scaled = np.empty((self.k, self.last, self.trials))
        np.divide(costs[:, : self.last].transpose(2, 1, 0), targets[:, None, None], out=self.scaled)
        self.scaled *= arrived.T
        self.demand = np.ascontiguousarray(in_order(self.scaled).T)  # trials × k
        # the load of the meetings drawn before each one from ``origin`` on (k × meetings ×
        # trials), added in drawn order as the sum over the meetings is: built on demand
        # from the earliest meeting a count's spread needs (the tails are the last ones)
        self.origin = self.last
        self.before = self.demand.T[:, None]
        self.aligned_from, self.aligned = self.last, self.scaled[:, :0]
        self.tail_per_node = tail_per_node
        self.cache: dict[int, np.ndarray] = {}
        if widest is not None:  # the largest count to be placed: align its tail once
            first = max(self.last - tail_per_node * widest, 0) if tail_per_node else 0
            self.early(first)
            self.window(first)

    def window(self, first: int) -> np.ndarray:
        """The right-aligned arrivals from ``first`` on (k × last − first × trials)."""
        if first < self.aligned_from:
            source = np.arange(first, self.last)[:, None] - self.shift
            cells = np.maximum(source, 0) * self.trials + np.arange(self.trials)
            self.aligned = np.take(self.scaled.reshape(self.k, -1), cells, axis=1)
            self.aligned *= source >= 0
            self.aligned_from = first
        return self.aligned[:, first - self.aligned_from :]

    def early(self, first: int) -> np.ndarray:
        """The load of the right-aligned arrivals before ``first`` (k × trials)."""
        position = np.maximum(first - self.shift, 0)
        origin = int(position.min(initial=self.origin))
        if origin < self.origin:  # the running sums from ``origin`` on
            before = np.empty((self.k, self.last + 1 - origin, self.trials))
            before[:, 0] = in_order(self.scaled[:, :origin])
            for i in range(origin, self.origin):
                np.add(before[:, i - origin], self.scaled[:, i], out=before[:, i - origin + 1])
            before[:, self.origin - origin :] = self.before
            self.origin, self.before = origin, before
        return self.before[:, position - self.origin, np.arange(self.trials)]

    def peaks(self, counts: list[int]) -> dict[int, np.ndarray]:
        """Highest load ÷ target per trial and constraint for each count (cached)."""
        todo = sorted({n for n in counts if n > 0 and n not in self.cache})
        if todo:
            for n, peak in zip(todo, self._place(todo), strict=True):
                self.cache[n] = peak
        return {n: self.cache[n] for n in counts if n > 0}

    def _place(self, counts: list[int]) -> list[np.ndarray]:
        trials, k, width, groups = self.trials, self.k, max(counts), len(counts)
        rows, sizes = groups * trials, np.asarray(counts)
        # each count's own tail (the last tail_per_node × N arrivals), as if placed alone
        every = self.tail_per_node is None  # (bench: every arrival one by one)
        firsts = (
            np.zeros_like(sizes) if every else np.maximum(self.last - self.tail_per_node * sizes, 0)
        )
        base = int(firsts.min())
        window = self.window(base)  # every count's tail
        # per constraint, (group · trials + trial) · width + node: 1-D take and put of one
        # cell per row are the cheapest numpy indexing here
        loads = np.zeros((k, groups, trials, width))
        for g, (first, n) in enumerate(zip(firsts, counts, strict=True)):
            # the early arrivals, even on every node; then the tail's first N arrivals
            # one per node in order (all nodes equal, least loaded is the next empty one)
            loads[:, g, :, :n] = self.early(first)[..., None] / n
            round_one = window[:, first - base : first - base + n].transpose(0, 2, 1)
            loads[:, g, :, : round_one.shape[2]] += round_one
        loop_firsts = np.minimum(firsts + sizes, self.last)
        start = int(loop_firsts.min())
        columns = loads.reshape(k, rows * width)
        pressure = columns.max(axis=0).reshape(rows, width)
        pressure[np.arange(width) >= np.repeat(sizes, trials)[:, None]] = np.inf  # no such node
        # the rest of each tail one by one, every count in the same pass; a count whose
        # loop starts later has the arrivals before its start placed already (cost 0)
        tail = np.tile(window[:, start - base :].transpose(1, 0, 2), groups)  # arrival, c, row
        late = np.repeat(loop_firsts, trials)  # per row: where its own loop starts
        tail *= (np.arange(start, self.last)[:, None] >= late)[:, None]
        least_loaded(pressure, list(columns), tail)
        peaks = loads.max(axis=3)  # k × groups × trials
        return [np.ascontiguousarray(peaks[:, g].T) for g in range(groups)]


def in_order(scaled: np.ndarray) -> np.ndarray:
    """Sum over axis 1 (k × meetings × trials → k × trials) adding the meetings in order.

    numpy adds along an outer axis one row after the other; a single trial would make it
    the inner axis, summed pairwise, so that one is accumulated instead.
    """
    if scaled.shape[2] > 1 or not scaled.shape[1]:
        return np.add.reduce(scaled, axis=1)
    return np.cumsum(scaled, axis=1)[:, -1]


def least_loaded(pressure: np.ndarray, columns: list[np.ndarray], tail: np.ndarray) -> None:
    """Place ``tail`` (arrival × constraint × row) one by one, each on its row's least
    ``pressure`` node (rows × nodes, the first of equals); ``columns`` are the loads per
    constraint (rows · nodes), updated in place with ``pressure`` (their max)."""
    rows, width = pressure.shape
    flat = pressure.reshape(-1)
    offset = np.arange(rows) * width
    for step in tail:
        cell = offset + pressure.argmin(axis=1)
        highest = None
        for column, cost in zip(columns, step, strict=True):
            updated = column[cell] + cost
            column[cell] = updated
            highest = updated if highest is None else np.maximum(highest, updated)
        flat[cell] = highest


def place_least_loaded(
    costs: np.ndarray,
    mask: np.ndarray,
    targets: np.ndarray,
    nodes: int,
    tail_per_node: int | None = TAIL_PER_NODE,
) -> np.ndarray:
    """Max load ÷ target per trial and constraint after least-pressure placement on N."""
    return Placements(costs, mask, targets, tail_per_node).peaks([nodes])[nodes]
