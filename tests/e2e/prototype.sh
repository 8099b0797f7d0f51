#!/usr/bin/env bash
# The Python prototype's README (../shared/prototype-README.txt), end to end with real podman:
# the sidecar's FROM scratch image and an RPM-based target image made here (a root file
# system with this machine's real rpm, a busybox, and a database of test packages named as in
# that README), both in a pod with a shared PID namespace and a published port; then real
# `curl --digest` from the host, line by line: list, resources, processes, packages, the
# refused erase, the successful one, the upload. Then the changes survive `podman stop` and
# `podman start`, and a new container from the image does not have them. Then the same
# erase and install through deploy/sidecar-pod.yaml run by `podman kube play`, and that
# manifest validated against the Kubernetes schemas. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
NAME="prototype e2e"
. tests/e2e/lib.sh
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tests/e2e/containers.conf}"
BIN=target/x86_64-unknown-linux-musl/release/sidecar
TAG="proto$$$RANDOM"
IMAGE="localhost/support-sidecar:$TAG"
TARGET="localhost/sidecar-e2e-leap:$TAG"
PASSWORD="pw-$RANDOM$RANDOM"
POD="test-$TAG"
work=$(mktemp -d)

[ "$(id -u)" = 0 ] || skip_or_fail "needs root"
for t in podman runc curl python3 rpm rpmbuild; do command -v $t >/dev/null || skip_or_fail "needs $t"; done
[ -x /bin/busybox ] || skip_or_fail "needs /bin/busybox (busybox-static)"
[ -x "$BIN" ] || skip_or_fail "needs $BIN (make static)"

cleanup() {
  podman pod rm -f -t 0 "$POD" "kube-$TAG" >/dev/null 2>&1
  podman rm -f -t 0 "fresh-$TAG" >/dev/null 2>&1
  podman rmi -f "$IMAGE" "$TARGET" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# The prototype's alias, with a password made for this run (there is no built-in one).
api() { curl -s --max-time 60 --digest --user "admin:$PASSWORD" "$@"; }
py() { python3 -c "import json,sys; d=json.load(sys.stdin); $1" "${@:2}"; }
# jcheck FILE EXPR: EXPR (python, over the JSON in FILE as d) is true.
jcheck() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1"; }

echo "== building the images"
podman build -q -t "$IMAGE" -f image/Containerfile . >/dev/null || skip_or_fail "podman build of the sidecar failed"

# Packages named as in the prototype's README, built with rpmbuild.
top=$work/rpmbuild
mkdir -p "$top"
cat > "$work/ca.spec" <<'EOF'
Name: ca-certificates
Version: 2
Release: lp151.1.1
Summary: Utilities for system wide CA certificate installation
License: GPL-2.0-or-later
BuildArch: noarch
%description
CA certificates, as a test package.
%package mozilla
Summary: CA certificates for OpenSSL
Version: 2.34
Release: lp151.2.3.1
Requires: ca-certificates
Provides: mozilla-ca-certificates
%description mozilla
The Mozilla CA bundle, as a test package.
%install
mkdir -p %{buildroot}/etc/pki/trust %{buildroot}/usr/share/pki/trust
echo update-ca-certificates > %{buildroot}/etc/pki/trust/README
echo mozilla-bundle > %{buildroot}/usr/share/pki/trust/tls-ca-bundle.pem
%files
/etc/pki/trust/README
%files mozilla
/usr/share/pki/trust/tls-ca-bundle.pem
EOF
cat > "$work/ltrace.spec" <<'EOF'
Name: ltrace
Version: 0.7.3
Release: lp151.1
Summary: Trace the calls of a program (a test package)
License: GPL-2.0-only
BuildArch: noarch
AutoReqProv: no
%description
A stand-in for ltrace.
%install
mkdir -p %{buildroot}/usr/bin
printf '#!/bin/sh\necho ltrace stand-in\n' > %{buildroot}/usr/bin/ltrace
chmod 755 %{buildroot}/usr/bin/ltrace
%files
/usr/bin/ltrace
EOF
for s in ca ltrace; do
  rpmbuild --quiet --define "_topdir $top" -bb "$work/$s.spec" || skip_or_fail "rpmbuild $s"
done
rpmdir=$top/RPMS/noarch
ltrace_rpm=$rpmdir/ltrace-0.7.3-lp151.1.noarch.rpm

# The target: this machine's rpm (with the libraries ldd names and /usr/lib/rpm), a busybox
# for /bin/sh and sleep, and a database of the two ca-certificates packages.
root=$work/leap
mkdir -p "$root"/{bin,etc/rpm,tmp,var/lib/rpm,usr/bin,usr/lib,proc,dev,sys}
cp /usr/bin/rpm "$root/usr/bin/"
for lib in $(ldd /usr/bin/rpm | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
done
cp -a /usr/lib/rpm "$root/usr/lib/"
[ -d /usr/lib/x86_64-linux-gnu/rpm-plugins ] && mkdir -p "$root/usr/lib/x86_64-linux-gnu" && cp -a /usr/lib/x86_64-linux-gnu/rpm-plugins "$root/usr/lib/x86_64-linux-gnu/"
cp /bin/busybox "$root/bin/"
for a in sh sleep cat ls; do ln -s busybox "$root/bin/$a"; done
echo '%_dbpath /var/lib/rpm' > "$root/etc/rpm/macros.dbpath"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
rpm --root "$root" --dbpath /var/lib/rpm --initdb
rpm --root "$root" --dbpath /var/lib/rpm -i --nodeps \
  "$rpmdir/ca-certificates-2-lp151.1.1.noarch.rpm" "$rpmdir/ca-certificates-mozilla-2.34-lp151.2.3.1.noarch.rpm" 2>/dev/null \
  || skip_or_fail "seeding the target's database"
rm -f "$root"/var/lib/rpm/rpmdb.sqlite-shm "$root"/var/lib/rpm/rpmdb.sqlite-wal
printf 'FROM scratch\nCOPY leap/ /\nCMD ["/bin/sh", "-c", "exec sleep 1000000"]\n' > "$work/Containerfile"
podman build -q -t "$TARGET" -f "$work/Containerfile" "$work" >/dev/null || skip_or_fail "podman build of the target failed"
echo "target image: $(podman image inspect "$TARGET" --format '{{.Size}}') bytes"

echo "== the prototype's README, word for word"
port=$(free_port); url=http://localhost:$port
# ./RUN: a pod named "test" (here unique), two containers: the target and the sidecar.
podman pod create --name "$POD" --share pid,net,ipc,uts -p "$port:8889" >/dev/null || skip_or_fail "podman pod create -p"
podman run -d --pod "$POD" --name "leap-$TAG" "$TARGET" >/dev/null
podman run -d --pod "$POD" --name "sidecar-$TAG" --cap-add SYS_PTRACE,SYS_ADMIN \
  -e SIDECAR_USER=admin -e SIDECAR_PASSWORD="$PASSWORD" "$IMAGE" >/dev/null
check "the sidecar answers on the published port" wait_http "$url" 200
container=$(podman inspect "leap-$TAG" --format '{{.Id}}')
infra=$(podman pod inspect "$POD" --format '{{.InfraContainerID}}')

api "$url" > "$work/list.json"
check "curl \$url lists the target by podman's container ID" \
  jcheck "$work/list.json" "any(c['id']=='$container' and not c['infra'] for c in d)"
check "the pod's infra container is the prototype's \"null entry\", marked infra" \
  jcheck "$work/list.json" "any(c['id']=='$infra' and c['infra'] for c in d)"
check "the sidecar's own container is left out" jcheck "$work/list.json" "len(d) == 2"
api "$url/$container" > "$work/one.json"
check "curl \$url/\$container shows rpms and process" \
  jcheck "$work/one.json" "'rpms' in d['resources'] and 'process' in d['resources']"
api "$url/$container/process" > "$work/ps.json"
check "curl \$url/\$container/process shows its sleep" jcheck "$work/ps.json" "any(p['comm'] == 'sleep' for p in d)"
api "$url/$container/rpms" > "$work/rpms.json"
check "curl \$url/\$container/rpms lists the packages" \
  jcheck "$work/rpms.json" "[p['name'] for p in d] == ['ca-certificates', 'ca-certificates-mozilla']"
instance=$(api "$url/$container/rpms/ca-certificates-mozilla" | py 'print(d[0]["instance"])')
installdate=$(py 'print([p for p in d if p["name"]=="ca-certificates-mozilla"][0]["installdate"])' < "$work/rpms.json")

api -X DELETE "$url/$container/rpms/ca-certificates" > "$work/refused.json"; cat "$work/refused.json"
check "the refused erase in the README's shape" jcheck "$work/refused.json" \
  "d['status'] == 'failed' and d['problems'] == [['ca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch', [4, 'ca-certificates', $instance]]]"

api -X DELETE "$url/$container/rpms/mozilla-ca-certificates" > "$work/erased.json"; cat "$work/erased.json"
check "the successful erase in the README's shape" jcheck "$work/erased.json" \
  "d['status'] == 'erased' and {k: d['package'][k] for k in ('release', 'version', 'name', 'installdate')} == {'release': 'lp151.2.3.1', 'version': '2.34', 'name': 'ca-certificates-mozilla', 'installdate': '$installdate'}"

api -T "$ltrace_rpm" "$url/$container/rpms" > "$work/installed.json"; cat "$work/installed.json"
check "curl -T ltrace.rpm installs it" jcheck "$work/installed.json" "d['status'] == 'installed' and d['package']['name'] == 'ltrace'"
check "ltrace runs in the container" sh -c "podman exec leap-$TAG /usr/bin/ltrace | grep -q 'ltrace stand-in'"

names() { api "$url/$1/rpms" | py 'print(" ".join(p["name"] for p in d))'; }
check "podman stop; podman start" sh -c "podman stop -t 2 leap-$TAG >/dev/null && podman start leap-$TAG >/dev/null"
sleep 1
check "the changes survive a restart" test "$(names "$container")" = "ca-certificates ltrace"
podman run -d --pod "$POD" --name "fresh-$TAG" "$TARGET" >/dev/null
fresh=$(podman inspect "fresh-$TAG" --format '{{.Id}}')
sleep 1
check "a new container from the image starts without them" test "$(names "$fresh")" = "ca-certificates ca-certificates-mozilla"
podman pod rm -f -t 0 "$POD" >/dev/null 2>&1

echo "== the same through deploy/sidecar-pod.yaml (podman kube play)"
kport=$(free_port); kurl=http://localhost:$kport
secret=$work/secret; mkdir -p "$secret"; echo "admin:$PASSWORD" > "$secret/credentials"; chmod 600 "$secret/credentials"
# The test's substitutions: the images made here, a hostPath for the Secret (Debian's podman
# 4.3 panics on secret: volumes), a free host port and a unique pod name.
python3 - "$work/kube.yaml" "$IMAGE" "$TARGET" "$secret" "$kport" "kube-$TAG" <<'PY'
import sys
out, image, target, secret, port, name = sys.argv[1:]
text = open("deploy/sidecar-pod.yaml").read()
text = text.replace("ghcr.io/example/support-sidecar:latest", image)
text = text.replace("registry.example.com/your-app:latest", target)
text = text.replace("name: support-demo", "name: " + name, 1)
text = text.replace("containerPort: 8889\n", "containerPort: 8889\n          hostPort: " + port + "\n", 1)
old = "secret:\n        secretName: sidecar-credentials"
assert old in text, "the manifest's Secret volume"
text = text.replace(old, "hostPath:\n        path: " + secret + "\n        type: Directory")
open(out, "w").write(text)
PY
if podman kube play "$work/kube.yaml" >"$work/kube.log" 2>&1; then
  check "kube play starts the pod" wait_http "$kurl" 200
  app=$(podman ps --filter "pod=kube-$TAG" --format '{{.ID}} {{.Names}}' | awk '/-app$/ {print $1}')
  app=$(podman inspect "$app" --format '{{.Id}}' 2>/dev/null)
  kapi() { curl -s --max-time 60 --digest --user "admin:$PASSWORD" "$@"; }
  check "the readiness probe's /healthz answers without credentials" test "$(curl -s -o /dev/null -w '%{http_code}' "$kurl/healthz")" = 200
  kapi -X DELETE "$kurl/$app/rpms/ca-certificates" > "$work/k1.json"
  check "the refused erase through the manifest" jcheck "$work/k1.json" "d['status'] == 'failed' and d['problems'][0][1][0] == 4"
  kapi -T "$ltrace_rpm" "$kurl/$app/rpms" > "$work/k2.json"
  check "the upload through the manifest" jcheck "$work/k2.json" "d['status'] == 'installed'"
  check "the sidecar runs with only the manifest's capabilities" sh -c "podman inspect \$(podman ps --filter pod=kube-$TAG --format '{{.Names}}' | grep -- -sidecar) --format '{{.EffectiveCaps}}' | grep SYS_ADMIN | grep -vq NET_RAW"
else
  cat "$work/kube.log"
  check "kube play starts the pod" false
fi
podman kube down "$work/kube.yaml" >/dev/null 2>&1 || podman pod rm -f -t 0 "kube-$TAG" >/dev/null 2>&1

echo "== the manifest against the Kubernetes schemas"
venv=target/venv-kubernetes-validate
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q kubernetes-validate >/dev/null 2>&1
fi
if [ -x "$venv/bin/kubernetes-validate" ]; then
  check "kubernetes-validate deploy/sidecar-pod.yaml" "$venv/bin/kubernetes-validate" --strict deploy/sidecar-pod.yaml
else
  check "kubernetes-validate could be installed (python3 -m venv, pip)" false
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
