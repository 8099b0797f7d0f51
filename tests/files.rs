//! Files inside a container over HTTP and with `sidecar cp`: reads, listings, atomic writes,
//! removal, and every hostile path we could think of, each refused without touching the host.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const TOOLS: [&str; 3] = ["unshare", "curl", "/bin/busybox"];

fn auth() -> String {
    format!("{USER}:{PASSWORD}")
}

/// GET with curl exactly as given (`--path-as-is`: no client-side `..` folding).
fn get_raw(server: &Server, path: &str) -> (u16, String) {
    curl(&[
        "--path-as-is",
        "--digest",
        "--user",
        &auth(),
        &format!("{}{}", server.url, path),
    ])
}

fn put(server: &Server, path: &str, data: &[u8]) -> (u16, Value) {
    let dir = TempDir::new("upload");
    let f = dir.path().join("body");
    std::fs::write(&f, data).unwrap();
    let (s, b) = curl(&[
        "--digest",
        "--user",
        &auth(),
        "-T",
        f.to_str().unwrap(),
        &format!("{}{}", server.url, path),
    ]);
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .map(|v| v["error"]["code"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn read_list_write_remove() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    std::fs::write(r.join("etc/app.conf"), "key=value\n").unwrap();
    std::os::unix::fs::symlink("/etc/app.conf", r.join("etc/link")).unwrap();
    let server = Server::start(&[]);

    let (s, body) = server.get(&format!("/{}/files/etc/app.conf", c.id));
    assert_eq!((s, body.as_str()), (200, "key=value\n"));
    // An absolute symlink resolves inside the container.
    assert_eq!(
        server.get(&format!("/{}/files/etc/link", c.id)).1,
        "key=value\n"
    );
    let list = server.json(&format!("/{}/files/etc", c.id));
    let entry = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(entry("app.conf")["type"], "file");
    assert_eq!(entry("app.conf")["size"], 10);
    assert_eq!(entry("link")["type"], "symlink");
    assert_eq!(entry("link")["target"], "/etc/app.conf");
    assert_eq!(entry("passwd")["mode"].as_str().unwrap().len(), 4);

    // A write with mode and owner, into new parent directories.
    let (s, v) = put(
        &server,
        &format!(
            "/{}/files/opt/new/dir/data.txt?mode=0640&uid=1000&gid=1000&parents=1",
            c.id
        ),
        b"hello",
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["file"]["size"].as_u64(),
            v["file"]["in_place"].as_bool()
        ),
        (Some("written"), Some(5), Some(false))
    );
    let md = std::fs::metadata(r.join("opt/new/dir/data.txt")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o640, 1000, 1000)
    );
    assert_eq!(
        std::fs::read(r.join("opt/new/dir/data.txt")).unwrap(),
        b"hello"
    );
    // Replacing keeps no temporary file behind.
    assert_eq!(
        put(&server, &format!("/{}/files/etc/app.conf", c.id), b"new\n").0,
        200
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/app.conf")).unwrap(),
        "new\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(r.join("etc"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("sidecar-")
        })
        .collect();
    assert!(leftovers.is_empty());
    // Without parents=1 a missing directory is a 404.
    assert_eq!(
        put(&server, &format!("/{}/files/nope/x", c.id), b"x").0,
        404
    );
    // Remove.
    let (s, v) = server.request("DELETE", &format!("/{}/files/opt/new/dir/data.txt", c.id));
    assert_eq!((s, v["status"].as_str()), (200, Some("removed")));
    assert!(!r.join("opt/new/dir/data.txt").exists());
    assert_eq!(
        server
            .request("DELETE", &format!("/{}/files/opt/new/dir/data.txt", c.id))
            .0,
        404
    );
    // FIFOs and devices are refused, not opened.
    assert!(Command::new("mkfifo")
        .arg(r.join("tmp/fifo"))
        .status()
        .unwrap()
        .success());
    let (s, body) = server.get(&format!("/{}/files/tmp/fifo", c.id));
    assert_eq!((s, code(&body).as_str()), (422, "not_a_regular_file"));
    assert_eq!(
        code(&server.get(&format!("/{}/files/dev/null", c.id)).1),
        "not_a_regular_file"
    );
    // Read-only servers refuse writes.
    let ro = Server::start(&["--read-only"]);
    assert_eq!(put(&ro, &format!("/{}/files/tmp/x", c.id), b"x").0, 403);
    assert_eq!(
        ro.request("DELETE", &format!("/{}/files/etc/app.conf", c.id))
            .0,
        403
    );
    assert!(r.join("etc/app.conf").exists() && !r.join("tmp/x").exists());
}

#[test]
fn hostile_paths_never_reach_the_host() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    // A file that exists only on the host, and absolute symlinks to host-only files.
    let host_only = TempDir::new("hostonly");
    let secret = host_only.path().join("secret");
    std::fs::write(&secret, "HOST SECRET").unwrap();
    std::os::unix::fs::symlink(&secret, r.join("tmp/to-host")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", r.join("tmp/to-shadow")).unwrap();
    std::os::unix::fs::symlink("loop-b", r.join("tmp/loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", r.join("tmp/loop-b")).unwrap();
    let server = Server::start(&[]);
    let id = &c.id;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/{id}/files/../../etc/shadow"),
            404,
            "file_not_found",
        ),
        (
            format!("/{id}/files/%2e%2e/%2e%2e/%2e%2e/etc/shadow"),
            404,
            "file_not_found",
        ),
        (
            format!("/{id}/files/..%2f..%2f..%2fetc%2fshadow"),
            404,
            "file_not_found",
        ),
        (format!("/{id}/files/tmp/to-shadow"), 404, "file_not_found"),
        (format!("/{id}/files/tmp/to-host"), 404, "file_not_found"),
        (
            format!("/{id}/files/{}", secret.display()),
            404,
            "file_not_found",
        ),
        (format!("/{id}/files/tmp/loop-a"), 400, "bad_path"),
        (
            format!("/{id}/files/proc/self/environ"),
            403,
            "path_refused",
        ),
        (
            format!("/{id}/files/proc/1/root/etc/passwd"),
            403,
            "path_refused",
        ),
        (format!("/{id}/files/proc/1/environ"), 403, "path_refused"),
        (
            format!("/{id}/files/sys/kernel/hostname"),
            404,
            "file_not_found",
        ),
        (
            format!("/{id}/files/{}", "a/".repeat(3000)),
            400,
            "bad_path",
        ),
        (format!("/{id}/files/{}", "x".repeat(300)), 400, "bad_path"),
        (format!("/{id}/files/etc/passwd%00.txt"), 400, "bad_path"),
    ];
    for (path, status, want) in &cases {
        let (s, body) = get_raw(&server, path);
        assert_eq!(
            (s, code(&body).as_str()),
            (*status, *want),
            "GET {}: {body}",
            &path[..path.len().min(100)]
        );
        assert!(
            !body.contains("HOST SECRET") && !body.contains("root:*") && !body.contains("root:!"),
            "{path}"
        );
    }
    // The host's shadow file exists, so "not found" above really means "not reached".
    assert!(std::path::Path::new("/etc/shadow").exists());
    // Writes through hostile paths: refused, and the host file is untouched.
    for path in [
        format!("/{id}/files/tmp/to-host"),
        format!("/{id}/files/proc/self/comm"),
        format!("/{id}/files/../../{}", secret.display()),
    ] {
        let (s, _) = put(&server, &path, b"pwned");
        assert!(s == 200 || (400..500).contains(&s), "{path}: {s}");
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "HOST SECRET");
    assert!(server.alive());
}

#[test]
fn uploads_over_the_limit_leave_nothing_behind() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let server = Server::start(&["--max-upload", "1000"]);
    let (s, v) = put(
        &server,
        &format!("/{}/files/tmp/big", c.id),
        &vec![b'x'; 5000],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    // Chunked (no Content-Length): refused while streaming, the temporary file removed.
    let mut child = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--digest",
            "--user",
            &auth(),
            "-T",
            "-",
        ])
        .arg(format!("{}/{}/files/tmp/big2", server.url, c.id))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &vec![b'y'; 5000]).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
    let names: Vec<String> = std::fs::read_dir(c.root.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
    assert!(server.alive());
}

#[test]
fn sidecar_cp_both_ways() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let dir = TempDir::new("cp");
    let local = dir.path().join("in.txt");
    std::fs::write(&local, "copied in\n").unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ok = Command::new(SIDECAR)
        .args([
            "cp",
            local.to_str().unwrap(),
            &format!("{}:/tmp/in.txt", &c.id[..8]),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let md = std::fs::metadata(c.root.path().join("tmp/in.txt")).unwrap();
    assert_eq!(
        md.mode() & 0o7777,
        0o644,
        "a new file is 0644, whatever the local file's mode"
    );
    let out = dir.path().join("out.txt");
    let ok = Command::new(SIDECAR)
        .args([
            "cp",
            &format!("pid:{}:/tmp/in.txt", c.init),
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "copied in\n");
    let o = Command::new(SIDECAR)
        .args(["cp", &format!("{}:/etc/passwd", c.id), "/dev/stdout"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains(CONTAINER_USER));
    let o = Command::new(SIDECAR)
        .args(["cp", &format!("{}:/nope", c.id), "/dev/stdout"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file"));
}
