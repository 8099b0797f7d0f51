//! The users and groups of a container, looked up as rpm looks them up once it has chrooted
//! into the container (`lib/rpmug.c`): `rpm -V` compares a file's owner with the header's
//! name (`verify`), a native install turns the header's names into IDs (`native`).
//!
//! Invariant: `root` is uid/gid 0 without looking (rpm's rule), whatever the files say; a
//! missing or unreadable `/etc/passwd` or `/etc/group` leaves only root known.

use std::io::Read;

use crate::procfs::{parse_group, parse_passwd};
use crate::rootfs::Root;

/// Names and IDs from the container's `/etc/passwd` and `/etc/group`.
pub struct Ids {
    users: Vec<(String, u32)>,
    groups: Vec<(String, u32)>,
}

impl Ids {
    /// Reads both files of `root` (at most 4 MiB each, opened as `Root::open` opens them:
    /// a FIFO or device planted there is never opened).
    pub fn read(root: &Root) -> Ids {
        let text = |path| {
            let mut out = Vec::new();
            root.open(path)
                .and_then(|f| f.take(4 << 20).read_to_end(&mut out))
                .map(|_| String::from_utf8_lossy(&out).into_owned())
                .unwrap_or_default()
        };
        Ids {
            users: parse_passwd(&text("/etc/passwd"))
                .into_iter()
                .map(|e| (e.name, e.uid))
                .collect(),
            groups: parse_group(&text("/etc/group"))
                .into_iter()
                .map(|e| (e.name, e.gid))
                .collect(),
        }
    }

    /// rpm's `rpmugUid`.
    pub fn uid(&self, name: &str) -> Option<u32> {
        id(&self.users, name)
    }

    /// rpm's `rpmugGid`.
    pub fn gid(&self, name: &str) -> Option<u32> {
        id(&self.groups, name)
    }

    /// Whether a file owned by `have` is owned by user `want`, by name or by number, as rpm
    /// 4.18's verify decides (a user the container does not know is root).
    pub fn user_matches(&self, want: &str, have: u32) -> bool {
        matches(&self.users, want, have)
    }

    /// The same for groups.
    pub fn group_matches(&self, want: &str, have: u32) -> bool {
        matches(&self.groups, want, have)
    }
}

fn id(list: &[(String, u32)], name: &str) -> Option<u32> {
    if name == "root" {
        return Some(0);
    }
    list.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
}

/// rpm's `rpmugUname`/`rpmugGname`: 0 is `root` without looking.
fn name(list: &[(String, u32)], id: u32) -> Option<&str> {
    if id == 0 {
        return Some("root");
    }
    list.iter().find(|(_, i)| *i == id).map(|(n, _)| n.as_str())
}

/// rpm 4.18's verify: the names agree, or the IDs do, a name the container does not know
/// counting as root (as rpm installed its files: "user … does not exist - using root").
fn matches(list: &[(String, u32)], want: &str, have: u32) -> bool {
    name(list, have).is_some_and(|n| n == want) || id(list, want).unwrap_or(0) == have
}
