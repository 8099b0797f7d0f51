//! A container's processes: the listing, one process in depth, and signals.
//!
//! PIDs are the sidecar's view (the `pid` field); `ns_pid` is what the container sees
//! (`NSpid`). Likewise `uid` is the owner as the sidecar sees it and `ns_uid` the uid inside
//! the container's user namespace (through its `uid_map`); user names come from the
//! container's own `/etc/passwd`, read inside its root, for the inside uid.
//!
//! Invariant: a signal is only sent through a pidfd opened *after* checking that the PID is
//! one of the container's and *checked again* (same start time) once the pidfd is held, so a
//! PID reused by another process in between is never signalled.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::fd::AsFd;

use serde::Serialize;

use crate::containers::Container;
use crate::procfs::{self, PasswdEntry};

/// One process as the listing shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub pid: u32,
    pub ns_pid: Option<u32>,
    pub ppid: u32,
    /// The real uid as the sidecar (the host) sees it.
    pub uid: Option<u32>,
    /// The real uid inside the process's user namespace; null when it maps to none.
    pub ns_uid: Option<u32>,
    /// The name of `ns_uid` in the container's `/etc/passwd`.
    pub user: Option<String>,
    pub state: String,
    pub comm: String,
    pub cmdline: String,
    pub argv: Vec<String>,
    pub exe: Option<String>,
    pub started: String,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub threads: u64,
}

/// One process in depth (`GET /<c>/process/<pid>`).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessDetail {
    #[serde(flatten)]
    pub process: Process,
    pub status: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub environ: Option<Vec<String>>,
    pub fds: Option<BTreeMap<String, String>>,
    pub limits: Vec<procfs::Limit>,
    pub namespaces: BTreeMap<&'static str, Option<u64>>,
    pub cgroup: Vec<String>,
}

/// Why a process operation failed.
#[derive(Debug)]
pub enum Error {
    /// Not a process of that container (or gone).
    NotFound {
        pid: u32,
        container: String,
    },
    BadSignal(String),
    /// The kernel refused (EPERM/EACCES): which capability was missing.
    Denied {
        pid: u32,
        what: &'static str,
        source: io::Error,
    },
    Io {
        pid: u32,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { pid, container } => write!(f, "process {pid} is not a process of container {container} (or it has exited)"),
            Error::BadSignal(s) => write!(f, "unknown signal '{s}': use a name such as TERM, KILL, HUP, SIGUSR1 or a number 1-64"),
            Error::Denied { pid, what, source } => write!(f, "not allowed to {what} process {pid} ({source}): the sidecar needs CAP_KILL and must run as root over the container's user namespace"),
            Error::Io { pid, source } => write!(f, "process {pid}: {source}"),
        }
    }
}

/// The passwd database of a container, read from its root (empty when it has none), and a
/// note when its `/etc/passwd` is there but could not be read (a FIFO or a device planted
/// there is never opened: user names are then null).
pub fn container_users(c: &Container) -> (Vec<PasswdEntry>, Option<String>) {
    match c
        .root()
        .and_then(|r| r.read_optional("/etc/passwd", 4 << 20))
    {
        Ok(text) => (procfs::parse_passwd(&text.unwrap_or_default()), None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => (
            Vec::new(),
            Some(format!("user names skipped: /etc/passwd: {e}")),
        ),
        Err(_) => (Vec::new(), None),
    }
}

struct Clock {
    boot: u64,
    page: u64,
}

/// How the uids of a container's processes map to the ones inside it.
enum UidMap {
    /// The stand-in's user namespace maps every uid to itself (no user namespace of its
    /// own, or an identity one): nothing more to read.
    Identity,
    /// A user-namespaced container: each process's own `uid_map` is read (a process may sit
    /// in a nested namespace of its own).
    PerProcess,
}

impl UidMap {
    fn of(pid: u32) -> UidMap {
        let map = procfs::with_text(pid, "uid_map", procfs::parse_id_map).unwrap_or_default();
        let identity = map.is_empty()
            || map
                .iter()
                .all(|r| r.inside == r.outside && (r.inside, r.count) == (0, u32::MAX));
        if identity {
            UidMap::Identity
        } else {
            UidMap::PerProcess
        }
    }

    fn inside(&self, pid: u32, uid: u32) -> Option<u32> {
        match self {
            UidMap::Identity => Some(uid),
            UidMap::PerProcess => procfs::with_text(pid, "uid_map", |t| {
                procfs::map_id_inside(&procfs::parse_id_map(t), uid)
            })
            .ok()
            .flatten(),
        }
    }
}

fn read_process(
    pid: u32,
    stat: Option<&procfs::Stat>,
    users: &[PasswdEntry],
    map: &UidMap,
    clock: &Clock,
) -> Option<Process> {
    let stat = match stat {
        Some(s) => s.clone(),
        None => procfs::stat(pid).ok()?,
    };
    // Kernel threads have no executable; asking costs a failing readlink each.
    let kernel_thread = stat.is_kernel_thread();
    let (uid, ns_pid) = procfs::with_text(pid, "status", |s| {
        let uid =
            procfs::status_field(s, "Uid").and_then(|v| procfs::parse_ids(v).first().copied());
        let ns_pid = procfs::status_field(s, "NSpid")
            .and_then(|v| v.split_whitespace().last()?.parse().ok());
        (uid, ns_pid)
    })
    .unwrap_or((None, None));
    let ns_uid = uid.and_then(|u| map.inside(pid, u));
    let argv = procfs::argv(pid).unwrap_or_default();
    let started =
        procfs::format_utc((clock.boot + stat.starttime / procfs::TICKS_PER_SECOND) as i64) + "Z";
    Some(Process {
        pid,
        ns_pid,
        ppid: stat.ppid,
        uid,
        ns_uid,
        user: ns_uid.and_then(|u| users.iter().find(|e| e.uid == u).map(|e| e.name.clone())),
        state: stat.state.to_string(),
        comm: stat.comm,
        cmdline: argv.join(" "),
        argv,
        exe: if kernel_thread {
            None
        } else {
            procfs::link(pid, "exe").ok()
        },
        started,
        cpu_seconds: (stat.utime + stat.stime) as f64 / procfs::TICKS_PER_SECOND as f64,
        rss_bytes: stat.rss_pages * clock.page,
        threads: stat.threads,
    })
}

fn clock() -> Clock {
    Clock {
        boot: procfs::boot_time(),
        page: procfs::page_size(),
    }
}

/// A process listing and what could not be read for it.
pub struct Listing {
    pub processes: Vec<Process>,
    /// Files skipped (a planted FIFO as `/etc/passwd`), for a response header or stderr.
    pub notes: Vec<String>,
}

/// The container's processes (those that exit while we read are left out).
pub fn list(c: &Container) -> Listing {
    let (users, note) = container_users(c);
    let clock = clock();
    let map = UidMap::of(c.live_pid().unwrap_or(c.root_pid));
    let processes = c
        .pids
        .iter()
        .enumerate()
        .filter_map(|(i, &pid)| read_process(pid, c.stats.get(i), &users, &map, &clock))
        .collect();
    Listing {
        processes,
        notes: note.into_iter().collect(),
    }
}

/// One process of the container in depth.
pub fn detail(c: &Container, pid: u32) -> Result<ProcessDetail, Error> {
    let not_found = || Error::NotFound {
        pid,
        container: c.id.clone(),
    };
    // The sidecar itself is not shown: its environment and descriptors are its own business
    // (DELETE refuses it the same way).
    if !c.pids.contains(&pid) || pid == std::process::id() {
        return Err(not_found());
    }
    let process = read_process(pid, None, &container_users(c).0, &UidMap::of(pid), &clock())
        .ok_or_else(not_found)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok().map(|d| {
        d.filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let target = procfs::link(pid, &format!("fd/{name}")).ok()?;
            Some((name, target))
        })
        .collect()
    });
    Ok(ProcessDetail {
        process,
        status: procfs::read(pid, "status")
            .map(|s| procfs::parse_status(&s))
            .unwrap_or_default(),
        cwd: procfs::link(pid, "cwd").ok(),
        environ: procfs::environ(pid).ok(),
        fds,
        limits: procfs::read(pid, "limits")
            .map(|s| procfs::parse_limits(&s))
            .unwrap_or_default(),
        namespaces: crate::containers::NAMESPACES
            .iter()
            .map(|k| (*k, procfs::namespace(pid, k)))
            .collect(),
        cgroup: procfs::read(pid, "cgroup")
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// Signal names as `kill -l` prints them, by number.
const SIGNALS: [(&str, i32); 31] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses a signal given as `TERM`, `SIGTERM`, `term` or `15` into `(number, NAME)`.
pub fn parse_signal(s: &str) -> Result<(i32, String), Error> {
    let bad = || Error::BadSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        if !(1..=64).contains(&n) {
            return Err(bad());
        }
        let name = SIGNALS
            .iter()
            .find(|(_, v)| *v == n)
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| n.to_string());
        return Ok((n, name));
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(k, v)| (*v, k.to_string()))
        .ok_or_else(bad)
}

/// Sends `signal` to `pid`, which must be one of the container's processes, through a pidfd.
pub fn signal(c: &Container, pid: u32, signal: i32) -> Result<(), Error> {
    let not_found = || Error::NotFound {
        pid,
        container: c.id.clone(),
    };
    if !c.pids.contains(&pid) || pid == std::process::id() {
        return Err(not_found());
    }
    // The start time identifies the process we looked at; the pidfd pins whatever holds the
    // PID now. If the two agree after the pidfd is open, the pidfd names our process.
    let before = procfs::stat(pid).map_err(|_| not_found())?.starttime;
    let typed = crate::sys::Pid::new(pid).ok_or_else(not_found)?;
    let fd = crate::sys::pidfd_open(typed).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => not_found(),
        _ => Error::Io { pid, source: e },
    })?;
    let after = procfs::stat(pid).map_err(|_| not_found())?.starttime;
    if before != after {
        return Err(not_found());
    }
    crate::sys::pidfd_send_signal(fd.as_fd(), signal).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => not_found(),
        Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
            pid,
            what: "signal",
            source: e,
        },
        _ => Error::Io { pid, source: e },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("TERM").unwrap(), (15, "TERM".into()));
        assert_eq!(parse_signal("sigkill").unwrap(), (9, "KILL".into()));
        assert_eq!(parse_signal("10").unwrap(), (10, "USR1".into()));
        assert_eq!(parse_signal("40").unwrap(), (40, "40".into()));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("").is_err());
    }
}
