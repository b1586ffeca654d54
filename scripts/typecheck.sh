#!/usr/bin/env bash
# mypy over the package as it installs: confscale.exporter, .planner and .simulator are
# the top-level folders (pyproject.toml's package-dir), which mypy cannot map itself, so
# a folder of symlinks lays them out as site-packages would. Config: [tool.mypy].
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
case "$python" in /*) ;; */*) python="$PWD/$python" ;; esac  # relative to the caller: we cd below
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/confscale"
for file in "$repo"/confscale/*.py; do ln -s "$file" "$tree/confscale/"; done
for folder in exporter planner simulator; do ln -s "$repo/$folder" "$tree/confscale/$folder"; done
cd "$tree"
exec "$python" -m mypy --config-file "$repo/pyproject.toml" --cache-dir "$repo/.mypy_cache" \
    -p confscale
