"""The wheel installs one import namespace, ``confscale``, and nothing top-level beside it."""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {
    "confscale.exporter": "exporter",
    "confscale.planner": "planner",
    "confscale.simulator": "simulator",
    "confscale": "confscale",
}


def _declared() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_declared_under_confscale():
    found = set()
    for name, folder in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *rel)))
    assert found == set(_declared())


def test_declared_packages_all_live_under_confscale():
    assert all(p == "confscale" or p.startswith("confscale.") for p in _declared())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once from a copy of the tree (setuptools writes build/
    into the tree it builds: never the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "test-artifacts"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = tmp.glob("confscale-*.whl")
    return built


@pytest.mark.slow
def test_wheel_has_no_top_level_module_but_confscale(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"confscale"}
    assert "confscale/planner/web/assets/style.css" in names
    assert "confscale/exporter/cli.py" in names


@pytest.mark.slow
def test_wheel_installs_and_runs_from_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    """pip installs the wheel (and its declared dependencies) into a new venv; from a
    folder without the source tree, every console script answers --version and the
    exporter checks the shipped example configuration."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    install = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    run_dir = tmp_path / "elsewhere"  # no confscale source on any path from here
    run_dir.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=run_dir, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    where = run(str(bin_dir / "python"), "-c", "import confscale; print(confscale.__file__)")
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for script in scripts:
        done = run(str(bin_dir / script), "--version")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == f"{script}, version {version}"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    example = (REPO / "deploy" / "exporter" / "exporter.example.yml").read_text()
    for name in ("bbb-01", "bbb-02"):
        (secrets / f"{name}.secret").write_text("not-a-real-secret\n")
    config = run_dir / "exporter.yml"
    config.write_text(example.replace("/run/confscale-secrets/", f"{secrets}/"))
    check = run(str(bin_dir / "confscale-exporter"), f"--config.file={config}", "--config.check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{config}: OK, 3 nodes")
