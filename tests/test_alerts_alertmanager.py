"""alerts/alertmanager.yml: amtool checks, every route, and the route tree and inhibitions
running in a real Alertmanager that delivers to a webhook in the test."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import harness
import pytest
import requests
import yaml

ALERTMANAGER_CONFIG = harness.REPO / "alerts" / "alertmanager.yml"
TEMPLATES = harness.REPO / "alerts" / "templates"


# --- helpers shared with test_alerts_e2e.py ------------------------------------------


class WebhookSink:
    """An Alertmanager webhook receiver on 127.0.0.1: keeps every notification it gets.

    Each Alertmanager receiver posts to ``/<receiver name>``, so a test can tell which
    route delivered what.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notifications: list[tuple[str, dict[str, Any]]] = []
        self._headers: list[tuple[str, dict[str, str]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with sink._lock:
                    sink._notifications.append((self.path.strip("/"), body))
                    sink._headers.append((self.path.strip("/"), dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def notifications(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._notifications)

    def headers(self) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return list(self._headers)

    def firing(self) -> set[tuple[str, str, str, str, str]]:
        """(receiver, alertname, node, severity, direction) of every firing alert delivered."""
        return {
            (
                receiver,
                alert["labels"].get("alertname", ""),
                alert["labels"].get("node", ""),
                alert["labels"].get("severity", ""),
                alert["labels"].get("direction", ""),
            )
            for receiver, body in self.notifications()
            for alert in body.get("alerts", [])
            if alert.get("status") == "firing"
        }


def _shorten_timers(route: dict[str, Any], seconds: str) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = seconds
    if "repeat_interval" in route:
        route["repeat_interval"] = "1h"
    for child in route.get("routes", []):
        _shorten_timers(child, seconds)


def delivery_config(webhook_url: str, *, timer: str = "1s") -> dict[str, Any]:
    """alerts/alertmanager.yml with the same route tree and inhibitions, but every receiver
    replaced by a webhook to ``webhook_url/<receiver>`` and the group timers cut to ``timer``."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    test_config = {
        "global": {"resolve_timeout": "5m"},
        "templates": [str(TEMPLATES / "*.tmpl")],
        "route": copy.deepcopy(config["route"]),
        "inhibit_rules": copy.deepcopy(config["inhibit_rules"]),
        "receivers": [
            {
                "name": receiver["name"],
                "webhook_configs": [
                    {"url": f"{webhook_url}/{receiver['name']}", "send_resolved": True}
                ],
            }
            for receiver in config["receivers"]
        ],
    }
    test_config["route"]["group_wait"] = timer
    _shorten_timers(test_config["route"], timer)
    return test_config


def post_alerts(alertmanager_url: str, alerts: list[dict[str, dict[str, str]]]) -> None:
    response = requests.post(f"{alertmanager_url}/api/v2/alerts", json=alerts, timeout=10)
    response.raise_for_status()


# --- amtool ----------------------------------------------------------------------------


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = harness.require_tool("amtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_amtool_check_config() -> None:
    result = _amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout
    assert "4 inhibit rules" in result.stdout


def test_receivers_read_secrets_from_files_only() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    text = ALERTMANAGER_CONFIG.read_text()
    assert "smtp_auth_password:" not in text
    assert "routing_key:" not in text
    assert "slack_api_url:" not in text
    secret_files = [
        config["global"]["smtp_auth_password_file"],
        config["global"]["slack_api_url_file"],
        config["receivers"][0]["pagerduty_configs"][0]["routing_key_file"],
        config["receivers"][2]["webhook_configs"][0]["http_config"]["authorization"][
            "credentials_file"
        ],
    ]
    examples = harness.REPO / "alerts" / "examples" / "secrets"
    for path in secret_files:
        assert path.startswith("/etc/alertmanager/secrets/"), path
        assert (examples / Path(path).name).is_file(), f"no example for {path} in {examples}"


ROUTES = [
    (
        "oncall",
        [
            "alertname=ConfscaleNodeDown",
            "severity=critical",
            "pool=campus",
            "node=bbb-01",
            "source=bbb",
        ],
    ),
    (
        "oncall",
        [
            "alertname=ConfscaleLinkSaturated",
            "severity=critical",
            "node=bbb-01",
            "direction=transmit",
        ],
    ),
    ("oncall", ["alertname=ConfscaleExporterDown", "severity=critical", "job=confscale"]),
    (
        "capacity-channel",
        [
            "alertname=ConfscaleLinkSaturated",
            "severity=warning",
            "node=bbb-01",
            "direction=receive",
        ],
    ),
    (
        "capacity-channel",
        [
            "alertname=ConfscalePoolUnderProvisioned",
            "severity=warning",
            "pool=campus",
            "horizon=next_peak",
        ],
    ),
    ("deadmans-switch", ["alertname=Watchdog", "severity=none"]),
    # No severity at all: the root route's receiver.
    ("capacity-channel", ["alertname=SomethingElse"]),
]


@pytest.mark.parametrize("receiver,labels", ROUTES, ids=lambda v: v if isinstance(v, str) else v[0])
def test_route(receiver: str, labels: list[str]) -> None:
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )
    assert result.returncode == 0, f"{labels} → {result.stdout.strip()}, expected {receiver}"


def test_route_verification_can_fail() -> None:
    result = _amtool(
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "--verify.receivers=oncall",
        "alertname=ConfscaleCPUSaturated",
        "severity=warning",
        "node=bbb-01",
    )
    assert result.returncode != 0
    assert "capacity-channel" in result.stdout


# --- a real Alertmanager --------------------------------------------------------------


def _alert(alertname: str, severity: str, **labels: str) -> dict[str, dict[str, str]]:
    return {
        "labels": {"alertname": alertname, "severity": severity, "pool": "campus", **labels},
        "annotations": {"summary": f"{alertname} test alert"},
    }


@contextlib.contextmanager
def _alertmanager_with_sink(tmp_path: Path) -> Iterator[tuple[str, WebhookSink]]:
    with WebhookSink() as sink:
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(delivery_config(sink.url), sort_keys=False))
        with harness.alertmanager(config_file, tmp_path) as url:
            yield url, sink


def test_real_alertmanager_routes_and_inhibits(tmp_path: Path) -> None:
    alerts = [
        # bbb-02 is down: its link and CPU alerts must not reach anyone.
        _alert("ConfscaleNodeDown", "critical", node="bbb-02", source="bbb"),
        _alert("ConfscaleLinkSaturated", "critical", node="bbb-02", direction="transmit"),
        _alert("ConfscaleCPUSaturated", "warning", node="bbb-02"),
        # bbb-01: the critical mutes the matching warning and the "imminent" warning of
        # the same direction, not the warning of the other direction.
        _alert("ConfscaleLinkSaturated", "critical", node="bbb-01", direction="transmit"),
        _alert("ConfscaleLinkSaturated", "warning", node="bbb-01", direction="transmit"),
        _alert("ConfscaleLinkSaturationImminent", "warning", node="bbb-01", direction="transmit"),
        _alert("ConfscaleLinkSaturated", "warning", node="bbb-01", direction="receive"),
        # bbb-03 is up: its CPU warning goes to the capacity channel.
        _alert("ConfscaleCPUSaturated", "warning", node="bbb-03"),
        {"labels": {"alertname": "Watchdog", "severity": "none"}, "annotations": {}},
    ]
    expected = {
        ("oncall", "ConfscaleNodeDown", "bbb-02", "critical", ""),
        ("oncall", "ConfscaleLinkSaturated", "bbb-01", "critical", "transmit"),
        ("capacity-channel", "ConfscaleLinkSaturated", "bbb-01", "warning", "receive"),
        ("capacity-channel", "ConfscaleCPUSaturated", "bbb-03", "warning", ""),
        ("deadmans-switch", "Watchdog", "", "none", ""),
    }
    with _alertmanager_with_sink(tmp_path) as (url, sink):
        # Inhibition sources first: a target posted in the very same instant races
        # Alertmanager's inhibitor cache, which would make this test flaky.
        sources = [a for a in alerts if a["labels"]["severity"] == "critical"]
        post_alerts(url, sources)
        harness.wait_until(
            lambda: len(requests.get(f"{url}/api/v2/alerts", timeout=10).json()) == len(sources),
            timeout=10,
            what="the critical alerts in Alertmanager",
        )
        post_alerts(url, [a for a in alerts if a not in sources])
        harness.wait_until(
            lambda: expected <= sink.firing(), timeout=30, what=f"notifications {expected}"
        )

        # Alertmanager's own view: exactly the four muted alerts are suppressed, each by
        # an inhibition.
        def suppressed() -> set[tuple[str, str, str, str]]:
            body = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
            return {
                (
                    a["labels"]["alertname"],
                    a["labels"].get("node", ""),
                    a["labels"]["severity"],
                    a["labels"].get("direction", ""),
                )
                for a in body
                if a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
            }

        muted = {
            ("ConfscaleLinkSaturated", "bbb-02", "critical", "transmit"),
            ("ConfscaleCPUSaturated", "bbb-02", "warning", ""),
            ("ConfscaleLinkSaturated", "bbb-01", "warning", "transmit"),
            ("ConfscaleLinkSaturationImminent", "bbb-01", "warning", "transmit"),
        }
        assert harness.wait_until(
            lambda: suppressed() == muted, timeout=10, what="inhibited alerts"
        )
        # Give the (1 s) group timers a few rounds: nothing muted is ever delivered.
        time.sleep(3)
        assert sink.firing() == expected

    # One notification per node incident: bbb-01's critical alerts in one message.
    oncall = [body for receiver, body in sink.notifications() if receiver == "oncall"]
    assert {body["groupLabels"].get("node") for body in oncall} == {"bbb-01", "bbb-02"}

    # The notification templates render what Alertmanager really sends (the webhook body
    # has the layout of Alertmanager's template data).
    bbb01 = next(body for body in oncall if body["groupLabels"].get("node") == "bbb-01")
    data = tmp_path / "notification.json"
    data.write_text(json.dumps(bbb01))
    title = _render(data, "confscale.title")
    assert title == "[FIRING:1] bbb-01: ConfscaleLinkSaturated"
    text = _render(data, "confscale.text")
    assert "FIRING [critical] ConfscaleLinkSaturated test alert" in text
    assert "Runbook:" in text


def test_real_alertmanager_quiets_a_node_in_maintenance(tmp_path: Path) -> None:
    """The planner's maintenance alert mutes every other alert of that node, not others'."""
    source = _alert("ConfscaleNodeInMaintenance", "none", node="bbb-02")
    targets = [
        _alert("ConfscaleNodeDown", "critical", node="bbb-02", source="bbb"),
        _alert("ConfscaleCPUSaturated", "warning", node="bbb-02"),
        _alert("ConfscaleCPUSaturated", "warning", node="bbb-03"),  # not in maintenance
        _alert("ConfscaleNodeDown", "critical", node="bbb-02", source="bbb", pool="other"),
    ]
    with _alertmanager_with_sink(tmp_path) as (url, sink):
        post_alerts(url, [source])
        harness.wait_until(
            lambda: len(requests.get(f"{url}/api/v2/alerts", timeout=10).json()) == 1,
            timeout=10,
            what="the maintenance alert in Alertmanager",
        )
        post_alerts(url, targets)

        def states() -> dict[tuple[str, str, str], str]:
            body = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
            return {
                (a["labels"]["alertname"], a["labels"]["node"], a["labels"]["pool"]): a["status"][
                    "state"
                ]
                for a in body
            }

        expected = {
            ("ConfscaleNodeInMaintenance", "bbb-02", "campus"): "active",
            ("ConfscaleNodeDown", "bbb-02", "campus"): "suppressed",
            ("ConfscaleCPUSaturated", "bbb-02", "campus"): "suppressed",
            ("ConfscaleCPUSaturated", "bbb-03", "campus"): "active",
            ("ConfscaleNodeDown", "bbb-02", "other"): "active",
        }
        assert harness.wait_until(lambda: states() == expected, timeout=15, what=str(expected))
        delivered = {("ConfscaleCPUSaturated", "bbb-03"), ("ConfscaleNodeDown", "bbb-02")}
        harness.wait_until(
            lambda: delivered <= {(f[1], f[2]) for f in sink.firing()},
            timeout=30,
            what="the alerts that are not muted",
        )
        time.sleep(3)  # a few group rounds: nothing muted is delivered
        oncall = [b for r, b in sink.notifications() if r == "oncall"]
        assert {b["groupLabels"].get("pool") for b in oncall} == {"other"}


def _render(data: Path, template: str) -> str:
    result = _amtool(
        "template",
        "render",
        f"--template.glob={TEMPLATES}/*.tmpl",
        f"--template.data={data}",
        f'--template.text={{{{ template "{template}" . }}}}',
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_config_names_only_alerts_that_exist() -> None:
    """Routes and inhibitions name alerts of alerts/rules: a renamed alert breaks this."""
    rules_dir = harness.REPO / "alerts" / "rules"
    names = {
        rule["alert"]
        for path in rules_dir.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    text = ALERTMANAGER_CONFIG.read_text()
    mentioned = set()
    for matcher in re.findall(r'alertname=~?"([^"]+)"', text):
        mentioned.update(matcher.split("|"))
    assert mentioned, "no alertname matchers found"
    assert mentioned <= names, f"not an alert of {rules_dir}: {sorted(mentioned - names)}"


def test_shipped_receivers_deliver_with_secrets_from_files(tmp_path: Path) -> None:
    """alerts/alertmanager.yml as shipped, with only its endpoints moved to 127.0.0.1 and
    its secret files written here: chat, PagerDuty and the heartbeat webhook deliver the
    rendered templates with the secrets read from the files, and no secret shows in
    Alertmanager's status page or log."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    routing_key = "R0uting-Key-4f1c9e2b7a"
    token = "Heartbeat-Token-93be17"
    smtp_password = "Smtp-Pass-5d2a"
    with WebhookSink() as sink:
        (secrets / "chat-webhook-url").write_text(f"{sink.url}/chat\n")
        (secrets / "pagerduty-routing-key").write_text(routing_key + "\n")
        (secrets / "heartbeat-token").write_text(token + "\n")
        (secrets / "smtp-password").write_text(smtp_password + "\n")
        text = ALERTMANAGER_CONFIG.read_text().replace("/etc/alertmanager/secrets", str(secrets))
        config = yaml.safe_load(text)
        config["templates"] = [str(TEMPLATES / "*.tmpl")]
        # Nothing listens there: mail fails fast on 127.0.0.1 instead of leaving the host.
        config["global"]["smtp_smarthost"] = f"127.0.0.1:{harness.free_port()}"
        config["global"]["pagerduty_url"] = f"{sink.url}/pagerduty"
        heartbeat = config["receivers"][2]["webhook_configs"][0]
        heartbeat["url"] = f"{sink.url}/heartbeat"
        config["route"]["group_wait"] = "1s"
        _shorten_timers(config["route"], "1s")
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        with harness.alertmanager(config_file, tmp_path) as url:
            post_alerts(
                url,
                [
                    _alert("ConfscaleCPUSaturated", "warning", node="bbb-03"),
                    _alert("ConfscaleNodeDown", "critical", node="bbb-02", source="bbb"),
                    {"labels": {"alertname": "Watchdog", "severity": "none"}, "annotations": {}},
                ],
            )
            harness.wait_until(
                lambda: (
                    {"chat", "pagerduty", "heartbeat"} <= {path for path, _ in sink.notifications()}
                ),
                timeout=30,
                what="chat, PagerDuty and heartbeat deliveries",
            )
            status = requests.get(f"{url}/api/v2/status", timeout=10).text
            proc_logs = list((harness.ARTIFACTS / "logs").glob("alertmanager-*.log"))
        bodies = {path: body for path, body in sink.notifications()}
        headers = {path: h for path, h in sink.headers()}

    chat = bodies["chat"]
    assert chat["channel"] == "#bbb-capacity"
    attachment = chat["attachments"][0]
    assert attachment["title"] == "[FIRING:1] bbb-03: ConfscaleCPUSaturated"
    assert "FIRING [warning] ConfscaleCPUSaturated test alert" in attachment["text"]
    pager = bodies["pagerduty"]
    assert pager["routing_key"] == routing_key
    assert pager["payload"]["summary"] == "[FIRING:1] bbb-02: ConfscaleNodeDown"
    assert headers["heartbeat"].get("Authorization") == f"Bearer {token}"
    assert bodies["heartbeat"]["alerts"][0]["labels"]["alertname"] == "Watchdog"
    log = "".join(p.read_text(errors="replace") for p in proc_logs)
    for secret in (routing_key, token, smtp_password, sink.url + "/chat"):
        assert secret not in status
        assert secret not in log
