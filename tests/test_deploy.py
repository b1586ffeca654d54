"""Deployment files: prometheus.yml (promtool), docker-compose.yml (docker-compose config),
the Dockerfile (what can be checked without a Docker engine) and the Alertmanager example."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import harness
import pytest
import yaml

REPO = harness.REPO
PROMETHEUS_CONFIGS = ("prometheus.yml", "prometheus-sharded.yml")
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)


def prometheus_dir(tmp_path: Path) -> Path:
    """The layout docker-compose.yml mounts at /etc/prometheus/, in a temp dir."""
    etc = tmp_path / "etc-prometheus"
    etc.mkdir()
    for name in PROMETHEUS_CONFIGS:
        shutil.copy(REPO / "prometheus" / name, etc / name)
    shutil.copytree(REPO / "alerts" / "rules", etc / "rules")
    (etc / "targets").mkdir()
    shutil.copy(
        REPO / "prometheus" / "targets" / "shards.yml.example", etc / "targets" / "shards.yml"
    )
    return etc


@pytest.mark.parametrize("name", PROMETHEUS_CONFIGS)
def test_promtool_check_config(tmp_path, name):
    promtool = harness.require_tool("promtool")
    etc = prometheus_dir(tmp_path)
    rule_files = sorted((REPO / "alerts" / "rules").glob("*.yml"))
    assert rule_files, "alerts/rules/*.yml missing: prometheus.yml loads them"
    result = subprocess.run(
        [promtool, "check", "config", name], cwd=etc, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(rule_files)} rule files found" in output
    for rule_file in rule_files:
        assert f"Checking rules/{rule_file.name}" in output


def test_prometheus_points_at_alertmanager_and_scrapes_exporter_and_planner():
    for name in PROMETHEUS_CONFIGS:
        config = yaml.safe_load((REPO / "prometheus" / name).read_text())
        targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert targets == ["alertmanager:9093"]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert {"confscale", "confscale-planner"} <= set(jobs)
        assert jobs["confscale"]["honor_labels"] is True  # the exporter's `node` wins
        assert config["rule_files"] == ["rules/*.yml"]
    sharded = yaml.safe_load((REPO / "prometheus" / "prometheus-sharded.yml").read_text())
    probe = next(j for j in sharded["scrape_configs"] if j["job_name"] == "confscale")
    assert probe["metrics_path"] == "/probe" and probe["honor_labels"] is True


def compose_config(*args: str) -> dict[str, Any]:
    binary = harness.require_tool("docker-compose")
    result = subprocess.run(
        [binary, "-f", "docker-compose.yml", *args, "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_config():
    config = compose_config()
    services = config["services"]
    assert set(services) == {
        "prometheus",
        "alertmanager",
        "grafana",
        "exporter",
        "planner",
        "simulator",
    }
    assert services["simulator"]["profiles"] == ["demo"]
    assert all("profiles" not in s for name, s in services.items() if name != "simulator")
    for name, service in services.items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: unpinned {image}"
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        for key, value in (service.get("environment") or {}).items():
            assert not SECRETISH.search(key) or key.endswith("__FILE"), (
                f"{name}: {key}={value!r} looks like a secret in the compose file"
            )
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in config["volumes"], f"{name}: undeclared volume {source}"
    assert set(config["volumes"]) >= {"prometheus-data", "grafana-data", "alertmanager-data"}
    assert config["secrets"]["grafana_admin_password"]["file"].startswith(str(REPO / "deploy"))


def test_docker_compose_demo_profile_reads_the_simulators_config():
    services = compose_config("--env-file", "deploy/demo.env")["services"]
    assert "--config.file=/var/lib/confscale/demo/exporter.yml" in services["exporter"]["command"]
    simulator = " ".join(services["simulator"]["command"])
    assert "--exporter.write-config /var/lib/confscale/demo/exporter.yml" in simulator
    assert "--bbb.secret" not in simulator  # random per start, through the environment


def test_grafana_image_matches_the_schema_the_dashboards_are_validated_against():
    services = compose_config()["services"]
    version = json.loads((REPO / "dashboards" / "schema" / "VERSION.json").read_text())
    assert services["grafana"]["image"] == f"grafana/grafana:{version['grafana_schema']}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def copied_sources() -> list[str]:
    sources = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in rest:
            sources += rest.split()[:-1]
    return sources


def test_dockerfile_pins_a_slim_python_and_runs_as_non_root():
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases), bases
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    commands = {rest for keyword, rest in instructions if keyword == "CMD"}
    assert any("confscale-exporter" in c for c in commands)


def test_dockerfile_copies_files_that_exist_and_are_not_ignored():
    ignored = dockerignore_patterns()
    sources = copied_sources()
    assert {"pyproject.toml", "exporter/", "planner/", "simulator/"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert source.rstrip("/") not in ignored, f".dockerignore excludes {source}"
    assert "deploy/secrets" in ignored and "**/*.secret" in ignored


def test_the_copied_files_package_every_program(tmp_path):
    """The build stage runs `pip wheel .` on exactly the files it copies: build the same
    project (as an sdist, which needs no `wheel` package or network) from those files only."""
    context = tmp_path / "src"
    context.mkdir()
    for source in copied_sources():
        path = REPO / source
        if path.is_dir():
            shutil.copytree(
                path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(path, context / source)
    out = tmp_path / "dist"
    build = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", build, str(out)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sdist = out / result.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        entry_points = archive.extractfile(f"{sdist.name[:-7]}/confscale.egg-info/entry_points.txt")
        assert entry_points is not None
        scripts = entry_points.read().decode()
    for program in ("confscale-exporter", "confscale-planner", "confscale-sim"):
        assert f"{program} = " in scripts
    for module in ("exporter/cli.py", "simulator/cli.py", "planner/__init__.py"):
        assert module in names


def test_alertmanager_config_as_compose_mounts_it(tmp_path):
    """alerts/alertmanager.yml with its templates at the paths docker-compose.yml mounts."""
    amtool = harness.require_tool("amtool")
    services = compose_config()["services"]
    mounts = dict(v.split(":")[1::-1] for v in services["alertmanager"]["volumes"])
    etc = tmp_path / "etc-alertmanager"
    for target, source in mounts.items():
        if target.startswith("/etc/alertmanager/") and Path(source).exists():
            destination = etc / Path(target).relative_to("/etc/alertmanager")
            if Path(source).is_dir():
                shutil.copytree(source, destination)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, destination)
    assert mounts["/etc/alertmanager/alertmanager.yml"] == str(REPO / "alerts" / "alertmanager.yml")
    result = subprocess.run(
        [amtool, "check-config", "alertmanager.yml"],
        cwd=etc,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "templates" in result.stdout and " 0 templates" not in result.stdout


# Programs of the confscale image → the module and sub-command whose --help lists its flags.
PROGRAMS = {
    "confscale-exporter": ("confscale.exporter.cli",),
    "confscale-planner": ("confscale.planner.cli", "serve"),
    "confscale-sim": ("confscale.simulator.cli",),
}


def compose_commands(config: dict[str, Any]) -> dict[str, list[str]]:
    """Service → argument vector of our programs (unwrapping the simulator's `sh -c`)."""
    commands = {}
    for name, service in config["services"].items():
        command = service.get("command") or []
        if service.get("entrypoint") == ["sh", "-c"]:
            script = command[0].replace("$$", "$")
            command = shlex.split(script.split("exec ", 1)[1])
        if command and command[0] in PROGRAMS:
            commands[name] = command
    return commands


@pytest.mark.parametrize("env_file", [None, "deploy/demo.env"])
def test_compose_commands_use_flags_the_programs_accept(env_file):
    config = compose_config(*(["--env-file", env_file] if env_file else []))
    commands = compose_commands(config)
    assert set(commands) == {"exporter", "planner", "simulator"}
    for name, command in commands.items():
        module, *sub = PROGRAMS[command[0]]
        assert command[1 : 1 + len(sub)] == sub, f"{name}: expected sub-command {sub}"
        result = subprocess.run(
            harness.python_module(module, *sub, "--help"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        accepted = set(re.findall(r"--[\w.-]+", result.stdout))
        used = {arg.split("=", 1)[0] for arg in command if arg.startswith("--")}
        assert used - accepted == set(), f"{name}: {command[0]} does not accept these flags"


def test_exporter_example_config_passes_the_exporters_own_check(tmp_path):
    """deploy/exporter/exporter.example.yml through `confscale-exporter --config.check`,
    with its secret files (mounted at /run/confscale-secrets/ in compose) in a temp dir."""
    example = (REPO / "deploy" / "exporter" / "exporter.example.yml").read_text()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in re.findall(r"/run/confscale-secrets/([\w.-]+)", example):
        (secrets / name).write_text("not-a-real-secret")
    config = tmp_path / "exporter.yml"
    config.write_text(example.replace("/run/confscale-secrets/", f"{secrets}/"))
    result = subprocess.run(
        harness.python_module(
            "confscale.exporter.cli", f"--config.file={config}", "--config.check"
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK, 3 nodes" in result.stdout


def test_no_secret_in_deploy_examples():
    """Examples reference secret files; none carries an inline secret value."""
    for path in [
        REPO / "docker-compose.yml",
        *sorted((REPO / "deploy").rglob("*.yml")),
        *sorted((REPO / "deploy").glob("*.env")),
    ]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = re.search(r"\b(secret|password|token)\s*[:=]\s*(\S+)", line, re.I)
            if match and not line.lstrip().startswith("#"):
                assert match.group(2).startswith("${"), f"{path}:{number}: {line.strip()}"
