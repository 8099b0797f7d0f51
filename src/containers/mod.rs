//! Finding containers through `/proc`: which processes belong together, under which ID, and
//! how a user's name for a container (`<id>`, a prefix, a hostname, `pid:N`, `host`) maps to
//! one of them.
//!
//! A process belongs to the container whose runtime ID its cgroup path shows (see `cgroup`);
//! the rest are grouped by mount namespace, and those that share our own root while we run on
//! the node are the `host`. A process that vanishes or that we may not inspect never fails the
//! whole listing: it is skipped (gone) or listed with what could be read and a note.
//!
//! Invariant: the sidecar's own container is never listed (only `host` when we run on the
//! node), so nothing addressed through this module can be the sidecar itself.

pub mod cgroup;

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::procfs;
use crate::rootfs::Root;

/// The namespace kinds we report, in `/proc/<pid>/ns/` names.
pub const NAMESPACES: [&str; 7] = ["mnt", "pid", "net", "uts", "ipc", "user", "cgroup"];

/// One container as `GET /` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub id: String,
    pub short_id: String,
    pub hostname: Option<String>,
    pub runtime: &'static str,
    pub pod_id: Option<String>,
    pub infra: bool,
    pub pid: u32,
    pub pids: Vec<u32>,
    pub namespaces: BTreeMap<&'static str, Option<u64>>,
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `/proc/<pid>/stat` of each of `pids`, as read while grouping (a listing reuses it).
    #[serde(skip)]
    pub stats: Vec<procfs::Stat>,
    /// The process whose root and namespaces stand for the container's: its init (PID 1 in
    /// its PID namespace), or where it has none (a pod sharing one PID namespace) its oldest
    /// process; never simply the lowest PID (PIDs wrap: a chrooted worker can be lowest).
    /// Only processes we may inspect qualify (even root may not open `/proc/1/root` here).
    #[serde(skip)]
    pub root_pid: u32,
    /// Who stands in, in order, with start times: `root_pid` first, then the container's
    /// other processes, oldest first. When one exits while a request is served the next
    /// stands in; only a container with none left has exited.
    #[serde(skip)]
    pub stand_ins: Vec<(u32, u64)>,
}

impl Container {
    /// The process that stands for the container when entering it (`root_pid`), and its
    /// start time as discovery saw it, so that a PID reused since is noticed.
    pub fn entry_point(&self) -> (u32, u64) {
        if let Some(&first) = self.stand_ins.first() {
            return first;
        }
        let start = procfs::stat(self.root_pid).map_or(0, |s| s.starttime);
        (self.root_pid, start)
    }

    /// The first process of `stand_ins` that is still the one discovery saw and has not
    /// exited (a zombie has no root, namespaces or files any more).
    ///
    /// # Errors
    /// `NotFound` "container … has exited" when none is left.
    pub fn live_pid(&self) -> std::io::Result<u32> {
        for &(pid, start) in &self.stand_ins {
            if procfs::stat(pid).is_ok_and(|s| s.starttime == start && !exited(&s)) {
                return Ok(pid);
            }
        }
        Err(self.exited())
    }

    /// The container's root, opened through the first stand-in still alive: one that exits
    /// between the check and the open is skipped for the next.
    ///
    /// # Errors
    /// `NotFound` when the container has exited; the open's error (EACCES, EPERM) when no
    /// live process's root may be opened.
    pub fn root(&self) -> std::io::Result<Root> {
        let mut refused = None;
        for &(pid, start) in &self.stand_ins {
            let alive = || procfs::stat(pid).is_ok_and(|s| s.starttime == start && !exited(&s));
            if !alive() {
                continue;
            }
            match Root::of_pid(pid) {
                // Held now: if it is still the process we saw, the root is that process's.
                Ok(root) if alive() => return Ok(root),
                Ok(_) => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                    refused.get_or_insert(e);
                }
                Err(_) => continue,
            }
        }
        Err(refused.unwrap_or_else(|| self.exited()))
    }

    fn exited(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "container {} has exited (no process of it is left)",
                self.id
            ),
        )
    }
}

/// A zombie (exited, not yet reaped) or dead task: its root, namespaces and files are gone.
fn exited(s: &procfs::Stat) -> bool {
    matches!(s.state, 'Z' | 'X' | 'x')
}

/// Why a container name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    NotFound(String),
    /// The name matched several containers: their IDs.
    Ambiguous(String, Vec<String>),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::NotFound(name) => write!(
                f,
                "no container matches '{name}': use an ID, a unique prefix of at least 4 characters, a hostname, pid:N or host (GET / lists them)"
            ),
            LookupError::Ambiguous(name, ids) => write!(
                f,
                "'{name}' matches {} containers ({}): give more characters",
                ids.len(),
                ids.join(", ")
            ),
        }
    }
}

/// What we read of one process while grouping.
struct Seen {
    stat: procfs::Stat,
    cgroup: Option<cgroup::CgroupId>,
    mnt: Option<u64>,
    root: Option<(u64, u64)>,
    kernel_thread: bool,
    /// In our own cgroup subtree while we run in a private cgroup namespace: our container.
    ours: bool,
    note: Option<String>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Host,
    /// The sidecar's own container, when only our cgroup namespace tells it (left out).
    Own,
    Runtime(String),
    Mount(u64),
}

fn root_identity(pid: u32) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/{pid}/root/"))?;
    Ok((m.dev(), m.ino()))
}

/// The inode of the initial cgroup namespace (`PROC_CGROUP_INIT_INO`, include/linux/proc_ns.h):
/// fixed by the kernel, so a different one means we run in a private cgroup namespace.
pub const INIT_CGROUP_NS: u64 = 0xEFFF_FFFB;

/// Whether a process is in our own cgroup subtree, seen from inside our private cgroup
/// namespace: none of its paths climbs out of the namespace's root (`/..`). A runtime puts
/// its container below the root in at least one hierarchy, so a neighbour or a host process
/// always shows a `/..` somewhere.
pub fn in_own_subtree(cgroup_file: &str) -> bool {
    let lines = procfs::parse_cgroup(cgroup_file);
    !lines.is_empty() && lines.iter().all(|l| !l.path.starts_with("/.."))
}

/// Reads only what grouping needs: a process with a runtime ID needs nothing more; one
/// that shares our root while we are on the node is the host's without its namespace.
/// With `private_cgns`, processes of our own cgroup subtree are marked `ours`.
fn look(pid: u32, my_root: Option<(u64, u64)>, on_host: bool, private_cgns: bool) -> Option<Seen> {
    // Gone: skip it.
    let stat = procfs::stat(pid).ok()?;
    // Kernel threads belong to the node, whatever their root. Told by their flags: inside a
    // PID namespace PID 2 and its children are a container's own processes.
    let kernel_thread = stat.is_kernel_thread();
    let mut seen = Seen {
        stat,
        cgroup: None,
        mnt: None,
        root: None,
        kernel_thread,
        ours: false,
        note: None,
    };
    if kernel_thread {
        return Some(seen);
    }
    let (id, ours) = procfs::with_text(pid, "cgroup", |text| {
        (
            cgroup::container_id(text),
            private_cgns && in_own_subtree(text),
        )
    })
    .unwrap_or((None, false));
    seen.cgroup = id;
    seen.ours = ours;
    if seen.cgroup.is_some() || seen.ours {
        return Some(seen);
    }
    match root_identity(pid) {
        Ok(r) => seen.root = Some(r),
        Err(e) => seen.note = Some(format!("pid {pid}: /proc/{pid}/root: {e}")),
    }
    if !(on_host && seen.root == my_root) {
        seen.mnt = procfs::namespace(pid, "mnt");
    }
    Some(seen)
}

/// Lists every container we can see, sorted by ID with `host` first.
pub fn discover() -> std::io::Result<Vec<Container>> {
    let me = std::process::id();
    let my_cgroup = procfs::read(me, "cgroup")
        .ok()
        .and_then(|c| cgroup::container_id(&c));
    let my_root = root_identity(me).ok();
    // In a private cgroup namespace (a container's: `0::/`, the rest at `/../…`) our own path
    // names no runtime, yet we are not on the node: our container is our cgroup subtree.
    let private_cgns = procfs::namespace(me, "cgroup").is_some_and(|ns| ns != INIT_CGROUP_NS);
    let on_host = my_cgroup.is_none() && !private_cgns;
    // From a container that sees the node's processes, the node's mount namespace is the
    // kernel threads' (kthreadd's, when we see it): its processes are the `host` entry.
    let host_mnt = if on_host {
        None
    } else {
        procfs::stat(2)
            .ok()
            .filter(procfs::Stat::is_kernel_thread)
            .and_then(|_| procfs::namespace(2, "mnt"))
    };

    let mut groups: BTreeMap<Key, Vec<Seen>> = BTreeMap::new();
    let mut my_key = None;
    for pid in procfs::pids()? {
        let Some(seen) = look(pid, my_root, on_host, private_cgns) else {
            continue;
        };
        let key = if let Some(c) = &seen.cgroup {
            Key::Runtime(c.id.clone())
        } else if seen.ours {
            Key::Own
        } else if seen.kernel_thread
            || (on_host && (seen.root.is_none() || seen.root == my_root))
            || (host_mnt.is_some() && seen.mnt == host_mnt)
        {
            Key::Host
        } else if let Some(mnt) = seen.mnt {
            Key::Mount(mnt)
        } else {
            Key::Host
        };
        if pid == me {
            my_key = Some(key.clone());
        }
        groups.entry(key).or_default().push(seen);
    }
    if let Some(k) = my_key.filter(|k| *k != Key::Host) {
        groups.remove(&k);
    }
    // Whatever our own process was keyed as, our cgroup subtree is our container.
    groups.remove(&Key::Own);

    let mut out: Vec<Container> = groups.into_iter().map(|(k, seen)| build(k, seen)).collect();
    // A hostname names an unlabelled container only when no other container has it.
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for c in out.iter().filter(|c| c.id.starts_with("mntns-")) {
        if let Some(h) = &c.hostname {
            *count.entry(h.clone()).or_default() += 1;
        }
    }
    for c in out.iter_mut().filter(|c| c.id.starts_with("mntns-")) {
        if let Some(h) = c
            .hostname
            .clone()
            .filter(|h| count[h] == 1 && valid_hostname_id(h))
        {
            c.id = h.clone();
            c.short_id = h;
        }
    }
    out.sort_by(|a, b| (a.id != "host", &a.id).cmp(&(b.id != "host", &b.id)));
    Ok(out)
}

fn valid_hostname_id(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h != "host"
        && !h.starts_with("pid:")
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// The processes that may stand for a container, best first: its init (PID 1 in its PID
/// namespace, `NSpid`), else its oldest process by start time; then the others, oldest
/// first. Only processes we may inspect qualify (on these machines not even root may open
/// `/proc/1/root`); kernel threads and zombies never do. A zombie init means the container
/// has exited (its PID namespace is being torn down): then none stands in.
fn stand_ins(seen: &[Seen]) -> Vec<(u32, u64)> {
    let candidates: Vec<Candidate> = seen
        .iter()
        .filter(|s| !s.kernel_thread)
        .map(|s| Candidate {
            pid: s.stat.pid,
            starttime: s.stat.starttime,
            inspectable: s.note.is_none(),
            exited: exited(&s.stat),
        })
        .collect();
    order_stand_ins(candidates, |pid| {
        procfs::with_text(pid, "status", |t| {
            procfs::status_field(t, "NSpid")
                .and_then(|v| v.split_whitespace().last())
                .is_some_and(|n| n == "1")
        })
        .unwrap_or(false)
    })
}

/// What choosing a stand-in needs to know of a process (kernel threads are left out before).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    pid: u32,
    starttime: u64,
    inspectable: bool,
    exited: bool,
}

/// The decision of `stand_ins`, pure: `is_init` says whether a PID is 1 in its own PID
/// namespace (asked in start order, so at most once per process and usually once).
fn order_stand_ins(mut order: Vec<Candidate>, is_init: impl Fn(u32) -> bool) -> Vec<(u32, u64)> {
    order.sort_by_key(|c| (c.starttime, c.pid));
    // The init is the oldest process of its PID namespace: looking in start order finds it
    // at once when there is one; a pod without one reads each status once.
    if let Some(i) = order.iter().position(|c| is_init(c.pid)) {
        if order[i].exited {
            return Vec::new();
        }
        let c = order.remove(i);
        order.insert(0, c);
    }
    order
        .iter()
        .filter(|c| c.inspectable && !c.exited)
        .map(|c| (c.pid, c.starttime))
        .collect()
}

fn build(key: Key, seen: Vec<Seen>) -> Container {
    let pid = seen.iter().map(|s| s.stat.pid).min().unwrap_or(0);
    let first = seen.iter().find(|s| s.stat.pid == pid);
    // Hostname, namespaces and root come from the process that stands for the container.
    let mut stand_ins = stand_ins(&seen);
    let mut notes: Vec<String> = seen.iter().filter_map(|s| s.note.clone()).collect();
    // The first stand-in whose root still opens (one that exited since is dropped): its
    // hostname and namespaces are the container's.
    let mut root = None;
    while let Some(&(p, _)) = stand_ins.first() {
        match Root::of_pid(p) {
            Ok(r) => {
                root = Some(r);
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                stand_ins.remove(0);
            }
            Err(_) => break,
        }
    }
    let inspectable = stand_ins.first().map_or(pid, |&(p, _)| p);
    // A hostname file the container replaced with a FIFO or a device is skipped, with a note.
    let hostname = match root.map(|r| r.read_optional("/etc/hostname", 256)) {
        Some(Ok(h)) => h,
        Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            notes.push(format!("pid {inspectable}: /etc/hostname skipped: {e}"));
            None
        }
        _ => None,
    }
    .map(|h| h.trim().to_string())
    .filter(|h| !h.is_empty());
    let (id, runtime, pod_id) = match &key {
        Key::Host => ("host".to_string(), "host", None),
        Key::Runtime(_) => {
            let c = first
                .and_then(|s| s.cgroup.clone())
                .expect("runtime key has a cgroup id");
            (c.id, c.runtime, c.pod_id)
        }
        Key::Mount(ino) => (format!("mntns-{ino}"), "unknown", None),
        // Removed before building; named for completeness.
        Key::Own => ("self".to_string(), "unknown", None),
    };
    let short_id = if runtime != "host" && runtime != "unknown" {
        id[..12].to_string()
    } else {
        id.clone()
    };
    let infra = key != Key::Host
        && seen
            .iter()
            .all(|s| s.stat.comm == "catatonit" || s.stat.comm == "pause");
    let namespaces = NAMESPACES
        .iter()
        .map(|k| (*k, procfs::namespace(inspectable, k)))
        .collect();
    let uid = procfs::read(pid, "status").ok().and_then(|s| {
        procfs::parse_ids(procfs::parse_status(&s).get("Uid")?)
            .first()
            .copied()
    });
    Container {
        id,
        short_id,
        hostname,
        runtime,
        pod_id,
        infra,
        pid,
        pids: seen.iter().map(|s| s.stat.pid).collect(),
        stats: seen.into_iter().map(|s| s.stat).collect(),
        root_pid: inspectable,
        stand_ins,
        namespaces,
        uid,
        notes,
    }
}

/// Finds the container named `name` without listing every container first when it can: a
/// name of at least 4 hex digits is looked for among runtime IDs with one read of each
/// process's `cgroup` file (no `stat`, root or namespace of anyone else); only the matching
/// processes are then inspected. Other names (a hostname, `mntns-…`, `host`, `pid:N`), and a
/// prefix no runtime ID has, go through `discover` and `lookup`.
pub fn find(name: &str) -> Result<Container, FindError> {
    if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some(found) = find_runtime_id(name)? {
            return Ok(found);
        }
    }
    let all = discover().map_err(FindError::Proc)?;
    lookup(&all, name).cloned().map_err(FindError::Lookup)
}

/// Why `find` found nothing.
#[derive(Debug)]
pub enum FindError {
    Proc(std::io::Error),
    Lookup(LookupError),
}

impl fmt::Display for FindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindError::Proc(e) => write!(f, "cannot list /proc: {e}"),
            FindError::Lookup(e) => e.fmt(f),
        }
    }
}

/// The runtime container whose ID starts with `prefix`, from the processes whose cgroup
/// names it; `None` when no process's does (or only our own container's).
///
/// The cgroup file system is looked at first: one hierarchy's directories (a few dozen on a
/// node, where `/proc/<pid>/cgroup` is one file per process, each formatted from every
/// hierarchy) and the `cgroup.procs` of those that name a matching container. Only when no
/// directory matches (a cgroup namespace or a container of our own shows just our subtree)
/// is every process's cgroup file read.
fn find_runtime_id(prefix: &str) -> Result<Option<Container>, FindError> {
    Ok(runtime_processes(prefix)?.map(|(id, seen)| build(Key::Runtime(id), seen)))
}

/// The ID of the container named `name` and the processes that may stand for it, best
/// first (see `Container::stand_ins`): what entering it takes, without its hostname,
/// namespaces or owner (`find` reads those too).
pub fn find_to_enter(name: &str) -> Result<(String, Vec<(u32, u64)>), FindError> {
    if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some((id, seen)) = runtime_processes(name)? {
            return Ok((id, stand_ins(&seen)));
        }
    }
    let c = find(name)?;
    Ok((c.id, c.stand_ins))
}

/// The runtime container whose ID starts with `prefix` and what was read of its processes.
fn runtime_processes(prefix: &str) -> Result<Option<(String, Vec<Seen>)>, FindError> {
    let mine = procfs::read(std::process::id(), "cgroup")
        .ok()
        .and_then(|c| cgroup::container_id(&c))
        .map(|c| c.id);
    let mut ids = match ids_from_cgroupfs(prefix) {
        Some(ids) if !ids.is_empty() => ids,
        _ => ids_from_proc(prefix)?,
    };
    if let Some(m) = &mine {
        ids.remove(m);
    }
    if ids.len() > 1 {
        if let Some(pids) = ids.remove(prefix) {
            // The full ID of one, a prefix of none other: it wins, as in `lookup`.
            ids.clear();
            ids.insert(prefix.to_string(), pids);
        } else {
            return Err(FindError::Lookup(LookupError::Ambiguous(
                prefix.to_string(),
                ids.into_keys().collect(),
            )));
        }
    }
    let Some((id, pids)) = ids.into_iter().next() else {
        return Ok(None);
    };
    let seen: Vec<Seen> = pids
        .into_iter()
        .filter_map(|p| look(p, None, false, false))
        .filter(|s| s.cgroup.as_ref().is_some_and(|c| c.id == id))
        .collect();
    if seen.is_empty() {
        return Ok(None);
    }
    Ok(Some((id, seen)))
}

/// Processes of the containers whose ID starts with `prefix`, by their `/proc/<pid>/cgroup`.
fn ids_from_proc(prefix: &str) -> Result<BTreeMap<String, Vec<u32>>, FindError> {
    let mut ids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for pid in procfs::pids().map_err(FindError::Proc)? {
        let Ok(Some(c)) = procfs::with_text(pid, "cgroup", cgroup::container_id) else {
            continue;
        };
        if c.id.starts_with(prefix) {
            ids.entry(c.id).or_default().push(pid);
        }
    }
    Ok(ids)
}

/// Processes of the containers whose ID starts with `prefix`, from the directories of one
/// cgroup hierarchy we see whole (its root mounted: the unified one first), the container's
/// cgroup and those below it. `None` when no hierarchy is mounted whole, or it is too big to
/// walk quickly.
fn ids_from_cgroupfs(prefix: &str) -> Option<BTreeMap<String, Vec<u32>>> {
    const MAX_DIRS: usize = 20_000;
    let mounts =
        procfs::with_text(std::process::id(), "mountinfo", procfs::parse_cgroup_mounts).ok()?;
    let mount = mounts
        .iter()
        .filter(|m| m.root == "/")
        .min_by_key(|m| (!m.v2, !m.options.iter().any(|o| o == "name=systemd")))?;
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let base = rustix::fs::open(mount.mount_point.as_str(), flags, Mode::empty()).ok()?;
    let mut ids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    // Directories are opened relative to their parent's descriptor when their turn comes
    // (no path resolved from the root again; open descriptors at most the tree's depth).
    let base = std::rc::Rc::new(base);
    let mut stack = vec![(base, None::<std::ffi::CString>, String::new())];
    let mut seen = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(32 << 10);
    while let Some((parent, name, rel)) = stack.pop() {
        seen += 1;
        if seen > MAX_DIRS {
            return None;
        }
        let dir = match name {
            None => parent,
            Some(n) => match rustix::fs::openat(&*parent, n.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => std::rc::Rc::new(fd),
                Err(rustix::io::Errno::NOENT) => continue, // removed meanwhile
                Err(_) => return None,
            },
        };
        if let Some(c) = cgroup::path_id(&rel).filter(|c| c.id.starts_with(prefix)) {
            let procs = rustix::fs::openat(
                &*dir,
                "cgroup.procs",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
            .and_then(|fd| {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).ok()?;
                Some(text)
            })
            .unwrap_or_default();
            ids.entry(c.id).or_default().extend(
                procs
                    .lines()
                    .filter_map(|l| l.trim().parse::<u32>().ok())
                    .filter(|&p| p != 0),
            );
        }
        // Read straight from the descriptor we opened (its offset is ours and at 0), not
        // through a reopened copy as `Dir::read_from` makes: three system calls fewer for
        // each of what can be thousands of directories.
        let mut raw = rustix::fs::RawDir::new(&*dir, buf.spare_capacity_mut());
        while let Some(entry) = raw.next() {
            let Ok(entry) = entry else {
                break;
            };
            if entry.file_type() != rustix::fs::FileType::Directory {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name == "." || name == ".." {
                continue;
            }
            // Another container's own directory: nothing below it can be the one asked
            // for (its sub-cgroups are its own), so it is not even opened.
            if foreign_container_dir(&name, prefix) {
                continue;
            }
            let sub = format!("{rel}/{name}");
            stack.push((dir.clone(), Some(entry.file_name().to_owned()), sub));
        }
    }
    for pids in ids.values_mut() {
        pids.sort_unstable();
        pids.dedup();
    }
    ids.retain(|_, pids| !pids.is_empty());
    Some(ids)
}

/// Whether cgroup directory `name` is a runtime's directory of one container (named in a
/// way no pod or slice is: `libpod-<id>`, `libpod-payload-<id>`, `docker-<id>.scope`,
/// `crio-<id>.scope`, `cri-containerd-<id>.scope`) whose ID does not start with `prefix`.
fn foreign_container_dir(name: &str, prefix: &str) -> bool {
    let id = [
        "libpod-payload-",
        "libpod-",
        "docker-",
        "crio-",
        "cri-containerd-",
    ]
    .iter()
    .find_map(|p| name.strip_prefix(p))
    .map(|rest| rest.strip_suffix(".scope").unwrap_or(rest));
    match id {
        Some(id) if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            !id.starts_with(prefix)
        }
        _ => false,
    }
}

/// Finds the container a user means by `name`.
pub fn lookup<'a>(all: &'a [Container], name: &str) -> Result<&'a Container, LookupError> {
    let not_found = || LookupError::NotFound(name.to_string());
    if let Some(n) = name.strip_prefix("pid:") {
        let pid: u32 = n.parse().map_err(|_| not_found())?;
        return all
            .iter()
            .find(|c| c.pids.contains(&pid))
            .ok_or_else(not_found);
    }
    if let Some(c) = all.iter().find(|c| c.id == name) {
        return Ok(c);
    }
    let pick = |matches: Vec<&'a Container>| match matches.len() {
        0 => None,
        1 => Some(Ok(matches[0])),
        _ => Some(Err(LookupError::Ambiguous(
            name.to_string(),
            matches.iter().map(|c| c.id.clone()).collect(),
        ))),
    };
    if name.len() >= 4 {
        if let Some(r) = pick(all.iter().filter(|c| c.id.starts_with(name)).collect()) {
            return r;
        }
    }
    pick(
        all.iter()
            .filter(|c| c.hostname.as_deref() == Some(name))
            .collect(),
    )
    .unwrap_or_else(|| Err(not_found()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, hostname: &str, pids: &[u32]) -> Container {
        Container {
            id: id.into(),
            short_id: id.into(),
            hostname: Some(hostname.into()),
            runtime: "podman",
            pod_id: None,
            infra: false,
            pid: pids[0],
            pids: pids.to_vec(),
            namespaces: BTreeMap::new(),
            uid: Some(0),
            notes: vec![],
            stats: vec![],
            root_pid: pids[0],
            stand_ins: vec![],
        }
    }

    #[test]
    fn lookup_forms() {
        let all = vec![
            c("host", "node", &[1, 2]),
            c("abcd1234", "web", &[10]),
            c("abcd5678", "db", &[20, 21]),
            c("ffff0000", "web", &[30]),
        ];
        assert_eq!(lookup(&all, "abcd1234").unwrap().id, "abcd1234");
        assert_eq!(lookup(&all, "abcd5").unwrap().id, "abcd5678");
        assert_eq!(
            lookup(&all, "abcd").unwrap_err(),
            LookupError::Ambiguous("abcd".into(), vec!["abcd1234".into(), "abcd5678".into()])
        );
        assert!(
            matches!(lookup(&all, "abc"), Err(LookupError::NotFound(_))),
            "prefixes need 4 characters"
        );
        assert_eq!(lookup(&all, "db").unwrap().id, "abcd5678");
        assert!(matches!(
            lookup(&all, "web"),
            Err(LookupError::Ambiguous(..))
        ));
        assert_eq!(lookup(&all, "pid:21").unwrap().id, "abcd5678");
        assert!(lookup(&all, "pid:99").is_err());
        assert!(lookup(&all, "pid:x").is_err());
        assert_eq!(lookup(&all, "host").unwrap().id, "host");
        assert_eq!(lookup(&all, "node").unwrap().id, "host");
    }

    fn cand(pid: u32, starttime: u64) -> Candidate {
        Candidate {
            pid,
            starttime,
            inspectable: true,
            exited: false,
        }
    }

    #[test]
    fn who_stands_for_a_container() {
        // The init (PID 1 inside) first, though a chrooted worker has a lower PID and is
        // older; then the others, oldest first.
        let procs = vec![cand(300, 50), cand(100, 10), cand(31000, 20), cand(200, 90)];
        let got = order_stand_ins(procs.clone(), |p| p == 31000);
        assert_eq!(got, [(31000, 20), (100, 10), (300, 50), (200, 90)]);
        // No init (a pod sharing one PID namespace): the oldest, not the lowest PID.
        let got = order_stand_ins(vec![cand(5, 70), cand(32000, 30)], |_| false);
        assert_eq!(got, [(32000, 30), (5, 70)]);
        // A zombie init: the container has exited, whatever else is left.
        let mut zombie = cand(31000, 20);
        zombie.exited = true;
        assert!(order_stand_ins(vec![zombie, cand(100, 30)], |p| p == 31000).is_empty());
        // Processes we may not inspect, and other zombies, never stand in.
        let mut hidden = cand(1, 0);
        hidden.inspectable = false;
        let mut dead = cand(50, 5);
        dead.exited = true;
        let got = order_stand_ins(vec![hidden, dead, cand(60, 6)], |p| p == 1);
        assert_eq!(got, [(60, 6)]);
    }

    #[test]
    fn own_cgroup_subtree_in_a_private_namespace() {
        // Ours: every hierarchy at or below the namespace's root.
        assert!(in_own_subtree("9:name=systemd:/\n8:pids:/\n0::/\n"));
        assert!(in_own_subtree("8:pids:/init\n0::/\n"));
        // A neighbour or the node: some hierarchy climbs out.
        assert!(!in_own_subtree("9:name=systemd:/../x\n8:pids:/\n0::/\n"));
        assert!(!in_own_subtree("0::/../../system.slice/sshd.service\n"));
        assert!(!in_own_subtree(""));
    }

    #[test]
    fn hostnames_usable_as_ids() {
        assert!(valid_hostname_id("web-1.example"));
        assert!(!valid_hostname_id("host"));
        assert!(!valid_hostname_id("a/b"));
        assert!(!valid_hostname_id(""));
    }
}
