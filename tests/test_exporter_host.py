"""Host memory and watched filesystems: node_exporter text, /proc + statvfs, config."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from confscale.exporter import host
from confscale.exporter.config import ConfigValueError, parse_config
from confscale.exporter.exposition import render
from confscale.exporter.fetch import PollError
from confscale.exporter.host import HostFamilies, HostFigures, parse_node_exporter, read_proc
from hypothesis import given, settings
from hypothesis import strategies as st
from test_exporter_support import parse_text, value

CPU = 'node_cpu_seconds_total{cpu="0",mode="idle"} 10\n'
PAGE = (
    CPU
    + "node_memory_MemAvailable_bytes 2.5e+09\n"
    + "node_memory_MemTotal_bytes 8e+09\n"
    + "node_memory_MemFree_bytes 1e+08\n"
    + 'node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4e+10\n'
    + 'node_filesystem_size_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1e+11\n'
    + 'node_filesystem_avail_bytes{device="/dev/sdb1",fstype="xfs",'
    + 'mountpoint="/var/bigbluebutton"} 5e+09\n'
    + 'node_filesystem_size_bytes{device="/dev/sdb1",fstype="xfs",'
    + 'mountpoint="/var/bigbluebutton"} 5e+11\n'
    + 'node_filesystem_avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 1e+08\n'
)


def test_memory_and_watched_filesystems_from_node_exporter() -> None:
    figures = parse_node_exporter(PAGE.splitlines())
    assert figures.memory_available_bytes == 2.5e9 and figures.memory_total_bytes == 8e9
    assert figures.filesystems == (("/", 4e10, 1e11), ("/var/bigbluebutton", 5e9, 5e11))
    narrowed = parse_node_exporter(PAGE.splitlines(), filesystems=("/var/bigbluebutton",))
    assert [m for m, _, _ in narrowed.filesystems] == ["/var/bigbluebutton"]


def test_missing_memory_and_filesystems_stay_absent() -> None:
    figures = parse_node_exporter([CPU.strip()])
    assert figures.memory_available_bytes is None and figures.filesystems == ()
    families = HostFamilies(["node"])
    families.add(figures, {"node": "n"})
    samples = parse_text(render(families.families()).decode())
    assert value(samples, "confscale_node_memory_available_bytes", node="n") is None
    assert value(samples, "confscale_node_cpu_count", node="n") == 1


def test_families_carry_the_mountpoint() -> None:
    families = HostFamilies(["node"])
    families.add(parse_node_exporter(PAGE.splitlines()), {"node": "n"})
    samples = parse_text(render(families.families()).decode())
    avail = "confscale_node_filesystem_avail_bytes"
    assert value(samples, avail, node="n", mountpoint="/var/bigbluebutton") == 5e9
    assert value(samples, "confscale_node_filesystem_size_bytes", node="n", mountpoint="/") == 1e11
    assert value(samples, "confscale_node_memory_total_bytes", node="n") == 8e9


def test_local_host_reads_meminfo_and_statvfs(tmp_path: Path) -> None:
    figures = read_proc(filesystems=("/", str(tmp_path), "/no/such/mount"))
    assert 0 < (figures.memory_available_bytes or 0) <= (figures.memory_total_bytes or 0)
    mounts = {m: (a, s) for m, a, s in figures.filesystems}
    assert set(mounts) == {"/", str(tmp_path)}  # a missing path is absent, not zero
    st = os.statvfs("/")
    assert mounts["/"][1] == st.f_blocks * st.f_frsize


@pytest.mark.parametrize("bad", [[], ["relative"], "/", ["/"] * 9])
def test_filesystems_config_is_checked(bad: object) -> None:
    node = {"name": "n", "host": {"node_exporter": "http://n:9100/metrics", "filesystems": bad}}
    with pytest.raises(ConfigValueError, match="filesystems"):
        parse_config({"nodes": [node]}, "t.yml", {})


def test_local_bbb_host_counts_the_recordings_waiting(tmp_path: Path) -> None:
    queue = tmp_path / "recording" / "status" / "sanity"
    queue.mkdir(parents=True)
    for name in ("a1b2-1790000000000.done", "c3d4-1790000100000.done", "notes.txt"):
        (queue / name).write_text("")
    assert read_proc(recording_queue=queue).recordings_unprocessed == 2
    bridge = read_proc(recording_queue=tmp_path / "missing")  # not a BBB host
    assert bridge.recordings_unprocessed is None
    families = HostFamilies(["node"])
    families.add(read_proc(recording_queue=queue), {"node": "bbb-01"})
    families.add(bridge, {"node": "jvb-01"})
    samples = parse_text(render(families.families()).decode())
    assert value(samples, "bbb_recordings_unprocessed", node="bbb-01") == 2
    assert value(samples, "bbb_recordings_unprocessed", node="jvb-01") is None


HOSTILE_LABELS = ('a"b', "a\\\\b", "x}", "{y", "é")
LABEL_VALUES = {
    "cpu": st.sampled_from(("0", "1", "12", *HOSTILE_LABELS[:1])),
    "mode": st.sampled_from(("idle", "user", "system", *HOSTILE_LABELS[1:3])),
    "device": st.sampled_from(("eth0", "lo", "docker0", *HOSTILE_LABELS[3:])),
    "extra": st.sampled_from(("x", *HOSTILE_LABELS)),
}
# mostly numbers (a page of valid lines is where the two paths can differ in figures)
VALUES = st.sampled_from(
    ("1", "2.5e+03", "0.125", "17", "7 1700000000000", "3\r", "1e400", "NaN", "lots", "")
)


VALUES_OK = ("1", "2.5e+03", "0.125", "17", "7 1700000000000")


@st.composite
def sample_line(draw: st.DrawFn) -> str:
    family = draw(
        st.sampled_from(
            (
                "node_cpu_seconds_total",
                "node_network_receive_bytes_total",
                "node_network_transmit_bytes_total",
            )
        )
    )
    names = ["cpu", "mode"] if family.startswith("node_cpu") else ["device"]
    if draw(st.integers(0, 3)) == 0:
        names = draw(st.permutations([*names, "extra"]))
    labels = ",".join(f'{n}="{draw(LABEL_VALUES[n])}"' for n in names)
    gap = draw(st.sampled_from((" ", "  ", "\t", "")))
    value = draw(VALUES) if draw(st.integers(0, 4)) == 0 else draw(st.sampled_from(VALUES_OK))
    return f"{family}{{{labels}}}{gap}{value}"


@given(
    st.lists(sample_line(), min_size=1, max_size=12),
    st.sampled_from((None, "eth0")),
    st.integers(1, 200),
)
@settings(max_examples=150, deadline=None)
def test_fast_line_forms_read_as_the_general_split(
    lines: list[str], interface: str | None, chunk: int
) -> None:
    """node_exporter's own layout is read by one regex (CPU rows taken out by the poll's
    line sink, CPU and network lines matched): any page, in any layout and chunking, must
    give what the general label split over every line gives (same figures or refusal)."""
    page = "".join(f"{line}\n" for line in lines).encode()

    def outcome(parse: Callable[[], HostFigures]) -> object:
        try:
            return parse()
        except PollError as exc:
            return ("refused", exc.reason)

    def polled() -> HostFigures:
        sink = host._LineSink()
        for start in range(0, len(page), chunk):
            sink(page[start : start + chunk])
        return parse_node_exporter(sink.finish(), interface, cpu_rows=sink.cpu_rows)

    fast = outcome(polled)
    never = re.compile(r"(?!)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host, "_CPU_LINE", never)
        patch.setattr(host, "_NET_LINE", never)
        general = outcome(lambda: parse_node_exporter(page.decode().splitlines(), interface))
    assert fast == general
