//! Finding containers as runtimes really lay them out, and entering the right process: real
//! cgroups named exactly as each runtime names them (every v1 hierarchy the fake containers
//! use and the unified one where this machine has it), a sidecar in a private cgroup
//! namespace (`unshare --cgroup`), PID and user namespaces made with `unshare`, kernel
//! threads, chrooted workers, containers that fork in a loop, a zombie init, and names that
//! hold control characters.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOOLS: [&str; 5] = ["unshare", "nsenter", "setpriv", "python3", "/bin/busybox"];

/// Runs `sidecar ARGS`; returns (exit status, stdout, stderr).
fn sidecar(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(SIDECAR)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn list() -> Vec<Value> {
    let (code, out, err) = sidecar(&["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn entry<'a>(all: &'a [Value], id: &str) -> &'a Value {
    all.iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("container {id} not listed: {all:?}"))
}

/// A 32-hex static pod hash (the kubelet's config hash), unique per call.
fn pod_hash() -> String {
    random_id()[..32].to_string()
}

#[test]
fn runtime_layouts_are_recognised_with_their_pods() {
    if !privileged(&TOOLS) {
        return;
    }
    let hash = pod_hash();
    let uuid = {
        let r = random_id();
        format!(
            "{}-{}-{}-{}-{}",
            &r[..8],
            &r[8..12],
            &r[12..16],
            &r[16..20],
            &r[20..32]
        )
    };
    // (cgroup path below each hierarchy, runtime, pod ID) for one container each.
    let layouts = |id: &str| -> Vec<(String, &'static str, Option<String>)> {
        vec![
            // A static pod with the cgroupfs driver: the pod UID is the manifest's hash.
            (
                format!("kubepods/burstable/pod{hash}/{id}"),
                "unknown",
                Some(hash.clone()),
            ),
            // The same with the systemd driver and containerd.
            (
                format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/cri-containerd-{id}.scope"),
                "containerd",
                Some(hash.clone()),
            ),
            // containerd's own form of a systemd cgroup path.
            (
                format!(
                    "kubepods-besteffort-pod{}.slice:cri-containerd:{id}",
                    uuid.replace('-', "_")
                ),
                "containerd",
                Some(uuid.clone()),
            ),
            // podman --cgroups=split: the container below the caller's cgroup.
            (
                format!("user.slice/sctest-{}.scope/libpod-payload-{id}", &hash[..8]),
                "podman",
                None,
            ),
        ]
    };
    let mut running = Vec::new();
    let mut want = Vec::new();
    for i in 0..4 {
        let mut spec = Spec::podman("exec sleep 100100");
        let (path, runtime, pod) = layouts(&spec.id).swap_remove(i);
        spec.cgroup = Some(path);
        want.push((spec.id.clone(), runtime, pod));
        running.push(FakeContainer::start(spec));
    }
    let all = list();
    for ((id, runtime, pod), c) in want.iter().zip(&running) {
        let e = entry(&all, id);
        assert_eq!(e["runtime"], *runtime, "{e}");
        assert_eq!(e["pod_id"].as_str(), pod.as_deref(), "{e}");
        assert_eq!(e["hostname"], c.hostname, "{e}");
        assert!(
            e["pids"].as_array().unwrap().contains(&c.init.into()),
            "{e}"
        );
        // Addressed by a prefix, it is entered through its init.
        let (code, out, err) = sidecar(&["exec", &id[..12], "--", "cat", "/etc/hostname"]);
        assert_eq!((code, out.trim()), (0, c.hostname.as_str()), "{err}");
    }
}

/// Runs `sidecar ARGS` in cgroups `rel` (every hierarchy) and a private cgroup namespace
/// rooted there, as a runtime starts a containerised sidecar; returns its exit status,
/// stdout, stderr and PID.
fn in_private_cgroupns(rel: &str, args: &[&str]) -> (i32, String, String, u32) {
    let dirs = cgroup_dirs(rel);
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let joins: Vec<String> = dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs", d.display()))
        .collect();
    // `exec` all the way: the sidecar keeps the shell's PID.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{}; exec unshare --cgroup \"$0\" \"$@\"",
            joins.join("; ")
        ))
        .arg(SIDECAR)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    for d in &dirs {
        remove_cgroup(d);
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        pid,
    )
}

#[test]
fn a_sidecar_in_a_private_cgroup_namespace_sees_its_neighbours_not_itself() {
    if !privileged(&TOOLS) {
        return;
    }
    // docker with cgroupfs (`/docker/<id>`: a neighbour is `/../<id>`, its runtime hidden)
    // and with systemd (`/system.slice/docker-<id>.scope`).
    for (layout, runtime) in [
        ("docker/{}", "unknown"),
        ("system.slice/docker-{}.scope", "docker"),
    ] {
        let mut spec = Spec::podman("exec sleep 100110");
        spec.cgroup = Some(layout.replace("{}", &spec.id));
        let neighbour = FakeContainer::start(spec);
        let me = random_id();
        let (code, out, err, pid) =
            in_private_cgroupns(&layout.replace("{}", &me), &["list", "--json"]);
        assert_eq!(code, 0, "{err}");
        let all: Vec<Value> = serde_json::from_str(&out).unwrap();
        let e = entry(&all, &neighbour.id);
        assert_eq!(e["runtime"], runtime, "{layout}: {e}");
        assert_eq!(e["hostname"], neighbour.hostname);
        // Its own container is left out: not listed as `host`, nor under any other name.
        for c in &all {
            assert!(
                !c["pids"].as_array().unwrap().contains(&pid.into()),
                "{layout}: the sidecar's own container listed as {}",
                c["id"]
            );
        }
        // The node's processes (this test's among them) are still the host.
        let host = entry(&all, "host");
        assert!(
            host["pids"]
                .as_array()
                .unwrap()
                .contains(&std::process::id().into()),
            "{host}"
        );
        // From there it enters the neighbour (the neighbour's cgroups are out of its sight).
        let (code, out, err, _) = in_private_cgroupns(
            &layout.replace("{}", &me),
            &["exec", &neighbour.id[..12], "--", "cat", "/etc/hostname"],
        );
        assert_eq!(
            (code, out.trim()),
            (0, neighbour.hostname.as_str()),
            "{err}"
        );
    }
}

#[test]
fn own_container_in_a_private_cgroup_namespace_is_left_out() {
    if !privileged(&TOOLS) {
        return;
    }
    // Its own processes (a child in its subtree) are not listed under any name.
    let me = random_id();
    let rel = format!("system.slice/docker-{me}.scope");
    let dirs = cgroup_dirs(&rel);
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let joins: Vec<String> = dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs", d.display()))
        .collect();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{}; exec unshare --cgroup sh -c 'sleep 100120 & \"$0\" list --json; kill $!; wait' \"$0\"",
            joins.join("; ")
        ))
        .arg(SIDECAR)
        .output()
        .unwrap();
    for d in &dirs {
        remove_cgroup(d);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    for c in &all {
        for p in c["pids"].as_array().unwrap() {
            let argv = sidecar::procfs::argv(p.as_u64().unwrap() as u32).unwrap_or_default();
            assert!(
                !argv.join(" ").contains("sleep 100120"),
                "own container's process listed in {}",
                c["id"]
            );
        }
    }
}

#[test]
fn pid_2_of_a_pod_is_no_kernel_thread() {
    if !privileged(&TOOLS) {
        return;
    }
    // A pod sharing one PID namespace: the infra container is PID 1, the app PID 2, and the
    // app's children have PPID 2 as seen from inside.
    let infra_id = random_id();
    let app_id = random_id();
    let pod = KillOnDrop(
        Command::new("unshare")
            .args(["--pid", "--fork", "--mount", "--mount-proc", "--kill-child"])
            .args(["/bin/busybox", "sh", "-c"])
            .arg("/bin/busybox sh -c '/bin/busybox sleep 100201 & /bin/busybox sleep 100202 & wait' & exec /bin/busybox sleep 100200")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut infra = 0;
    wait_until("the pod to start", Duration::from_secs(10), || {
        infra = children(pod.0.id()).first().copied().unwrap_or(0);
        infra != 0 && children(infra).len() == 1 && children(children(infra)[0]).len() == 2
    });
    let app = children(infra)[0];
    let mut app_pids = vec![app];
    app_pids.extend(children(app));
    let infra_dirs = cgroup_dirs(&format!("libpod_parent/libpod-{infra_id}"));
    let app_dirs = cgroup_dirs(&format!("libpod_parent/libpod-{app_id}"));
    for (dirs, pids) in [(&infra_dirs, vec![infra]), (&app_dirs, app_pids.clone())] {
        for d in dirs {
            std::fs::create_dir_all(d).unwrap();
            for p in &pids {
                std::fs::write(d.join("cgroup.procs"), p.to_string()).unwrap();
            }
        }
    }
    // The sidecar in the pod's PID namespace, as a sidecar container of the pod.
    let out = Command::new("nsenter")
        .args([
            "-t",
            &infra.to_string(),
            "--pid",
            "--mount",
            SIDECAR,
            "list",
            "--json",
        ])
        .output()
        .unwrap();
    drop(pod);
    for d in infra_dirs.iter().chain(&app_dirs) {
        let _ = std::fs::write(d.join("cgroup.procs"), "");
        remove_cgroup(d);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let all: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{text} {}", String::from_utf8_lossy(&out.stderr)));
    let app = entry(&all, &app_id);
    assert_eq!(app["pids"], serde_json::json!([2, 3, 4]), "{app}");
    assert_eq!(entry(&all, &infra_id)["pids"], serde_json::json!([1]));
    assert!(all
        .iter()
        .all(|c| c["id"] != "host" || !c["pids"].as_array().unwrap().contains(&3.into())));
}

#[test]
fn user_names_map_through_the_containers_uid_map() {
    if !privileged(&TOOLS) {
        return;
    }
    // Rootless podman's layout: the container's root is host uid 200000 + a random offset.
    let base = 200_000 + (u32::from_str_radix(&random_id()[..4], 16).unwrap() % 100) * 65536;
    let mut spec = Spec::podman(&format!(
        "su {CONTAINER_USER} -s /bin/sh -c 'exec sleep 100301' & exec sleep 100300"
    ));
    spec.userns = Some(base);
    let c = FakeContainer::start(spec);
    wait_until("the user's process", Duration::from_secs(10), || {
        !c.find("sleep 100301").is_empty()
    });
    let (code, out, err) = sidecar(&["ps", &c.id[..12], "--json"]);
    assert_eq!(code, 0, "{err}");
    let procs: Vec<Value> = serde_json::from_str(&out).unwrap();
    let by = |needle: &str| {
        procs
            .iter()
            .find(|p| p["cmdline"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {out}"))
    };
    let root = by("sleep 100300");
    assert_eq!(
        (&root["uid"], &root["ns_uid"], &root["user"]),
        (&base.into(), &0.into(), &"root".into()),
        "{root}"
    );
    let user = by("sleep 100301");
    assert_eq!(
        (&user["uid"], &user["ns_uid"], &user["user"]),
        (&(base + 1000).into(), &1000.into(), &CONTAINER_USER.into()),
        "{user}"
    );
    assert_eq!(entry(&list(), &c.id)["uid"], base);
    // exec runs as the init's user as its namespace sees it: root there.
    let (code, out, err) = sidecar(&["exec", &c.id[..12], "--", "id"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("uid=0(root) gid=0(root)"), "{out}");
    let (code, out, err) = sidecar(&[
        "exec",
        &c.id[..12],
        "--user",
        CONTAINER_USER,
        "--",
        "sh",
        "-c",
        "id -u; grep Uid /proc/self/status",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1000\n"), "{out}");
}

#[test]
fn exec_defaults_to_the_user_of_the_containers_init() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman(&format!(
        "exec su {CONTAINER_USER} -s /bin/sh -c 'exec sleep 100400'"
    )));
    wait_until("the init to switch user", Duration::from_secs(10), || {
        sidecar::procfs::read(c.init, "status").is_ok_and(|s| s.contains("Uid:\t1000"))
    });
    let short = &c.id[..12];
    let (code, out, err) = sidecar(&["exec", short, "--", "id"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("uid=1000({CONTAINER_USER}) gid=1000({CONTAINER_USER}) groups=10(wheel),1000({CONTAINER_USER})")
    );
    for root in ["0", "root"] {
        let (code, out, err) = sidecar(&["exec", short, "--user", root, "--", "id", "-u"]);
        assert_eq!((code, out.as_str()), (0, "0\n"), "{err}");
    }
}

#[test]
fn the_init_stands_for_the_container_not_the_lowest_pid() {
    if !privileged(&TOOLS) {
        return;
    }
    // A chrooted worker with a lower PID (and an older start) than the container's init,
    // in the container's cgroup: an sshd-style privilege-separated child.
    let jail = TempDir::new("jail");
    std::fs::create_dir_all(jail.path().join("bin")).unwrap();
    std::fs::create_dir_all(jail.path().join("etc")).unwrap();
    std::fs::copy("/bin/busybox", jail.path().join("bin/busybox")).unwrap();
    std::fs::write(jail.path().join("etc/hostname"), "the-jail\n").unwrap();
    let worker = KillOnDrop(
        Command::new("chroot")
            .arg(jail.path())
            .args(["/bin/busybox", "sleep", "100500"])
            .spawn()
            .unwrap(),
    );
    let mut c = FakeContainer::start(Spec::podman("exec sleep 100501"));
    // PIDs may wrap in between on a busy machine (pid_max 32768): try again then.
    for _ in 0..5 {
        if worker.0.id() < c.init {
            break;
        }
        c = FakeContainer::start(Spec::podman("exec sleep 100501"));
    }
    assert!(worker.0.id() < c.init);
    c.adopt(worker.0.id());
    let all = list();
    let e = entry(&all, &c.id);
    assert_eq!(
        e["pid"],
        worker.0.id(),
        "the lowest PID is still reported as pid"
    );
    assert_eq!(e["hostname"], c.hostname, "{e}");
    let short = &c.id[..12];
    let (code, out, err) = sidecar(&["exec", short, "--", "cat", "/etc/hostname"]);
    assert_eq!((code, out.trim()), (0, c.hostname.as_str()), "{err}");
    let (code, out, err) = sidecar(&["cp", &format!("{short}:/etc/hostname"), "/dev/stdout"]);
    assert_eq!((code, out.trim()), (0, c.hostname.as_str()), "{err}");
}

#[test]
fn processes_that_exit_mid_request_are_skipped() {
    if !privileged(&TOOLS) {
        return;
    }
    // A container that forks in a loop, every child short-lived.
    let c = FakeContainer::start(Spec::podman("while :; do sleep 0.02 & sleep 0.01; done"));
    let short = c.id[..12].to_string();
    let mut failures = Vec::new();
    for i in 0..150 {
        let runs: [&[&str]; 3] = [
            &["exec", &short, "--", "true"],
            &["sockets", &short],
            &["cp", &format!("{short}:/etc/hostname"), "/dev/null"],
        ];
        let (code, _, err) = sidecar(runs[i % 3]);
        if code != 0 {
            failures.push(err);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 150 failed: {failures:?}",
        failures.len()
    );

    // The helper: the process it was given has exited; another of the container stands in.
    let gone = Command::new("true").spawn().unwrap().id();
    std::thread::sleep(Duration::from_millis(100));
    let start = sidecar::procfs::stat(c.init).unwrap().starttime;
    let req = serde_json::json!({
        "container": c.id, "pid": gone, "starttime": 1,
        "stand_ins": [[gone, 1], [c.init, start]],
        "argv": ["cat", "/etc/hostname"],
    });
    let v = helper(&req);
    assert_eq!(v["ok"]["stdout"], format!("{}\n", c.hostname), "{v}");
    // None left: the container has exited.
    let req = serde_json::json!({
        "container": c.id, "pid": gone, "starttime": 1, "stand_ins": [[gone, 1]],
        "argv": ["true"],
    });
    let v = helper(&req);
    assert_eq!(v["error"]["kind"], "gone", "{v}");
}

/// Runs the server's helper (`sidecar enter`) with `req` as it is sent: its JSON reply.
fn helper(req: &Value) -> Value {
    let mut helper = Command::new(SIDECAR)
        .arg("enter")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut helper.stdin.take().unwrap(),
        req.to_string().as_bytes(),
    )
    .unwrap();
    serde_json::from_slice(&helper.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn after_pids_wrap_short_lived_processes_do_not_stand_for_the_container() {
    if !privileged(&TOOLS) {
        return;
    }
    // In a PID namespace of the test's own (its `ns_last_pid` is ours to set, nobody
    // else's), the container's long-lived process gets PID 500, then PIDs "wrap": its
    // short-lived processes, forked in a loop, get PIDs from 11 up. The sidecar runs in the
    // same namespace, 150 times: exec, sockets and cp must never find the container gone.
    let id = random_id();
    let dirs = cgroup_dirs(&format!("libpod_parent/libpod-{id}"));
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let join: String = dirs
        .iter()
        .map(|d| format!("echo $$ > {}/cgroup.procs; ", d.display()))
        .collect();
    let short = &id[..12];
    let script = format!(
        r#"echo 499 > /proc/sys/kernel/ns_last_pid
sh -c '{join} exec sleep 100970' &
main=$!
sleep 0.2
( while :; do echo 10 > /proc/sys/kernel/ns_last_pid; sh -c '{join} exec sleep 0.05' & sleep 0.01; done ) &
spawner=$!
sleep 0.5
fails=0
i=0
while [ $i -lt 150 ]; do
  case $((i % 3)) in
    0) "$0" exec {short} -- true ;;
    1) "$0" sockets {short} > /dev/null ;;
    2) "$0" cp {short}:/etc/hostname /dev/null ;;
  esac || fails=$((fails + 1))
  i=$((i + 1))
done
echo "main=$main fails=$fails"
kill $spawner $main"#
    );
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
        ])
        .arg(&script)
        .arg(SIDECAR)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    for d in &dirs {
        remove_cgroup(d);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("main=500 "), "{text} {err}");
    assert!(text.contains("fails=0"), "{text} {err}");
}

#[test]
fn a_zombie_init_means_the_container_has_exited() {
    if !privileged(&TOOLS) {
        return;
    }
    // PID 1 of a new PID namespace exits and its parent (a `sleep`) never reaps it.
    let id = random_id();
    let dirs = cgroup_dirs(&format!("libpod_parent/libpod-{id}"));
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let parent = KillOnDrop(
        Command::new("unshare")
            .args(["--pid", "--mount", "/bin/busybox", "sh", "-c"])
            .arg(format!(
                "/bin/busybox sh -c 'until /bin/busybox grep -q {id} /proc/self/cgroup; do /bin/busybox sleep 0.02; done' & exec /bin/busybox sleep 100600"
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut init = 0;
    wait_until("the init", Duration::from_secs(10), || {
        init = children(parent.0.id()).first().copied().unwrap_or(0);
        init != 0
    });
    for d in &dirs {
        std::fs::write(d.join("cgroup.procs"), init.to_string()).unwrap();
    }
    wait_until("the init to be a zombie", Duration::from_secs(10), || {
        sidecar::procfs::stat(init).is_ok_and(|s| s.state == 'Z')
    });
    let short = &id[..12];
    let (code, _, err) = sidecar(&["exec", short, "--", "true"]);
    let (cp_code, _, cp_err) = sidecar(&["cp", &format!("{short}:/etc/hostname"), "/dev/null"]);
    let (pid_code, _, pid_err) = sidecar(&["exec", &format!("pid:{init}"), "--", "true"]);
    drop(parent);
    for d in &dirs {
        remove_cgroup(d);
    }
    // Either it is still listed (the zombie is in its cgroup) and has exited, or it is
    // gone from the listing: never a missing capability or a missing file.
    for (code, err) in [(code, &err), (cp_code, &cp_err), (pid_code, &pid_err)] {
        assert_eq!(code, 125, "{err}");
        assert!(
            err.contains("has exited") || err.contains("no container matches"),
            "{err}"
        );
        assert!(
            !err.contains("CAP_") && !err.contains("No such file"),
            "{err}"
        );
    }
    assert!(err.contains("has exited"), "{err}");
    assert!(pid_err.contains("has exited"), "{pid_err}");
}

#[test]
fn control_characters_are_escaped_in_tables() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman(
        "sh -c 'sleep 100901; true' \"$(printf 'evil\\n1  0  root  R  0.00  0  forged\\033]0;title\\007')\" & exec sleep 100900",
    ));
    wait_until("the forger", Duration::from_secs(10), || {
        !c.find("sleep 100901").is_empty()
    });
    std::fs::write(c.root.path().join("etc/hostname"), "host\x1b[2Jname\nX\n").unwrap();
    let short = &c.id[..12];
    let (code, out, err) = sidecar(&["ps", short]);
    assert_eq!(code, 0, "{err}");
    let (_, json, _) = sidecar(&["ps", short, "--json"]);
    let procs: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(out.lines().count(), procs.len() + 1, "{out}");
    assert!(!out.bytes().any(|b| b == 0x1b || b == 0x07), "{out:?}");
    assert!(out.contains("evil\\n1  0  root"), "{out}");
    assert!(out.contains("\\x1b]0;title\\x07"), "{out}");
    let (code, out, _) = sidecar(&["list"]);
    assert_eq!(code, 0);
    let row = out
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("host\\x1b[2Jname\\nX"), "{row}");
    assert!(!out.bytes().any(|b| b == 0x1b), "{out:?}");
}
