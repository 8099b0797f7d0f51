//! `sidecar cp` as people expect from `cp` and `kubectl cp`, on a real container made with
//! `unshare`: real signals in the middle of real copies (the destination compared byte for
//! byte afterwards), streams that end early, modes, paths (symlinked parents, trailing `/`,
//! local names with `:`), names that are not UTF-8, sparse files both ways.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TOOLS: [&str; 3] = ["unshare", "/bin/busybox", "cmp"];

fn sidecar() -> Command {
    Command::new(SIDECAR)
}

fn run(args: &[&OsStr]) -> std::process::Output {
    sidecar().args(args).output().unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The temporary files `cp` leaves in `dir` (there must be none once it has ended).
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.contains(".sidecar-").then_some(n)
        })
        .collect()
}

/// Waits until `cp` has made its temporary file in `dir` and written at least `bytes` to it.
fn wait_for_temporary(dir: &Path, bytes: u64, child: &mut Child) -> PathBuf {
    let t = Instant::now();
    loop {
        for n in temporaries(dir) {
            let p = dir.join(&n);
            if std::fs::metadata(&p).is_ok_and(|m| m.len() >= bytes) {
                return p;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cp ended ({status}) before it was signalled");
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no temporary file in {dir:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for `child` at most `limit`; its exit code.
fn exit_within(child: &mut Child, limit: Duration) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().expect("an exit code, not a death by signal");
        }
        assert!(t.elapsed() < limit, "cp did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn write_pattern(path: &Path, len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

/// Fault: `... | sidecar cp - c:/etc/app.conf` stopped with ^C after 1 MiB replaced the file
/// with that 1 MiB; and `cp` could not be stopped at all. SIGINT and SIGTERM now stop it at
/// once, the file is the one it was, and no temporary file is left.
#[test]
fn signals_stop_a_copy_in_and_leave_the_file_as_it_was() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let etc = c.root.path().join("etc");
    let original = write_pattern(&etc.join("app.conf"), 5000);
    for (sig, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        // A sender that gives 1 MiB and then stalls, as a slow network stream does.
        let mut sender = KillOnDrop(
            Command::new("sh")
                .args(["-c", "head -c 1048576 /dev/urandom; exec sleep 60"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut cp = KillOnDrop(
            sidecar()
                .args(["cp", "-", &format!("{}:/etc/app.conf", c.id)])
                .stdin(sender.0.stdout.take().unwrap())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        wait_for_temporary(&etc, 1 << 20, &mut cp.0);
        signal(&cp.0, sig);
        assert_eq!(
            exit_within(&mut cp.0, Duration::from_secs(2)),
            code,
            "SIG{sig}"
        );
        let mut err = String::new();
        std::io::Read::read_to_string(&mut cp.0.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            err.contains(&format!("stopped by SIG{sig}")) && err.contains("unchanged"),
            "{err}"
        );
        assert!(
            std::fs::read(etc.join("app.conf")).unwrap() == original,
            "app.conf changed"
        );
        assert_eq!(temporaries(&etc), Vec::<String>::new());
    }
    // An endless stream: SIGTERM, and nothing appears.
    let mut zero = KillOnDrop(
        Command::new("cat")
            .arg("/dev/zero")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut cp = KillOnDrop(
        sidecar()
            .args(["cp", "-", &format!("{}:/tmp/zeros", c.id)])
            .stdin(zero.0.stdout.take().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let tmp = c.root.path().join("tmp");
    wait_for_temporary(&tmp, 8 << 20, &mut cp.0);
    signal(&cp.0, "TERM");
    assert_eq!(exit_within(&mut cp.0, Duration::from_secs(2)), 143);
    assert!(!tmp.join("zeros").exists());
    assert_eq!(temporaries(&tmp), Vec::<String>::new());
}

/// The same for copies out: `timeout 1 sidecar cp …` copied 2 GiB to the end. A local file
/// being replaced stays as it was when the copy is stopped half-way (held half-way with
/// SIGSTOP, so that the test looks at a copy that is really in progress).
#[test]
fn signals_stop_a_copy_out_and_leave_the_local_file_as_it_was() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    std::fs::create_dir_all(c.root.path().join("data")).unwrap();
    write_pattern(&c.root.path().join("data/big"), 384 << 20);
    let dir = TempDir::new("cp-out");
    let dest = dir.path().join("big");
    std::fs::write(&dest, "the old contents\n").unwrap();

    let mut cp = KillOnDrop(
        sidecar()
            .args(["cp", &format!("{}:/data/big", c.id)])
            .arg(&dest)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_temporary(dir.path(), 0, &mut cp.0);
    signal(&cp.0, "STOP");
    assert_eq!(std::fs::read(&dest).unwrap(), b"the old contents\n");
    signal(&cp.0, "INT");
    signal(&cp.0, "CONT");
    assert_eq!(exit_within(&mut cp.0, Duration::from_secs(2)), 130);
    assert_eq!(std::fs::read(&dest).unwrap(), b"the old contents\n");
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());

    // To a reader that does not read: `timeout 1` (SIGTERM) ends it after a second.
    let t = Instant::now();
    let mut stalled = KillOnDrop(
        Command::new("timeout")
            .args(["1", SIDECAR, "cp", &format!("{}:/data/big", c.id), "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert_eq!(exit_within(&mut stalled.0, Duration::from_secs(4)), 124);
    assert!(t.elapsed() < Duration::from_secs(3));
}

/// A stream that ends early: with `--expect-size` nothing is replaced (exit 125); without
/// it, the end of stdin is the end of the file, as the README says.
#[test]
fn a_stream_that_ends_early_replaces_nothing() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let conf = c.root.path().join("etc/app.conf");
    let original = write_pattern(&conf, 3000);
    let send = |bytes: &[u8], extra: &[&str]| {
        let mut child = sidecar()
            .arg("cp")
            .args(extra)
            .args(["-", &format!("{}:/etc/app.conf", c.id)])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = send(&[b'x'; 1000], &["--expect-size", "4096"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--expect-size is 4096"));
    assert!(std::fs::read(&conf).unwrap() == original);
    assert_eq!(temporaries(&conf.with_file_name("")), Vec::<String>::new());
    let o = send(&[b'y'; 4096], &["--expect-size", "4096"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&conf).unwrap(), vec![b'y'; 4096]);
    let o = send(b"short\n", &[]);
    assert!(o.status.success());
    assert_eq!(std::fs::read(&conf).unwrap(), b"short\n");
}

/// Modes: copies out keep the source's; copies in keep the replaced file's (and owner), a
/// new file from a pipe is 0644, from a local file that file's mode; `--mode` wins.
#[test]
fn modes_are_kept_both_ways() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    let dir = TempDir::new("cp-modes");
    for (name, mode) in [("secret", 0o600), ("script.sh", 0o755), ("plain", 0o644)] {
        std::fs::write(r.join("etc").join(name), name).unwrap();
        std::fs::set_permissions(r.join("etc").join(name), PermissionsExt::from_mode(mode))
            .unwrap();
        let o = run(&[
            os("cp"),
            os(&format!("{}:/etc/{name}", c.id)),
            dir.path().as_os_str(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let md = std::fs::metadata(dir.path().join(name)).unwrap();
        assert_eq!(md.mode() & 0o7777, mode, "{name} copied out");
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            name.as_bytes()
        );
    }
    // In, from a pipe, over an existing 0640 file owned by 1000:1000.
    let conf = r.join("etc/app.conf");
    std::fs::write(&conf, "old").unwrap();
    std::fs::set_permissions(&conf, PermissionsExt::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&conf, Some(1000), Some(1000)).unwrap();
    let pipe_in = |dest: &str, extra: &[&str]| {
        let mut child = sidecar()
            .arg("cp")
            .args(extra)
            .args(["-", &format!("{}:{dest}", c.id)])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"new").unwrap();
        assert!(child.wait().unwrap().success());
    };
    pipe_in("/etc/app.conf", &[]);
    let md = std::fs::metadata(&conf).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o640, 1000, 1000)
    );
    assert_eq!(std::fs::read(&conf).unwrap(), b"new");
    pipe_in("/etc/fresh.conf", &[]);
    let md = std::fs::metadata(r.join("etc/fresh.conf")).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid()), (0o644, 0));
    pipe_in("/etc/app.conf", &["--mode", "0600", "--uid", "0"]);
    let md = std::fs::metadata(&conf).unwrap();
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o600, 0, 1000));
    // A new file from a local executable keeps its mode.
    let o = run(&[
        os("cp"),
        dir.path().join("script.sh").as_os_str(),
        os(&format!("{}:/usr/bin/", c.id)),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::metadata(r.join("usr/bin/script.sh")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o755);
}

/// Paths: `--parents` under a symlinked directory resolves inside the container; a trailing
/// `/` means a directory; a local name with a `:` is local unless a container has that
/// name; `./` forces a local path.
#[test]
fn paths_as_cp_users_expect() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    std::fs::create_dir_all(r.join("run")).unwrap();
    std::os::unix::fs::symlink("../run", r.join("var/run")).unwrap();
    std::os::unix::fs::symlink("/run", r.join("var/abs-run")).unwrap();
    let dir = TempDir::new("cp-paths");
    let local = dir.path().join("pidfile");
    std::fs::write(&local, "42\n").unwrap();
    for target in ["/var/run/app/pid", "/var/abs-run/app2/deeper/pid"] {
        let o = run(&[
            os("cp"),
            os("--parents"),
            local.as_os_str(),
            os(&format!("{}:{target}", c.id)),
        ]);
        assert!(
            o.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(std::fs::read(r.join("run/app/pid")).unwrap(), b"42\n");
    assert_eq!(
        std::fs::read(r.join("run/app2/deeper/pid")).unwrap(),
        b"42\n"
    );
    assert!(std::fs::symlink_metadata(r.join("var/run"))
        .unwrap()
        .is_symlink());

    // A trailing / that does not exist is refused, in both directions; one that exists
    // receives the file under its own name.
    let o = run(&[
        os("cp"),
        local.as_os_str(),
        os(&format!("{}:/nodir/", c.id)),
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such directory"));
    assert!(!r.join("nodir").exists());
    let o = run(&[os("cp"), local.as_os_str(), os(&format!("{}:/tmp/", c.id))]);
    assert!(o.status.success());
    assert_eq!(std::fs::read(r.join("tmp/pidfile")).unwrap(), b"42\n");
    let missing = dir.path().join("nodir/");
    let o = run(&[
        os("cp"),
        os(&format!("{}:/etc/passwd", c.id)),
        os(&format!("{}/", missing.display())),
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(!missing.exists());
    let o = run(&[
        os("cp"),
        os(&format!("{}:/etc/passwd", c.id)),
        os(&format!("{}/", dir.path().display())),
    ]);
    assert!(o.status.success());
    assert!(dir.path().join("passwd").exists());

    // Local names with a colon, relative to the working directory.
    let o = sidecar()
        .current_dir(dir.path())
        .args(["cp", &format!("{}:/etc/hostname", c.id), "backup-22:34.sql"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("backup-22:34.sql"))
            .unwrap()
            .trim(),
        c.hostname
    );
    let o = sidecar()
        .current_dir(dir.path())
        .args(["cp", "backup-22:34.sql", &format!("{}:/tmp/", c.id)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(r.join("tmp/backup-22:34.sql").exists());
    // A local file named like the container: ./ makes it local.
    let named = format!("{}:x", c.hostname);
    std::fs::write(dir.path().join(&named), "local").unwrap();
    let o = sidecar()
        .current_dir(dir.path())
        .args(["cp", &format!("./{named}"), &format!("{}:/tmp/x", c.id)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(r.join("tmp/x")).unwrap(), b"local");
    // Both sides local: an error that says which name is not a container.
    let o = sidecar()
        .current_dir(dir.path())
        .args(["cp", "nosuchcontainer:/etc/passwd", "out"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no container is named 'nosuchcontainer'"));
    // A usage error is an error of the sidecar too.
    assert_eq!(run(&[os("cp"), os("only-one")]).status.code(), Some(125));
}

/// Names that are not UTF-8 are bytes: through `cp` both ways, the files routes
/// (percent-encoded) and listings (`name_bytes`).
#[test]
fn names_that_are_not_utf8() {
    if !privileged(&["unshare", "/bin/busybox", "curl"]) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    let cafe = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(r.join("tmp").join(cafe), "latin-1 name\n").unwrap();
    let dir = TempDir::new("cp-bytes");
    let mut from = format!("{}:/tmp/", c.id).into_bytes();
    from.extend_from_slice(cafe.as_bytes());
    let o = run(&[os("cp"), OsStr::from_bytes(&from), dir.path().as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(dir.path().join(cafe)).unwrap(),
        b"latin-1 name\n"
    );
    let naive = OsStr::from_bytes(b"na\xefve\n.txt");
    std::fs::write(dir.path().join(naive), "back in\n").unwrap();
    let o = run(&[
        os("cp"),
        dir.path().join(naive).as_os_str(),
        os(&format!("{}:/tmp/", c.id)),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(r.join("tmp").join(naive)).unwrap(),
        b"back in\n"
    );
    // Missing, with a name that is not UTF-8: an error of the sidecar, 125.
    let mut missing = format!("{}:/tmp/", c.id).into_bytes();
    missing.extend_from_slice(b"\xff\xfe");
    let o = run(&[
        os("cp"),
        OsStr::from_bytes(&missing),
        dir.path().as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(125));
    // Other subcommands say that they take no such argument, with 125.
    let o = run(&[os("ps"), OsStr::from_bytes(b"\xff")]);
    assert_eq!(o.status.code(), Some(125));

    let server = Server::start(&[]);
    let (s, body) = server.get(&format!("/{}/files/tmp/caf%E9.txt", c.id));
    assert_eq!((s, body.as_str()), (200, "latin-1 name\n"));
    let list = server.json(&format!("/{}/files/tmp", c.id));
    let e = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name_bytes"] == "caf%E9.txt")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(e["name"], "caf\u{FFFD}.txt");
    let e = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name_bytes"] == "na%EFve%0A.txt")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(e["size"], 8);
    // A PUT to a name that is not UTF-8, and a DELETE of it.
    let body = dir.path().join("body");
    std::fs::write(&body, "put\n").unwrap();
    let (s, _) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-T",
        body.to_str().unwrap(),
        &format!("{}/{}/files/tmp/%FF.bin", server.url, c.id),
    ]);
    assert_eq!(s, 200);
    assert_eq!(
        std::fs::read(r.join("tmp").join(OsStr::from_bytes(b"\xff.bin"))).unwrap(),
        b"put\n"
    );
    let (s, _) = server.request("DELETE", &format!("/{}/files/tmp/%FF.bin", c.id));
    assert_eq!(s, 200);
    assert!(!r.join("tmp").join(OsStr::from_bytes(b"\xff.bin")).exists());
    // A PUT to a path ending in / names a directory: refused, nothing written. (Not with
    // curl -T, which appends the local file's name to such a URL.)
    let (s, _) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", body.display()),
        &format!("{}/{}/files/tmp/newdir/", server.url, c.id),
    ]);
    assert_eq!(s, 400);
    assert!(!r.join("tmp/newdir").exists());
}

/// Sparse files keep their holes both ways: 1 GiB with 12 KiB of data is not 1 GiB written.
#[test]
fn sparse_files_stay_sparse_both_ways() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let r = c.root.path();
    let make = |p: &Path| {
        let f = std::fs::File::create(p).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(&[1u8; 4096], 0).unwrap();
        f.write_all_at(&[2u8; 4096], 512 << 20).unwrap();
        f.write_all_at(&[3u8; 4096], (1 << 30) - 8192).unwrap();
        f.set_len(1 << 30).unwrap();
    };
    let allocated = |p: &Path| std::fs::metadata(p).unwrap().blocks() * 512;
    make(&r.join("tmp/sparse"));
    let dir = TempDir::new("cp-sparse");
    let out = dir.path().join("sparse");
    let o = run(&[
        os("cp"),
        os(&format!("{}:/tmp/sparse", c.id)),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 1 << 30);
    assert!(
        allocated(&out) < 1 << 20,
        "{} bytes allocated",
        allocated(&out)
    );
    let same = |a: &Path, b: &Path| {
        Command::new("cmp")
            .arg(a)
            .arg(b)
            .status()
            .unwrap()
            .success()
    };
    assert!(same(&out, &r.join("tmp/sparse")));

    let local = dir.path().join("local-sparse");
    make(&local);
    let o = run(&[
        os("cp"),
        local.as_os_str(),
        os(&format!("{}:/tmp/in-sparse", c.id)),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inside = r.join("tmp/in-sparse");
    assert_eq!(std::fs::metadata(&inside).unwrap().len(), 1 << 30);
    assert!(
        allocated(&inside) < 1 << 20,
        "{} bytes allocated",
        allocated(&inside)
    );
    assert!(same(&local, &inside));
}
