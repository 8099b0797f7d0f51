//! Step 1 of an install: what the native path refuses before anything is written: a path
//! that is not normal, a file under a symlink of the same package, a device node, and a
//! file conflict that only shows once directory symlinks are resolved (rpm's fingerprints).
//!
//! Invariant: reads only (lookups inside the container's root); writes nothing.

use std::collections::{BTreeSet, HashMap};

use rustix::fs::OFlags;

use super::{FILE_GHOST, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use crate::packages::native::apply::Installed;
use crate::rootfs::Root;
use crate::rpmdb::{header, FileEntry};

/// Step 1: what the native path refuses to write.
pub(super) fn refuse_hostile(files: &[FileEntry]) -> Result<(), String> {
    let symlinks: BTreeSet<&str> = files
        .iter()
        .filter(|f| f.mode & S_IFMT == S_IFLNK)
        .map(|f| f.path.as_str())
        .collect();
    for f in files {
        crate::packages::native::place::split(&f.path)?;
        match f.mode & S_IFMT {
            S_IFDIR | S_IFREG | S_IFLNK | S_IFIFO => {}
            0o020000 | 0o060000 => {
                return Err(format!(
                    "{}: a device node; the native path installs none (refused)",
                    f.path
                ))
            }
            other => {
                return Err(format!(
                    "{}: file type {other:o} is not installed natively (refused)",
                    f.path
                ))
            }
        }
        let mut at = 0;
        while let Some(i) = f.path[at + 1..].find('/') {
            at += 1 + i;
            let prefix = &f.path[..at];
            if symlinks.contains(prefix) {
                return Err(format!(
                    "{}: written through {prefix}, a symlink of the same package (refused)",
                    f.path
                ));
            }
        }
    }
    Ok(())
}

/// rpm's file fingerprints (`fprint.c`): two paths whose directories are one directory (a
/// symlink such as `/bin -> usr/bin` between them) name one file. A file of the package that
/// is, so, a different file of another installed package is rpm's file conflict, which the
/// server's check (by path) does not see; refused before anything is written.
pub(super) fn conflicts_through_symlinks(
    root: &Root,
    db: &Installed,
    hdr_blob: &[u8],
    files: &[FileEntry],
    replace: Option<u32>,
) -> Result<(), String> {
    let plain = |f: &FileEntry| f.mode & S_IFMT != S_IFDIR && f.flags & FILE_GHOST == 0;
    let mut by_name: HashMap<&str, Vec<(&crate::rpmdb::Package, &FileEntry)>> = HashMap::new();
    for p in db.packages.iter().filter(|p| Some(p.instance) != replace) {
        for o in p.more().entries.iter().filter(|o| plain(o)) {
            if let Ok((_, name)) = crate::packages::native::place::split(&o.path) {
                by_name.entry(name).or_default().push((p, o));
            }
        }
    }
    let mut ids: HashMap<String, Option<(u64, u64)>> = HashMap::new();
    let mut id = |dir: &str| {
        *ids.entry(dir.to_string()).or_insert_with(|| {
            let fd = root
                .resolve(dir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
                .ok()?;
            let st = rustix::fs::fstat(&fd).ok()?;
            Some((st.st_dev, st.st_ino))
        })
    };
    for f in files.iter().filter(|f| plain(f)) {
        let (dir, name) = crate::packages::native::place::split(&f.path)?;
        for (p, o) in by_name.get(name).into_iter().flatten() {
            let Ok((odir, _)) = crate::packages::native::place::split(&o.path) else {
                continue;
            };
            if o.path == f.path || crate::packages::native::check::same_file(f, o) {
                continue; // the same path is the server's check
            }
            let here = id(dir);
            if here.is_some() && here == id(odir) {
                let new = header::parse(hdr_blob, 0).map_err(|e| e.to_string())?;
                return Err(format!(
                    "file {} from install of {} conflicts with file from package {} (its {}, the same file through a symlinked directory)",
                    f.path,
                    crate::packages::transaction::nevra(&new),
                    crate::packages::transaction::nevra(p),
                    o.path
                ));
            }
        }
    }
    Ok(())
}
