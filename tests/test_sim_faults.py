"""Each fault mode of the simulator does what docs/contracts.md says."""

from __future__ import annotations

import threading

import pytest
import requests
from harness import simulator
from lxml import etree

NODE = "bbb-02"


@pytest.fixture(scope="module")
def pool():
    with simulator(nodes=3, seed=3) as sim:
        yield sim


@pytest.fixture(autouse=True)
def clean(pool):
    pool.clear_faults()
    yield
    pool.clear_faults()


def get_meetings(pool, node=NODE, timeout=10.0):
    return requests.get(pool.api_url(node, "getMeetings"), timeout=timeout)


def busy_seconds(node_truth):
    return sum(v for k, v in node_truth["cpu_seconds"].items() if k != "idle")


def test_refused_closes_without_answer(pool):
    pool.set_fault(NODE, "refused")
    with pytest.raises(requests.ConnectionError):
        get_meetings(pool)
    assert get_meetings(pool, "bbb-01").status_code == 200


def test_timeout_holds_the_connection_and_does_not_block_others(pool):
    pool.set_fault(NODE, "timeout", 3)
    errors: list[Exception] = []

    def hang() -> None:
        try:
            get_meetings(pool, timeout=0.5)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    # while NODE hangs, another node still answers
    assert get_meetings(pool, "bbb-01").status_code == 200
    thread.join(10)
    assert len(errors) == 1 and isinstance(errors[0], requests.Timeout)


def test_slow_answers_late_but_correctly(pool):
    pool.set_fault(NODE, "slow", 1.5)
    with pytest.raises(requests.Timeout):
        get_meetings(pool, timeout=0.2)
    answer = get_meetings(pool, timeout=10)
    assert etree.fromstring(answer.content).findtext("returncode") == "SUCCESS"


def test_html_page(pool):
    pool.set_fault(NODE, "html")
    answer = get_meetings(pool)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert b"<returncode>" not in answer.content


@pytest.mark.parametrize("status", [None, 503])
def test_http_error(pool, status):
    pool.set_fault(NODE, "http_error", status)
    answer = get_meetings(pool)
    assert answer.status_code == (status or 502)
    assert answer.headers["Content-Type"].startswith("text/html")


def test_invalid_xml(pool):
    pool.set_fault(NODE, "invalid_xml")
    answer = get_meetings(pool)
    assert answer.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(answer.content)


def test_checksum_fault_fails_whatever_the_checksum(pool):
    pool.set_fault(NODE, "checksum")
    root = etree.fromstring(get_meetings(pool).content)
    assert root.findtext("returncode") == "FAILED"
    assert root.findtext("messageKey") == "checksumError"


def test_huge_is_valid_and_about_the_size_asked(pool):
    pool.set_fault(NODE, "huge", 2)
    answer = get_meetings(pool, timeout=60)
    assert 1.5e6 < len(answer.content) < 2.5e6
    root = etree.fromstring(answer.content)
    assert root.findtext("returncode") == "SUCCESS"
    assert len(root.findall("meetings/meeting")) > 100


def test_thousands_separators(pool):
    pool.set_fault(NODE, "thousands", ".")
    url = pool.api_url(NODE, "create", {"meetingID": "big-one", "maxParticipants": "25000"})
    assert (
        etree.fromstring(requests.get(url, timeout=10).content).findtext("returncode") == "SUCCESS"
    )
    url = pool.api_url(NODE, "create", {"meetingID": "crowd", "meta_confscale-audience": "1202"})
    requests.get(url, timeout=10).raise_for_status()
    text = get_meetings(pool).text
    assert "<maxUsers>25.000</maxUsers>" in text
    assert "<participantCount>1.202</participantCount>" in text
    pool.clear_faults(NODE)
    assert "<maxUsers>25000</maxUsers>" in get_meetings(pool).text
    for meeting in ("big-one", "crowd"):
        requests.get(pool.api_url(NODE, "end", {"meetingID": meeting}), timeout=10)


def test_link_saturated_sets_the_uplink_rate(pool):
    before = pool.truth()["nodes"][NODE]
    pool.set_fault(NODE, "link_saturated")
    pool.advance(600)
    after = pool.truth()["nodes"][NODE]
    rate = (after["transmit_bytes"] - before["transmit_bytes"]) / 600
    assert rate == pytest.approx(1.05 * 62.5e6, rel=1e-6)
    assert get_meetings(pool).status_code == 200  # answers stay healthy


def test_cpu_high_sets_the_busy_share(pool):
    before = pool.truth()["nodes"][NODE]
    pool.set_fault(NODE, "cpu_high", 0.95)
    pool.advance(600)
    after = pool.truth()["nodes"][NODE]
    share = (busy_seconds(after) - busy_seconds(before)) / (600 * after["cpu_count"])
    assert share == pytest.approx(0.95, rel=1e-6)
    pool.clear_faults(NODE)
    pool.advance(600)
    later = pool.truth()["nodes"][NODE]
    assert (busy_seconds(later) - busy_seconds(after)) / (600 * later["cpu_count"]) < 0.9


def test_faults_listed_cleared_and_validated(pool):
    pool.set_fault("bbb-01", "slow", 0.1)
    pool.set_fault(NODE, "html")
    assert set(pool.faults()) == {"bbb-01", NODE}
    pool.clear_faults("bbb-01")
    assert set(pool.faults()) == {NODE}
    with pytest.raises(ValueError, match="unknown fault mode"):
        pool.set_fault(NODE, "explode")
    with pytest.raises(ValueError, match="unknown node"):
        pool.set_fault("bbb-99", "html")


def test_fault_flag_on_the_command_line():
    with simulator(nodes=2, faults=["bbb-01=http_error:504"]) as sim:
        assert get_meetings(sim, "bbb-01").status_code == 504
        assert get_meetings(sim, "bbb-02").status_code == 200
        assert sim.faults() == {"bbb-01": {"mode": "http_error", "arg": 504}}


def test_link_saturated_shows_in_a_bridges_colibri_stats():
    with simulator(nodes=0, jitsi=1) as sim:
        sim.set_fault("jvb-01", "link_saturated", 1.2)
        stats = requests.get(f"{sim.node_url('jvb-01')}/colibri/stats", timeout=10).json()
        truth = sim.truth()["nodes"]["jvb-01"]
    assert stats["bit_rate_upload"] == round(1.2 * 62.5e6 * 8 / 1000)
    assert stats["bit_rate_upload"] == truth["bit_rate_upload"]
    assert stats["stress_level"] == truth["stress_level"] > 1
