//! Which installed packages own a file, as `rpm -qf` finds them: among the files of the
//! same base name, those whose directory is the same directory inside the container's root
//! (the same device and inode once symlinks are followed, as rpm's file fingerprints
//! compare them), so `/bin/sh` finds the owner of `/usr/bin/sh` where `/bin -> usr/bin`.
//!
//! Invariant: every path is resolved inside the container's root (`RESOLVE_IN_ROOT`) and
//! only looked at (`O_PATH` + `fstat`): nothing is opened for reading, nothing outside the
//! root is reached.

use std::collections::BTreeMap;
use std::io;

use rustix::fs::OFlags;
use serde_json::{json, Value};

use super::{summary, Database, Error};
use crate::rootfs::Root;
use crate::rpmdb::Package;

/// What `rpm -qf PATH` finds.
#[derive(Debug)]
pub enum Owners<'a> {
    /// The packages that own the file, in database order.
    Owned(Vec<&'a Package>),
    /// The file exists, and no package owns it.
    NotOwned,
    /// No package owns it, and it is not there either (rpm: "error: file …: <why>").
    Missing(io::Error),
}

/// `rpm`'s `rpmCleanPath` for an absolute path: no empty or `.` components, `..` taken back
/// (never above `/`), no trailing slash.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Splits a clean absolute path into its directory (with the trailing slash, as rpm's
/// DIRNAMES hold them) and its base name.
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// A directory as rpm's fingerprint cache sees it: the device and inode of the deepest part
/// of it that exists inside the root (symlinks followed), and the rest of the path below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    rest: String,
}

fn stat_in_root(root: &Root, path: &str, follow: bool) -> io::Result<rustix::fs::Stat> {
    let mut flags = OFlags::PATH;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = root.resolve(path.as_bytes(), flags)?;
    Ok(rustix::fs::fstat(&fd)?)
}

/// The fingerprint of directory `dir` (clean, with a trailing slash).
fn fingerprint(root: &Root, dir: &str) -> Fingerprint {
    let mut probe = dir.trim_end_matches('/').to_string();
    loop {
        let at = if probe.is_empty() { "/" } else { &probe };
        if let Ok(st) = stat_in_root(root, at, true) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                return Fingerprint {
                    dev: st.st_dev,
                    ino: st.st_ino,
                    rest: dir[probe.len()..].to_string(),
                };
            }
        }
        if probe.is_empty() {
            // Not even the root could be looked at: compare the paths as they are.
            return Fingerprint {
                dev: 0,
                ino: 0,
                rest: dir.to_string(),
            };
        }
        match probe.rfind('/') {
            Some(i) => probe.truncate(i),
            None => probe.clear(),
        }
    }
}

/// The packages of `db` (read with [`crate::rpmdb::Detail::Files`]) that own `path`.
pub fn owners<'a>(root: &Root, db: &'a Database, path: &str) -> Result<Owners<'a>, Error> {
    if !path.starts_with('/') || path.contains('\0') {
        return Err(Error::BadPath {
            path: path.to_string(),
            what: "the path must be absolute (it is looked up inside the container)",
        });
    }
    let clean = clean_path(path);
    let found = owning(root, db.packages.iter(), &clean);
    if !found.is_empty() {
        return Ok(Owners::Owned(found));
    }
    Ok(match stat_in_root(root, &clean, false) {
        Ok(_) => Owners::NotOwned,
        Err(e) => Owners::Missing(e),
    })
}

/// The packages among `pkgs` that own the clean absolute path `clean`, in database order:
/// those with a file of the same base name in a directory with the same fingerprint.
pub(super) fn owning<'a>(
    root: &Root,
    pkgs: impl Iterator<Item = &'a Package>,
    clean: &str,
) -> Vec<&'a Package> {
    let (dir, base) = split(clean);
    let want = fingerprint(root, dir);
    let mut cache: BTreeMap<&str, Fingerprint> = BTreeMap::new();
    let mut found: Vec<&Package> = Vec::new();
    for p in pkgs {
        let owns = p.more().entries.iter().any(|f| {
            let (fdir, fbase) = split(&f.path);
            if fbase != base {
                return false;
            }
            if fdir == dir {
                return true;
            }
            let fp = cache.entry(fdir).or_insert_with(|| fingerprint(root, fdir));
            *fp == want
        });
        if owns {
            found.push(p);
        }
    }
    found.sort_by_key(|p| p.instance);
    found
}

/// `GET /<c>/rpms?file=PATH`: `{"path", "owners": [<the listing's package objects>]}`.
pub fn owners_json(path: &str, owned: &Owners<'_>) -> Value {
    let list: Vec<Value> = match owned {
        Owners::Owned(list) => list
            .iter()
            .map(|p| serde_json::to_value(summary(p)).unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    let mut v = json!({"path": path, "owners": list});
    if let Owners::Missing(e) = owned {
        v["error"] = json!(super::strerror(e));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_paths_as_rpm_does() {
        for (raw, clean) in [
            ("/usr/bin/sh", "/usr/bin/sh"),
            ("//usr///bin/./sh", "/usr/bin/sh"),
            ("/usr/lib/../bin/sh", "/usr/bin/sh"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/etc/", "/etc"),
            ("/", "/"),
        ] {
            assert_eq!(clean_path(raw), clean, "{raw}");
        }
        assert_eq!(split("/usr/bin/sh"), ("/usr/bin/", "sh"));
        assert_eq!(split("/etc"), ("/", "etc"));
    }
}
