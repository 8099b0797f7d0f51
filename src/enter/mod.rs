//! Entering a container to run a program in it, as `nsenter --all --root` does, plus what
//! `podman exec` adds: the container's environment, user, cgroups and capabilities.
//!
//! The steps, in order, each a small function below:
//! 1. `prepare`: while still in our own namespaces and root, open everything we will need
//!    (a pidfd of the target, its root and cwd, its namespace files for the fallback, the
//!    cgroup directories to join), read its environment, capabilities and users, and check
//!    the target is still the process the caller saw (same start time): PIDs are reused.
//! 2. `join`: move into the target's cgroups, `setns` into its namespaces (one call on the
//!    pidfd, or the `/proc/<pid>/ns/*` files one by one, user first and mount last), then
//!    `fchdir` + `chroot(".")` into its root and change to the working directory.
//! 3. `fork`: the PID namespace applies only to children. The child drops to the target's
//!    capabilities, switches user and `exec`s the program found in the container's `PATH`;
//!    why it could not is sent back over a close-on-exec pipe.
//! 4. The parent waits: passing stdio through and forwarding signals (the command line), or
//!    capturing the program's output under a time-out (the API's helper, `helper_main`).
//!
//! Invariant: everything here runs in a single-threaded process (checked first): the kernel
//! refuses `setns` into a mount or user namespace for a process whose threads share `fs`, and
//! only a single-threaded process may use its heap after `fork`. The HTTP server never calls
//! this module; it runs `sidecar enter` (this binary, re-executed) with the request on stdin.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::procfs::{self, Caps};
use crate::rootfs::Root;
use crate::sys;

/// Namespace kinds in the order the fallback joins them: user first (it grants the
/// capabilities the others need), mount last (it changes how every later path resolves).
pub const KINDS: [(&str, i32); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// The `PATH` a program is looked up in when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Output kept per stream when capturing; the rest is read and dropped (`truncated`).
pub const MAX_OUTPUT: usize = 1 << 20;

/// What to run where. The API's helper reads it as JSON on stdin; the command line builds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The container's ID, for messages.
    pub container: String,
    /// A process of the container (as we see it) and its start time when it was chosen.
    pub pid: u32,
    pub starttime: u64,
    pub argv: Vec<String>,
    /// Set on top of the environment of the target process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container; default: the target process's.
    #[serde(default)]
    pub cwd: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`; default root.
    #[serde(default)]
    pub user: Option<String>,
    /// Namespace kinds to join; default: every one of the target's that differs from ours.
    #[serde(default)]
    pub ns: Option<Vec<String>>,
    /// Seconds before the program's process group is killed; none: no limit.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Keep the sidecar's capabilities instead of taking the target's.
    #[serde(default)]
    pub privileged: bool,
    /// Join through `/proc/<pid>/ns/*` one by one (the path for kernels before 5.8).
    #[serde(default)]
    pub setns_files: bool,
    /// Bytes for the program's stdin (capture mode only).
    #[serde(default)]
    pub stdin: Option<String>,
    /// The program's stdin is the helper's inherited descriptor 3 instead (capture mode
    /// only): a memfd holding an uploaded package, which the program (rpm) reopens by path
    /// as `/proc/self/fd/0`. Nothing is written anywhere for it.
    #[serde(default)]
    pub stdin_from_fd3: bool,
}

/// Why a program could not be run. Each variant maps to one API code (see `code`).
#[derive(Debug)]
pub enum Error {
    /// The target process is gone, or was replaced by another with its PID.
    Gone { container: String, what: String },
    /// The kernel refused a step; `needs` names the capability that step takes.
    Denied {
        step: &'static str,
        needs: &'static str,
        source: io::Error,
    },
    /// The request itself is wrong: unknown user, namespace, directory.
    Bad(String),
    /// The program is not in the container (exit status 127 on the command line).
    NotFound { program: String, searched: String },
    /// The program is there but cannot be executed (126).
    NotExecutable { program: String, source: io::Error },
    /// Any other failure, with the step it happened in.
    Io {
        step: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Gone { container, what } => write!(f, "container {container} {what}"),
            Error::Denied { step, needs, source } => write!(
                f,
                "not allowed to {step} ({source}): the sidecar needs {needs} (podman run --cap-add, or securityContext.capabilities in Kubernetes)"
            ),
            Error::Bad(m) => f.write_str(m),
            Error::NotFound { program, searched } => {
                write!(f, "{program}: not found in the container (PATH searched: {searched})")
            }
            Error::NotExecutable { program, source } => {
                write!(f, "{program}: cannot be executed in the container ({source})")
            }
            Error::Io { step, source } => write!(f, "cannot {step}: {source}"),
        }
    }
}

impl Error {
    /// The API's status and stable code for this error.
    pub fn code(&self) -> (u16, &'static str) {
        match self {
            Error::Gone { .. } => (404, "container_not_found"),
            Error::Denied { .. } => (403, "permission_denied"),
            Error::Bad(_) => (400, "bad_request"),
            Error::NotFound { .. } => (422, "program_not_found"),
            Error::NotExecutable { .. } => (422, "not_executable"),
            Error::Io { .. } => (500, "io_error"),
        }
    }

    /// The exit status the command line reports, as a shell would.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::NotFound { .. } => 127,
            Error::NotExecutable { .. } => 126,
            _ => 125,
        }
    }

    fn io(step: &'static str, needs: &'static str) -> impl Fn(io::Error) -> Error {
        move |source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
                step,
                needs,
                source,
            },
            _ => Error::Io { step, source },
        }
    }
}

/// How a program ended, and what it printed when captured.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub exit_code: Option<i32>,
    /// The signal that ended it, by name (`KILL`), when one did.
    pub signal: Option<String>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub truncated: Truncated,
    pub duration_ms: u64,
    /// Processes the program started that left its process group (`setsid`): a time-out
    /// does not kill them. PIDs as the sidecar sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escaped: Vec<u32>,
    /// What did not go as asked but did not stop the program (cgroups not joined...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The exit status as a shell reports it (128+N for signal N); not in the API's JSON.
    #[serde(skip)]
    pub status: i32,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Truncated {
    pub stdout: bool,
    pub stderr: bool,
}

/// Where the program's stdin, stdout and stderr go.
pub enum Stdio {
    /// Ours, passed through (the command line, like `nsenter`).
    Inherit,
    /// Pipes: the request's `stdin` is written, output is captured (the API's helper).
    Capture,
}

/// The identity the program runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// Resolves `spec` (`name`, `uid`, `name:group`, `uid:gid`; empty for root) against the
/// container's `/etc/passwd` and `/etc/group` texts. Supplementary groups are those that list
/// the user by name, plus the primary group.
pub fn resolve_user(spec: Option<&str>, passwd: &str, group: &str) -> Result<Ident, Error> {
    let users = procfs::parse_passwd(passwd);
    let groups = procfs::parse_group(group);
    let spec = spec.unwrap_or("").trim();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    // (uid_t)-1 means "leave unchanged" to setresuid and chown: never an identity to take.
    for id in [Some(u), g].into_iter().flatten() {
        if id.parse::<u32>() == Ok(u32::MAX) || id.parse::<u64>().is_ok_and(|n| n > u32::MAX as u64)
        {
            return Err(Error::Bad(format!(
                "'{id}' is not a valid uid or gid (at most 4294967294)"
            )));
        }
    }
    let entry = match u.parse::<u32>() {
        Ok(uid) => users.iter().find(|e| e.uid == uid),
        Err(_) => Some(users.iter().find(|e| e.name == u).ok_or_else(|| {
            Error::Bad(format!(
                "no user '{u}' in the container's /etc/passwd: give a uid, or uid:gid"
            ))
        })?),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => u.parse().unwrap_or(0),
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    Error::Bad(format!("no group '{g}' in the container's /etc/group"))
                })?,
        },
        // A uid the container does not know gets group 0, as podman and docker do.
        None => entry.map_or(0, |e| e.gid),
    };
    let mut gids = vec![gid];
    if let (Some(e), None) = (entry, g) {
        for gr in &groups {
            if gr.members.contains(&e.name) && !gids.contains(&gr.gid) {
                gids.push(gr.gid);
            }
        }
    }
    Ok(Ident {
        uid,
        gid,
        groups: gids,
        home: entry.map(|e| e.home.clone()).filter(|h| !h.is_empty()),
    })
}

/// The environment the program gets: the target's `KEY=VALUE` strings with `over` on top,
/// and `HOME` of the user when neither sets it for a user other than the target's.
pub fn environment(
    target: &[String],
    over: &BTreeMap<String, String>,
    home: Option<&str>,
) -> Vec<(String, String)> {
    // The target's order is kept; each name's place is looked up in a map, so the merge
    // is O(n log n) however many variables there are.
    let mut env: Vec<(String, String)> = Vec::new();
    let mut place: BTreeMap<String, usize> = BTreeMap::new();
    let mut set = |k: &str, v: &str| match place.get(k) {
        Some(&i) => env[i].1 = v.to_string(),
        None => {
            place.insert(k.to_string(), env.len());
            env.push((k.to_string(), v.to_string()));
        }
    };
    for kv in target {
        if let Some((k, v)) = kv.split_once('=') {
            if !k.is_empty() {
                set(k, v);
            }
        }
    }
    if let Some(h) = home {
        if !over.contains_key("HOME") {
            set("HOME", h);
        }
    }
    for (k, v) in over {
        set(k, v);
    }
    env
}

/// `mnt,net` (the command line's `--ns`, or the API's `"ns"` as a string) as a list.
pub fn ns_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Which namespaces to join: the asked ones (or all kinds), less those we already share
/// with the target. Returns `CLONE_NEW*` flags and the kinds, in `KINDS` order.
pub fn namespaces_to_join(
    asked: Option<&[String]>,
    ours: impl Fn(&str) -> Option<u64>,
    theirs: impl Fn(&str) -> Option<u64>,
) -> Result<(i32, Vec<&'static str>), Error> {
    if let Some(asked) = asked {
        // Joining nothing would run the program on the node, not in the container.
        if asked.is_empty() {
            return Err(Error::Bad(
                "ns names no namespace: name some (mnt, uts, ipc, net, pid, cgroup, user) or leave it out to join them all".into(),
            ));
        }
        for a in asked {
            if !KINDS.iter().any(|(k, _)| k == a) {
                return Err(Error::Bad(format!(
                    "unknown namespace '{a}': use mnt, uts, ipc, net, pid, cgroup, user"
                )));
            }
        }
    }
    let mut flags = 0;
    let mut kinds = Vec::new();
    for (kind, flag) in KINDS {
        if asked.is_some_and(|a| !a.iter().any(|x| x == kind)) {
            continue;
        }
        let t = theirs(kind);
        if t.is_none() {
            return Err(Error::Denied {
                step: "read the target's namespaces",
                needs: "CAP_SYS_PTRACE",
                source: io::Error::from_raw_os_error(libc::EACCES),
            });
        }
        if t != ours(kind) {
            flags |= flag;
            kinds.push(kind);
        }
    }
    Ok((flags, kinds))
}

/// Everything opened and read before leaving our own namespaces.
struct Prepared {
    pidfd: OwnedFd,
    /// The target's root, when the mount namespace is joined (else the program sees ours).
    root: Option<Root>,
    /// The target's working directory, used when the request names none.
    cwd: Option<OwnedFd>,
    flags: i32,
    /// For the fallback: the namespace files, in joining order.
    ns_files: Vec<OwnedFd>,
    env: Vec<(String, String)>,
    ident: Ident,
    /// The target's capabilities, which the program is limited to (unless privileged).
    caps: Option<Caps>,
    our_caps: Caps,
    last_cap: u32,
    /// `cgroup.procs` files of the target's cgroups that differ from ours, opened for
    /// writing while we still see our own `/sys/fs/cgroup`; the program moves itself in.
    cgroups: Vec<(String, OwnedFd)>,
    /// Our `/proc`, held to find the program's descendants once `/proc` is the target's.
    proc_dir: Option<OwnedFd>,
    notes: Vec<String>,
}

fn gone(req: &Request) -> Error {
    Error::Gone {
        container: req.container.clone(),
        what: "has exited (its process is gone)".into(),
    }
}

fn prepare(req: &Request) -> Result<Prepared, Error> {
    let me = std::process::id();
    if procfs::stat(me).map_or(1, |s| s.threads) != 1 {
        return Err(Error::Io {
            step: "enter a container from a multi-threaded process",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    if req.argv.is_empty() || req.argv[0].is_empty() {
        return Err(Error::Bad("no program to run: argv is empty".into()));
    }
    let pid = req.pid;
    let same = || procfs::stat(pid).is_ok_and(|s| s.starttime == req.starttime);
    if !same() {
        return Err(gone(req));
    }
    let pidfd = sys::pidfd_open(pid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => gone(req),
        _ => Error::Io {
            step: "open a pidfd of the target",
            source: e,
        },
    })?;
    let ours = |kind: &str| procfs::namespace(me, kind);
    let (flags, kinds) = namespaces_to_join(req.ns.as_deref(), ours, |kind: &str| {
        procfs::namespace(pid, kind)
    })?;
    let mount = flags & libc::CLONE_NEWNS != 0;
    let ptrace = Error::io("open the target's root", "CAP_SYS_PTRACE");
    let root = Root::of_pid(pid).map_err(&ptrace)?;
    let cwd = match (&req.cwd, mount) {
        (None, true) => open_path(&format!("/proc/{pid}/cwd")).ok(),
        _ => None,
    };
    let mut notes = Vec::new();
    // The user database of the root the program will see. A FIFO or device planted there is
    // never opened: the program still runs, without the names that file would have given.
    let mut read_etc = |path: &str| {
        let read = if mount {
            root.read_optional(path, 4 << 20)
        } else {
            Root::of_pid(std::process::id()).and_then(|r| r.read_optional(path, 4 << 20))
        };
        match read {
            Ok(text) => text.unwrap_or_default(),
            Err(e) => {
                notes.push(format!("{path} skipped: {e}"));
                String::new()
            }
        }
    };
    let (passwd, group) = (read_etc("/etc/passwd"), read_etc("/etc/group"));
    let ident = resolve_user(req.user.as_deref(), &passwd, &group)?;
    let target_env = procfs::environ(pid).map_err(&ptrace)?;
    let home = req.user.as_ref().and(ident.home.as_deref());
    let env = environment(&target_env, &req.env, home);
    let caps = procfs::with_text(pid, "status", procfs::parse_caps).map_err(|_| gone(req))?;
    let our_caps = procfs::with_text(me, "status", procfs::parse_caps)
        .ok()
        .flatten()
        .unwrap_or_default();
    let last_cap = procfs::read_bytes("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok())
        .unwrap_or(40);
    let cgroups = cgroups_to_join(pid, me, &mut notes);
    let mut ns_files = Vec::new();
    if req.setns_files {
        for (kind, _) in KINDS.iter().filter(|(k, _)| kinds.contains(k)) {
            // setns refuses O_PATH descriptors: these are opened for reading.
            let fd = rustix::fs::open(
                format!("/proc/{pid}/ns/{kind}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("open the target's namespaces", "CAP_SYS_PTRACE")(e.into()))?;
            ns_files.push(fd);
        }
    }
    let proc_dir = rustix::fs::open(
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok();
    // Everything is held now: if the target is still the process the caller chose, every
    // handle above is of that process (a PID reused in between would show another start).
    if !same() {
        return Err(gone(req));
    }
    Ok(Prepared {
        pidfd,
        root: mount.then_some(root),
        cwd,
        flags,
        ns_files,
        env,
        ident,
        caps: if req.privileged { None } else { caps },
        our_caps,
        last_cap,
        cgroups,
        proc_dir,
        notes,
    })
}

fn open_path(path: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The `cgroup.procs` files of the target's cgroups that are not ours (cgroup v1 hierarchies
/// and the unified one), open for writing. What cannot be mapped to a directory we see, or
/// opened, is noted, not fatal: the program then runs outside that cgroup.
fn cgroups_to_join(pid: u32, me: u32, notes: &mut Vec<String>) -> Vec<(String, OwnedFd)> {
    let theirs = procfs::read(pid, "cgroup").unwrap_or_default();
    let ours = procfs::with_text(me, "cgroup", procfs::parse_cgroup).unwrap_or_default();
    let mounts =
        procfs::with_text(me, "mountinfo", procfs::parse_cgroup_mounts).unwrap_or_default();
    let mut out = Vec::new();
    let mut unseen = Vec::new();
    for line in procfs::parse_cgroup(&theirs) {
        if ours
            .iter()
            .any(|o| o.hierarchy == line.hierarchy && o.path == line.path)
        {
            continue;
        }
        match procfs::cgroup_dir(&line, &mounts) {
            Some(dir) => {
                let file = format!("{dir}/cgroup.procs");
                let fd = rustix::fs::open(
                    file.as_str(),
                    OFlags::WRONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                );
                match fd {
                    Ok(fd) => out.push((file, fd)),
                    Err(e) => notes.push(format!(
                        "not in the container's cgroup {file}: {}",
                        io::Error::from(e)
                    )),
                }
            }
            None => unseen.push(if line.controllers.is_empty() {
                "unified".to_string()
            } else {
                line.controllers
            }),
        }
    }
    if !unseen.is_empty() {
        notes.push(format!(
            "the program is not in the container's cgroups ({}): no cgroup mount of the sidecar shows them (it runs in a cgroup namespace or container of its own); the container's limits do not apply to it",
            unseen.join(", ")
        ));
    }
    out
}

/// Step 2: namespaces, root, working directory (the program joins the cgroups itself).
fn join(p: &Prepared, req: &Request) -> Result<(), Error> {
    if p.flags != 0 {
        if req.setns_files {
            for fd in &p.ns_files {
                sys::setns_file(fd.as_fd()).map_err(|e| setns_error(req, true, e))?;
            }
        } else {
            sys::setns_pidfd(p.pidfd.as_fd(), p.flags).map_err(|e| setns_error(req, false, e))?;
        }
    }
    if let Some(root) = &p.root {
        sys::chroot_fd(root.fd().as_fd()).map_err(Error::io(
            "change root into the container (chroot)",
            "CAP_SYS_CHROOT",
        ))?;
    }
    match (&req.cwd, &p.cwd) {
        (Some(dir), _) => rustix::process::chdir(dir.as_str()).map_err(|e| {
            Error::Bad(format!(
                "cannot change to directory {dir} in the container: {}",
                io::Error::from(e)
            ))
        })?,
        (None, Some(fd)) => {
            if rustix::process::fchdir(fd).is_err() {
                let _ = rustix::process::chdir("/");
            }
        }
        (None, None) => {}
    }
    Ok(())
}

fn setns_error(req: &Request, files: bool, e: io::Error) -> Error {
    let step = if files {
        "join a namespace of the container (setns on /proc/<pid>/ns)"
    } else {
        "join the container's namespaces (setns)"
    };
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
            step,
            needs: "CAP_SYS_ADMIN",
            source: e,
        },
        Some(libc::ESRCH) => Error::Gone {
            container: req.container.clone(),
            what: "has exited".into(),
        },
        Some(libc::EINVAL) if !files => Error::Io {
            step: "join the container's namespaces through a pidfd (Linux 5.8 or later; use --setns-files on older kernels)",
            source: e,
        },
        _ => Error::Io { step, source: e },
    }
}

/// A record the child sends over the close-on-exec pipe: a step, an index (which cgroup),
/// and errno. `STEP_CGROUP` records are notes; any other is why `exec` did not happen.
fn send(pipe: &OwnedFd, step: u8, index: u8, err: &io::Error) {
    let mut msg = [0u8; 6];
    msg[0] = step;
    msg[1] = index;
    msg[2..].copy_from_slice(&err.raw_os_error().unwrap_or(libc::EIO).to_le_bytes());
    let _ = rustix::io::write(pipe, &msg);
}

/// Why the child could not `exec`; it ends there.
fn report(pipe: &OwnedFd, step: u8, err: &io::Error) -> ! {
    send(pipe, step, 0, err);
    sys::exit_now(if step == STEP_EXEC { 127 } else { 125 })
}

const STEP_EXEC: u8 = 1;
const STEP_NOEXEC: u8 = 2;
const STEP_USER: u8 = 3;
const STEP_CAPS: u8 = 4;
const STEP_STDIO: u8 = 5;
const STEP_CGROUP: u8 = 6;

/// The child's side of step 3: never returns.
fn child(
    p: &Prepared,
    req: &Request,
    own_group: bool,
    stdio: Option<[&OwnedFd; 3]>,
    errpipe: &OwnedFd,
) -> ! {
    sys::reset_signals_for_exec();
    if own_group {
        let _ = sys::new_process_group();
    }
    if let Some(fds) = stdio {
        for (i, fd) in fds.iter().enumerate() {
            if let Err(e) = sys::dup_onto(fd.as_fd(), i as i32) {
                report(errpipe, STEP_STDIO, &e);
            }
        }
    }
    // Only 0, 1 and 2 reach the program: any other descriptor (one the sidecar inherited
    // from whoever started it, a root or namespace handle of ours) would be a way out of
    // the container.
    if let Err(e) = sys::cloexec_from_3() {
        report(errpipe, STEP_STDIO, &e);
    }
    // Into the container's cgroups ("0" is the writer itself): the program counts against
    // the container's limits and is stopped with it, as `podman exec` does. Only the
    // program: the helper must outlive a container that stops, to say what happened.
    for (i, (_, fd)) in p.cgroups.iter().enumerate() {
        if let Err(e) = rustix::io::write(fd, b"0") {
            send(errpipe, STEP_CGROUP, i as u8, &e.into());
        }
    }
    // Capabilities: the bounding set first (needs CAP_SETPCAP, which we may be about to
    // lose), then the user (setuid to non-root clears the rest), then, for root, the sets.
    if let Some(caps) = p.caps {
        for cap in 0..=p.last_cap.min(63) {
            if caps.bounding & (1 << cap) == 0 && p.our_caps.bounding & (1 << cap) != 0 {
                if let Err(e) = sys::capbset_drop(cap) {
                    report(errpipe, STEP_CAPS, &e);
                }
            }
        }
    }
    let id = &p.ident;
    if let Err(e) = sys::switch_user(id.uid, id.gid, &id.groups) {
        // Root with its own groups is what we already are: a user namespace that denies
        // setgroups must not stop a plain exec.
        if req.user.is_some() {
            report(errpipe, STEP_USER, &e);
        }
    }
    if let (Some(caps), 0) = (p.caps, id.uid) {
        let mine = p.our_caps.permitted;
        let r = sys::set_capabilities(
            caps.effective & caps.permitted & mine,
            caps.permitted & mine,
            caps.inheritable & mine,
        );
        if let Err(e) = r {
            report(errpipe, STEP_CAPS, &e);
        }
    }
    let env: Vec<CString> = p
        .env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let argv: Vec<CString> = match req.argv.iter().map(|a| CString::new(a.as_str())).collect() {
        Ok(a) => a,
        Err(_) => report(
            errpipe,
            STEP_NOEXEC,
            &io::Error::from_raw_os_error(libc::EINVAL),
        ),
    };
    let prog = &req.argv[0];
    if prog.contains('/') {
        let e = sys::execve(&argv[0], &argv, &env);
        let step = if e.raw_os_error() == Some(libc::ENOENT) {
            STEP_EXEC
        } else {
            STEP_NOEXEC
        };
        report(errpipe, step, &e);
    }
    let mut denied = None;
    for dir in search_path(&p.env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let Ok(path) = CString::new(format!("{}/{prog}", dir.trim_end_matches('/'))) else {
            continue;
        };
        let e = sys::execve(&path, &argv, &env);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = Some(e),
            _ => report(errpipe, STEP_NOEXEC, &e),
        }
    }
    match denied {
        Some(e) => report(errpipe, STEP_NOEXEC, &e),
        None => report(
            errpipe,
            STEP_EXEC,
            &io::Error::from_raw_os_error(libc::ENOENT),
        ),
    }
}

fn search_path(env: &[(String, String)]) -> String {
    env.iter()
        .find(|(k, _)| k == "PATH")
        .map_or_else(|| DEFAULT_PATH.to_string(), |(_, v)| v.clone())
}

/// What the child reported before `exec`: notes, and the error when it did not `exec`.
fn read_report(
    pipe: OwnedFd,
    req: &Request,
    p: &Prepared,
    notes: &mut Vec<String>,
) -> Option<Error> {
    let mut all = Vec::new();
    let _ = std::fs::File::from(pipe).read_to_end(&mut all);
    let mut fatal = None;
    for msg in all.chunks_exact(6) {
        let errno = i32::from_le_bytes([msg[2], msg[3], msg[4], msg[5]]);
        let source = io::Error::from_raw_os_error(errno);
        if msg[0] == STEP_CGROUP {
            let file = p
                .cgroups
                .get(msg[1] as usize)
                .map_or("?", |(f, _)| f.as_str());
            notes.push(format!("not in the container's cgroup {file}: {source}"));
        } else {
            fatal = Some((msg[0], source));
        }
    }
    let (step, source) = fatal?;
    let program = req.argv[0].clone();
    Some(match step {
        STEP_EXEC => Error::NotFound {
            searched: if program.contains('/') {
                program.clone()
            } else {
                search_path(&p.env)
            },
            program,
        },
        STEP_NOEXEC => Error::NotExecutable { program, source },
        STEP_USER => Error::io("switch to the requested user", "CAP_SETUID and CAP_SETGID")(source),
        STEP_CAPS => Error::io(
            "limit the program to the container's capabilities",
            "CAP_SETPCAP",
        )(source),
        _ => Error::Io {
            step: "set up the program's stdin, stdout and stderr",
            source,
        },
    })
}

/// Runs `req` in the container: steps 1 to 4. `Stdio::Inherit` passes our stdio through and
/// forwards signals; `Stdio::Capture` writes `req.stdin` and captures the output.
pub fn run(req: &Request, stdio: Stdio) -> Result<Finished, Error> {
    let started = Instant::now();
    let mut p = prepare(req)?;
    let mut notes = std::mem::take(&mut p.notes);
    join(&p, req)?;
    let capture = matches!(stdio, Stdio::Capture);
    // A program at a terminal stays in its foreground process group (job control, ^C);
    // otherwise it leads its own, so that a time-out kills it and what it started.
    let own_group = capture || !io::IsTerminal::is_terminal(&io::stdin());
    let pipes = if capture {
        let pipe = |what| sys::pipe().map_err(|source| Error::Io { step: what, source });
        let stdin = if req.stdin_from_fd3 {
            // (read side, write side): the program reads the inherited file; nothing to write.
            let fd = sys::take_inherited_fd(3).map_err(|source| Error::Io {
                step: "take the uploaded file (descriptor 3)",
                source,
            })?;
            let (_, w) = pipe("make the stdin pipe")?;
            (fd, w)
        } else {
            pipe("make the stdin pipe")?
        };
        Some([
            stdin,
            pipe("make the stdout pipe")?,
            pipe("make the stderr pipe")?,
        ])
    } else {
        None
    };
    let (err_r, err_w) = sys::pipe().map_err(|source| Error::Io {
        step: "make a pipe",
        source,
    })?;
    let pid = match sys::fork() {
        Ok(sys::Forked::Child) => {
            let stdio = pipes.as_ref().map(|[i, o, e]| [&i.0, &o.1, &e.1]);
            child(&p, req, own_group, stdio, &err_w)
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && p.flags & libc::CLONE_NEWPID != 0 => {
            return Err(Error::Gone {
                container: req.container.clone(),
                what: "has exited (its PID namespace has no init any more)".into(),
            })
        }
        Err(source) => {
            return Err(Error::Io {
                step: "fork",
                source,
            })
        }
    };
    drop(err_w);
    let (stdin_w, stdout_r, stderr_r) = match pipes {
        Some([_, o, e]) if req.stdin_from_fd3 => (None, Some(o.0), Some(e.0)),
        Some([i, o, e]) => (Some(i.1), Some(o.0), Some(e.0)),
        None => (None, None, None),
    };
    if let Some(e) = read_report(err_r, req, &p, &mut notes) {
        let _ = sys::wait_child(pid, false);
        return Err(e);
    }
    let deadline = req
        .timeout_s
        .filter(|t| *t > 0.0)
        .map(|t| Instant::now() + Duration::from_secs_f64(t.min(1e7)));
    let mut done = match (stdout_r, stderr_r) {
        (Some(out), Some(err)) => {
            let input = req.stdin.clone().unwrap_or_default().into_bytes();
            capture_output(pid, stdin_w, out, err, input, deadline, p.proc_dir.as_ref())
        }
        _ => pass_through(pid, own_group, deadline),
    };
    // A stopping container takes its processes down one by one: when ours was killed the way
    // a runtime or the kernel does, give the container's own process a moment to go too.
    let grace = match done.signal.as_deref() {
        Some("KILL") | Some("TERM") if !done.timed_out => 500,
        Some(_) => 0,
        None => -1,
    };
    if grace >= 0 && target_exited(&p.pidfd, grace) {
        return Err(Error::Gone {
            container: req.container.clone(),
            what: format!(
                "exited while the program ran (the program was killed by SIG{})",
                done.signal.as_deref().unwrap_or("?")
            ),
        });
    }
    if !done.escaped.is_empty() {
        notes.push(format!(
            "processes that left the program's process group were not killed: {:?}",
            done.escaped
        ));
    }
    done.notes.extend(notes);
    done.duration_ms = started.elapsed().as_millis() as u64;
    Ok(done)
}

/// Whether the target process has exited (its pidfd is readable), waiting up to `wait_ms`.
fn target_exited(pidfd: &OwnedFd, wait_ms: i32) -> bool {
    sys::wait_readable(pidfd.as_fd(), wait_ms).unwrap_or(false)
}

fn finish(info: sys::ExitInfo, timed_out: bool) -> Finished {
    let (code, sig) = info;
    Finished {
        exit_code: code,
        signal: sig.map(signal_name),
        timed_out,
        status: code.unwrap_or_else(|| 128 + sig.unwrap_or(0)),
        ..Finished::default()
    }
}

fn signal_name(n: i32) -> String {
    crate::processes::parse_signal(&n.to_string()).map_or_else(|_| n.to_string(), |(_, name)| name)
}

/// Step 4 for the command line: our stdio is the program's; signals sent to us go to it.
fn pass_through(pid: u32, own_group: bool, deadline: Option<Instant>) -> Finished {
    let mut forwarded = crate::init::FORWARDED.to_vec();
    forwarded.push(libc::SIGCHLD);
    loop {
        if let Ok(Some(info)) = sys::wait_child(pid, true) {
            return finish(info, false);
        }
        let wait = deadline.map_or(200, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(200) as u64
        });
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_program(pid, own_group);
            let info = sys::wait_child(pid, false)
                .ok()
                .flatten()
                .unwrap_or((None, Some(9)));
            return finish(info, true);
        }
        if let Some((sig, _)) = sys::wait_signal(&forwarded, wait) {
            // At a terminal ^C and ^\ reach the program's group directly: do not double them.
            let from_tty = !own_group && (sig == libc::SIGINT || sig == libc::SIGQUIT);
            if sig != libc::SIGCHLD && !from_tty {
                let _ = sys::kill_child(pid, sig);
            }
        }
    }
}

fn kill_program(pid: u32, own_group: bool) {
    if own_group {
        let _ = sys::kill_process_group(pid, libc::SIGKILL);
    } else {
        let _ = sys::kill_child(pid, libc::SIGKILL);
    }
}

/// One captured stream: kept up to `MAX_OUTPUT`, the rest read and dropped.
struct Captured {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn new(fd: OwnedFd) -> Captured {
        // Read only what is there: a blocking read would stall the other stream and stdin.
        let _ = sys::set_nonblocking(fd.as_fd());
        Captured {
            fd: Some(fd),
            kept: Vec::new(),
            truncated: false,
        }
    }

    /// Reads what is there; drops the descriptor at end of file.
    fn read(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 16384];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => self.fd = None,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&buf[..n.min(room)]);
                self.truncated |= n > room;
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => self.fd = None,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

/// Step 4 for the API: feed stdin, capture stdout and stderr until both are closed and the
/// program has exited, or the deadline passes (then its process group is killed). Output
/// still held open by background processes a second after the program exited is left.
fn capture_output(
    pid: u32,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    input: Vec<u8>,
    deadline: Option<Instant>,
    proc_dir: Option<&OwnedFd>,
) -> Finished {
    let mut stdin = stdin.filter(|fd| sys::set_nonblocking(fd.as_fd()).is_ok());
    let mut written = 0;
    let mut out = Captured::new(stdout);
    let mut err = Captured::new(stderr);
    let child = sys::pidfd_open(pid).ok();
    let mut exited: Option<(sys::ExitInfo, Instant)> = None;
    let mut notes = Vec::new();
    let mut timed_out = false;
    let mut escaped = Vec::new();
    loop {
        if exited.is_none() {
            if let Ok(Some(info)) = sys::wait_child(pid, true) {
                exited = Some((info, Instant::now()));
            }
        }
        let open = out.fd.is_some() || err.fd.is_some();
        if let Some((_, at)) = exited {
            if !open {
                break;
            }
            if at.elapsed() > Duration::from_secs(1) {
                notes.push("the program exited but processes it started still hold its stdout or stderr: output after its exit was not captured".to_string());
                break;
            }
        }
        if exited.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(dir) = proc_dir {
                escaped = escaped_descendants(dir, pid);
            }
            let _ = sys::kill_process_group(pid, libc::SIGKILL);
            timed_out = true;
            let info = sys::wait_child(pid, false)
                .ok()
                .flatten()
                .unwrap_or((None, Some(9)));
            exited = Some((info, Instant::now()));
            continue;
        }
        if written >= input.len() {
            stdin = None; // end of file for the program
        }
        let mut fds: Vec<(BorrowedFd<'_>, bool)> = Vec::new();
        for fd in [&out.fd, &err.fd].into_iter().flatten() {
            fds.push((fd.as_fd(), false));
        }
        if let Some(fd) = &stdin {
            fds.push((fd.as_fd(), true));
        }
        if let (Some(fd), None) = (&child, exited) {
            fds.push((fd.as_fd(), false));
        }
        let mut wait = 100;
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()).as_millis() as i32);
        }
        if sys::poll(&fds, wait.max(1)).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        out.read();
        err.read();
        if let Some(fd) = &stdin {
            match rustix::io::write(fd, &input[written..]) {
                Ok(n) => written += n,
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => written = input.len(), // the program closed its stdin
            }
        }
    }
    let (info, _) = exited.unwrap_or(((None, None), Instant::now()));
    let mut done = finish(info, timed_out);
    done.stdout = out.text();
    done.stderr = err.text();
    done.truncated = Truncated {
        stdout: out.truncated,
        stderr: err.truncated,
    };
    done.escaped = escaped;
    done.notes = notes;
    done
}

/// Descendants of `pid` (read through our own `/proc`, held open as `dir`) that are not in
/// its process group: what killing the group leaves running.
fn escaped_descendants(dir: &OwnedFd, pid: u32) -> Vec<u32> {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return Vec::new();
    };
    let mut stats = Vec::new();
    for entry in listing.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fd) = rustix::fs::openat(
            dir,
            format!("{p}/stat"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let mut text = String::new();
        if std::fs::File::from(fd).read_to_string(&mut text).is_ok() {
            if let Some(s) = procfs::parse_stat(&text) {
                stats.push(s);
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(stats.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    stats
        .iter()
        .filter(|s| tree.contains(&s.pid) && s.pgrp != pid)
        .map(|s| s.pid)
        .collect()
}

/// The API's helper (`sidecar enter`, run by the server): a `Request` as JSON on stdin, a
/// `{"ok": Finished}` or `{"error": {"status", "code", "message"}}` JSON reply on stdout.
pub fn helper_main() -> i32 {
    // If the server dies, so do we (the program, in its own group, is left to the container).
    let _ = sys::die_with_parent(libc::SIGKILL);
    let mut input = Vec::new();
    if io::IsTerminal::is_terminal(&io::stdin()) {
        eprintln!("sidecar enter is the server's internal helper: use `sidecar exec`");
        return 125;
    }
    let reply = match io::stdin().read_to_end(&mut input) {
        Err(e) => helper_error(400, "bad_request", &format!("cannot read the request: {e}")),
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Err(e) => helper_error(400, "bad_request", &format!("invalid request: {e}")),
            Ok(req) => match run(&req, Stdio::Capture) {
                Ok(done) => serde_json::json!({ "ok": done }),
                Err(e) => {
                    let (status, code) = e.code();
                    helper_error(status, code, &e.to_string())
                }
            },
        },
    };
    let mut out = io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &reply);
    let _ = out.flush();
    0
}

fn helper_error(status: u16, code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"error": {"status": status, "code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\nnohome:x:1001:1001:::/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nusers:x:100:\nwheel:x:10:alice,bob\naudio:x:29:alice\nstaff:x:50:\n";

    #[test]
    fn users_by_name_uid_and_pair() {
        let root = resolve_user(None, PASSWD, GROUP).unwrap();
        assert_eq!(
            (root.uid, root.gid, root.groups.as_slice()),
            (0, 0, &[0][..])
        );
        let a = resolve_user(Some("alice"), PASSWD, GROUP).unwrap();
        assert_eq!((a.uid, a.gid), (1000, 100));
        assert_eq!(a.groups, [100, 10, 29]);
        assert_eq!(a.home.as_deref(), Some("/home/alice"));
        assert_eq!(resolve_user(Some("1000"), PASSWD, GROUP).unwrap(), a);
        let pair = resolve_user(Some("1000:50"), PASSWD, GROUP).unwrap();
        assert_eq!(
            (pair.uid, pair.gid, pair.groups.as_slice()),
            (1000, 50, &[50][..])
        );
        let named = resolve_user(Some("alice:staff"), PASSWD, GROUP).unwrap();
        assert_eq!((named.uid, named.gid), (1000, 50));
        // Unknown to the container: a uid is taken as is, with group 0; a name is an error.
        let stranger = resolve_user(Some("4242"), PASSWD, GROUP).unwrap();
        assert_eq!((stranger.uid, stranger.gid, stranger.home), (4242, 0, None));
        assert!(resolve_user(Some("mallory"), PASSWD, GROUP)
            .unwrap_err()
            .to_string()
            .contains("no user 'mallory'"));
        assert!(resolve_user(Some("alice:nogroup"), PASSWD, GROUP).is_err());
        assert_eq!(
            resolve_user(Some("nohome"), PASSWD, GROUP).unwrap().home,
            None
        );
        assert_eq!(resolve_user(Some("1"), "", "").unwrap().uid, 1);
    }

    #[test]
    fn environment_layers() {
        let target = vec![
            "PATH=/bin".to_string(),
            "HOME=/root".to_string(),
            "A=1".to_string(),
            "garbage".to_string(),
            "=x".to_string(),
            "EQ=a=b".to_string(),
        ];
        let mut over = BTreeMap::new();
        over.insert("A".to_string(), "2".to_string());
        over.insert("B".to_string(), "3".to_string());
        let env = environment(&target, &over, Some("/home/alice"));
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("HOME"), Some("/home/alice"));
        assert_eq!(get("A"), Some("2"));
        assert_eq!(get("B"), Some("3"));
        assert_eq!(get("EQ"), Some("a=b"));
        assert_eq!(env.len(), 5);
        over.insert("HOME".to_string(), "/h".to_string());
        let env = environment(&target, &over, Some("/home/alice"));
        assert!(env.contains(&("HOME".to_string(), "/h".to_string())));
        assert_eq!(search_path(&[]), DEFAULT_PATH);
    }

    #[test]
    fn namespaces_differing_or_asked() {
        let ours = |k: &str| Some(if k == "net" { 1 } else { 100 });
        let theirs = |k: &str| Some(if k == "user" { 100 } else { 200 });
        let (flags, kinds) = namespaces_to_join(None, ours, theirs).unwrap();
        assert_eq!(kinds, ["cgroup", "ipc", "uts", "net", "pid", "mnt"]);
        assert_eq!(flags & libc::CLONE_NEWUSER, 0);
        assert_ne!(flags & libc::CLONE_NEWNS, 0);
        let asked = vec!["net".to_string(), "user".to_string()];
        let (flags, kinds) = namespaces_to_join(Some(&asked), ours, theirs).unwrap();
        assert_eq!((flags, kinds), (libc::CLONE_NEWNET, vec!["net"]));
        let bad = vec!["time".to_string()];
        assert!(matches!(
            namespaces_to_join(Some(&bad), ours, theirs),
            Err(Error::Bad(_))
        ));
        let hidden = |_: &str| None;
        assert!(matches!(
            namespaces_to_join(None, ours, hidden),
            Err(Error::Denied { .. })
        ));
    }
}
