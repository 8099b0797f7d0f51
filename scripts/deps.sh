#!/usr/bin/env bash
# Installs what building and testing need, only when it is missing: Debian packages with
# apt-get, the Rust musl target with rustup. Safe to run again; CI runs it on a fresh machine.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_for() { # command package
  have "$1" || need+=("$2")
}
pkg_for musl-gcc musl-tools
pkg_for curl curl
pkg_for unshare util-linux
pkg_for nsenter util-linux
pkg_for ps procps
pkg_for ip iproute2
pkg_for python3 python3
if [ "${1:-}" = test ]; then
  pkg_for podman podman
  pkg_for runc runc
  pkg_for rpm rpm
  pkg_for rpmbuild rpm
  pkg_for hyperfine hyperfine
  pkg_for openssl openssl
  pkg_for script bsdutils    # tests/pty.rs drives `sidecar exec -t` through it
  pkg_for setpriv util-linux
  pkg_for capsh libcap2-bin   # tests/native.rs: a container with fewer capabilities
  [ -x /usr/bin/time ] || need+=(time)
  [ -x /bin/busybox ] || need+=(busybox-static)
  [ -x /usr/bin/catatonit ] || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt may hold the lock for a while on a shared machine.
  for i in $(seq 1 60); do
    if apt-get update -qq && apt-get install -y -qq "${need[@]}"; then
      break
    fi
    [ "$i" = 60 ] && exit 1
    sleep 5
  done
fi
if ! have cargo; then
  echo "no cargo: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl; then
  rustup target add x86_64-unknown-linux-musl
fi
