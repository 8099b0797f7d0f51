//! Shared by the integration tests: privilege checks that fail loudly under CI, containers
//! made with `unshare` (their own mount, PID, UTS, IPC and network namespaces, a busybox root,
//! a cgroup named like a runtime's), a real `sidecar serve` on loopback, and real `curl`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SIDECAR: &str = env!("CARGO_BIN_EXE_sidecar");

/// True when the test may run. Without root (or a tool), a test prints why it skipped;
/// under `CI=true` that is a failure instead.
pub fn privileged(tools: &[&str]) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| !have(t))
        .map(|t| t.to_string())
        .collect();
    if !rustix::process::geteuid().is_root() {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("SKIPPED: this test needs {}", missing.join(", "));
    if ci {
        panic!("{msg} (CI=true turns skips into failures)");
    }
    eprintln!("\n!!!!! {msg} !!!!!\n");
    false
}

pub fn have(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh 64-hex ID, unique per call (tests share the machine with other runs).
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sidecar-{tag}-{}", &random_id()[..12]));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The cgroup v1 hierarchies a fake container is placed in, as podman's cgroupfs manager does.
const HIERARCHIES: [&str; 2] = ["pids", "systemd"];

/// The directories under `/sys/fs/cgroup` a fake container's cgroup goes in: the v1
/// hierarchies, and the unified one where this machine has it (hybrid: `unified`; pure v2:
/// `/sys/fs/cgroup` itself).
pub fn hierarchies() -> Vec<String> {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return vec![String::new()];
    }
    let mut h: Vec<String> = HIERARCHIES.iter().map(|s| s.to_string()).collect();
    if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        h.push("unified".into());
    }
    h
}

/// `/sys/fs/cgroup/<hierarchy>/<rel>` for each of `hierarchies()`.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    hierarchies()
        .iter()
        .map(|h| Path::new("/sys/fs/cgroup").join(h).join(rel))
        .collect()
}

/// A container without a runtime: namespaces from `unshare`, a busybox root, a cgroup path
/// named `<parent>/<prefix><id>` so that the sidecar takes it for a runtime's container.
pub struct FakeContainer {
    pub id: String,
    pub hostname: String,
    pub root: TempDir,
    child: Child,
    /// The host PID of the container's PID 1.
    pub init: u32,
    cgroups: Vec<PathBuf>,
}

/// The PIDs whose parent is `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    sidecar::procfs::pids()
        .unwrap()
        .into_iter()
        .filter(|&p| sidecar::procfs::stat(p).is_ok_and(|s| s.ppid == parent))
        .collect()
}

pub struct Spec<'a> {
    /// `libpod-`, `docker-`, `cri-containerd-`, or "" for a container without a runtime ID.
    pub prefix: &'a str,
    pub parent: &'a str,
    pub id: String,
    pub hostname: String,
    /// Shell run as the container's PID 1 (busybox sh); `/bin/busybox` is on the PATH as
    /// applet links are not made.
    pub script: String,
    /// Capabilities dropped from the container's bounding set (util-linux `setpriv` around
    /// `unshare`, which itself still needs SYS_ADMIN and SYS_CHROOT), as a runtime does.
    pub drop_caps: Vec<&'a str>,
    /// The cgroup path below each hierarchy, exactly as a runtime names it (`docker/<id>`,
    /// `kubepods/burstable/pod<uid>/<id>`); default `<parent>/<prefix><id>`.
    pub cgroup: Option<String>,
    /// A user namespace of its own whose root is this host uid (and gid), 65536 ids from
    /// there, as rootless podman makes: the container runs as its root.
    pub userns: Option<u32>,
}

impl<'a> Spec<'a> {
    pub fn podman(script: &str) -> Spec<'a> {
        let id = random_id();
        Spec {
            prefix: "libpod-",
            parent: "libpod_parent",
            hostname: id[..12].to_string(),
            id,
            script: script.to_string(),
            drop_caps: Vec::new(),
            cgroup: None,
            userns: None,
        }
    }
}

/// Makes a user namespace, waits for a line on stdin (the test writes the maps meanwhile),
/// becomes root inside and execs its arguments.
const USERNS_PY: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) != 0:
    sys.exit("unshare(CLONE_NEWUSER): " + os.strerror(ctypes.get_errno()))
sys.stdin.readline()
os.setresgid(0, 0, 0)
os.setgroups([])
os.setresuid(0, 0, 0)
os.execvp(sys.argv[1], sys.argv[1:])
"#;

/// The user that fake containers have (and that the host does not).
pub const CONTAINER_USER: &str = "sctester";

impl FakeContainer {
    pub fn start(spec: Spec) -> FakeContainer {
        let root = TempDir::new("root");
        let r = root.path();
        for d in ["bin", "dev", "etc", "proc", "tmp", "var/lib", "usr/bin"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for (name, minor) in [("null", "3"), ("zero", "5")] {
            let ok = Command::new("mknod")
                .arg("-m666")
                .arg(r.join("dev").join(name))
                .args(["c", "1", minor])
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "mknod /dev/{name}");
        }
        std::fs::set_permissions(
            r.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        std::fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
        let applets = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap()
            .stdout;
        for applet in String::from_utf8_lossy(&applets)
            .lines()
            .filter(|a| *a != "busybox")
        {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).unwrap();
        }
        std::fs::write(r.join("etc/hostname"), format!("{}\n", spec.hostname)).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            format!("root:x:0:0:root:/root:/bin/sh\n{CONTAINER_USER}:x:1000:1000::/tmp:/bin/sh\n"),
        )
        .unwrap();
        std::fs::write(
            r.join("etc/group"),
            format!("root:x:0:\n{CONTAINER_USER}:x:1000:\nwheel:x:10:{CONTAINER_USER}\n"),
        )
        .unwrap();
        let mut cgroups = Vec::new();
        // The container's PID 1 waits until the test has put it in its cgroup (as a runtime
        // does before it starts the program); `unshare` itself stays outside, like conmon.
        let mut wait = String::new();
        let rel = spec.cgroup.clone().unwrap_or_else(|| {
            if spec.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/{}{}", spec.parent, spec.prefix, spec.id)
            }
        });
        if !rel.is_empty() {
            for dir in cgroup_dirs(&rel) {
                std::fs::create_dir_all(&dir).unwrap();
                cgroups.push(dir);
            }
            let last = rel.rsplit('/').next().unwrap();
            wait = format!("until grep -qF '{last}' /proc/self/cgroup; do sleep 0.02; done; ");
        }
        let inner = format!(
            "export PATH=/bin; hostname {}; {wait}{}",
            spec.hostname, spec.script
        );
        let mut cmd = if spec.drop_caps.is_empty() {
            Command::new("unshare")
        } else {
            let drop: Vec<String> = spec.drop_caps.iter().map(|c| format!("-{c}")).collect();
            let mut c = Command::new("setpriv");
            c.arg(format!("--bounding-set={}", drop.join(",")))
                .arg("unshare");
            c
        };
        if spec.userns.is_some() {
            // A user namespace first (python3 calls unshare(2)): the test writes its maps,
            // then the process becomes root inside and execs the `unshare` above, which
            // makes the other namespaces owned by it, as a rootless runtime does.
            let rest: Vec<String> = std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            cmd = Command::new("python3");
            cmd.arg("-c").arg(USERNS_PY).args(rest);
        }
        cmd.args([
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--net",
            "--fork",
            "--kill-child",
        ]);
        cmd.arg("--root")
            .arg(r)
            .args(["--mount-proc", "/bin/busybox", "sh", "-c"]);
        let mut child = cmd
            .arg(inner)
            .stdin(if spec.userns.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        if let Some(base) = spec.userns {
            let pid = child.id();
            let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
            wait_until("the user namespace", Duration::from_secs(10), || {
                std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|l| l != ours)
            });
            for map in ["uid_map", "gid_map"] {
                std::fs::write(format!("/proc/{pid}/{map}"), format!("0 {base} 65536\n")).unwrap();
            }
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"go\n").unwrap();
        }
        let mut c = FakeContainer {
            id: spec.id,
            hostname: spec.hostname,
            root,
            child,
            init: 0,
            cgroups,
        };
        let t = Instant::now();
        let init = loop {
            let kids = children(c.child.id());
            if let Some(&k) = kids.first() {
                break k;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the container did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        for cg in &c.cgroups {
            std::fs::write(cg.join("cgroup.procs"), init.to_string()).unwrap();
        }
        c.init = init;
        // Ready when the script has gone past its first commands.
        std::thread::sleep(Duration::from_millis(300));
        c
    }

    /// The host PIDs in the container's cgroup (the `unshare` process included).
    pub fn pids(&self) -> Vec<u32> {
        let Some(cg) = self.cgroups.first() else {
            return self.namespace_pids();
        };
        let mut p: Vec<u32> = std::fs::read_to_string(cg.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        p.sort_unstable();
        p
    }

    fn namespace_pids(&self) -> Vec<u32> {
        // Without a cgroup: the descendants of the container's PID 1.
        let mut out = vec![self.init];
        let mut i = 0;
        while i < out.len() {
            out.extend(children(out[i]));
            i += 1;
        }
        out.retain(|&p| alive(p));
        out.sort_unstable();
        out
    }

    /// The host PID of the process that is PID `ns_pid` inside the container.
    pub fn host_pid(&self, ns_pid: u32) -> u32 {
        for pid in self.pids() {
            let status = sidecar::procfs::read(pid, "status").unwrap_or_default();
            let m = sidecar::procfs::parse_status(&status);
            let nspid: Vec<&str> = m
                .get("NSpid")
                .map(|v| v.split_whitespace().collect())
                .unwrap_or_default();
            if nspid.len() > 1 && nspid.last() == Some(&ns_pid.to_string().as_str()) {
                return pid;
            }
        }
        panic!("no PID {ns_pid} in container {}", self.id)
    }

    /// Moves a host process into the container's cgroups: the sidecar then counts it as one
    /// of the container's (used for programs the busybox root does not have).
    pub fn adopt(&self, pid: u32) {
        for cg in &self.cgroups {
            std::fs::write(cg.join("cgroup.procs"), pid.to_string()).unwrap();
        }
    }

    /// Host PIDs of the container's processes whose command line contains `needle`.
    pub fn find(&self, needle: &str) -> Vec<u32> {
        self.pids()
            .into_iter()
            .filter(|&p| sidecar::procfs::argv(p).is_ok_and(|a| a.join(" ").contains(needle)))
            .collect()
    }

    pub fn stop(&mut self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(p.to_string())
                    .stderr(Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        self.stop();
        for cg in &self.cgroups {
            remove_cgroup(cg);
        }
    }
}

/// Names of cgroups that runtimes share between containers: left in place (another test may
/// be creating a child in one), while a test's own levels (a pod's `pod<uid>`) go.
const SHARED_CGROUPS: [&str; 11] = [
    "libpod_parent",
    "kubepods",
    "burstable",
    "besteffort",
    "docker",
    "kubepods.slice",
    "kubepods-burstable.slice",
    "kubepods-besteffort.slice",
    "machine.slice",
    "system.slice",
    "user.slice",
];

/// Removes a test's cgroup and its own empty parents, up to a shared or hierarchy level.
pub fn remove_cgroup(dir: &Path) {
    // A cgroup whose last process has just exited may still be busy for a moment.
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => break,
        }
    }
    let Some(mut d) = dir.parent().map(Path::to_path_buf) else {
        return;
    };
    if dir.exists() {
        return;
    }
    let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if d.parent() == Some(Path::new("/sys/fs/cgroup"))
        || d == Path::new("/sys/fs/cgroup")
        || SHARED_CGROUPS.contains(&name)
    {
        return;
    }
    while std::fs::remove_dir(&d).is_ok() {
        let Some(parent) = d.parent() else { break };
        let name = parent.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if parent.parent() == Some(Path::new("/sys/fs/cgroup"))
            || parent == Path::new("/sys/fs/cgroup")
            || SHARED_CGROUPS.contains(&name)
        {
            break;
        }
        d = parent.to_path_buf();
    }
}

/// A `sidecar serve` on a free loopback port.
pub struct Server {
    pub url: String,
    pub child: Child,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub const USER: &str = "admin";
pub const PASSWORD: &str = "s3cret-Pass";

impl Server {
    /// Starts the server with a credentials file holding `admin:s3cret-Pass`, plus `args`.
    pub fn start(args: &[&str]) -> Server {
        let dir = TempDir::new("creds");
        let creds = dir.path().join("credentials");
        std::fs::write(&creds, format!("{USER}:{PASSWORD}\n")).unwrap();
        let mut all = vec!["--credentials", creds.to_str().unwrap()];
        all.extend_from_slice(args);
        let s = Server::start_raw(&all, &[]);
        drop(dir);
        s
    }

    /// Starts `sidecar serve --listen 127.0.0.1:0 ARGS` with extra environment variables.
    pub fn start_raw(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(SIDECAR);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied());
        Server::start_command(cmd)
    }

    /// Starts `program ARGS` that ends up as a sidecar server (`sh -c '…; exec sidecar
    /// serve …'`); its first listener is the one tests talk to.
    pub fn start_program(program: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Server::start_command(cmd)
    }

    fn start_command(mut cmd: Command) -> Server {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().expect("the server printed nothing").unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&first).unwrap_or_else(|_| panic!("not JSON: {first}"));
        let url = format!("http://{}", v["address"].as_str().unwrap());
        let log = std::sync::Arc::new(std::sync::Mutex::new(vec![first]));
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Server { url, child, log }
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// `curl --digest` with the right password: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            &format!("{}{}", self.url, path),
        ])
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn request(&self, method: &str, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            "-X",
            method,
            &format!("{}{}", self.url, path),
        ]);
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// `curl -T FILE` to `PUT /<c>/rpms[?query]` (a package transaction): (status, JSON).
    pub fn put_rpm(&self, c: &str, file: &Path, query: &str) -> (u16, serde_json::Value) {
        let (status, body) = curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            "-T",
            file.to_str().unwrap(),
            &format!("{}/{c}/rpms{query}", self.url),
        ]);
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// `POST /<c>/exec` with `body` (JSON) by real curl: (status, body text).
    pub fn exec(&self, c: &str, body: &serde_json::Value) -> (u16, String) {
        let dir = TempDir::new("exec-body");
        let f = dir.path().join("body.json");
        std::fs::write(&f, body.to_string()).unwrap();
        curl(&[
            "--digest",
            "--user",
            &format!("{USER}:{PASSWORD}"),
            "--data-binary",
            &format!("@{}", f.display()),
            &format!("{}/{c}/exec", self.url),
        ])
    }

    pub fn alive(&self) -> bool {
        curl(&[&format!("{}/healthz", self.url)]).0 == 200
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs real curl; returns the HTTP status and the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A child process killed when the test ends, passed or not.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn alive(pid: u32) -> bool {
    sidecar::procfs::stat(pid).is_ok_and(|s| s.state != 'Z')
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container whose root is a tmpfs (or an overlay on one) that `script` sets up in a mount
/// namespace of its own (`unshare` of the mount, PID, UTS, IPC and network namespaces,
/// private propagation), in cgroups named like podman's. The script ends by exec'ing the
/// container's init inside the root; the init waits until it is in its cgroup (`libpod-<id>`)
/// and then execs `sleep`. The root's mount point `layer` exists in that namespace only.
pub struct LayerContainer {
    pub id: String,
    /// The host PID of the container's init.
    pub init: u32,
    /// Where `script` mounted the root's tmpfs (in the container's mount namespace).
    pub layer: String,
    child: Child,
    cgroups: Vec<PathBuf>,
}

impl LayerContainer {
    pub fn start(id: String, layer: String, script: &str) -> LayerContainer {
        let mut cgroups = Vec::new();
        for h in ["pids", "systemd"] {
            let dir = PathBuf::from(format!("/sys/fs/cgroup/{h}/libpod_parent/libpod-{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            cgroups.push(dir);
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
            .args(["--propagation", "private", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let init = loop {
            if let Some(&k) = children(child.id()).first() {
                break k;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the container did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        for cg in &cgroups {
            std::fs::write(cg.join("cgroup.procs"), init.to_string()).unwrap();
        }
        let c = LayerContainer {
            id,
            init,
            layer,
            child,
            cgroups,
        };
        wait_until("the container's sleep", Duration::from_secs(10), || {
            sidecar::procfs::argv(c.init).is_ok_and(|a| a.first().is_some_and(|p| p == "sleep"))
        });
        c
    }

    /// The first 12 characters of the ID, as podman shows it.
    pub fn short(&self) -> &str {
        &self.id[..12]
    }
}

impl Drop for LayerContainer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.init.to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The tmpfs was mounted in the container's mount namespace only: on this machine its
        // mount point is an empty directory (removing it earlier would detach the mount).
        let _ = std::fs::remove_dir(&self.layer);
        for _ in 0..50 {
            if self
                .cgroups
                .iter()
                .all(|cg| std::fs::remove_dir(cg).is_ok() || !cg.exists())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
