"""The Jitsi adapter against a fake JVB REST API following the JVB source (tests/fake_jvb.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from adapter_support import placement_for
from confscale.planner.adapters.http import AdapterError
from confscale.planner.adapters.jitsi import RECORD_SCHEMA, JitsiAdapter
from confscale.planner.adapters.memory import NodeRecords
from fake_jvb import FakeBridge, serve


def jvb(pressures: dict[str, float], out: tuple[str, ...] = ()):
    return placement_for(pressures, kind="jitsi", previous_out=frozenset(out))


def test_contract_drain_and_undrain_exactly_and_read_back() -> None:
    bridge = FakeBridge()
    with serve(bridge) as url:
        adapter = JitsiAdapter({"jvb-01": url}, dry_run=False)
        adapter.apply(jvb({"jvb-01": 0.95}))
        assert bridge.drain is True
        adapter.apply(jvb({"jvb-01": 0.95}, ("jvb-01",)))  # no repeat
        adapter.apply(jvb({"jvb-01": 0.8}, ("jvb-01",)))  # hysteresis: held out
        adapter.apply(jvb({"jvb-01": 0.5}, ("jvb-01",)))
    assert bridge.drain is False
    posts = [(m, p, b) for m, p, b in bridge.calls if m == "POST"]
    assert posts == [
        ("POST", "/colibri/drain/enable", b""),
        ("POST", "/colibri/drain/disable", b""),
    ]
    assert {p for m, p, _ in bridge.calls if m == "GET"} == {"/colibri/stats"}


def test_reads_the_drain_resource_when_colibri_stats_is_off() -> None:
    bridge = FakeBridge(colibri_rest=False)  # the JVB default: videobridge.apis.rest off
    with serve(bridge) as url:
        adapter = JitsiAdapter({"jvb-01": url}, dry_run=False)
        adapter.apply(jvb({"jvb-01": 0.95}))
    assert bridge.drain is True
    assert ("GET", "/colibri/drain", b"") in bridge.calls


def test_never_fights_an_operator_and_leaves_shutting_down_bridges_alone() -> None:
    operator, leaving, ours = (
        FakeBridge(drain=True),
        FakeBridge(graceful_shutdown=True),
        FakeBridge(),
    )
    sick = FakeBridge(healthy=False)
    with serve(operator) as a, serve(leaving) as b, serve(ours) as c, serve(sick) as d:
        adapter = JitsiAdapter({"jvb-a": a, "jvb-b": b, "jvb-c": c, "jvb-d": d}, dry_run=False)
        adapter.apply(jvb({"jvb-a": 0.2, "jvb-b": 0.95, "jvb-c": 0.95, "jvb-d": 0.95}))
        assert operator.drain is True  # not undrained: it was not ours
        assert leaving.drain is False  # shutting down: left alone
        assert adapter.health.view().held_by_operator == {
            "jvb-a": "drained by the operator",
            "jvb-b": "shutting down",
            "jvb-d": "unhealthy (the bridge's own health check)",
        }
        assert ours.drain is True
        ours.drain = False  # the operator undrains the bridge we drained
        adapter.apply(jvb({"jvb-c": 0.95}, ("jvb-c",)))
        assert ours.drain is False  # we step back
        adapter.apply(jvb({"jvb-c": 0.5}, ("jvb-c",)))
        adapter.apply(jvb({"jvb-c": 0.95}))
        assert ours.drain is True  # back once, out again: ours to drain
    assert all(m == "GET" for m, _, _ in operator.calls + leaving.calls + sick.calls)


def test_a_drain_that_does_not_take_effect_is_a_failure_and_others_still_run(
    tmp_path: Path,
) -> None:
    broken, good = FakeBridge(ignore_drain=True), FakeBridge()
    state = tmp_path / "jitsi.json"
    with serve(broken) as a, serve(good) as b:
        adapter = JitsiAdapter(
            {"jvb-a": a, "jvb-b": b, "jvb-x": "http://127.0.0.1:9"},
            dry_run=False,
            timeout=2.0,
            memory=NodeRecords(RECORD_SCHEMA, state),
        )
        with pytest.raises(AdapterError) as failure:
            adapter.apply(jvb({"jvb-a": 0.95, "jvb-b": 0.95, "jvb-x": 0.95}))
    assert "jvb-a" in str(failure.value) and "did not take effect" in str(failure.value)
    assert "jvb-x" in str(failure.value) and "connection refused" in str(failure.value)
    assert good.drain is True  # one broken bridge never stops the others
    restarted = NodeRecords(RECORD_SCHEMA, state)
    assert restarted.get("jvb-b") == {"ours": True, "stepped_back": False}
    assert restarted.get("jvb-a") in (None, {"ours": False, "stepped_back": False})


def test_dry_run_reads_and_changes_nothing() -> None:
    bridge = FakeBridge()
    with serve(bridge) as url:
        adapter = JitsiAdapter({"jvb-01": url})
        assert adapter.apply(jvb({"jvb-01": 0.95})) == [("jvb-01", "enable")]
    assert bridge.drain is False
    assert all(m == "GET" for m, _, _ in bridge.calls)
    assert adapter.health.view().state == "dry-run"


def test_a_bridge_in_maintenance_is_drained_and_undrained_when_it_ends() -> None:
    from dataclasses import replace

    from adapter_support import NOW
    from confscale.planner.placement import place

    bridge = FakeBridge()
    with serve(bridge) as url:
        adapter = JitsiAdapter({"jvb-01": url}, dry_run=False)
        calm = jvb({"jvb-01": 0.2})
        reading = replace(calm.nodes[0].reading, maintenance="maintenance by ann: upgrade")
        adapter.apply(place([reading], now=NOW))
        assert bridge.drain is True  # idle, drained all the same
        adapter.apply(jvb({"jvb-01": 0.2}))  # maintenance ended
    assert bridge.drain is False
