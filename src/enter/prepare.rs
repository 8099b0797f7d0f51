//! Step 1, `prepare`: while still in our own namespaces and root, open everything the later
//! steps need (a pidfd of the target, its root and cwd, its namespace files for the fallback,
//! the cgroup files to join), read its environment, capabilities and users.
//!
//! Invariant: the target is checked to be the process the caller saw (same start time) after
//! every handle is held: a PID reused in between would show another start time.

use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags};

use super::plan::{environment, init_ident, namespaces_to_join, resolve_user, Ident};
use super::toolkit::{self, Toolkit};
use super::{Error, Request, KINDS};
use crate::procfs::{self, Caps};
use crate::rootfs::Root;
use crate::sys;

/// Everything opened and read before leaving our own namespaces.
pub(super) struct Prepared {
    /// Checked first: this process has one thread (for `setns` into a mount namespace, and
    /// for `fork`).
    pub(super) one_thread: sys::SingleThreaded,
    pub(super) pidfd: OwnedFd,
    /// The target's root, when the mount namespace is joined (else the program sees ours).
    pub(super) root: Option<Root>,
    /// The target's working directory, used when the request names none.
    pub(super) cwd: Option<OwnedFd>,
    pub(super) flags: i32,
    /// For the fallback: the namespace files, in joining order.
    pub(super) ns_files: Vec<OwnedFd>,
    pub(super) env: Vec<(String, String)>,
    pub(super) ident: Ident,
    /// The target's capabilities, which the program is limited to (unless privileged).
    pub(super) caps: Option<Caps>,
    pub(super) our_caps: Caps,
    pub(super) last_cap: u32,
    /// `cgroup.procs` files of the target's cgroups that differ from ours, opened for
    /// writing while we still see our own `/sys/fs/cgroup`; the program moves itself in.
    pub(super) cgroups: Vec<(String, OwnedFd)>,
    /// Our `/proc`, held to find the program's descendants once `/proc` is the target's.
    pub(super) proc_dir: Option<OwnedFd>,
    pub(super) notes: Vec<String>,
    /// The toolkit, cloned in our own mount namespace (`--tools`).
    pub(super) toolkit: Option<Toolkit>,
    /// With a toolkit: the target's working directory as a path inside its root (the new
    /// root is built after the join, so a descriptor of it would lead outside).
    pub(super) cwd_path: Option<String>,
}

pub(super) fn gone(req: &Request) -> Error {
    Error::Gone {
        container: req.container.clone(),
        what: "has exited (its process is gone)".into(),
    }
}

/// Prepares with the first of the request's processes (`pid`, then `stand_ins`) that is
/// still there: one that exits meanwhile is skipped for the next; only when none is left
/// has the container exited.
pub(super) fn prepare(req: &Request) -> Result<Prepared, Error> {
    let me = std::process::id();
    let Some(one_thread) = sys::single_threaded() else {
        return Err(Error::Io {
            step: "enter a container from a multi-threaded process",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    if req.argv.is_empty() || req.argv[0].is_empty() {
        return Err(Error::Bad("no program to run: argv is empty".into()));
    }
    let mut tried = vec![(req.pid, req.starttime)];
    tried.extend(
        req.stand_ins
            .iter()
            .filter(|p| **p != (req.pid, req.starttime)),
    );
    let mut last = None;
    for (pid, starttime) in tried {
        match prepare_with(req, me, pid, starttime, one_thread) {
            Err(Error::Gone { .. }) => last = Some(gone(req)),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| gone(req)))
}

/// Whether `pid` is still the process that started at `starttime` and has not exited: a
/// zombie (exited, not reaped) has no root, namespaces or environment left to enter.
fn still_there(pid: u32, starttime: u64) -> bool {
    procfs::stat(pid).is_ok_and(|s| s.starttime == starttime && !matches!(s.state, 'Z' | 'X'))
}

fn prepare_with(
    req: &Request,
    me: u32,
    pid: u32,
    starttime: u64,
    one_thread: sys::SingleThreaded,
) -> Result<Prepared, Error> {
    // Any failure while the process is no longer there is that, not the step's own error
    // (a zombie's root gives EACCES, which would read as a missing capability).
    let gone_or = |e: Error| {
        if still_there(pid, starttime) {
            e
        } else {
            gone(req)
        }
    };
    prepare_checked(req, me, pid, starttime, one_thread).map_err(gone_or)
}

fn prepare_checked(
    req: &Request,
    me: u32,
    pid: u32,
    starttime: u64,
    one_thread: sys::SingleThreaded,
) -> Result<Prepared, Error> {
    let same = || still_there(pid, starttime);
    if !same() {
        return Err(gone(req));
    }
    let typed = sys::Pid::new(pid).ok_or_else(|| gone(req))?;
    let pidfd = sys::pidfd_open(typed).map_err(|e| match e.raw_os_error() {
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
    let toolkit = match &req.tools {
        Some(_) if !mount => {
            return Err(Error::Bad(
                "tools need the container's mount namespace: leave mnt in ns (or ns out)".into(),
            ))
        }
        Some(dir) => Some(toolkit::open(dir)?),
        None => None,
    };
    // The cwd relative to the root, both as we see them (the same frame of reference).
    let cwd_path = toolkit.as_ref().and_then(|_| {
        let cwd = procfs::link(pid, "cwd").ok()?;
        let root = procfs::link(pid, "root").ok()?;
        let rel = if root == "/" {
            cwd.as_str()
        } else {
            // `/r` is no prefix of `/rx/y`: only a whole path component counts.
            cwd.strip_prefix(root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))?
        };
        Some(if rel.is_empty() {
            "/".to_string()
        } else {
            rel.to_string()
        })
    });
    let ptrace = Error::io("open the target's root", "CAP_SYS_PTRACE");
    let root = Root::of_pid(pid).map_err(&ptrace)?;
    let cwd = match (&req.cwd, mount && toolkit.is_none()) {
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
    let ident = match &req.user {
        Some(u) => resolve_user(Some(u), &passwd, &group)?,
        // As podman and docker exec do: the user of the container's init, as its own user
        // namespace sees it when we join that (ids of ours otherwise).
        None => {
            let inside = flags & libc::CLONE_NEWUSER != 0;
            let map = |file: &str| {
                inside
                    .then(|| procfs::with_text(pid, file, procfs::parse_id_map).unwrap_or_default())
            };
            let status = procfs::read(pid, "status").map_err(|_| gone(req))?;
            init_ident(
                &status,
                map("uid_map").as_deref(),
                map("gid_map").as_deref(),
                &passwd,
            )?
        }
    };
    let target_env = procfs::environ(pid).map_err(&ptrace)?;
    let home = req.user.as_ref().and(ident.home.as_deref());
    let mut env = environment(&target_env, &req.env, home);
    if toolkit.is_some() {
        let path = super::plan::search_path(&env);
        env.retain(|(k, _)| k != "PATH");
        env.push(("PATH".into(), toolkit::path_with_toolkit(&path)));
    }
    let caps = procfs::with_text(pid, "status", procfs::parse_caps).map_err(|_| gone(req))?;
    let our_caps = procfs::with_text(me, "status", procfs::parse_caps)
        .ok()
        .flatten()
        .unwrap_or_default();
    let last_cap = procfs::read_bytes("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok())
        .unwrap_or(40);
    // The native package path's job is the sidecar's own code for a moment, not a program
    // of the container: it stays in our cgroups (the written files' page cache is then
    // charged to the sidecar, and the container's pids limit does not apply to it).
    let cgroups = match req.native_job {
        Some(_) => Vec::new(),
        None => cgroups_to_join(pid, me, &mut notes),
    };
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
        one_thread,
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
        toolkit,
        cwd_path,
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
