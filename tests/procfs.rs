//! Every reader of `/proc` gets the whole file, however many reads it takes: each file here
//! is made larger than a page by a real process (a big environment and command line, many
//! supplementary groups, hundreds of mounts, a deep cgroup), and what the sidecar reads is
//! compared with what `cat` reads.

mod common;

use std::process::{Command, Stdio};

use common::*;

const PAGE: usize = 4096;

/// `cat /proc/<pid>/<file>`: the reference, read to the end by coreutils.
fn cat(pid: u32, file: &str) -> Vec<u8> {
    let out = Command::new("cat")
        .arg(format!("/proc/{pid}/{file}"))
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn environ_and_cmdline_larger_than_a_page() {
    let big = "v".repeat(5 * PAGE);
    let args: Vec<String> = (0..2000).map(|i| format!("argument-{i}")).collect();
    let child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg("exec sleep 600")
            .args(&args)
            .env("SIDECAR_BIG", &big)
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // `sh -c` keeps its arguments until exec replaces it: read while it is still sh, or
    // read sleep's; both are compared with cat at the same moment, so wait for the exec.
    wait_until("exec", std::time::Duration::from_secs(5), || {
        sidecar::procfs::read(pid, "comm").is_ok_and(|c| c.trim() == "sleep")
    });
    let env = sidecar::procfs::environ(pid).unwrap();
    assert!(env.contains(&format!("SIDECAR_BIG={big}")));
    let raw = cat(pid, "environ");
    assert!(raw.len() > 5 * PAGE);
    assert!(sidecar::procfs::read_bytes(&format!("/proc/{pid}/environ")).unwrap() == raw);
    assert_eq!(env.join("\0").len() + 1, raw.len());

    let mut sh = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg("read x")
            .args(&args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let sh_pid = sh.0.id();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let argv = sidecar::procfs::argv(sh_pid).unwrap();
    assert!(cat(sh_pid, "cmdline").len() > 4 * PAGE);
    assert_eq!(argv.len(), 3 + args.len(), "{:?}", &argv[..3]);
    assert_eq!(argv.last(), args.last());
    drop(sh.0.stdin.take());
}

#[test]
fn status_with_thousands_of_groups() {
    if !privileged(&["setpriv"]) {
        return;
    }
    let groups: Vec<String> = (1..=3000).map(|g| (100_000 + g).to_string()).collect();
    let child = KillOnDrop(
        Command::new("setpriv")
            .arg(format!("--groups={}", groups.join(",")))
            .args(["sleep", "600"])
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    wait_until("setpriv's exec", std::time::Duration::from_secs(5), || {
        sidecar::procfs::read(pid, "comm").is_ok_and(|c| c.trim() == "sleep")
    });
    let status = sidecar::procfs::read(pid, "status").unwrap();
    assert!(status.len() > 4 * PAGE);
    let fields = sidecar::procfs::parse_status(&status);
    let got: Vec<&str> = fields.get("Groups").unwrap().split_whitespace().collect();
    assert_eq!(got, groups);
    // The lines after Groups (NSpid, capabilities, ...) are there too.
    assert!(sidecar::procfs::status_field(&status, "voluntary_ctxt_switches").is_some());
}

#[test]
fn mountinfo_with_hundreds_of_mounts() {
    if !privileged(&["unshare", "mount"]) {
        return;
    }
    let dir = TempDir::new("mounts");
    let d = dir.path().to_str().unwrap();
    // In a private mount namespace: 300 tmpfs stacked on one directory, nothing on the host.
    let mut child = KillOnDrop(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "for i in $(seq 300); do mount -t tmpfs -o size=4k sidecar-test-$i {d} || exit 1; done; echo ready; exec sleep 600"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.0.id();
    let ours = sidecar::procfs::with_bytes(pid, "mountinfo", <[u8]>::to_vec).unwrap();
    let theirs = cat(pid, "mountinfo");
    assert!(theirs.len() > 4 * PAGE);
    assert!(
        ours == theirs,
        "the sidecar read {} bytes of mountinfo, cat {}",
        ours.len(),
        theirs.len()
    );
    let text = sidecar::procfs::read(pid, "mountinfo").unwrap();
    assert_eq!(text.matches("sidecar-test-").count(), 300);
}

#[test]
fn cgroup_with_a_path_longer_than_a_page() {
    if !privileged(&["sleep"]) {
        return;
    }
    // Two hierarchies with a path of 3,700 bytes each (PATH_MAX is 4096).
    let id = &random_id()[..12];
    let mut dirs = Vec::new();
    let child = KillOnDrop(Command::new("sleep").arg("600").spawn().unwrap());
    let pid = child.0.id();
    for h in ["pids", "systemd"] {
        let mut p = std::path::PathBuf::from(format!("/sys/fs/cgroup/{h}/sidecar-test-{id}"));
        dirs.push(p.clone());
        for i in 0..17 {
            p = p.join(format!("{i:02}-{}", "c".repeat(200)));
            dirs.push(p.clone());
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("cgroup.procs"), pid.to_string()).unwrap();
    }
    let ours = sidecar::procfs::read(pid, "cgroup").unwrap();
    let theirs = String::from_utf8(cat(pid, "cgroup")).unwrap();
    assert!(theirs.len() > PAGE);
    assert!(
        ours == theirs,
        "the sidecar read {} bytes of cgroup, cat {}",
        ours.len(),
        theirs.len()
    );
    let line = sidecar::procfs::parse_cgroup(&ours)
        .into_iter()
        .find(|l| l.controllers.contains("pids"))
        .unwrap();
    assert!(line.path.ends_with(&format!("16-{}", "c".repeat(200))));
    drop(child);
    std::thread::sleep(std::time::Duration::from_millis(100));
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}
