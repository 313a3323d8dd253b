#!/bin/sh
# Stages the built project as the build context of deploy/Dockerfile:
#   <out>/stowage/{bin,dist,schema,package.json,node_modules}
# node_modules holds only the production dependencies package-lock.json lists (no typescript/tsx),
# copied from the checkout's node_modules, so staging needs no network.
#
# Usage: deploy/stage-project.sh <out-dir>
# Env:   STOWAGE_DIST  compiled output to stage (default: <checkout>/dist, made by `npm run build`)
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <out-dir>" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$1
dist=${STOWAGE_DIST:-$repo/dist}
if [ ! -f "$dist/cli/main.cjs" ]; then
  echo "stage-project: $dist/cli/main.cjs is missing; run 'npm ci' (or 'npm run build') in $repo first" >&2
  exit 1
fi
if [ -e "$out/stowage" ]; then
  echo "stage-project: $out/stowage already exists; give an empty directory" >&2
  exit 1
fi
mkdir -p "$out"
tmp=$(mktemp -d "$out/.stowage-stage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/stowage/node_modules"
cp -a "$repo/bin" "$repo/schema" "$repo/package.json" "$tmp/stowage/"
cp -a "$dist" "$tmp/stowage/dist"
# Production closure from the lockfile: every installed package not marked dev-only.
node -e '
  const lock = require(process.argv[1]);
  for (const [path, meta] of Object.entries(lock.packages ?? {})) {
    if (path.startsWith("node_modules/") && !meta.dev) console.log(path);
  }
' "$repo/package-lock.json" | while read -r pkg; do
  [ -d "$repo/$pkg" ] || continue # an optional dependency not installed on this platform
  [ -e "$tmp/stowage/$pkg" ] && continue # nested under a package already copied
  mkdir -p "$tmp/stowage/$(dirname "$pkg")"
  cp -a "$repo/$pkg" "$tmp/stowage/$pkg"
done
mv "$tmp/stowage" "$out/stowage"
