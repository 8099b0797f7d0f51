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
    /// The process whose root and namespaces stand for the container's: the lowest PID we
    /// may inspect (not always `pid`: even root may not open `/proc/1/root` here).
    #[serde(skip)]
    pub root_pid: u32,
}

impl Container {
    /// The process that stands for the container when entering it (`root_pid`), and its
    /// start time as discovery saw it, so that a PID reused since is noticed.
    pub fn entry_point(&self) -> (u32, u64) {
        let start = self
            .pids
            .iter()
            .position(|&p| p == self.root_pid)
            .and_then(|i| self.stats.get(i))
            .map(|s| s.starttime)
            .or_else(|| procfs::stat(self.root_pid).ok().map(|s| s.starttime))
            .unwrap_or(0);
        (self.root_pid, start)
    }
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
    note: Option<String>,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Host,
    Runtime(String),
    Mount(u64),
}

fn root_identity(pid: u32) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(format!("/proc/{pid}/root/"))?;
    Ok((m.dev(), m.ino()))
}

/// Reads only what grouping needs: a process with a runtime ID needs nothing more; one
/// that shares our root while we are on the node is the host's without its namespace.
fn look(pid: u32, my_root: Option<(u64, u64)>, on_host: bool) -> Option<Seen> {
    let stat = procfs::stat(pid).ok()?; // gone: skip it
                                        // Kernel threads (kthreadd and its children) belong to the node, whatever their root.
    let kernel_thread = pid == 2 || stat.ppid == 2;
    let mut seen = Seen {
        stat,
        cgroup: None,
        mnt: None,
        root: None,
        kernel_thread,
        note: None,
    };
    if kernel_thread {
        return Some(seen);
    }
    seen.cgroup = procfs::with_text(pid, "cgroup", cgroup::container_id)
        .ok()
        .flatten();
    if seen.cgroup.is_some() {
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
    let on_host = my_cgroup.is_none();

    let mut groups: BTreeMap<Key, Vec<Seen>> = BTreeMap::new();
    let mut my_key = None;
    for pid in procfs::pids()? {
        let Some(seen) = look(pid, my_root, on_host) else {
            continue;
        };
        let key = if let Some(c) = &seen.cgroup {
            Key::Runtime(c.id.clone())
        } else if on_host && (seen.root.is_none() || seen.root == my_root || seen.kernel_thread) {
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

fn build(key: Key, seen: Vec<Seen>) -> Container {
    let pid = seen.iter().map(|s| s.stat.pid).min().unwrap_or(0);
    let first = seen.iter().find(|s| s.stat.pid == pid);
    // Hostname and namespaces come from the first process we may look into (on these
    // machines not even root may open /proc/1/root or /proc/1/ns).
    let inspectable = seen
        .iter()
        .find(|s| s.note.is_none() && !s.kernel_thread)
        .map_or(pid, |s| s.stat.pid);
    let mut notes: Vec<String> = seen.iter().filter_map(|s| s.note.clone()).collect();
    // A hostname file the container replaced with a FIFO or a device is skipped, with a note.
    let hostname =
        match Root::of_pid(inspectable).and_then(|r| r.read_optional("/etc/hostname", 256)) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                notes.push(format!("pid {inspectable}: /etc/hostname skipped: {e}"));
                None
            }
            Err(_) => None,
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
        namespaces,
        uid,
        notes,
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

    #[test]
    fn hostnames_usable_as_ids() {
        assert!(valid_hostname_id("web-1.example"));
        assert!(!valid_hostname_id("host"));
        assert!(!valid_hostname_id("a/b"));
        assert!(!valid_hostname_id(""));
    }
}
