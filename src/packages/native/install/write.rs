//! Step 2 of an install, one file at a time: what becomes of it (rpm's `%config` rules),
//! its owner (rpm's lookup in the container's passwd and group), and the staged entry
//! itself: a regular file (size and digest checked against the header), a symlink, a FIFO,
//! a directory, a hardlink to a staged member.
//!
//! Invariant: every entry is created under its temporary name with `O_EXCL`/`*at` calls
//! relative to its directory's handle, never through a final symlink.

use std::io::{Read, Write};

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

use super::{Fate, Staged, FILE_CONFIG, FILE_NOREPLACE, S_IFLNK, S_IFMT, S_IFREG};
use crate::packages::digest::Hasher;
use crate::packages::ids::Ids;
use crate::packages::native::place::{disk_digest, lstat, Dirs, Place};
use crate::rpmdb::FileEntry;

/// rpm's `rpmfiDecideFate` for a file about to be written at `place`.
pub(super) fn decide(place: &Place, new: &FileEntry, old: Option<&FileEntry>, algo: u32) -> Fate {
    if new.flags & FILE_CONFIG == 0 || new.mode & S_IFMT != S_IFREG {
        return Fate::Create;
    }
    let Some(st) = lstat(place) else {
        return Fate::Create;
    };
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Fate::Create;
    }
    let Some(disk) = disk_digest(place, algo) else {
        return Fate::Create;
    };
    if disk == new.digest {
        return Fate::Create;
    }
    match old {
        Some(o) if o.digest == disk => Fate::Create, // unmodified: replaced
        Some(o) if o.digest == new.digest => Fate::Skip, // modified, nothing new to give
        _ if new.flags & FILE_NOREPLACE != 0 => Fate::AltName,
        Some(_) => Fate::Backup(".rpmsave"),
        None => Fate::Backup(".rpmorig"),
    }
}

/// Owner of a file: rpm's lookup, an unknown name being root (with rpm's warning), and
/// the setuid/setgid bit it would have given that name dropped.
pub(super) fn owner(f: &FileEntry, ids: &Ids, warnings: &mut Vec<String>) -> (u32, u32, u32) {
    let mut mode = u32::from(f.mode) & 0o7777;
    let uid = ids.uid(&f.user).unwrap_or_else(|| {
        warnings.push(format!(
            "warning: user {} does not exist - using root",
            f.user
        ));
        mode &= !0o4000;
        0
    });
    let gid = ids.gid(&f.group).unwrap_or_else(|| {
        warnings.push(format!(
            "warning: group {} does not exist - using root",
            f.group
        ));
        mode &= !0o2000;
        0
    });
    (uid, gid, mode)
}

pub(super) fn make_dir(
    dirs: &mut Dirs,
    f: &FileEntry,
    ids: &Ids,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let before = dirs.created.len();
    let fd = dirs.get(f.path.trim_end_matches('/'), true)?;
    // Only a directory this made gets the header's owner and mode; an existing one is the
    // container's and stays as it is.
    if dirs.created.len() > before
        && dirs
            .created
            .last()
            .is_some_and(|d| d == f.path.trim_end_matches('/'))
    {
        let (uid, gid, mode) = owner(f, ids, warnings);
        let at = |e| format!("cannot set the attributes of {}: {e}", f.path);
        rustix::fs::chownat(
            &*fd,
            "",
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::EMPTY_PATH,
        )
        .map_err(at)?;
        let dir = rustix::fs::openat(
            &*fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(at)?;
        rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)).map_err(at)?;
    }
    Ok(())
}

pub(super) fn write_regular(
    place: &Place,
    tmp: &str,
    f: &FileEntry,
    content: &mut dyn Read,
    algo: u32,
    ids: &Ids,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&*place.dir, tmp, flags, Mode::from_raw_mode(0o600))
        .map_err(|e| format!("cannot create {}: {e}", f.path))?;
    let mut out = std::fs::File::from(fd);
    let mut hash = Hasher::new(algo);
    // Sized to the file (most are small): a zeroed 256 KiB per file was a third of a
    // 1000-file install.
    let mut buf = vec![0u8; (f.size as usize).saturating_add(1).clamp(512, 256 << 10)];
    let mut total = 0u64;
    loop {
        let n = content
            .read(&mut buf)
            .map_err(|e| format!("payload: {}: {e}", f.path))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > f.size {
            break;
        }
        if let Some(h) = &mut hash {
            h.update(&buf[..n]);
        }
        out.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", f.path))?;
    }
    if total != f.size {
        return Err(format!(
            "payload: {}: {total}{} bytes where the header says {} (the archive is damaged or lies)",
            f.path,
            if total > f.size { "+" } else { "" },
            f.size
        ));
    }
    if let (Some(h), false) = (hash, f.digest.is_empty()) {
        let got = h.hex();
        if got != f.digest {
            return Err(format!(
                "payload: {}: digest mismatch (header {}, content {got})",
                f.path, f.digest
            ));
        }
    }
    let (uid, gid, mode) = owner(f, ids, warnings);
    let at = |e| format!("cannot set the attributes of {}: {e}", f.path);
    rustix::fs::fchown(
        &out,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(at)?;
    rustix::fs::fchmod(&out, Mode::from_raw_mode(mode)).map_err(at)?;
    if !f.caps.is_empty() {
        if let Some(c) = crate::packages::caps::from_text(&f.caps) {
            rustix::fs::fsetxattr(
                &out,
                "security.capability",
                &crate::packages::caps::to_xattr(&c),
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(|e| format!("cannot set the capabilities of {}: {e}", f.path))?;
        }
    }
    let t = Timespec {
        tv_sec: i64::from(f.mtime),
        tv_nsec: 0,
    };
    rustix::fs::futimens(
        &out,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
    )
    .map_err(at)?;
    Ok(())
}

pub(super) fn write_symlink(
    place: &Place,
    tmp: &str,
    f: &FileEntry,
    ids: &Ids,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    rustix::fs::symlinkat(f.linkto.as_str(), &*place.dir, tmp)
        .map_err(|e| format!("cannot create {}: {e}", f.path))?;
    set_meta_at(place, tmp, f, ids, warnings)
}

/// Owner and mtime of a staged entry that cannot be opened (symlink, FIFO), by name.
pub(super) fn set_meta_at(
    place: &Place,
    tmp: &str,
    f: &FileEntry,
    ids: &Ids,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let (uid, gid, mode) = owner(f, ids, warnings);
    let at = |e| format!("cannot set the attributes of {}: {e}", f.path);
    rustix::fs::chownat(
        &*place.dir,
        tmp,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(at)?;
    if f.mode & S_IFMT != S_IFLNK {
        rustix::fs::chmodat(
            &*place.dir,
            tmp,
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )
        .map_err(at)?;
    }
    let t = Timespec {
        tv_sec: i64::from(f.mtime),
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        &*place.dir,
        tmp,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(at)?;
    Ok(())
}

pub(super) fn link(from: &Staged, to: &Staged) -> Result<(), String> {
    rustix::fs::linkat(
        &*from.place.dir,
        from.tmp.as_str(),
        &*to.place.dir,
        to.tmp.as_str(),
        AtFlags::empty(),
    )
    .map_err(|e| format!("cannot link {} to {}: {e}", to.place.path, from.place.path))
}
