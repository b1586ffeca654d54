"""Several pools in one Prometheus are planned apart: scopes, discovery, the API per pool.

Two simulated pools (``a``: four nodes, two of them tagged ``lecture``; ``b``: two other
nodes) are backfilled into one real Prometheus; each pool's history, peaks and placement
must be its own, and ``confscale-planner serve`` must answer each on ``?pool=``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import harness
import numpy as np
import pandas as pd
import pytest
import requests
from confscale.planner.history import load_history
from confscale.planner.peaks import hourly_peaks, pool_totals
from confscale.planner.pools import PoolPlanners, UnknownPool
from confscale.planner.prometheus import POOL_HOURLY_ATTR, PrometheusClient, load_prometheus_history
from confscale.planner.scope import Scope, ScopeError, scoped, scoped_client, units_from
from confscale.planner.sources import discover_units

WEEKS = 1

# --- pure parts --------------------------------------------------------------------------


def test_scoped_adds_matchers_to_every_contract_selector_only() -> None:
    expr = (
        "max_over_time(sum(max_over_time(bbb_meetings_participants[299s]))[59m:5m]) + "
        'sum by (node) (rate(confscale_node_cpu_seconds_total{mode="idle"}[5m])) / '
        "max by (node) (node:confscale_cpu_utilisation:ratio_rate5m)"
    )
    out = scoped(expr, 'pool="a"')
    assert 'bbb_meetings_participants{pool="a"}[299s]' in out
    assert 'confscale_node_cpu_seconds_total{mode="idle",pool="a"}[5m]' in out
    assert 'node:confscale_cpu_utilisation:ratio_rate5m{pool="a"}' in out
    assert out.count('pool="a"') == 3  # functions (max_over_time, rate, sum) untouched
    assert scoped(expr, "") == expr


def test_units_from_discovery_answers() -> None:
    pools = [{"metric": {"pool": "b"}}, {"metric": {"pool": "a"}}, {"metric": {"pool": "x y"}}]
    tags = [
        {"metric": {"pool": "a", "tags": ",lecture,region-eu,"}},
        {"metric": {"pool": "a", "tags": ""}},
        {"metric": {"pool": "b", "tags": ",lecture,"}},
    ]
    names = [unit.name for unit in units_from(pools, tags)]
    assert names == ["a", "a/lecture", "a/region-eu", "b", "b/lecture"]  # "x y" is refused
    assert [u.name for u in units_from([{"metric": {}}], [])] == [""]  # no pool label at all
    mixed = units_from([{"metric": {}}, {"metric": {"pool": "a"}}], [])
    assert [(u.pool, u.tag) for u in mixed] == [("", None), ("a", None)]
    assert mixed[0].pool_matcher() == 'pool=""'


def test_scope_names_are_checked() -> None:
    assert Scope.parse("campus/lecture") == Scope("campus", "lecture")
    assert Scope.parse("campus").labels() == {"pool": "campus"}
    with pytest.raises(ScopeError, match="pool"):
        Scope.parse('a"b')
    with pytest.raises(ScopeError, match="tag"):
        Scope.parse("a/")


def test_select_names_the_pools_it_plans() -> None:
    services = {}

    def build(scope: Scope):
        services[scope.name] = object()
        return services[scope.name]

    planners = PoolPlanners(build, units=[Scope("a"), Scope("a", "lecture"), Scope("b")])
    assert planners.select("a") is services["a"]
    assert planners.select("a", "lecture") is services["a/lecture"]
    with pytest.raises(UnknownPool, match=r"2 pools.*'a', 'a/lecture', 'b'"):
        planners.select()
    with pytest.raises(UnknownPool, match="unknown pool 'c'"):
        planners.select("c")
    with pytest.raises(UnknownPool, match="expected letters"):
        planners.select("a", "no/slash")
    single = PoolPlanners(build, units=[Scope("b")])
    assert single.select() is services["b"]
    assert single.select(tag=None) is services["b"]
    empty = PoolPlanners(build)
    with pytest.raises(UnknownPool, match="no pool found"):
        empty.select()


# --- one real Prometheus with two pools ----------------------------------------------------


def families(path: Path, pool: str, prefix: str) -> dict[str, list[str]]:
    """The OpenMetrics file's lines by family, relabelled into ``pool`` and ``prefix``-NN."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if line.startswith("# EOF"):
            break
        if line.startswith("# TYPE "):
            current = line
            out.setdefault(current, [])
            continue
        line = line.replace('pool="sim"', f'pool="{pool}"')
        out[current].append(line.replace('node="bbb-', f'node="{prefix}-'))
    return out


@pytest.fixture(scope="module")
def two_pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    harness.require_tool("promtool")
    harness.require_tool("prometheus")
    work = tmp_path_factory.mktemp("planner-pools")
    # The data runs 30 minutes past now, so that the instant queries of the current
    # readings (5-minute lookback) find samples while the test runs: placement has nodes.
    end = pd.Timestamp.now(tz="UTC").floor("5min") + pd.Timedelta(minutes=30)
    for name, nodes, seed in (("a", 4, 7), ("b", 2, 8)):
        for suffix in (".om", ".csv"):
            out = work / f"{name}{suffix}"
            harness.sim_history(out, end=end.isoformat(), weeks=WEEKS, nodes=nodes, seed=seed)
    merged = families(work / "a.om", "a", "bbb")
    for header, lines in families(work / "b.om", "b", "lec").items():
        merged.setdefault(header, []).extend(lines)
    # the exporter's info series for the last two hours: bbb-01 and bbb-03 carry "lecture"
    info = []
    stamps = [int(end.timestamp()) - 300 * i for i in range(24, -1, -1)]
    for node, pool, tags in [
        *((f"bbb-0{i}", "a", ",lecture," if i in (1, 3) else "") for i in range(1, 5)),
        *((f"lec-0{i}", "b", "") for i in range(1, 3)),
    ]:
        labels = f'job="confscale",node="{node}",pool="{pool}",tags="{tags}"'
        info.extend(f"confscale_node_info{{{labels}}} 1 {t}" for t in stamps)
    merged["# TYPE confscale_node_info gauge"] = info
    text = "".join(f"{h}\n" + "".join(f"{line}\n" for line in ls) for h, ls in merged.items())
    (work / "pools.om").write_text(text + "# EOF\n")
    with harness.backfilled_prometheus(work / "pools.om", work) as url:
        yield {"url": url, "end": end.timestamp(), "work": work}


def test_pools_are_discovered_and_loaded_apart(two_pools) -> None:
    client = PrometheusClient(two_pools["url"])
    units = discover_units(client)
    assert [u.name for u in units] == ["a", "a/lecture", "b"]
    assert [u.name for u in discover_units(client, tags=False)] == ["a", "b"]
    assert [u.name for u in discover_units(client, pools=["b"])] == ["b"]
    end = two_pools["end"] - 3600  # the past only
    start = end - WEEKS * 7 * 86400
    expected_nodes = {"a": [f"bbb-0{i}" for i in range(1, 5)], "b": ["lec-01", "lec-02"]}
    for name in ("a", "b"):
        frame, _ = load_prometheus_history(
            scoped_client(client, Scope(name)), start=start, end=end, node_lookback=2 * 86400
        )
        assert sorted(frame["node"].unique()) == expected_nodes[name]
        # the pool's hourly peaks (the forecast's input) are its own, not the sum of both
        pool = frame.attrs[POOL_HOURLY_ATTR]
        own = hourly_peaks(
            pool_totals(load_history(two_pools["work"] / f"{name}.csv"))["participants"]
        )
        both = pd.concat([pool.rename("prom"), own.rename("file")], axis=1).dropna().iloc[1:-1]
        assert len(both) > 24 * 5 and both["file"].max() > 0
        np.testing.assert_array_equal(both["prom"], both["file"])
    lecture, _ = load_prometheus_history(
        scoped_client(client, Scope("a", "lecture")), start=end - 86400, end=end
    )
    assert sorted(lecture["node"].unique()) == ["bbb-01", "bbb-03"]


def test_serve_plans_each_pool_on_its_own(two_pools, tmp_path: Path) -> None:
    port = harness.free_port()
    proc = harness.Proc(
        "planner",
        harness.python_module(
            "confscale.planner.cli",
            "serve",
            *("--prometheus.url", two_pools["url"], "--web.listen-address", f"127.0.0.1:{port}"),
            *("--refit.interval", "1h", "--prometheus.node-lookback", "2d"),
        ),
        cwd=harness.REPO,
    )
    base = f"http://127.0.0.1:{port}"
    with harness.running(proc, f"{base}/-/healthy", timeout=120):

        def all_ready() -> bool:
            pools = requests.get(f"{base}/api/v1/pools", timeout=10).json()["pools"]
            return len(pools) == 3 and all(p["ready"] for p in pools)

        try:
            harness.wait_until(all_ready, timeout=240, interval=1.0, what="three planned pools")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- planner log ---\n{proc.log()}") from exc
        listed = requests.get(f"{base}/api/v1/pools", timeout=10).json()["pools"]
        assert [(p["name"], p["pool"], p["tag"]) for p in listed] == [
            ("a", "a", None),
            ("a/lecture", "a", "lecture"),
            ("b", "b", None),
        ]
        nodes = {}
        for query in ("pool=a", "pool=b", "pool=a&tag=lecture"):
            body = requests.get(f"{base}/api/v1/placement?{query}", timeout=10).json()
            nodes[query] = sorted(n["node"] for n in body["nodes"])
            capacity = requests.get(f"{base}/api/v1/capacity?{query}", timeout=10)
            assert capacity.status_code == 200 and "servers_needed" in capacity.json()
        assert nodes == {
            "pool=a": ["bbb-01", "bbb-02", "bbb-03", "bbb-04"],
            "pool=b": ["lec-01", "lec-02"],
            "pool=a&tag=lecture": ["bbb-01", "bbb-03"],
        }
        unnamed = requests.get(f"{base}/api/v1/capacity", timeout=10)
        assert unnamed.status_code == 404 and "'a', 'a/lecture', 'b'" in unnamed.json()["error"]
        assert requests.get(f"{base}/api/v1/capacity?pool=c", timeout=10).status_code == 404
        assert requests.get(f"{base}/api/v1/capacity?pools=a", timeout=10).status_code == 400
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert 'confscale_pool_servers_online{pool="a"}' in metrics
        assert 'confscale_pool_servers_online{pool="b"}' in metrics
        assert 'confscale_pool_servers_online{pool="a",tag="lecture"}' in metrics
        assert 'confscale_node_placement_weight{node="lec-01",pool="b"}' in metrics
        assert 'tag="lecture",node=' not in metrics  # node series from the pools' own loops
