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
lucky draw does not pass). It is never below the fluid bound ⌈D/T⌉ (and ⌈D/F⌉ + R) and
the search stops at Graham's list-scheduling bound ⌈D/(T − L)⌉ (and ⌈D/(F − L)⌉ + R), the
policy's own worst case: the least-loaded node holds at most D/N when a meeting arrives.
The analytic count is shown beside it but does not bound it — that count is first fit's,
which opens a node for a meeting that fits nowhere, while least-loaded puts a big meeting
that arrives late on a node already holding about D/N, so it needs about D/N + L ≤ T;
with meetings near a node's target that is several times the analytic count (the
simulator's pool, whose lectures reach 250 seats on 200-seat nodes). Reporting the
analytic count there would buy a pool whose nodes pass a target at far more peaks than
the 1 % allowed (``reason`` gives the share measured at it, and why), and
``lectures_apart`` is the count when meetings above half a node each get a node of
their own (a tagged sub-pool) and the rest are placed least loaded: what the operator
can change instead of buying. The capacity JSON shows the
bounds, the count used and why.

The draw (which meetings, in which order, per trial) is made once per meeting table with
a fixed seed and cached on it (one table per snapshot), so a what-if only re-prices the
drawn meetings and re-places them, and a what-if seen before is a look-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from confscale.planner.leastloaded import TAIL_PER_NODE, TAIL_PER_NODE_BIG, Placements

TRIALS = 400  # Monte Carlo trials per count
SEED = 20261201
MAX_MEETINGS = 20_000  # meetings kept in a table (an even subsample beyond)
EPS = 1e-9  # a node exactly at its target has not passed it
QUICK_TRIALS = 64  # trials placed first: a count they already reject is not placed further


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
        a power of two, and draws of one size are cached, so results are stable. Both
        are held meeting-major (M × trials in memory, seen transposed): a prefix of the
        draw, and what :class:`Placements` reads along it, is contiguous.
        """
        mean = max(self.mean_size, 1e-9)
        size = 1 << max(4, math.ceil(math.log2(max(demand / mean * 1.5 + 8, 1))))
        while True:
            key = (trials, size)
            if key not in self._draws:
                rng = np.random.default_rng(SEED)
                index = rng.integers(0, len(self), (trials, size), dtype=np.int32)
                total = self.participants[index].sum(1)
                index = np.ascontiguousarray(index.T)
                # participants before each drawn meeting (the running sum, one vector add per
                # meeting: np.cumsum along the outer axis is several times slower), and in all
                people = self.participants[index]
                running = np.empty_like(people)
                running[:1] = people[:1]
                for i in range(1, size):
                    np.add(running[i - 1], people[i], out=running[i])
                running -= people
                self._draws[key] = (index.T, running.T, total)
            index, before, total = self._draws[key]
            if (total >= demand).all() or size >= 1 << 20:
                return index, before < demand
            size *= 2


@dataclass(frozen=True)
class PackingResult:
    """The packing-aware count at one horizon and how it was bounded."""

    servers: int | None  # the count used
    packing: int | None  # the Monte Carlo's own count (None: none up to the upper bound passed)
    fluid_bound: int
    analytic_bound: int | None  # first fit's worst case (planner.sizing), shown beside it
    used: str  # "packing", "fluid" or "upper" (no count up to the upper bound passed)
    risk: float | None  # share of trials over a target at ``servers`` (normal operation)
    risk_failure: float | None  # … over a failure target with R nodes lost
    binding: str | None  # the constraint nearest its target at ``servers``
    trials: int
    meetings: float  # mean meetings placed per trial
    reason: str | None = None  # why the count is above the analytic one (None: it is not)
    upper_bound: int | None = None  # Graham's bound for least-loaded placement: the limit
    lectures_apart: int | None = None  # the count with meetings above half a node apart

    def as_dict(self) -> dict[str, object]:
        return {
            "servers": self.servers,
            "packing": self.packing,
            "fluid_bound": self.fluid_bound,
            "analytic_bound": self.analytic_bound,
            "upper_bound": self.upper_bound,
            "lectures_apart": self.lectures_apart,
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


def allowed_over(trials: int, risk: float) -> int:
    """Trials over a target still compatible with ``risk`` (−1: none is enough)."""
    fits = [k for k, bound in enumerate(UPPER_90) if bound / trials <= risk]
    return fits[-1] if fits else -1


LECTURE_SHARE = 0.5  # ``lectures_apart``: meetings above this share of a node's target
UPPER_CAP = 8  # no search above this many times the fluid bound (+ R): "upper" is reported


@dataclass(frozen=True)
class _Count:
    """One search's outcome (see :func:`packing_servers`)."""

    servers: int  # the count: packed nodes + nodes of their own, at least the fluid bound
    found: int | None  # the same, None when no count up to ``upper`` passed
    upper: int  # the search's upper limit (Graham's bound + nodes of their own)
    normal: int  # trials over a target at the count
    lost: int  # … over a failure target with R nodes lost
    binding: str
    big: bool  # some meeting above half a node's target arrives
    at: tuple[int, int, int] | None = None  # (normal, lost, of trials) at ``at``, if asked


@dataclass(frozen=True)
class _Problem:
    """What :func:`packing_servers` searches over, for :func:`_search` (its arguments)."""

    costs: np.ndarray
    mask: np.ndarray
    constraints: tuple[str, ...]
    targets: np.ndarray
    failure: np.ndarray
    redundancy: int
    risk: float
    fluid: int
    tail_per_node: int | Literal["auto"] | None


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
    tail_per_node: int | Literal["auto"] | None = "auto",
    own_threshold: float = 1.0,
) -> PackingResult:
    """Smallest N from ``fluid`` up whose placements pass a target in ≤ ``risk``.

    ``targets`` and ``failure`` are per-constraint absolute loads (u·C, u_fail·C);
    ``costs`` trials × meetings × constraints in the same units. A meeting whose cost
    reaches ``own_threshold`` × a target gets a node of its own (at 1: it passes the
    target wherever it goes). The search steps up from the fluid bound (the answer is
    usually near it) to Graham's bound for least-loaded placement, ⌈D/(T − L)⌉ (and
    ⌈D/(F − L)⌉ + R): on that many nodes the least-loaded node holds at most D/N before
    the largest meeting arrives, so no target is passed. ``analytic`` (first fit's worst
    case, :func:`planner.sizing.usable_per_node`) is not a limit for this policy: a big
    meeting arriving late lands on a node already holding about D/N. When the count is
    above it, ``reason`` says so and ``lectures_apart`` gives the count with meetings
    above half a node each on a node of their own (a tagged sub-pool: Scalelite's server
    tags, a b3lb cluster group), the rest placed least loaded. ``tail_per_node``: how many
    arrivals per node are placed one by one ("auto": 4, or 6 when meetings above half a
    node are packed; None, every arrival: the bench's check).
    """
    trials = costs.shape[0]
    meetings = float(mask.sum(axis=1).mean())
    if not mask.any():  # no meeting arrives (no demand): nothing to place, none to lose
        return PackingResult(
            fluid, fluid, fluid, analytic, "fluid", 0.0, 0.0, None, trials, 0.0, None, fluid
        )

    problem = _Problem(
        costs, mask, constraints, targets, failure, redundancy, risk, fluid, tail_per_node
    )
    count = _search(problem, own_threshold, at=analytic)
    servers = count.servers
    used = "upper" if count.found is None else ("fluid" if servers == fluid else "packing")
    reason, apart = None, None
    if analytic is not None and servers > analytic:
        if count.big and own_threshold > LECTURE_SHARE:
            apart = _search(problem, LECTURE_SHARE).servers
        cause = (
            "meetings above half a node that arrive late land on a node already holding "
            "about D/N; first fit keeps a node free for them"
            if count.big
            else "the pool is at its target with nothing to spare"
        )
        at = (
            f": at it a target is passed in {count.at[0] / count.at[2]:.0%} of "
            f"{count.at[2]} trials (with {redundancy} lost, a failure target in "
            f"{count.at[1] / count.at[2]:.0%})"
            if count.at is not None
            else ""
        )
        reason = (
            f"least-loaded placement needs {servers} servers, more than the analytic "
            f"count {analytic}{at} ({cause})"
            + (
                f"; with meetings above half a node each on a node of their own "
                f"(a tagged sub-pool), {apart}"
                if apart is not None
                else ""
            )
        )
    if count.found is None:
        reason = (
            f"no count up to {count.upper} keeps least-loaded placement within the "
            f"{risk:.0%} allowed (a target passed in {count.normal / trials:.1%} of trials, "
            f"with {redundancy} lost a failure target in {count.lost / trials:.1%}); "
            f"the upper bound is used" + (f". {reason}" if reason else "")
        )
    return PackingResult(
        servers,
        count.found,
        fluid,
        analytic,
        used,
        count.normal / trials,
        count.lost / trials,
        count.binding,
        trials,
        meetings,
        reason,
        count.upper,
        apart,
    )


def _search(problem: _Problem, own_threshold: float, at: int | None = None) -> _Count:
    """The least-loaded count with meetings at ``own_threshold`` × a target apart."""
    costs, mask, targets, failure = problem.costs, problem.mask, problem.targets, problem.failure
    redundancy, risk, fluid = problem.redundancy, problem.risk, problem.fluid
    trials = costs.shape[0]
    allowed = allowed_over(trials, risk)
    packed = mask  # the meetings placed least loaded (the others: a node each)
    arriving = costs.max(axis=(0, 1), where=packed[..., None], initial=0.0)
    big = bool((arriving > targets * LECTURE_SHARE).any())
    # A meeting at ``own_threshold`` of a node's target gets a node of its own (at 1, a
    # lecture bigger than a node passes its target wherever it goes: no count of servers
    # makes such a trial pass): as many nodes as the 99th percentile of how many a peak
    # holds, and the rest are packed.
    alone = targets * own_threshold * (1 - EPS)
    own_nodes = 0
    if (arriving >= alone).any():
        oversize = packed & ((costs >= alone).any(axis=2))
        own_nodes = int(np.ceil(np.quantile(oversize.sum(axis=1), 0.99))) if oversize.any() else 0
        packed = packed & ~oversize
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero target is inf here
        failure_ratio = np.where(np.isfinite(targets), failure / targets, np.inf)

    def peak_of(n: int, part: int | None = None) -> np.ndarray:
        """Highest load ÷ target per trial on ``n`` nodes (one part, or all trials)."""
        if part is not None:
            return parts[part].peaks([n])[n]
        return np.concatenate([placed.peaks([n])[n] for placed in parts])

    def over(n: int, part: int | None = None) -> tuple[int, int]:
        """Trials over a target on ``n`` packed nodes, and over a failure target on n − R."""
        size = trials if part is None else parts[part].trials
        normal = int((peak_of(n, part) > 1 + EPS).any(axis=1).sum()) if n > 0 else size
        if not redundancy:
            return normal, 0
        if n - redundancy <= 0:
            return normal, size
        lost = peak_of(n - redundancy, part) > failure_ratio * (1 + EPS)
        return normal, int(lost.any(axis=1).sum())

    def measure(batch: list[int]) -> dict[int, bool]:
        """Which counts of ``batch`` pass (those decided: the rest are left out).

        The first trials are placed for the whole batch in one pass and reject what they
        can; the others, whose cost grows with the count, only from the smallest count
        the first ones left up to the first that passes.
        """
        verdict: dict[int, bool] = {}
        parts[0].peaks([m for n in batch for m in (n, n - redundancy)])
        for n in batch:
            if max(over(n, 0)) > allowed:
                verdict[n] = False
        for n in sorted(set(batch) - set(verdict)):
            for placed in parts[1:]:  # n and n − R in one pass
                placed.peaks([n, n - redundancy])
            verdict[n] = max(over(n)) <= allowed
            if verdict[n]:
                break
        return verdict

    def estimate(n: int) -> int:
        """The count the placements on ``n`` (and n − R) point to.

        Least-loaded placement leaves the fullest node at D/N plus an excess that hardly
        depends on N (about the late meetings that landed on it), so each trial needs
        N ≥ D / (T − excess); the count is the one only ``risk`` of trials need more.
        """
        placed = parts[0]
        need = np.zeros(placed.trials)
        cases: list[tuple[int, float | np.ndarray, int]] = [(n, 1.0, 0)]
        if redundancy:
            cases.append((n - redundancy, failure_ratio, redundancy))
        for m, limit, extra in cases:
            if m <= 0:
                continue
            demand = placed.demand
            room = limit - (placed.peaks([m])[m] - demand / m)
            with np.errstate(invalid="ignore", divide="ignore"):
                nodes = np.where(demand > 0, demand / np.where(room > 0, room, 0), 0.0)
            need = np.maximum(need, np.nan_to_num(nodes, nan=np.inf).max(axis=1) + extra)
        guess = float(np.quantile(need, 1 - risk))
        return math.ceil(guess - 1e-9) if math.isfinite(guess) else high

    low = max(fluid - own_nodes, 1)
    # Graham's bound on the packed part (the largest meeting left, the heaviest trial's
    # demand), capped at UPPER_CAP × the fluid bound when meetings near a node's target
    # make it explode
    demand = (costs * packed[..., None]).sum(axis=1).max(axis=0)
    largest = costs.max(axis=(0, 1), where=packed[..., None], initial=0.0)
    high = low * UPPER_CAP + redundancy
    if (largest < targets).all() and (largest < failure).all():
        graham = np.ceil(demand / (targets - largest) - 1e-9).max()
        graham_f = np.ceil(demand / (failure - largest) - 1e-9).max() + redundancy
        high = min(high, int(max(graham, graham_f)))
    high = max(high, low)
    # The first QUICK_TRIALS trials are placed first, the rest only for counts they do not
    # already reject: a count with more than ``allowed`` trials over a target among the
    # first ones has as many among all of them, so the answer is the same. No count
    # placed is above ``high``: its tail is aligned once.
    quick = min(QUICK_TRIALS, trials)
    tail = problem.tail_per_node
    if tail == "auto":  # by the largest meeting left to pack
        tail = TAIL_PER_NODE_BIG if (largest > targets * LECTURE_SHARE).any() else TAIL_PER_NODE
    parts = [Placements(costs[:quick], packed[:quick], targets, tail, high)]
    if quick < trials:
        parts.append(Placements(costs[quick:], packed[quick:], targets, tail, high))
    # Search: measure a few counts at a time (one shared placement pass), aimed by
    # ``estimate``, until the smallest passing count sits just above a failing one (or
    # is the fluid bound); counts are assumed monotone, as the former gallop + bisection
    # did, so the answer is the same in two or three passes instead of six to ten.
    verdict: dict[int, bool] = {}
    batch, step, found = [low], 1, None
    while batch:
        verdict.update(measure(batch))
        passing = sorted(n for n, good in verdict.items() if good)
        failing = sorted(n for n, good in verdict.items() if not good)
        top = passing[0] if passing else None
        bottom = max([f for f in failing if top is None or f < top], default=low - 1)
        if top is not None and top - bottom <= 1:
            found = top
            break
        upper = high if top is None else top - 1
        if bottom >= upper:
            break  # nothing left to try: no count up to ``high`` passes
        guess = min(max(estimate(bottom) if bottom >= low else low, bottom + 1), upper)
        window = {guess - 1, guess, guess + 1}
        if top is None:
            window |= {min(guess + step, upper)}
            step *= 2
        batch = sorted(n for n in window if bottom < n <= upper and n not in verdict)
        if not batch:  # the estimate points at counts already measured: bisect
            batch = [(bottom + upper + 1) // 2]
    count = high if found is None else found
    normal, lost = over(count)
    binding = problem.constraints[int(np.argmax(peak_of(count).mean(axis=0)))]
    # the risk at ``at`` from the first trials only (a full placement there would cost a
    # third of the search; the reason only needs to show it is far over the allowed)
    measured = None
    if at is not None and own_nodes < at < count + own_nodes:  # only when the count is above
        quick_over = over(at - own_nodes, 0)
        measured = (quick_over[0], quick_over[1], quick)
    return _Count(
        max(count + own_nodes, fluid),
        None if found is None else max(found + own_nodes, fluid),
        max(high + own_nodes, fluid),
        normal,
        lost,
        binding,
        big,
        measured,
    )
