"""The autoscaler actuator (planner/autoscale.py, planner/adapters/autoscaler.py): early out,
late in, never below min_servers, only safe nodes proposed; its webhook (HMAC-signed) and
jitsi-autoscaler (a fake following its source, tests/fake_jitsi_autoscaler.py) targets."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler

import pytest
from confscale.planner.adapters.autoscaler import (
    SIGNATURE_HEADER,
    AutoscaleCollector,
    Autoscaler,
    JitsiAutoscalerTarget,
    WebhookTarget,
    sign,
)
from confscale.planner.adapters.http import AdapterError
from confscale.planner.adapters.runner import AdapterRunner
from confscale.planner.autoscale import AutoscalePolicy, AutoscaleState, decide
from confscale.planner.placement import NodeReading, place
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fake_jitsi_autoscaler import FakeAutoscaler, serve
from localhttp import serving

POLICY = AutoscalePolicy(lead=900, scale_in_after=3600, hold=1800, idle_for=1800, min_servers=2)


def placement(now, meetings, held=(), recordings=None):
    readings = [
        NodeReading(
            node=name, timestamp=now, meetings=m, participants=10.0 * m, cpu_utilisation=0.1,
            transmit_utilisation=0.1, held="cordoned" if name in held and name != "bbb-6" else None,
            maintenance="scale-in" if name in held and name == "bbb-6" else None,
            recordings_processing=(recordings or {}).get(name),
        )
        for name, m in meetings.items()
    ]  # fmt: skip
    return place(readings, now=now)


def run(needs, meetings_at, held_at=lambda t: (), step=600, start=0.0, policy=POLICY, rec=None):
    state, out = AutoscaleState(), []
    for i, need in enumerate(needs):
        now = start + i * step
        p = placement(now, meetings_at(now), held_at(now), rec)
        decision, state = decide(state, needed_ahead=need, placement=p, now=now, policy=policy)
        out.append(decision)
    return out


def test_scale_out_at_once_scale_in_late_and_only_by_safe_nodes():
    nodes = {f"bbb-{i}": 0 for i in range(1, 7)}
    busy = lambda t: {**nodes, "bbb-1": 3, "bbb-2": 2}  # noqa: E731
    decisions = run([6, 9, 9, 3, 3, 3, 3, 3, 3, 3, 3], busy)
    desired = [d.desired for d in decisions]
    assert desired[0] == 6 and desired[1] == 9  # out at once, the first cycle it is needed
    # in: the count ahead is 3 from cycle 3 (t=1800); after scale_in_after it drops to the 6
    # servers there are (9 was never booted), not lower: none is held out, so none is safe
    assert desired[3:9] == [9] * 6 and desired[9:] == [6, 6]
    assert all(not d.remove for d in decisions)
    assert decisions[-1].drain_first  # it says which idle nodes to cordon first
    assert not {"bbb-1", "bbb-2"} & set(decisions[-1].drain_first)  # never busy ones


def test_held_idle_nodes_are_removed_after_the_wait_never_below_min():
    nodes = {f"bbb-{i}": 0 for i in range(1, 7)}
    meetings = lambda t: {**nodes, "bbb-1": 3, "bbb-5": 1 if t < 3000 else 0}  # noqa: E731
    held = lambda t: ("bbb-4", "bbb-5", "bbb-6")  # noqa: E731
    decisions = run([6] + [1] * 14, meetings, held)
    waited = [d for d in decisions if d.at < 3600]
    assert all(d.desired == 6 for d in waited)  # scale_in_after 1h
    final = decisions[-1]
    assert final.desired >= POLICY.min_servers
    assert "bbb-1" not in final.remove
    for d in decisions:  # bbb-5 had a meeting until t=3000: not before idle_for after it
        if "bbb-5" in d.remove:
            assert d.at >= 3000 + POLICY.idle_for
    assert set(final.remove) <= {"bbb-4", "bbb-5", "bbb-6"} and final.remove
    assert len(final.remove) == 6 - final.desired


def test_recordings_processing_keep_a_node():
    nodes = {f"bbb-{i}": 0 for i in range(1, 4)}
    decisions = run([3] + [1] * 12, lambda t: nodes, lambda t: ("bbb-3",), rec={"bbb-3": 2})
    assert all("bbb-3" not in d.remove for d in decisions)
    assert "recording" in decisions[-1].blocked["bbb-3"]


def test_no_forecast_keeps_the_count():
    nodes = {"bbb-1": 0, "bbb-2": 0, "bbb-3": 0}
    decisions = run([None, None], lambda t: nodes)
    assert [d.desired for d in decisions] == [3, 3] and "no forecast" in decisions[0].reason


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append((self.headers.get(SIGNATURE_HEADER), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    with serving(Receiver) as server:
        server.got = []  # type: ignore[attr-defined]
        yield server


def scaler(targets, dry_run, clock):
    return Autoscaler(POLICY, targets, dry_run=dry_run, labels={"pool": "campus"}, clock=clock)


def test_webhook_gets_a_signed_body_only_when_actuating_and_on_change(receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    nodes = {"bbb-1": 1, "bbb-2": 0, "bbb-3": 0}
    dry = scaler([WebhookTarget(url, "s3cret")], True, lambda: 100.0)
    dry.apply(placement(100.0, nodes))
    assert receiver.got == [] and dry.last.desired == 3
    live = scaler([WebhookTarget(url, "s3cret")], False, lambda: 100.0)
    live.apply(placement(100.0, nodes))
    live.apply(placement(100.0, nodes))  # same decision: not sent again
    assert len(receiver.got) == 1
    signature, body = receiver.got[0]
    assert signature == sign("s3cret", body) and signature != sign("other", body)
    answer = json.loads(body)
    assert answer["pool"] == "campus" and answer["desired_servers"] == 3
    assert "s3cret" not in body.decode()
    text = "".join(
        f"{s.name} {s.labels} {s.value}\n"
        for m in AutoscaleCollector(lambda: [live]).collect() for s in m.samples
    )  # fmt: skip
    assert "confscale_pool_servers_desired {'pool': 'campus'} 3\n" in text


@pytest.fixture
def keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return pem, {hashlib.sha256(b"confscale").hexdigest(): public}


def test_jitsi_autoscaler_group_gets_the_count_clamped_to_its_range(keys):
    pem, public = keys
    fake = FakeAutoscaler(public)
    fake.add_group("campus", 1, 5, 2)
    nodes = {f"jvb-{i}": 0 for i in range(1, 8)}
    with serve(fake) as base:
        target = JitsiAutoscalerTarget(base, "campus", pem, key_id="confscale")
        live = scaler([target], False, lambda: 100.0)
        live.apply(placement(100.0, nodes))  # 7 servers, group max 5
        assert fake.groups["campus"]["scalingOptions"]["desiredCount"] == 5
        puts = [c for c in fake.calls if c[0] == "PUT"]
        assert puts == [("PUT", "/groups/campus/desired", {"desiredCount": 5})]
        wrong = JitsiAutoscalerTarget(base, "campus", pem, key_id="someone-else")
        bad = scaler([wrong], False, lambda: 100.0)
        runner = AdapterRunner(bad)
        assert runner.run_once(placement(100.0, nodes)) is False
        view = bad.health.view()
        assert view.state == "failing" and view.requests.get("unauthorized") == 1
        assert "Bearer" not in (view.reason or "") and "eyJ" not in (view.reason or "")
        missing = JitsiAutoscalerTarget(base, "nope", pem, key_id="confscale")
        with pytest.raises(AdapterError, match="HTTP 404"):
            missing.publish(live.last, None, live.health)


def test_the_exporter_reading_carries_recordings_processing_or_waiting():
    from confscale.planner.scrape import parse_exposition

    text = (
        "# TYPE bbb_recordings gauge\n"
        'bbb_recordings{node="bbb-1",state="processing"} 2\n'
        'bbb_recordings{node="bbb-1",state="published"} 40\n'
        "# TYPE bbb_recordings_unprocessed gauge\n"
        'bbb_recordings_unprocessed{node="bbb-1"} 1\n'
        'bbb_recordings_unprocessed{node="bbb-2"} 0\n'
    )
    nodes = parse_exposition(text)
    assert nodes["bbb-1"]["recordings_processing"] == 3
    assert nodes["bbb-2"]["recordings_processing"] == 0


def test_no_secret_token_or_key_in_logs_errors_or_health(keys, receiver, caplog):
    import logging

    pem, public = keys
    caplog.set_level(logging.DEBUG)
    fake = FakeAutoscaler(public, issuers=("someone-else",))  # our token is refused: 401
    fake.add_group("campus", 0, 9, 1)
    nodes = {"bbb-1": 1, "bbb-2": 0}
    with serve(fake) as base:
        target = JitsiAutoscalerTarget(base, "campus", pem, key_id="confscale")
        refused = WebhookTarget(f"http://127.0.0.1:{harness_free_port()}/hook?token=q", "s3cret")
        live = scaler([target, refused], False, lambda: 100.0)
        assert AdapterRunner(live).run_once(placement(100.0, nodes)) is False
        tokens = [c for c in target.session.headers.values() if str(c).startswith("Bearer ")]
    view = live.health.view()
    parts = {"log": caplog.text, "reason": view.reason or "", "repr": repr(live) + repr(target)}
    text = "".join(parts.values())
    for where, part in parts.items():
        assert "s3cret" not in part and "token=q" not in part, where
    assert view.requests.get("unauthorized") == 1 and view.requests.get("unreachable") == 1
    assert tokens and tokens[0].split()[1] not in text
    assert "s3cret" not in text and "token=q" not in text
    assert "PRIVATE KEY" not in text and pem.splitlines()[1] not in text


def harness_free_port() -> int:
    from harness import free_port

    return free_port()
