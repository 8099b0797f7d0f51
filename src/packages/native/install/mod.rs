//! A native install or update, in a process chrooted into the container (see `apply`):
//! 1. **Refuse** (`refuse.rs`) before anything is written what the native path will not do:
//!    a path that is not normal (`..`), a file under a symlink of the same package (a write
//!    through it), a device node, a file conflict through a directory symlink.
//! 2. **Stage** (here, each file by `write.rs`) every file of the payload (the `rpm` crate decompresses it and walks its
//!    cpio, matched to the header's file list) under a temporary name in its directory
//!    (`.name;<tid>`, as rpm's own), with its mode, owner (names looked up in the
//!    container's `/etc/passwd` and `/etc/group`; an unknown one is root, and loses a
//!    setuid/setgid bit, as rpm does), mtime and file capabilities; its size and digest
//!    checked against the header. Hardlink sets are linked to the member that carries the
//!    content. Directories are made when missing. `%config` files follow rpm's rules
//!    (`rpmfiDecideFate`): a changed `%config(noreplace)` gets the new one as `.rpmnew`,
//!    another changed `%config` is kept as `.rpmsave` (update) or `.rpmorig` (install).
//! 3. **Register** the header (`store`) and its index keys (`register`: one SQLite
//!    transaction, or the ndb writer), the replaced package's removed in the same change.
//! 4. **Commit**: every staged file renamed into place, then the replaced package's files
//!    no package owns any more removed, then the database transaction committed.
//!
//! Invariant: a failure in steps 1–3 removes every staged file and made directory and
//! rolls the database back: the container is as it was.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufReader, Seek};
use std::os::unix::fs::FileExt;

use rustix::fs::{AtFlags, Mode};

mod refuse;
mod write;

use refuse::{conflicts_through_symlinks, refuse_hostile};
use write::{decide, link, make_dir, set_meta_at, write_regular, write_symlink};

use super::apply::{Applied, Installed};
use super::place::{lstat, rename_in, Dirs, Place};
use super::register::Register;
use super::{index, store};
use crate::packages::ids::Ids;
use crate::rootfs::Root;
use crate::rpmdb::{header, FileEntry};

pub(super) const FILE_CONFIG: u32 = 1 << 0;
pub(super) const FILE_NOREPLACE: u32 = 1 << 4;
pub(super) const FILE_GHOST: u32 = 1 << 6;
const TAG_FILEINODES: u32 = 1096;

pub(super) const S_IFMT: u16 = 0o170000;
pub(super) const S_IFDIR: u16 = 0o040000;
pub(super) const S_IFREG: u16 = 0o100000;
pub(super) const S_IFLNK: u16 = 0o120000;
pub(super) const S_IFIFO: u16 = 0o010000;

/// What becomes of one file at commit.
#[derive(Debug)]
pub(super) enum Fate {
    /// The staged file replaces whatever is at the place.
    Create,
    /// The file on disk is kept; the staged one goes in as `.rpmnew`.
    AltName,
    /// The file on disk is renamed to `.rpmsave`/`.rpmorig`; the staged one goes in.
    Backup(&'static str),
    /// The file on disk is kept as it is; nothing was staged.
    Skip,
}

pub(super) struct Staged {
    place: Place,
    tmp: String,
    fate: Fate,
}

/// The package file's headers, read from the front of `pkg`.
fn read_headers(pkg: &std::fs::File) -> Result<Vec<u8>, String> {
    let l = crate::packages::upload::layout(|at| {
        let mut b = [0u8; 16];
        pkg.read_exact_at(&mut b, at).ok().map(|_| b)
    })?;
    let len = usize::try_from(l.header_at + l.header_len).map_err(|e| e.to_string())?;
    let mut head = vec![0u8; len];
    pkg.read_exact_at(&mut head, 0)
        .map_err(|e| format!("cannot read the package: {e}"))?;
    Ok(head)
}

/// Installs the package in `pkg` (checked by the server: digests, dependencies,
/// conflicts), replacing installed instance `replace` when it is an update.
///
/// # Errors
/// Why nothing was installed (the container is as it was), or, after the commit began,
/// what failed (then said so).
pub fn install(
    root: &Root,
    db: &Installed,
    mut pkg: std::fs::File,
    time: u32,
    replace: Option<u32>,
) -> Result<Applied, String> {
    let head = read_headers(&pkg)?;
    let (sig_blob, hdr_blob) = super::blobs(&head)?;
    let parsed = header::parse_files(hdr_blob, 0).map_err(|e| format!("package header: {e}"))?;
    // `parse_files` gives rpm's default, MD5, when the header names no algorithm.
    let algo = parsed.more().digest_algo;
    let files: Vec<FileEntry> = parsed.more().entries.clone();
    let raw = header::raw_entries(hdr_blob).map_err(|e| e.to_string())?;
    let inodes: Vec<u64> = raw
        .iter()
        .rev()
        .find(|e| e.tag == TAG_FILEINODES)
        .map(|e| e.numbers())
        .unwrap_or_default();
    refuse_hostile(&files)?;
    conflicts_through_symlinks(root, db, hdr_blob, &files, replace)?;
    let old = replace.and_then(|i| db.packages.iter().find(|p| p.instance == i));
    let old_files: HashMap<&str, &FileEntry> = old
        .map(|p| {
            p.more()
                .entries
                .iter()
                .map(|f| (f.path.as_str(), f))
                .collect()
        })
        .unwrap_or_default();
    let ids = Ids::read(root);
    let mut warnings = Vec::new();
    let by_path: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    let tid_suffix = format!(";{time:08x}");

    let mut dirs = Dirs::new(root);
    let mut staged: Vec<Staged> = Vec::new();
    let result = (|| -> Result<(), String> {
        // Step 2: stage, in payload order.
        pkg.rewind().map_err(|e| e.to_string())?;
        let mut reader = rpm::PackageReader::parse(BufReader::with_capacity(
            256 << 10,
            pkg.try_clone().map_err(|e| e.to_string())?,
        ))
        .map_err(|e| format!("payload: {e}"))?;
        let mut seen = vec![false; files.len()];
        // Hardlink sets: inode -> (the staged member with content, members waiting).
        let mut links: BTreeMap<u64, (Option<usize>, Vec<usize>)> = BTreeMap::new();
        // How many files of the package share each inode number (counted once, not per file).
        let mut per_inode: HashMap<u64, usize> = HashMap::new();
        for ino in &inodes {
            *per_inode.entry(*ino).or_default() += 1;
        }
        let nlink = |i: usize| inodes.get(i).map_or(1, |ino| per_inode[ino]);
        loop {
            let mut next = match reader.next_file() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(format!("payload: {e}")),
            };
            let path = next.metadata.path().to_string_lossy().into_owned();
            let Some(&i) = by_path.get(path.as_str()) else {
                return Err(format!("payload: {path} is not in the header's file list"));
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("payload: {path} appears twice"));
            }
            let f = &files[i];
            if f.flags & FILE_GHOST != 0 {
                continue; // rpm creates no %ghost file
            }
            let kind = f.mode & S_IFMT;
            if kind == S_IFDIR {
                make_dir(&mut dirs, f, &ids, &mut warnings)?;
                continue;
            }
            let place = dirs.place(&f.path, true)?;
            // A rename cannot put a file over a directory: refused now, not at the commit,
            // when files before it would be in place already.
            if lstat(&place).is_some_and(|st| st.st_mode as u16 & S_IFMT == S_IFDIR) {
                return Err(format!(
                    "{}: a directory is in the way of the package's file (refused)",
                    f.path
                ));
            }
            let fate = decide(&place, f, old_files.get(f.path.as_str()).copied(), algo);
            if matches!(fate, Fate::Skip) {
                continue;
            }
            let tmp = format!(".{}{tid_suffix}", place.name);
            if kind == S_IFREG && nlink(i) > 1 {
                let set = links.entry(inodes[i]).or_default();
                // rpm's cpio carries a set's content once, with the member that has it.
                if next.has_payload() && set.0.is_none() {
                    set.0 = Some(staged.len());
                } else {
                    set.1.push(staged.len());
                    staged.push(Staged { place, tmp, fate });
                    continue;
                }
            }
            // Listed before it is written: a failure half-way removes it with the rest.
            staged.push(Staged { place, tmp, fate });
            let Staged { place, tmp, .. } = &staged[staged.len() - 1];
            match kind {
                S_IFREG => write_regular(place, tmp, f, &mut next, algo, &ids, &mut warnings)?,
                S_IFLNK => write_symlink(place, tmp, f, &ids, &mut warnings)?,
                S_IFIFO => {
                    let fifo = rustix::fs::FileType::Fifo;
                    rustix::fs::mknodat(&*place.dir, tmp.as_str(), fifo, Mode::from_raw_mode(0), 0)
                        .map_err(|e| format!("cannot create {}: {e}", f.path))?;
                    set_meta_at(place, tmp, f, &ids, &mut warnings)?;
                }
                _ => {
                    return Err(format!(
                        "{}: file type {kind:o} is not installed natively",
                        f.path
                    ))
                }
            }
        }
        // Members of a hardlink set without content: links to the one with it.
        for (_, (with, members)) in links {
            let Some(w) = with else {
                // No member carried content: an empty file, then links to it.
                let Some((&first, rest)) = members.split_first() else {
                    continue;
                };
                let s = &staged[first];
                let f = &files[by_path[s.place.path.as_str()]];
                write_regular(
                    &s.place,
                    &s.tmp,
                    f,
                    &mut std::io::empty(),
                    algo,
                    &ids,
                    &mut warnings,
                )?;
                for &m in rest {
                    link(&staged[first], &staged[m])?;
                }
                continue;
            };
            for &m in &members {
                link(&staged[w], &staged[m])?;
            }
        }
        // Files the header lists and the payload lacks (other than ghosts and directories).
        for (i, f) in files.iter().enumerate() {
            if !seen[i] && f.flags & FILE_GHOST == 0 && f.mode & S_IFMT != S_IFDIR {
                return Err(format!(
                    "payload: {} is missing (the archive ends early)",
                    f.path
                ));
            }
            if !seen[i] && f.mode & S_IFMT == S_IFDIR {
                make_dir(&mut dirs, f, &ids, &mut warnings)?;
            }
        }
        Ok(())
    })();
    let fail = |staged: &[Staged], dirs: &mut Dirs, e: String| {
        for s in staged {
            let _ = rustix::fs::unlinkat(&*s.place.dir, s.tmp.as_str(), AtFlags::empty());
        }
        dirs.remove_created();
        Err(e)
    };
    if let Err(e) = result {
        return fail(&staged, &mut dirs, e);
    }

    // Step 3: register (not yet committed).
    let states = vec![0u8; files.len()];
    let install = store::Install {
        time,
        tid: time,
        color: store::transaction_color(),
        file_states: states,
    };
    let blob = match store::stored_header(sig_blob, hdr_blob, &install) {
        Ok(b) => b,
        Err(e) => return fail(&staged, &mut dirs, e),
    };
    let keys = match index::index_keys(&blob) {
        Ok(k) => k,
        Err(e) => return fail(&staged, &mut dirs, format!("stored header: {e}")),
    };
    let mut register = match Register::open(root, db) {
        Ok(r) => r,
        Err(e) => return fail(&staged, &mut dirs, e),
    };
    let hnum = match register.replace(db, replace, &blob, &keys) {
        Ok(h) => h,
        Err(e) => {
            drop(register);
            return fail(&staged, &mut dirs, e);
        }
    };

    // Step 4: commit. A rename that fails now (the container changed a place since it was
    // checked) leaves no temporary name behind, and says what is in place already.
    for (i, s) in staged.iter().enumerate() {
        let p = &s.place;
        let renamed = match s.fate {
            Fate::Create => rename_in(&*p.dir, &s.tmp, &p.name, &p.path),
            Fate::AltName => {
                let alt = format!("{}.rpmnew", p.name);
                let r = rename_in(&*p.dir, &s.tmp, &alt, &p.path);
                warnings.push(format!("warning: {} created as {}.rpmnew", p.path, p.path));
                r
            }
            Fate::Backup(ext) => {
                let saved = format!("{}{ext}", p.name);
                let r = rename_in(&*p.dir, &p.name, &saved, &p.path)
                    .and_then(|()| rename_in(&*p.dir, &s.tmp, &p.name, &p.path));
                warnings.push(format!("warning: {} saved as {}{ext}", p.path, p.path));
                r
            }
            Fate::Skip => Ok(()),
        };
        if let Err(e) = renamed {
            for rest in &staged[i..] {
                let _ = rustix::fs::unlinkat(&*rest.place.dir, rest.tmp.as_str(), AtFlags::empty());
            }
            return Err(format!(
                "{e} (the commit had begun: the package's files before it are in place, the rest are not)"
            ));
        }
    }
    if let Some(old) = old {
        let keep: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let owned = db.owned_by_others(old.instance);
        let gone: Vec<&FileEntry> = old
            .more()
            .entries
            .iter()
            .filter(|f| !keep.contains(f.path.as_str()) && !owned.contains(f.path.as_str()))
            .collect();
        let algo = old.more().digest_algo;
        super::erase::remove_files(&mut dirs, &gone, algo, &mut warnings);
    }
    register
        .commit()
        .map_err(|e| format!("the files are in place but the database commit failed: {e}"))?;
    Ok(Applied {
        instance: hnum,
        warnings,
        skipped_scriptlets: super::apply::scriptlets(&raw, true),
    })
}
