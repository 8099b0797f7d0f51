//! The agent for real: containers made with `unshare`, a real server on loopback, real
//! `curl`. Needs root, `unshare`, `curl` and `/bin/busybox` (from busybox-static).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOOLS: [&str; 3] = ["unshare", "curl", "/bin/busybox"];

fn container_of<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed in {list}"))
}

#[test]
fn lists_containers_of_each_runtime_with_their_ids() {
    if !privileged(&TOOLS) {
        return;
    }
    let podman = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let mut docker_spec = Spec::podman("exec sleep 100000");
    docker_spec.prefix = "docker-";
    docker_spec.parent = "system.slice";
    let docker = FakeContainer::start(docker_spec);
    // No runtime ID at all: named by its (unique) hostname.
    let mut plain = Spec::podman("exec sleep 100000");
    plain.prefix = "";
    plain.hostname = format!("plain-{}", &plain.id[..8]);
    let plain = FakeContainer::start(plain);
    let server = Server::start(&[]);

    let list = server.json("/");
    let p = container_of(&list, &podman.id);
    assert_eq!(p["runtime"], "podman");
    assert_eq!(p["short_id"], &podman.id[..12]);
    assert_eq!(p["hostname"], podman.hostname.as_str());
    assert_eq!(p["infra"], false);
    let want: Vec<u32> = podman.pids();
    let got: Vec<u32> = p["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(got, want, "exactly the container's processes");
    assert_eq!(p["pid"], want[0]);
    assert_eq!(p["uid"], 0);
    for ns in ["mnt", "pid", "net", "uts", "ipc", "user", "cgroup"] {
        assert!(p["namespaces"][ns].is_u64(), "namespace {ns} in {p}");
    }
    assert_ne!(
        p["namespaces"]["mnt"],
        container_of(&list, "host")["namespaces"]["mnt"]
    );
    assert_eq!(container_of(&list, &docker.id)["runtime"], "docker");
    let pl = container_of(&list, &plain.hostname);
    assert_eq!(pl["runtime"], "unknown");
    assert_eq!(pl["pids"], serde_json::json!([plain.init]), "{pl}");
    // The host entry is there, and the server itself is not listed apart from it.
    assert_eq!(container_of(&list, "host")["runtime"], "host");

    // Every way of naming a container.
    for name in [
        podman.id.clone(),
        podman.id[..6].to_string(),
        podman.hostname.clone(),
        format!("pid:{}", want[0]),
    ] {
        let one = server.json(&format!("/{name}"));
        assert_eq!(one["id"], podman.id.as_str(), "by {name}");
        assert!(one["resources"]
            .as_array()
            .unwrap()
            .contains(&Value::from("process")));
    }
    let (status, body) = server.get("/nonexistent-container");
    assert_eq!(status, 404);
    assert!(body.contains("container_not_found"), "{body}");

    // sidecar list shows the same from the command line.
    let out = Command::new(SIDECAR)
        .args(["list", "--json"])
        .output()
        .unwrap();
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(container_of(&cli, &podman.id)["pids"], p["pids"]);
    let table = Command::new(SIDECAR).arg("list").output().unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(&podman.id[..12]));
}

#[test]
fn ambiguous_prefix_is_409_listing_the_candidates() {
    if !privileged(&TOOLS) {
        return;
    }
    let mut a = Spec::podman("exec sleep 100000");
    let mut b = Spec::podman("exec sleep 100000");
    let shared = &random_id()[..10];
    a.id = format!("{shared}{}", &a.id[10..]);
    b.id = format!("{shared}{}", &b.id[10..]);
    let (a, b) = (FakeContainer::start(a), FakeContainer::start(b));
    let server = Server::start(&[]);
    let (status, v) = server.request("GET", &format!("/{shared}"));
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "ambiguous_container");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&a.id) && msg.contains(&b.id), "{msg}");
    let out = Command::new(SIDECAR).args(["ps", shared]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches 2 containers"));
}

#[test]
fn processes_with_users_from_the_container_and_namespace_pids() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman(&format!(
        "su -s /bin/sh {CONTAINER_USER} -c 'exec sleep 100001' & exec sleep 100000"
    )));
    wait_until("the user's process", Duration::from_secs(5), || {
        !c.find("100001").is_empty()
    });
    let server = Server::start(&[]);
    let procs = server.json(&format!("/{}/process", c.id));
    let procs = procs.as_array().unwrap();
    let init = procs
        .iter()
        .find(|p| p["ns_pid"] == 1)
        .expect("the container's PID 1");
    assert_eq!(init["argv"], serde_json::json!(["sleep", "100000"]));
    assert_eq!(init["cmdline"], "sleep 100000");
    assert_eq!(init["user"], "root");
    let user = procs
        .iter()
        .find(|p| p["cmdline"] == "sleep 100001")
        .expect("the user's process");
    assert_eq!(user["uid"], 1000);
    assert_eq!(
        user["user"], CONTAINER_USER,
        "the name comes from the container's /etc/passwd"
    );
    assert_eq!(user["pid"], c.find("100001")[0]);
    for p in procs {
        for field in [
            "pid",
            "ppid",
            "state",
            "comm",
            "started",
            "cpu_seconds",
            "rss_bytes",
            "threads",
        ] {
            assert!(!p[field].is_null(), "{field} in {p}");
        }
        let started = p["started"].as_str().unwrap();
        assert!(started.len() == 20 && started.ends_with('Z'), "{started}");
    }
    // The alias, and one process in depth.
    assert_eq!(
        server
            .json(&format!("/{}/processes", c.id))
            .as_array()
            .unwrap()
            .len(),
        procs.len()
    );
    let pid = user["pid"].as_u64().unwrap();
    let d = server.json(&format!("/{}/process/{pid}", c.id));
    assert_eq!(d["user"], CONTAINER_USER);
    assert_eq!(
        d["status"]["Uid"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .next(),
        Some("1000")
    );
    assert!(d["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains(&c.id)));
    assert!(d["limits"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["name"] == "Max open files"));
    assert!(
        d["fds"].is_object() && d["environ"].is_array() && d["cwd"].is_string(),
        "{d}"
    );
    // sidecar ps, table and JSON.
    let out = Command::new(SIDECAR)
        .args(["ps", &c.id[..8]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(CONTAINER_USER) && text.contains("sleep 100001"),
        "{text}"
    );
}

#[test]
fn signals_reach_the_container_and_nothing_outside_it() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman(
        "sh -c 'trap \"echo got-usr1 > /tmp/usr1\" USR1; while :; do sleep 0.1; done' & sleep 100002 & exec sleep 100000",
    ));
    let other = FakeContainer::start(Spec::podman("exec sleep 100003"));
    let host_proc = KillOnDrop(
        Command::new("sleep")
            .arg("100004")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let server = Server::start(&[]);
    let trap = c.find("trap")[0];
    let victim = c.find("100002")[0];
    let foreign = other.find("100003")[0];

    // Another container's process, a host process, the server itself: 404, nothing sent.
    for pid in [foreign, host_proc.0.id(), server.child.id(), 999_999_999] {
        let (status, v) = server.request("DELETE", &format!("/{}/process/{pid}?signal=KILL", c.id));
        assert_eq!(status, 404, "{pid}: {v}");
        assert_eq!(v["error"]["code"], "process_not_found");
    }
    assert!(alive(foreign) && alive(host_proc.0.id()) && server.alive());
    let out = Command::new(SIDECAR)
        .args(["kill", &c.id, &foreign.to_string(), "-s", "KILL"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(alive(foreign));

    // A signal by name arrives (the shell's trap writes a file in the container).
    let (status, v) = server.request(
        "DELETE",
        &format!("/{}/process/{trap}?signal=SIGUSR1", c.id),
    );
    assert_eq!(
        (status, &v["status"], &v["signal"]),
        (200, &Value::from("signalled"), &Value::from("USR1")),
        "{v}"
    );
    wait_until("the trap's file", Duration::from_secs(5), || {
        c.root.path().join("tmp/usr1").exists()
    });
    assert!(alive(trap));
    // The default is TERM.
    let (status, v) = server.request("DELETE", &format!("/{}/process/{victim}", c.id));
    assert_eq!((status, v["signal"].as_str()), (200, Some("TERM")));
    wait_until("the victim's end", Duration::from_secs(5), || {
        !alive(victim)
    });
    // Bad signals, from the API and the command line.
    let (status, v) = server.request("DELETE", &format!("/{}/process/{trap}?signal=NOPE", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_signal"))
    );
    let out = Command::new(SIDECAR)
        .args(["kill", &c.id, &trap.to_string(), "-s", "9"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the trap's end", Duration::from_secs(5), || !alive(trap));
    // The audit log names the change.
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains(&format!("\"signalled\":{victim}")), "{log}");
}

#[test]
fn read_only_refuses_signals() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("sleep 100005 & exec sleep 100000"));
    let server = Server::start(&["--read-only"]);
    let pid = c.find("100005")[0];
    let (status, v) = server.request("DELETE", &format!("/{}/process/{pid}?signal=KILL", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("read_only"))
    );
    assert!(alive(pid));
    assert_eq!(server.get(&format!("/{}/process", c.id)).0, 200);
}

#[test]
fn digest_auth_with_curl() {
    if !privileged(&["curl"]) {
        return;
    }
    let server = Server::start(&[]);
    let url = format!("{}/", server.url);
    assert_eq!(curl(&["--digest", "--user", "admin:wrong", &url]).0, 401);
    assert_eq!(
        curl(&["--digest", "--user", "nobody:s3cret-Pass", &url]).0,
        401
    );
    assert_eq!(curl(&[&url]).0, 401);
    assert_eq!(
        curl(&["--basic", "--user", &format!("{USER}:{PASSWORD}"), &url]).0,
        401,
        "Basic is off by default"
    );
    // The first challenge is SHA-256: curl answered it above; check the header too.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", &url])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout);
    let challenges: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate"))
        .collect();
    assert!(
        challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5"),
        "{challenges:?}"
    );
    assert_eq!(server.get("/").0, 200);
    assert_eq!(curl(&[&format!("{}/healthz", server.url)]).0, 200);
    let (s, v) = server.get("/version");
    assert_eq!(s, 200);
    assert!(v.contains(env!("CARGO_PKG_VERSION")));

    // htdigest lines (MD5 HA1 only): MD5 is offered first, and curl gets in with it.
    let dir = TempDir::new("htdigest");
    let ha1 = sidecar::auth::hash::md5_hex(b"olduser:support-sidecar:pw");
    let f = dir.path().join("htdigest");
    std::fs::write(&f, format!("olduser:support-sidecar:{ha1}\n")).unwrap();
    let s2 = Server::start_raw(&["--credentials", f.to_str().unwrap()], &[]);
    assert_eq!(
        curl(&["--digest", "--user", "olduser:pw", &format!("{}/", s2.url)]).0,
        200
    );
    assert_eq!(
        curl(&["--digest", "--user", "olduser:bad", &format!("{}/", s2.url)]).0,
        401
    );
    // Basic when allowed.
    let s3 = Server::start(&["--allow-basic"]);
    assert_eq!(
        curl(&[
            "--basic",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            &format!("{}/", s3.url)
        ])
        .0,
        200
    );
}

#[test]
fn failed_logins_are_throttled() {
    if !privileged(&["curl"]) {
        return;
    }
    let server = Server::start(&[]);
    let url = format!("{}/", server.url);
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(curl(&["--digest", "--user", "admin:wrong", &url]).0);
    }
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    assert!(server.alive());
}

#[test]
fn refuses_to_start_without_credentials_on_tcp() {
    let out = Command::new(SIDECAR)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("SIDECAR_USER")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-auth"));
    // A unix socket without auth is fine, and so is TCP with --no-auth.
    let dir = TempDir::new("sock");
    let sock = dir.path().join("s.sock");
    let mut child = Command::new(SIDECAR)
        .args(["serve", "--listen", &format!("unix:{}", sock.display())])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the socket", Duration::from_secs(5), || sock.exists());
    let (status, body) = curl(&["--unix-socket", sock.to_str().unwrap(), "http://x/version"]);
    assert_eq!(status, 200, "{body}");
    let _ = child.kill();
    let _ = child.wait();
    let s = Server::start_raw(&["--no-auth"], &[]);
    assert_eq!(curl(&[&format!("{}/", s.url)]).0, 200);
}

/// Sends raw bytes and returns the status line's code (0 when the server just closed).
fn raw(server: &Server, bytes: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn malformed_and_hostile_requests_get_4xx_and_the_server_lives() {
    if !privileged(&["curl"]) {
        return;
    }
    let server = Server::start(&["--request-timeout", "2", "--max-upload", "1000000"]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"\x00\x01\x02 nonsense\r\n\r\n".to_vec(), 400),
        ("no version", b"GET /\r\n\r\n".to_vec(), 400),
        ("lower-case method", b"get / HTTP/1.1\r\n\r\n".to_vec(), 501),
        (
            "absolute target",
            b"GET http://x/ HTTP/1.1\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad escape",
            b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nnocolon\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad content-length",
            b"PUT /x HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two lengths",
            b"PUT /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            400,
        ),
        (
            "huge declared body",
            b"PUT /x HTTP/1.1\r\nContent-Length: 109951162777600\r\n\r\n".to_vec(),
            413,
        ),
        (
            "bad digest header",
            b"GET / HTTP/1.1\r\nAuthorization: Digest username=\"admin\", nonce=\"\r\n\r\n"
                .to_vec(),
            401,
        ),
        (
            "digest junk",
            b"GET / HTTP/1.1\r\nAuthorization: Digest ,,,===\r\n\r\n".to_vec(),
            401,
        ),
        (
            "unknown scheme",
            b"GET / HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n".to_vec(),
            401,
        ),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(raw(&server, &bytes), want, "{what}");
        assert!(server.alive(), "after {what}");
    }
    // A huge head.
    let mut big = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..2000 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(20)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(raw(&server, &big), 431);
    // Over-long request line, no newline at all.
    assert_eq!(raw(&server, &vec![b'A'; 100_000]), 431);
    // A declared huge body, authenticated: still refused before reading, and memory stays small.
    let (status, _) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-X",
        "PUT",
        "-H",
        "Content-Length: 109951162777600",
        "--data-binary",
        "x",
        &format!("{}/", server.url),
    ]);
    assert_eq!(status, 413);
    let rss = sidecar::procfs::stat(server.child.id()).unwrap().rss_pages * 4096;
    assert!(rss < 64 << 20, "RSS {rss} after a huge declared body");

    // A slow client: half a head, then silence. It gets 408 after the request timeout, and
    // meanwhile others are served.
    let t = Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert_eq!(
        server.get("/version").0,
        200,
        "served while a slow client waits"
    );
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(8));
    // Slowloris: one byte a second never extends the deadline.
    let t = Instant::now();
    let mut drip = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    drip.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    for b in b"GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaa" {
        if drip.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(n) = drip.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
            if n == 0 || !got.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(t.elapsed() < Duration::from_secs(6));
    // Unknown routes and methods.
    assert_eq!(server.request("GET", "/host/nonsense").0, 404);
    assert_eq!(server.request("POST", "/").0, 405);
    assert_eq!(server.request("GET", "/host/process/notanumber").0, 404);
    assert!(server.alive());
}

#[test]
fn healthz_answers_while_every_worker_is_busy() {
    if !privileged(&["curl"]) {
        return;
    }
    let server = Server::start(&["--workers", "1", "--request-timeout", "20", "--allow-basic"]);
    // Hold the only worker: an upload whose body arrives only when we say so (with Basic,
    // one request: curl cannot replay a body from a pipe for a second Digest round).
    let name = format!("/tmp/sidecar-busy-{}", &random_id()[..12]);
    let mut upload = KillOnDrop(
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--basic",
                "--user",
                &format!("{USER}:{PASSWORD}"),
                "-T",
                "-",
            ])
            .arg(format!("{}/host/files{name}", server.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = upload.0.stdin.take().unwrap();
    stdin.write_all(b"first part\n").unwrap();
    stdin.flush().unwrap();
    // Give the upload time to take the worker before probing: a probe that arrived first
    // would hold the only worker for its 401 round and the upload would get the 503.
    std::thread::sleep(Duration::from_millis(500));
    let busy = || {
        curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            &format!("{}/version", server.url),
        ])
        .0
    };
    wait_until("the worker to be taken", Duration::from_secs(10), || {
        // The upload must still be holding the worker: if it ended, say how, not "timed out".
        if let Ok(Some(st)) = upload.0.try_wait() {
            let mut code = String::new();
            let _ = upload.0.stdout.take().unwrap().read_to_string(&mut code);
            panic!(
                "the upload ended early ({st}, HTTP {code}); server log:\n{}",
                server.log.lock().unwrap().join("\n")
            );
        }
        busy() == 503
    });
    for _ in 0..10 {
        assert_eq!(curl(&[&format!("{}/healthz", server.url)]).0, 200);
    }
    let (status, body) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        &format!("{}/", server.url),
    ]);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"busy\""), "{body}");
    // Let the upload finish: the worker is free again.
    stdin.write_all(b"second part\n").unwrap();
    drop(stdin);
    let mut code = String::new();
    upload
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut code)
        .unwrap();
    assert_eq!(code, "200");
    assert_eq!(
        std::fs::read_to_string(&name).unwrap(),
        "first part\nsecond part\n"
    );
    std::fs::remove_file(&name).unwrap();
    assert_eq!(busy(), 200);
}

#[test]
fn a_container_that_exits_mid_request_gives_clean_errors() {
    if !privileged(&TOOLS) {
        return;
    }
    let mut c = FakeContainer::start(Spec::podman(
        "for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done; exec sleep 100000",
    ));
    let server = Server::start(&[]);
    let url = server.url.clone();
    let id = c.id.clone();
    let poller = std::thread::spawn(move || {
        let mut codes = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            for path in [format!("/{id}/process"), format!("/{id}"), "/".to_string()] {
                codes.push(
                    curl(&[
                        "--digest",
                        "--user",
                        &format!("{USER}:{PASSWORD}"),
                        &format!("{url}{path}"),
                    ])
                    .0,
                );
            }
        }
        codes
    });
    std::thread::sleep(Duration::from_millis(500));
    c.stop();
    let codes = poller.join().unwrap();
    assert!(codes.iter().all(|&c| c == 200 || c == 404), "{codes:?}");
    assert!(
        codes.contains(&404),
        "the container's end was seen: {codes:?}"
    );
    assert!(server.alive());
    let (status, v) = server.request("GET", &format!("/{}/process", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("container_not_found"))
    );
}

#[test]
fn credentials_cannot_be_read_back_from_proc() {
    if !privileged(&["setpriv", "curl"]) {
        return;
    }
    let secret = format!("pw-{}", &random_id()[..16]);
    let server = Server::start_raw(
        &[],
        &[("SIDECAR_USER", "envuser"), ("SIDECAR_PASSWORD", &secret)],
    );
    assert_eq!(
        curl(&[
            "--digest",
            "--user",
            &format!("envuser:{secret}"),
            &format!("{}/", server.url)
        ])
        .0,
        200
    );
    let pid = server.child.id();
    // Even with every privilege, the secret is no longer in its environment memory.
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&env).contains(&secret));
    assert!(!String::from_utf8_lossy(&env).contains("SIDECAR_PASSWORD=pw"));
    // And a root process without CAP_SYS_PTRACE (a container's root) may not read it at all.
    for file in ["environ", "mem", "cmdline"] {
        let out = Command::new("setpriv")
            .args([
                "--securebits",
                "+noroot",
                "--bounding-set",
                "-all",
                "--inh-caps",
                "-all",
                "--",
                "cat",
            ])
            .arg(format!("/proc/{pid}/{file}"))
            .output()
            .unwrap();
        if file == "cmdline" {
            assert!(out.status.success(), "cmdline stays readable, for ps");
        } else {
            assert!(!out.status.success(), "{file} was readable");
        }
    }
}

#[test]
fn sigterm_stops_the_server_quickly_with_status_0() {
    if !privileged(&["curl"]) {
        return;
    }
    let mut server = Server::start(&[]);
    assert!(server.alive());
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn as_pid1_it_reaps_orphans_and_forwards_sigterm() {
    if !privileged(&["unshare", "nsenter", "curl"]) {
        return;
    }
    let dir = TempDir::new("pid1");
    let sock = dir.path().join("s.sock");
    let mut init = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            SIDECAR,
            "serve",
            "--listen",
        ])
        .arg(format!("unix:{}", sock.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the socket", Duration::from_secs(5), || sock.exists());
    // The sidecar is PID 1 of the new namespace; its child serves.
    let pid1 = sidecar::procfs::pids()
        .unwrap()
        .into_iter()
        .find(|&p| sidecar::procfs::stat(p).is_ok_and(|s| s.ppid == init.id()))
        .unwrap();
    let ns = |p: u32| {
        sidecar::procfs::read(p, "status")
            .map(|s| sidecar::procfs::parse_status(&s)["NSpid"].clone())
            .unwrap()
    };
    assert!(ns(pid1).ends_with("\t1"), "{}", ns(pid1));
    assert_eq!(
        curl(&["--unix-socket", sock.to_str().unwrap(), "http://x/healthz"]).0,
        200
    );
    // An orphan in its namespace is re-parented to it and reaped once it exits.
    let out = Command::new("nsenter")
        .args([
            "-t",
            &pid1.to_string(),
            "--pid",
            "--",
            "sh",
            "-c",
            "sleep 0.3 & echo $!",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(1200));
    let zombies: Vec<u32> = sidecar::procfs::pids()
        .unwrap()
        .into_iter()
        .filter(|&p| sidecar::procfs::stat(p).is_ok_and(|s| s.ppid == pid1 && s.state == 'Z'))
        .collect();
    assert!(zombies.is_empty(), "unreaped: {zombies:?}");
    // SIGTERM to PID 1 reaches the server, which exits 0, and PID 1 with it.
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid1.to_string()])
        .status()
        .unwrap();
    let status = init.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
