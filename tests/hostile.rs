//! Hostile containers and hostile clients (issue 8), each case built in the test: FIFOs and
//! devices planted where files are expected, descriptors that must not reach a container,
//! replayed Digest answers, slow clients taking every connection, a world-writable umask for
//! the unix socket, smuggling-shaped request framing, the small ones (the sidecar's own PID,
//! uid -1, empty `ns`, slow bodies), command-line commands that must die on SIGTERM, and TLS
//! with real curl and certificates made by openssl.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const TOOLS: [&str; 4] = ["unshare", "curl", "/bin/busybox", "mkfifo"];

/// Sends `bytes` on a fresh connection and reads the whole answer (10 s at most).
fn raw_port(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn mkfifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// Runs `sidecar ARGS` with a time limit; (exit code or -signal, stdout, stderr, seconds).
fn sidecar_within(limit: u64, args: &[&str]) -> (i32, String, String, f64) {
    let t = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "KILL", &limit.to_string(), SIDECAR])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed().as_secs_f64(),
    )
}

fn curl_headers(server: &Server, path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-D", "-", "--digest", "--user"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("{}{}", server.url, path))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The last head is ours (the first is the 401 challenge).
    let (heads, body) = text.rsplit_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = heads.rsplit("HTTP/1.1").next().unwrap_or("").to_string();
    (
        status_of(&format!("HTTP/1.1{head}")),
        head,
        body.to_string(),
    )
}

#[test]
fn files_planted_by_a_container_block_nothing() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    // Where the sidecar expects files, the container has a FIFO with no writer (an open
    // for reading would block forever), a character device and a socket.
    mkfifo(&r.join("etc/hostname"));
    mkfifo(&r.join("etc/passwd"));
    std::fs::remove_file(r.join("etc/group")).unwrap();
    let ok = Command::new("mknod")
        .arg(r.join("etc/group"))
        .args(["c", "1", "5"])
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::create_dir_all(r.join("var/lib/rpm")).unwrap();
    mkfifo(&r.join("var/lib/rpm/rpmdb.sqlite"));
    let server = Server::start(&[]);
    let short = &c.id[..12];

    // The listing lists, and says what it skipped.
    let t = Instant::now();
    let all = server.json("/");
    assert!(t.elapsed() < Duration::from_secs(10));
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == c.id.as_str())
        .unwrap_or_else(|| panic!("container {} not listed: {all}", c.id));
    let notes = mine["notes"].to_string();
    assert!(
        notes.contains("/etc/hostname skipped") && notes.contains("FIFO"),
        "{mine}"
    );
    assert!(mine["hostname"].is_null(), "{mine}");

    // The process list answers, users unnamed, with a note header.
    let (status, head, body) = curl_headers(&server, &format!("/{short}/process"));
    assert_eq!(status, 200, "{head}{body}");
    assert!(
        head.contains("X-Sidecar-Note: user names skipped: /etc/passwd"),
        "{head}"
    );
    let procs: Value = serde_json::from_str(&body).unwrap();
    assert!(!procs.as_array().unwrap().is_empty());
    assert!(procs[0]["user"].is_null(), "{procs}");

    // The package list refuses the FIFO database clearly, in time.
    let (status, v) = server.request("GET", &format!("/{short}/rpms"));
    assert!((400..500).contains(&status), "{status} {v}");
    assert!(v.to_string().contains("FIFO"), "{v}");

    // A file route refuses it too.
    let (status, v) = server.request("GET", &format!("/{short}/files/etc/hostname"));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("not_a_regular_file")),
        "{v}"
    );

    // Exec runs, as root by number, and says it did without the user database. (The
    // program must not read /etc/passwd itself: busybox `id` would block on the FIFO.)
    let (status, text) = server.exec(short, &json!({"argv": ["echo", "ran"], "user": "0"}));
    assert_eq!(status, 200, "{text} {:?}", server.log.lock().unwrap());
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["exit_code"], 0, "{v}");
    assert_eq!(v["stdout"], "ran\n", "{v}");
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("/etc/passwd skipped") && notes.contains("/etc/group skipped"),
        "{v}"
    );
    assert!(notes.contains("character device"), "{v}");

    // The command line: same answers, in time.
    let (code, out, err, secs) = sidecar_within(20, &["list"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(secs < 10.0);
    assert!(out.contains(short), "{out}");
    assert!(err.contains("/etc/hostname skipped"), "{err}");
    let (code, _, err, _) = sidecar_within(20, &["ps", short]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("/etc/passwd"), "{err}");
    let (code, _, err, _) = sidecar_within(20, &["rpms", short]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    let (code, out, err, _) =
        sidecar_within(20, &["exec", "--user", "0", short, "--", "echo", "ran"]);
    assert_eq!((code, out.as_str()), (0, "ran\n"), "{err}");
    // --dbpath on this machine: the same check.
    let (code, _, err, _) = sidecar_within(
        20,
        &["rpms", "--dbpath", r.join("var/lib/rpm").to_str().unwrap()],
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("FIFO"), "{err}");
    assert!(server.alive());
}

/// Starts `sidecar serve` through `sh -c PREFIX; exec sidecar serve …` (an fd held open,
/// a umask), with the usual credentials; returns the server.
fn serve_via_shell(prefix: &str, args: &[&str]) -> Server {
    let dir = TempDir::new("creds-sh");
    let creds = dir.path().join("credentials");
    std::fs::write(&creds, format!("{USER}:{PASSWORD}\n")).unwrap();
    let script = format!("{prefix}; exec \"$0\" \"$@\"");
    let mut all = vec![
        "-c",
        &script,
        SIDECAR,
        "serve",
        "--credentials",
        creds.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let s = Server::start_program("sh", &all);
    drop(dir);
    s
}

#[test]
fn no_descriptor_but_0_1_2_reaches_a_program_in_a_container() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let short = &c.id[..12];
    // The server holds fd 7 on the host's / and fd 8 on the host's /etc, inherited.
    let server = serve_via_shell("exec 7</ 8</etc", &["--listen", "127.0.0.1:0"]);
    let body = json!({"argv": ["sh", "-c", "ls /proc/self/fd; cat /proc/self/fd/7/etc/hostname /proc/self/fd/8/hostname"], "user": "0"});
    let (status, text) = server.exec(short, &body);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let host_name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let fds: Vec<&str> = v["stdout"].as_str().unwrap().lines().collect();
    // 0-2, and 3: the directory `ls` itself opened.
    assert!(fds.iter().all(|f| ["0", "1", "2", "3"].contains(f)), "{v}");
    assert_ne!(v["exit_code"], 0, "{v}");
    assert!(
        host_name.trim().is_empty() || !v["stdout"].as_str().unwrap().contains(host_name.trim()),
        "{v}"
    );

    // The command line, started the same way.
    let out = Command::new("sh")
        .args([
            "-c",
            "exec 7</ 8</etc; exec \"$0\" exec --user 0 \"$1\" -- sh -c 'ls /proc/self/fd; cat /proc/self/fd/7/etc/hostname'",
            SIDECAR,
            short,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().all(|f| ["0", "1", "2", "3"].contains(&f)),
        "{stdout}"
    );
    assert_ne!(out.status.code(), Some(0), "{stdout}");
}

/// The parameters of the first Digest challenge in a 401 answer.
fn challenge(answer: &str) -> std::collections::HashMap<String, String> {
    let line = answer
        .lines()
        .find(|l| l.starts_with("WWW-Authenticate: Digest "))
        .unwrap_or_else(|| panic!("no challenge in {answer}"));
    sidecar::auth::parse_params(line.trim_start_matches("WWW-Authenticate: Digest ").trim())
        .unwrap()
}

fn authorization(
    ch: &std::collections::HashMap<String, String>,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    use sidecar::auth::hash::sha256_hex as h;
    let ha1 = h(format!("{USER}:{}:{PASSWORD}", ch["realm"]).as_bytes());
    let ha2 = h(format!("{method}:{uri}").as_bytes());
    let nonce = &ch["nonce"];
    let resp = h(format!("{ha1}:{nonce}:{nc:08x}:c0ffee:auth:{ha2}").as_bytes());
    format!(
        "Authorization: Digest username=\"{USER}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=SHA-256, qop=auth, nc={nc:08x}, cnonce=\"c0ffee\", response=\"{resp}\", opaque=\"{}\"\r\n",
        ch["realm"], ch["opaque"]
    )
}

#[test]
fn a_replayed_digest_answer_is_refused_as_stale() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&[]);
    let port = server.port();
    let uri = format!("/{}/exec", &c.id[..12]);
    let first = raw_port(
        port,
        format!("POST {uri} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&first), 401, "{first}");
    let ch = challenge(&first);
    let auth = authorization(&ch, "POST", &uri, 1);
    let post = |body: &str| {
        raw_port(
            port,
            format!(
                "POST {uri} HTTP/1.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let marker = format!("/tmp/replayed-{}", &random_id()[..8]);
    let ok = post(r#"{"argv": ["true"], "user": "0"}"#);
    assert_eq!(status_of(&ok), 200, "{ok}");
    // The captured header again, with another body: refused, the command never runs.
    let replay = post(&format!(
        r#"{{"argv": ["touch", "{marker}"], "user": "0"}}"#
    ));
    assert_eq!(status_of(&replay), 401, "{replay}");
    assert!(replay.contains("stale=true"), "{replay}");
    assert!(!c.root.path().join(marker.trim_start_matches('/')).exists());
    // A fresh nonce count on the same nonce works (curl's keep-alive reuse).
    let auth2 = authorization(&ch, "GET", "/version", 2);
    let next = raw_port(
        port,
        format!("GET /version HTTP/1.1\r\n{auth2}Connection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&next), 200, "{next}");
    // curl itself, which answers stale=true by retrying with the new nonce, still works.
    assert_eq!(server.get("/version").0, 200);
}

/// A client that still holds a nonce of a previous server instance (a restarted sidecar, a
/// long-lived HTTP session answering preemptively) and has the right password is told
/// `stale=true`, and is not counted as a failed login: everyone behind that address (every
/// `kubectl port-forward` user is 127.0.0.1) must not be locked out with 429.
#[test]
fn a_nonce_of_a_previous_instance_is_stale_not_a_failed_login() {
    if !privileged(&TOOLS) {
        return;
    }
    let old = Server::start(&[]);
    let first = raw_port(
        old.port(),
        b"GET /version HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let ch = challenge(&first);
    drop(old);
    let server = Server::start(&[]);
    for nc in 1..=12 {
        let auth = authorization(&ch, "GET", "/version", nc);
        let answer = raw_port(
            server.port(),
            format!("GET /version HTTP/1.1\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&answer), 401, "nc {nc}: {answer}");
        assert!(answer.contains("stale=true"), "nc {nc}: {answer}");
    }
    assert_eq!(server.get("/version").0, 200);
}

#[test]
fn slow_clients_cannot_take_every_connection() {
    if !privileged(&TOOLS) {
        return;
    }
    let server = Server::start(&["--head-timeout", "3", "--workers", "16"]);
    let port = server.port();
    // 130 clients that send half a head and then nothing (128 slots by default).
    let mut slow = Vec::new();
    for _ in 0..130 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        slow.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = curl(&[&format!("{}/healthz", server.url)]);
        assert_eq!(status, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    assert_eq!(server.get("/version").0, 200);
    // A head sent one byte a second is cut off at --head-timeout with a 408.
    let mut drip = TcpStream::connect(("127.0.0.1", port)).unwrap();
    drip.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    for b in b"GET /version HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa" {
        if drip.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        drip.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        match drip.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(text.is_empty() || status_of(&text) == 408, "{text}");
    drop(slow);
}

/// Clients that pipeline unauthenticated requests (`/healthz`, or anything a 401 answers)
/// and never read the answers: every reply then blocks in a full socket buffer. They must
/// not hold every connection and every worker for the send timeout (600 s by default):
/// `/healthz` and authenticated requests still answer.
#[test]
fn pipelined_answers_nobody_reads_do_not_take_every_connection() {
    if !privileged(&TOOLS) {
        return;
    }
    let server = Server::start(&[]);
    let port = server.port();
    let mut hogs = Vec::new();
    for _ in 0..130 {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        rustix::net::sockopt::set_socket_recv_buffer_size(&s, 4096).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = (&s).write_all("GET /healthz HTTP/1.1\r\n\r\n".repeat(2000).as_bytes());
        hogs.push(s);
    }
    // Once the requests sent are answered as far as the readers let them be, /healthz
    // answers (in time) again; before, every connection stayed taken for 600 s.
    wait_until("/healthz to answer", Duration::from_secs(40), || {
        curl(&["--max-time", "3", &format!("{}/healthz", server.url)]).0 == 200
    });
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = curl(&[&format!("{}/healthz", server.url)]);
        assert_eq!(status, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    let (status, body) = server.get("/version");
    assert_eq!(status, 200, "{body}");
    drop(hogs);
}

#[test]
fn a_slow_reader_does_not_hold_a_worker_past_the_send_timeout() {
    if !privileged(&TOOLS) {
        return;
    }
    let dir = TempDir::new("big");
    let big = dir.path().join("big");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(256 << 20).unwrap();
    let server = Server::start(&["--workers", "1", "--send-timeout", "2", "--allow-basic"]);
    // Ask for 256 MiB and read none of it.
    let mut s = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let basic = "YWRtaW46czNjcmV0LVBhc3M="; // admin:s3cret-Pass
    assert_eq!(format!("{USER}:{PASSWORD}"), "admin:s3cret-Pass");
    write!(
        s,
        "GET /host/files{} HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n",
        big.display()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.get("/version").0,
        503,
        "the only worker should be busy sending"
    );
    wait_until("the worker to be freed", Duration::from_secs(10), || {
        server.get("/version").0 == 200
    });
    drop(s);
}

#[test]
fn the_unix_socket_is_private_whatever_the_umask_and_throttled_by_uid() {
    if !privileged(&TOOLS) {
        return;
    }
    let dir = TempDir::new("sock");
    let sock = dir.path().join("api.sock");
    let listen = format!("unix:{}", sock.display());
    let server = serve_via_shell(
        "umask 000",
        &["--listen", "127.0.0.1:0", "--listen", &listen],
    );
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let over_unix = |user: &str| {
        curl(&[
            "--unix-socket",
            sock.to_str().unwrap(),
            "--digest",
            "--user",
            user,
            "http://localhost/version",
        ])
        .0
    };
    assert_eq!(over_unix(&format!("{USER}:{PASSWORD}")), 200);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(over_unix("admin:wrong"));
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The throttle is per uid: TCP from 127.0.0.1 is another peer.
    assert_eq!(server.get("/version").0, 200);
    drop(server);

    // A named group: 0660 and that group.
    let sock2 = dir.path().join("group.sock");
    let listen2 = format!("unix:{}", sock2.display());
    let _s2 = serve_via_shell(
        "umask 000",
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            &listen2,
            "--unix-group",
            "0",
        ],
    );
    let m = std::fs::metadata(&sock2).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&m), 0);
    // A regular file in the way is not replaced.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep").unwrap();
    let out = Command::new(SIDECAR)
        .args([
            "serve",
            "--no-auth",
            "--listen",
            &format!("unix:{}", file.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn request_framing_that_could_smuggle_is_refused() {
    if !privileged(&TOOLS) {
        return;
    }
    let server = Server::start(&["--allow-basic", "--request-timeout", "3"]);
    let port = server.port();
    let auth = "Authorization: Basic YWRtaW46czNjcmV0LVBhc3M=\r\n";
    let dir = TempDir::new("framing");
    let target = dir.path().join("f");
    let put = |extra: &str, body: &str| {
        raw_port(
            port,
            format!(
                "PUT /host/files{} HTTP/1.1\r\n{auth}{extra}\r\n{body}",
                target.display()
            )
            .as_bytes(),
        )
    };
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "two lengths",
            put("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
            400,
        ),
        ("plus sign", put("Content-Length: +3\r\n", "abc"), 400),
        (
            "gzip coding",
            put(
                "Transfer-Encoding: gzip, chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n",
            ),
            501,
        ),
        (
            "no CRLF after data",
            put("Transfer-Encoding: chunked\r\n", "3\r\nabcX\r\n0\r\n\r\n"),
            400,
        ),
        (
            "long chunk line",
            put(
                "Transfer-Encoding: chunked\r\n",
                &format!("3;{}\r\nabc\r\n0\r\n\r\n", "x".repeat(5000)),
            ),
            400,
        ),
        (
            "bare CR",
            put("X-A: a\rb\r\nContent-Length: 3\r\n", "abc"),
            400,
        ),
        ("NUL", put("X-A: a\0b\r\nContent-Length: 3\r\n", "abc"), 400),
        (
            "chunked ends early",
            put(
                "Transfer-Encoding: chunked\r\nConnection: close\r\n",
                "3\r\nabc\r\n",
            ),
            0,
        ),
    ];
    for (what, answer, want) in &cases {
        if *want == 0 {
            // The client's side ended the body; nothing to answer to.
            continue;
        }
        assert_eq!(status_of(answer), *want, "{what}: {answer}");
        assert!(!target.exists(), "{what}: the body was committed");
    }
    assert!(!target.exists(), "a badly framed body was committed");
    let version = raw_port(port, b"GET / HTTP/1.1x\r\n\r\n");
    assert_eq!(status_of(&version), 400, "{version}");
    // Valid HTTP: `close` inside a list is honoured (the server closes after answering).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nConnection: close, te\r\nTE: trailers\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert_eq!(status_of(&all), 200, "{all}");
    assert!(all.contains("Connection: close"), "{all}");
    // A correct chunked upload is still written.
    let ok = put(
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&ok), 200, "{ok}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "abcde");
    // A body slower than --request-timeout: 408, nothing written.
    let slow_target = dir.path().join("slow");
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT /host/files{} HTTP/1.1\r\n{auth}Content-Length: 100\r\n\r\nabc",
        slow_target.display()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(!slow_target.exists());
}

#[test]
fn small_ones() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let short = &c.id[..12];
    let server = Server::start(&[]);
    // A wrong method says which ones the route takes.
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            "-X",
            "DELETE",
        ])
        .arg(format!("{}/version", server.url))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("HTTP/1.1 405") && text.contains("Allow: GET\r\n"),
        "{text}"
    );
    // The sidecar's own process is not shown.
    let me = server.child.id();
    let (status, v) = server.request("GET", &format!("/host/process/{me}"));
    assert_eq!(status, 404, "{v}");
    // uid/gid -1 are refused, not misreported.
    let dir = TempDir::new("small");
    let f = dir.path().join("x");
    std::fs::write(&f, "x").unwrap();
    for q in ["uid=4294967295", "gid=4294967295"] {
        let (status, text) = curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            "-T",
            f.to_str().unwrap(),
            &format!("{}/{short}/files/tmp/x?{q}", server.url),
        ]);
        assert_eq!(status, 400, "{q}: {text}");
    }
    let exec = |body: Value| server.exec(short, &body);
    let (status, text) = exec(json!({"argv": ["id"], "user": 4294967295u64}));
    assert_eq!(status, 400, "{text}");
    let (status, text) = exec(json!({"argv": ["id"], "user": "4294967295:0"}));
    assert_eq!(status, 400, "{text}");
    // An empty ns list would run the program on the node.
    let (status, text) = exec(json!({"argv": ["hostname"], "ns": []}));
    assert_eq!(status, 400, "{text}");
    let (status, text) = exec(json!({"argv": ["hostname"], "ns": ""}));
    assert_eq!(status, 400, "{text}");
    // 200,000 environment variables merge in linear-ish time.
    let mut env = serde_json::Map::new();
    for i in 0..200_000 {
        env.insert(format!("V{i}"), json!("x"));
    }
    let t = Instant::now();
    let (status, text) = exec(json!({"argv": ["true"], "env": env, "user": "0"}));
    // The kernel may refuse an environment that large (E2BIG, 422): either way, quickly.
    assert!(status == 200 || status == 422, "{status} {text}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn command_line_commands_die_on_sigterm_and_sigint() {
    if !privileged(&TOOLS) {
        return;
    }
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        // A pipe of one page that nobody reads: `sidecar ps host --json` blocks writing.
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 4096).unwrap();
        let mut child = Command::new(SIDECAR)
            .args(["ps", "host", "--json"])
            .stdout(Stdio::from(w))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(
            "the command to block on its pipe",
            Duration::from_secs(10),
            || {
                sidecar::procfs::read(child.id(), "wchan").is_ok_and(|w| w.contains("pipe"))
                    || sidecar::procfs::stat(child.id()).is_ok_and(|s| s.state == 'S')
            },
        );
        std::thread::sleep(Duration::from_millis(200));
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            signal,
        )
        .unwrap();
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{signal:?} did not stop `sidecar ps`"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(signal.as_raw()), "{status:?}");
        drop(r);
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
fn make_pki(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=sidecar test CA",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for (name, ext) in [("tls", "san.ext"), ("client", "client.ext")] {
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            ext,
        ]);
    }
}

#[test]
fn tls_with_real_curl_and_client_certificates() {
    if !privileged(&["curl", "openssl"]) {
        return;
    }
    let dir = TempDir::new("tls");
    let d = dir.path();
    make_pki(d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let server = Server::start(&["--tls-cert", &p("tls.crt"), "--tls-key", &p("tls.key")]);
    let https = server.url.replace("http://", "https://");
    let tls_curl = |extra: &[&str], path: &str| {
        let mut args = vec!["--cacert".to_string(), p("ca.crt")];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("{https}{path}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    };
    let auth = ["--digest", "--user", "admin:s3cret-Pass"];
    assert_eq!(tls_curl(&auth, "/version").0, 200);
    assert_eq!(tls_curl(&[], "/healthz").0, 200);
    assert_eq!(tls_curl(&[], "/version").0, 401);
    // Plain HTTP on the TLS port gets nothing useful; an unknown CA is refused by curl.
    assert_ne!(curl(&[&format!("{}/healthz", server.url)]).0, 200);
    assert_eq!(curl(&[&format!("{https}/healthz")]).0, 0);
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("\"tls\":true"), "{log}");
    drop(server);

    // Client certificates required: /healthz without, everything else with.
    let server = Server::start(&[
        "--tls-cert",
        &p("tls.crt"),
        "--tls-key",
        &p("tls.key"),
        "--tls-client-ca",
        &p("ca.crt"),
    ]);
    let https = server.url.replace("http://", "https://");
    let run = |extra: &[&str], path: &str| {
        let mut args = vec!["--cacert".to_string(), p("ca.crt")];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("{https}{path}"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&refs)
    };
    assert_eq!(run(&[], "/healthz").0, 200);
    let (status, body) = run(&auth, "/version");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("client_certificate_required"), "{body}");
    let cert = [
        "--cert",
        &p("client.crt"),
        "--key",
        &p("client.key"),
        "--digest",
        "--user",
        "admin:s3cret-Pass",
    ];
    assert_eq!(run(&cert, "/version").0, 200);
    // A certificate from another CA fails the handshake.
    assert_eq!(
        run(&["--cert", &p("ca.crt"), "--key", &p("ca.key")], "/healthz").0,
        0
    );
}

/// A TLS client (Python's ssl) that sends its request head, then its body as one TLS
/// record one byte every half second: no plaintext arrives until the record is whole.
const TLS_TRICKLE: &str = r#"
import socket, ssl, sys, time
port, auth, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = socket.create_connection(("127.0.0.1", port))
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
o = ctx.wrap_bio(inc, out)
while True:
    try:
        o.do_handshake(); break
    except ssl.SSLWantReadError:
        s.sendall(out.read()); inc.write(s.recv(65536))
s.sendall(out.read())
o.write(("PUT %s HTTP/1.1\r\nAuthorization: Basic %s\r\nContent-Length: 200\r\n\r\n" % (path, auth)).encode())
s.sendall(out.read())
o.write(b"x" * 200)
for b in out.read():
    s.sendall(bytes([b])); time.sleep(0.5)
"#;

/// Deadlines hold under TLS too: rustls reads the socket several times inside one read
/// (until a record is whole), so a body trickled inside one TLS record must still be cut
/// off at --request-timeout (408), not hold the worker for as long as the record takes.
#[test]
fn a_body_trickled_inside_one_tls_record_is_cut_off_in_time() {
    if !privileged(&["curl", "openssl", "python3"]) {
        return;
    }
    let dir = TempDir::new("tls-trickle");
    let d = dir.path();
    make_pki(d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let server = Server::start(&[
        "--tls-cert",
        &p("tls.crt"),
        "--tls-key",
        &p("tls.key"),
        "--workers",
        "1",
        "--request-timeout",
        "3",
        "--allow-basic",
    ]);
    let basic = "YWRtaW46czNjcmV0LVBhc3M="; // admin:s3cret-Pass
    let target = format!("/host/files{}", d.join("trickled").display());
    let _client = KillOnDrop(
        Command::new("python3")
            .args([
                "-c",
                TLS_TRICKLE,
                &server.port().to_string(),
                basic,
                &target,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let https = server.url.replace("http://", "https://");
    let version = || {
        curl(&[
            "--cacert",
            &p("ca.crt"),
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            &format!("{https}/version"),
        ])
        .0
    };
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        version(),
        503,
        "the only worker should be receiving the body"
    );
    wait_until(
        "the worker to be freed at --request-timeout",
        Duration::from_secs(8),
        || version() == 200,
    );
    assert!(!d.join("trickled").exists());
}

#[test]
fn plain_http_with_auth_off_loopback_warns() {
    if !privileged(&["curl"]) {
        return;
    }
    let dir = TempDir::new("warn");
    let creds = dir.path().join("c");
    std::fs::write(&creds, "a:b\n").unwrap();
    let s = Server::start_program(
        SIDECAR,
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--credentials",
            creds.to_str().unwrap(),
        ],
    );
    wait_until("the warning", Duration::from_secs(5), || {
        s.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("plain HTTP with authentication"))
    });
}

#[test]
fn a_huge_directory_is_streamed_in_bounded_memory() {
    if !privileged(&["curl"]) {
        return;
    }
    let dir = TempDir::new("huge");
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    for i in 0..200_000 {
        std::fs::File::create(d.join(format!("entry-with-a-longish-name-{i:06}"))).unwrap();
    }
    let server = Server::start(&[]);
    let rss = |pid: u32| -> u64 {
        let s = sidecar::procfs::read(pid, "status").unwrap();
        let v = sidecar::procfs::parse_status(&s);
        v["VmRSS"]
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    let before = rss(server.child.id());
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "--digest", "--user"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(format!("{}/host/files{}", server.url, d.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {:?}", out.status);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 200_000);
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), 200_000);
    // The first SORTED_UP_TO are sorted; the reply was ~30 MB, the server's memory grew by
    // far less (it used to hold the whole listing several times over).
    assert!(names[..sidecar::files::SORTED_UP_TO]
        .windows(2)
        .all(|w| w[0] < w[1]));
    let grown = rss(server.child.id()).saturating_sub(before);
    assert!(grown < 32 << 20, "the server grew by {grown} bytes");
    // HTTP/1.0 clients get a listing without chunks, ended by closing the connection.
    let basic = Server::start(&["--allow-basic"]);
    let small = raw_port(
        basic.port(),
        format!(
            "GET /host/files{} HTTP/1.0\r\nAuthorization: Basic YWRtaW46czNjcmV0LVBhc3M=\r\n\r\n",
            dir.path().display()
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&small), 200, "{small}");
    assert!(!small.contains("Transfer-Encoding"), "{small}");
    let body = small.split_once("\r\n\r\n").unwrap().1;
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v[0]["name"], "d", "{v}");
}

#[test]
fn lookups_racing_renames_are_retried_not_500() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&["--allow-basic"]);
    // openat2(RESOLVE_IN_ROOT) answers EAGAIN when a rename anywhere raced with a lookup
    // that went through "..": rename in a loop while reading through "..".
    let dir = TempDir::new("renames");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let renamer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::rename(&a, &b);
            let _ = std::fs::rename(&b, &a);
            n += 2;
        }
        n
    });
    let mut statuses = std::collections::BTreeMap::new();
    let path = format!("/{}/files/etc/../etc/./../etc/hostname", &c.id[..12]);
    for _ in 0..300 {
        let answer = raw_port(
            server.port(),
            format!("GET {path} HTTP/1.1\r\nAuthorization: Basic YWRtaW46czNjcmV0LVBhc3M=\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        *statuses.entry(status_of(&answer)).or_insert(0) += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let renames = renamer.join().unwrap();
    assert!(renames > 100, "the renames did not race ({renames})");
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{statuses:?}"
    );
}
