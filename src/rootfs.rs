//! Paths inside a container's root, resolved by the kernel inside that root.
//!
//! A container's root is `/proc/<pid>/root`. We open it once as a directory descriptor and
//! resolve every path with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: an absolute
//! symlink in the container (`/var/lib/rpm -> /usr/lib/sysimage/rpm`) resolves to the
//! container's file, `..` stops at the container's root, and `/proc/self/...`-style magic
//! links are refused.
//!
//! Files are opened for reading in two steps: `O_PATH` (which opens nothing: a FIFO cannot
//! block it, a device driver never sees it), `fstat`, and only for a regular file a real open
//! of that same inode through `/proc/self/fd/N`. A FIFO, device or socket that a container
//! planted where a file was expected (`/etc/hostname`, `/etc/passwd`, a database) is an
//! error that says what it is, never a blocked thread.
//!
//! Invariants: never build a host path by concatenating `/proc/<pid>/root` and a container
//! path; never open anything but a regular file for reading; and never serve a file that
//! lives on procfs or sysfs (inside them `/proc/self` is the sidecar, whose memory may hold
//! credentials).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// A container's root directory, held open.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// The process whose root this is (`of_pid`): its mount namespace is where a
    /// [`Root::read_only_view`] is made.
    pid: Option<u32>,
}

impl Root {
    /// Opens `/proc/<pid>/root`. Errors with EACCES/EPERM when we may not look into it.
    pub fn of_pid(pid: u32) -> io::Result<Root> {
        let fd = rustix::fs::open(
            format!("/proc/{pid}/root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, pid: Some(pid) })
    }

    /// Opens directory `dir` of this machine as a root (`sidecar rpms --root DIR`): paths
    /// are then resolved inside it exactly as inside a container's root.
    pub fn of_dir(dir: &std::path::Path) -> io::Result<Root> {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd, pid: None })
    }

    /// The same root as a detached, read-only copy of its mounts, every one `nodev`
    /// (`sys::read_only_view`): a device node found through it cannot be opened, so a
    /// regular file seen by `lstat` can be opened directly (`O_NONBLOCK`, so that a FIFO
    /// swapped in meanwhile cannot block) instead of through an `O_PATH` probe.
    ///
    /// # Errors
    /// Those of `sys::read_only_view` (an older kernel, no `CAP_SYS_ADMIN`), and of opening
    /// the process's `/proc/<pid>/ns/mnt`. The caller looks through this root instead.
    pub fn read_only_view(&self) -> io::Result<Root> {
        let ns = match self.pid {
            Some(pid) => Some(rustix::fs::open(
                format!("/proc/{pid}/ns/mnt"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
            None => None,
        };
        use std::os::fd::AsFd;
        let fd = crate::sys::read_only_view(self.fd.as_fd(), ns.as_ref().map(|f| f.as_fd()))?;
        Ok(Root { fd, pid: None })
    }

    /// Opens the regular file `path` (taken relative to the container's `/`) for reading.
    ///
    /// # Errors
    /// Those of `openat2`; `InvalidInput` ("… is a FIFO, not a regular file") for anything
    /// but a regular file, which is never opened for reading.
    pub fn open(&self, path: &str) -> io::Result<File> {
        let probe = self.open_with(path, OFlags::PATH | OFlags::CLOEXEC)?;
        open_regular(probe.into(), path)
    }

    /// Opens `path` with `flags`, resolved inside the root, refusing procfs and sysfs.
    pub fn open_with(&self, path: &str, flags: OFlags) -> io::Result<File> {
        self.open_bytes(path.as_bytes(), flags)
    }

    /// `open_with` for a path given as bytes (names on Linux need not be UTF-8: `caf\xe9.txt`):
    /// resolved inside the root, refusing procfs and sysfs.
    pub fn open_bytes(&self, path: &[u8], flags: OFlags) -> io::Result<File> {
        let fd = self.resolve(path, flags)?;
        let magic = crate::sys::fs_magic(&fd)?;
        if magic == crate::sys::PROC_SUPER_MAGIC || magic == crate::sys::SYSFS_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing a file on procfs or sysfs",
            ));
        }
        Ok(File::from(fd))
    }

    /// Resolves `path` inside the root with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
    /// and opens it with `flags` (plus `O_CLOEXEC`), whatever file system it is on (callers
    /// that read must refuse procfs and sysfs: `open_bytes` does).
    ///
    /// # Errors
    /// Those of `openat2`; `InvalidInput` for a NUL byte. An `EAGAIN` (a rename or mount raced
    /// with a lookup through `..`: the kernel cannot vouch for the result) is retried a few
    /// times first.
    pub fn resolve(&self, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
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
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(
                &self.fd,
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(rustix::io::Errno::AGAIN) if tries < 16 => tries += 1,
                other => return Ok(other?),
            }
        }
    }

    /// Reads a small text file of the container (`/etc/passwd`, `/etc/hostname`), at most
    /// `limit` bytes.
    pub fn read_to_string(&self, path: &str, limit: u64) -> io::Result<String> {
        use std::io::Read;
        let mut s = Vec::new();
        self.open(path)?.take(limit).read_to_end(&mut s)?;
        Ok(String::from_utf8_lossy(&s).into_owned())
    }

    /// Reads a small text file of the container, telling a missing file (`Ok(None)`) from
    /// one that could not be read (an error that says why: a FIFO, a device, no access).
    pub fn read_optional(&self, path: &str, limit: u64) -> io::Result<Option<String>> {
        match self.read_to_string(path, limit) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The root's descriptor, for `fchdir` before `chroot` and for `*at` calls.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// What kind of file a mode names, in words (`a FIFO`, `a character device`).
pub fn kind_words(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    }
}

/// Opens for reading the file an `O_PATH` descriptor names, only if it is a regular file
/// (checked with `fstat` on the descriptor, then that very inode reopened).
///
/// # Errors
/// `InvalidInput` naming `path` and what it is, for anything but a regular file.
pub fn open_regular(probe: OwnedFd, path: &str) -> io::Result<File> {
    let st = rustix::fs::fstat(&probe)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{path} is {}, not a regular file: not opened",
                kind_words(kind)
            ),
        ));
    }
    let fd = crate::sys::reopen(
        std::os::fd::AsFd::as_fd(&probe),
        OFlags::RDONLY | OFlags::NOCTTY,
    )?;
    Ok(File::from(fd))
}

/// Opens a regular file of this machine for reading (a `--dbpath` database, a file given on
/// the command line), as `Root::open` does inside a container: a FIFO or device named by
/// mistake is refused, never opened.
pub fn open_host_file(path: &Path) -> io::Result<File> {
    let probe = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    open_regular(probe, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened() {
        let dir = std::env::temp_dir().join(format!("sidecar-rootfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
        // A FIFO with no writer would block an open for reading forever.
        let e = open_host_file(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        assert!(open_host_file(Path::new("/dev/null"))
            .unwrap_err()
            .to_string()
            .contains("character device"));
        let mut s = String::new();
        use std::io::Read;
        open_host_file(&dir.join("file"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
