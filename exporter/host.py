"""Host figures: CPU seconds and uplink bytes, from a node_exporter or from local /proc.

Only the three families we need are parsed out of the node_exporter text; every other
line is skipped after a prefix check, so a large node_exporter page costs little.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from confscale.exporter import contract as c
from confscale.exporter.config import HostSource, parse_host
from confscale.exporter.contract import (
    BBB_RECORDINGS_UNPROCESSED,
    DEFAULT_FILESYSTEMS,
    HOST_FILESYSTEM_AVAIL,
    HOST_FILESYSTEM_SIZE,
    HOST_GAUGES,
)
from confscale.exporter.exposition import Family, counter, gauge, with_label
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind

_CPU = "node_cpu_seconds_total{"
_RX = "node_network_receive_bytes_total{"
_TX = "node_network_transmit_bytes_total{"
_MEM_AVAILABLE = "node_memory_MemAvailable_bytes"
_MEM_TOTAL = "node_memory_MemTotal_bytes"
_FS_AVAIL = "node_filesystem_avail_bytes{"
_FS_SIZE = "node_filesystem_size_bytes{"
# bbb-record-core's status folder of recordings that passed the sanity check (the same
# folder greenstatic's exporter counts for bbb_recordings_unprocessed).
RECORDING_QUEUE = Path("/var/bigbluebutton/recording/status/sanity")
_MAX_QUEUE = 100_000
_KEPT = (b"node_cpu_seconds_total{", b"node_network_", b"node_memory_Mem", b"node_filesystem_")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# node_exporter's own layout of the two families with most lines (labels sorted, values
# without quotes, backslashes or braces): read by one match instead of the general split.
# A line of any other layout takes _split, which gives the same labels for these lines.
_CPU_LINE = re.compile(r'node_cpu_seconds_total\{cpu="([^"\\{}]*)",mode="([^"\\{}]*)"\}([^}]*)\Z')
_CPU_PREFIX = b"node_cpu_seconds_total{"
_CPU_ROW = re.compile(
    rb'^node_cpu_seconds_total\{cpu="([\w.:-]*)",mode="([\w.:-]*)"\}[ \t]*'
    rb"([0-9A-Za-z.+-]+)(?:[ \t][^}\n]*)?$",
    re.M,
)
_NET_LINE = re.compile(
    r'node_network_(?:receive|transmit)_bytes_total\{device="([^"\\{}]*)"\}([^}]*)\Z'
)
_NOT_UPLINK = ("lo", "veth", "docker", "br-", "ifb", "virbr")
# /proc/stat cpu columns in order (guest time is already inside user and nice).
_PROC_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class HostFigures:
    cpu_seconds: tuple[tuple[str, float], ...]  # (mode, seconds summed over CPUs)
    cpu_count: int
    transmit_bytes: float
    receive_bytes: float
    # optional: absent (None / not listed) when the page or /proc does not have them
    memory_available_bytes: float | None = None
    memory_total_bytes: float | None = None
    filesystems: tuple[tuple[str, float, float], ...] = ()  # (mountpoint, avail, size)
    # host: local on a BBB node only: recordings waiting to be processed (None: not a BBB host)
    recordings_unprocessed: int | None = None


def is_uplink(device: str, interface: str | None = None) -> bool:
    """The configured interface, or any interface that is not loopback/virtual."""
    if interface is not None:
        return device == interface
    return not (device == "lo" or device.startswith(_NOT_UPLINK))


def parse_node_exporter(
    lines: Iterable[str],
    interface: str | None = None,
    filesystems: Sequence[str] = DEFAULT_FILESYSTEMS,
    cpu_rows: Iterable[tuple[bytes, bytes, bytes]] = (),
) -> HostFigures:
    """Figures from node_exporter text lines; raises PollError('parse') if CPU is missing.

    ``cpu_rows``: (cpu, mode, value) of CPU lines in node_exporter's own layout that the
    poll's line sink took out of ``lines`` already (``_LineSink``); a mode's seconds are
    summed exactly (math.fsum), so the order of lines and rows does not matter."""
    cpu: dict[str, list[float]] = defaultdict(list)
    cpus: Counter[str] = Counter()
    for cpu_id, mode, number in cpu_rows:
        cpus[cpu_id.decode()] += 1
        cpu[mode.decode()].append(_row_value(number))
    rx = tx = 0.0
    found_net = False
    memory: dict[str, float] = {}
    avail: dict[str, float] = {}
    size: dict[str, float] = {}
    for line in lines:
        if not line.startswith("node_"):
            continue
        if line.startswith((f"{_MEM_AVAILABLE} ", f"{_MEM_TOTAL} ")):
            name, _, text = line.partition(" ")
            memory[name] = _value(text.split()[0] if text.split() else "", line)
        elif line.startswith((_FS_AVAIL, _FS_SIZE)):
            labels, value = _split(line)
            mount = labels.get("mountpoint", "")
            if mount in filesystems:
                (avail if line.startswith(_FS_AVAIL) else size)[mount] = value
        elif line.startswith(_CPU):
            fast = _CPU_LINE.match(line)
            if fast is None:
                labels, value = _split(line)
                cpus[labels.get("cpu", "")] += 1
                cpu[labels.get("mode", "unknown")].append(value)
            else:
                cpus[fast[1]] += 1
                cpu[fast[2]].append(_first_value(fast[3], line))
        elif line.startswith((_RX, _TX)):
            fast = _NET_LINE.match(line)
            if fast is None:
                labels, value = _split(line)
                device = labels.get("device", "")
            else:
                device, value = fast[1], _first_value(fast[2], line)
            if is_uplink(device, interface):
                found_net = True
                if line.startswith(_RX):
                    rx += value
                else:
                    tx += value
    if not cpus:
        raise PollError("parse", "no node_cpu_seconds_total in the node_exporter answer")
    if len(set(cpus.values())) != 1:
        raise PollError("parse", "CPUs report different sets of modes; page incomplete?")
    if interface is not None and not found_net:
        raise PollError("parse", f"interface {interface!r} not in the node_exporter answer")
    return HostFigures(
        cpu_seconds=tuple(sorted((mode, math.fsum(values)) for mode, values in cpu.items())),
        cpu_count=len(cpus),
        transmit_bytes=tx,
        receive_bytes=rx,
        memory_available_bytes=memory.get(_MEM_AVAILABLE),
        memory_total_bytes=memory.get(_MEM_TOTAL),
        filesystems=tuple((m, avail[m], size[m]) for m in filesystems if m in avail and m in size),
    )


def _split(line: str) -> tuple[dict[str, str], float]:
    close = line.rfind("}")
    if close < 0:
        raise PollError("parse", f"malformed sample line {line[:60]!r}")
    labels = _labels(line[line.find("{") + 1 : close])
    return labels, _first_value(line[close + 1 :], line)


def _first_value(rest: str, line: str) -> float:
    """The sample value: the first field after the labels (a timestamp may follow)."""
    fields = rest.split()
    if not fields:
        raise PollError("parse", f"sample without a value {line[:60]!r}")
    return _value(fields[0], line)


def _row_value(text: bytes) -> float:
    try:
        value = float(text)  # ASCII letters, digits, sign and point
    except ValueError:
        raise PollError("parse", f"value is not a number: {text[:20]!r}") from None
    if not math.isfinite(value):
        raise PollError("parse", f"value is not finite in {text[:20]!r}")
    return value


def _value(text: str, line: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PollError("parse", f"value is not a number in {line[:60]!r}") from None
    if not math.isfinite(value):
        raise PollError("parse", f"value is not finite in {line[:60]!r}")
    return value


def _labels(inner: str) -> dict[str, str]:
    """``a="1",b="2"`` as a dict; escaped values take the slower, exact regex."""
    if "\\" in inner:
        return dict(_LABEL.findall(inner))
    labels = {}
    for part in inner.split('",'):
        key, _, text = part.partition('="')
        labels[key.strip().lstrip(",")] = text.removesuffix('"')
    return labels


class _LineSink:
    """Splits streamed bytes into text lines, keeping only lines that may matter; CPU lines
    in node_exporter's own layout (most of a page's kept lines) are taken out as rows by
    one regular expression pass instead (``parse_node_exporter``'s ``cpu_rows``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cpu_rows: list[tuple[bytes, bytes, bytes]] = []
        self._rest = b""

    def _row(self, found: re.Match[bytes]) -> bytes:
        self.cpu_rows.append(found.groups())  # type: ignore[arg-type]  # three groups
        return b""

    def __call__(self, chunk: bytes) -> None:
        data = self._rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._rest = data
            return
        self._rest = data[cut + 1 :]
        whole = data[:cut]
        if _CPU_PREFIX in whole:
            whole = _CPU_ROW.sub(self._row, whole)
        for raw in whole.split(b"\n"):
            if raw.startswith(_KEPT):
                self.lines.append(raw.decode("utf-8", "replace"))

    def finish(self) -> list[str]:
        """The kept lines; a page that does not end in a newline was cut off."""
        if self._rest:
            raise PollError("parse", "the node_exporter page is truncated (no final newline)")
        return self.lines


def read_proc(
    root: Path = Path("/proc"),
    interface: str | None = None,
    filesystems: Sequence[str] = DEFAULT_FILESYSTEMS,
    recording_queue: Path = RECORDING_QUEUE,
) -> HostFigures:
    """Figures of the machine the exporter runs on: /proc/stat, /proc/net/dev,
    /proc/meminfo, statvfs() of the watched filesystems that exist and, on a BBB host,
    the recordings waiting to be processed."""
    ticks = float(os.sysconf("SC_CLK_TCK"))
    try:
        stat = (root / "stat").read_text()
        netdev = (root / "net" / "dev").read_text()
    except OSError as exc:
        raise PollError("parse", f"cannot read {exc.filename}: {exc.strerror}") from None
    cpu: dict[str, float] = {}
    count = 0
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            for mode, value in zip(_PROC_MODES, fields[1:], strict=False):
                cpu[mode] = _proc_number(value) / ticks
        elif fields and fields[0].startswith("cpu"):
            count += 1
    rx = tx = 0.0
    found = False
    for line in netdev.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) >= 9 and is_uplink(name.strip(), interface):
            found = True
            rx += _proc_number(fields[0])
            tx += _proc_number(fields[8])
    if not cpu or count == 0:
        raise PollError("parse", f"no cpu lines in {root / 'stat'}")
    if interface is not None and not found:
        raise PollError("parse", f"interface {interface!r} not in {root / 'net' / 'dev'}")
    available, total = _meminfo(root / "meminfo")
    return HostFigures(
        cpu_seconds=tuple(sorted(cpu.items())),
        cpu_count=count,
        transmit_bytes=tx,
        receive_bytes=rx,
        memory_available_bytes=available,
        memory_total_bytes=total,
        filesystems=tuple(fs for fs in map(_statvfs, filesystems) if fs is not None),
        recordings_unprocessed=_queued(recording_queue),
    )


def _queued(directory: Path) -> int | None:
    """Recordings BBB's pipeline has archived and checked but not yet processed: the
    ``<record id>.done`` files bbb-record-core's sanity step leaves in status/sanity until
    the process worker takes them (None when there is no such folder: not a BBB host).
    The count is capped so a runaway folder cannot cost more than a bounded scan."""
    try:
        with os.scandir(directory) as entries:
            count = 0
            for entry in entries:
                if entry.name.endswith(".done"):
                    count += 1
                    if count >= _MAX_QUEUE:
                        break
            return count
    except OSError:
        return None


def _meminfo(path: Path) -> tuple[float | None, float | None]:
    """MemAvailable and MemTotal in bytes (kB in the file); None for what is missing."""
    try:
        text = path.read_text()
    except OSError:
        return None, None
    found: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if key in ("MemAvailable", "MemTotal") and fields and fields[0].isdigit():
            found[key] = float(fields[0]) * 1024
    return found.get("MemAvailable"), found.get("MemTotal")


def _statvfs(mount: str) -> tuple[str, float, float] | None:
    """(mount, bytes available to unprivileged users, size) as node_exporter reports them;
    None when the path is not there (a JVB has no /var/bigbluebutton)."""
    try:
        st = os.statvfs(mount)
    except OSError:
        return None
    return mount, float(st.f_bavail * st.f_frsize), float(st.f_blocks * st.f_frsize)


def _proc_number(text: str) -> float:
    if not text.isdigit():
        raise PollError("parse", f"unexpected /proc field {text[:20]!r}")
    return float(text)


def poll_host(
    client: HttpClient, source: HostSource, *, timeout: float, max_bytes: int
) -> HostFigures:
    """One poll of a node's host figures; raises PollError with the failure reason."""
    if source.node_exporter is None:
        return read_proc(interface=source.interface, filesystems=source.filesystems)
    sink = _LineSink()
    client.fetch(
        source.node_exporter, timeout=timeout, max_bytes=max_bytes, sink=sink, tls=source.tls
    )
    lines = sink.finish()
    return parse_node_exporter(lines, source.interface, source.filesystems, sink.cpu_rows)


class HostFamilies:
    """CPU seconds, CPU count and uplink bytes of each node."""

    def __init__(self, base: Sequence[str]) -> None:
        self._cpu = counter(c.CPU_SECONDS.name, c.CPU_SECONDS.help, [*base, "mode"])
        self._cpus = gauge(c.CPU_COUNT.name, c.CPU_COUNT.help, base)
        self._tx = counter(c.TRANSMIT_BYTES.name, c.TRANSMIT_BYTES.help, base)
        self._rx = counter(c.RECEIVE_BYTES.name, c.RECEIVE_BYTES.help, base)

        self._memory = [(g.field, gauge(g.metric, g.help, base)) for g in HOST_GAUGES]
        self._fs_avail = gauge(
            HOST_FILESYSTEM_AVAIL,
            "Bytes available to non-root users on a watched filesystem (root, recordings).",
            [*base, "mountpoint"],
        )
        self._queue = gauge(
            BBB_RECORDINGS_UNPROCESSED,
            "Recordings waiting to be processed on this BBB host (host: local only).",
            base,
        )
        self._fs_size = gauge(
            HOST_FILESYSTEM_SIZE, "Size of a watched filesystem in bytes.", [*base, "mountpoint"]
        )

    def add(self, figures: HostFigures, labels: dict[str, str]) -> None:
        for mode, seconds in figures.cpu_seconds:
            self._cpu.add_with(labels, "mode", mode, seconds)
        self._cpus.add(labels, figures.cpu_count)
        self._tx.add(labels, figures.transmit_bytes)
        self._rx.add(labels, figures.receive_bytes)
        for key, family in self._memory:
            value = getattr(figures, key)
            if value is not None:
                family.add(labels, value)
        for mount, avail, size in figures.filesystems:
            mount_labels = with_label(labels, "mountpoint", mount)
            self._fs_avail.add(mount_labels, avail)
            self._fs_size.add(mount_labels, size)
        if figures.recordings_unprocessed is not None:
            self._queue.add(labels, figures.recordings_unprocessed)

    def families(self) -> list[Family]:
        return [
            self._cpu,
            self._cpus,
            self._tx,
            self._rx,
            *(f for _, f in self._memory),
            self._fs_avail,
            self._fs_size,
            self._queue,
        ]


SOURCE = SourceKind(key="host", parse=parse_host, poll=poll_host, families=HostFamilies)
