//! Files inside a container: read a file or list a directory, write a file atomically, remove
//! one. Everything is resolved inside the container's root by the kernel (`rootfs::Root`,
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`), and the work is done with `*at` calls
//! on the opened parent directory, so no path is ever resolved twice or outside the root.
//!
//! Invariants: nothing on procfs or sysfs is read or written (inside them `/proc/self` is the
//! sidecar); only regular files are read or replaced (a FIFO or device is never opened for
//! reading: it could block or have side effects); a write never leaves half a file behind,
//! and a failed write leaves nothing behind.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;

use crate::rootfs::Root;

/// Why a file operation failed, with the path it failed on.
#[derive(Debug)]
pub enum Error {
    NotFound(String),
    /// procfs, sysfs, a magic link: never served.
    Refused(String, &'static str),
    /// NUL bytes, too long, a symlink loop, no file name.
    BadPath(String, String),
    /// A FIFO, socket or device.
    NotRegular(String, &'static str),
    /// The upload was larger than the limit (or the client went away): nothing was written.
    Upload(String, io::Error),
    Io(String, io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound(p) => write!(f, "{p}: no such file or directory in the container"),
            Error::Refused(p, why) => write!(f, "{p}: refused: {why}"),
            Error::BadPath(p, why) => write!(f, "{}: {why}", shorten(p)),
            Error::NotRegular(p, kind) => write!(
                f,
                "{p} is a {kind}: only regular files and directories are served"
            ),
            Error::Upload(p, e) => write!(f, "{p}: upload failed, nothing was written: {e}"),
            Error::Io(p, e) => write!(f, "{p}: {e}"),
        }
    }
}

fn shorten(p: &str) -> String {
    if p.len() > 120 {
        format!("{}… ({} bytes)", &p[..p.floor_char_boundary(100)], p.len())
    } else {
        p.to_string()
    }
}

fn classify(path: &str, e: io::Error) -> Error {
    let p = path.to_string();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::NotFound(p),
        Some(libc::ELOOP) => Error::BadPath(
            p,
            "too many symbolic links (a loop), or a /proc magic link".into(),
        ),
        Some(libc::EXDEV) => Error::Refused(p, "the path leaves the container's root"),
        Some(libc::ENAMETOOLONG) => Error::BadPath(p, "the path is too long".into()),
        _ if e.kind() == io::ErrorKind::InvalidInput => Error::BadPath(p, e.to_string()),
        _ if e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() => {
            Error::Refused(
                p,
                "procfs and sysfs are not served (inside them /proc/self is the sidecar)",
            )
        }
        _ => Error::Io(p, e),
    }
}

/// Refuses a path any prefix of which lies on procfs or sysfs, whether or not the rest of it
/// exists there (`/proc/self` does not exist for a process outside the container's PID
/// namespace; the answer must not depend on what happens to exist there). Walks from the
/// top, so a symlink into /proc is caught where it lands.
fn refuse_special(root: &Root, path: &str) -> Result<(), Error> {
    let mut prefix = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        prefix.push('/');
        prefix.push_str(comp);
        match root.open_with(&prefix, OFlags::PATH | OFlags::CLOEXEC) {
            // `Root` refuses procfs and sysfs with an error of its own (no errno).
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() => {
                return Err(Error::Refused(
                    path.into(),
                    "procfs and sysfs are not served (inside them /proc/self is the sidecar)",
                ));
            }
            Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "file",
        FileType::Directory => "dir",
        FileType::Symlink => "symlink",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "char",
        FileType::BlockDevice => "block",
        FileType::Unknown => "unknown",
    }
}

/// One directory entry as the listing shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: String,
    pub target: Option<String>,
}

/// What a read found: a regular file to stream, or a directory's entries.
pub enum Found {
    File(File, u64),
    Dir(Listing),
}

fn check_path(path: &str) -> Result<(), Error> {
    if path.as_bytes().contains(&0) {
        return Err(Error::BadPath(
            path.into(),
            "the path holds a NUL byte".into(),
        ));
    }
    if path.len() > 4096 {
        return Err(Error::BadPath(
            path.into(),
            "the path is longer than PATH_MAX (4096)".into(),
        ));
    }
    Ok(())
}

/// Reads `path`: a regular file (opened non-blocking, checked to be the file that was
/// looked at) or a directory listing.
pub fn read(root: &Root, path: &str) -> Result<Found, Error> {
    check_path(path)?;
    refuse_special(root, path)?;
    let probe = root
        .open_with(path, OFlags::PATH | OFlags::CLOEXEC)
        .map_err(|e| classify(path, e))?;
    let st = rustix::fs::fstat(&probe).map_err(|e| classify(path, e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            // That very inode, reopened for reading: nothing can be swapped in between.
            let f =
                crate::rootfs::open_regular(probe.into(), path).map_err(|e| classify(path, e))?;
            Ok(Found::File(f, st.st_size as u64))
        }
        FileType::Directory => {
            let dir = root
                .open_with(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC)
                .map_err(|e| classify(path, e))?;
            Ok(Found::Dir(Listing {
                dir: dir.into(),
                path: path.to_string(),
            }))
        }
        other => Err(Error::NotRegular(path.into(), kind_name(other))),
    }
}

/// Directories up to this many entries are listed sorted by name; larger ones are
/// streamed in the order the file system gives (the first `SORTED_UP_TO` sorted), so that
/// memory stays bounded whatever the size.
pub const SORTED_UP_TO: usize = 10_000;

/// A directory to list, held open; written out as a JSON array, entry by entry.
pub struct Listing {
    dir: OwnedFd,
    path: String,
}

impl Listing {
    /// Writes `[{entry}, …]` to `out` as it reads the directory: memory is bounded by
    /// `SORTED_UP_TO` entries, not by the directory's size. An error half-way is returned
    /// (the caller must then not end the reply as if it were whole).
    pub fn write_json(&self, out: &mut dyn Write) -> io::Result<()> {
        let dir = self.dir.as_fd();
        let entries = rustix::fs::Dir::read_from(dir)?;
        let mut first = vec![];
        let mut rest = entries.filter_map(|e| match e {
            Ok(e) => entry(dir, &e).map(Ok),
            Err(e) => Some(Err(io::Error::from(e))),
        });
        for e in rest.by_ref() {
            first.push(e?);
            if first.len() == SORTED_UP_TO {
                break;
            }
        }
        first.sort_by(|a, b| a.name.cmp(&b.name));
        out.write_all(b"[")?;
        let mut n = 0usize;
        let mut put = |e: &Entry, out: &mut dyn Write| -> io::Result<()> {
            if n > 0 {
                out.write_all(b",")?;
            }
            n += 1;
            serde_json::to_writer(&mut *out, e).map_err(io::Error::other)
        };
        for e in &first {
            put(e, out)?;
        }
        drop(first);
        for e in rest {
            put(&e?, out)?;
        }
        out.write_all(b"]\n")
    }

    /// The directory's path in the container, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// One directory entry, or `None` for `.`, `..` and entries that vanished meanwhile.
fn entry(dir: std::os::fd::BorrowedFd<'_>, entry: &rustix::fs::DirEntry) -> Option<Entry> {
    let name = entry.file_name().to_string_lossy().into_owned();
    if name == "." || name == ".." {
        return None;
    }
    let st = rustix::fs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let target = (kind == FileType::Symlink)
        .then(|| rustix::fs::readlinkat(dir, entry.file_name(), Vec::new()).ok())
        .flatten()
        .map(|t| t.to_string_lossy().into_owned());
    Some(Entry {
        name,
        kind: kind_name(kind),
        mode: format!("{:04o}", st.st_mode & 0o7777),
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: crate::procfs::format_utc(st.st_mtime) + "Z",
        target,
    })
}

/// How a file is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Create missing parent directories (mode 0755, root).
    pub parents: bool,
}

/// What a write did.
#[derive(Debug, Serialize)]
pub struct Written {
    pub path: String,
    pub size: u64,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// True when the file is a bind mount (such as /etc/hosts): it could not be replaced, so
    /// it was overwritten in place, and a reader may have seen it half written.
    pub in_place: bool,
}

/// Splits `path` into its parent directory and file name; refuses names that are not files.
fn split(path: &str) -> Result<(&str, &str), Error> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::BadPath(
            path.into(),
            "the path does not name a file".into(),
        ));
    }
    Ok((if parent.is_empty() { "/" } else { parent }, name))
}

fn open_parent(root: &Root, parent: &str, create: bool) -> Result<OwnedFd, Error> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match root.open_with(parent, flags) {
        Ok(f) => Ok(f.into()),
        Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
            // Create each missing component under the last one that exists, inside the root.
            let mut at: OwnedFd = root
                .open_with("/", flags)
                .map_err(|e| classify(parent, e))?
                .into();
            for comp in parent.split('/').filter(|c| !c.is_empty() && *c != ".") {
                if comp == ".." {
                    return Err(Error::BadPath(
                        parent.into(),
                        "'..' in a path whose parents are created".into(),
                    ));
                }
                match rustix::fs::mkdirat(&at, comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(classify(parent, e.into())),
                }
                let next = rustix::fs::openat2(
                    &at,
                    comp,
                    flags,
                    Mode::empty(),
                    rustix::fs::ResolveFlags::IN_ROOT
                        | rustix::fs::ResolveFlags::NO_MAGICLINKS
                        | rustix::fs::ResolveFlags::NO_SYMLINKS,
                )
                .map_err(|e| classify(parent, e.into()))?;
                at = next;
            }
            Ok(at)
        }
        Err(e) => Err(classify(parent, e)),
    }
}

/// Writes `body` (at most `limit` bytes) to `path`: into a temporary file beside it, owner and
/// mode set, synced, then renamed over the target. A bind-mounted target (rename gives
/// EBUSY) is overwritten in place instead, and the reply says so.
pub fn write(
    root: &Root,
    path: &str,
    body: &mut dyn Read,
    limit: u64,
    opts: &WriteOptions,
) -> Result<Written, Error> {
    check_path(path)?;
    let (parent, name) = split(path)?;
    let dir = open_parent(root, parent, opts.parents)?;
    if crate::sys::fs_magic(&dir)
        .is_ok_and(|m| m == crate::sys::PROC_SUPER_MAGIC || m == crate::sys::SYSFS_MAGIC)
    {
        return Err(Error::Refused(
            path.into(),
            "procfs and sysfs are not written",
        ));
    }
    // The target, if it exists, must be a regular file (never write through a FIFO or device).
    match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::Symlink => {}
            other => return Err(Error::NotRegular(path.into(), kind_name(other))),
        },
        Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(classify(path, e.into())),
    }
    let mut rnd = [0u8; 6];
    crate::sys::random_bytes(&mut rnd).map_err(|e| Error::Io(path.into(), e))?;
    let tmp = format!(".{name}.sidecar-{}", crate::auth::hash::hex(&rnd));
    let tmp = if tmp.len() > 255 {
        format!(".sidecar-{}", crate::auth::hash::hex(&rnd))
    } else {
        tmp
    };
    let fd = rustix::fs::openat(
        &dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| classify(path, e.into()))?;
    let remove_tmp = || {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
    };
    let result = (|| {
        let mut file = File::from(fd);
        let size =
            copy_limited(body, &mut file, limit).map_err(|e| Error::Upload(path.into(), e))?;
        let io = |e: rustix::io::Errno| Error::Io(path.into(), e.into());
        rustix::fs::fchown(
            &file,
            Some(rustix::fs::Uid::from_raw(opts.uid)),
            Some(rustix::fs::Gid::from_raw(opts.gid)),
        )
        .map_err(io)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(opts.mode & 0o7777)).map_err(io)?;
        rustix::fs::fsync(&file).map_err(io)?;
        Ok((file, size))
    })();
    let size = match result {
        Ok((_, size)) => size,
        Err(e) => {
            remove_tmp();
            return Err(e);
        }
    };
    let in_place = match rustix::fs::renameat(&dir, tmp.as_str(), &dir, name) {
        Ok(()) => false,
        Err(rustix::io::Errno::BUSY) => {
            let done = overwrite_in_place(&dir, &tmp, name, opts);
            remove_tmp();
            done.map_err(|e| Error::Io(path.into(), e))?;
            true
        }
        Err(e) => {
            remove_tmp();
            return Err(classify(path, e.into()));
        }
    };
    Ok(Written {
        path: path.into(),
        size,
        mode: format!("{:04o}", opts.mode & 0o7777),
        uid: opts.uid,
        gid: opts.gid,
        in_place,
    })
}

fn overwrite_in_place(dir: &OwnedFd, tmp: &str, name: &str, opts: &WriteOptions) -> io::Result<()> {
    let mut src = File::from(rustix::fs::openat(
        dir,
        tmp,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?);
    let flags =
        OFlags::WRONLY | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mut target = File::from(rustix::fs::openat(dir, name, flags, Mode::empty())?);
    io::copy(&mut src, &mut target)?;
    rustix::fs::fchmod(&target, Mode::from_raw_mode(opts.mode & 0o7777))?;
    rustix::fs::fsync(&target)?;
    Ok(())
}

fn copy_limited(body: &mut dyn Read, out: &mut File, limit: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if total > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than the upload limit of {limit} bytes"),
            ));
        }
        out.write_all(&buf[..n])?;
    }
}

/// Removes a file, a symlink or an empty directory.
pub fn remove(root: &Root, path: &str) -> Result<(), Error> {
    check_path(path)?;
    refuse_special(root, path)?;
    let (parent, name) = split(path)?;
    let dir = open_parent(root, parent, false)?;
    if crate::sys::fs_magic(&dir)
        .is_ok_and(|m| m == crate::sys::PROC_SUPER_MAGIC || m == crate::sys::SYSFS_MAGIC)
    {
        return Err(Error::Refused(
            path.into(),
            "procfs and sysfs are not written",
        ));
    }
    match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::ISDIR) => rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)
            .map_err(|e| classify(path, e.into())),
        Err(e) => Err(classify(path, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_paths() {
        assert_eq!(split("/etc/hosts").unwrap(), ("/etc", "hosts"));
        assert_eq!(split("/top").unwrap(), ("/", "top"));
        assert_eq!(split("rel/x/").unwrap(), ("rel", "x"));
        assert!(split("/").is_err());
        assert!(split("/etc/..").is_err());
        assert!(split("/etc/.").is_err());
    }

    #[test]
    fn path_checks() {
        assert!(check_path("/a\0b").is_err());
        assert!(check_path(&"a/".repeat(3000)).is_err());
        assert!(check_path("/etc/passwd").is_ok());
    }
}
