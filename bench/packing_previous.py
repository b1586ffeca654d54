"""The packing search as it was before the batched one (commit e368625), for bench_packing.

Kept only so ``bench.bench_packing`` can time the current :mod:`planner.packing` against
it in the same run: one count at a time (gallop from the fluid bound, then bisection),
each count's trials placed in their own loop, 64 quick trials first.
"""

from __future__ import annotations

import numpy as np
from confscale.planner.packing import EPS, allowed_over

QUICK_TRIALS = 64
TAIL_PER_NODE = 8  # arrivals per node placed one by one then


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
) -> dict:
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
    binding = constraints[int(np.argmax(peak.mean(axis=0)))]
    return {"servers": servers, "used": used, "binding": binding, "reason": reason}
