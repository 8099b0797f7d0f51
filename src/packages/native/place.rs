//! Where the native path writes: a file's parent directory resolved inside the container's
//! root only (`Root::resolve`, `openat2` with `RESOLVE_IN_ROOT`, in a process that has also
//! chrooted into that root), and the name in it. Every change is made relative to that
//! directory handle with the `*at` calls and never follows a final symlink: a rename
//! replaces a symlink the container planted, it does not write through it.
//!
//! Also what both install and erase need: the digest of a file on disk (`packages::digest`),
//! read without opening a FIFO or a device.
//!
//! Invariant: no path here is opened from the server's root; the process is chrooted into
//! the container's, and each lookup is confined to it a second time by `RESOLVE_IN_ROOT`.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::packages::digest::Hasher;
use crate::rootfs::Root;

/// A file's place: its parent directory (an `O_PATH` handle) and its name there.
#[derive(Debug)]
pub struct Place {
    pub dir: std::rc::Rc<OwnedFd>,
    pub name: String,
    /// The full path, for messages.
    pub path: String,
}

/// Splits `/a/b/c` into `("/a/b", "c")`; refuses what is not an absolute, normal path (a
/// `..` or `.` component, an empty one, a NUL).
///
/// # Errors
/// A message naming the path.
pub fn split(path: &str) -> Result<(&str, &str), String> {
    let bad = || format!("{path}: not a normal absolute path (refused)");
    if !path.starts_with('/') || path.contains('\0') || path.len() > 4096 {
        return Err(bad());
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    let at = trimmed.rfind('/').unwrap_or(0);
    Ok((
        if at == 0 { "/" } else { &trimmed[..at] },
        &trimmed[at + 1..],
    ))
}

/// Directory handles, cached by path, created when missing (0755 root, as rpm's
/// `fsmMkdirs` makes a parent no package names); the directories made are remembered, in
/// order, so that a failure can remove them again.
pub struct Dirs<'r> {
    root: &'r Root,
    cache: std::collections::HashMap<String, std::rc::Rc<OwnedFd>>,
    pub created: Vec<String>,
}

impl<'r> Dirs<'r> {
    pub fn new(root: &'r Root) -> Self {
        Dirs {
            root,
            cache: Default::default(),
            created: Vec::new(),
        }
    }

    /// The handle of directory `dir` (absolute), made (with its missing parents) when
    /// `create`, with `mode`/owner applied by the caller to the ones it names.
    ///
    /// # Errors
    /// The failing lookup or `mkdirat`, naming the directory.
    pub fn get(&mut self, dir: &str, create: bool) -> Result<std::rc::Rc<OwnedFd>, String> {
        if let Some(d) = self.cache.get(dir) {
            return Ok(d.clone());
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = match self.root.resolve(dir.as_bytes(), flags) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create && dir != "/" => {
                let (parent, name) = split(dir)?;
                let p = self.get(parent, true)?;
                match rustix::fs::mkdirat(&*p, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => self.created.push(dir.to_string()),
                    Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(format!("cannot create directory {dir}: {e}")),
                }
                self.root
                    .resolve(dir.as_bytes(), flags)
                    .map_err(|e| format!("cannot open directory {dir}: {e}"))?
            }
            Err(e) => return Err(format!("cannot open directory {dir}: {e}")),
        };
        let fd = std::rc::Rc::new(fd);
        self.cache.insert(dir.to_string(), fd.clone());
        Ok(fd)
    }

    /// The place of `path`, its parent made when `create`.
    ///
    /// # Errors
    /// As [`split`] and [`Dirs::get`].
    pub fn place(&mut self, path: &str, create: bool) -> Result<Place, String> {
        let (dir, name) = split(path)?;
        Ok(Place {
            dir: self.get(dir, create)?,
            name: name.to_string(),
            path: path.to_string(),
        })
    }

    /// Removes the directories this made, deepest first (only when empty again).
    pub fn remove_created(&mut self) {
        for dir in self.created.drain(..).rev() {
            if let Ok((parent, name)) = split(&dir) {
                if let Ok(p) = self.root.resolve(
                    parent.as_bytes(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                ) {
                    let _ = rustix::fs::unlinkat(&p, name, AtFlags::REMOVEDIR);
                }
            }
        }
    }
}

/// What is at a place now, without following a final symlink.
pub fn lstat(p: &Place) -> Option<rustix::fs::Stat> {
    rustix::fs::statat(&*p.dir, p.name.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()
}

/// The digest of the regular file at `p` in `algo`; `None` when it is not a regular file
/// (a FIFO or a device is never opened) or cannot be read.
pub fn disk_digest(p: &Place, algo: u32) -> Option<String> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let st = lstat(p)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let fd = rustix::fs::openat(&*p.dir, p.name.as_str(), flags, Mode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    let mut h = Hasher::new(algo)?;
    let mut f = std::fs::File::from(fd);
    let size = usize::try_from(st.st_size).unwrap_or(0);
    let mut buf = vec![0u8; size.saturating_add(1).clamp(512, 64 << 10)];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(h.hex())
}

/// Renames `from` to `to` in the same directory.
///
/// # Errors
/// The errno, naming both.
pub fn rename_in(dir: &impl AsFd, from: &str, to: &str, path: &str) -> Result<(), String> {
    rustix::fs::renameat(dir, from, dir, to).map_err(|e| format!("cannot rename into {path}: {e}"))
}
