//! Tools for a shell-less container, without changing it (`sidecar exec --tools DIR`, the
//! API's `"tools": true`): the program runs in every namespace of the container, with the
//! container's root as `/` and the toolkit directory (static programs in its `bin/`) at
//! `/.sidecar/toolkit`, first on `PATH`.
//!
//! The helper builds that root in a private copy of the container's mount namespace, with
//! the new mount API, in an order the kernel accepts (the naive one fails with EINVAL):
//! 1. `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` the toolkit while still in our own mount
//!    namespace (`open`, called by `prepare`);
//! 2. after joining the container's namespaces, `fchdir` to its root (an fd opened before the
//!    join), *then* `unshare(CLONE_NEWNS)`: descriptors keep pointing into the container's
//!    own namespace, the working directory moves into the copy;
//! 3. make `/` rprivate, so that nothing done here propagates back to the container;
//! 4. clone each top-level entry of the root while it is still attached;
//! 5. cover the root with a fresh tmpfs (`fsopen`/`fsmount`, `move_mount` onto "."),
//!    `fchdir` into it, recreate the top level there (a directory or an empty file per
//!    clone, with the clone moved onto it; symlinks copied as symlinks), put the toolkit at
//!    `/.sidecar/toolkit`, and `chroot(".")`.
//!
//! Invariant: nothing is written into the container, not even a mount point: every mount
//! point is on the tmpfs, which lives in the helper's private mount namespace and goes with
//! it. The container's `/proc/<pid>/mountinfo` never shows the toolkit. Below the top level
//! the program reaches the container's real files (writes land there); a file created at
//! the top level lands in the tmpfs and is gone afterwards.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, CWD};

use super::Error;
use crate::sys;

/// Where the toolkit appears inside the container.
pub const MOUNT_POINT: &str = "/.sidecar/toolkit";

/// The toolkit's `bin`, put first on the program's `PATH`.
pub const BIN: &str = "/.sidecar/toolkit/bin";

/// The toolkit, cloned as a detached mount tree in our own mount namespace.
pub struct Toolkit {
    tree: OwnedFd,
}

/// Names a failed mount step: the missing capability, or the kernel that is too old.
fn step_error(step: &'static str) -> impl Fn(io::Error) -> Error {
    move |source| {
        match source.raw_os_error() {
        Some(libc::ENOSYS) => Error::Io {
            step: "use the toolkit: the new mount API (open_tree, fsmount, move_mount) needs Linux 5.2 or later",
            source,
        },
        Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
            step,
            needs: "CAP_SYS_ADMIN",
            source,
        },
        _ => Error::Io { step, source },
    }
    }
}

/// Step 1: clones the toolkit directory `dir` (which must hold a `bin/` directory).
pub fn open(dir: &str) -> Result<Toolkit, Error> {
    let bin = format!("{}/bin", dir.trim_end_matches('/'));
    match std::fs::metadata(&bin) {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(Error::Bad(format!(
                "toolkit {dir}: no {bin} directory of static programs (the :toolkit image has one at /toolkit)"
            )))
        }
    }
    let tree = sys::clone_tree(CWD, dir).map_err(step_error("clone the toolkit (open_tree)"))?;
    Ok(Toolkit { tree })
}

/// One top-level entry of the container's root, cloned.
enum Entry {
    Dir(String, OwnedFd, u32),
    File(String, OwnedFd),
    Link(String, std::ffi::OsString),
}

/// Steps 2 to 5: called after joining the container's namespaces, with its root (opened
/// before the join). On return our root is the new one and our working directory is `/`.
pub fn enter_root(root: impl AsFd, toolkit: &Toolkit) -> Result<(), Error> {
    rustix::process::fchdir(root.as_fd())
        .map_err(|e| step_error("change to the container's root (fchdir)")(e.into()))?;
    sys::unshare_mount_namespace().map_err(step_error(
        "make a private mount namespace (unshare CLONE_NEWNS)",
    ))?;
    sys::make_rprivate_root()
        .map_err(step_error("make the private mount namespace's / rprivate"))?;
    let entries = clone_top_level()?;
    let tmpfs = sys::new_tmpfs().map_err(step_error("make a tmpfs (fsopen, fsmount)"))?;
    sys::move_mount_onto(tmpfs.as_fd(), CWD, ".")
        .map_err(step_error("cover the root with the tmpfs (move_mount)"))?;
    rustix::process::fchdir(&tmpfs)
        .map_err(|e| step_error("change to the tmpfs (fchdir)")(e.into()))?;
    for entry in &entries {
        recreate(entry)?;
    }
    let mkdir = |path: &str| {
        rustix::fs::mkdirat(CWD, path, Mode::from_raw_mode(0o755))
            .map_err(|e| step_error("make the toolkit's mount point on the tmpfs")(e.into()))
    };
    mkdir(".sidecar")?;
    mkdir(".sidecar/toolkit")?;
    sys::move_mount_onto(toolkit.tree.as_fd(), CWD, ".sidecar/toolkit")
        .map_err(step_error("mount the toolkit (move_mount)"))?;
    rustix::process::chroot(".").map_err(|e| Error::Denied {
        step: "change root into the container (chroot)",
        needs: "CAP_SYS_CHROOT",
        source: e.into(),
    })?;
    rustix::process::chdir("/").map_err(|e| step_error("change to /")(e.into()))?;
    Ok(())
}

/// Step 4: a clone of each top-level entry of the working directory (the container's root),
/// symlinks read as such. Entries that vanish meanwhile are skipped.
fn clone_top_level() -> Result<Vec<Entry>, Error> {
    let dir = rustix::fs::openat(
        CWD,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| step_error("list the container's root")(e.into()))?;
    let mut out = Vec::new();
    let listing = rustix::fs::Dir::read_from(&dir)
        .map_err(|e| step_error("list the container's root")(e.into()))?;
    for item in listing {
        let item = item.map_err(|e| step_error("list the container's root")(e.into()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        // The container's own `/.sidecar`, if it has one, is hidden by ours (never written).
        if name == "." || name == ".." || name == ".sidecar" {
            continue;
        }
        let Ok(st) = rustix::fs::statat(&dir, name.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        else {
            continue;
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind == FileType::Symlink {
            if let Ok(target) = rustix::fs::readlinkat(&dir, name.as_str(), Vec::new()) {
                let target = std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes());
                out.push(Entry::Link(name, target));
            }
            continue;
        }
        let tree = match sys::clone_tree(dir.as_fd(), &name) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                return Err(step_error(
                    "clone the container's top-level entries (open_tree)",
                )(e))
            }
        };
        out.push(if kind == FileType::Directory {
            Entry::Dir(name, tree, st.st_mode & 0o7777)
        } else {
            Entry::File(name, tree)
        });
    }
    Ok(out)
}

/// Step 5 for one entry: its mount point on the tmpfs, and the clone moved onto it.
fn recreate(entry: &Entry) -> Result<(), Error> {
    let made =
        |e: rustix::io::Errno| step_error("recreate the root's top level on the tmpfs")(e.into());
    match entry {
        Entry::Link(name, target) => {
            rustix::fs::symlinkat(target.as_os_str(), CWD, name.as_str()).map_err(made)?
        }
        Entry::Dir(name, tree, mode) => {
            rustix::fs::mkdirat(CWD, name.as_str(), Mode::from_raw_mode(*mode)).map_err(made)?;
            sys::move_mount_onto(tree.as_fd(), CWD, name).map_err(step_error(
                "attach a clone of the root's entries (move_mount)",
            ))?;
        }
        Entry::File(name, tree) => {
            drop(
                rustix::fs::openat(
                    CWD,
                    name.as_str(),
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(made)?,
            );
            sys::move_mount_onto(tree.as_fd(), CWD, name).map_err(step_error(
                "attach a clone of the root's entries (move_mount)",
            ))?;
        }
    }
    Ok(())
}

/// The program's `PATH` with the toolkit first: `path` is the container's (or the default).
pub fn path_with_toolkit(path: &str) -> String {
    if path.is_empty() {
        BIN.to_string()
    } else {
        format!("{BIN}:{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolkit_first_on_path() {
        assert_eq!(
            path_with_toolkit("/usr/bin:/bin"),
            "/.sidecar/toolkit/bin:/usr/bin:/bin"
        );
        assert_eq!(path_with_toolkit(""), BIN);
        assert!(BIN.starts_with(MOUNT_POINT));
    }

    #[test]
    fn a_toolkit_without_bin_is_refused() {
        let e = open("/nonexistent-toolkit-dir").err().unwrap();
        assert!(matches!(e, Error::Bad(_)), "{e}");
        assert!(e.to_string().contains("/nonexistent-toolkit-dir/bin"));
    }
}
