"""Rendezvous sharding of the node list (``exporter/sharding.py``): pure, no processes."""

from __future__ import annotations

from collections import Counter

import pytest
from confscale.exporter.config import BbbSource, NodeConfig, PoolConfig, Secret
from confscale.exporter.sharding import Shard, assignment, owner, parse_shard

NAMES = [f"bbb-{i:04d}" for i in range(1, 1001)] + [f"jvb-{i:03d}" for i in range(1, 101)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_node_has_exactly_one_owner_and_shards_are_balanced(count: int) -> None:
    owners = [[s for s in range(count) if Shard(s, count).owns(n)] for n in NAMES]
    assert all(len(o) == 1 for o in owners)
    sizes = Counter(o[0] for o in owners)
    assert set(sizes) == set(range(count))
    fair = len(NAMES) / count
    # binomial spread: 5 standard deviations is far beyond chance for a good hash
    spread = 5 * (fair * (1 - 1 / count)) ** 0.5 + 1
    assert all(abs(size - fair) <= spread for size in sizes.values()), sizes


@pytest.mark.parametrize(("before", "after"), [(2, 3), (3, 4), (4, 5), (8, 9), (3, 2)])
def test_a_resize_moves_about_one_over_n_of_the_nodes(before: int, after: int) -> None:
    old, new = assignment(NAMES, before), assignment(NAMES, after)
    moved = [n for n in NAMES if old[n] != new[n]]
    bigger = max(before, after)
    expected = len(NAMES) / bigger
    assert abs(len(moved) - expected) <= 5 * expected**0.5, (len(moved), expected)
    # only the added (or removed) shard gains (or loses) nodes: nothing moves between
    # the shards that stay
    stays = min(before, after)
    for name in moved:
        assert (new[name] if after > before else old[name]) == stays


def test_modulo_hashing_would_move_most_nodes() -> None:
    """The obvious alternative (hash mod N) reshuffles ~N/(N+1) of the pool on a resize."""
    import zlib

    def mod(name: str, n: int) -> int:
        return zlib.crc32(name.encode()) % n

    moved_mod = sum(mod(n, 4) != mod(n, 5) for n in NAMES)
    moved_hrw = sum(owner(n, 4) != owner(n, 5) for n in NAMES)
    assert moved_hrw * 2 < moved_mod


def test_assignment_is_stable_across_runs() -> None:
    # pinned: a different hash (or Python's per-process randomised hash()) would let two
    # exporters of different versions or runs disagree about who owns a node
    names = ("bbb-01", "bbb-02", "bbb-03", "bbb-04", "jvb-01", "jvb-02")
    assert [owner(n, 3) for n in names] == [1, 1, 1, 0, 2, 2]
    assert parse_shard("1/3").owns("bbb-01") == (owner("bbb-01", 3) == 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/2", Shard(0, 2)), (" 1 / 2 ", Shard(1, 2)), ("0/1", Shard(0, 1))],
)
def test_parse_shard(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected
    assert str(parse_shard(text)) == f"{expected.index}/{expected.count}"


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0", "1/2/3", "0/5000"])
def test_bad_shard_says_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"--poll.shard: expected I/N"):
        parse_shard(text)


def test_select_keeps_pool_settings_and_only_own_nodes() -> None:
    nodes = tuple(
        NodeConfig(
            name=n,
            settings={"bbb": BbbSource(url=f"http://127.0.0.1:1/{n}/", secret=Secret("s"))},
        )
        for n in NAMES[:50]
    )
    config = PoolConfig(nodes=nodes, pool="campus", interval=7.0, timeout=2.0, path="p.yml")
    parts = [Shard(i, 3).select(config) for i in range(3)]
    assert sorted(n.name for p in parts for n in p.nodes) == sorted(NAMES[:50])
    for i, part in enumerate(parts):
        assert (part.pool, part.interval, part.timeout, part.path) == ("campus", 7.0, 2.0, "p.yml")
        assert all(owner(n.name, 3) == i for n in part.nodes)
    assert Shard().select(config) is config


def test_config_check_reports_the_shard_and_a_bad_shard_exits_2(tmp_path) -> None:
    import subprocess

    import harness

    names = [f"bbb-{i:02d}" for i in range(1, 31)]
    (tmp_path / "pool.yml").write_text(
        "nodes:\n"
        + "".join(f"  - name: {n}\n    jitsi: {{url: 'http://127.0.0.1:1/'}}\n" for n in names)
    )

    def check(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            harness.python_module(
                "confscale.exporter.cli",
                f"--config.file={tmp_path / 'pool.yml'}",
                "--config.check",
                *flags,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=harness.REPO,
        )

    for shard in range(3):
        done = check(f"--poll.shard={shard}/3")
        mine = sum(owner(n, 3) == shard for n in names)
        assert done.returncode == 0, done.stderr
        assert f"OK, {mine} nodes in shard {shard}/3," in done.stdout
    bad = check("--poll.shard=3/3")
    assert bad.returncode == 2
    assert "--poll.shard: expected I/N with 0 <= I < N" in bad.stderr
