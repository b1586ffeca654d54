"""Servers needed as the balancer packs meetings: seeded Monte Carlo (pure, numpy).

The analytic count (:func:`planner.sizing.usable_per_node`, ``max(T − L, T/2)``) is a
worst case for every node at once; with meetings large relative to a node it asks for
about a fifth more servers than a pool needs. Here the forecast peak's meetings are drawn
from the pool's own meetings of the last weeks (:class:`MeetingTable`, built by
:func:`planner.mix.meeting_table`) and placed one by one, in random arrival order, on the
least-loaded of N nodes — least pressure, max over constraints of load ÷ target, the
figure the placement signal publishes and Scalelite's ``find_available`` follows (it picks
the lowest score of its ``server_load`` sorted set, app/models/server.rb,
blindsidenetworks/scalelite@7498a81d; the signal sets ``load_multiplier`` from pressure).
The answer is the smallest N for which the share of trials where any node passes a target
is at most ``WhatIf.packing_risk`` (1 %), and with R nodes lost (the same meetings on N − R
nodes) at most that share pass a failure target (with an upper confidence bound, so a
lucky draw does not pass). It lies in [fluid bound, analytic bound]: never below
⌈D/T⌉ (and ⌈D/F⌉ + R), never above the analytic count. Least-loaded placement can need
more than the analytic count — that bound is first fit's, which opens a node for a
meeting that fits nowhere, while least-loaded puts a big meeting that arrives late on a
node already holding about D/N, so it needs D/N + L ≤ T (Graham's list-scheduling bound);
with meetings near a node's target that explodes (≈ 4× the analytic count on the
simulator's pool, whose lectures reach 250 seats on 200-seat nodes). Then the analytic
count is reported, ``used`` says ``"analytic"`` and ``reason`` gives the risk measured
at it: a balancer that keeps a node free for the big meeting (what first fit does) fits
the pool in that many. The capacity JSON shows the bounds, the count used and why.

The draw (which meetings, in which order, per trial) is made once per meeting table with
a fixed seed and cached on it (one table per snapshot), so a what-if only re-prices the
drawn meetings and re-places them, and a what-if seen before is a look-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TRIALS = 400  # Monte Carlo trials per count
SEED = 20261201
MAX_MEETINGS = 20_000  # meetings kept in a table (an even subsample beyond)
EPS = 1e-9  # a node exactly at its target has not passed it
TAIL_PER_NODE = 8  # arrivals per node placed one by one (earlier ones: spread evenly)


@dataclass(frozen=True, eq=False)
class MeetingTable:
    """The pool's meetings at busy instants of the last weeks, one entry per meeting.

    History records per node and step the number of meetings, their participants, audio
    users, listeners, webcams, fan-out and the largest meeting; a node step becomes one
    meeting of the largest size and the rest shared out evenly (sizes in whole
    participants), each with the step's audio and webcam shares, fan-out W·(n − 1) scaled
    to the step's own total. Hashes by identity: the cached draw belongs to this table.
    """

    participants: np.ndarray
    voice: np.ndarray
    listeners: np.ndarray
    fanout: np.ndarray
    webcam_share: float = 0.0  # the pool's share the fan-out was recorded with
    _draws: dict = field(default_factory=dict, repr=False, compare=False)
    # packing results per (demand, prices, targets …): a what-if seen before is a look-up
    results: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.participants.size)

    @property
    def mean_size(self) -> float:
        return float(self.participants.mean()) if len(self) else 0.0

    def draw(self, demand: float, trials: int = TRIALS) -> tuple[np.ndarray, np.ndarray]:
        """Meeting indices (trials × M) and a mask of those inside ``demand`` participants.

        Per trial, meetings are taken in drawn order while the participants before them
        are fewer than ``demand`` (the last one may pass it: meetings are not split). M is
        a power of two, and draws of one size are cached, so results are stable.
        """
        mean = max(self.mean_size, 1e-9)
        size = 1 << max(4, math.ceil(math.log2(max(demand / mean * 1.5 + 8, 1))))
        while True:
            key = (trials, size)
            if key not in self._draws:
                rng = np.random.default_rng(SEED)
                self._draws[key] = rng.integers(0, len(self), (trials, size), dtype=np.int32)
            index = self._draws[key]
            people = self.participants[index]
            before = np.cumsum(people, axis=1) - people
            if (before[:, -1] + people[:, -1] >= demand).all() or size >= 1 << 20:
                return index, before < demand
            size *= 2


def place_least_loaded(
    costs: np.ndarray,
    mask: np.ndarray,
    targets: np.ndarray,
    nodes: int,
    tail_per_node: int | None = TAIL_PER_NODE,
):
    """Max load ÷ target per trial and constraint after least-pressure placement.

    ``costs``: trials × meetings × constraints; ``mask``: which meetings arrive;
    ``targets``: per constraint, the normal target the balancer's pressure divides by.
    Returns trials × constraints of the highest node load per constraint ÷ ``targets``.
    With more than ``tail_per_node`` × N arrivals, the earlier ones are spread evenly
    (least-loaded keeps nodes within one meeting of each other, and the last arrivals
    decide which node passes a target) and only the last ones are placed one by one.
    """
    trials, _, k = costs.shape
    offset = np.arange(trials) * nodes
    arriving = np.flatnonzero(mask.any(axis=0))
    last = int(arriving.max()) + 1 if arriving.size else 0
    first = 0 if tail_per_node is None else max(0, last - tail_per_node * nodes)
    masked = costs[:, :last] / targets * mask[:, :last, None]
    spread = masked[:, :first].sum(axis=1) / nodes  # trials × k, on every node
    loads = [np.repeat(spread[:, c], nodes) for c in range(k)]  # row s·N + node
    pressure = np.repeat(spread.max(axis=1), nodes).reshape(trials, nodes)
    # constraint- and meeting-major, contiguous: one row of trials per arrival (1-D
    # take/put are the cheapest numpy indexing; the loop is over arrivals only)
    scaled = np.ascontiguousarray(masked[:, first:].transpose(2, 1, 0))
    flat_pressure = pressure.reshape(-1)
    for j in range(last - first):
        cell = offset + pressure.argmin(axis=1)
        highest = None
        for c in range(k):
            updated = loads[c][cell] + scaled[c, j]
            loads[c][cell] = updated
            highest = updated if highest is None else np.maximum(highest, updated)
        flat_pressure[cell] = highest
    return np.stack([load.reshape(trials, nodes).max(axis=1) for load in loads], axis=1)


@dataclass(frozen=True)
class PackingResult:
    """The packing-aware count at one horizon and how it was bounded."""

    servers: int | None  # the count used
    packing: int | None  # the Monte Carlo's own count (None: none up to the ceiling passed)
    fluid_bound: int
    analytic_bound: int | None
    used: str  # "packing", "fluid" or "analytic" (no count up to the analytic one passed)
    risk: float | None  # share of trials over a target at ``servers`` (normal operation)
    risk_failure: float | None  # … over a failure target with R nodes lost
    binding: str | None  # the constraint nearest its target at ``servers``
    trials: int
    meetings: float  # mean meetings placed per trial
    reason: str | None = None  # why the analytic count was used (None: it was not)

    def as_dict(self) -> dict[str, object]:
        return {
            "servers": self.servers,
            "packing": self.packing,
            "fluid_bound": self.fluid_bound,
            "analytic_bound": self.analytic_bound,
            "used": self.used,
            "reason": self.reason,
            "risk": None if self.risk is None else round(self.risk, 4),
            "risk_failure": None if self.risk_failure is None else round(self.risk_failure, 4),
            "binding": self.binding,
            "trials": self.trials,
            "meetings_per_trial": round(self.meetings, 1),
        }


# One-sided 90 % upper bounds (Poisson) of the expected count of trials over a target when
# k were seen: N is accepted when this bound ÷ trials ≤ the allowed risk, so a count is
# never chosen on a lucky draw (with 400 trials and 1 %: at most 1 trial over).
UPPER_90 = (2.30, 3.89, 5.32, 6.68, 7.99, 9.27, 10.53, 11.77, 12.99, 14.21, 15.41)
QUICK_TRIALS = 64  # a count is rejected on these first when they already show too many


def allowed_over(trials: int, risk: float) -> int:
    """Trials over a target still compatible with ``risk`` (−1: none is enough)."""
    fits = [k for k, bound in enumerate(UPPER_90) if bound / trials <= risk]
    return fits[-1] if fits else -1


def packing_servers(
    costs: np.ndarray,
    mask: np.ndarray,
    *,
    constraints: tuple[str, ...],
    targets: np.ndarray,
    failure: np.ndarray,
    redundancy: int,
    risk: float,
    fluid: int,
    analytic: int | None,
    ceiling: int | None = None,
) -> PackingResult:
    """Smallest N in [``fluid``, ``analytic``] whose placements pass a target in ≤ ``risk``.

    ``targets`` and ``failure`` are per-constraint absolute loads (u·C, u_fail·C);
    ``costs`` trials × meetings × constraints in the same units. The search steps up from
    the fluid bound (the answer is usually near it) to the analytic count, the upper
    limit: first fit is sure to place these meetings on that many nodes. When least-loaded
    placement still passes a target too often there (meetings above half a node, arriving
    late on nodes already holding about D/N), the analytic count is reported, ``used`` is
    ``"analytic"`` and ``reason`` says why with the risk measured at it. ``ceiling``
    (tests, bench) searches above the analytic count instead, up to Graham's bound.
    """
    trials = costs.shape[0]
    meetings = float(mask.sum(axis=1).mean())
    allowed = allowed_over(trials, risk)
    # A meeting that alone passes a node's target (a lecture bigger than a node) passes
    # it wherever it goes: no count of servers makes such a trial pass. Each one gets a
    # node of its own (the 99th percentile of how many a peak holds) and the rest are
    # packed; the analytic count's note says the largest meeting does not fit.
    oversize = mask & ((costs >= targets * (1 - EPS)).any(axis=2))
    own_nodes = int(np.ceil(np.quantile(oversize.sum(axis=1), 0.99))) if oversize.any() else 0
    mask = mask & ~oversize
    cache: dict[int, tuple[int, int, np.ndarray | None]] = {}

    def over(n: int, limit: np.ndarray, sample: slice) -> tuple[int, np.ndarray | None]:
        if n <= 0:
            return trials, None
        peak = place_least_loaded(costs[sample], mask[sample], targets, n)
        return int(((peak * targets / limit) > 1 + EPS).any(axis=1).sum()), peak

    def measured(n: int) -> tuple[int, int, np.ndarray | None]:
        """Trials over a target (normal, R lost) on ``n`` packed nodes, all trials."""
        if n not in cache or (cache[n][2] is None and n > 0):
            normal, peak = over(n, targets, slice(None))
            lost = over(n - redundancy, failure, slice(None))[0] if redundancy else 0
            cache[n] = (normal, lost, peak)
        return cache[n]

    def ok(n: int) -> bool:
        if n not in cache:
            quick = slice(0, min(QUICK_TRIALS, trials))
            if n <= 0 or over(n, targets, quick)[0] > allowed:
                cache[n] = (trials, trials, None)
                return False
            measured(n)
        normal, lost, _ = cache[n]
        return normal <= allowed and lost <= allowed

    low = max(fluid - own_nodes, 1)
    if ceiling is None and analytic is not None:
        high = max(analytic - own_nodes, low)
    else:
        demand = (costs * mask[..., None]).sum(axis=1).max(axis=0)
        largest = costs.max(axis=(0, 1), where=mask[..., None], initial=0.0)
        high = ceiling if ceiling is not None else low * 4 + redundancy
        if (largest < targets).all() and (largest < failure).all():
            graham = np.ceil(demand / (targets - largest)).max()
            graham_f = np.ceil(demand / (failure - largest)).max() + redundancy
            high = min(high, int(max(graham, graham_f)))
        high = max(high, low)
    found, step, below = None, 1, low - 1
    n = low
    while n <= high:
        if ok(n):
            found = n
            break
        below, n = n, min(n + step, high) if n < high else high + 1
        step *= 2
    if found is not None:
        lo, hi = below, found  # not ok(lo) (or lo below the fluid bound), ok(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        found = hi
    packed = high if found is None else found
    normal, lost, peak = measured(packed)
    if peak is None:  # no node left to pack on (every one holds an oversize meeting)
        peak = np.zeros((trials, len(constraints)))
    binding = constraints[int(np.argmax(peak.mean(axis=0)))]
    servers = max(packed + own_nodes, fluid)
    reason = None
    capped = ceiling is None and analytic is not None
    if capped and (found is None or servers > analytic):
        servers, used = analytic, "analytic"
        reason = (
            f"least-loaded placement passes a target in {normal / trials:.1%} of trials "
            f"(with {redundancy} lost, a failure target in {lost / trials:.1%}) even at the "
            f"analytic count, over the {risk:.0%} allowed: meetings above half a node that "
            "arrive on nodes already holding D/N do not fit; first fit places them on "
            f"{analytic}, so the analytic count is used"
        )
    elif found is None:  # only with an explicit ceiling (tests, bench)
        used = "packing-ceiling"
    else:
        used = "fluid" if servers == fluid else "packing"
    return PackingResult(
        servers,
        None if found is None else max(found + own_nodes, fluid),
        fluid,
        analytic,
        used,
        normal / trials,
        lost / trials,
        binding,
        trials,
        meetings,
        reason,
    )
