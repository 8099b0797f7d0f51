//! `rpm -qf` and `rpm -V` answers compared with the real rpm's: packages built here with
//! `rpmbuild` (a config file, a `noreplace` one, a symlink, a directory, a file owned by a
//! user of the root's own passwd, a `%ghost`, a file shared by two packages) are installed
//! for real with `rpm --root`, then files are changed, removed, re-moded, re-owned,
//! re-linked, touched, and one is replaced by a FIFO (which must never be opened). The
//! command line (`sidecar rpms --root R --verify/--file`) must print rpm's bytes and exit
//! status; the HTTP routes, on a container made with `unshare` whose root holds the same
//! installation, must say the same in JSON, and count a damaged record in
//! `X-Sidecar-Skipped-Records`, `GET /<c>` and the audit line.
//!
//! Invariant: without root, `rpm`, `rpmbuild`, `python3` or `curl`, the tests skip loudly (a
//! failure under CI=true); every root and build tree is a private temporary directory (the
//! FIFO lives only there), removed at the end.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/rpmhdr.py");

const SPEC: &str = r#"Name: vt-files
Version: 1.0
Release: 1
Summary: verify test
License: MIT
BuildArch: noarch
%description
v
%package -n vt-shared
Summary: shares a file
%description -n vt-shared
s
%files -n vt-shared
/opt/vt/shared.txt
%package -n vt-fifo
Summary: its file becomes a fifo
%description -n vt-fifo
f
%files -n vt-fifo
/opt/vt/fifo.txt
%package -n vt-clean
Summary: untouched
%description -n vt-clean
c
%files -n vt-clean
/opt/vt/clean.txt
%install
mkdir -p %{buildroot}/opt/vt/bin %{buildroot}/opt/vt/dir %{buildroot}/etc/vt
for f in file owned gone touched shared fifo clean capped keepcaps uncapped; do echo "$f content" > %{buildroot}/opt/vt/$f.txt; done
echo tool > %{buildroot}/opt/vt/bin/tool
echo other > %{buildroot}/opt/vt/bin/other
ln -s bin/tool %{buildroot}/opt/vt/tool-link
echo "key=value" > %{buildroot}/etc/vt/app.conf
echo "other=1" > %{buildroot}/etc/vt/other.conf
%files
/opt/vt/file.txt
%attr(0755,root,root) /opt/vt/bin/tool
/opt/vt/bin/other
/opt/vt/tool-link
%dir /opt/vt/dir
%attr(0640,vtuser,vtgroup) /opt/vt/owned.txt
%config(noreplace) /etc/vt/app.conf
%config /etc/vt/other.conf
%ghost /opt/vt/ghost.log
/opt/vt/gone.txt
/opt/vt/touched.txt
/opt/vt/shared.txt
%caps(cap_net_raw=ep) /opt/vt/capped.txt
%caps(cap_net_admin,cap_net_raw+ep) /opt/vt/keepcaps.txt
/opt/vt/uncapped.txt
"#;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn build(top: &Path) -> Vec<PathBuf> {
    fs::write(top.join("vt.spec"), SPEC).unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--nodeps")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(top.join("vt.spec")));
    let mut rpms: Vec<PathBuf> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rpms.sort();
    assert_eq!(rpms.len(), 4);
    rpms
}

/// Installs the packages into root `r` (whose passwd and group gain `vtuser`/`vtgroup`),
/// then changes the files the way the test expects rpm to see.
fn install_and_change(r: &Path, rpms: &[PathBuf]) {
    fs::create_dir_all(r.join("etc")).unwrap();
    let add = |file: &str, line: &str| {
        let p = r.join("etc").join(file);
        let mut text = fs::read_to_string(&p).unwrap_or_else(|_| match file {
            "passwd" => "root:x:0:0:root:/root:/bin/sh\n".into(),
            _ => "root:x:0:\n".into(),
        });
        text.push_str(line);
        fs::write(p, text).unwrap();
    };
    add("passwd", "vtuser:x:1234:1234::/:/bin/sh\n");
    add("group", "vtgroup:x:1234:\n");
    run(Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--nosignature",
        ])
        .arg("--noscripts")
        .args(rpms));
    let vt = r.join("opt/vt");
    let sh = |script: &str| {
        run(Command::new("sh").arg("-c").arg(script).current_dir(r));
    };
    sh("echo more >> opt/vt/file.txt; touch -d '2 hours ago' opt/vt/file.txt");
    sh("chmod 0700 opt/vt/bin/tool opt/vt/dir");
    sh("ln -sfn bin/other opt/vt/tool-link");
    sh("chown 0:0 opt/vt/owned.txt");
    // Same size, other content, same mtime: only the digest differs.
    sh("m=$(stat -c %Y etc/vt/app.conf); echo key=VALUE > etc/vt/app.conf; touch -d @$m etc/vt/app.conf");
    sh("touch -d '1 hour ago' etc/vt/other.conf opt/vt/touched.txt opt/vt/shared.txt");
    fs::remove_file(vt.join("gone.txt")).unwrap();
    fs::remove_file(vt.join("fifo.txt")).unwrap();
    run(Command::new("mkfifo").arg(vt.join("fifo.txt")));
    // Capabilities: removed from one file, added to another (as `setcap` writes them:
    // revision 2, effective, cap_net_admin permitted); a third keeps its own.
    run(Command::new("python3")
        .args([
            "-c",
            "import os, struct, sys\n\
             os.removexattr(sys.argv[1], 'security.capability')\n\
             os.setxattr(sys.argv[2], 'security.capability', struct.pack('<5I', 0x02000001, 1 << 12, 0, 0, 0))",
        ])
        .arg(vt.join("capped.txt"))
        .arg(vt.join("uncapped.txt")));
    // A symlinked directory, absolute: it resolves inside the root.
    std::os::unix::fs::symlink("/opt/vt", r.join("vtlink")).unwrap();
}

/// A container made with `unshare` whose root holds the packages built here, installed and
/// changed by `install_and_change`; the build tree (`label`) goes with the first value.
fn changed_container(label: &str) -> (TempDir, FakeContainer) {
    let top = TempDir::new(label);
    let rpms = build(top.path());
    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    install_and_change(c.root.path(), &rpms);
    (top, c)
}

fn rpm_in(r: &Path, args: &[&str]) -> (String, String, i32) {
    let out = Command::new("rpm")
        .arg("--root")
        .arg(r)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn sidecar(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(SIDECAR)
        .arg("rpms")
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn verify_and_owners_match_rpm_on_a_root() {
    if !privileged(&["rpm", "rpmbuild", "mkfifo", "python3"]) {
        return;
    }
    let top = TempDir::new("vt-build");
    let rpms = build(top.path());
    let root = TempDir::new("vt-root");
    let r = root.path();
    install_and_change(r, &rpms);
    let rs = r.to_str().unwrap();

    // rpm -Va: every line, byte for byte, and the exit status.
    let (want, _, want_code) = rpm_in(r, &["-Va", "--nodeps", "--noscripts"]);
    let (got, err, code) = sidecar(&["--root", rs, "--verify"]);
    assert_eq!(got, want, "stderr: {err}");
    assert_eq!(code, want_code);
    assert_eq!(code, 1);
    for line in [
        "..5......  c /etc/vt/app.conf",
        ".......T.  c /etc/vt/other.conf",
        ".M.......    /opt/vt/bin/tool",
        ".M.......    /opt/vt/dir",
        "S.5....T.    /opt/vt/file.txt",
        "missing     /opt/vt/gone.txt",
        ".....UG..    /opt/vt/owned.txt",
        "....L....    /opt/vt/tool-link",
        ".......T.    /opt/vt/touched.txt",
        ".M.......    /opt/vt/fifo.txt",
        "........P    /opt/vt/capped.txt",
        "........P    /opt/vt/uncapped.txt",
    ] {
        assert!(got.lines().any(|l| l == line), "no {line:?} in\n{got}");
    }
    // The shared file's mtime is not a difference (rpm filters it), the ghost's absence is
    // silent.
    assert!(
        !got.contains("shared.txt") && !got.contains("ghost.log"),
        "{got}"
    );
    assert!(!got.contains("keepcaps.txt"), "{got}");
    // rpm -V NAME, each package.
    for name in ["vt-files", "vt-fifo", "vt-clean", "vt-shared"] {
        let (want, _, want_code) = rpm_in(r, &["-V", "--nodeps", "--noscripts", name]);
        let (got, err, code) = sidecar(&["--root", rs, "--verify", name]);
        assert_eq!((&got, code), (&want, want_code), "{name}: {err}");
    }
    let (_, err, code) = sidecar(&["--root", rs, "--verify", "no-such"]);
    assert_eq!(code, 125);
    assert!(err.contains("not installed"), "{err}");

    // rpm -qf: owners, a file of two packages, a directory, a missing file still owned,
    // `..` in the path, and a file nobody owns.
    for path in [
        "/opt/vt/file.txt",
        "/opt/vt/shared.txt",
        "/etc/vt/app.conf",
        "/opt/vt/dir",
        "/opt/vt/gone.txt",
        "/opt/vt/bin/../file.txt",
        "/opt",
    ] {
        let (want, _, want_code) = rpm_in(r, &["-qf", path]);
        let (got, err, code) = sidecar(&["--root", rs, "--file", path]);
        assert_eq!((&got, code), (&want, want_code), "{path}: {err}");
    }
    let (got, _, _) = sidecar(&["--root", rs, "--file", "/opt/vt/shared.txt"]);
    assert_eq!(got.lines().count(), 2, "{got}");
    // Through a symlinked directory: rpm --root looks the path up on the host (and fails);
    // inside the root it is /opt/vt/file.txt, whose owner rpm names.
    let (want, _, _) = rpm_in(r, &["-qf", "/opt/vt/file.txt"]);
    let (got, err, code) = sidecar(&["--root", rs, "--file", "/vtlink/file.txt"]);
    assert_eq!((got, code), (want, 0), "{err}");
    // Not there at all: rpm's message, exit 1.
    let (got, err, code) = sidecar(&["--root", rs, "--file", "/opt/vt/never"]);
    assert_eq!((got.as_str(), code), ("", 1));
    assert_eq!(
        err,
        "error: file /opt/vt/never: No such file or directory\n"
    );

    // -Va verifies while it reads the database; a read that fails half-way (the file cut
    // short) counts for nothing: the same error as the listing's, and no line.
    let cut = TempDir::new("vt-cut");
    let db = fs::read(r.join("var/lib/rpm/rpmdb.sqlite")).unwrap();
    fs::create_dir_all(cut.path().join("var/lib/rpm")).unwrap();
    fs::write(
        cut.path().join("var/lib/rpm/rpmdb.sqlite"),
        &db[..db.len() / 2],
    )
    .unwrap();
    let cs = cut.path().to_str().unwrap();
    let (listed, list_err, list_code) = sidecar(&["--root", cs]);
    let (got, err, code) = sidecar(&["--root", cs, "--verify"]);
    assert_eq!((listed.as_str(), list_code), ("", 125), "{list_err}");
    assert_eq!((got.as_str(), code, &err), ("", 125, &list_err));
}

#[test]
fn verify_and_owners_over_http() {
    if !privileged(&[
        "unshare",
        "curl",
        "/bin/busybox",
        "rpm",
        "rpmbuild",
        "python3",
    ]) {
        return;
    }
    let (_top, c) = changed_container("vt-http-build");
    let r = c.root.path();
    let server = Server::start(&[]);

    // GET /<c>/verify says what rpm -Va says, and what the command line's --json says.
    let (want, _, _) = rpm_in(r, &["-Va", "--nodeps", "--noscripts"]);
    let all = server.json(&format!("/{}/verify", c.id));
    let lines: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let ac = f["attr"].as_str().unwrap().chars().next().unwrap_or(' ');
            match f["flags"].as_str() {
                Some(flags) => format!("{flags}  {ac} {}", f["path"].as_str().unwrap()),
                None => format!("missing   {ac} {}", f["path"].as_str().unwrap()),
            }
        })
        .collect();
    assert_eq!(lines.join("\n") + "\n", want);
    let gone = all
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/opt/vt/gone.txt")
        .unwrap();
    assert_eq!(gone["missing"], true);
    assert_eq!(gone["package"], "vt-files-1.0-1.noarch");
    let conf = all
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/vt/app.conf")
        .unwrap();
    assert_eq!(
        (&conf["flags"], &conf["attr"]),
        (&Value::from("..5......"), &Value::from("cn"))
    );
    let out = Command::new(SIDECAR)
        .args(["rpms", &c.id, "--verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), all);
    // One package, and a clean one.
    let fifo = server.json(&format!("/{}/rpms/vt-fifo/verify", c.id));
    assert_eq!(fifo[0]["flags"], ".M.......", "{fifo}");
    assert_eq!(
        server.json(&format!("/{}/rpms/vt-clean/verify", c.id)),
        serde_json::json!([])
    );
    let (status, v) = server.request("GET", &format!("/{}/rpms/no-such/verify", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("package_not_found"))
    );

    // GET /<c>/rpms?file=: the listing's objects of the owners.
    let shared = server.json(&format!("/{}/rpms?file=/opt/vt/shared.txt", c.id));
    assert_eq!(shared["path"], "/opt/vt/shared.txt");
    let names: Vec<&str> = shared["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vt-shared", "vt-files"]);
    assert_eq!(shared["owners"][0]["version"], "1.0");
    let via_link = server.json(&format!("/{}/rpms?file=/vtlink/file.txt", c.id));
    assert_eq!(via_link["owners"][0]["name"], "vt-files");
    let nobody = server.json(&format!("/{}/rpms?file=/etc/hostname", c.id));
    assert_eq!(nobody["owners"], serde_json::json!([]));
    let (status, v) = server.request("GET", &format!("/{}/rpms?file=etc/hostname", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_path")),
        "{v}"
    );

    // A package whose file list does not hold together (DIRINDEXES past DIRNAMES): its own
    // detail shows no files and says why, other packages' answers are unchanged, and its
    // verification fails silently as rpm's does (nothing printed, exit 1).
    let db = r.join("var/lib/rpm/rpmdb.sqlite");
    let installed = sidecar::rpmdb::read_path(&r.join("var/lib/rpm")).unwrap();
    let instance = |name: &str| {
        installed
            .packages
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .instance
    };
    run(Command::new("python3")
        .arg(TOOL)
        .arg("sqlite")
        .arg(&db)
        .arg(instance("vt-shared").to_string())
        .arg("dirindex"));
    run(Command::new("touch").args(["-d", "1 hour ago"]).arg(&db));
    let broken = server.json(&format!("/{}/rpms/vt-shared", c.id));
    assert_eq!(broken[0]["files"], serde_json::json!([]));
    assert!(broken[0]["files_error"].is_string(), "{broken}");
    let files = server.json(&format!("/{}/rpms/vt-files", c.id));
    assert!(files[0]["files"]
        .as_array()
        .unwrap()
        .contains(&Value::from("/opt/vt/shared.txt")));
    let v = server.json(&format!("/{}/rpms/vt-shared/verify", c.id));
    assert!(v[0]["path"].is_null() && v[0]["error"].is_string(), "{v}");
    let (want, _, want_code) = rpm_in(r, &["-V", "--nodeps", "--noscripts", "vt-shared"]);
    let out = Command::new(SIDECAR)
        .args(["rpms", &c.id, "--verify", "vt-shared"])
        .output()
        .unwrap();
    assert_eq!(
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status.code()
        ),
        (want, Some(want_code))
    );
    assert_eq!(want_code, 1);

    // A damaged record: left out, counted in a header, listed in GET /<c>, logged.
    let listing = server.json(&format!("/{}/rpms", c.id));
    assert_eq!(listing.as_array().unwrap().len(), 4);
    let clean = sidecar::rpmdb::read_path(&r.join("var/lib/rpm"))
        .unwrap()
        .packages
        .into_iter()
        .find(|p| p.name == "vt-clean")
        .unwrap();
    run(Command::new("python3")
        .arg(TOOL)
        .args(["sqlite"])
        .arg(&db)
        .arg(clean.instance.to_string())
        .arg("cut:100"));
    run(Command::new("touch").args(["-d", "1 hour ago"]).arg(&db));
    let headers = TempDir::new("vt-headers");
    let hfile = headers.path().join("h");
    let (status, body) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-D",
        hfile.to_str().unwrap(),
        &format!("{}/{}/rpms", server.url, c.id),
    ]);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let head = fs::read_to_string(&hfile).unwrap().to_ascii_lowercase();
    assert!(head.contains("x-sidecar-skipped-records: 1\r\n"), "{head}");
    let one = server.json(&format!("/{}", c.id));
    let skipped = &one["rpm_database"]["skipped_records"];
    assert_eq!(skipped[0]["instance"], clean.instance, "{one}");
    assert!(skipped[0]["why"].as_str().is_some_and(|w| !w.is_empty()));
    assert_eq!(one["rpm_database"]["packages"], 3);
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.contains("\"skipped_records\":1") && l.contains("/rpms")),
        "{log:#?}"
    );
    // Nothing new beside the database (no -shm, no journal).
    let mut names: Vec<String> = fs::read_dir(r.join("var/lib/rpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with("-shm") && !n.ends_with("-journal")),
        "{names:?}"
    );

    // A FIFO planted where rpm's newest layout keeps its database (this container's root
    // only): looked at, refused, never opened; nothing blocks.
    let sysimage = r.join("usr/lib/sysimage/rpm");
    fs::create_dir_all(&sysimage).unwrap();
    run(Command::new("mkfifo").arg(sysimage.join("rpmdb.sqlite")));
    let t = std::time::Instant::now();
    let (status, v) = server.request("GET", &format!("/{}/rpms", c.id));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("database_unreadable")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a regular file")),
        "{v}"
    );
    let (status, _) = server.get(&format!("/{}", c.id));
    assert_eq!(status, 200);
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

/// What `rpm -V` looks through: a read-only copy of the root's mounts, every one `nodev`,
/// on this machine (`--root DIR`) and inside a container's own mount namespace. A device
/// node there cannot be opened (its driver never sees the open), nothing can be written,
/// reading leaves access times as they were, and the container's mounts are what they were.
#[test]
fn files_are_looked_at_through_a_read_only_nodev_view() {
    if !privileged(&["unshare", "mknod", "/bin/busybox"]) {
        return;
    }
    use std::os::fd::AsRawFd;
    // `path` inside the view (its descriptor's magic link leads to the copy's root).
    let open = |view: &sidecar::rootfs::Root, path: &str, write: bool| {
        let p = format!("/proc/self/fd/{}/{path}", view.fd().as_raw_fd());
        fs::OpenOptions::new().read(!write).write(write).open(p)
    };
    let check = |r: &Path, view: &sidecar::rootfs::Root| {
        fs::write(r.join("plain.txt"), "plain\n").unwrap();
        run(Command::new("mknod")
            .arg(r.join("null-dev"))
            .args(["c", "1", "3"]));
        // The device works where it is (so the refusal below is the view's doing).
        assert!(fs::File::open(r.join("null-dev")).is_ok());
        let e = open(view, "null-dev", false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        // Its access time older than its mtime: a read on the container's own mount
        // (relatime) would set it; through the view (noatime) nothing changes.
        run(Command::new("touch")
            .args(["-a", "-d", "2000-01-01"])
            .arg(r.join("plain.txt")));
        let atime = || {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(r.join("plain.txt")).unwrap().atime()
        };
        let before = atime();
        assert_eq!(
            std::io::read_to_string(open(view, "plain.txt", false).unwrap()).unwrap(),
            "plain\n"
        );
        assert_eq!(
            atime(),
            before,
            "reading through the view set the access time"
        );
        let e = open(view, "plain.txt", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        fs::remove_file(r.join("null-dev")).unwrap();
    };

    let dir = TempDir::new("vt-view");
    let root = sidecar::rootfs::Root::of_dir(dir.path()).unwrap();
    let view = root
        .read_only_view()
        .expect("a view of a directory of this machine");
    check(dir.path(), &view);

    let c = FakeContainer::start(Spec::podman("exec sleep 100000"));
    let mounts = || fs::read_to_string(format!("/proc/{}/mountinfo", c.init)).unwrap();
    let before = mounts();
    let root = sidecar::rootfs::Root::of_pid(c.init).unwrap();
    let view = root
        .read_only_view()
        .expect("a view made inside the container's mount namespace");
    check(c.root.path(), &view);
    drop(view);
    assert_eq!(mounts(), before);
}

/// Mounts the container made *unbindable* over a package's directory and over one of its
/// files are looked through as the container sees them. `open_tree(OPEN_TREE_CLONE |
/// AT_RECURSIVE)` silently leaves unbindable mounts out of its clone, so a view cloned
/// straight from the container's mounts showed the package's own files under such a mount:
/// a changed file mounted over the original and made unbindable was hidden from `-V`.
/// What the sidecar says, by container ID (the view made in the container's mount
/// namespace) and with `--root` run inside that namespace, must be rpm's answer there; and
/// neither the container's mounts nor ours change.
#[test]
fn unbindable_mounts_are_verified_as_the_container_sees_them() {
    if !privileged(&[
        "unshare",
        "nsenter",
        "mount",
        "/bin/busybox",
        "rpm",
        "rpmbuild",
        "mkfifo",
        "python3",
    ]) {
        return;
    }
    let (_top, c) = changed_container("vt-unbind-build");
    let r = c.root.path();
    let (rs, ns) = (
        r.to_str().unwrap().to_string(),
        format!("--mount=/proc/{}/ns/mnt", c.init),
    );
    // Copies with one changed byte each (same size, same mtime: only the digest differs).
    let shadow = TempDir::new("vt-unbind-shadow");
    let s = shadow.path().to_str().unwrap();
    run(Command::new("sh").arg("-c").arg(format!(
        "set -e; cp -a {rs}/opt/vt {s}/vt; cp -a {rs}/opt/vt/bin/other {s}/other
         for f in {s}/vt/clean.txt {s}/other; do
           m=$(stat -c %Y $f); sed -i 's/^./X/' $f; touch -d @$m $f
         done"
    )));
    let host_mounts = || fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts = || fs::read_to_string(format!("/proc/{}/mountinfo", c.init)).unwrap();
    let ours = host_mounts();
    // Inside the container's mount namespace (where its root is `r`, chrooted).
    run(Command::new("nsenter").arg(&ns).args([
        "sh",
        "-c",
        &format!(
            "set -e; mount --bind {s}/vt {rs}/opt/vt; mount --make-unbindable {rs}/opt/vt
             mount --bind {s}/other {rs}/opt/vt/bin/other
             mount --make-unbindable {rs}/opt/vt/bin/other"
        ),
    ]));
    let before = mounts();
    let mut rpm = Command::new("nsenter");
    rpm.arg(&ns).args([
        "rpm",
        "--root",
        &rs,
        "--dbpath",
        "/var/lib/rpm",
        "-Va",
        "--nodeps",
        "--noscripts",
    ]);
    let out = rpm.output().unwrap();
    let want = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "..5......    /opt/vt/clean.txt",
        "..5......    /opt/vt/bin/other",
    ] {
        assert!(
            want.lines().any(|l| l == line),
            "rpm: no {line:?} in\n{want}"
        );
    }
    let (got, err, code) = sidecar(&[&c.id, "--verify"]);
    assert_eq!((got.as_str(), code), (want.as_str(), 1), "by ID: {err}");
    let out = Command::new("nsenter")
        .arg(&ns)
        .args([SIDECAR, "rpms", "--root", &rs, "--verify"])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        got,
        want,
        "--root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mounts(), before, "the container's mounts changed");
    assert_eq!(host_mounts(), ours, "our mounts changed");
}

/// Without `CAP_SYS_ADMIN` no read-only view can be made, and every file is looked at
/// through an `O_PATH` probe instead: the answer must be rpm's all the same, for the
/// changed installation and for a device node, a socket and symlinks out of the root put
/// where a package's files were (none of them opened).
#[test]
fn verify_without_cap_sys_admin_matches_rpm() {
    if !privileged(&["rpm", "rpmbuild", "mkfifo", "mknod", "python3", "capsh"]) {
        return;
    }
    let top = TempDir::new("vt-nocap-build");
    let rpms = build(top.path());
    let root = TempDir::new("vt-nocap-root");
    let r = root.path();
    install_and_change(r, &rpms);
    let vt = r.join("opt/vt");
    for f in ["clean.txt", "keepcaps.txt", "shared.txt", "bin/other"] {
        fs::remove_file(vt.join(f)).unwrap();
    }
    run(Command::new("mknod")
        .arg(vt.join("clean.txt"))
        .args(["c", "1", "3"]));
    run(Command::new("python3")
        .args([
            "-c",
            "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
        ])
        .arg(vt.join("keepcaps.txt")));
    std::os::unix::fs::symlink("/etc/shadow", vt.join("shared.txt")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../etc/shadow", vt.join("bin/other")).unwrap();
    let rs = r.to_str().unwrap();
    let (want, _, want_code) = rpm_in(r, &["-Va", "--nodeps", "--noscripts"]);
    assert!(want.contains(".M.D.....    /opt/vt/clean.txt"), "{want}");
    let (with_view, err, code) = sidecar(&["--root", rs, "--verify"]);
    assert_eq!(
        (with_view.as_str(), code),
        (want.as_str(), want_code),
        "{err}"
    );
    let out = Command::new("capsh")
        .args(["--drop=cap_sys_admin", "--", "-c"])
        .arg(format!("exec {SIDECAR} rpms --root {rs} --verify"))
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(got, want, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(want_code));
    // And one package at a time.
    for name in ["vt-files", "vt-clean", "vt-shared"] {
        let (want, _, want_code) = rpm_in(r, &["-V", "--nodeps", "--noscripts", name]);
        let out = Command::new("capsh")
            .args(["--drop=cap_sys_admin", "--", "-c"])
            .arg(format!("exec {SIDECAR} rpms --root {rs} --verify {name}"))
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (&*got, out.status.code()),
            (want.as_str(), Some(want_code)),
            "{name}"
        );
    }
}

/// A package whose file belongs to a user and group the root's passwd and group do not
/// know: rpm installed it as root ("user … does not exist - using root") and its `-V` takes
/// the unknown name for root; owned by another ID it differs; once the name is known, by
/// its own ID. The sidecar says the same each time.
#[test]
fn unknown_owners_count_as_root_as_rpm_verifies_them() {
    if !privileged(&["rpm", "rpmbuild"]) {
        return;
    }
    let top = TempDir::new("vt-unknown-build");
    let spec = top.path().join("uo.spec");
    fs::write(
        &spec,
        "Name: vt-unknown\nVersion: 1\nRelease: 1\nSummary: u\nLicense: MIT\nBuildArch: noarch\n\
         %description\nu\n%install\nmkdir -p %{buildroot}/opt/uo\necho a > %{buildroot}/opt/uo/a\n\
         %files\n%attr(0644,nobodyx,nogroupx) /opt/uo/a\n",
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--define"])
        .arg(format!("_topdir {}", top.path().display()))
        .arg(&spec));
    let pkg = top.path().join("RPMS/noarch/vt-unknown-1-1.noarch.rpm");
    let root = TempDir::new("vt-unknown-root");
    let r = root.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\n").unwrap();
    let rs = r.to_str().unwrap();
    run(Command::new("rpm").args(["--root", rs, "--dbpath", "/var/lib/rpm", "--initdb"]));
    run(Command::new("rpm")
        .args(["--root", rs, "--dbpath", "/var/lib/rpm", "-i", "--nodeps"])
        .arg(&pkg));
    let same = |what: &str| {
        let (want, _, want_code) = rpm_in(r, &["-V", "--nodeps", "--noscripts", "vt-unknown"]);
        let (got, err, code) = sidecar(&["--root", rs, "--verify", "vt-unknown"]);
        assert_eq!((&got, code), (&want, want_code), "{what}: {err}");
        got
    };
    // Root's, as rpm made it: nothing differs.
    assert_eq!(same("installed as root"), "");
    // Another ID: owner and group differ.
    let a = r.join("opt/uo/a");
    run(Command::new("chown").arg("1234:1234").arg(&a));
    assert_eq!(same("owned by 1234"), ".....UG..    /opt/uo/a\n");
    // The user known as 1234 now, the file root's again: only the owner differs.
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobodyx:x:1234:1234::/:/bin/sh\n",
    )
    .unwrap();
    run(Command::new("chown").arg("0:0").arg(&a));
    assert_eq!(same("user known"), ".....U...    /opt/uo/a\n");
}
