#!/usr/bin/env bash
# The README's first command: install what is needed, then lint, plan and build the bundled
# example spec into OCI image layouts under specs/out/ (no registry, no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./bin/stowage lint -f specs/stowage.yaml
./bin/stowage plan -f specs/stowage.yaml
./bin/stowage build -f specs/stowage.yaml --metadata-file specs/out/metadata.json
echo
echo "Images written as OCI layouts under specs/out/ (metadata in specs/out/metadata.json). Inspect one with:"
echo "  skopeo inspect oci:specs/out/app:dev"
