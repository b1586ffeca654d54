"""Simulator answers have the shape of real BBB answers (tests/fixtures) and node_exporter's."""

from __future__ import annotations

import datetime as dt

import requests
from confscale.simulator import model
from confscale.simulator.terms import TermCalendar
from harness import fixture_path, node_exporter, simulator
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

# children of these elements are free-form (metadata keys, client custom data)
FREE_FORM = {"metadata", "customdata"}


def paths(element: etree._Element, prefix: str = "") -> set[str]:
    """Every element path below ``element`` ('meetings/meeting/attendees/attendee/role')."""
    found = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        path = f"{prefix}{child.tag}"
        found.add(path)
        if child.tag not in FREE_FORM:
            found |= paths(child, path + "/")
    return found


def fixture(name: str) -> etree._Element:
    return etree.parse(str(fixture_path("bbb", name))).getroot()


def breakout_instant(seed: int) -> float:
    """A simulated instant when bbb-01 runs a seminar with breakout rooms open."""
    start = dt.datetime(2026, 10, 5, tzinfo=dt.UTC).timestamp()
    for day in range(model.day_index(start), model.day_index(start) + 14):
        for meeting in model.day_meetings(seed, "bbb-01", day, TermCalendar()):
            if meeting.breakout_window:
                return meeting.breakout_window[0] + 60
    raise AssertionError("no breakout rooms in two weeks of the load model")


def test_get_meetings_has_the_fixtures_structure():
    seed = 1
    at = breakout_instant(seed)
    with simulator(nodes=1, seed=seed, extra_args=[f"--clock.start={at}"]) as sim:
        info_url = None
        root = etree.fromstring(
            requests.get(sim.api_url("bbb-01", "getMeetings"), timeout=10).content
        )
        for meeting in root.iterfind("meetings/meeting"):
            has_people = meeting.find("attendees/attendee") is not None
            if has_people and meeting.findtext("isBreakout") == "false":
                info_url = sim.api_url(
                    "bbb-01", "getMeetingInfo", {"meetingID": meeting.findtext("meetingID")}
                )
        assert info_url is not None
        info = etree.fromstring(requests.get(info_url, timeout=10).content)
    breakouts = [m for m in root.iterfind("meetings/meeting") if m.findtext("isBreakout") == "true"]
    assert breakouts, "the chosen instant has breakout rooms"
    parent_ids = {m.findtext("internalMeetingID") for m in root.iterfind("meetings/meeting")}
    assert {m.findtext("parentMeetingID") for m in breakouts} <= parent_ids

    # getMeetings: the fixture's paths, plus the attendee element paths that the fixture
    # leaves empty (the getMeetingInfo fixture shows them)
    expected = paths(fixture("getMeetings_apiphp_3meetings_breakout.xml"))
    attendee = paths(fixture("getMeetingInfo_apiphp_4attendees_clienttypes.xml"))
    expected |= {f"meetings/meeting/{p}" for p in attendee if p.startswith("attendees/")}
    assert paths(root) == expected

    # getMeetingInfo: same fields directly under <response> (the fixture has breakoutRooms,
    # our chosen meeting may not)
    info_expected = attendee | paths(
        fixture("getMeetingInfo_bbbdocs_1attendee_greenlight_metadata.xml")
    )
    got = paths(info)
    assert got <= info_expected
    assert info_expected - got <= {"breakoutRooms", "breakoutRooms/breakout"}


def test_no_meetings_and_errors_have_the_fixtures_structure():
    # a holiday night: nothing runs
    at = dt.datetime(2026, 8, 9, 3, 0, tzinfo=dt.UTC).timestamp()
    with simulator(nodes=1, extra_args=[f"--clock.start={at}"]) as sim:
        empty = etree.fromstring(
            requests.get(sim.api_url("bbb-01", "getMeetings"), timeout=10).content
        )
        bad = requests.get(
            sim.api_url("bbb-01", "getMeetings").replace("checksum=", "checksum=0"), timeout=10
        )
    scalelite = fixture("getMeetings_scalelite_noMeetings.xml")
    assert empty.findtext("returncode") == "SUCCESS"
    assert empty.findtext("messageKey") == scalelite.findtext("messageKey") == "noMeetings"
    assert empty.findtext("message") == scalelite.findtext("message")
    # bbb-web leaves <meetings> out where Scalelite writes an empty one
    assert paths(scalelite) - paths(empty) == {"meetings"}
    error = etree.fromstring(bad.content)
    reference = fixture("error_checksumError_bbbdocs.xml")
    assert paths(error) == paths(reference)
    assert error.findtext("message") == reference.findtext("message")


def test_node_exporter_and_simulator_metrics_both_parse():
    with node_exporter() as url:
        real = requests.get(url, timeout=10).text
    with simulator(nodes=1) as sim:
        ours = requests.get(f"{sim.node_url('bbb-01')}/metrics", timeout=10).text

    def labels(text):
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, set()).update(sample.labels)
        return found

    real_labels, our_labels = labels(real), labels(ours)
    for name in (
        "node_cpu_seconds_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_load1",
        "node_boot_time_seconds",
    ):
        assert name in real_labels and name in our_labels, name
        assert our_labels[name] == real_labels[name], name
