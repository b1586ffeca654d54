"""Servers needed (docs/design.md §4): per constraint, N+1, largest meeting, headroom, saturation.

``N_normal,k = ceil(D_k / max(u_k·C_k − L_k, u_k·C_k / 2))`` (the first design had only the first
term; see :func:`usable_per_node`), ``N_failure,k = ceil(D_k / (u_fail,k·C_k)) + R`` and
``N = max(N_normal, N_failure, N_min)`` over constraints k ∈ participants, cpu, transmit,
where D_k is demand from the upper forecast band, C_k per-node capacity, u_k the headroom
target and L_k the largest meeting (it cannot be split across nodes).
Everything here is a pure function of a forecast, a demand mix and a resource model, so a
what-if changes inputs and recomputes in milliseconds without refitting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from confscale.planner.demand import (  # re-exported: the sizing API the planner and page import
    CONSTRAINTS,
    DemandMix,
    NodeCapacity,
    WhatIf,
    constraint_demand,
    effective_capacity,
    largest_meeting_load,
    meeting_costs,
    with_changes,
)
from confscale.planner.packing import MeetingTable, PackingResult, packing_servers
from confscale.planner.resources import ResourceModel

__all__ = [
    "CONSTRAINTS",
    "FOUR_WEEKS_HOURS",
    "HORIZONS",
    "NEXT_PEAK_HOURS",
    "DemandMix",
    "NodeCapacity",
    "Sizing",
    "WhatIf",
    "constraint_demand",
    "effective_capacity",
    "horizon_demand",
    "largest_meeting_load",
    "servers_for",
    "size_pool",
    "supported_demand",
    "time_to_saturation",
    "total_servers",
    "usable_per_node",
    "with_changes",
]

HORIZONS: tuple[str, ...] = ("now", "next_peak", "4w")
NEXT_PEAK_HOURS = 168
FOUR_WEEKS_HOURS = 672


def usable_per_node(target: float, largest: float) -> float:
    """Capacity per node a first-fit placement is sure to use: max(T − L, T/2).

    docs/design.md §4's bound: with no meeting above L, every node but the last is filled
    above T − L (else the next meeting would have fitted). It goes to 0 as L → T and the
    count explodes. First fit also fills any two nodes together above T (the later
    node's first meeting did not fit the earlier one), so on average every node but one
    holds more than T/2. Both bounds hold; the better one is taken. With L > T the
    largest meeting fits no node (flagged by the caller) and the other meetings still
    pack at T/2, so the value never rises with L (the count is monotone in L).
    """
    if target <= 0:
        return 0.0
    if largest > target:
        return target / 2
    return max(target - max(largest, 0.0), target / 2)


def supported_demand(
    capacity: dict[str, float], largest: dict[str, float], servers: int, what_if: WhatIf
) -> dict[str, float]:
    """Per constraint: the largest demand ``servers`` nodes carry under both formulas.

    ``ceil(D / usable) ≤ N`` ⇔ ``D ≤ N·usable`` and ``ceil(D / (u_fail·C)) + R ≤ N`` ⇔
    ``D ≤ (N − R)·u_fail·C``, so a demand is enough for ``servers`` exactly when it is at
    most this figure (the headroom and the time to saturation both use it).
    """
    result: dict[str, float] = {}
    for k in CONSTRAINTS:
        usable = usable_per_node(what_if.headroom(k) * capacity[k], largest[k])
        failure = what_if.failure(k) * capacity[k] * max(servers - what_if.redundancy, 0)
        result[k] = min(servers * usable, failure)
    return result


def servers_for(
    demand: dict[str, float], largest: dict[str, float], capacity: dict[str, float], what_if: WhatIf
) -> dict[str, dict[str, float | bool | None]]:
    """Per constraint: n_normal, n_failure, servers and whether the largest meeting fits.

    The normal-operation count uses :func:`usable_per_node`; when the largest meeting
    alone exceeds one node's target (L_k > u_k·C_k) ``largest_meeting_fits`` is False,
    so the answer stays a number and says why.
    """
    result: dict[str, dict[str, float | bool | None]] = {}
    for k in CONSTRAINTS:
        target = what_if.headroom(k) * capacity[k]
        fits = largest[k] <= target
        usable = usable_per_node(target, largest[k])
        n_normal = math.ceil(demand[k] / usable - 1e-9) if usable > 0 else None
        failure_cap = what_if.failure(k) * capacity[k]
        n_failure = (
            math.ceil(demand[k] / failure_cap - 1e-9) + what_if.redundancy
            if failure_cap > 0
            else None
        )
        servers = None if n_normal is None or n_failure is None else max(n_normal, n_failure)
        result[k] = {
            "n_normal": n_normal,
            "n_failure": n_failure,
            "servers": servers,
            "largest_meeting_fits": fits,
        }
    return result


def total_servers(
    per: dict[str, dict[str, float | bool | None]], what_if: WhatIf
) -> tuple[int | None, str]:
    """N and the binding constraint (the first constraint with the largest need)."""
    needs = {k: per[k]["servers"] for k in CONSTRAINTS}
    if any(v is None for v in needs.values()):
        binding = next(k for k in CONSTRAINTS if needs[k] is None)
        return None, binding
    binding = max(CONSTRAINTS, key=lambda k: (needs[k], -CONSTRAINTS.index(k)))
    top = needs[binding]
    assert top is not None  # every constraint has a count (checked above)
    return max(int(top), what_if.min_servers), binding


@dataclass(frozen=True)
class Sizing:
    """The sizing answer (the JSON of ``/api/v1/capacity`` and ``size``)."""

    servers_needed: dict[str, int | None]
    servers_online: int
    binding_constraint: str
    binding_by_horizon: dict[str, str]
    per_constraint: dict[str, dict[str, object]]
    headroom: dict[str, float | None]
    time_to_saturation_seconds: float | None
    demand_at: dict[str, str | None]
    what_if: WhatIf
    notes: tuple[str, ...] = ()
    # 1 − demand now ÷ (target × capacity of the online servers): no largest-meeting or
    # N+R term; the meaning alerts/ gives confscale_pool_headroom_ratio (docs/alerts.md)
    utilisation_headroom: dict[str, float | None] = field(default_factory=dict)
    # per horizon: the packing-aware count, its fluid and analytic bounds, which was used
    packing: dict[str, dict[str, object]] = field(default_factory=dict)
    # the Jitsi bridges' own count (planner/jitsi.py), None when the pool has none sized
    jitsi: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "servers_needed": dict(self.servers_needed),
            "servers_online": self.servers_online,
            "binding_constraint": self.binding_constraint,
            "binding_constraint_by_horizon": dict(self.binding_by_horizon),
            "per_constraint": self.per_constraint,
            "headroom": dict(self.headroom),
            "utilisation_headroom": dict(self.utilisation_headroom),
            "time_to_saturation_seconds": self.time_to_saturation_seconds,
            "demand_at": dict(self.demand_at),
            "what_if": asdict(self.what_if),
            "notes": list(self.notes),
            "packing": {h: dict(v) for h, v in self.packing.items()},
            **({"jitsi": self.jitsi} if self.jitsi is not None else {}),
        }


def horizon_demand(forecast: pd.DataFrame, what_if: WhatIf) -> dict[str, tuple[float, str | None]]:
    """Participants per horizon and when: now (last observed hour), next peak, 4 weeks."""
    actual = forecast["actual"].dropna() if "actual" in forecast else pd.Series(dtype=float)
    future = forecast[forecast["actual"].isna()] if "actual" in forecast else forecast
    column = f"upper_{what_if.band}"
    upper = (
        future[column]
        if column in future and future[column].notna().any()
        else future["median"] * 1.25
    )

    def peak(series: pd.Series) -> tuple[float, str | None]:
        series = series.dropna()
        if series.empty:
            return (float("nan"), None)
        when = series.idxmax()
        return float(series.max()), when.isoformat()

    now = (
        (float(actual.iloc[-1]), actual.index[-1].isoformat())
        if len(actual)
        else (float("nan"), None)
    )
    return {
        "now": now,
        "next_peak": peak(upper.iloc[:NEXT_PEAK_HOURS]),
        "4w": peak(upper.iloc[FOUR_WEEKS_HOURS - NEXT_PEAK_HOURS : FOUR_WEEKS_HOURS]),
    }


def size_pool(
    forecast: pd.DataFrame,
    *,
    mix: DemandMix,
    model: ResourceModel,
    capacity: NodeCapacity,
    servers_online: int,
    what_if: WhatIf | None = None,
    weekly_growth: float = 1.0,
    meetings: MeetingTable | None = None,
) -> Sizing:
    """Size the pool from a forecast frame (see :func:`planner.forecast.forecast_frame`).

    With ``meetings`` (the pool's own, :func:`planner.mix.meeting_table`) each horizon's
    count is the packing-aware one (:mod:`planner.packing`): at least the fluid bound, at
    most Graham's bound for least-loaded placement, the analytic count shown beside it;
    without, the analytic count.
    """
    what_if = (what_if or WhatIf()).validated()
    caps = effective_capacity(capacity, model, what_if)
    largest = largest_meeting_load(mix, model, what_if)
    notes: list[str] = []
    if f"upper_{what_if.band}" not in forecast or forecast[f"upper_{what_if.band}"].isna().all():
        notes.append("forecast bands uncalibrated (short history): demand = median × 1.25")
    demand_points = horizon_demand(forecast, what_if)
    needed: dict[str, int | None] = {}
    binding_by: dict[str, str] = {}
    per: dict[str, dict[str, object]] = {
        k: {
            "capacity_per_node": round(caps[k], 3),
            "target_utilisation": what_if.headroom(k),
            "failure_utilisation": what_if.failure(k),
            "largest_meeting": round(largest[k], 3),
            "largest_meeting_fits": True,
            "demand": {},
            "servers_needed": {},
        }
        for k in CONSTRAINTS
    }
    demand_now: dict[str, float] = {}
    packing: dict[str, dict[str, object]] = {}
    # per horizon: the demand factor that makes the analytic formula ask for the
    # packing-aware count (packing_inflation); 1 without packing
    inflation: dict[str, float] = {}
    use_packing = meetings is not None and len(meetings) > 0
    priced = (
        meeting_costs(meetings, model, what_if) if meetings is not None and use_packing else None
    )
    for horizon in HORIZONS:
        participants, _ = demand_points[horizon]
        if not math.isfinite(participants):
            needed[horizon] = None
            notes.append(f"{horizon}: no demand figure (history too short or empty)")
            continue
        demand = constraint_demand(participants, mix, model, what_if)
        if horizon == "now":
            demand_now = demand
        per_horizon = servers_for(demand, largest, caps, what_if)
        total, binding = total_servers(per_horizon, what_if)
        if priced is not None and meetings is not None and total is not None:
            result = packed_count(priced, meetings, participants, demand, caps, what_if, total)
            packing[horizon] = {**result.as_dict(), "analytic_bound": total}
            if result.servers is not None:
                inflation[horizon] = packing_inflation(
                    demand, largest, caps, what_if, result.servers
                )
            if result.servers is not None:
                total = max(result.servers, what_if.min_servers)
                binding = result.binding or binding
            packing[horizon]["servers"] = total
            if horizon in inflation:  # the count's factor over the analytic formula
                packing[horizon]["inflation"] = round(inflation[horizon], 4)
        needed[horizon], binding_by[horizon] = total, binding
        for k in CONSTRAINTS:
            per[k]["demand"][horizon] = round(demand[k], 3)  # type: ignore[index]
            per[k]["servers_needed"][horizon] = per_horizon[k]["servers"]  # type: ignore[index]
        if total is None:
            notes.append(f"{horizon}: no server count: a capacity or target is zero")
        for k in CONSTRAINTS:
            if not per_horizon[k]["largest_meeting_fits"]:
                per[k]["largest_meeting_fits"] = False
    # Headroom and time to saturation scan demand with the analytic formula (cheap, exact
    # in demand), the demand scaled by the packing-aware count's inflation, so both agree
    # with the count: more needed now than online is headroom below 0 on the binding
    # constraint. The horizon nearest the demand scanned gives the factor (now for the
    # headroom, the next peak for the time to saturation), else the other one.
    rho_now = inflation.get("now", inflation.get("next_peak", 1.0))
    rho_peak = inflation.get("next_peak", rho_now)
    supported = supported_demand(caps, largest, servers_online, what_if)
    headroom = {
        k: (
            round(1 - rho_now * demand_now[k] / supported[k], 4)
            if demand_now and supported[k] > 0
            else None
        )
        for k in CONSTRAINTS
    }
    utilisation = {
        k: (
            round(1 - demand_now[k] / (what_if.headroom(k) * caps[k] * servers_online), 4)
            if demand_now and servers_online and caps[k] > 0
            else None
        )
        for k in CONSTRAINTS
    }
    for k in CONSTRAINTS:
        if not per[k]["largest_meeting_fits"]:
            notes.append(
                f"the largest meeting ({mix.largest_meeting:.0f} participants) needs more "
                f"than one node's {k} target; its term is left out of the {k} count: "
                "bigger nodes or a higher target are needed"
            )
    binding = binding_by.get("next_peak") or binding_by.get("now") or CONSTRAINTS[0]
    saturation = time_to_saturation(
        forecast,
        mix=mix,
        model=model,
        largest=largest,
        caps=caps,
        servers_online=servers_online,
        what_if=what_if,
        weekly_growth=weekly_growth,
        inflation=rho_peak,
    )
    return Sizing(
        needed,
        servers_online,
        binding,
        binding_by,
        per,
        headroom,
        saturation,
        {h: demand_points[h][1] for h in HORIZONS},
        what_if,
        tuple(notes),
        utilisation,
        packing,
    )


def packing_inflation(
    demand: dict[str, float],
    largest: dict[str, float],
    caps: dict[str, float],
    what_if: WhatIf,
    servers: int,
) -> float:
    """ρ such that the analytic formula, unrounded, asks for ``servers`` at ρ × ``demand``.

    The formula's terms are ``D_k / usable_k`` and ``D_k / F_k + R``; the largest of them
    at ρ·D equals ``servers`` when ρ is the least of ``(servers − extra) ÷ (D_k / den)``
    over the terms. Headroom and time to saturation scan demand with that cheap formula;
    scaling the demand by ρ makes them agree with a packing-aware count: a demand is
    enough for N online servers exactly when its count is at most N. 1 with no demand.
    """
    rho = math.inf
    for k in CONSTRAINTS:
        if demand[k] <= 0:
            continue
        usable = usable_per_node(what_if.headroom(k) * caps[k], largest[k])
        if usable > 0:
            rho = min(rho, servers * usable / demand[k])
        failure = what_if.failure(k) * caps[k]
        if failure > 0:
            rho = min(rho, max(servers - what_if.redundancy, 0) * failure / demand[k])
    return rho if math.isfinite(rho) and rho > 0 else 1.0


def fluid_bound(demand: dict[str, float], caps: dict[str, float], what_if: WhatIf) -> int:
    """⌈D_k / T_k⌉ and ⌈D_k / F_k⌉ + R, the most over constraints: no packing does better."""
    need = 0
    for k in CONSTRAINTS:
        target, failure = what_if.headroom(k) * caps[k], what_if.failure(k) * caps[k]
        if target > 0:
            need = max(need, math.ceil(demand[k] / target - 1e-9))
        if failure > 0:
            need = max(need, math.ceil(demand[k] / failure - 1e-9) + what_if.redundancy)
    return need


def packed_count(
    priced: np.ndarray,
    meetings: MeetingTable,
    participants: float,
    demand: dict[str, float],
    caps: dict[str, float],
    what_if: WhatIf,
    analytic: int,
) -> PackingResult:
    """The packing-aware count for one horizon's pool participants (see planner.packing)."""
    targets = np.array([what_if.headroom(k) * caps[k] for k in CONSTRAINTS])
    failure = np.array([what_if.failure(k) * caps[k] for k in CONSTRAINTS])
    fluid = fluid_bound(demand, caps, what_if)
    key = (
        round(participants * what_if.growth, 6),
        hash(priced.tobytes()),
        tuple(targets),
        tuple(failure),
        what_if.redundancy,
        what_if.packing_risk,
        fluid,
        analytic,
    )
    cached = meetings.results.get(key)
    if cached is not None:
        return cached
    costs, mask, options = packing_problem(
        priced, meetings, participants, what_if, targets, failure
    )
    result = packing_servers(costs, mask, **options, fluid=fluid, analytic=analytic)  # type: ignore[arg-type]
    if len(meetings.results) >= 256:
        meetings.results.clear()
    meetings.results[key] = result
    return result


def packing_problem(
    priced: np.ndarray,
    meetings: MeetingTable,
    participants: float,
    what_if: WhatIf,
    targets: np.ndarray,
    failure: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """The drawn meetings' costs, which arrive, and the search's options (bench reuses it)."""
    index, mask = meetings.draw(participants * what_if.growth)
    arrivals = int(mask.sum(axis=1).max())  # each trial's arrivals are a prefix of its draw
    index, mask = index[:, :arrivals], mask[:, :arrivals]
    return (
        # constraint × meeting × trial in memory (what planner.packing reads fastest),
        # seen as trials × meetings × constraints
        np.take(np.ascontiguousarray(priced.T), index.T, axis=1).transpose(2, 1, 0),
        mask,
        {
            "constraints": CONSTRAINTS,
            "targets": np.where(targets > 0, targets, np.inf),
            "failure": np.where(failure > 0, failure, np.inf),
            "redundancy": what_if.redundancy,
            "risk": what_if.packing_risk,
        },
    )


def time_to_saturation(
    forecast: pd.DataFrame,
    *,
    mix: DemandMix,
    model: ResourceModel,
    largest: dict[str, float],
    caps: dict[str, float],
    servers_online: int,
    what_if: WhatIf,
    weekly_growth: float,
    inflation: float = 1.0,
) -> float | None:
    """Seconds from the last observation until the online servers are not enough.

    ``inflation`` scales each demand before the analytic count (see packing_inflation).

    Scans the forecast's upper band hour by hour; past its end, extrapolates the weekly
    growth from the last forecast week's peak. 0 when short already; None when never
    (no growth) or unknown.
    """
    if "actual" not in forecast or forecast["actual"].dropna().empty:
        return None
    last = forecast["actual"].dropna().index[-1]
    future = forecast.loc[forecast.index > last]
    column = f"upper_{what_if.band}"
    upper = (
        future[column]
        if column in future and future[column].notna().any()
        else future["median"] * 1.25
    )
    upper = upper.dropna()

    def enough(participants: float) -> bool:
        demand = constraint_demand(participants, mix, model, what_if)
        per = servers_for({k: v * inflation for k, v in demand.items()}, largest, caps, what_if)
        total, _ = total_servers(per, what_if)
        return total is not None and total <= servers_online

    if not enough(float(forecast["actual"].dropna().iloc[-1])):
        return 0.0
    # The need is monotone in demand: find the largest supported demand once, then scan.
    low, high = 0.0, 1.0
    while enough(high) and high < 1e9:
        low, high = high, high * 2
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if enough(mid) else (low, mid)
    limit = low
    over = np.flatnonzero(upper.to_numpy() > limit)
    if over.size:
        return float((upper.index[over[0]] - last).total_seconds())
    if upper.empty or weekly_growth <= 1.0:
        return None
    last_week_peak = float(upper.iloc[-NEXT_PEAK_HOURS:].max())
    if last_week_peak <= 0:
        return None
    weeks = math.log(limit / last_week_peak) / math.log(weekly_growth)
    return float((upper.index[-1] - last).total_seconds() + max(weeks, 0.0) * 7 * 86400)
