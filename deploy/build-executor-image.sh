#!/bin/sh
# Builds stowage's executor image with stowage itself: stages the built project
# (deploy/stage-project.sh) and runs `stowage executor` on deploy/Dockerfile.
#
# Usage: deploy/build-executor-image.sh [--base <image>] [any stowage executor flags…]
#   deploy/build-executor-image.sh --destination registry.example.com/stowage/executor:0.1.0
#   deploy/build-executor-image.sh --base 127.0.0.1:5000/stowage/node-base:20 \
#       --destination docker-archive:stowage.tar:stowage/executor:dev     # then: docker load -i stowage.tar
# --base defaults to node:20-slim (see deploy/Dockerfile); other flags pass through unchanged.
# Env: STOWAGE (default <checkout>/bin/stowage), STOWAGE_DIST (see stage-project.sh).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
stowage=${STOWAGE:-$repo/bin/stowage}
base=""
if [ "${1:-}" = "--base" ]; then
  [ $# -ge 2 ] || { echo "build-executor-image: --base needs an image reference" >&2; exit 2; }
  base=$2
  shift 2
fi
ctx=$(mktemp -d "${TMPDIR:-/tmp}/stowage-image-context.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
"$repo/deploy/stage-project.sh" "$ctx"
[ -z "$base" ] || set -- --build-arg "BASE=$base" "$@"
set -- --context "$ctx" --dockerfile "$repo/deploy/Dockerfile" "$@"
"$stowage" executor "$@"
