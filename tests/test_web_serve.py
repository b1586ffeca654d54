"""``confscale-planner serve`` with the page behind basic auth, as a real process."""

from __future__ import annotations

import requests
from confscale.planner.synthetic import synthetic_history
from harness import REPO, Proc, free_port, python_module, running


def test_basic_auth_guards_page_and_api_but_not_health(tmp_path):
    history = tmp_path / "history.csv"
    synthetic_history(nodes=2, weeks=1, start="2026-09-21").to_csv(history, index=False)
    port = free_port()
    password = "pw-" + "x7Qe9"
    args = python_module(
        "confscale.planner.cli",
        "serve",
        f"--history.file={history}",
        f"--web.listen-address=127.0.0.1:{port}",
    )
    env = {"CONFSCALE_WEB_USER": "ops", "CONFSCALE_WEB_PASSWORD": password}
    url = f"http://127.0.0.1:{port}"
    proc = Proc("planner-auth", args, cwd=REPO, env=env)
    with running(proc, f"{url}/-/healthy", timeout=60):
        for path in ("/", "/nodes", "/api/v1/capacity", "/metrics", "/_dash-layout"):
            plain = requests.get(url + path, timeout=10)
            assert plain.status_code == 401, path
            assert plain.headers["WWW-Authenticate"].startswith("Basic")
            assert password not in plain.text
            wrong = requests.get(url + path, auth=("ops", "nope"), timeout=10)
            assert wrong.status_code == 401, path
        page = requests.get(url + "/", auth=("ops", password), timeout=10)
        assert page.status_code == 200 and "_dash-config" in page.text
        assert requests.get(url + "/-/healthy", timeout=10).status_code == 200
        log = proc.log()
    assert password not in log


def test_bad_page_settings_stop_serve_with_a_message(tmp_path):
    history = tmp_path / "history.csv"
    synthetic_history(nodes=2, weeks=1, start="2026-09-21").to_csv(history, index=False)
    missing = tmp_path / "no-such-credentials"
    cases = (
        ({"CONFSCALE_WEB_LEAD_TIME_DAYS": "soon"}, "CONFSCALE_WEB_LEAD_TIME_DAYS"),
        ({"CONFSCALE_WEB_AUTH_FILE": str(missing)}, str(missing)),
        ({"CONFSCALE_WEB_USER": "ops"}, "CONFSCALE_WEB_PASSWORD"),
    )
    for env, named in cases:
        args = python_module(
            "confscale.planner.cli",
            "serve",
            f"--history.file={history}",
            f"--web.listen-address=127.0.0.1:{free_port()}",
        )
        proc = Proc("planner-bad-env", args, cwd=REPO, env=env)
        try:
            code = proc.popen.wait(60)
            log = proc.log()
        finally:
            proc.stop()
        assert code == 2, log
        assert named in log and "Traceback" not in log
