//! A native erase, in a process chrooted into the container (see `apply`): the package is
//! unregistered (`Packages` and every index) in a SQLite transaction, its files that no
//! other package owns are removed, deepest first (a directory only when empty; a modified
//! `%config` file is kept as `.rpmsave`, as rpm keeps it), then the transaction commits.
//!
//! Invariant: nothing another installed package owns is touched.

use std::collections::BTreeSet;

use rustix::fs::AtFlags;

use super::apply::{Applied, Installed};
use super::place::{disk_digest, lstat, rename_in, Dirs};
use super::register::Register;
use crate::rootfs::Root;
use crate::rpmdb::FileEntry;

const FILE_CONFIG: u32 = 1 << 0;
const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;

/// Erases installed instance `instance`.
///
/// # Errors
/// Why nothing was erased (the database is as it was), or a failed commit.
pub fn erase(root: &Root, db: &Installed, instance: u32) -> Result<Applied, String> {
    let pkg = db
        .packages
        .iter()
        .find(|p| p.instance == instance)
        .ok_or_else(|| format!("header {instance} is not installed"))?;
    let blob = db.blob(instance)?;
    let raw = crate::rpmdb::header::raw_entries(&blob).map_err(|e| e.to_string())?;
    let mut register = Register::open(root, db)?;
    register.remove(db, instance)?;
    let owned = db.owned_by_others(instance);
    let files: Vec<&FileEntry> = pkg
        .more()
        .entries
        .iter()
        .filter(|f| !owned.contains(f.path.as_str()))
        .collect();
    let mut warnings = Vec::new();
    let mut dirs = Dirs::new(root);
    remove_files(&mut dirs, &files, pkg.more().digest_algo, &mut warnings);
    register
        .commit()
        .map_err(|e| format!("the files are removed but the database commit failed: {e}"))?;
    Ok(Applied {
        instance,
        warnings,
        skipped_scriptlets: super::apply::scriptlets(&raw, false),
    })
}

/// Removes `files` (deepest first), as rpm's erase does: a directory only when empty, a
/// modified `%config` file renamed to `.rpmsave`; what is already gone is no error. What
/// cannot be removed becomes a warning, in rpm's words.
pub fn remove_files(dirs: &mut Dirs, files: &[&FileEntry], algo: u32, warnings: &mut Vec<String>) {
    let mut order: Vec<&FileEntry> = files.to_vec();
    order.sort_by(|a, b| b.path.cmp(&a.path));
    let mut seen = BTreeSet::new();
    for f in order {
        if !seen.insert(f.path.as_str()) {
            continue;
        }
        let Ok(place) = dirs.place(&f.path, false) else {
            continue; // its directory is gone already
        };
        let Some(st) = lstat(&place) else {
            continue;
        };
        let on_disk = st.st_mode as u16 & S_IFMT;
        if f.mode & S_IFMT == S_IFDIR {
            if on_disk == S_IFDIR {
                match rustix::fs::unlinkat(&*place.dir, place.name.as_str(), AtFlags::REMOVEDIR) {
                    Ok(()) | Err(rustix::io::Errno::NOTEMPTY) | Err(rustix::io::Errno::NOENT) => {}
                    Err(rustix::io::Errno::BUSY) => {}
                    Err(e) => warnings.push(format!("warning: {} remove failed: {e}", f.path)),
                }
            }
            continue;
        }
        if on_disk == S_IFDIR {
            continue; // a directory where the package had a file: the container's now
        }
        if f.flags & FILE_CONFIG != 0
            && on_disk == S_IFREG
            && disk_digest(&place, algo).as_deref() != Some(f.digest.as_str())
        {
            let saved = format!("{}.rpmsave", place.name);
            match rename_in(&*place.dir, &place.name, &saved, &f.path) {
                Ok(()) => warnings.push(format!("warning: {} saved as {}.rpmsave", f.path, f.path)),
                Err(e) => warnings.push(format!("warning: {e}")),
            }
            continue;
        }
        match rustix::fs::unlinkat(&*place.dir, place.name.as_str(), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => warnings.push(format!("warning: {} remove failed: {e}", f.path)),
        }
    }
}
