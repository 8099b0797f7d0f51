//! Tools for shell-less containers (`sidecar exec --tools DIR`, `"tools": true`): a container
//! made with `unshare` whose root holds no shell at all (one static program) gets a busybox
//! toolkit at `/.sidecar/toolkit` and runs `sh -c 'ls /; id'` in its own root; its mount
//! table and its files are unchanged afterwards; a read-only root works.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOOLS: [&str; 4] = ["unshare", "mount", "curl", "/bin/busybox"];

/// A toolkit directory as the `:toolkit` image has it: `bin/busybox` and its applets.
fn toolkit() -> TempDir {
    let t = TempDir::new("toolkit");
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&applets.stdout).lines() {
        if a != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(a)).unwrap();
        }
    }
    t
}

/// A distroless-like container: its root holds one static program (`/app/sleep`, busybox
/// under an applet's name, so there is no `sh` to call), `/etc`, `/proc`, a symlink, and is
/// optionally a read-only mount. Its cgroup is named as podman's.
struct Bare {
    id: String,
    root: TempDir,
    child: Child,
    init: u32,
    cgroups: Vec<std::path::PathBuf>,
    read_only: bool,
}

impl Bare {
    fn start(read_only: bool) -> Bare {
        let id = random_id();
        let root = TempDir::new("bare");
        let r = root.path();
        for d in ["app", "etc", "proc", "data"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", r.join("app/sleep")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/:/nonexistent\napp:x:1001:1001::/data:/nonexistent\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\napp:x:1001:\n").unwrap();
        std::fs::write(r.join("data/note"), "from the container\n").unwrap();
        std::os::unix::fs::symlink("app", r.join("opt")).unwrap();
        if read_only {
            let p = r.to_str().unwrap();
            let ok = Command::new("mount")
                .args(["--bind", p, p])
                .status()
                .unwrap()
                .success()
                && Command::new("mount")
                    .args(["-o", "remount,bind,ro", p])
                    .status()
                    .unwrap()
                    .success();
            assert!(ok, "a read-only bind mount of {p}");
        }
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--pid",
                "--uts",
                "--ipc",
                "--net",
                "--fork",
                "--kill-child",
            ])
            .arg("--root")
            .arg(r)
            .args(["--mount-proc", "/app/sleep", "100700"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut init = 0;
        wait_until("the container", Duration::from_secs(10), || {
            init = children(child.id()).first().copied().unwrap_or(0);
            init != 0
        });
        let cgroups = cgroup_dirs(&format!("libpod_parent/libpod-{id}"));
        for d in &cgroups {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("cgroup.procs"), init.to_string()).unwrap();
        }
        // Its mounts are in place once /proc is (unshare mounts it before exec).
        wait_until("its /proc", Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{init}/mountinfo"))
                .is_ok_and(|m| m.contains(" /proc "))
        });
        Bare {
            id,
            root,
            child,
            init,
            cgroups,
            read_only,
        }
    }

    fn mountinfo(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.init)).unwrap()
    }

    /// What the sidecar could have written: every name under the root with its size,
    /// mode, owner and modification time.
    fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            let m = std::fs::symlink_metadata(&dir).unwrap();
            out.push(format!(
                "{} {} {:o} {}",
                dir.display(),
                m.size(),
                m.mode(),
                m.mtime_nsec()
            ));
            if dir.ends_with("proc") {
                continue;
            }
            for e in std::fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(format!(
                        "{} {} {:o} {} {}",
                        e.path().display(),
                        m.size(),
                        m.mode(),
                        m.uid(),
                        m.mtime_nsec()
                    ));
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.init.to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for d in &self.cgroups {
            remove_cgroup(d);
        }
        if self.read_only {
            let _ = Command::new("umount").arg(self.root.path()).status();
        }
    }
}

fn exec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(SIDECAR)
        .arg("exec")
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

fn shell_in_a_shell_less_container(read_only: bool) {
    let kit = toolkit();
    let kit_dir = kit.path().to_str().unwrap();
    let c = Bare::start(read_only);
    let short = &c.id[..12];
    let before = (c.mountinfo(), c.snapshot());

    // Without tools there is nothing to run.
    let (code, _, err) = exec(&[short, "--", "sh", "-c", "true"]);
    assert_eq!(code, 127, "{err}");

    let (code, out, err) = exec(&[
        short,
        "--tools",
        kit_dir,
        "--",
        "sh",
        "-c",
        "ls /; id; echo $PATH; cat /data/note; ls /opt/; ls /.sidecar/toolkit/bin/sh; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let top: Vec<&str> = lines.by_ref().take(5).collect();
    // Its own root (`.sidecar` is a dot-entry `ls` does not show), and the user of its init.
    assert_eq!(top, ["app", "data", "etc", "opt", "proc"], "{out}");
    assert_eq!(
        lines.next(),
        Some("uid=0(root) gid=0(root) groups=0(root)"),
        "{out}"
    );
    assert!(
        lines.next().unwrap().starts_with("/.sidecar/toolkit/bin:"),
        "{out}"
    );
    assert_eq!(lines.next(), Some("from the container"));
    assert_eq!(
        lines.next(),
        Some("sleep"),
        "the container's symlink /opt -> app"
    );
    assert_eq!(lines.next(), Some("/.sidecar/toolkit/bin/sh"));
    assert_eq!(
        lines.next(),
        Some("/app/sleep 100700 "),
        "its own PID namespace and /proc"
    );

    // Its programs are still reachable; a named user works; the working directory is kept.
    let (code, out, err) = exec(&[
        short,
        "--tools",
        kit_dir,
        "--user",
        "app",
        "-w",
        "/data",
        "--",
        "sh",
        "-c",
        "id -un; pwd; /app/sleep 0 && echo ran",
    ]);
    assert_eq!((code, out.as_str()), (0, "app\n/data\nran\n"), "{err}");

    // Nothing was written into the container and its mount table never changed.
    let after = (c.mountinfo(), c.snapshot());
    assert_eq!(before.0, after.0, "the container's mountinfo changed");
    assert!(!after.0.contains(".sidecar") && !after.0.contains(kit_dir));
    assert_eq!(before.1, after.1, "files of the container changed");

    // A write below the top level reaches the container (unless its root is read-only);
    // one at the top level lands in the tmpfs and is gone.
    let (code, out, err) = exec(&[
        short,
        "--tools",
        kit_dir,
        "--",
        "sh",
        "-c",
        "echo x > /scratch && cat /scratch; if echo y 2>&1 > /data/written; then echo wrote; fi",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("x\n"), "{out}");
    assert!(!c.root.path().join("scratch").exists());
    if read_only {
        assert!(!out.contains("wrote"), "{out}");
        assert!(!c.root.path().join("data/written").exists());
    } else {
        assert!(out.contains("wrote"), "{out}");
        std::fs::remove_file(c.root.path().join("data/written")).unwrap();
    }

    assert_eq!(c.mountinfo(), before.0);

    // The API: the server's toolkit with "tools": true.
    let server = Server::start(&["--toolkit", kit_dir]);
    let body = TempDir::new("body");
    let f = body.path().join("b.json");
    std::fs::write(
        &f,
        json!({"argv": ["sh", "-c", "ls /.sidecar/toolkit/bin/busybox; cat /data/note"], "tools": true})
            .to_string(),
    )
    .unwrap();
    let (status, text) = curl(&[
        "--digest",
        "--user",
        &format!("{USER}:{PASSWORD}"),
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", f.display()),
        &format!("{}/{short}/exec", server.url),
    ]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["stdout"], "/.sidecar/toolkit/bin/busybox\nfrom the container\n",
        "{v}"
    );
    assert_eq!(c.mountinfo(), before.0);
}

#[test]
fn a_shell_less_container_gets_a_shell_without_being_changed() {
    if !privileged(&TOOLS) {
        return;
    }
    shell_in_a_shell_less_container(false);
}

#[test]
fn a_read_only_root_works() {
    if !privileged(&TOOLS) {
        return;
    }
    shell_in_a_shell_less_container(true);
}

#[test]
fn a_toolkit_needs_its_bin_and_the_mount_namespace() {
    if !privileged(&TOOLS) {
        return;
    }
    let c = Bare::start(false);
    let short = &c.id[..12];
    let empty = TempDir::new("nokit");
    let (code, _, err) = exec(&[short, "--tools", empty.path().to_str().unwrap(), "--", "sh"]);
    assert_eq!(code, 125);
    assert!(err.contains("/bin directory"), "{err}");
    let kit = toolkit();
    let (code, _, err) = exec(&[
        short,
        "--tools",
        kit.path().to_str().unwrap(),
        "--ns",
        "net",
        "--",
        "sh",
    ]);
    assert_eq!(code, 125);
    assert!(err.contains("mount namespace"), "{err}");
    assert!(Path::new(kit.path()).join("bin/sh").exists());
}
