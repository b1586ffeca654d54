"""The three commands are one family: shared flags, duration grammar, listen addresses, logs.

Parse tests on confscale.flags and confscale.log, then real runs of confscale-exporter,
confscale-planner and confscale-sim checking ``--version``, that their log lines parse as
logfmt and as JSON, and that an old flag spelling still works and warns.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import REPO, free_port

from confscale import __version__
from confscale.flags import (
    format_duration,
    parse_duration,
    parse_listen_address,
    rewrite_renamed,
)
from confscale.log import configure_logging

COMMANDS = {
    "confscale-exporter": "confscale.exporter.cli",
    "confscale-planner": "confscale.planner.cli",
    "confscale-sim": "confscale.simulator.cli",
}

# --- an independent logfmt reader (go-logfmt's grammar), the test's oracle -------------

_PAIR = re.compile(r'([^\s="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s="\\]*))(?:\s+|$)')


def read_logfmt(line: str) -> dict[str, str]:
    """Every key=value of ``line``; AssertionError when any part is not valid logfmt."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        assert match, f"not logfmt at column {position}: {line[position:]!r} in {line!r}"
        key, quoted, bare = match.groups()
        fields[key] = json.loads(f'"{quoted}"') if quoted is not None else bare
        position = match.end()
    return fields


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("15s", 15),
        ("5m", 300),
        ("12h", 43200),
        ("7d", 604800),
        ("4w", 2419200),
        ("1y", 365 * 86400),
        ("1h30m", 5400),
        ("2d12h", 216000),
        ("1m30s500ms", 90.5),
        ("0", 0),
    ],
)
def test_durations_follow_prometheus(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5h", "m5", "5m1h", "1h1h", "5 m", "-5m", "1ms5s"])
def test_bad_durations_name_the_grammar(text: str) -> None:
    with pytest.raises(ValueError, match=r"500ms, 15s, 1h30m or 7d"):
        parse_duration(text)


def test_format_duration_is_shortest() -> None:
    assert [format_duration(s) for s in (0, 0.5, 90, 5400, 604800, 900)] == [
        "0s",
        "500ms",
        "1m30s",
        "1h30m",
        "1w",
        "15m",
    ]


# --- listen addresses --------------------------------------------------------------------


def test_listen_addresses() -> None:
    v4 = parse_listen_address("127.0.0.1:9688")
    assert v4 == ("127.0.0.1", 9688) and v4.url() == "http://127.0.0.1:9688"
    v6 = parse_listen_address("[::1]:9688")
    assert v6 == ("::1", 9688) and v6.url() == "http://[::1]:9688" and str(v6) == "[::1]:9688"
    every = parse_listen_address(":9100")
    assert every == ("", 9100) and every.bind_host == "0.0.0.0"  # noqa: S104
    assert parse_listen_address("localhost:0").url(4321) == "http://localhost:4321"


@pytest.mark.parametrize("text", ["9688", "host:", "host:70000", "[::1]9688", "::1:9688", "[]:1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected HOST:PORT, \[IPV6\]:PORT or :PORT"):
        parse_listen_address(text)


def test_unbracketed_ipv6_says_how() -> None:
    with pytest.raises(ValueError, match=r"\[::1\]:9688"):
        parse_listen_address("::1:9688")


# --- renamed flags and log lines ---------------------------------------------------------


def test_rewrite_renamed_both_forms_once_each() -> None:
    renamed = {"--refit-interval": "--refit.interval", "--nodes": "--pool.nodes"}
    argv, notes = rewrite_renamed(
        ["--refit-interval=5m", "--nodes", "3", "--nodes=4", "--keep", "--", "--nodes"], renamed
    )
    expected = ["--refit.interval=5m", "--pool.nodes", "3", "--pool.nodes=4", "--keep"]
    assert argv == [*expected, "--", "--nodes"]
    assert len(notes) == 2 and "use --pool.nodes" in notes[1]


def test_logfmt_quotes_what_it_must() -> None:
    stream = io.StringIO()
    configure_logging("debug", "logfmt", stream)
    try:
        logging.getLogger("confscale.test").info(
            "listening on http://[::1]:1",
            extra={"path": 'a "b"=c', "empty": "", "n": 3, "multi": "x\ny"},
        )
    finally:
        configure_logging()
    line = stream.getvalue().rstrip("\n")
    assert "\n" not in line
    fields = read_logfmt(line)
    assert fields["msg"] == "listening on http://[::1]:1" and fields["level"] == "info"
    assert fields["path"] == 'a "b"=c' and fields["empty"] == "" and fields["multi"] == "x\ny"
    assert fields["n"] == "3" and fields["logger"] == "confscale.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_no_query_reaches_a_line(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("debug", fmt, stream)
    try:
        log = logging.getLogger("urllib3.connectionpool")
        log.debug(
            "GET %s", "http://bbb/api/getMeetings?checksum=abc123", extra={"u": "/x?k=abc123"}
        )
        try:
            raise OSError("http://bbb/api/getMeetings?checksum=abc123 failed")
        except OSError:
            logging.getLogger("confscale.test").exception("poll failed")
    finally:
        configure_logging()
    text = stream.getvalue()
    assert "getMeetings" in text and "poll failed" in text and "abc123" not in text


# --- real processes ----------------------------------------------------------------------


def run(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={"CONFSCALE_SIM_SECRET": "s3cret", "PATH": "/usr/bin:/bin"},
        check=False,
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_version_in_node_exporters_shape(name: str) -> None:
    done = run(COMMANDS[name], "--version")
    assert done.returncode == 0, done.stderr
    first, python, platform = done.stdout.splitlines()
    assert first == f"{name}, version {__version__}"
    assert python.startswith("  python version: 3.") and platform.startswith("  platform: ")


def _deprecated_run(name: str, tmp_path: Path, log_format: str) -> subprocess.CompletedProcess[str]:
    """A cheap run of ``name`` with one old flag spelling; it logs the warning and exits."""
    if name == "confscale-exporter":
        config = tmp_path / "pool.yml"
        config.write_text("nodes:\n  - name: me\n    host: local\n")
        args = [f"--config.file={config}", "--shard=0/1", "--config.check"]
    elif name == "confscale-planner":
        args = ["backtest", f"--csv={tmp_path / 'none.csv'}", "--csv.time-column=t"]
        args += ["--csv.value-column=v"]
    else:
        args = ["--nodes=1", f"--exporter.write-config={tmp_path / 'x.yml'}"]
    return run(COMMANDS[name], f"--log.format={log_format}", *args)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_old_spelling_warns_in_logfmt_and_json(name: str, tmp_path: Path) -> None:
    done = _deprecated_run(name, tmp_path, "logfmt")
    warnings = [read_logfmt(line) for line in done.stderr.splitlines() if "level=" in line]
    assert [w["level"] for w in warnings] == ["warn"], done.stderr
    assert "is deprecated: use" in warnings[0]["msg"]
    as_json = _deprecated_run(name, tmp_path, "json")
    lines = [json.loads(line) for line in as_json.stderr.splitlines() if line.startswith("{")]
    assert lines and lines[0]["level"] == "warn" and lines[0]["msg"] == warnings[0]["msg"]


def test_listening_lines_parse(tmp_path: Path) -> None:
    """The simulator and exporter say where they listen in a line logfmt and JSON read."""
    sim = subprocess.Popen(
        [
            *(sys.executable, "-m", COMMANDS["confscale-sim"]),
            *("--web.listen-address=127.0.0.1:0", "--pool.nodes=1", "--log.format=json"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={"CONFSCALE_SIM_SECRET": "s3cret", "PATH": "/usr/bin:/bin"},
    )
    try:
        assert sim.stderr is not None
        line = json.loads(sim.stderr.readline())
    finally:
        sim.terminate()
        sim.wait(30)
    assert line["msg"] == "listening" and line["logger"] == "confscale.simulator"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", line["address"])
    config = tmp_path / "pool.yml"
    config.write_text("nodes:\n  - name: me\n    host: local\n")
    port = free_port()
    exporter = subprocess.Popen(
        [
            *(sys.executable, "-m", COMMANDS["confscale-exporter"]),
            *(f"--config.file={config}", f"--web.listen-address=[::1]:{port}"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert exporter.stderr is not None
        fields = read_logfmt(exporter.stderr.readline().rstrip("\n"))
    finally:
        exporter.terminate()
        exporter.wait(30)
    assert fields["msg"] == "listening" and fields["address"] == f"http://[::1]:{port}"


def test_docs_list_every_renamed_flag() -> None:
    from confscale.exporter.cli import RENAMED as EXPORTER
    from confscale.planner.cli import RENAMED as PLANNER
    from confscale.simulator.cli import RENAMED as SIM
    from confscale.simulator.demo import RENAMED as DEMO

    page = (REPO / "docs" / "cli.md").read_text()
    for renamed in (EXPORTER, PLANNER, SIM, DEMO):
        for old, new in renamed.items():
            assert f"| `{old}` | `{new}` |" in page, f"docs/cli.md misses {old} -> {new}"
