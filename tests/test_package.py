"""The wheel installs one import namespace, ``confscale``, and nothing top-level beside it."""

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


@pytest.mark.slow
def test_wheel_has_no_top_level_module_but_confscale(tmp_path):
    import shutil
    import subprocess
    import sys

    # setuptools writes build/ into the tree it builds: build a copy, never the checkout
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "test-artifacts"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("confscale-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"confscale"}
    assert "confscale/planner/web/assets/style.css" in names
    assert "confscale/exporter/cli.py" in names
