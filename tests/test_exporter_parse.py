"""Pure parsers: every shared BBB fixture, separators, hostile XML, colibri, node_exporter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from confscale.exporter.bbb import (
    BbbFigures,
    MeetingsParser,
    parse_count,
    parse_meetings,
    parse_meetings_reference,
    signed_url,
)
from confscale.exporter.bbbfigures import meeting_digest
from confscale.exporter.config import BbbSource, Secret
from confscale.exporter.fetch import PollError
from confscale.exporter.host import is_uplink, parse_node_exporter
from confscale.exporter.jitsi import parse_colibri
from harness import fixture_path


def ids(*internal: str) -> frozenset[int]:
    return frozenset(meeting_digest(i) for i in internal)


def sizes(**buckets: int) -> tuple[int, ...]:
    """Meetings per size bucket: sizes(empty=1, upto5=2) and so on."""
    names = ("empty", "upto5", "upto25", "upto50", "upto100", "upto200", "more")
    return tuple(buckets.get(n, 0) for n in names)


# Expected figures worked out by hand from each fixture (see its README).
FIXTURES = {
    "getMeetings_bbbdocs_1meeting_idle.xml": BbbFigures(
        meetings=1,
        sizes=sizes(empty=1),
        meeting_ids=ids("183f0bf3a0982a127bdb8161e0c44eb696b3e75c-1531241258036"),
    ),
    "getMeetings_scalelite_noMeetings.xml": BbbFigures(),
    "getMeetings_apiphp_3meetings_breakout.xml": BbbFigures(
        meetings=3,
        breakout_rooms=1,
        participants=5,
        moderators=1,
        listeners=2,
        voice_participants=1,
        video_participants=3,
        participants_max=5,
        video_fanout=3 * (5 - 1),
        sizes=sizes(empty=2, upto5=1),
        origins=(("none", 5),),
        meeting_ids=ids(
            "bf32e77309232abb44627ddbb5edd47e0e13e7b8-1554729625768",
            "b97b512f2c92c0ffe7a3476152525807daa1c676-1524213158682",
        ),
        breakout_ids=ids("8299be7b3bc6693c3b747fe5178a5f7b6e417ac7-1554729632085"),
    ),
    "getMeetingInfo_bbbdocs_1attendee_greenlight_metadata.xml": BbbFigures(
        meetings=1,
        participants=1,
        moderators=1,
        voice_participants=1,
        video_participants=1,
        participants_max=1,
        video_fanout=0,
        clients=(("html5", 1),),
        sizes=sizes(upto5=1),
        origins=(("test30.bigbluebutton.org", 1),),
        meeting_ids=ids("a0715c95000a2bcb90604ecc7097dbc94592c690-1715261728123"),
    ),
    "getMeetingInfo_apiphp_4attendees_clienttypes.xml": BbbFigures(
        meetings=1,
        participants=2,
        moderators=2,
        listeners=1,
        voice_participants=2,
        video_participants=1,
        participants_max=2,
        video_fanout=1 * (2 - 1),
        clients=(("flash", 1), ("html5", 3)),
        sizes=sizes(upto5=1),
        origins=(("none", 2),),
        meeting_ids=ids("178757fcedd9449054536162cdfe861ddebc70ba-1453206317376"),
    ),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
@pytest.mark.parametrize("chunk", [1, 7, 64 * 1024])
def test_every_fixture_parses_to_the_right_figures(name: str, chunk: int) -> None:
    document = fixture_path("bbb", name).read_bytes()
    assert parse_meetings(document, chunk_size=chunk) == FIXTURES[name]
    assert parse_meetings_reference(document, chunk_size=chunk) == FIXTURES[name]


def test_checksum_error_fixture_is_reason_checksum() -> None:
    document = fixture_path("bbb", "error_checksumError_bbbdocs.xml").read_bytes()
    with pytest.raises(PollError) as raised:
        parse_meetings(document)
    assert raised.value.reason == "checksum"


def test_every_fixture_is_covered() -> None:
    names = {p.name for p in fixture_path("bbb").glob("*.xml")}
    assert names == set(FIXTURES) | {"error_checksumError_bbbdocs.xml"}


def meeting(participants: str, video: str = "0", breakout: str = "false", extra: str = "") -> str:
    return (
        f"<meeting><participantCount>{participants}</participantCount>"
        f"<moderatorCount>1</moderatorCount><listenerCount>0</listenerCount>"
        f"<voiceParticipantCount>0</voiceParticipantCount><videoCount>{video}</videoCount>"
        f"<isBreakout>{breakout}</isBreakout>{extra}</meeting>"
    )


def response(*meetings: str) -> bytes:
    body = "".join(meetings)
    return (
        f"<response><returncode>SUCCESS</returncode><meetings>{body}</meetings></response>"
    ).encode()


def test_thousands_separators_and_fanout() -> None:
    figures = parse_meetings(response(meeting("1,202", "1.000"), meeting("30", "6", "true")))
    assert figures.participants == 1232
    assert figures.participants_max == 1202
    assert figures.video_participants == 1006
    assert figures.video_fanout == 1000 * 1201 + 6 * 29
    assert figures.breakout_rooms == 1
    assert figures.moderators == 2  # participants are not moderators added twice


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("1,202", 1202), ("1.000", 1000), (" 25 000 ", 25000), ("25\u202f000", 25000)],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text, "participantCount") == value


@pytest.mark.parametrize("text", ["", "  ", "n/a", None, "9" * 40])
def test_parse_count_refuses_non_counts(text: str | None) -> None:
    with pytest.raises(PollError) as raised:
        parse_count(text, "participantCount")
    assert raised.value.reason == "parse"


def test_meeting_element_inside_metadata_is_not_a_meeting() -> None:
    figures = parse_meetings(
        response(meeting("4", extra="<metadata><meeting>my room</meeting></metadata>"))
    )
    assert figures.meetings == 1 and figures.participants == 4


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "parse"),
        (b"<!DOCTYPE html><html><body>nginx</body></html>", "parse"),
        (
            b"<response><returncode>SUCCESS</returncode><meetings><meeting><participantCount>",
            "parse",
        ),
        (b"", "parse"),
        (
            b"<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>"
            b"</response>",
            "checksum",
        ),
        (
            b"<response><returncode>FAILED</returncode><messageKey>unsupportedRequest</messageKey>"
            b"</response>",
            "failed",
        ),
        (b"<response><meetings/></response>", "parse"),
        (response(meeting("lots")), "parse"),
    ],
)
def test_bad_answers_fail_with_a_reason(document: bytes, reason: str) -> None:
    with pytest.raises(PollError) as raised:
        parse_meetings(document, chunk_size=5)
    assert raised.value.reason == reason


BILLION_LAUGHS = textwrap.dedent("""\
    <?xml version="1.0"?>
    <!DOCTYPE lolz [
     <!ENTITY lol "lol">
     <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
     <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
     <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
     <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
     <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
     <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
     <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
     <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
     <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
    ]>
    <response><returncode>SUCCESS</returncode><message>&lol9;</message></response>
    """).encode()
XXE_FILE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<response><returncode>SUCCESS</returncode><message>&x;</message></response>"
)
XXE_NETWORK = (
    b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b"<response><returncode>SUCCESS</returncode></response>"
)
PARAMETER_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]><response/>'
)
UNDECLARED_ENTITY = b"<response><returncode>&x;</returncode></response>"


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, XXE_FILE, XXE_NETWORK, PARAMETER_ENTITY, UNDECLARED_ENTITY],
    ids=["billion-laughs", "xxe-file", "xxe-network", "parameter-entity", "undeclared-entity"],
)
@pytest.mark.parametrize("chunk", [1, 3, 64 * 1024])
def test_hostile_xml_is_refused(document: bytes, chunk: int) -> None:
    with pytest.raises(PollError) as raised:
        parse_meetings(document, chunk_size=chunk)
    assert raised.value.reason == "parse"
    assert "root:" not in str(raised.value)


def test_hostile_xml_is_refused_in_bounded_time_and_memory() -> None:
    """In a child limited to 256 MB of address space and 20 s of CPU."""
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        from confscale.exporter.bbb import parse_meetings
        from confscale.exporter.fetch import PollError
        for document in ({BILLION_LAUGHS!r}, {XXE_FILE!r}):
            for chunk in (1, 65536):
                try:
                    parse_meetings(document, chunk_size=chunk)
                except PollError as exc:
                    assert exc.reason == "parse", exc
                else:
                    raise SystemExit("accepted a hostile document")
        print("refused")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


def test_parser_keeps_one_meeting_in_memory() -> None:
    parser = MeetingsParser()
    parser.feed(b"<response><returncode>SUCCESS</returncode><meetings>")
    for _ in range(500):
        parser.feed(meeting("3", "1").encode())
    parser.feed(b"</meetings></response>")
    root = parser._parser.close()  # the tree that is left after streaming
    assert len(root.find("meetings")) <= 1


def test_signed_url_uses_the_nodes_algorithm() -> None:
    import hashlib

    for algorithm in ("sha1", "sha256", "sha384", "sha512"):
        source = BbbSource(url="http://x/api/", secret=Secret("s"), checksum=algorithm)
        expected = hashlib.new(algorithm, b"getMeetings" + b"s").hexdigest()
        assert signed_url(source) == f"http://x/api/getMeetings?checksum={expected}"
    source = BbbSource(url="http://x/api/", secret=Secret("s"), checksum="sha1")
    expected = hashlib.sha1(b"getMeetingInfomeetingID=a" + b"s").hexdigest()  # noqa: S324
    assert signed_url(source, "getMeetingInfo", "meetingID=a").endswith(
        f"getMeetingInfo?meetingID=a&checksum={expected}"
    )


def test_colibri_figures() -> None:
    figures = parse_colibri(
        b'{"conferences": 2, "participants": 9, "largest_conference": 6,'
        b' "endpoints_sending_video": 4, "stress_level": 0.12,'
        b' "bit_rate_upload": 1234, "bit_rate_download": "567",'
        b' "threads": 300}'
    )
    assert dict(figures.values) == {
        "conferences": 2,
        "participants": 9,
        "largest_conference": 6,
        "endpoints_sending_video": 4,
        "stress_level": 0.12,
        "bit_rate_upload": 1234,
        "bit_rate_download": 567,
    }


@pytest.mark.parametrize(
    "document",
    [
        b"<html>",
        b"[]",
        b'{"participants": 3}',
        b'{"conferences": true}',
        b'{"conferences": "many"}',
    ],
)
def test_colibri_wrong_shape(document: bytes) -> None:
    with pytest.raises(PollError) as raised:
        parse_colibri(document)
    assert raised.value.reason == "parse"


NODE_EXPORTER_TEXT = """\
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100.5
node_cpu_seconds_total{cpu="0",mode="user"} 20
node_cpu_seconds_total{cpu="1",mode="idle"} 99.5
node_cpu_seconds_total{cpu="1",mode="user"} 1.5e1
node_cpu_guest_seconds_total{cpu="0",mode="user"} 7
node_network_receive_bytes_total{device="eth0"} 1000
node_network_receive_bytes_total{device="lo"} 5000
node_network_receive_bytes_total{device="docker0"} 7000
node_network_receive_bytes_total{device="veth12ab"} 7000
node_network_receive_bytes_total{device="br-0f3a"} 7000
node_network_receive_bytes_total{device="eth1"} 24
node_network_transmit_bytes_total{device="eth0"} 2.5e+06
node_network_transmit_bytes_total{device="lo"} 5000
node_network_transmit_bytes_total{device="eth1"} 1
node_network_transmit_packets_total{device="eth0"} 99
node_load1 0.5
"""


def test_node_exporter_text_auto_uplinks() -> None:
    figures = parse_node_exporter(NODE_EXPORTER_TEXT.splitlines())
    assert dict(figures.cpu_seconds) == {"idle": 200.0, "user": 35.0}
    assert figures.cpu_count == 2
    assert figures.receive_bytes == 1024
    assert figures.transmit_bytes == 2.5e6 + 1


def test_node_exporter_text_one_interface() -> None:
    figures = parse_node_exporter(NODE_EXPORTER_TEXT.splitlines(), interface="eth0")
    assert (figures.receive_bytes, figures.transmit_bytes) == (1000, 2.5e6)
    with pytest.raises(PollError, match="wlan9"):
        parse_node_exporter(NODE_EXPORTER_TEXT.splitlines(), interface="wlan9")


@pytest.mark.parametrize(
    "text",
    [
        "<html>502</html>",
        "node_load1 1\n",
        'node_cpu_seconds_total{cpu="0",mode="idle"} 1\n'
        'node_cpu_seconds_total{cpu="0",mode="user"} 1\n'
        'node_cpu_seconds_total{cpu="1",mode="idle"} 1\n',
        'node_cpu_seconds_total{cpu="0",mode="idle"} NaN\n',
        'node_cpu_seconds_total{cpu="0",mode="idle"} lots\n',
    ],
)
def test_node_exporter_text_wrong_shape(text: str) -> None:
    with pytest.raises(PollError) as raised:
        parse_node_exporter(text.splitlines())
    assert raised.value.reason == "parse"


@pytest.mark.parametrize(
    ("device", "uplink"),
    [
        ("eth0", True),
        ("ens3", True),
        ("bond0", True),
        ("lo", False),
        ("veth1", False),
        ("docker0", False),
        ("br-1a", False),
    ],
)
def test_uplink_rule(device: str, uplink: bool) -> None:
    assert is_uplink(device) is uplink


def test_attendees_without_client_type_count_as_unknown() -> None:
    people = (
        "<attendees><attendee><clientType>HTML5</clientType></attendee>"
        "<attendee></attendee><attendee><clientType> </clientType></attendee>"
        "<attendee><clientType>DIAL-IN</clientType></attendee></attendees>"
    )
    figures = parse_meetings(response(meeting("4", extra=people)))
    assert figures.clients == (("dial-in", 1), ("html5", 1), ("unknown", 2))
