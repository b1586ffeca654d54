#!/usr/bin/env bash
# Regenerate the JSON Schemas in this folder from Grafana's own published schema.
#
# Grafana publishes its dashboard and panel schemas as TypeScript types in the npm
# package @grafana/schema (generated there from Grafana's CUE kinds). This script
# turns those types into JSON Schema with ts-json-schema-generator, so the tests can
# validate our dashboards with plain `jsonschema`, without Node at test time.
#
# Keep GRAFANA_VERSION equal to the Grafana image pinned in docker-compose.yml.
# Usage: bash dashboards/schema/regenerate.sh   (needs node + npm and the npm registry)
set -euo pipefail

GRAFANA_VERSION="${GRAFANA_VERSION:-12.4.11}"
GENERATOR_VERSION="2.4.0"
TYPESCRIPT_VERSION="5.9.3"
PANEL_TYPES="timeseries stat gauge bargauge table heatmap statetimeline"

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent \
    "@grafana/schema@${GRAFANA_VERSION}" \
    "ts-json-schema-generator@${GENERATOR_VERSION}" "typescript@${TYPESCRIPT_VERSION}"
cat > tsconfig.json <<'JSON'
{"compilerOptions": {"moduleResolution": "node", "module": "commonjs", "target": "es2020",
                     "strict": false, "skipLibCheck": true}}
JSON
raw="node_modules/@grafana/schema/dist/types/raw"
gen() {  # gen SOURCE TYPE OUT
    node_modules/.bin/ts-json-schema-generator -f tsconfig.json --no-type-check \
        --path "$1" --type "$2" -o "$3"
}

mkdir -p "$here/panels"
gen "$raw/dashboard/x/types.gen.d.ts" Dashboard "$here/dashboard.schema.json"
for panel in $PANEL_TYPES; do
    source="$raw/composable/$panel/panelcfg/x/types.gen.d.ts"
    gen "$source" Options "$here/panels/$panel.options.schema.json"
    if grep -q "^export interface FieldConfig" "$source"; then
        gen "$source" FieldConfig "$here/panels/$panel.fieldconfig.schema.json"
    fi
done
printf '{"grafana_schema": "%s", "ts_json_schema_generator": "%s"}\n' \
    "$GRAFANA_VERSION" "$GENERATOR_VERSION" > "$here/VERSION.json"
echo "schemas for Grafana ${GRAFANA_VERSION} written to ${here}"
