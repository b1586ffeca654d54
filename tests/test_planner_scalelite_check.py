"""``confscale-planner scalelite-check`` against the Scalelite fake: tags that disagree
with the exporter's pool file fail the command (exit 1) and say where."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import harness
from confscale.planner.adapters.scalelite import Server
from confscale.planner.scalelite_check import compare, tags_agree
from fake_scalelite import FakeScalelite, FakeServer, serve

SECRET = "lb-secret-0123456789"


def server(ident: str, host: str, tag: str = "") -> Server:
    return Server(ident, f"https://{host}/bigbluebutton/api", "enabled", 1.0, tag, True)


def test_tags_agree_only_when_scalelites_tag_is_one_of_the_nodes() -> None:
    assert tags_agree("", ()) and tags_agree("lecture", ("lecture", "region-eu"))
    assert not tags_agree("lecture", ()) and not tags_agree("", ("lecture",))
    assert not tags_agree("seminar", ("lecture",))
    found = compare(
        {"bbb-01": ("lecture",), "bbb-02": (), "bbb-03": ("lecture",), "bbb-04": ()},
        [
            server("id-1", "bbb-01.example.org", "lecture"),
            server("id-2", "bbb-02.example.org", "lecture"),
            server("id-3", "bbb-03.example.org"),
            server("id-9", "other.example.org"),
        ],
        {},
    )
    assert [m["node"] for m in found.mismatched] == ["bbb-02", "bbb-03"] and not found.ok
    assert found.mismatched[0] == {
        "node": "bbb-02",
        "server": "id-2",
        "scalelite_tag": "lecture",
        "pool_file_tags": [],
    }
    assert found.unmatched_nodes == ("bbb-04",) and found.unknown_servers == ("id-9",)


def pool_file(path: Path, tags: dict[str, list[str]]) -> Path:
    lines = ["pool: campus", "nodes:"]
    for name, node_tags in tags.items():
        lines += [
            f"  - name: {name}",
            f"    tags: [{', '.join(node_tags)}]",
            "    bbb:",
            f"      url: https://{name}.example.org/bigbluebutton/api/",
            "      secret: ${BBB_SECRET}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def check(tmp_path: Path, url: str, config: Path) -> subprocess.CompletedProcess[str]:
    secret = tmp_path / "scalelite.secret"
    secret.write_text(SECRET + "\n")
    args = harness.python_module(
        "confscale.planner.cli", "scalelite-check", "--config.file", str(config),
        "--scalelite.url", url, "--scalelite.secret-file", str(secret),
    )  # fmt: skip
    return subprocess.run(
        args,
        cwd=harness.REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BBB_SECRET": "bbb-secret-one-aaaaaaaa"},
    )


def test_the_command_fails_on_a_disagreeing_tag_and_passes_when_in_step(tmp_path: Path) -> None:
    fake = FakeScalelite(secrets=(SECRET,))
    api = "example.org/bigbluebutton/api"
    fake.add(FakeServer("id-1", f"https://bbb-01.{api}", "bbb-secret-1", tag="lecture"))
    fake.add(FakeServer("id-2", f"https://bbb-02.{api}", "bbb-secret-2"))
    with serve(fake) as url:
        config = pool_file(tmp_path / "pool.yml", {"bbb-01": ["seminar"], "bbb-02": []})
        done = check(tmp_path, url, config)
        assert done.returncode == 1, done.stderr
        answer = json.loads(done.stdout)
        assert answer["ok"] is False and answer["nodes"] == 2 and answer["servers"] == 2
        assert answer["mismatched"] == [
            {"node": "bbb-01", "server": "id-1", "scalelite_tag": "lecture",
             "pool_file_tags": ["seminar"]},
        ]  # fmt: skip
        config = pool_file(tmp_path / "pool.yml", {"bbb-01": ["lecture"], "bbb-02": []})
        done = check(tmp_path, url, config)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["mismatched"] == []
        assert SECRET not in done.stdout + done.stderr and "bbb-secret" not in done.stdout
        fake.secrets = ("another-secret",)
        done = check(tmp_path, url, config)  # a checksum Scalelite refuses: one clear line
        assert done.returncode == 2 and "checksum rejected" in done.stderr
