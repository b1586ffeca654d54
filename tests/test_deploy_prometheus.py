"""prometheus-sharded.yml against real processes: the simulated pool, one exporter shard
scraped per node through /probe, a real Prometheus with the shipped relabelling and rules."""

from __future__ import annotations

import shutil

import harness
import yaml
from test_exporter_support import exporter

REPO = harness.REPO
# Scraped series of the exporter job that lack `node`. Alert series are left out: an alert on
# absent(up{job="confscale"}) legitimately has only the job (ALERTS, ALERTS_FOR_STATE).
SCRAPED_WITHOUT_NODE = '{job="confscale", node="", __name__!~"ALERTS|ALERTS_FOR_STATE"}'
SHARD = ("bbb-01", "bbb-02", "jvb-01")


def sharded_config(exporter_address: str) -> str:
    """The shipped sharded config with a 1 s clock and only the confscale jobs."""
    config = yaml.safe_load((REPO / "prometheus" / "prometheus-sharded.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config.pop("alerting")
    config["scrape_configs"] = [
        job
        for job in config["scrape_configs"]
        if job["job_name"] in {"confscale", "confscale-exporters"}
    ]
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = "1s"
    return yaml.safe_dump(config, sort_keys=False)


def test_probe_relabelling_gives_every_series_its_node(tmp_path):
    with harness.simulator(nodes=3, jitsi=1, frozen=False, speed=60) as sim:
        config_path = sim.write_config(tmp_path / "exporter.yml")
        config = yaml.safe_load(config_path.read_text())
        config.update(interval="2s", timeout="1s")
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        with exporter(config_path, log_level="info") as shard:
            address = shard.url.removeprefix("http://")
            workdir = tmp_path / "prometheus"
            shutil.copytree(REPO / "alerts" / "rules", workdir / "rules")
            (workdir / "targets").mkdir()
            (workdir / "targets" / "shard-a.yml").write_text(
                yaml.safe_dump([{"targets": list(SHARD), "labels": {"__exporter": address}}])
            )
            with harness.prometheus(sharded_config(address), workdir) as url:

                def query(expr: str) -> list[dict]:
                    return harness.prom_query(url, expr)

                ups = harness.wait_until(
                    lambda: (r := query('up{job="confscale"} == 1')) and len(r) == len(SHARD) and r,
                    timeout=60,
                    what="every node of the shard scraped through /probe",
                )
                assert {(u["metric"]["node"], u["metric"]["instance"]) for u in ups} == {
                    (node, node) for node in SHARD
                }

                harness.wait_until(
                    lambda: query('node:confscale_pressure:ratio{node="bbb-01"}'),
                    timeout=60,
                    what="recording rules over probed series",
                )
                assert query(SCRAPED_WITHOUT_NODE) == []
                assert query('{exported_node!=""}') == []
                nodes = {r["metric"]["node"] for r in query('confscale_node_up{job="confscale"}')}
                assert nodes == set(SHARD), "the probe returned another node's series"
                pools = {r["metric"].get("pool") for r in query('bbb_meetings{job="confscale"}')}
                assert pools == {"sim"}, "the exporter's pool label was lost"

                own = harness.wait_until(
                    lambda: query(
                        'confscale_exporter_cycle_duration_seconds{job="confscale-exporters"}'
                    ),
                    timeout=60,
                    what="the exporters job's first scrape",
                )
                assert [r["metric"]["node"] for r in own] == [address], own
                assert query('bbb_meetings{job="confscale-exporters"}') == [], (
                    "per-node series scraped twice"
                )
