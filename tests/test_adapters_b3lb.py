"""The b3lb load value through b3lb's own fetch and formula (tests/fake_b3lb.py).

What the value really does: at the defaults 10000 adds int(5 × 5000 / 6) = 4166 load
points, so an out node is ranked last only while every other node's load is lower.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from adapter_support import placement_for
from confscale.planner.adapters.b3lb import FULL, B3lbAdapter
from confscale.planner.api import create_app
from confscale.planner.service import PlannerService
from fake_b3lb import B3lbNode, lowest_workload
from werkzeug.serving import make_server


@pytest.fixture
def planner_url() -> Iterator[tuple[str, B3lbAdapter]]:
    adapter = B3lbAdapter(dry_run=False)
    service = PlannerService(lambda: None)  # routes only read the adapter here
    server = make_server("127.0.0.1", 0, create_app(service, adapter), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", adapter
    finally:
        server.shutdown()


def test_b3lb_reads_the_served_value_and_its_formula_ranks_it(planner_url) -> None:
    base, adapter = planner_url
    adapter.apply(placement_for({"bbb-01": 0.95, "bbb-02": 0.25, "bbb-03": None}, down=("bbb-03",)))
    nodes = [B3lbNode(n, f"{base}/{n}/b3lb/load") for n in ("bbb-01", "bbb-02", "bbb-03")]
    for node in nodes:
        node.fetch_load()
    assert [n.cpu_load for n in nodes] == [FULL, 2500, FULL]
    assert nodes[0].load() == 4166  # (1+1+1+1+1) × 5000 / 6, truncated
    assert nodes[1].load() == int(sum(0.25**i for i in range(1, 6)) * 5000 / 6)  # 277
    assert lowest_workload(nodes) == ["bbb-02"]
    # ... but only while the others carry less: 4,200 attendees outweigh an out node
    nodes[1].attendees = 4200
    nodes[2].attendees = 4200
    assert lowest_workload(nodes) == ["bbb-01"]
    # b3lb's maintenance flag is what really keeps a node out
    nodes[0].maintenance = True
    assert "bbb-01" not in lowest_workload(nodes)
    unknown = requests.get(f"{base}/bbb-99/b3lb/load", timeout=5)
    assert unknown.status_code == 404
    assert adapter.health.view().requests == {"ok": 3, "not_found": 1}


def test_dry_run_404_keeps_b3lb_on_its_last_value(planner_url) -> None:
    base, adapter = planner_url
    adapter.apply(placement_for({"bbb-01": 0.3}))
    node = B3lbNode("bbb-01", f"{base}/bbb-01/b3lb/load")
    node.fetch_load()
    assert node.cpu_load == 3000
    adapter.dry_run = True
    adapter.apply(placement_for({"bbb-01": 0.95}))
    node.fetch_load()
    assert node.cpu_load == 3000  # b3lb keeps the last value it read


def test_b3lb_that_never_fetches_is_reported_failing() -> None:
    now = [1000.0]
    adapter = B3lbAdapter(dry_run=False, clock=lambda: now[0])
    adapter.health.clock = lambda: now[0]
    adapter.apply(placement_for({"bbb-01": 0.3}))
    assert adapter.health.view().state == "working"
    now[0] += 400
    adapter.apply(placement_for({"bbb-01": 0.3}))
    view = adapter.health.view()
    assert view.state == "failing" and "fetched no load value (never)" in (view.reason or "")
    adapter.body("bbb-01")
    adapter.apply(placement_for({"bbb-01": 0.3}))
    assert adapter.health.view().state == "working"
