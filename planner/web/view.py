"""What the page shows, as plain data: cards, messages, table rows (pure, no Dash).

Every figure comes from a :class:`~planner.snapshot.Snapshot` and, for the what-if panel,
a :class:`~planner.sizing.Sizing` from the engine's ``what_if``; nothing here fits or
forecasts. Callbacks hand these values to the layout unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from confscale.planner.adapters.health import HealthView
from confscale.planner.forecast import LEAD_BUCKETS
from confscale.planner.service import RefreshStatus
from confscale.planner.sizing import Sizing
from confscale.planner.snapshot import Snapshot

DAY = 86400.0


@dataclass(frozen=True)
class Card:
    """One overview card: a title, the figure, a line under it, and a tone."""

    key: str
    title: str
    value: str
    detail: str = ""
    tone: str = "neutral"  # neutral | good | warn | bad


@dataclass(frozen=True)
class Message:
    """A banner above the page (never a traceback)."""

    tone: str  # info | warn | bad
    title: str
    text: str


def fmt_servers(value: object) -> str:
    """A server count (an int, or None: unknown) as the page shows it."""
    return "—" if value is None else str(value)


def fmt_duration(seconds: float | None) -> str:
    """``3.5 d``, ``11 h``, ``never`` (None: never saturates or unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "not within the forecast"
    if seconds <= 0:
        return "now"
    if seconds < 2 * DAY:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / DAY:.1f} d"


def fmt_when(iso: str | None) -> str:
    if not iso:
        return ""
    stamp = pd.Timestamp(iso)
    return stamp.strftime("%a %d %b %H:%M UTC")


def overview_cards(snapshot: Snapshot, sizing: Sizing, lead_time_days: float) -> list[Card]:
    """The overview cards for ``sizing`` (the snapshot's own or a what-if one)."""
    needed = sizing.servers_needed
    online = sizing.servers_online
    cards = [
        Card("online", "Servers online", str(online), "BBB nodes available or drained"),
    ]
    for key, title in (
        ("now", "Needed now"),
        ("next_peak", "At the next peak"),
        ("4w", "In 4 weeks"),
    ):
        value = needed.get(key)
        when = fmt_when(sizing.demand_at.get(key))
        if value is None:
            cards.append(
                Card(
                    key,
                    title,
                    "—",
                    f"{sizing.binding_by_horizon.get(key, sizing.binding_constraint)}: "
                    "largest meeting does not fit one node (or no demand figure)",
                    "bad",
                )
            )
            continue
        tone = "bad" if value > online else "good"
        baseline = snapshot.sizing.servers_needed.get(key)
        if sizing is not snapshot.sizing and baseline != value:
            when = f"{when} · without what-if {fmt_servers(baseline)}"
        bounds = packing_line(sizing, key)
        if bounds:
            when = f"{when} · {bounds}"
        cards.append(Card(key, title, str(value), when, tone))
    cards.append(
        Card(
            "binding",
            "Binding constraint",
            sizing.binding_constraint,
            "sets the number at the next peak",
        )
    )
    headroom = sizing.headroom.get(sizing.binding_constraint)
    cards.append(
        Card(
            "headroom",
            "Headroom now",
            "—" if headroom is None else f"{headroom:.0%}",
            f"of the {sizing.binding_constraint} target on the online nodes",
            "neutral" if headroom is None else ("bad" if headroom < 0.1 else "good"),
        )
    )
    saturation = sizing.time_to_saturation_seconds
    lead = lead_time_days * DAY
    short = saturation is not None and saturation < lead
    cards.append(
        Card(
            "saturation",
            "Time to saturation",
            fmt_duration(saturation),
            f"procurement lead time {lead_time_days:g} d",
            "bad" if short else "good",
        )
    )
    cards.append(forecast_health(snapshot))
    if sizing.jitsi is not None:
        cards.append(jitsi_card(sizing.jitsi))
    return cards


def jitsi_card(jitsi: dict[str, object]) -> Card:
    """The Jitsi bridges' own count (planner/jitsi.py), apart from the BBB cards."""
    needed = jitsi["servers_needed"]
    online = int(jitsi["servers_online"])  # type: ignore[call-overload]
    fit = jitsi["fit"]
    assert isinstance(needed, dict) and isinstance(fit, dict)
    counts = " / ".join(fmt_servers(needed.get(h)) for h in ("now", "next_peak", "4w"))
    peak = needed.get("next_peak")
    tone = "neutral" if peak is None else ("bad" if peak > online else "good")
    return Card(
        "jitsi",
        "Jitsi bridges needed",
        counts,
        f"now / next peak / 4 weeks · {online} online · binding {jitsi['binding_constraint']} "
        f"at {jitsi['target_stress']:g} · stress fit {fit['source']}",
        tone,
    )


def packing_line(sizing: Sizing, horizon: str) -> str:
    """``packed 12 · fluid 8, analytic 10, upper 15``: the count, its bounds, the way out."""
    packing = sizing.packing.get(horizon)
    if not packing:
        return ""
    used = {"packing": "packed", "fluid": "fluid bound", "upper": "upper bound"}
    label = used.get(str(packing["used"]), str(packing["used"]))
    if packing["used"] == "upper" and isinstance(packing.get("risk"), float):
        # why: least-loaded placement overfilled a node too often even at that count
        label = f"{label} (least-loaded over a target in {packing['risk']:.0%} of peaks)"
    line = (
        f"{label} · fluid {fmt_servers(packing['fluid_bound'])}, "
        f"analytic {fmt_servers(packing['analytic_bound'])}, "
        f"upper {fmt_servers(packing.get('upper_bound'))}"
    )
    apart = packing.get("lectures_apart")
    servers = packing.get("servers")
    # the way out, when it is one (the JSON has it either way)
    if isinstance(apart, int) and isinstance(servers, int) and apart < servers:
        line = f"{line} · {fmt_servers(apart)} with meetings over half a node apart"
    return line


def forecast_health(snapshot: Snapshot) -> Card:
    """Backtest MASE of the chosen method against seasonal naive."""
    table = snapshot.backtest
    if table.empty or "mase" not in table:
        return Card("health", "Forecast health", "no backtest", "history too short", "warn")
    mase = table["mase"].to_dict()
    ours, naive = mase.get("confscale"), mase.get("seasonal_naive")
    chosen = sorted(set(snapshot.method_by_horizon.values())) or ["confscale"]
    best = min((mase.get(m) for m in chosen if mase.get(m) is not None), default=None)
    if best is None or naive is None or not math.isfinite(float(naive)):
        return Card("health", "Forecast health", "—", "backtest incomplete", "warn")
    tone = "good" if ours is not None and float(ours) <= float(naive) else "warn"
    return Card(
        "health",
        "Forecast health",
        f"MASE {float(best):.2f}",
        f"confscale {_num(ours)} vs seasonal naive {_num(naive)} (uses {', '.join(chosen)})",
        tone,
    )


def _num(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return f"{number:.2f}" if math.isfinite(number) else "—"


def messages(snapshot: Snapshot | None, status: RefreshStatus, source: str) -> list[Message]:
    """Banners: no result yet, source unreachable, short history, engine warnings."""
    out: list[Message] = []
    error = status.last_error
    if snapshot is None:
        if error:
            out.append(
                Message(
                    "bad",
                    "No planner result: cannot read "
                    + ("current data" if "current data:" in error else source),
                    f"{error}. The page fills in by itself once the next refresh succeeds.",
                )
            )
        else:
            out.append(
                Message("info", "Computing…", f"The first planner run on {source} is under way.")
            )
        return out
    if error:
        when = pd.Timestamp(snapshot.generated_at, unit="s").strftime("%Y-%m-%d %H:%M UTC")
        out.append(
            Message("warn", f"Showing the result of {when}", f"The last refresh failed: {error}")
        )
    for warning in snapshot.warnings:
        short = "hours of history" in warning
        title = "History too short" if short else "Degraded"
        if "bands from a short history" in warning:
            title = "Forecast bands from a short history"
        out.append(Message("warn", title, warning))
    for note in snapshot.sizing.notes:
        out.append(Message("info", "Sizing note", note))
    scope = snapshot.sizing_scope()
    if scope["not_sized"]:
        out.append(Message("info", "Sizing covers the BBB part of the pool", str(scope["note"])))
    return out


def answer_messages(ages: dict[str, tuple[float, bool, bool]]) -> list[Message]:
    """A banner when the API serves a saved or stale answer (it never passes as current)."""
    out: list[Message] = []
    for answer, (age, stale, restored) in sorted(ages.items()):
        minutes = age / 60
        old = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
        if stale:
            detail = (
                "balancers reading the placement see every node stale and no recommendation"
                if answer == "placement"
                else "the server counts are not current"
            )
            out.append(
                Message(
                    "bad",
                    f"The {answer} answer is stale ({old} old"
                    + (", saved by an earlier run)" if restored else ")"),
                    f"No newer {answer} could be computed; {detail}.",
                )
            )
        elif restored:
            out.append(
                Message(
                    "warn",
                    f"Showing the {answer} answer saved {old} ago",
                    "Served from the state file until the first refresh succeeds.",
                )
            )
    return out


def adapter_messages(views: list[HealthView]) -> list[Message]:
    """A banner per failing balancer adapter, in plain words (the status line has all)."""
    out = []
    for view in views:
        if view.state != "failing":
            continue
        since = pd.Timestamp(view.failing_since, unit="s").strftime("%H:%M UTC")
        effect = (
            "the balancer keeps its last settings until it answers again"
            if view.actuating
            else "dry-run: nothing would change anyway"
        )
        out.append(
            Message(
                "bad" if view.actuating else "warn",
                f"Balancer adapter {view.adapter} failing since {since}",
                f"{view.reason}. Placement, API and page carry on; {effect}.",
            )
        )
    return out


def adapter_status(views: list[HealthView]) -> str:
    """Each adapter's state for the status line: dry-run, working, failing (and why)."""
    return " · ".join(view.summary() for view in views)


NODE_TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # id, header, format kind
    ("node", "Node", "text"),
    ("kind", "Kind", "text"),
    ("state", "State", "text"),
    ("meetings", "Meetings", "int"),
    ("participants", "Participants", "int"),
    ("largest_meeting", "Largest meeting", "int"),
    ("webcams", "Webcams", "int"),
    ("cpu_utilisation", "CPU", "pct"),
    ("link_utilisation", "Link / capacity", "pct"),
    ("pressure", "Pressure", "ratio"),
    ("weight", "Placement weight", "ratio"),
    ("reason", "Reason", "text"),
)


def node_rows(nodes: pd.DataFrame) -> list[dict[str, object]]:
    """Rows for the node table: plain JSON values, None for unknown (never NaN)."""
    rows: list[dict[str, object]] = []
    for record in nodes.to_dict("records"):
        row: dict[str, object] = {}
        for column, _, kind in NODE_TABLE_COLUMNS:
            value = record.get(column)
            if kind == "text":
                row[column] = "" if value is None else str(value)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                row[column] = None
                continue
            if not math.isfinite(number):
                row[column] = None
            elif kind == "int":
                row[column] = round(number)
            else:
                row[column] = round(number, 4)
        rows.append(row)
    return rows


def backtest_rows(snapshot: Snapshot) -> list[dict[str, object]]:
    """One row per method: MASE, interval coverage, peak error, and where it is used."""
    table = snapshot.backtest
    used: dict[str, list[str]] = {}
    for bucket, method in ordered_buckets(snapshot.method_by_horizon):
        used.setdefault(method, []).append(bucket)
    rows: list[dict[str, object]] = []
    for method, record in table.iterrows():
        rows.append(
            {
                "method": str(method),
                "mase": _round(record.get("mase")),
                "coverage_80": _round(record.get("coverage_80")),
                "coverage_95": _round(record.get("coverage_95")),
                "peak_ape": _round(record.get("peak_ape")),
                "origins": _round(record.get("origins"), 0),
                "chosen_for": ", ".join(used.get(str(method), [])) or "—",
            }
        )
    return rows


def ordered_buckets(method_by_horizon: dict[str, str]) -> list[tuple[str, str]]:
    """(bucket, method) pairs in lead-time order (1-24h before 25-168h before 169-672h)."""
    order = {name: i for i, (name, _, _) in enumerate(LEAD_BUCKETS)}
    return sorted(method_by_horizon.items(), key=lambda item: order.get(item[0], len(order)))


def backtest_horizon_rows(snapshot: Snapshot) -> list[dict[str, object]]:
    """One row per lead-time bucket and method; ``chosen`` says which one the planner uses."""
    table = getattr(snapshot, "backtest_by_horizon", None)
    if not isinstance(table, pd.DataFrame) or table.empty:
        return []
    return [
        {
            "bucket": str(record["bucket"]),
            "method": str(record["method"]),
            "mase": _round(record.get("mase")),
            "coverage_80": _round(record.get("coverage_80")),
            "coverage_95": _round(record.get("coverage_95")),
            "n": _round(record.get("n"), 0),
            "chosen": "yes" if bool(record.get("chosen")) else "",
        }
        for _, record in table.iterrows()
    ]


def _round(value: object, digits: int = 3) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None
