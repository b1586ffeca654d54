"""The autoscaler on the simulator's own history (confscale-sim history): a term morning
raises the desired count before the peak, the evening lowers it, and no node that still has
meetings is ever proposed for removal; and a real `confscale-planner serve` publishes the
count on /metrics and to a signed webhook (dry-run sends nothing)."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import harness
import pandas as pd
import pytest
import requests
from confscale.planner.adapters.autoscaler import SIGNATURE_HEADER, sign
from confscale.planner.autoscale import (
    AutoscalePolicy,
    AutoscaleState,
    decide,
    servers_needed_ahead,
)
from confscale.planner.calendar import load_calendar
from confscale.planner.history import derive_rates, load_history
from confscale.planner.nodes import readings_from_history
from confscale.planner.placement import place
from confscale.planner.snapshot import PlannerConfig, compute_snapshot

TERMS = "terms:\n  - {start: 2026-09-01, end: 2026-12-19}\n"
MORNING = pd.Timestamp("2026-11-10T03:00Z")  # a Tuesday in term, before anyone joins


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("autoscale-sim")
    (work / "terms.yml").write_text(TERMS)
    out = work / "history.parquet"
    subprocess.run(
        harness.python_module(
            "confscale.simulator.cli", "history", "--history.weeks", "4", "--pool.nodes", "8",
            "--model.seed", "3", "--history.end", "2026-11-10T23:55:00Z",
            "--model.term-calendar", str(work / "terms.yml"), "--output.file", str(out),
        ),
        check=True, cwd=harness.REPO, capture_output=True, timeout=300,
    )  # fmt: skip
    return out, work / "terms.yml"


def test_term_day_rises_before_the_peak_and_the_evening_removes_only_idle_nodes(history):
    path, terms = history
    frame = load_history(path)
    config = PlannerConfig(calendar=load_calendar(terms))
    snapshot = compute_snapshot(frame[frame.timestamp < MORNING], config)  # the 03:00 refit
    # The autoscaler's mechanics on the analytic count (no meeting table): this pool's
    # lectures of 150-250 seats on 200-seat nodes make least-loaded placement need more
    # than its 8 nodes all day (52 at the peak, 9 at night for the upper band's 278
    # participants), so no node would ever be spare and the evening could not be tested.
    snapshot = replace(snapshot, meetings=None)
    rates = derive_rates(frame)
    policy = AutoscalePolicy(
        lead=1800, scale_in_after=3600, hold=1800, idle_for=1800,
        min_servers=snapshot.sizing.what_if.min_servers,
    )  # fmt: skip
    state, held, seen = AutoscaleState(), set(), []
    for step in range(21 * 2):  # 03:00 to 23:30, every 30 minutes
        now = MORNING + pd.Timedelta(minutes=30 * step)
        readings = readings_from_history(rates[rates.timestamp <= now])
        # the operator (or maintenance mode) takes out the nodes the actuator names first
        readings = [
            replace(r, maintenance="scale-in" if r.node in held else None) for r in readings
        ]
        decision, state = decide(
            state,
            needed_ahead=servers_needed_ahead(snapshot, now.timestamp(), policy.lead),
            placement=place(readings, now=now.timestamp()),
            now=now.timestamp(),
            policy=policy,
        )
        held |= set(decision.drain_first)
        if decision.desired > decision.online + len(held):
            held.clear()  # scaling out: the taken-out nodes come back first
        seen.append((now, decision, {r.node: r.meetings for r in readings}))
    actual = rates[rates.timestamp.dt.normalize() == MORNING.normalize()]
    per_time = actual.groupby("timestamp").participants.sum()
    peak = per_time.idxmax()
    before = [(t, d.desired) for t, d, _ in seen if t < peak]
    # the first decision is the pool as found (all online); the rise is from the night's low
    low_at = min(range(len(before)), key=lambda i: (before[i][1], i))
    low = before[low_at][1]
    after_low = before[low_at:]
    assert max(n for _, n in after_low) > low, "the desired count did not rise before the peak"
    rise = next(t for t, n in after_low if n > low)
    assert rise < peak and per_time[per_time.index <= rise].max() < 0.5 * per_time.max()
    day_max = max(d.desired for _, d, _ in seen)
    evening = [d for t, d, _ in seen if t.hour >= 20]
    assert evening[-1].desired < day_max
    assert evening[-1].desired >= policy.min_servers
    proposed = [(t, n) for t, d, _ in seen for n in d.remove]
    assert any(t.hour >= 18 for t, _ in proposed), "no safe scale-in list in the evening"
    for t, d, _ in seen:  # no node with meetings now, or within idle_for before
        for node in d.remove:
            window = [m for u, _, m in seen if t - pd.Timedelta(seconds=policy.idle_for) <= u <= t]
            assert all(m.get(node) == 0 for m in window), (t, node)


class Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((self.headers.get(SIGNATURE_HEADER), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("actuate", [True, False])
def test_serve_publishes_the_count_on_metrics_and_to_the_signed_webhook(history, tmp_path, actuate):
    path, terms = history
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.got = []  # type: ignore[attr-defined]
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    secret = tmp_path / "hook.secret"
    secret.write_text("hook-s3cret\n")
    port = harness.free_port()
    proc = harness.Proc(
        "planner-autoscale",
        harness.python_module(
            "confscale.planner.cli", "serve", "--history.file", str(path),
            "--calendar.file", str(terms), "--web.listen-address", f"127.0.0.1:{port}",
            "--autoscale.webhook-url", f"http://127.0.0.1:{hook.server_port}/scale",
            "--autoscale.webhook-secret-file", str(secret),
            *(["--adapters.actuate"] if actuate else []),
        ),
        cwd=harness.REPO,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with harness.running(proc, f"{base}/-/healthy"):
            metrics = harness.wait_until(
                lambda: (
                    text
                    if "confscale_pool_servers_desired" in (text := requests.get(
                        f"{base}/metrics", timeout=5).text) and "_needed_ahead" in text
                    else None
                ),
                timeout=90,
                what="the desired count on /metrics",
            )  # fmt: skip
            if actuate:
                harness.wait_until(lambda: hook.got, timeout=30, what="the webhook call")
            else:
                harness.wait_until(
                    lambda: "autoscaler dry-run: would tell webhook" in proc.log(),
                    timeout=30,
                    what="the dry-run log line",
                )
            log = proc.log()
    finally:
        hook.shutdown()
        hook.server_close()
    assert 'confscale_planner_adapter_actuating{adapter="autoscaler"}' in metrics
    assert "hook-s3cret" not in metrics and "hook-s3cret" not in log
    if actuate:
        signature, body = hook.got[0]
        assert signature == sign("hook-s3cret", body)
        assert b'"desired_servers"' in body
    else:
        assert hook.got == []
