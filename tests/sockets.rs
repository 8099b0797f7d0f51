//! `GET /<c>/sockets` and `sidecar sockets` on a container listening on a TCP and a UDP port.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn a_listening_container_shows_its_sockets_with_their_owners() {
    if !privileged(&["unshare", "nsenter", "python3", "curl", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("nc -l -p 18081 & exec sleep 100000"));
    wait_until("nc", Duration::from_secs(5), || !c.find("nc -l").is_empty());
    let nc = c.find("nc -l")[0];
    // busybox has no UDP server: a python one in the container's network namespace, moved
    // into its cgroup so that it is one of the container's processes.
    let mut udp = KillOnDrop(
        Command::new("nsenter")
            .args(["-t", &c.init.to_string(), "-n", "--", "python3", "-c"])
            .arg("import socket,time; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('::', 15353)); print('ready', flush=True); time.sleep(120)")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(udp.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    c.adopt(udp.0.id());

    let server = Server::start(&[]);
    let list = server.json(&format!("/{}/sockets", c.id));
    let find = |proto: &str, local: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["protocol"] == proto && s["local"] == local)
            .cloned()
            .unwrap_or_else(|| panic!("no {proto} {local} in {list}"))
    };
    let tcp = find("tcp6", "[::]:18081"); // busybox nc listens on IPv6 (dual stack)
    assert_eq!(tcp["state"], "LISTEN");
    assert_eq!(
        tcp["processes"],
        serde_json::json!([{"pid": nc, "comm": "nc"}])
    );
    let u = find("udp6", "[::]:15353");
    assert_eq!(u["state"], "UNCONN");
    assert_eq!(u["processes"][0]["pid"], udp.0.id());
    // The host's sockets are not the container's.
    let host = server.json("/host/sockets");
    assert!(!host
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["local"] == "[::]:18081"));
    assert!(server.json(&format!("/{}", c.id))["resources"]
        .as_array()
        .unwrap()
        .contains(&Value::from("sockets")));

    let out = Command::new(SIDECAR)
        .args(["sockets", &c.id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[::]:18081") && text.contains(&format!("{nc}/nc")),
        "{text}"
    );
}

/// A python process in the container's network namespace holding the sockets `script`
/// makes (it prints `ready` when they exist), counted as one of the container's processes.
fn socket_holder(c: &FakeContainer, script: &str, args: &[&str]) -> KillOnDrop {
    let mut p = KillOnDrop(
        Command::new("nsenter")
            .args([
                "-t",
                &c.init.to_string(),
                "-n",
                "--",
                "python3",
                "-c",
                script,
            ])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(p.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "the socket holder did not start");
    c.adopt(p.0.id());
    p
}

const MANY_SOCKETS: &str = r#"
import os, socket, sys, time
d = sys.argv[1]
keep = []
def tcp(fam, host, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port)); s.listen(64); keep.append(s); return s
first = tcp(socket.AF_INET, '127.0.0.1', 20000)
for i in range(1, 300): tcp(socket.AF_INET, '127.0.0.1', 20000 + i)
for i in range(150): tcp(socket.AF_INET6, '::1', 20000 + i)
for i in range(60):
    c = socket.create_connection(('127.0.0.1', 20000)); a, _ = first.accept(); keep += [c, a]
for i in range(120):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 30000 + i)); keep.append(s)
for i in range(80):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('::1', 30000 + i)); keep.append(s)
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind('\0sidecar-many-%d' % i); s.listen(8); keep.append(s)
for i in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(os.path.join(d, 's%d' % i)); s.listen(8); keep.append(s)
for i in range(50):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('\0sidecar-dgram-%d' % i); keep.append(s)
for i in range(40): keep += socket.socketpair()
print('ready', flush=True)
time.sleep(600)
"#;

/// What `ss -tuaxnH` shows, one entry per socket: (netid, state, local, unix inode or "").
fn ss_entries(pid: u32) -> Vec<(String, String, String, String)> {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ss", "-tuaxnH"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ss failed");
    let mut v: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let inode = if f[0].starts_with("u_") { f[5] } else { "" };
            (f[0].into(), f[1].into(), f[4].into(), inode.to_string())
        })
        .collect();
    v.sort();
    v
}

/// The same entries from `sidecar sockets --json`.
fn sidecar_entries(list: &Value) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let proto = s["protocol"].as_str().unwrap();
            let local = s["local"].as_str().unwrap_or("*").to_string();
            match proto {
                "unix" => (
                    match s["kind"].as_str().unwrap() {
                        "stream" => "u_str",
                        "dgram" => "u_dgr",
                        _ => "u_seq",
                    }
                    .to_string(),
                    s["state"].as_str().unwrap().to_string(),
                    local,
                    s["inode"].to_string(),
                ),
                _ => (
                    proto.trim_end_matches('6').to_string(),
                    s["state"].as_str().unwrap().to_string(),
                    local,
                    String::new(),
                ),
            }
        })
        .collect();
    v.sort();
    v
}

/// Fault: a short read taken for the end of `/proc/<pid>/net/*` lost every socket past the
/// first page. Hundreds of real sockets of every kind, compared one by one with `ss`.
#[test]
fn hundreds_of_sockets_are_all_listed_as_ss_lists_them() {
    if !privileged(&["unshare", "nsenter", "python3", "ss", "ip", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let up = Command::new("nsenter")
        .args([
            "-t",
            &c.init.to_string(),
            "-n",
            "ip",
            "link",
            "set",
            "lo",
            "up",
        ])
        .status()
        .unwrap();
    assert!(up.success());
    let dir = TempDir::new("many-sockets");
    let holder = socket_holder(&c, MANY_SOCKETS, &[dir.path().to_str().unwrap()]);

    let out = Command::new(SIDECAR)
        .args(["sockets", &c.id, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = sidecar_entries(&list);
    let theirs = ss_entries(c.init);
    let count = |v: &[(String, String, String, String)], netid: &str| {
        v.iter().filter(|e| e.0 == netid).count()
    };
    // Each table is many pages long.
    assert_eq!(count(&theirs, "tcp"), 300 + 150 + 120);
    assert_eq!(count(&theirs, "udp"), 200);
    assert!(count(&theirs, "u_str") >= 300 + 80);
    assert_eq!(ours, theirs, "sidecar sockets and ss differ");
    // Every one of them is the python process's.
    let pid = holder.0.id();
    let held = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["processes"][0]["pid"] == pid)
        .count();
    assert_eq!(held, ours.len());
}

const ODD_NAMES: &str = r#"
import os, socket, sys, time
d = os.fsencode(sys.argv[1])
keep = []
for name in [b'/two\nlines', b'/   leading blanks', b'/caf\xe9.sock']:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(d + name); s.listen(1); keep.append(s)
for name in [b'\0 abstract with\nnewline', b'\0  two leading blanks']:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(name); keep.append(s)
print('ready', flush=True)
time.sleep(600)
"#;

/// Fault: unix socket names with a newline or leading blanks were cut or trimmed. `ss`
/// shows them exactly; so must we (and bytes that are not UTF-8, percent-encoded).
#[test]
fn unix_socket_names_are_kept_exactly() {
    if !privileged(&["unshare", "nsenter", "python3", "/bin/busybox"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let dir = TempDir::new("odd-sockets");
    let d = dir.path().to_str().unwrap().to_string();
    let _holder = socket_holder(&c, ODD_NAMES, &[&d]);
    let server = Server::start(&[]);
    let list = server.json(&format!("/{}/sockets", c.id));
    let unix: Vec<(String, Option<String>, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["protocol"] == "unix")
        .map(|s| {
            (
                s["local"].as_str().unwrap_or("").to_string(),
                s["local_bytes"].as_str().map(String::from),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |local: &str, bytes: Option<&str>, state: &str| {
        assert!(
            unix.iter()
                .any(|(l, b, s)| l == local && b.as_deref() == bytes && s == state),
            "no {local:?} ({state}) in {unix:?}"
        );
    };
    has(&format!("{d}/two\nlines"), None, "LISTEN");
    has(&format!("{d}/   leading blanks"), None, "LISTEN");
    has(
        &format!("{d}/caf\u{FFFD}.sock"),
        Some(&format!(
            "{}/caf%E9.sock",
            sidecar::files::percent_encode(d.as_bytes())
        )),
        "LISTEN",
    );
    has("@ abstract with\nnewline", None, "UNCONN");
    has("@  two leading blanks", None, "UNCONN");
    assert_eq!(unix.len(), 5, "{unix:?}");
}
