"""Exporter configuration: good files load into value objects, bad ones say where and why."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from confscale.exporter.config import (
    MAX_SECRET_BYTES,
    ConfigError,
    ConfigFileError,
    ConfigValueError,
    EmptyConfigError,
    SecretError,
    load_config,
    parse_duration,
)

SECRET = "Sup3r-S3cret-Value-4711"

GOOD = """
pool: campus
interval: 15s
timeout: 500ms
nodes:
  - name: bbb-01
    link_capacity_mbit: 1000
    bbb:
      url: https://bbb-01.example.org/bigbluebutton/api
      secret_file: bbb.secret
      checksum: SHA512
    host:
      node_exporter: http://bbb-01.example.org:9100/metrics
      interface: eth0
  - name: bbb-02
    bbb:
      url: https://bbb-02.example.org/bigbluebutton/api/
      secret: ${BBB_SECRET}
    host: local
  - name: jvb-01
    jitsi:
      url: http://jvb-01.example.org:8080/colibri/stats
    host:
      node_exporter: local
      interface: ens3
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "bbb.secret").write_text(SECRET + "\n")
    path = tmp_path / "pool.yml"
    path.write_text(text)
    return path


def test_good_config_loads_into_immutable_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={"BBB_SECRET": "from-env"})
    assert config.pool == "campus"
    assert config.interval == 15.0
    assert config.timeout == 0.5
    assert [n.name for n in config.nodes] == ["bbb-01", "bbb-02", "jvb-01"]
    first, second, bridge = config.nodes
    assert first.link_capacity_bytes_per_second == 125e6
    assert second.link_capacity_bytes_per_second == 62.5e6
    bbb1, bbb2 = first.source("bbb"), second.source("bbb")
    host1, host2, host3 = first.source("host"), second.source("host"), bridge.source("host")
    assert bbb1 is not None and bbb1.checksum == "sha512"
    assert bbb1.url.endswith("/api/")
    assert bbb1.secret.reveal() == SECRET
    assert bbb2 is not None and bbb2.secret.reveal() == "from-env"
    assert bbb2.checksum == "sha256"
    assert host1 is not None and host1.interface == "eth0" and not host1.local
    assert host2 is not None and host2.local
    assert bridge.sources() == ("jitsi", "host")
    assert host3 is not None and host3.local and host3.interface == "ens3"
    assert first.sources() == ("bbb", "bbb_version", "host")  # versions come with bbb
    assert bridge.source("bbb") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "other"  # type: ignore[misc]
    assert SECRET not in repr(config)
    assert "from-env" not in repr(config)


BAD = [
    # (case, yaml, exception, fragments the message must contain)
    ("empty", "", EmptyConfigError, ["pool.yml", "empty"]),
    ("not yaml", "nodes: [\n  - {name: x", ConfigFileError, ["pool.yml", "line"]),
    ("not a mapping", "- a\n- b\n", ConfigValueError, ["pool.yml", "mapping"]),
    ("no nodes", "pool: x\n", ConfigValueError, ["'nodes'"]),
    (
        "unknown top key",
        "nodez: []\nnodes: [{name: a, host: local}]\n",
        ConfigValueError,
        ["nodez"],
    ),
    (
        "bad interval",
        "interval: soon\nnodes: [{name: a, host: local}]\n",
        ConfigValueError,
        ["'interval'", "soon"],
    ),
    (
        "zero timeout",
        "timeout: 0s\nnodes: [{name: a, host: local}]\n",
        ConfigValueError,
        ["'timeout'", "greater than zero"],
    ),
    (
        "timeout not below interval",
        "interval: 5s\ntimeout: 5s\nnodes: [{name: a, host: local}]\n",
        ConfigValueError,
        ["'timeout'", "'interval'"],
    ),
    ("no name", "nodes: [{host: local}]\n", ConfigValueError, ["nodes[0]", "'name'"]),
    (
        "duplicate",
        "nodes: [{name: a, host: local}, {name: a, host: local}]\n",
        ConfigValueError,
        ["nodes[1]", "'a'", "twice"],
    ),
    ("no source", "nodes: [{name: a}]\n", ConfigValueError, ["node a", "no source"]),
    (
        "unknown node key",
        "nodes: [{name: a, host: local, colour: red}]\n",
        ConfigValueError,
        ["node a", "colour"],
    ),
    (
        "bad link",
        "nodes: [{name: a, host: local, link_capacity_mbit: -5}]\n",
        ConfigValueError,
        ["node a", "link_capacity_mbit"],
    ),
    *(
        (
            f"link {value}",
            f"nodes: [{{name: a, host: local, link_capacity_mbit: {value}}}]\n",
            ConfigValueError,
            ["node a", "link_capacity_mbit", "positive number"],
        )
        for value in (".nan", ".inf", "-.inf", "1.0e+308", "2000000")
    ),
    *(
        (
            f"{key} {value}",
            f"{key}: {value}\nnodes: [{{name: a, host: local}}]\n",
            ConfigValueError,
            ["pool.yml", key],
        )
        for key, value in (("interval", ".nan"), ("interval", ".inf"), ("timeout", ".nan"))
    ),
    (
        "bad url",
        "nodes: [{name: a, jitsi: {url: 'ftp://x/'}}]\n",
        ConfigValueError,
        ["node a", "jitsi", "url"],
    ),
    (
        "bad checksum",
        "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: bbb.secret, checksum: md5}}]\n",
        ConfigValueError,
        ["node a", "checksum", "sha256", "md5"],
    ),
    (
        "secret missing",
        "nodes: [{name: a, bbb: {url: 'http://x/'}}]\n",
        SecretError,
        ["node a", "secret_file"],
    ),
    (
        "secret file missing",
        "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: nope.secret}}]\n",
        SecretError,
        ["node a", "nope.secret"],
    ),
    (
        "env unset",
        "nodes: [{name: a, bbb: {url: 'http://x/', secret: '${NOT_SET_XYZ}'}}]\n",
        SecretError,
        ["node a", "NOT_SET_XYZ"],
    ),
    (
        "bad host",
        "nodes: [{name: a, host: {node_exporter: 'nonsense'}}]\n",
        ConfigValueError,
        ["node a", "node_exporter"],
    ),
    (
        "pool with a space",
        "nodes: [{name: a, host: local, pool: 'two words'}]\n",
        ConfigValueError,
        ["node a", "'pool'", "two words"],
    ),
    (
        "file pool with a slash",
        "pool: a/b\nnodes: [{name: a, host: local}]\n",
        ConfigValueError,
        ["pool.yml", "'pool'", "a/b"],
    ),
    (
        "tags not a list",
        "nodes: [{name: a, host: local, tags: lecture}]\n",
        ConfigValueError,
        ["node a", "'tags'", "list"],
    ),
    (
        "tag with a comma",
        "nodes: [{name: a, host: local, tags: ['x,y']}]\n",
        ConfigValueError,
        ["node a", "'tags'", "x,y"],
    ),
    (
        "tag twice",
        "nodes: [{name: a, host: local, tags: [x, x]}]\n",
        ConfigValueError,
        ["node a", "'x'", "twice"],
    ),
    (
        "too many tags on a node",
        "nodes: [{name: a, host: local, tags: [t1, t2, t3, t4, t5, t6, t7, t8, t9]}]\n",
        ConfigValueError,
        ["node a", "9 tags", "at most 8"],
    ),
    *(
        (
            f"origins_top {top!r}",
            "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: bbb.secret, "
            f"origins_top: {top}}}}}]\n",
            ConfigValueError,
            ["origins_top", "0 to 64"],
        )
        for top in ("65", "-1", "true", "ten")
    ),
    (
        "too many tags in the file",
        "nodes:\n"
        + "".join(f"  - {{name: n{i}, host: local, tags: [a{i}, b{i}]}}\n" for i in range(9)),
        ConfigValueError,
        ["pool.yml", "18 different tags", "at most 16"],
    ),
]


@pytest.mark.parametrize(("case", "text", "error", "fragments"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_file_node_and_key(
    tmp_path: Path, case: str, text: str, error: type[ConfigError], fragments: list[str]
) -> None:
    with pytest.raises(error) as raised:
        load_config(write(tmp_path, text), environ={})
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} missing from {message!r}"


def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = f"nodes: [{{name: a, bbb: {{url: 'http://x/', secret: '{SECRET}'}}}}]\n"
    with pytest.raises(SecretError) as raised:
        load_config(write(tmp_path, text), environ={})
    assert SECRET not in str(raised.value)
    assert "secret_file" in str(raised.value)


def test_credentials_in_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    text = f"nodes: [{{name: a, jitsi: {{url: 'http://admin:{SECRET}@x/'}}}}]\n"
    with pytest.raises(ConfigValueError) as raised:
        load_config(write(tmp_path, text), environ={})
    assert SECRET not in str(raised.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match=r"nope\.yml"):
        load_config(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("500ms", 0.5), ("1m", 60), ("2h", 7200), (3, 3), (1.5, 1.5), ("1m30s", 90)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text, "key") == seconds


def test_node_pool_overrides_the_file_pool_and_tags_are_sorted(tmp_path: Path) -> None:
    text = (
        "pool: campus\n"
        "nodes:\n"
        "  - {name: a, host: local, tags: [region-eu, lecture]}\n"
        "  - {name: b, host: local, pool: medicine, tags: [7]}\n"
        "  - {name: c, host: local}\n"
    )
    a, b, c = load_config(write(tmp_path, text), environ={}).nodes
    assert (a.pool, a.tags, a.tags_label()) == (
        "campus",
        ("lecture", "region-eu"),
        ",lecture,region-eu,",
    )
    assert (b.pool, b.tags, b.tags_label()) == ("medicine", ("7",), ",7,")
    assert (c.pool, c.tags, c.tags_label()) == ("campus", (), "")


BBB_WITH_SECRET_FILE = "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: s}}]\n"


def secret_error(tmp_path: Path) -> str:
    with pytest.raises(SecretError) as raised:
        load_config(write(tmp_path, BBB_WITH_SECRET_FILE), environ={})
    return str(raised.value)


def test_a_fifo_as_secret_file_is_refused_not_waited_for(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "s")  # nobody writes: reading it would block for ever
    message = secret_error(tmp_path)
    assert "node a" in message and str(tmp_path / "s") in message
    assert "not a regular file" in message


def test_a_device_as_secret_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "s").symlink_to("/dev/zero")  # endless: read whole it fills memory
    assert "not a regular file" in secret_error(tmp_path)


def test_a_large_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    assert f"larger than {MAX_SECRET_BYTES} bytes" in secret_error(tmp_path)


def test_a_secret_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "s").write_bytes(b"\xff\xfe" + SECRET.encode("utf-16-le"))
    message = secret_error(tmp_path)
    assert "node a" in message and str(tmp_path / "s") in message
    assert "not UTF-8" in message and SECRET not in message


def test_a_fifo_as_config_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pool.yml")
    with pytest.raises(ConfigFileError, match="not a regular file"):
        load_config(tmp_path / "pool.yml", environ={})


def test_origins_top_is_a_bbb_setting(tmp_path: Path) -> None:
    text = "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: bbb.secret, origins_top: 3}}]\n"
    config = load_config(write(tmp_path, text), environ={})
    assert config.nodes[0].source("bbb").origins_top == 3
    text = "nodes: [{name: a, bbb: {url: 'http://x/', secret_file: bbb.secret}}]\n"
    assert load_config(write(tmp_path, text), environ={}).nodes[0].source("bbb").origins_top == 10
