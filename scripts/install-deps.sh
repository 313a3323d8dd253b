#!/usr/bin/env bash
# Installs the Debian packages stowage's tests and demo need, and the npm dependencies.
# Idempotent: skips apt-get when every package is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  bubblewrap        # the RUN sandbox
  busybox-static    # base images built by stowage itself in tests and the demo
  docker-registry   # distribution 2.8, the real registry the tests push to
  skopeo umoci      # independent checks that what stowage writes is valid
  buildah           # the peer in `npm run compare` and `npm run bench`
  docker.io         # the daemon for the unprivileged-container end-to-end test
  apache2-utils     # htpasswd for the registry's Basic-auth configuration
  openssl           # test certificates for the registry's token auth
  attr              # getfattr/setfattr for xattrs in layers
  python3           # the engine sets xattrs and nanosecond mtimes through one python3 per batch
  xz-utils bzip2    # ADD of .tar.xz / .tar.bz2 archives
  time              # /usr/bin/time -v for benchmark peak memory
  hyperfine         # benchmark timing
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
