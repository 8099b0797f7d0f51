#!/usr/bin/env bash
# End-to-end tests with real podman (runc, cgroupfs: see containers.conf beside this file):
# the static sidecar as PID 1 of its own FROM scratch container, and in a pod with a shared
# PID namespace next to another container. Needs root, podman, runc, catatonit, curl,
# python3, nsenter and the static binary (`make static`). Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
NAME="e2e"
. tests/e2e/lib.sh
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/tests/e2e/containers.conf}"
BIN=target/x86_64-unknown-linux-musl/release/sidecar
TAG="e2e$$$RANDOM"
IMAGE="localhost/support-sidecar:$TAG"
APPIMG="localhost/sidecar-e2e-busybox:$TAG"
TKIMAGE="localhost/support-sidecar:toolkit-$TAG"
PASSWORD="pw-$RANDOM$RANDOM"
work=$(mktemp -d)

[ "$(id -u)" = 0 ] || skip_or_fail "needs root"
for t in podman runc curl python3 nsenter; do command -v $t >/dev/null || skip_or_fail "needs $t"; done
[ -x /bin/busybox ] || skip_or_fail "needs /bin/busybox (busybox-static)"
[ -x "$BIN" ] || skip_or_fail "needs $BIN (make static)"

cleanup() {
  for p in "pod-$TAG" "pod2-$TAG"; do podman pod rm -f -t 0 "$p" >/dev/null 2>&1; done
  # One at a time: given several names of which one is already gone, podman 4.3's `rm -f`
  # stopped there and left the rest running (the userns container of every run).
  for c in "pid1-$TAG" "app-$TAG" "sc-$TAG" "sc2-$TAG" "tk-$TAG" "kids-$TAG" "userns-$TAG"; do
    podman rm -f -t 0 "$c" >/dev/null 2>&1
  done
  podman rmi -f "$IMAGE" "$APPIMG" "$TKIMAGE" >/dev/null 2>&1
  [ -n "${KEEP:-}" ] || rm -rf "$work"; echo "work: $work"
}
trap cleanup EXIT

api() { curl -s --max-time 10 --digest --user "admin:$PASSWORD" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# Images: the sidecar's own (FROM scratch, the static binary), and a target (busybox only).
podman build -q -t "$IMAGE" --target sidecar -f image/Containerfile . >/dev/null || skip_or_fail "podman build failed"
# The :toolkit image as `make image` builds it: Debian's static busybox and its applets.
rm -rf target/toolkit && mkdir -p target/toolkit/bin && cp /bin/busybox target/toolkit/bin/
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "target/toolkit/bin/$a"; done
podman build -q -t "$TKIMAGE" --target toolkit -f image/Containerfile . >/dev/null || skip_or_fail "podman build of the toolkit image failed"
mkdir -p "$work/app" && cp /bin/busybox "$work/app/"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n' > "$work/app/passwd"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\nCMD ["/bin/busybox", "sleep", "100000"]\n' > "$work/app/Containerfile"
podman build -q -t "$APPIMG" "$work/app" >/dev/null || skip_or_fail "podman build of the busybox image failed"

echo "== the sidecar as PID 1 of its own container"
port=$(free_port); url=http://127.0.0.1:$port
podman run -d --name "pid1-$TAG" --network host -e SIDECAR_USER=admin -e SIDECAR_PASSWORD="$PASSWORD" \
  "$IMAGE" serve --listen "127.0.0.1:$port" >/dev/null
check "it serves" wait_http "$url"
check "it lists nothing but itself (its own container is left out)" test "$(api "$url/" | json 'len(d)')" = 0
pid1=$(podman inspect "pid1-$TAG" --format '{{.State.Pid}}')
check "podman's PID is our init" grep -q '^NSpid:.*[[:space:]]1$' "/proc/$pid1/status"
check "init runs the server as its child" test -n "$(ps -o pid= --ppid "$pid1")"
# An orphan in its PID namespace is re-parented to it and must be reaped once it exits.
nsenter -t "$pid1" --pid -- /bin/sh -c 'sleep 0.3 & sleep 0.3 & exit 0'
sleep 1.5
zombies=$(ps -o stat= --ppid "$pid1" | grep -c Z)
check "orphans are reaped (zombies: $zombies)" test "$zombies" = 0
start=$(date +%s%N)
podman stop -t 10 "pid1-$TAG" >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "podman stop takes ${ms} ms (no SIGKILL needed)" test "$ms" -lt 5000
check "exit status 0" test "$(podman inspect "pid1-$TAG" --format '{{.State.ExitCode}}')" = 0
check "the stop is logged" sh -c "podman logs pid1-$TAG 2>&1 | grep -q '\"event\":\"stopped\"'"

echo "== in a pod with a shared PID namespace"
port=$(free_port); url=http://127.0.0.1:$port
podman pod create --name "pod-$TAG" --share pid,net,ipc,uts --network host >/dev/null
podman run -d --pod "pod-$TAG" --name "app-$TAG" -e APPVAR=from-podman "$APPIMG" >/dev/null
podman run -d --pod "pod-$TAG" --name "sc-$TAG" --cap-add SYS_PTRACE -e SIDECAR_USER=admin -e SIDECAR_PASSWORD="$PASSWORD" \
  "$IMAGE" serve --listen "127.0.0.1:$port" >/dev/null
check "it serves" wait_http "$url"
app=$(podman inspect "app-$TAG" --format '{{.Id}}')
sc=$(podman inspect "sc-$TAG" --format '{{.Id}}')
pod=$(podman pod inspect "pod-$TAG" --format '{{.Id}}')
infra=$(podman pod inspect "pod-$TAG" --format '{{.InfraContainerID}}')
list=$(api "$url/")
echo "$list" > "$work/list.json"
check "the app container is listed by podman's ID" test "$(echo "$list" | json "[c['runtime'] for c in d if c['id']=='$app']")" = "['podman']"
check "with the pod's ID" test "$(echo "$list" | json "[c['pod_id'] for c in d if c['id']=='$app']")" = "['$pod']"
check "and not as infra" test "$(echo "$list" | json "[c['infra'] for c in d if c['id']=='$app']")" = "[False]"
check "the infra container is marked" test "$(echo "$list" | json "[c['infra'] for c in d if c['id']=='$infra']")" = "[True]"
check "the infra container is PID 1" test "$(echo "$list" | json "[c['pid'] for c in d if c['id']=='$infra']")" = "[1]"
check "the sidecar leaves itself out" test "$(echo "$list" | json "len([c for c in d if c['id']=='$sc'])")" = 0
procs=$(api "$url/${app:0:12}/process")
check "the app's processes: sleep, root, from its own view" test "$(echo "$procs" | json "[(p['cmdline'], p['user'], p['ns_pid']==p['pid']) for p in d]")" = "[('/bin/busybox sleep 100000', 'root', True)]"
echo "== exec into the pod's app container"
out=$("$BIN" exec "${app:0:12}" -- busybox sh -c 'busybox hostname; echo $$' 2>&1)
echo "$out" > "$work/exec-host.txt"
check "sidecar exec from the host: the app's hostname (the pod's name)" test "$(echo "$out" | head -1)" = "pod-$TAG"
check "and its PID namespace (a small PID: $(echo "$out" | sed -n 2p))" test "$(echo "$out" | sed -n 2p)" -lt 100
check "sidecar exec passes the exit status through" sh -c "'$BIN' exec ${app:0:12} -- busybox sh -c 'exit 42'; test \$? = 42"
check "sidecar exec of a program the image lacks exits 127" sh -c "'$BIN' exec ${app:0:12} -- nosuch 2>/dev/null; test \$? = 127"
# From the sidecar's own container: joining the app's mount namespace needs CAP_SYS_ADMIN.
r=$(api -X POST -d '{"argv": ["busybox", "cat", "/etc/hostname"]}' "$url/${app:0:12}/exec")
echo "$r" > "$work/exec-nocap.json"
check "without SYS_ADMIN: 403 permission_denied" test "$(echo "$r" | json "d['error']['code']")" = permission_denied
check "and the message names CAP_SYS_ADMIN" sh -c "grep -q CAP_SYS_ADMIN '$work/exec-nocap.json'"
port2=$(free_port); url2=http://127.0.0.1:$port2
podman run -d --pod "pod-$TAG" --name "sc2-$TAG" --cap-add SYS_PTRACE,SYS_ADMIN -e SIDECAR_USER=admin -e SIDECAR_PASSWORD="$PASSWORD" \
  "$IMAGE" serve --listen "127.0.0.1:$port2" >/dev/null
check "a sidecar with SYS_ADMIN serves" wait_http "$url2"
r=$(curl -s --max-time 20 --digest --user "admin:$PASSWORD" -X POST \
  -d '{"argv": ["busybox", "sh", "-c", "busybox hostname; ls /bin; echo $APPVAR >&2; exit 3"]}' "$url2/${app:0:12}/exec")
echo "$r" > "$work/exec-cap.json"
check "with SYS_ADMIN: exec runs in the app's root (its /bin holds only busybox)" \
  test "$(echo "$r" | json "(d['stdout'], d['exit_code'])")" = "('pod-$TAG\nbusybox\n', 3)"
check "with the app's environment (podman run -e)" test "$(echo "$r" | json "d['stderr']")" = "from-podman"
check "and a note that its cgroups were out of reach" sh -c "grep -q 'cgroup' '$work/exec-cap.json'"
podman rm -f -t 0 "sc2-$TAG" >/dev/null 2>&1

echo "== a sidecar in a private cgroup namespace, on the host's PID namespace"
cid="$work/cgns.cid"
podman run --rm --pid host --cgroupns private --cidfile "$cid" --cap-add SYS_PTRACE "$IMAGE" list --json > "$work/cgns.json" 2>"$work/cgns.err"
check "it lists the app by podman's ID" test "$(json "[c['runtime'] for c in d if c['id']=='$app']" < "$work/cgns.json")" = "['podman']"
check "with the pod's ID" test "$(json "[c['pod_id'] for c in d if c['id']=='$app']" < "$work/cgns.json")" = "['$pod']"
check "and leaves its own container out" test "$(json "len([c for c in d if c['id']=='$(cat "$cid")'])" < "$work/cgns.json")" = 0
check "and the node's processes are the host" test "$(json "len([c for c in d if c['id']=='host'])" < "$work/cgns.json")" = 1

echo "== an app with children in a pod sharing a PID namespace (seen from inside it)"
# (podman's runtime processes take the PIDs after the infra's, so the app is not PID 2 here:
# tests/discovery.rs makes that layout with unshare.)
podman pod create --name "pod2-$TAG" --share pid >/dev/null
podman run -d --pod "pod2-$TAG" --name "kids-$TAG" "$APPIMG" /bin/busybox sh -c \
  '/bin/busybox sleep 100001 & /bin/busybox sleep 100002 & wait' >/dev/null
kids=$(podman inspect "kids-$TAG" --format '{{.Id}}')
sleep 0.5
podman run --rm --pod "pod2-$TAG" --cap-add SYS_PTRACE "$IMAGE" list --json > "$work/pod2.json" 2>&1
check "the app is listed with its init and two children" \
  test "$(json "[len(c['pids']) for c in d if c['id']=='$kids']" < "$work/pod2.json")" = "[3]"
check "and no host entry (no kernel thread or node process is seen from the pod)" \
  test "$(json "len([c for c in d if c['id']=='host'])" < "$work/pod2.json")" = 0

echo "== a user-namespaced container (--uidmap)"
podman run -d --name "userns-$TAG" --uidmap 0:300000:65536 --gidmap 0:300000:65536 "$APPIMG" >/dev/null
uns=$(podman inspect "userns-$TAG" --format '{{.Id}}')
"$BIN" ps "${uns:0:12}" --json > "$work/userns.json" 2>&1
check "its root is uid 300000 on the node, 0 inside, named root" \
  test "$(json "[(p['uid'], p['ns_uid'], p['user']) for p in d]" < "$work/userns.json")" = "[(300000, 0, 'root')]"
check "exec runs as its init's user, root inside" test "$("$BIN" exec "${uns:0:12}" -- busybox id -u)" = 0

echo "== a shell for the shell-less app, from the :toolkit image"
apppid=$(podman inspect "app-$TAG" --format '{{.State.Pid}}')
before=$(cat "/proc/$apppid/mountinfo")
diff_before=$(podman diff "app-$TAG")
check "the app has no sh of its own" sh -c "'$BIN' exec ${app:0:12} -- sh -c true 2>/dev/null; test \$? = 127"
out=$(podman run --rm --pod "pod-$TAG" --name "tk-$TAG" --cap-add SYS_PTRACE,SYS_ADMIN,SYS_CHROOT \
  "$TKIMAGE" exec --tools /toolkit "${app:0:12}" -- sh -c 'ls /; id; echo $PATH; hostname' 2>&1)
echo "$out" > "$work/toolkit.txt"
check "sh -c 'ls /; id' runs in the app's root ($(echo "$out" | head -5 | tr '\n' ' '))" \
  sh -c "grep -qx bin '$work/toolkit.txt' && grep -qx proc '$work/toolkit.txt' && grep -q '^uid=0' '$work/toolkit.txt'"
check "with the toolkit first on PATH" grep -q '^/.sidecar/toolkit/bin:' "$work/toolkit.txt"
check "in the pod's UTS namespace" grep -qx "pod-$TAG" "$work/toolkit.txt"
check "the app's mountinfo is unchanged" test "$(cat "/proc/$apppid/mountinfo")" = "$before"
check "and nothing was written into its root (podman diff)" test "$(podman diff "app-$TAG")" = "$diff_before"

start=$(date +%s%N)
podman stop -t 10 "sc-$TAG" >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "podman stop of the sidecar takes ${ms} ms" test "$ms" -lt 5000
check "exit status 0" test "$(podman inspect "sc-$TAG" --format '{{.State.ExitCode}}')" = 0

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
