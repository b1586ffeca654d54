"""The BBB API calls, a third-party client from PyPI, and API meetings joining the load."""

from __future__ import annotations

import bigbluebutton_api_python as bigbluebutton  # the test extra's third-party client
import pytest
import requests
from confscale.simulator.model import Attendance
from harness import simulator
from lxml import etree


def call(pool, name, api, params=None, **kw):
    response = requests.get(pool.api_url(name, api, params), timeout=10, **kw)
    assert response.status_code in (200, 302), response.text[:200]
    return response


def xml(response):
    return etree.fromstring(response.content)


@pytest.fixture(scope="module")
def pool():
    # the PyPI client signs with sha1 only
    with simulator(nodes=2, checksum="sha1,sha256", seed=11) as sim:
        yield sim


def test_third_party_client_create_join_list_end(pool):
    client = bigbluebutton.BigBlueButton(
        f"{pool.node_url('bbb-01')}/bigbluebutton/api/", pool.secret
    )
    assert client.get_api_version().get_version() == "2.0"
    created = client.create_meeting(
        "pypi-client-room",
        params={"name": "PyPI client room", "attendeePW": "ap", "moderatorPW": "mp"},
        meta={"confscale-audience": "none"},
    )
    assert created.get_meetingid() == "pypi-client-room"
    join_url = client.get_join_meeting_url("Ada Lovelace", "pypi-client-room", "mp")
    joined = requests.get(join_url, timeout=10, allow_redirects=False)
    assert joined.status_code == 302
    assert "sessionToken=" in joined.headers["Location"]
    ids = [m.get_meetingid() for m in client.get_meetings().get_meetings()]
    assert "pypi-client-room" in ids
    answer = client.get_meeting_info("pypi-client-room")
    info = answer.get_meetinginfo()
    assert int(str(info.get_participantcount())) == 1
    assert int(str(info.get_moderator_count())) == 1
    assert [str(a.get_fullname()) for a in answer.get_attendees()] == ["Ada Lovelace"]
    assert client.is_meeting_running("pypi-client-room").is_meeting_running()
    client.end_meeting("pypi-client-room", "mp")
    assert not client.is_meeting_running("pypi-client-room").is_meeting_running()
    ids = [m.get_meetingid() for m in client.get_meetings().get_meetings()]
    assert "pypi-client-room" not in ids


def test_create_twice_is_a_duplicate_warning(pool):
    params = {"meetingID": "dup", "name": "Dup", "meta_confscale-audience": "none"}
    first = xml(call(pool, "bbb-02", "create", params))
    second = xml(call(pool, "bbb-02", "create", params))
    assert first.findtext("returncode") == second.findtext("returncode") == "SUCCESS"
    assert second.findtext("messageKey") == "duplicateWarning"
    assert first.findtext("internalMeetingID") == second.findtext("internalMeetingID")
    call(pool, "bbb-02", "end", {"meetingID": "dup"})


def test_join_errors_and_xml_answer(pool):
    params = {"meetingID": "j", "attendeePW": "ap", "moderatorPW": "mp"}
    call(pool, "bbb-02", "create", {**params, "meta_confscale-audience": "none"})
    bad = xml(call(pool, "bbb-02", "join", {"meetingID": "j", "fullName": "X", "password": "no"}))
    assert bad.findtext("messageKey") == "invalidPassword"
    missing = xml(
        call(pool, "bbb-02", "join", {"meetingID": "nope", "fullName": "X", "password": "ap"})
    )
    assert missing.findtext("messageKey") == "notFound"
    ok = xml(
        call(
            pool,
            "bbb-02",
            "join",
            {"meetingID": "j", "fullName": "Viewer", "role": "VIEWER", "redirect": "false"},
        )
    )
    assert ok.findtext("returncode") == "SUCCESS"
    assert ok.findtext("messageKey") == "successfullyJoined"
    assert "/html5client/join?sessionToken=" in ok.findtext("url")
    info = xml(call(pool, "bbb-02", "getMeetingInfo", {"meetingID": "j"}))
    assert info.findtext("participantCount") == "1"
    assert info.findtext("attendees/attendee/role") == "VIEWER"
    wrong_end = xml(call(pool, "bbb-02", "end", {"meetingID": "j", "password": "ap"}))
    assert wrong_end.findtext("messageKey") == "invalidPassword"
    end = xml(call(pool, "bbb-02", "end", {"meetingID": "j", "password": "mp"}))
    assert end.findtext("messageKey") == "sentEndMeetingRequest"
    gone = xml(call(pool, "bbb-02", "getMeetingInfo", {"meetingID": "j"}))
    assert gone.findtext("messageKey") == "notFound"
    running = xml(call(pool, "bbb-02", "isMeetingRunning", {"meetingID": "j"}))
    assert running.findtext("running") == "false"


def test_missing_meeting_id(pool):
    answer = xml(call(pool, "bbb-01", "getMeetingInfo"))
    assert answer.findtext("returncode") == "FAILED"
    assert answer.findtext("messageKey") == "missingParamMeetingID"


def test_api_meetings_join_the_load():
    """Two identical pools; a 40-person meeting on one changes getMeetings, CPU and bytes."""
    n, seconds = 40, 600
    with simulator(nodes=1, seed=5) as quiet, simulator(nodes=1, seed=5) as busy:
        base_q, base_b = quiet.truth()["nodes"]["bbb-01"], busy.truth()["nodes"]["bbb-01"]
        assert base_q == base_b  # same seed, same instant: same truth
        params = {"meetingID": "placed", "meta_confscale-audience": str(n)}
        assert xml(call(busy, "bbb-01", "create", params)).findtext("returncode") == "SUCCESS"
        now_b = busy.truth()["nodes"]["bbb-01"]
        assert now_b["meetings"] == base_b["meetings"] + 1
        assert now_b["participants"] == base_b["participants"] + n
        quiet.advance(seconds)
        busy.advance(seconds)
        after_q, after_b = quiet.truth()["nodes"]["bbb-01"], busy.truth()["nodes"]["bbb-01"]
    extra_tx = (after_b["transmit_bytes"] - now_b["transmit_bytes"]) - (
        after_q["transmit_bytes"] - base_q["transmit_bytes"]
    )
    # the audience the simulator documents for meta_confscale-audience=N
    audience = Attendance(n, 1, n // 3, n - n // 3, n // 4, 0, True)
    assert extra_tx == pytest.approx(audience.tx_bytes_per_second() * seconds, abs=2)

    def busy_cpu(t):
        return sum(v for k, v in t["cpu_seconds"].items() if k != "idle")

    extra_cpu = (busy_cpu(after_b) - busy_cpu(now_b)) - (busy_cpu(after_q) - busy_cpu(base_q))
    assert extra_cpu == pytest.approx(audience.busy_cores() * seconds, rel=1e-6)


def test_post_create_with_a_body_keeps_the_connection_usable(pool):
    modules = (
        b'<modules><module name="presentation"><document url="https://x/a.pdf"/></module></modules>'
    )
    with requests.Session() as session:
        created = session.post(
            pool.api_url(
                "bbb-01", "create", {"meetingID": "posted", "meta_confscale-audience": "none"}
            ),
            data=modules,
            headers={"Content-Type": "application/xml"},
            timeout=10,
        )
        assert xml(created).findtext("returncode") == "SUCCESS"
        # the same keep-alive connection answers the next request correctly
        info = session.get(
            pool.api_url("bbb-01", "getMeetingInfo", {"meetingID": "posted"}), timeout=10
        )
        assert xml(info).findtext("meetingID") == "posted"
        session.get(pool.api_url("bbb-01", "end", {"meetingID": "posted"}), timeout=10)


def test_joining_a_modelled_meeting_keeps_its_breakout_rooms():
    from test_sim_xml import breakout_instant

    at = breakout_instant(1)
    with simulator(nodes=1, seed=1, extra_args=[f"--clock.start={at}"]) as sim:
        before = xml(call(sim, "bbb-01", "getMeetings"))
        parent = next(
            m for m in before.iterfind("meetings/meeting") if m.find("breakoutRooms") is not None
        )
        rooms = len(parent.findall("breakoutRooms/breakout"))
        truth = sim.truth()["nodes"]["bbb-01"]
        params = {
            "meetingID": parent.findtext("meetingID"),
            "fullName": "Late Student",
            "password": parent.findtext("attendeePW"),
            "redirect": "false",
        }
        assert xml(call(sim, "bbb-01", "join", params)).findtext("returncode") == "SUCCESS"
        after = xml(call(sim, "bbb-01", "getMeetings"))
        now = sim.truth()["nodes"]["bbb-01"]
    same = next(
        m
        for m in after.iterfind("meetings/meeting")
        if m.findtext("meetingID") == parent.findtext("meetingID")
    )
    assert len(same.findall("breakoutRooms/breakout")) == rooms
    assert int(same.findtext("participantCount")) == int(parent.findtext("participantCount")) + 1
    assert now["breakout_rooms"] == truth["breakout_rooms"] == rooms
    assert now["participants"] == truth["participants"] + 1
    names = [
        a.findtext("userID") + a.findtext("fullName") for a in same.iterfind("attendees/attendee")
    ]
    earlier = [
        a.findtext("userID") + a.findtext("fullName") for a in parent.iterfind("attendees/attendee")
    ]
    assert names[: len(earlier)] == earlier  # the people already there keep their names
    assert names[-1].endswith("Late Student")
