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

from confscale.exporter.config import HostSource, parse_host
from confscale.exporter.exposition import Family, counter, gauge
from confscale.exporter.fetch import HttpClient, PollError
from confscale.exporter.source import SourceKind

_CPU = "node_cpu_seconds_total{"
_RX = "node_network_receive_bytes_total{"
_TX = "node_network_transmit_bytes_total{"
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_NOT_UPLINK = ("lo", "veth", "docker", "br-", "ifb", "virbr")
# /proc/stat cpu columns in order (guest time is already inside user and nice).
_PROC_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class HostFigures:
    cpu_seconds: tuple[tuple[str, float], ...]  # (mode, seconds summed over CPUs)
    cpu_count: int
    transmit_bytes: float
    receive_bytes: float


def is_uplink(device: str, interface: str | None = None) -> bool:
    """The configured interface, or any interface that is not loopback/virtual."""
    if interface is not None:
        return device == interface
    return not (device == "lo" or device.startswith(_NOT_UPLINK))


def parse_node_exporter(lines: Iterable[str], interface: str | None = None) -> HostFigures:
    """Figures from node_exporter text lines; raises PollError('parse') if CPU is missing."""
    cpu: dict[str, float] = defaultdict(float)
    cpus: Counter[str] = Counter()
    rx = tx = 0.0
    found_net = False
    for line in lines:
        if not line.startswith("node_"):
            continue
        if line.startswith(_CPU):
            labels, value = _split(line)
            cpus[labels.get("cpu", "")] += 1
            cpu[labels.get("mode", "unknown")] += value
        elif line.startswith((_RX, _TX)):
            labels, value = _split(line)
            if is_uplink(labels.get("device", ""), interface):
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
        cpu_seconds=tuple(sorted(cpu.items())),
        cpu_count=len(cpus),
        transmit_bytes=tx,
        receive_bytes=rx,
    )


def _split(line: str) -> tuple[dict[str, str], float]:
    close = line.rfind("}")
    if close < 0:
        raise PollError("parse", f"malformed sample line {line[:60]!r}")
    labels = _labels(line[line.find("{") + 1 : close])
    fields = line[close + 1 :].split()
    if not fields:
        raise PollError("parse", f"sample without a value {line[:60]!r}")
    try:
        value = float(fields[0])
    except ValueError:
        raise PollError("parse", f"value is not a number in {line[:60]!r}") from None
    if not math.isfinite(value):
        raise PollError("parse", f"value is not finite in {line[:60]!r}")
    return labels, value


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
    """Splits streamed bytes into text lines, keeping only lines that may matter."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._rest = b""

    def __call__(self, chunk: bytes) -> None:
        data = self._rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._rest = data
            return
        self._rest = data[cut + 1 :]
        for raw in data[:cut].split(b"\n"):
            if raw.startswith((b"node_cpu_seconds_total{", b"node_network_")):
                self.lines.append(raw.decode("utf-8", "replace"))

    def finish(self) -> list[str]:
        """The kept lines; a page that does not end in a newline was cut off."""
        if self._rest:
            raise PollError("parse", "the node_exporter page is truncated (no final newline)")
        return self.lines


def read_proc(root: Path = Path("/proc"), interface: str | None = None) -> HostFigures:
    """Figures of the machine the exporter runs on, from /proc/stat and /proc/net/dev."""
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
    return HostFigures(
        cpu_seconds=tuple(sorted(cpu.items())), cpu_count=count, transmit_bytes=tx, receive_bytes=rx
    )


def _proc_number(text: str) -> float:
    if not text.isdigit():
        raise PollError("parse", f"unexpected /proc field {text[:20]!r}")
    return float(text)


def poll_host(
    client: HttpClient, source: HostSource, *, timeout: float, max_bytes: int
) -> HostFigures:
    """One poll of a node's host figures; raises PollError with the failure reason."""
    if source.node_exporter is None:
        return read_proc(interface=source.interface)
    sink = _LineSink()
    client.fetch(
        source.node_exporter, timeout=timeout, max_bytes=max_bytes, sink=sink, tls=source.tls
    )
    return parse_node_exporter(sink.finish(), source.interface)


class HostFamilies:
    """CPU seconds, CPU count and uplink bytes of each node."""

    def __init__(self, base: Sequence[str]) -> None:
        self._cpu = counter(
            "confscale_node_cpu_seconds", "CPU seconds summed over CPUs, by mode.", [*base, "mode"]
        )
        self._cpus = gauge("confscale_node_cpu_count", "Number of CPUs.", base)
        self._tx = counter(
            "confscale_node_network_transmit_bytes", "Bytes sent on the uplink interface(s).", base
        )
        self._rx = counter(
            "confscale_node_network_receive_bytes",
            "Bytes received on the uplink interface(s).",
            base,
        )

    def add(self, figures: HostFigures, labels: dict[str, str]) -> None:
        for mode, seconds in figures.cpu_seconds:
            self._cpu.add({**labels, "mode": mode}, seconds)
        self._cpus.add(labels, figures.cpu_count)
        self._tx.add(labels, figures.transmit_bytes)
        self._rx.add(labels, figures.receive_bytes)

    def families(self) -> list[Family]:
        return [self._cpu, self._cpus, self._tx, self._rx]


SOURCE = SourceKind(key="host", parse=parse_host, poll=poll_host, families=HostFamilies)
