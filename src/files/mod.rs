//! Files inside a container: read a file or list a directory, write a file atomically, remove
//! one. Everything is resolved inside the container's root by the kernel (`rootfs::Root`,
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`), and the work is done with `*at` calls
//! on the opened parent directory, so no path is ever resolved twice or outside the root.
//!
//! Paths are bytes (a name on Linux need not be UTF-8); they become text only in messages and,
//! escaped as `json_name` says, in listings.
//!
//! Invariants: nothing on procfs or sysfs is read or written (inside them `/proc/self` is the
//! sidecar); only regular files are read or replaced (a FIFO or device is never opened for
//! reading: it could block or have side effects); a write never leaves half a file behind,
//! and a failed or unfinished write (an `Upload` dropped before `commit`) leaves nothing behind.

pub mod copy;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn classify(path: &[u8], e: io::Error) -> Error {
    let p = lossy(path);
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
fn refuse_special(root: &Root, path: &[u8]) -> Result<(), Error> {
    let mut prefix = Vec::new();
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        prefix.push(b'/');
        prefix.extend_from_slice(comp);
        match root.open_bytes(&prefix, OFlags::PATH | OFlags::CLOEXEC) {
            // `Root` refuses procfs and sysfs with an error of its own (no errno).
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() => {
                return Err(Error::Refused(
                    lossy(path),
                    "procfs and sysfs are not served (inside them /proc/self is the sidecar)",
                ));
            }
            Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// How a name (a file name, a symlink's target, a unix socket's path: bytes on Linux) goes
/// into JSON, which carries only Unicode text. A name that is UTF-8 is given as it is (JSON
/// escapes a newline or a control character exactly). One that is not is given for people
/// with U+FFFD for each invalid sequence, and exactly as its bytes percent-encoded (every byte
/// outside `A-Z a-z 0-9 - . _ ~ /` as `%HH`): the form the files routes take in their path.
pub fn json_name(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (lossy(bytes), Some(percent_encode(bytes))),
    }
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~ /`.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// One directory entry as the listing shows it. `name_bytes` and `target_bytes` appear only
/// when the name or target is not UTF-8 (see `json_name`).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_bytes: Option<String>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: String,
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_bytes: Option<String>,
}

/// What a read found: a regular file to stream (and its size), or a directory's entries.
pub enum Found {
    File(File, u64),
    Dir(Listing),
}

fn check_path(path: &[u8]) -> Result<(), Error> {
    if path.contains(&0) {
        return Err(Error::BadPath(
            lossy(path),
            "the path holds a NUL byte".into(),
        ));
    }
    if path.len() > 4096 {
        return Err(Error::BadPath(
            lossy(path),
            "the path is longer than PATH_MAX (4096)".into(),
        ));
    }
    Ok(())
}

/// What is at `path` in the container (symlinks followed inside the root), without opening
/// it for reading: `None` when nothing is there.
pub fn stat(root: &Root, path: &[u8]) -> Result<Option<rustix::fs::Stat>, Error> {
    check_path(path)?;
    refuse_special(root, path)?;
    match root.open_bytes(path, OFlags::PATH | OFlags::CLOEXEC) {
        Ok(f) => Ok(Some(
            rustix::fs::fstat(&f).map_err(|e| classify(path, e.into()))?,
        )),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT)) => Ok(None),
        Err(e) => Err(classify(path, e)),
    }
}

/// Reads `path`: a regular file (opened non-blocking, checked to be the file that was
/// looked at) or a directory listing.
pub fn read(root: &Root, path: &[u8]) -> Result<Found, Error> {
    check_path(path)?;
    refuse_special(root, path)?;
    let probe = root
        .open_bytes(path, OFlags::PATH | OFlags::CLOEXEC)
        .map_err(|e| classify(path, e))?;
    let st = rustix::fs::fstat(&probe).map_err(|e| classify(path, e.into()))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            // That very inode, reopened for reading: nothing can be swapped in between.
            let f = crate::rootfs::open_regular(probe.into(), &lossy(path))
                .map_err(|e| classify(path, e))?;
            Ok(Found::File(f, st.st_size as u64))
        }
        FileType::Directory => {
            let dir = root
                .open_bytes(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC)
                .map_err(|e| classify(path, e))?;
            Ok(Found::Dir(Listing {
                dir: dir.into(),
                path: lossy(path),
            }))
        }
        other => Err(Error::NotRegular(lossy(path), kind_name(other))),
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

/// One directory entry, or `None` for `.`, `..` and entries that vanished meanwhile. Names
/// and targets are bytes; one that is not UTF-8 also comes as `name_bytes`/`target_bytes`.
fn entry(dir: BorrowedFd<'_>, entry: &rustix::fs::DirEntry) -> Option<Entry> {
    let raw = entry.file_name().to_bytes();
    if raw == b"." || raw == b".." {
        return None;
    }
    let st = rustix::fs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    let kind = FileType::from_raw_mode(st.st_mode);
    let (target, target_bytes) = match (kind == FileType::Symlink)
        .then(|| rustix::fs::readlinkat(dir, entry.file_name(), Vec::new()).ok())
        .flatten()
    {
        Some(t) => {
            let (text, bytes) = json_name(t.as_bytes());
            (Some(text), bytes)
        }
        None => (None, None),
    };
    let (name, name_bytes) = json_name(raw);
    Some(Entry {
        name,
        name_bytes,
        kind: kind_name(kind),
        mode: format!("{:04o}", st.st_mode & 0o7777),
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: crate::procfs::format_utc(st.st_mtime) + "Z",
        target,
        target_bytes,
    })
}

/// How a file is written.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The mode; `None` keeps the mode of the file being replaced, or gives a new file
    /// `new_mode`.
    pub mode: Option<u32>,
    /// The mode of a new file when `mode` is `None` (0644 unless the caller knows better).
    pub new_mode: u32,
    /// The owner; `None` keeps the owner of the file being replaced, or 0 for a new one.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Create missing parent directories (mode 0755, root), resolving each one inside the
    /// container's root as a read does (a symlinked `/var/run -> ../run` is followed).
    pub parents: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            mode: None,
            new_mode: 0o644,
            uid: None,
            gid: None,
            parents: false,
        }
    }
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

/// Splits `path` into its parent directory and file name; refuses names that are not files,
/// and a trailing `/` (it names a directory: a file is never written there).
fn split(path: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    if path.ends_with(b"/") {
        return Err(Error::BadPath(
            lossy(path),
            "the path ends in '/', so it names a directory, not a file".into(),
        ));
    }
    let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b""[..], path),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Error::BadPath(
            lossy(path),
            "the path does not name a file".into(),
        ));
    }
    Ok((if parent.is_empty() { b"/" } else { parent }, name))
}

/// Opens the directory `parent` inside the root (`O_PATH`). With `create`, each missing
/// component is made under the one before it, and every prefix is resolved again from the
/// container's root as a read resolves it: symlinks (absolute ones too) stay inside the root.
fn open_parent(root: &Root, parent: &[u8], create: bool) -> Result<OwnedFd, Error> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match root.open_bytes(parent, flags) {
        Ok(f) => Ok(f.into()),
        Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
            let mut at: OwnedFd = root
                .open_bytes(b"/", flags)
                .map_err(|e| classify(parent, e))?
                .into();
            let mut prefix = Vec::with_capacity(parent.len());
            for comp in parent.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
                prefix.push(b'/');
                prefix.extend_from_slice(comp);
                at = match root.open_bytes(&prefix, flags) {
                    Ok(f) => f.into(),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        match rustix::fs::mkdirat(&at, comp, Mode::from_raw_mode(0o755)) {
                            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                            Err(e) => return Err(classify(&prefix, e.into())),
                        }
                        root.open_bytes(&prefix, flags)
                            .map_err(|e| classify(&prefix, e))?
                            .into()
                    }
                    Err(e) => return Err(classify(&prefix, e)),
                };
            }
            Ok(at)
        }
        Err(e) => Err(classify(parent, e)),
    }
}

fn refuse_proc_dir(dir: &OwnedFd, path: &[u8]) -> Result<(), Error> {
    if crate::sys::fs_magic(dir)
        .is_ok_and(|m| m == crate::sys::PROC_SUPER_MAGIC || m == crate::sys::SYSFS_MAGIC)
    {
        return Err(Error::Refused(
            lossy(path),
            "procfs and sysfs are not written",
        ));
    }
    Ok(())
}

/// A file being written into a container: a temporary file beside the target, made by
/// `begin`, filled through `file`, put in place by `commit`. Dropped before `commit` (an
/// error, a stream that ended early), it removes the temporary file: the target is unchanged.
pub struct Upload {
    path: Vec<u8>,
    dir: OwnedFd,
    name: Vec<u8>,
    tmp: Vec<u8>,
    file: Option<File>,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Upload {
    /// Checks the path, opens (or with `parents` makes) its directory, settles mode and owner
    /// (`opts`, else those of the file being replaced) and creates the temporary file.
    pub fn begin(root: &Root, path: &[u8], opts: &WriteOptions) -> Result<Upload, Error> {
        check_path(path)?;
        let (parent, name) = split(path)?;
        let dir = open_parent(root, parent, opts.parents)?;
        refuse_proc_dir(&dir, path)?;
        // The target, if it exists, must be a regular file (never write through a FIFO or
        // device); a symlink there is replaced, not followed.
        let existing = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => Some(st),
                FileType::Symlink => None,
                other => return Err(Error::NotRegular(lossy(path), kind_name(other))),
            },
            Err(rustix::io::Errno::NOENT) => None,
            Err(e) => return Err(classify(path, e.into())),
        };
        let mode = opts
            .mode
            .or(existing.as_ref().map(|st| st.st_mode & 0o7777))
            .unwrap_or(opts.new_mode)
            & 0o7777;
        let uid = opts
            .uid
            .or(existing.as_ref().map(|st| st.st_uid))
            .unwrap_or(0);
        let gid = opts
            .gid
            .or(existing.as_ref().map(|st| st.st_gid))
            .unwrap_or(0);
        let mut rnd = [0u8; 6];
        crate::sys::random_bytes(&mut rnd).map_err(|e| Error::Io(lossy(path), e))?;
        let suffix = format!(".sidecar-{}", crate::auth::hash::hex(&rnd));
        let mut tmp = Vec::with_capacity(name.len() + 24);
        if name.len() + suffix.len() < 255 {
            tmp.push(b'.');
            tmp.extend_from_slice(name);
        }
        tmp.extend_from_slice(suffix.as_bytes());
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_slice(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| classify(path, e.into()))?;
        Ok(Upload {
            path: path.to_vec(),
            dir,
            name: name.to_vec(),
            tmp,
            file: Some(File::from(fd)),
            mode,
            uid,
            gid,
        })
    }

    /// The temporary file, to write the contents into.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("an upload's file until commit")
    }

    /// The directory and the temporary file's name: what to remove when the process must
    /// end before `commit` or `Drop` can run (a signal).
    pub fn temporary(&self) -> (BorrowedFd<'_>, &[u8]) {
        (self.dir.as_fd(), &self.tmp)
    }

    /// Sets owner and mode, syncs, and renames the temporary file over the target. A
    /// bind-mounted target (rename gives EBUSY) is overwritten in place instead.
    pub fn commit(mut self) -> Result<Written, Error> {
        let path = lossy(&self.path);
        let file = self.file.take().expect("an upload's file until commit");
        let io = |e: rustix::io::Errno| Error::Io(path.clone(), e.into());
        let size = rustix::fs::fstat(&file).map_err(io)?.st_size as u64;
        rustix::fs::fchown(
            &file,
            Some(rustix::fs::Uid::from_raw(self.uid)),
            Some(rustix::fs::Gid::from_raw(self.gid)),
        )
        .map_err(io)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(self.mode)).map_err(io)?;
        rustix::fs::fsync(&file).map_err(io)?;
        drop(file);
        let in_place = match rustix::fs::renameat(
            &self.dir,
            self.tmp.as_slice(),
            &self.dir,
            self.name.as_slice(),
        ) {
            Ok(()) => {
                self.tmp.clear(); // nothing left to remove
                false
            }
            Err(rustix::io::Errno::BUSY) => {
                overwrite_in_place(&self.dir, &self.tmp, &self.name, self.mode)
                    .map_err(|e| Error::Io(path.clone(), e))?;
                true
            }
            Err(e) => return Err(classify(&self.path, e.into())),
        };
        Ok(Written {
            path,
            size,
            mode: format!("{:04o}", self.mode),
            uid: self.uid,
            gid: self.gid,
            in_place,
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.tmp.is_empty() {
            let _ = rustix::fs::unlinkat(&self.dir, self.tmp.as_slice(), AtFlags::empty());
        }
    }
}

/// Writes `body` (at most `limit` bytes, to its end: a body that fails or ends early writes
/// nothing) to `path`: into a temporary file beside it, owner and mode set, synced, then
/// renamed over the target (see `Upload`).
pub fn write(
    root: &Root,
    path: &[u8],
    body: &mut dyn Read,
    limit: u64,
    opts: &WriteOptions,
) -> Result<Written, Error> {
    let mut up = Upload::begin(root, path, opts)?;
    copy_limited(body, up.file(), limit).map_err(|e| Error::Upload(lossy(path), e))?;
    up.commit()
}

fn overwrite_in_place(dir: &OwnedFd, tmp: &[u8], name: &[u8], mode: u32) -> io::Result<()> {
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
    rustix::fs::fchmod(&target, Mode::from_raw_mode(mode))?;
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
pub fn remove(root: &Root, path: &[u8]) -> Result<(), Error> {
    check_path(path)?;
    refuse_special(root, path)?;
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    let (parent, name) = split(trimmed)?;
    let dir = open_parent(root, parent, false)?;
    refuse_proc_dir(&dir, path)?;
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
        assert_eq!(split(b"/etc/hosts").unwrap(), (&b"/etc"[..], &b"hosts"[..]));
        assert_eq!(split(b"/top").unwrap(), (&b"/"[..], &b"top"[..]));
        assert_eq!(split(b"rel/x").unwrap(), (&b"rel"[..], &b"x"[..]));
        assert_eq!(split(b"/caf\xe9").unwrap(), (&b"/"[..], &b"caf\xe9"[..]));
        assert!(split(b"rel/x/").is_err(), "a trailing / names a directory");
        assert!(split(b"/").is_err());
        assert!(split(b"/etc/..").is_err());
        assert!(split(b"/etc/.").is_err());
    }

    #[test]
    fn path_checks() {
        assert!(check_path(b"/a\0b").is_err());
        assert!(check_path("a/".repeat(3000).as_bytes()).is_err());
        assert!(check_path(b"/etc/passwd").is_ok());
    }

    #[test]
    fn names_in_json() {
        assert_eq!(json_name(b"plain\n name"), ("plain\n name".into(), None));
        assert_eq!(
            json_name(b"caf\xe9 %.txt"),
            ("caf\u{FFFD} %.txt".into(), Some("caf%E9%20%25.txt".into()))
        );
        assert_eq!(percent_encode(b"/a-b_c.d~e/"), "/a-b_c.d~e/");
    }
}
