"""The Scalelite adapter against a fake that follows Scalelite's source (tests/fake_scalelite.py).

Contract: every request the adapter can send (getServers, updateServer cordon / enable /
load_multiplier) is checked for path, method, query, checksum and body against the
rules of routes.rb and api_helper.rb. Behaviour: the issue's "done when" for Scalelite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import pytest
from adapter_support import NOW, placement_for
from confscale.planner.adapters import AdapterRunner, build_actuators, with_operator_holds
from confscale.planner.adapters.http import AdapterError
from confscale.planner.adapters.memory import NodeRecords
from confscale.planner.adapters.scalelite import (
    RECORD_SCHEMA,
    ScaleliteAdapter,
    Server,
    checksum,
    desired_factor,
)
from confscale.planner.placement import NodeReading, place
from confscale.planner.snapshot import servers_online
from fake_scalelite import FakeScalelite, FakeServer, serve

SECRET = "lb-secret-0123456789"
BBB_SECRETS = ("bbb-secret-one-aaaaaaaa", "bbb-secret-two-bbbbbbbb", "bbb-secret-3-ccc")


def pool() -> FakeScalelite:
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", BBB_SECRETS[0]))
    fake.add(
        FakeServer(
            "id-2",
            "https://bbb-02.example.org/bigbluebutton/api",
            BBB_SECRETS[1],
            load_multiplier="2.0",  # the operator's: a smaller machine
            tag="small",
        )
    )
    fake.add(
        FakeServer(
            "id-3", "https://bbb-03.example.org/bigbluebutton/api", BBB_SECRETS[2], state="disabled"
        )
    )
    fake.add(FakeServer("id-9", "https://other.example.org/bigbluebutton/api", "x-secret-9"))
    return fake


def adapter(url: str, **kwargs: object) -> ScaleliteAdapter:
    kwargs.setdefault("dry_run", False)
    return ScaleliteAdapter(url, SECRET, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_contract_every_request_is_what_scalelite_verifies(algorithm: str) -> None:
    fake = pool()
    with serve(fake) as url:
        sl = adapter(url, algorithm=algorithm)
        sl.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.7}))  # cordon + multiplier
        fake.servers["id-1"].state = "disabled"  # Scalelite's auto-disable
        sl.apply(placement_for({"bbb-01": 0.2, "bbb-02": 0.1}, previous_out=frozenset({"bbb-01"})))
    digest = getattr(hashlib, algorithm)
    expected = {
        action: digest(f"{action}{SECRET}".encode()).hexdigest()
        for action in ("getServers", "updateServer")
    }
    assert expected["getServers"] == checksum("getServers", "", SECRET, algorithm)
    gets = [r for r in fake.requests if r.method == "GET"]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(gets) == 2 and len(posts) == 4
    for r in gets:
        assert (r.path, r.query, r.body) == (
            "/scalelite/api/getServers",
            f"checksum={expected['getServers']}",
            b"",
        )
    bodies = []
    for r in posts:
        assert r.path == "/scalelite/api/updateServer"
        assert r.query == f"checksum={expected['updateServer']}"
        assert r.content_type == "application/json"
        bodies.append(json.loads(r.body))
    assert bodies == [  # in placement order: available nodes first
        {"id": "id-2", "server": {"load_multiplier": 2.8}},  # 2.0 × (1 + 2·0.2)
        {"id": "id-1", "server": {"state": "cordon"}},
        {"id": "id-2", "server": {"load_multiplier": 2.0}},  # back to the operator's
        {"id": "id-1", "server": {"state": "enable"}},
    ]
    assert fake.servers["id-2"].as_json()["load_multiplier"] == "2.0"  # a string, as Rails


def test_scalelite_rejects_what_it_rejects_and_the_adapter_says_so() -> None:
    fake = pool()
    fake.algorithms = ("SHA256",)  # LOADBALANCER_CHECKSUM_ALGORITHM=SHA256
    with serve(fake) as url:
        with pytest.raises(AdapterError, match="checksum rejected") as wrong_algorithm:
            adapter(url, algorithm="sha1").servers()
        with pytest.raises(AdapterError, match="checksum rejected") as wrong_secret:
            ScaleliteAdapter(url, "wrong-secret").servers()
        with pytest.raises(AdapterError, match="no such API"):
            adapter(url + "/old").servers()  # an unknown route: XML, HTTP 200
        fake.servers.clear()
        assert adapter(url).servers() == []  # 404 "No servers are configured"
    assert wrong_algorithm.value.result == wrong_secret.value.result == "unauthorized"
    # Scalelite answers every one of those with HTTP 200 and an XML body
    status, kind, body = fake.handle(type(fake.requests[0])("GET", "/nope", "", None, b""))
    assert status == 200 and kind.startswith("application/xml") and b"FAILED" in body


def test_saturated_node_cordoned_then_reenabled_after_auto_disable() -> None:
    fake = pool()
    with serve(fake) as url:
        sl = adapter(url)
        fake.servers["id-9"].load = 5.0
        assert fake.create().id == "id-1"  # untagged servers only; the lowest load
        sl.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.3}))
        assert fake.servers["id-1"].state == "cordoned"
        assert fake.create().id == "id-9"  # the cordon counts at once, between polls
        assert fake.servers["id-9"].load == 6.0  # + 1 × multiplier per create
        fake.poll()  # no attendees on the cordoned server: Scalelite disables it
        assert fake.servers["id-1"].state == "disabled"
        assert fake.servers["id-1"].as_json()["load"] == "unavailable"
        sl.apply(placement_for({"bbb-01": 0.8}, previous_out=frozenset({"bbb-01"})))
        assert fake.servers["id-1"].state == "disabled"  # hysteresis: still out
        sl.apply(placement_for({"bbb-01": 0.5}, previous_out=frozenset({"bbb-01"})))
        assert fake.servers["id-1"].state == "enabled"
        assert sl.health.view().held_out == ()
        # re-enabled from disabled, it has no load: no create reaches it before a poll
        assert fake.create().id == "id-9"
        fake.poll()
        assert fake.create().id == "id-1"
    states = [u["server"].get("state") for u in fake.updates()]
    assert set(states) <= {None, "cordon", "enable"}  # never disable
    assert all(r.path.rsplit("/", 1)[-1] in ("getServers", "updateServer") for r in fake.requests)


def test_operator_settings_are_respected() -> None:
    fake = pool()
    with serve(fake) as url:
        sl = adapter(url)
        sl.apply(placement_for({"bbb-01": 0.3, "bbb-02": 0.7, "bbb-03": 0.1}))
        assert fake.servers["id-2"].load_multiplier == "2.8"
        assert fake.servers["id-3"].state == "disabled"  # operator's: untouched
        assert sl.health.view().held_by_operator == {
            "bbb-03": "disabled by the operator in Scalelite"
        }
        fake.servers["id-2"].load_multiplier = "1.5"  # the operator changes their base
        sl.apply(placement_for({"bbb-01": 0.3, "bbb-02": 0.7}))
        assert fake.servers["id-2"].load_multiplier == "2.1"  # 1.5 × 1.4
        sl.apply(placement_for({"bbb-01": 0.3, "bbb-02": 0.2}))
        assert fake.servers["id-2"].load_multiplier == "1.5"  # restored
        fake.servers["id-1"].state = "cordoned"  # the operator cordons bbb-01
        sl.apply(placement_for({"bbb-01": 0.1, "bbb-02": 0.2}))
        assert fake.servers["id-1"].state == "cordoned"
        # we cordon bbb-02, the operator enables it again: we step back until it was in
        sl.apply(placement_for({"bbb-02": 0.95}))
        assert fake.servers["id-2"].state == "cordoned"
        fake.servers["id-2"].state = "enabled"
        sl.apply(placement_for({"bbb-02": 0.95}))
        assert fake.servers["id-2"].state == "enabled"
    untouched = fake.servers["id-9"]
    assert (untouched.state, untouched.load_multiplier) == ("enabled", None)
    assert all(u["id"] != "id-9" for u in fake.updates())
    assert all(u["id"] != "id-3" for u in fake.updates())
    assert fake.servers["id-2"].tag == "small"  # tags are never sent, so kept


def test_base_multiplier_survives_a_restart_and_state_holds_no_secret(tmp_path: Path) -> None:
    state = tmp_path / "state" / "scalelite.json"
    fake = pool()
    with serve(fake) as url:
        first = adapter(url, memory=NodeRecords(RECORD_SCHEMA, state))
        first.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.7}))
        assert fake.servers["id-2"].load_multiplier == "2.8"
        fake.poll()
        restarted = adapter(url, memory=NodeRecords(RECORD_SCHEMA, state))
        restarted.apply(
            placement_for({"bbb-01": 0.4, "bbb-02": 0.2}, previous_out=frozenset({"bbb-01"}))
        )
    assert fake.servers["id-1"].state == "enabled"
    assert fake.servers["id-2"].load_multiplier == "2.0"  # not 2.8: the base was remembered
    text = state.read_text()
    for secret in (SECRET, *BBB_SECRETS, *fake.checksums):
        assert secret not in text
    state.write_text('{"bbb-01": {"secret": "x"}}')
    with pytest.raises(ValueError, match="unknown adapter state fields"):
        NodeRecords(RECORD_SCHEMA, state)
    state.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read adapter state"):
        NodeRecords(RECORD_SCHEMA, state)


def test_dry_run_reads_logs_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    fake = pool()
    caplog.set_level(logging.DEBUG)
    with serve(fake) as url:
        sl = ScaleliteAdapter(url, SECRET)
        actions = sl.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.7}))
    assert fake.updates() == []
    assert {a.node for a in actions} == {"bbb-01", "bbb-02"}
    assert "would updateServer id-1 (bbb-01) {'state': 'cordon'}" in caplog.text
    assert sl.health.view().state == "dry-run"
    for secret in (SECRET, *BBB_SECRETS, *fake.checksums):
        assert secret not in caplog.text


def test_desired_factor_is_one_below_normal_and_grows_above() -> None:
    nodes = {n.node: n for n in placement_for({"a": 0.2, "b": 0.5, "c": 0.7, "d": 0.95}).nodes}
    assert [desired_factor(nodes[n]) for n in "abcd"] == [1.0, 1.0, 1.4, None]


def test_operator_held_servers_are_not_online_capacity() -> None:
    fake = pool()  # id-3 (bbb-03) disabled by the operator
    readings = [
        NodeReading(n, timestamp=NOW, pressure=0.3, participants=1.0)
        for n in ("bbb-01", "bbb-02", "bbb-03")
    ]
    with serve(fake) as url:
        runner = AdapterRunner(adapter(url))
        read = with_operator_holds(lambda: readings, [runner])
        before = place(read(), now=NOW)
        assert servers_online(before, "bbb") == 3  # nothing known about Scalelite yet
        assert runner.run_once(before)
        after = place(read(), now=NOW)
    states = {n.node: (n.state, n.reason, n.weight) for n in after.nodes}
    assert states["bbb-03"] == ("held", "disabled by the operator in Scalelite (scalelite)", 0.0)
    assert servers_online(after, "bbb") == 2
    assert fake.servers["id-3"].state == "disabled"


def test_a_state_dir_of_the_previous_version_is_read(tmp_path: Path) -> None:
    (tmp_path / "scalelite-cordoned.json").write_text('["bbb-01"]')  # the old list format
    args = argparse.Namespace(
        actuate=True,
        scalelite_url="http://127.0.0.1:9",
        scalelite_secret_file=tmp_path / "secret",
        scalelite_algorithm="sha256",
        scalelite_map=None,
        jitsi_bridges=None,
        b3lb=False,
        adapter_state_dir=tmp_path,
    )
    (tmp_path / "secret").write_text(SECRET)
    (runner,) = build_actuators(args)
    fake = pool()
    fake.servers["id-1"].state = "disabled"  # auto-disabled while the old planner ran
    with serve(fake) as url:
        runner.adapter.url = url
        assert runner.run_once(placement_for({"bbb-01": 0.3}))
    assert fake.servers["id-1"].state == "enabled"  # ours, so re-enabled
    assert json.loads((tmp_path / "scalelite.json").read_text())["bbb-01"]["cordoned"] is False


def test_scalelite_update_errors_are_reported_with_scalelite_words() -> None:
    fake = pool()
    with serve(fake) as url:
        sl = adapter(url)
        with pytest.raises(AdapterError, match="HTTP 404 Couldn't find server with id=id-77"):
            sl.update_server("id-77", {"state": "cordon"})  # removed since getServers
        with pytest.raises(AdapterError, match="HTTP 400 Load-multiplier must be a non-zero"):
            sl.update_server("id-1", {"load_multiplier": 0})
        del fake.servers["id-2"]  # a server deleted between getServers and updateServer
        real_servers = sl.servers
        gone = Server(
            "id-2", "https://bbb-02.example.org/bigbluebutton/api", "enabled", 2.0, "", True
        )
        sl.servers = lambda: [*real_servers(), gone]  # type: ignore[method-assign]
        with pytest.raises(AdapterError, match="bbb-02: scalelite updateServer id-2: HTTP 404"):
            sl.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.7}))
    assert fake.servers["id-1"].state == "cordoned"  # the other node's call went through
    assert sl.health.view().requests["not_found"] == 2


def test_a_node_in_maintenance_is_cordoned_and_enabled_when_it_ends() -> None:
    from dataclasses import replace

    fake = pool()
    with serve(fake) as url:
        sl = adapter(url)
        calm = placement_for({"bbb-01": 0.2, "bbb-02": 0.3})
        readings = [replace(n.reading, maintenance="maintenance by ann: disk") for n in calm.nodes]
        sl.apply(
            place(
                [r if r.node == "bbb-01" else replace(r, maintenance=None) for r in readings],
                now=NOW,
            )
        )
        assert fake.servers["id-1"].state == "cordoned"  # low pressure, cordoned all the same
        assert fake.servers["id-2"].state == "enabled"
        sl.apply(placement_for({"bbb-01": 0.2, "bbb-02": 0.3}))  # maintenance ended
        assert fake.servers["id-1"].state == "enabled"


def crowd(participants: dict[str, float], previous_out: frozenset[str] = frozenset()):
    """A placement where participants bind (2 meetings per node)."""
    readings = [
        NodeReading(n, timestamp=NOW, meetings=2, participants=p) for n, p in participants.items()
    ]
    return place(readings, now=NOW, previous_out=previous_out)


def test_admission_keeps_new_rooms_on_the_best_nodes_and_never_fights_the_operator() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    for i in range(1, 5):
        fake.add(FakeServer(f"id-{i}", f"https://bbb-0{i}.example.org/bigbluebutton/api", "s"))
    with serve(fake) as url:
        sl = adapter(url, admission=0.5)
        # 410 participants in 8 meetings: a typical room is 51 (0.256); half of it is the band
        sl.apply(crowd({"bbb-01": 40, "bbb-02": 60, "bbb-03": 120, "bbb-04": 190}))
        states = {s.id: s.state for s in fake.servers.values()}
        assert states == {
            "id-1": "enabled",
            "id-2": "enabled",
            "id-3": "cordoned",
            "id-4": "cordoned",
        }
        assert fake.create().id == "id-1"  # Scalelite's choice is one of the best nodes
        assert sl.health.view().held_out == ("bbb-04",)  # out; bbb-03 only sits out new rooms
        records = sl.memory.snapshot()
        assert records["bbb-03"]["admission"] and not records["bbb-04"]["admission"]
        # bbb-01 filled up, bbb-03 emptied: the best nodes change, Scalelite follows at once
        out = frozenset({"bbb-04"})
        sl.apply(crowd({"bbb-01": 150, "bbb-02": 60, "bbb-03": 50, "bbb-04": 190}, out))
        states = {s.id: s.state for s in fake.servers.values()}
        assert states == {
            "id-1": "cordoned",
            "id-2": "enabled",
            "id-3": "enabled",
            "id-4": "cordoned",
        }
        # the operator enables bbb-01 by hand: left enabled until it is among the best once
        fake.servers["id-1"].state = "enabled"
        sl.apply(crowd({"bbb-01": 150, "bbb-02": 60, "bbb-03": 50, "bbb-04": 190}, out))
        assert fake.servers["id-1"].state == "enabled"
        sl.apply(crowd({"bbb-01": 40, "bbb-02": 60, "bbb-03": 50, "bbb-04": 190}, out))
        sl.apply(crowd({"bbb-01": 150, "bbb-02": 60, "bbb-03": 50, "bbb-04": 190}, out))
        assert fake.servers["id-1"].state == "cordoned"  # it was; admission applies again
        # nodes close to each other are all admitted, however full
        sl.apply(crowd({"bbb-01": 170, "bbb-02": 172, "bbb-03": 171, "bbb-04": 190}, out))
        assert [s.id for s in fake.servers.values() if s.state == "enabled"] == [
            "id-1",
            "id-2",
            "id-3",
        ]
    assert {u["server"].get("state") for u in fake.updates()} <= {None, "cordon", "enable"}


def test_admission_never_leaves_scalelite_without_a_server_for_a_create() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    for i in range(1, 4):
        fake.add(FakeServer(f"id-{i}", f"https://bbb-0{i}.example.org/bigbluebutton/api", "s"))
    with serve(fake) as url:
        sl = adapter(url, admission=0.5)
        sl.apply(crowd({"bbb-01": 100, "bbb-02": 40, "bbb-03": 100}))
        assert [s.state for s in fake.servers.values()] == ["cordoned", "enabled", "cordoned"]
        fake.servers["id-2"].attendees, fake.servers["id-3"].attendees = 60, 100
        fake.poll()  # bbb-01's rooms ended (no attendees): Scalelite disables it
        assert fake.servers["id-1"].state == "disabled"
        # bbb-01 is now the best node, but re-enabled it takes no create before a poll:
        # the best of the others stays enabled this round
        sl.apply(crowd({"bbb-01": 0, "bbb-02": 60, "bbb-03": 100}))
        assert [s.state for s in fake.servers.values()] == ["enabled", "enabled", "cordoned"]
        assert fake.create().id == "id-2"
        fake.poll()
        sl.apply(crowd({"bbb-01": 0, "bbb-02": 60, "bbb-03": 100}))  # now it can
        assert [s.state for s in fake.servers.values()] == ["enabled", "cordoned", "cordoned"]


def test_admission_keeps_a_node_it_cannot_read_from_taking_the_creates() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    for i in range(1, 4):
        fake.add(FakeServer(f"id-{i}", f"https://bbb-0{i}.example.org/bigbluebutton/api", "s"))
    with serve(fake) as url:
        sl = adapter(url, admission=0.5)
        readings = [
            NodeReading("bbb-01", up=False),  # died: Scalelite still has it enabled
            NodeReading("bbb-02", timestamp=NOW, meetings=2, participants=40),
            NodeReading("bbb-03", timestamp=NOW, meetings=2, participants=150),
        ]
        sl.apply(place(readings, now=NOW))
        assert [s.state for s in fake.servers.values()] == ["cordoned", "enabled", "cordoned"]
        assert sl.health.view().held_out == ()  # admission only: Scalelite's poller decides
        back = [NodeReading("bbb-01", timestamp=NOW, meetings=0, participants=0), *readings[1:]]
        fake.servers["id-1"].load = 0.0
        sl.apply(place(back, now=NOW))
        assert fake.servers["id-1"].state == "enabled"  # back, and the best node now
    # without admission a node that cannot be read is left to Scalelite's health checks
    fake = FakeScalelite(secrets=(SECRET,))
    fake.add(FakeServer("id-1", "https://bbb-01.example.org/bigbluebutton/api", "s"))
    with serve(fake) as url:
        adapter(url).apply(place(readings[:1], now=NOW))
    assert fake.servers["id-1"].state == "enabled"


def test_without_admission_only_out_nodes_are_cordoned() -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    for i in range(1, 4):
        fake.add(FakeServer(f"id-{i}", f"https://bbb-0{i}.example.org/bigbluebutton/api", "s"))
    with serve(fake) as url:
        adapter(url).apply(crowd({"bbb-01": 40, "bbb-02": 120, "bbb-03": 190}))
    assert [s.state for s in fake.servers.values()] == ["enabled", "enabled", "cordoned"]


def test_the_admission_flag_reaches_the_adapter_and_bad_values_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from confscale.planner.adapters import add_adapter_flags

    parser = argparse.ArgumentParser()
    add_adapter_flags(parser)
    (tmp_path / "secret").write_text(SECRET)
    base = ["--scalelite.url", "http://127.0.0.1:9", "--scalelite.secret-file"]
    args = parser.parse_args([*base, str(tmp_path / "secret"), "--scalelite.admission", "0.5"])
    (runner,) = build_actuators(args)
    assert runner.adapter.admission == 0.5
    (runner,) = build_actuators(parser.parse_args([*base, str(tmp_path / "secret")]))
    assert runner.adapter.admission is None  # off unless asked for
    for bad in ("-1", "nan", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, "x", "--scalelite.admission", bad])
        assert (
            "--scalelite.admission must be a number of typical meetings" in capsys.readouterr().err
        )
