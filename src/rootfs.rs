//! Paths inside a container's root, resolved by the kernel inside that root.
//!
//! A container's root is `/proc/<pid>/root`. We open it once as a directory descriptor and
//! resolve every path with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: an absolute
//! symlink in the container (`/var/lib/rpm -> /usr/lib/sysimage/rpm`) resolves to the
//! container's file, `..` stops at the container's root, and `/proc/self/...`-style magic
//! links are refused.
//!
//! Invariant: never build a host path by concatenating `/proc/<pid>/root` and a container
//! path; and never serve a file that lives on procfs or sysfs (inside them `/proc/self` is the
//! sidecar, whose memory may hold credentials).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// A container's root directory, held open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `/proc/<pid>/root`. Errors with EACCES/EPERM when we may not look into it.
    pub fn of_pid(pid: u32) -> io::Result<Root> {
        let fd = rustix::fs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// Opens `path` (taken relative to the container's `/`) for reading.
    pub fn open(&self, path: &str) -> io::Result<File> {
        self.open_with(path, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY)
    }

    /// Opens `path` with `flags`, resolved inside the root, refusing procfs and sysfs.
    pub fn open_with(&self, path: &str, flags: OFlags) -> io::Result<File> {
        if path.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path holds a NUL byte",
            ));
        }
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let fd = rustix::fs::openat2(
            &self.fd,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?;
        let magic = crate::sys::fs_magic(&fd)?;
        if magic == crate::sys::PROC_SUPER_MAGIC || magic == crate::sys::SYSFS_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing a file on procfs or sysfs",
            ));
        }
        Ok(File::from(fd))
    }

    /// `open_with` for a path given as bytes (names on Linux need not be UTF-8: `caf\xe9.txt`):
    /// resolved inside the root the same way, refusing procfs and sysfs.
    pub fn open_bytes(&self, path: &[u8], flags: OFlags) -> io::Result<File> {
        if path.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path holds a NUL byte",
            ));
        }
        let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
        let rel: &[u8] = if start == path.len() {
            b"."
        } else {
            &path[start..]
        };
        let fd = rustix::fs::openat2(
            &self.fd,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?;
        let magic = crate::sys::fs_magic(&fd)?;
        if magic == crate::sys::PROC_SUPER_MAGIC || magic == crate::sys::SYSFS_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing a file on procfs or sysfs",
            ));
        }
        Ok(File::from(fd))
    }

    /// Reads a small text file of the container (`/etc/passwd`, `/etc/hostname`), at most
    /// `limit` bytes.
    pub fn read_to_string(&self, path: &str, limit: u64) -> io::Result<String> {
        use std::io::Read;
        let mut s = Vec::new();
        self.open(path)?.take(limit).read_to_end(&mut s)?;
        Ok(String::from_utf8_lossy(&s).into_owned())
    }

    /// The root's descriptor, for `fchdir` before `chroot` and for `*at` calls.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}
