"""The simulator's core serve mode against a real confscale-sim process."""

from __future__ import annotations

import socket
import stat
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from confscale.simulator import bbbapi
from harness import simulator, wait_until
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def xml(response: requests.Response) -> etree._Element:
    assert response.status_code == 200, response.text[:200]
    return etree.fromstring(response.content)


@pytest.fixture(scope="module")
def pool():
    # seed 3: busy nodes, one of them with a dial-in user, at the default start instant
    with simulator(nodes=3, jitsi=1, checksum="all", seed=3) as sim:
        yield sim


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checksum_right_and_wrong(pool, algorithm):
    good = requests.get(pool.api_url("bbb-01", "getMeetings", algorithm=algorithm), timeout=10)
    assert xml(good).findtext("returncode") == "SUCCESS"
    query = bbbapi.encode({"x": "1"})
    signed = bbbapi.sign("getMeetings", query, "wrong-secret", algorithm)
    bad = requests.get(f"{pool.node_url('bbb-01')}/bigbluebutton/api/{signed}", timeout=10)
    root = xml(bad)
    assert root.findtext("returncode") == "FAILED"
    assert root.findtext("messageKey") == "checksumError"


def test_checksum_of_another_call_is_refused(pool):
    # bbb-web hashes the call name too: a getMeetingInfo checksum cannot sign getMeetings
    signed = bbbapi.sign("getMeetingInfo", "", pool.secret, "sha256")
    url = f"{pool.node_url('bbb-01')}/bigbluebutton/api/getMeetings?" + signed.split("?", 1)[1]
    assert xml(requests.get(url, timeout=10)).findtext("messageKey") == "checksumError"


def test_only_accepted_algorithms():
    with simulator(nodes=1, checksum="sha512") as sim:
        ok = requests.get(sim.api_url("bbb-01", "getMeetings", algorithm="sha512"), timeout=10)
        assert xml(ok).findtext("returncode") == "SUCCESS"
        sha1 = requests.get(sim.api_url("bbb-01", "getMeetings", algorithm="sha1"), timeout=10)
        assert xml(sha1).findtext("messageKey") == "checksumError"


def test_get_meetings_matches_truth(pool):
    truth = pool.truth()["nodes"]
    assert any("dial-in" in n.get("clients", {}) for n in truth.values())
    for name in pool.names:
        if truth[name]["kind"] != "bbb":
            continue
        root = xml(requests.get(pool.api_url(name, "getMeetings"), timeout=10))
        meetings = root.findall("meetings/meeting")
        t = truth[name]
        assert len(meetings) == t["meetings"]
        counts = {
            k: 0
            for k in (
                "participantCount",
                "listenerCount",
                "voiceParticipantCount",
                "videoCount",
                "moderatorCount",
            )
        }
        fanout = 0
        clients: dict[str, int] = {}
        origins: dict[str, int] = {}
        sizes = [0] * 7
        for meeting in meetings:
            n = int(meeting.findtext("participantCount"))
            sizes[sum(n > bound for bound in (0, 5, 25, 50, 100, 200))] += 1
            if n:
                server = (meeting.findtext("metadata/bbb-origin-server-name") or "").lower()
                origins[server or "none"] = origins.get(server or "none", 0) + n
            for client in meeting.iterfind("attendees/attendee/clientType"):
                # the truth spells client types as the exporter reports them: lower case
                clients[client.text.lower()] = clients.get(client.text.lower(), 0) + 1
            for key in counts:
                counts[key] += int(meeting.findtext(key))
            attendees = meeting.findall("attendees/attendee")
            assert len(attendees) == int(meeting.findtext("participantCount"))
            voice = sum(a.findtext("hasJoinedVoice") == "true" for a in attendees)
            assert voice == int(meeting.findtext("voiceParticipantCount"))
            listen = sum(a.findtext("isListeningOnly") == "true" for a in attendees)
            assert listen == int(meeting.findtext("listenerCount"))
            video = sum(a.findtext("hasVideo") == "true" for a in attendees)
            assert video == int(meeting.findtext("videoCount"))
            mods = sum(a.findtext("role") == "MODERATOR" for a in attendees)
            assert mods == int(meeting.findtext("moderatorCount"))
            n, w = int(meeting.findtext("participantCount")), int(meeting.findtext("videoCount"))
            fanout += w * max(n - 1, 0)
        assert counts["participantCount"] == t["participants"]
        assert counts["listenerCount"] == t["listeners"]
        assert counts["voiceParticipantCount"] == t["voice_participants"]
        assert counts["videoCount"] == t["video_participants"]
        assert counts["moderatorCount"] == t["moderators"]
        assert fanout == t["video_fanout"]
        assert clients == t["clients"]
        assert origins == t["origins"]
        assert sizes == t["sizes"]
        ids = sorted(m.findtext("internalMeetingID") for m in meetings)
        assert ids == sorted([*t["internal_ids"]["meetings"], *t["internal_ids"]["breakout_rooms"]])


def test_metrics_parse_and_match_truth(pool):
    truth = pool.truth()["nodes"]
    for name in pool.names:
        text = requests.get(f"{pool.node_url(name)}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        cpu = families["node_cpu_seconds"]
        by_mode: dict[str, float] = {}
        cpus = set()
        for sample in cpu.samples:
            cpus.add(sample.labels["cpu"])
            by_mode[sample.labels["mode"]] = by_mode.get(sample.labels["mode"], 0.0) + sample.value
        assert len(cpus) == truth[name]["cpu_count"]
        for mode, value in truth[name]["cpu_seconds"].items():
            assert by_mode[mode] == pytest.approx(value, rel=1e-9)
        tx = {s.labels["device"]: s.value for s in families["node_network_transmit_bytes"].samples}
        rx = {s.labels["device"]: s.value for s in families["node_network_receive_bytes"].samples}
        assert set(tx) == {"eth0", "lo", "docker0", "veth3f2a9c1"}
        assert tx["eth0"] == truth[name]["transmit_bytes"]
        assert rx["eth0"] == truth[name]["receive_bytes"]


def test_counters_grow_with_the_clock(pool):
    before = pool.truth()["nodes"]
    pool.advance(300)
    after = pool.truth()["nodes"]
    for name in pool.names:
        b, a = before[name], after[name]
        busy = lambda n: sum(v for k, v in n["cpu_seconds"].items() if k != "idle")  # noqa: E731
        total = lambda n: sum(n["cpu_seconds"].values())  # noqa: E731
        assert total(a) - total(b) == pytest.approx(300 * a["cpu_count"])
        assert 0 < busy(a) - busy(b) < 300 * a["cpu_count"]
        assert a["transmit_bytes"] > b["transmit_bytes"]


def test_colibri_stats(pool):
    stats = requests.get(f"{pool.node_url('jvb-01')}/colibri/stats", timeout=10).json()
    truth = pool.truth()["nodes"]["jvb-01"]
    for key in (
        "conferences",
        "participants",
        "largest_conference",
        "endpoints_sending_video",
        "stress_level",
        "bit_rate_upload",
        "bit_rate_download",
    ):
        assert stats[key] == truth[key]
    # a BBB node has no colibri, a bridge no BBB API
    assert requests.get(f"{pool.node_url('bbb-01')}/colibri/stats", timeout=10).status_code == 404


def test_api_root(pool):
    root = xml(requests.get(f"{pool.node_url('bbb-02')}/bigbluebutton/api/", timeout=10))
    assert root.findtext("returncode") == "SUCCESS"
    assert root.findtext("version") == "2.0"


def test_write_config(pool, tmp_path):
    path = pool.write_config(tmp_path / "exporter.yml")
    text = path.read_text()
    assert pool.secret not in text
    config = yaml.safe_load(text)
    names = [n["name"] for n in config["nodes"]]
    assert names == pool.names
    secret_file = tmp_path / "exporter.yml.secret"
    assert secret_file.read_text().strip() == pool.secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    bbb = config["nodes"][0]
    assert bbb["bbb"]["secret_file"] == str(secret_file)
    assert requests.get(bbb["host"]["node_exporter"], timeout=10).status_code == 200
    split = urlsplit(bbb["bbb"]["url"])
    assert split.path == "/bbb-01/bigbluebutton/api/"
    jvb = config["nodes"][-1]
    assert requests.get(jvb["jitsi"]["url"], timeout=10).json()["conferences"] >= 0


def _raw_get(url: str, timeout: float) -> bytes:
    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        sock.sendall(f"GET {split.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return sock.recv(65536)


def test_truth_of_some_nodes(pool):
    everything = pool.truth()
    some = pool.truth("bbb-02", "jvb-01")
    assert list(some["nodes"]) == ["bbb-02", "jvb-01"]
    assert some["nodes"]["bbb-02"] == everything["nodes"]["bbb-02"]
    answer = requests.get(f"{pool.url}/_admin/truth?node=bbb-77", timeout=10)
    assert answer.status_code == 400
    assert "bbb-77" in answer.json()["error"]


def test_running_clock_moves_counters_without_admin_calls():
    with simulator(nodes=1, frozen=False, speed=3600) as sim:

        def tx() -> float:
            text = requests.get(f"{sim.node_url('bbb-01')}/metrics", timeout=10).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    name, device = sample.name, sample.labels.get("device")
                    if name == "node_network_transmit_bytes_total" and device == "eth0":
                        return sample.value
            raise AssertionError("no eth0 transmit counter")

        first_now, first_tx = sim.now(), tx()
        wait_until(lambda: sim.now() > first_now + 600, timeout=20, what="the clock to run")
        assert tx() > first_tx
