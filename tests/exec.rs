//! Running programs inside containers made with `unshare` (busybox roots): `POST /<c>/exec`
//! with real curl, and `sidecar exec` as people run `nsenter`. Each test checks what the
//! program saw from inside: hostname, PIDs, user, groups, directory, environment, cgroups,
//! capabilities; and what happens on time-outs, missing programs and containers that exit.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOOLS: [&str; 4] = ["unshare", "curl", "setpriv", "/bin/busybox"];

fn exec(server: &Server, c: &str, body: &Value) -> (u16, Value) {
    let dir = TempDir::new("exec");
    let f = dir.path().join("body.json");
    std::fs::write(&f, body.to_string()).unwrap();
    let (status, text) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", f.display()),
        &format!("{}/{c}/exec", server.url),
    ]);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// POSTs `body` as it is (no JSON check on our side) with real curl.
fn post(url: &str, body: &str) -> (u16, String) {
    curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-X",
        "POST",
        "--data-binary",
        body,
        url,
    ])
}

/// Runs `sidecar exec ARGS` with `stdin`; returns (exit status, stdout, stderr).
fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(SIDECAR)
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an exec that must fail with `status` and `code`; returns the error's message.
fn refused(server: &Server, c: &str, body: &Value, status: u16, code: &str) -> String {
    let (s, v) = exec(server, c, body);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}: {v}"
    );
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sh(script: &str) -> Value {
    json!({"argv": ["sh", "-c", script]})
}

fn cap_bits(status: &str, key: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CAP_NET_RAW: u64 = 1 << 13;
const CAP_MKNOD: u64 = 1 << 27;

#[test]
fn exec_sees_the_container_from_inside() {
    if !privileged(&TOOLS) {
        return;
    }
    let mut spec = Spec::podman("export APPVAR=from-the-container; cd /tmp; exec sleep 100000");
    spec.drop_caps = vec!["net_raw", "mknod"];
    let c = FakeContainer::start(spec);
    let server = Server::start(&[]);
    let short = &c.id[..12];

    let (s, v) = exec(&server, short, &json!({"argv": ["hostname"]}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stdout"], format!("{}\n", c.hostname));
    assert_eq!(
        (v["exit_code"].as_i64(), v["timed_out"].as_bool()),
        (Some(0), Some(false))
    );
    assert!(v["duration_ms"].is_u64(), "{v}");

    // Its own PID namespace: PID 1 is the container's init; the host's PIDs are not there.
    let (_, v) = exec(&server, short, &sh("echo $$; ls /proc | grep '^[0-9]*$'"));
    let mut lines = v["stdout"].as_str().unwrap().lines();
    let me: u32 = lines.next().unwrap().parse().unwrap();
    let seen: Vec<u32> = lines.map(|l| l.parse().unwrap()).collect();
    assert!(seen.contains(&1) && seen.contains(&me), "{v}");
    assert!(
        seen.iter().all(|&p| p < 50),
        "only the container's PIDs: {seen:?}"
    );

    // The container's environment, working directory and user; the request's on top.
    let (_, v) = exec(&server, short, &sh("echo $APPVAR $EXTRA; pwd; id"));
    assert_eq!(
        v["stdout"], "from-the-container\n/tmp\nuid=0(root) gid=0(root) groups=0(root)\n",
        "{v}"
    );
    let (_, v) = exec(
        &server,
        short,
        &json!({"argv": ["sh", "-c", "echo $APPVAR $EXTRA $HOME; pwd; id; cat; echo err >&2; exit 7"],
                "env": {"EXTRA": "x y", "APPVAR": "over"}, "cwd": "/etc", "user": CONTAINER_USER,
                "stdin": "line one\nline two\n"}),
    );
    assert_eq!(
        v["stdout"],
        format!("over x y /tmp\n/etc\nuid=1000({CONTAINER_USER}) gid=1000({CONTAINER_USER}) groups=10(wheel),1000({CONTAINER_USER})\nline one\nline two\n"),
        "{v}"
    );
    assert_eq!(
        (v["stderr"].as_str(), v["exit_code"].as_i64()),
        (Some("err\n"), Some(7))
    );
    let (_, v) = exec(&server, short, &json!({"argv": ["id"], "user": "1000:10"}));
    assert!(
        v["stdout"]
            .as_str()
            .unwrap()
            .starts_with("uid=1000(sctester) gid=10(wheel)"),
        "{v}"
    );
    let (_, v) = exec(&server, short, &json!({"argv": ["id", "-u"], "user": 4242}));
    assert_eq!(
        v["stdout"], "4242\n",
        "a uid the container does not know: {v}"
    );

    // The container's cgroups, and its capabilities unless privileged.
    let (_, v) = exec(
        &server,
        short,
        &json!({"argv": ["cat", "/proc/self/cgroup", "/proc/self/status"]}),
    );
    let out = v["stdout"].as_str().unwrap();
    for h in ["pids", "name=systemd"] {
        let line = out.lines().find(|l| l.contains(&format!(":{h}:"))).unwrap();
        assert!(line.ends_with(&format!("/libpod-{}", c.id)), "{h}: {line}");
    }
    let init = std::fs::read_to_string(format!("/proc/{}/status", c.init)).unwrap();
    assert_eq!(cap_bits(&init, "CapBnd") & (CAP_NET_RAW | CAP_MKNOD), 0);
    assert_eq!(cap_bits(out, "CapBnd"), cap_bits(&init, "CapBnd"), "{out}");
    assert_eq!(cap_bits(out, "CapEff"), cap_bits(&init, "CapEff"), "{out}");
    let (_, v) = exec(
        &server,
        short,
        &json!({"argv": ["cat", "/proc/self/status"], "privileged": true}),
    );
    let out = v["stdout"].as_str().unwrap();
    assert_ne!(
        cap_bits(out, "CapBnd") & CAP_NET_RAW,
        0,
        "privileged keeps ours: {out}"
    );
    // And what the program could do with them: mknod is refused without CAP_MKNOD.
    let (_, v) = exec(&server, short, &sh("mknod /tmp/n c 1 3 && echo made"));
    assert_ne!(v["exit_code"], 0, "{v}");
    let (_, v) = exec(
        &server,
        short,
        &json!({"argv": ["sh", "-c", "mknod /tmp/p c 1 3 && echo made"], "privileged": true}),
    );
    assert_eq!(v["stdout"], "made\n", "{v}");

    // A server started with --setns-files enters through /proc/<pid>/ns/* to the same view.
    let files = Server::start(&["--setns-files"]);
    let (_, v) = exec(&files, short, &sh("hostname; echo $$"));
    let out = v["stdout"].as_str().unwrap_or_default();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(c.hostname.as_str()), "{v}");
    assert!(lines.next().unwrap().parse::<u32>().unwrap() < 50, "{v}");

    // Only the namespaces asked for: the host's root and UTS, the container's network.
    let (_, v) = exec(
        &server,
        short,
        &json!({"argv": ["/bin/busybox", "cat", "/proc/net/dev"], "ns": ["net"]}),
    );
    let devs = v["stdout"].as_str().unwrap();
    assert_eq!(
        devs.lines().filter(|l| l.contains(':')).count(),
        1,
        "only lo: {devs}"
    );
    refused(
        &server,
        short,
        &json!({"argv": ["true"], "ns": "mnt,time"}),
        400,
        "bad_request",
    );

    // The audit line names the program and how it ended.
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("\"exec\":[\"hostname\"]"), "{log}");
    assert!(server.alive());
}

#[test]
fn timeouts_missing_programs_and_bad_requests() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&[]);
    let short = &c.id[..12];

    // A time-out kills the program's process group; what left the group is reported.
    let t = std::time::Instant::now();
    let (s, v) = exec(
        &server,
        short,
        &json!({"argv": ["sh", "-c", "setsid sleep 100011 & sleep 100012 & echo started; sleep 100013"], "timeout_s": 1}),
    );
    assert_eq!(s, 200, "{v}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        (v["timed_out"].as_bool(), v["signal"].as_str()),
        (Some(true), Some("KILL")),
        "{v}"
    );
    assert_eq!(v["stdout"], "started\n");
    wait_until("the group to be gone", Duration::from_secs(5), || {
        c.find("sleep 100012").is_empty() && c.find("sleep 100013").is_empty()
    });
    let escaped = c.find("sleep 100011");
    assert_eq!(escaped.len(), 1, "the setsid one lives on");
    assert_eq!(v["escaped"], json!(escaped), "{v}");
    assert!(v["notes"].to_string().contains("not killed"), "{v}");

    // A background process that keeps stdout open is not waited for: a second after the
    // program exits, the reply comes with what was captured and a note.
    let t = std::time::Instant::now();
    let (s, v) = exec(&server, short, &sh("sleep 100016 & echo done"));
    assert_eq!(
        (s, v["stdout"].as_str(), v["exit_code"].as_i64()),
        (200, Some("done\n"), Some(0)),
        "{v}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        v["notes"]
            .to_string()
            .contains("output after its exit was not captured"),
        "{v}"
    );
    assert_eq!(
        c.find("sleep 100016").len(),
        1,
        "the background process is left running"
    );

    // Output beyond the cap is read and dropped, and said so; bytes that are not UTF-8 are
    // replaced.
    let (_, v) = exec(
        &server,
        short,
        &sh("yes 0123456789abcdef | head -c 3000000; printf '\\377\\376' >&2"),
    );
    assert_eq!(v["stdout"].as_str().unwrap().len(), 1 << 20);
    assert_eq!(
        (
            v["truncated"]["stdout"].as_bool(),
            v["truncated"]["stderr"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(v["stderr"], "\u{fffd}\u{fffd}");

    // A program that is not there: the PATH searched is named.
    let msg = refused(
        &server,
        short,
        &json!({"argv": ["no-such-tool"]}),
        422,
        "program_not_found",
    );
    assert!(msg.contains("PATH searched: /bin"), "{msg}");
    refused(
        &server,
        short,
        &json!({"argv": ["/etc/passwd"]}),
        422,
        "not_executable",
    );
    refused(
        &server,
        short,
        &json!({"argv": ["true"], "cwd": "/no/such/dir"}),
        400,
        "bad_request",
    );
    let msg = refused(
        &server,
        short,
        &json!({"argv": ["true"], "user": "mallory"}),
        400,
        "bad_request",
    );
    assert!(msg.contains("no user 'mallory'"), "{msg}");

    // Malformed requests.
    for (body, what) in [
        (json!({"argv": []}), "empty argv"),
        (json!({"argv": "true"}), "argv a string"),
        (json!({"argv": ["true"], "timeout": 5}), "a misspelt field"),
        (
            json!({"argv": ["true"], "timeout_s": -1}),
            "a negative time-out",
        ),
        (json!({"argv": ["a\u{0}b"]}), "a NUL byte"),
        (
            json!({"argv": ["true"], "env": {"A=B": "c"}}),
            "= in a name",
        ),
    ] {
        let (s, v) = exec(&server, short, &body);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{what}: {v}"
        );
    }
    let (s, _) = post(&format!("{}/{short}/exec", server.url), "{not json");
    assert_eq!(s, 400);
    let (s, v) = server.request("GET", &format!("/{short}/exec"));
    assert_eq!(s, 405, "{v}");
    refused(
        &server,
        "pid:999999999",
        &json!({"argv": ["true"]}),
        404,
        "container_not_found",
    );
    assert!(server.alive());

    // --read-only refuses it before anything runs.
    let ro = Server::start(&["--read-only"]);
    refused(&ro, short, &sh("touch /tmp/ro-was-here"), 403, "read_only");
    assert!(!c.root.path().join("tmp/ro-was-here").exists());
}

#[test]
fn a_container_that_exits_during_an_exec_gives_a_clean_error() {
    if !privileged(&TOOLS) {
        return;
    }
    let mut c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&[]);
    let short = c.id[..12].to_string();
    let url = server.url.clone();
    let body = json!({"argv": ["sleep", "100014"], "timeout_s": 60}).to_string();
    let pending = std::thread::spawn(move || post(&format!("{url}/{short}/exec"), &body));
    wait_until("the program to start", Duration::from_secs(10), || {
        !c.find("sleep 100014").is_empty()
    });
    c.stop();
    let (status, body) = pending.join().unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("container_not_found") && body.contains("exited while the program ran"),
        "{body}"
    );
    assert!(server.alive());
    // And once it is gone, a new exec is a 404 at once.
    refused(
        &server,
        &c.id[..12],
        &json!({"argv": ["true"]}),
        404,
        "container_not_found",
    );
}

#[test]
fn sidecar_exec_on_the_command_line_is_like_nsenter() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let short = &c.id[..12];
    let pid = format!("pid:{}", c.init);

    let (code, out, _) = cli(&[short, "--", "hostname"], "");
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{}\n", c.hostname).as_str())
    );
    // stdin, stdout and stderr pass through; the exit status is the program's.
    let (code, out, err) = cli(
        &[&pid, "--", "sh", "-c", "cat; echo oops >&2; exit 3"],
        "piped in\n",
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (3, "piped in\n", "oops\n")
    );
    let (code, out, _) = cli(
        &[
            short,
            "--user",
            CONTAINER_USER,
            "-w",
            "/etc",
            "-e",
            "A=b c",
            "--",
            "sh",
            "-c",
            "id -un; pwd; echo $A",
        ],
        "",
    );
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{CONTAINER_USER}\n/etc\nb c\n").as_str())
    );
    // As a shell reports: 127 not found (naming the PATH), 126 not executable, 128+N.
    let (code, _, err) = cli(&[short, "--", "no-such-tool"], "");
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("not found") && err.contains("PATH searched: /bin"),
        "{err}"
    );
    let (code, _, _) = cli(&[short, "--", "/etc/passwd"], "");
    assert_eq!(code, 126);
    let (code, _, _) = cli(&[short, "--", "sh", "-c", "kill -TERM $$"], "");
    assert_eq!(code, 128 + 15);
    let (code, _, err) = cli(&[short, "--timeout", "0.5", "--", "sleep", "100015"], "");
    assert_eq!(code, 128 + 9, "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(c.find("sleep 100015").is_empty());
    // The fallback through /proc/<pid>/ns/* files (kernels before 5.8) gives the same view.
    let (code, out, err) = cli(
        &[
            short,
            "--setns-files",
            "--",
            "sh",
            "-c",
            "hostname; echo $$",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let mut l = out.lines();
    assert_eq!(l.next(), Some(c.hostname.as_str()));
    assert!(l.next().unwrap().parse::<u32>().unwrap() < 50, "{out}");
    // A signal sent to `sidecar exec` reaches the program (its trap decides the status).
    let sidecar = Command::new(SIDECAR)
        .args(["exec", short, "--", "sh", "-c"])
        .arg("trap 'echo got TERM; exit 5' TERM; sleep 100017 >/dev/null & wait")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sidecar = KillOnDrop(sidecar);
    wait_until("the program to start", Duration::from_secs(10), || {
        !c.find("sleep 100017").is_empty()
    });
    let pid = rustix::process::Pid::from_raw(sidecar.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = sidecar.0.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut sidecar.0.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!((status.code(), out.as_str()), (Some(5), "got TERM\n"));

    // Errors of the sidecar itself: 125 with one line.
    let (code, _, err) = cli(&["no-such-container-xyz", "--", "true"], "");
    assert_eq!(code, 125);
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = cli(&[short], "");
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = cli(&[short, "--ns", "bogus", "--", "true"], "");
    assert_eq!(code, 125, "{err}");
}
