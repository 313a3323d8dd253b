#!/bin/sh
# Assembles a base image for deploy/Dockerfile without any registry or network: FROM scratch plus
# this host's `node`, the shared libraries `ldd` lists for it and for the tools stowage runs
# (coreutils chroot/cp/rm/env/true/mknod, util-linux nsenter/setpriv, bubblewrap), and busybox-static as
# /bin/sh and the small tools a shell user expects. Tests use it in place of node:20-slim.
#
# Usage: deploy/offline-base.sh <work-dir> [destination…]
#   Writes <work-dir>/rootfs and <work-dir>/Dockerfile (FROM scratch, COPY rootfs/ /). With
#   destinations, builds that with `stowage executor` and writes it there, e.g.
#     deploy/offline-base.sh /tmp/base 127.0.0.1:5000/stowage/node-base:20
#   `stowage executor` pulls FROM images from registries only, so to use the base with
#   `--build-arg BASE=…` push it to a registry (a loopback one is enough).
# Env: STOWAGE  command that runs stowage (default: <checkout>/bin/stowage)
#      NODE     node binary to copy (default: the one on PATH)
#      BUSYBOX  static busybox (default: /bin/busybox, Debian package busybox-static)
set -eu
[ $# -ge 1 ] || { echo "usage: $0 <work-dir> [destination…]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$1
shift
stowage=${STOWAGE:-$repo/bin/stowage}
busybox=${BUSYBOX:-/bin/busybox}

fail() { echo "offline-base: $*" >&2; exit 1; }
node_bin=$(readlink -f "${NODE:-$(command -v node || echo /nonexistent/node)}" || echo "${NODE:-node}")
[ -x "$node_bin" ] || fail "no node binary found; set NODE=/path/to/node"
[ -x "$busybox" ] || fail "$busybox is missing; install the Debian package busybox-static"
"$busybox" --list >/dev/null 2>&1 || fail "$busybox is not a runnable busybox"
if ldd "$busybox" >/dev/null 2>&1; then fail "$busybox is dynamically linked; use busybox-static"; fi
[ ! -e "$work/rootfs" ] || fail "$work/rootfs already exists; give an empty directory"

tool() { # the host's binary for a tool (a file: `command -v true` names the shell builtin), or fail naming its package
  for dir in /usr/sbin /usr/bin /sbin /bin; do
    if [ -f "$dir/$1" ] && [ -x "$dir/$1" ]; then readlink -f "$dir/$1"; return 0; fi
  done
  fail "$1 is missing on this host (Debian package $2)"
}
tools="bwrap:bubblewrap chroot:coreutils cp:coreutils rm:coreutils env:coreutils true:coreutils mknod:coreutils nsenter:util-linux setpriv:util-linux"

mkdir -p "$work"
root=$(mktemp -d "$work/.rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root/usr/local/bin" "$root/usr/bin" "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/workspace"
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

# copy_with_libs <host-binary> <path-in-image>: the binary and every library ldd resolves for it,
# each at the path the dynamic loader will look for it.
copy_with_libs() {
  cp -L "$1" "$root$2"
  chmod 0755 "$root$2"
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

copy_with_libs "$node_bin" /usr/local/bin/node
for t in $tools; do
  name=${t%%:*}
  bin=$(tool "$name" "${t#*:}") # a plain assignment, so set -e stops here when the tool is missing
  copy_with_libs "$bin" "/usr/bin/$name"
done
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] && continue
  # The copied coreutils/util-linux tools take precedence; busybox fills in the rest (sh, ls, cat…).
  [ -e "$root/usr/bin/$applet" ] && continue
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

mv "$root" "$work/rootfs"
trap - EXIT
printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["node"]\n' >"$work/Dockerfile"

[ $# -eq 0 ] && exit 0
n=$#
for d in "$@"; do set -- "$@" --destination "$d"; done
shift "$n"
exec "$stowage" executor --context "$work" --dockerfile "$work/Dockerfile" --reproducible "$@"
