#!/usr/bin/env bash
# End-to-end test of the native package path (issue 12) with real podman: a FROM scratch
# target holding only a static busybox, /etc/passwd and an RPM database (SQLite, seeded by
# Debian's rpm), and no rpm. The static sidecar on this machine installs a package built
# here with rpmbuild and erases it again, with curl; Debian's rpm on the container's root
# (`podman mount`) agrees; the change survives `podman stop`/`start` and a container made
# anew from the image has none of it. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
NAME="native e2e"
. tests/e2e/lib.sh
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tests/e2e/containers.conf}"
BIN=target/x86_64-unknown-linux-musl/release/sidecar
TAG="nat$$$RANDOM"
IMG="localhost/sidecar-native-micro:$TAG"
PASSWORD="pw-$RANDOM$RANDOM"
work=$(mktemp -d)

[ "$(id -u)" = 0 ] || skip_or_fail "needs root"
for t in podman runc curl python3 rpm rpmbuild; do command -v $t >/dev/null || skip_or_fail "needs $t"; done
[ -x /bin/busybox ] || skip_or_fail "needs /bin/busybox (busybox-static)"
[ -x "$BIN" ] || skip_or_fail "needs $BIN (make static)"

cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
  for c in "micro-$TAG" "micro2-$TAG"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  podman rmi -f "$IMG" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"; echo "work: $work"
}
trap cleanup EXIT

api() { curl -s --max-time 30 --digest --user "admin:$PASSWORD" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# Two packages: one in the image's database, one to install (its file needs the first).
spec() { # name, requires, file, content
  printf 'Name: %s\nVersion: 1\nRelease: 1\nSummary: e2e\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%s\n%%description\ne2e\n%%install\nmkdir -p %%{buildroot}%s\necho %s > %%{buildroot}%s/%s\n%%files\n%s/%s\n' \
    "$1" "$2" "$(dirname "$3")" "$4" "$(dirname "$3")" "$(basename "$3")" "$(dirname "$3")" "$(basename "$3")" > "$work/$1.spec"
  rpmbuild --quiet --define "_topdir $work/top" -bb "$work/$1.spec" || skip_or_fail "rpmbuild $1 failed"
}
spec base "" /etc/base-release base-1
spec hello "Requires: base" /usr/share/hello/greeting hello-from-rpm
mkdir -p "$work/root/bin" "$work/root/etc" "$work/root/var/lib/rpm"
cp /bin/busybox "$work/root/bin/"
printf 'root:x:0:0:root:/:/bin/sh\n' > "$work/root/etc/passwd"
printf 'root:x:0:\n' > "$work/root/etc/group"
rpm --root "$work/root" --dbpath /var/lib/rpm --initdb
rpm --root "$work/root" --dbpath /var/lib/rpm -i --nodeps --noscripts "$work/top/RPMS/noarch/base-1-1.noarch.rpm" 2>/dev/null
printf 'FROM scratch\nCOPY root/ /\nCMD ["/bin/busybox", "sleep", "100000"]\n' > "$work/Containerfile"
podman build -q -t "$IMG" "$work" >/dev/null || skip_or_fail "podman build of the micro image failed"

port=$(free_port); url=http://127.0.0.1:$port
SIDECAR_USER=admin SIDECAR_PASSWORD="$PASSWORD" "$BIN" serve --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
check "the sidecar serves" wait_http "$url"
podman run -d --name "micro-$TAG" "$IMG" >/dev/null
id=$(podman inspect "micro-$TAG" --format '{{.Id}}'); c=${id:0:12}
check "the image has no rpm" sh -c "! podman exec micro-$TAG /bin/busybox ls /usr/bin/rpm /bin/rpm >/dev/null 2>&1"
check "its database is listed natively" test "$(api "$url/$c/rpms" | json "[p['name'] for p in d]")" = "['base']"

echo "== install with curl -T"
r=$(api -T "$work/top/RPMS/noarch/hello-1-1.noarch.rpm" "$url/$c/rpms")
echo "$r" > "$work/install.json"
check "installed natively ($r)" test "$(echo "$r" | json "(d['status'], d['method'], d['signature'])")" = "('installed', 'native', 'not checked')"
check "its file is in the container" test "$(podman exec "micro-$TAG" /bin/busybox cat /usr/share/hello/greeting)" = hello-from-rpm
mnt=$(podman mount "micro-$TAG")
check "Debian's rpm on the container's root lists it" sh -c "rpm --root '$mnt' --dbpath /var/lib/rpm -qa | grep -qx hello-1-1.noarch"
check "and finds its file intact (rpm -V)" rpm --root "$mnt" --dbpath /var/lib/rpm -V --nodeps --noscripts hello
check "and names it for its file (rpm -qf)" test "$(rpm --root "$mnt" --dbpath /var/lib/rpm -qf /usr/share/hello/greeting)" = hello-1-1.noarch
podman umount "micro-$TAG" >/dev/null
check "the audit line says native" grep -q '"method":"native"' "$work/server.log"

echo "== podman stop / start keeps it"
podman stop -t 1 "micro-$TAG" >/dev/null && podman start "micro-$TAG" >/dev/null
check "still installed after a restart" test "$(api "$url/$c/rpms" | json "sorted(p['name'] for p in d)")" = "['base', 'hello']"
check "its file too" test "$(podman exec "micro-$TAG" /bin/busybox cat /usr/share/hello/greeting)" = hello-from-rpm
podman run -d --name "micro2-$TAG" "$IMG" >/dev/null
id2=$(podman inspect "micro2-$TAG" --format '{{.Id}}')
check "a container made anew from the image has none of it" test "$(api "$url/${id2:0:12}/rpms" | json "[p['name'] for p in d]")" = "['base']"

echo "== erase with curl -X DELETE"
r=$(api -X DELETE "$url/$c/rpms/base")
check "base is still needed: 409 with rpm's problem" test "$(echo "$r" | json "(d['status'], d['problems'][0][0])")" = "('failed', 'base is needed by (installed) hello-1-1.noarch')"
r=$(api -X DELETE "$url/$c/rpms/hello")
check "erased natively ($r)" test "$(echo "$r" | json "(d['status'], d['method'])")" = "('erased', 'native')"
check "its file is gone" sh -c "! podman exec micro-$TAG /bin/busybox test -e /usr/share/hello/greeting"
mnt=$(podman mount "micro-$TAG")
check "Debian's rpm no longer lists it" test "$(rpm --root "$mnt" --dbpath /var/lib/rpm -qa)" = base-1-1.noarch
podman umount "micro-$TAG" >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
