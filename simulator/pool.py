"""The simulated pool: node names, the simulated clock, faults and ground truth."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from confscale.simulator.model import LINK_CAPACITY_BYTES
from confscale.simulator.node import NodeState
from confscale.simulator.proxy import PROXY_NAME, ProxyState
from confscale.simulator.terms import TermCalendar

FAULT_DEFAULTS: Mapping[str, float | str | None] = MappingProxyType(
    {
        "slow": 2.0,
        "timeout": 60.0,
        "refused": None,
        "html": None,
        "http_error": 502,
        "invalid_xml": None,
        "checksum": None,
        "huge": 30.0,
        "link_saturated": 1.05,
        "cpu_high": 0.95,
        "thousands": ",",
        "jvb_unhealthy": None,
        "jvb_graceful_shutdown": None,
        "jvb_drain": None,
        "memory_low": 0.04,
        "disk_full": 0.03,
        "recordings_backlog": 6.0,
        "bbb_version": "3.0.4",
        "proxy_refusing": 0.05,  # share of new connections the cluster proxy drops
        "turn_allocations": 14000.0,  # the TURN server holds this many allocations
    }
)
LOAD_FAULTS = ("link_saturated", "cpu_high")
# what the cluster proxy (--pool.proxy) can suffer: its own fault and the network ones
PROXY_FAULTS = ("proxy_refusing", "slow", "timeout", "refused", "html", "http_error")
TURN_NAME = "turn"  # the pool's TURN server (/_turn/metrics) as a fault target
TURN_FAULTS = ("turn_allocations",)


class FaultError(ValueError):
    """A fault request that cannot be applied (unknown node or mode, bad argument)."""


@dataclass(frozen=True)
class Fault:
    mode: str
    arg: float | str | None

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "arg": self.arg}

    def number(self) -> float:
        """The argument as a number (seconds, MB, status, share; validated on set)."""
        return float(self.arg) if isinstance(self.arg, int | float) else 0.0


def node_names(prefix: str, count: int) -> list[str]:
    """``bbb-01`` … zero-padded to max(2, digits of count)."""
    width = max(2, len(str(count)))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, count + 1)]


class SimClock:
    """Simulated time: start + speed × wall time (unless frozen) + explicit advances."""

    def __init__(self, start: float, speed: float = 60.0, frozen: bool = False) -> None:
        self._start = start
        self._speed = speed
        self._frozen = frozen
        self._offset = 0.0
        self._wall0 = time.monotonic()
        self._lock = threading.Lock()
        self._last = start

    def now(self) -> float:
        with self._lock:
            moving = 0.0 if self._frozen else (time.monotonic() - self._wall0) * self._speed
            # never go backwards, and keep instants in whole milliseconds
            self._last = max(self._last, round(self._start + self._offset + moving, 3))
            return self._last

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()


class Pool:
    """All nodes of the simulated pool, created lazily on first use."""

    def __init__(
        self,
        *,
        nodes: int,
        jitsi: int,
        seed: int,
        clock: SimClock,
        calendar: TermCalendar | None = None,
        load_scale: float = 1.0,
        counter_scale: float = 1.0,
        proxy: bool = False,
    ) -> None:
        self.clock = clock
        self.load_scale = load_scale
        self.counter_scale = counter_scale
        self.seed = seed
        self.calendar = calendar or TermCalendar()
        self.bbb_names = node_names("bbb", nodes) if nodes else []
        self.jitsi_names = node_names("jvb", jitsi) if jitsi else []
        self.kinds = {n: "bbb" for n in self.bbb_names} | {n: "jitsi" for n in self.jitsi_names}
        self._nodes: dict[str, NodeState] = {}
        self.huge_answers: OrderedDict[float, bytes] = OrderedDict()  # the `huge` fault's
        self.huge_lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._origin = clock.now()
        # the cluster proxy in front of the BBB nodes: not a node, no meetings of its own
        self.proxy_name = PROXY_NAME if proxy else ""
        self.proxy = ProxyState(self._origin) if proxy else None

    @property
    def names(self) -> list[str]:
        return [*self.bbb_names, *self.jitsi_names]

    def node(self, name: str) -> NodeState | None:
        kind = self.kinds.get(name)
        if kind is None:
            return None
        with self._lock:
            state = self._nodes.get(name)
            if state is None:
                state = NodeState(
                    name,
                    kind,
                    seed=self.seed,
                    calendar=self.calendar,
                    origin=self._origin,
                    scale=self.load_scale,
                    counter_scale=self.counter_scale,
                )
                self._nodes[name] = state
            return state

    # --- faults -------------------------------------------------------------------------

    def fault(self, name: str) -> Fault | None:
        with self._lock:
            return self._faults.get(name)

    def faults(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: f.as_dict() for name, f in sorted(self._faults.items())}

    def set_fault(self, name: str, mode: str, arg: object = None) -> Fault:
        if self.proxy is not None and name == self.proxy_name:
            return self._set_proxy_fault(mode, arg)
        if name == TURN_NAME:
            if mode not in TURN_FAULTS:
                raise FaultError(f"fault {mode!r} is not for {TURN_NAME}; modes: {TURN_FAULTS[0]}")
            fault = Fault(mode, _fault_arg(mode, arg))
            with self._lock:
                self._faults[TURN_NAME] = fault
            return fault
        node = self.node(name)
        if node is None:
            raise FaultError(f"unknown node {name!r}; nodes are {self._name_hint()}")
        if mode == "proxy_refusing":
            raise FaultError(f"fault proxy_refusing is for the cluster proxy ({PROXY_NAME})")
        if mode in TURN_FAULTS:
            raise FaultError(f"fault {mode} is for the TURN server ({TURN_NAME})")
        if mode not in FAULT_DEFAULTS:
            raise FaultError(f"unknown fault mode {mode!r}; modes: {', '.join(FAULT_DEFAULTS)}")
        fault = Fault(mode, _fault_arg(mode, arg))
        t = self.clock.now()
        with node.lock:
            if mode in LOAD_FAULTS:
                node.set_override(t, mode, fault.number())
            else:
                node.clear_overrides(t)
        with self._lock:
            self._faults[name] = fault
        return fault

    def _set_proxy_fault(self, mode: str, arg: object) -> Fault:
        assert self.proxy is not None
        if mode not in PROXY_FAULTS:
            raise FaultError(
                f"fault {mode!r} is not for the cluster proxy; modes: {', '.join(PROXY_FAULTS)}"
            )
        fault = Fault(mode, _fault_arg(mode, arg))
        if mode == "proxy_refusing" and fault.number() > 1:
            raise FaultError(f"fault proxy_refusing takes a share 0–1, got {arg!r}")
        share = fault.number() if mode == "proxy_refusing" else None
        with self._lock:
            self.proxy.set_refusing(self, self.clock.now(), share)
            self._faults[self.proxy_name] = fault
        return fault

    def clear_faults(self, name: str | None = None) -> None:
        known = name in (None, TURN_NAME) or name in self.kinds
        known = known or bool(self.proxy and name == self.proxy_name)
        if not known:
            raise FaultError(f"unknown node {name!r}; nodes are {self._name_hint()}")
        t = self.clock.now()
        with self._lock:
            names = [name] if name else list(self._faults)
            for n in names:
                self._faults.pop(n, None)
            if self.proxy is not None and self.proxy_name in names:
                self.proxy.set_refusing(self, t, None)
        for n in names:
            node = self.node(n)
            if node is not None:
                with node.lock:
                    node.clear_overrides(t)

    def _name_hint(self) -> str:
        names = [*self.names, *([self.proxy_name] if self.proxy_name else [])]
        if len(names) <= 6:
            return ", ".join(names)
        return f"{names[0]} … {names[len(self.bbb_names) - 1] if self.bbb_names else ''}" + (
            f", {self.jitsi_names[0]} … {self.jitsi_names[-1]}" if self.jitsi_names else ""
        )


def _fault_arg(mode: str, arg: object) -> float | str | None:
    default = FAULT_DEFAULTS[mode]
    if arg is None or arg == "":
        return default
    if mode == "thousands":
        if str(arg) not in (",", ".", " ", "'"):
            raise FaultError("fault thousands takes ',' '.' ' ' or \"'\" as separator")
        return str(arg)
    if mode == "bbb_version":
        if not re.match(r"^[0-9][0-9A-Za-z.+-]{0,31}$", str(arg)):
            raise FaultError(f"fault bbb_version takes a version like 3.0.4, got {arg!r}")
        return str(arg)
    if default is None:
        raise FaultError(f"fault {mode} takes no argument")
    try:
        value = float(str(arg))
    except ValueError as exc:
        raise FaultError(f"fault {mode} needs a number, got {arg!r}") from exc
    if value < 0:
        raise FaultError(f"fault {mode} needs a number >= 0, got {value}")
    if mode == "http_error":
        if not 400 <= value <= 599:
            raise FaultError(f"fault http_error needs an HTTP status 400–599, got {arg!r}")
        return int(value)
    return value


def parse_fault_flag(text: str) -> tuple[str, str, str | None]:
    """``NODE=MODE[:ARG]`` from the command line."""
    node, sep, rest = text.partition("=")
    if not sep or not node or not rest:
        raise FaultError(f"--fault {text!r}: expected NODE=MODE[:ARG], e.g. bbb-01=slow:3")
    mode, _, arg = rest.partition(":")
    return node, mode, arg or None


LINK_CAPACITY = LINK_CAPACITY_BYTES
