"""Snapshot → families → text: the contract's shape, staleness, the fast text writer."""

from __future__ import annotations

from confscale.exporter.bbb import BbbFigures
from confscale.exporter.bbb_version import BbbVersion
from confscale.exporter.collector import SnapshotCollector, snapshot_families
from confscale.exporter.config import (
    BbbSource,
    HostSource,
    JitsiSource,
    NodeConfig,
    PoolConfig,
    Secret,
)
from confscale.exporter.exposition import render
from confscale.exporter.host import HostFigures
from confscale.exporter.jitsi import JitsiFigures
from confscale.exporter.poller import PollState, Snapshot, SourceResult
from confscale.exporter.recordings import RecordingsFigures
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from test_exporter_support import Samples, parse_text, series, value

NOW = 1_790_000_000.0
BBB = BbbSource(url="http://x/", secret=Secret("not-shown"))
HOST = HostSource(node_exporter="http://x/metrics")


def make_snapshot(pool: str | None = "campus", finished_at: float = NOW) -> Snapshot:
    nodes = (
        NodeConfig(name="bbb-01", settings={"bbb": BBB, "host": HOST}),
        NodeConfig(
            name="bbb-02",
            settings={"bbb": BBB, "host": HOST},
            link_capacity_bytes_per_second=1e9,
        ),
        NodeConfig(name="jvb-01", settings={"jitsi": JitsiSource(url="http://x/colibri/stats")}),
    )
    config = PoolConfig(nodes=nodes, pool=pool, interval=15, timeout=5)
    bbb = BbbFigures(
        meetings=3,
        breakout_rooms=1,
        participants=41,
        moderators=4,
        listeners=20,
        voice_participants=18,
        video_participants=6,
        participants_max=30,
        video_fanout=120,
        clients=(("DIAL-IN", 1), ("HTML5", 39), ('we"ird\\cl\nient', 1)),
        sizes=(1, 1, 0, 1, 0, 0, 0),
        origins=(("a.example", 30), ("none", 11)),
        meeting_ids=frozenset({1, 2}),
    )
    host = HostFigures(
        cpu_seconds=(("idle", 100.5), ("user", 20.25)),
        cpu_count=8,
        transmit_bytes=1e12,
        receive_bytes=2.5e9,
    )
    jitsi = JitsiFigures(values=(("conferences", 2), ("stress_level", 0.12)))
    results = (
        SourceResult("bbb-01", "bbb", 0.05, finished_at, bbb),
        SourceResult("bbb-01", "host", 0.01, finished_at, host),
        SourceResult("bbb-01", "bbb_version", 0.01, finished_at, BbbVersion("3.0.4", "2.0")),
        SourceResult(
            "bbb-01",
            "bbb_recordings",
            0.2,
            finished_at,
            RecordingsFigures(
                states=(("processing", 2), ("processed", 0), ("published", 7)),
                oldest_processing=finished_at - 7200,
            ),
        ),
        SourceResult("bbb-02", "bbb", 5.0, finished_at, None, "timeout"),
        SourceResult("bbb-02", "host", 0.01, finished_at, host),
        SourceResult("jvb-01", "jitsi", 0.02, finished_at, jitsi),
    )
    state = PollState()
    state.record(results)
    state.last_success[("bbb-02", "bbb")] = finished_at - 60
    return Snapshot(
        config=config,
        results=results,
        started_at=finished_at - 5,
        finished_at=finished_at,
        duration=5.0,
        errors=dict(state.errors),
        last_success=dict(state.last_success),
        started=dict(state.started),
    )


def collect(snapshot: Snapshot, now: float = NOW) -> Samples:
    collector = SnapshotCollector(lambda: snapshot, clock=lambda: now)
    return parse_text(render(collector.collect()).decode())


def test_families_follow_the_contract() -> None:
    samples = collect(make_snapshot())
    one = {"node": "bbb-01", "pool": "campus"}
    assert value(samples, "bbb_meetings", **one) == 3
    assert value(samples, "bbb_breakout_rooms", **one) == 1
    assert value(samples, "bbb_meetings_participants", **one) == 41
    assert value(samples, "bbb_meetings_participants_max", **one) == 30
    assert value(samples, "bbb_meetings_video_fanout", **one) == 120
    assert value(samples, "bbb_meetings_participant_clients", **one, type="HTML5") == 39
    assert value(samples, "bbb_meetings_participant_clients", **one, type='we"ird\\cl\nient') == 1
    assert value(samples, "confscale_node_cpu_seconds_total", **one, mode="user") == 20.25
    assert value(samples, "confscale_node_cpu_count", **one) == 8
    assert value(samples, "confscale_node_network_transmit_bytes_total", **one) == 1e12
    assert value(samples, "confscale_node_network_receive_bytes_total", **one) == 2.5e9
    assert value(samples, "confscale_node_link_capacity_bytes_per_second", **one) == 62.5e6
    assert value(samples, "jitsi_stress_level", node="jvb-01", pool="campus") == 0.12
    assert value(samples, "jitsi_participants", node="jvb-01", pool="campus") is None
    assert value(samples, "confscale_node_up", **one, source="bbb") == 1
    # the failed source: up 0, its error counted, its figures absent (not zero)
    two = {"node": "bbb-02", "pool": "campus"}
    assert value(samples, "confscale_node_up", **two, source="bbb") == 0
    assert value(samples, "confscale_node_up", **two, source="host") == 1
    assert (
        value(samples, "confscale_node_poll_errors_total", **two, source="bbb", reason="timeout")
        == 1
    )
    assert value(samples, "bbb_meetings", **two) is None
    assert (
        value(samples, "confscale_node_last_success_timestamp_seconds", **two, source="bbb")
        == NOW - 60
    )
    assert value(samples, "confscale_node_link_capacity_bytes_per_second", **two) == 1e9
    assert value(samples, "confscale_exporter_nodes", state="polled") == 3
    assert value(samples, "confscale_exporter_nodes", state="up") == 2
    assert value(samples, "confscale_exporter_cycle_duration_seconds") == 5.0
    assert series(samples, "confscale_exporter_build_info")


def test_meeting_sizes_origins_and_started_counters() -> None:
    samples = collect(make_snapshot())
    one = {"node": "bbb-01", "pool": "campus"}
    buckets = {
        dict(k)["le"]: v for k, v in series(samples, "bbb_meetings_size_bucket", **one).items()
    }
    assert buckets == {"0": 1, "5": 2, "25": 2, "50": 3, "100": 3, "200": 3, "+Inf": 3}
    origins = series(samples, "bbb_meetings_participants_origin", **one)
    assert {dict(k)["server"]: v for k, v in origins.items()} == {"a.example": 30, "none": 11}
    # the first good poll of a node starts its counters at 0 (those meetings were running)
    assert value(samples, "bbb_meetings_started_total", **one) == 0
    assert value(samples, "bbb_breakout_rooms_started_total", **one) == 0
    two = {"node": "bbb-02", "pool": "campus"}  # its poll failed: absent, not zero
    assert value(samples, "bbb_meetings_size_bucket", **two, le="+Inf") is None
    assert value(samples, "bbb_meetings_started_total", **two) is None


def test_top_origins_fold_the_rest_into_other() -> None:
    from confscale.exporter.bbb import top_origins

    origins = (("a", 5), ("b", 9), ("c", 5), ("other", 2), ("none", 1))
    assert top_origins(origins, 2) == (("b", 9), ("a", 5), ("other", 8))
    assert top_origins(origins, 10) == (("b", 9), ("a", 5), ("c", 5), ("none", 1), ("other", 2))
    assert top_origins(origins, 0) == (("other", 22),)
    assert top_origins((), 3) == ()


def test_meetings_seen_starting_count_new_internal_ids_only() -> None:
    def result(ids: set[int], breakouts: frozenset[int] = frozenset(), ok: bool = True):
        figures = BbbFigures(meeting_ids=frozenset(ids), breakout_ids=frozenset(breakouts))
        return SourceResult(
            "bbb-01", "bbb", 0.1, NOW, figures if ok else None, None if ok else "timeout"
        )

    state = PollState()
    state.record((result({1, 2}),))
    assert state.started["bbb-01"] == (0, 0)
    state.record((result({2, 3, 4}, frozenset({9})),))  # 3 and 4 started, 1 ended; room 9
    assert state.started["bbb-01"] == (2, 1)
    state.record((result(set(), ok=False),))  # a failed poll forgets nothing
    state.record((result({2, 3, 4, 5}, frozenset({9})),))
    assert state.started["bbb-01"] == (3, 1)


def test_every_per_node_family_is_in_the_contract_table() -> None:
    """The exporter emits exactly the contract's per-node families (exporter/contract.py)."""
    from confscale.exporter.contract import NODE_FAMILIES

    samples = collect(make_snapshot())
    emitted = {name for name, labels in samples if "node" in dict(labels)}
    contract = {family.sample for family in NODE_FAMILIES}
    assert emitted <= contract, emitted - contract
    # the fixture's bridge sends only some colibri fields and its hosts no memory or
    # filesystem figures; the rest of the contract is all there
    optional = (
        "jitsi_",
        "confscale_node_memory_",
        "confscale_node_filesystem_",
        "confscale_proxy_",
        "bbb_recordings_unprocessed",
    )
    assert {n for n in contract - emitted if not n.startswith(optional)} == set()


def test_stale_snapshot_is_not_served_as_current() -> None:
    snapshot = make_snapshot()
    fresh = collect(snapshot, now=NOW + 2 * 15)
    stale = collect(snapshot, now=NOW + 2 * 15 + 1)
    assert value(fresh, "bbb_meetings", node="bbb-01", pool="campus") == 3
    assert set(series(stale, "confscale_node_up").values()) == {0}
    for name in ("bbb_meetings", "confscale_node_cpu_seconds_total", "jitsi_conferences"):
        assert not series(stale, name), name
    # staleness stays visible: last success times and error counters are still there
    assert (
        value(
            stale,
            "confscale_node_last_success_timestamp_seconds",
            node="bbb-01",
            pool="campus",
            source="bbb",
        )
        == NOW
    )
    assert (
        value(
            stale,
            "confscale_node_poll_errors_total",
            node="bbb-02",
            pool="campus",
            source="bbb",
            reason="timeout",
        )
        == 1
    )
    assert value(stale, "confscale_exporter_last_cycle_timestamp_seconds") == NOW


def test_no_pool_label_without_a_pool() -> None:
    samples = collect(make_snapshot(pool=None))
    assert value(samples, "bbb_meetings", node="bbb-01") == 3
    assert all("pool" not in dict(labels) for _, labels in samples)


def test_render_matches_generate_latest() -> None:
    snapshot = make_snapshot(pool='odd "pool"\\')
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snapshot, clock=lambda: NOW))
    extra = GaugeMetricFamily("plain_gauge", "help with \\ and\nnewline")
    extra.add_metric([], float("inf"))
    counter = CounterMetricFamily("plain", "a counter", labels=["a"])
    counter.add_metric(["x"], 3)
    families = [*registry.collect(), extra, counter]
    ours = parse_text(render(families).decode())

    class Fixed:
        def collect(self):  # the same families through prometheus_client's writer
            return families

    reference_registry = CollectorRegistry(auto_describe=False)
    reference_registry.register(Fixed())
    reference = parse_text(generate_latest(reference_registry).decode())
    assert ours == reference
    assert len(ours) > 40


def test_poll_state_keeps_counting_and_forgets_removed_nodes() -> None:
    snapshot = make_snapshot()
    state = PollState()
    state.record(snapshot.results)
    state.record(snapshot.results)
    assert state.errors == {("bbb-02", "bbb", "timeout"): 2}
    smaller = PoolConfig(nodes=snapshot.config.nodes[:1], interval=15, timeout=5)
    state.prune(smaller)
    assert state.errors == {}
    assert set(state.last_success) == {("bbb-01", "bbb"), ("bbb-01", "host")}


def test_families_without_self_metrics_for_probe() -> None:
    snapshot = make_snapshot()
    collector = SnapshotCollector(lambda: snapshot, self_metrics=False, clock=lambda: NOW)
    names = {family.name for family in collector.collect()}
    assert "confscale_exporter_build_info" not in names
    assert names == {family.name for family in snapshot_families(snapshot)}


def test_page_is_rendered_once_per_snapshot_and_again_when_stale() -> None:
    from confscale.exporter.page import MetricsPage

    now = [NOW]
    current: list[Snapshot | None] = [None]
    page = MetricsPage(lambda: current[0], clock=lambda: now[0])
    assert b"confscale_exporter_build_info" in page.body()
    first = make_snapshot()
    current[0] = first
    body = page.refresh(first)
    assert page.refresh(first) is body  # cached: a scrape copies bytes
    assert page.body().startswith(body)
    assert value(parse_text(page.body().decode()), "process_resident_memory_bytes")
    now[0] = NOW + 31
    stale = page.body()
    assert stale is not body and b"bbb_meetings{" not in stale
    assert (
        value(
            parse_text(stale.decode()),
            "confscale_node_up",
            node="bbb-01",
            pool="campus",
            source="bbb",
        )
        == 0
    )
    current[0] = make_snapshot(finished_at=NOW + 30)
    assert b"bbb_meetings{" in page.body()


def test_node_pool_and_tags_label_the_node_and_its_info_series() -> None:
    snapshot = make_snapshot()
    nodes = list(snapshot.config.nodes)
    nodes[1] = NodeConfig(
        name="bbb-02",
        settings={"bbb": BBB, "host": HOST},
        pool="medicine",
        tags=("lecture", "region-eu"),
    )
    snapshot = Snapshot(
        config=PoolConfig(nodes=tuple(nodes), pool="campus", interval=15, timeout=5),
        results=snapshot.results,
        started_at=snapshot.started_at,
        finished_at=snapshot.finished_at,
        duration=snapshot.duration,
        errors=snapshot.errors,
        last_success=snapshot.last_success,
    )
    samples = collect(snapshot)
    info = series(samples, "confscale_node_info")
    assert {
        dict(labels)["node"]: (dict(labels)["pool"], dict(labels)["tags"]) for labels in info
    } == {
        "bbb-01": ("campus", ""),
        "bbb-02": ("medicine", ",lecture,region-eu,"),
        "jvb-01": ("campus", ""),
    }
    assert set(info.values()) == {1.0}
    assert value(samples, "confscale_node_up", node="bbb-02", pool="medicine", source="host") == 1
    assert value(samples, "confscale_node_up", node="bbb-01", pool="campus", source="host") == 1
    # tags stay off the data series: one info series per node carries them
    assert all(
        "tags" not in dict(labels) for name, labels in samples if name != "confscale_node_info"
    )


def test_page_joins_the_texts_polls_left_and_equals_the_families_render() -> None:
    """The /metrics body joins each result's text (written when its poll completed) into
    the families; it must be the text of the families rendered whole, byte for byte,
    whether a result carries its text, carries one written with other labels (a pool
    renamed by a reload) or carries none (a probe, a held result)."""
    import dataclasses

    from confscale.exporter.collector import snapshot_text
    from confscale.exporter.exposition import Labels
    from confscale.exporter.page import MetricsPage
    from confscale.exporter.poller import source_text

    plain = make_snapshot()
    own = Labels({"node": "bbb-01", "pool": "campus"})
    other = Labels({"node": "bbb-02", "pool": "old-name"})
    results = tuple(
        dataclasses.replace(r, text=source_text(r.source, r.figures, own))
        if r.node == "bbb-01" and r.figures is not None
        else dataclasses.replace(r, text=source_text(r.source, r.figures, other))
        if r.node == "bbb-02" and r.figures is not None
        else r
        for r in plain.results
    )
    texts = dataclasses.replace(plain, results=results)
    for stale in (False, True):
        expected = render(snapshot_families(plain, stale=stale)).decode()
        assert snapshot_text(plain, stale=stale) == expected
        assert snapshot_text(texts, stale=stale) == expected
    page = MetricsPage(lambda: texts, clock=lambda: NOW)
    collector = SnapshotCollector(lambda: plain, clock=lambda: NOW)
    assert page.refresh(texts) == render(collector.collect())


def test_family_samples_are_made_from_its_pairs() -> None:
    """Family keeps pairs; prometheus_client's Samples, add_sample included, see them."""
    from confscale.exporter.exposition import Labels, gauge

    family = gauge("g", "A gauge.", ["node", "mode"])
    node = Labels({"node": "n"})
    family.add(node, 1)
    family.add_with(node, "mode", 'i"dle', 2.5)
    family.add_sample("g", {"node": "m"}, 3)
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"node": "n"}, 1),
        ({"node": "n", "mode": 'i"dle'}, 2.5),
        ({"node": "m"}, 3),
    ]
    registry = CollectorRegistry(auto_describe=False)

    class One:
        def collect(self):
            return [family]

    registry.register(One())  # type: ignore[arg-type]
    assert parse_text(render([family]).decode()) == parse_text(generate_latest(registry).decode())
