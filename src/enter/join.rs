//! Step 2, `join`: `setns` into the target's namespaces (one call on the pidfd, or the
//! `/proc/<pid>/ns/*` files one by one, user first and mount last), then `fchdir` +
//! `chroot(".")` into its root and change to the working directory.
//!
//! Invariant: after this step every path resolves inside the target; nothing opened by path
//! from here on is ours.

use std::io;
use std::os::fd::AsFd;

use super::prepare::Prepared;
use super::{Error, Request};
use crate::sys;

/// Step 2: namespaces, root, working directory (the program joins the cgroups itself).
pub(super) fn join(p: &Prepared, req: &Request) -> Result<(), Error> {
    if p.flags != 0 {
        if req.setns_files {
            for fd in &p.ns_files {
                sys::setns_file(fd.as_fd()).map_err(|e| setns_error(req, true, e))?;
            }
        } else {
            sys::setns_pidfd(p.pidfd.as_fd(), p.flags).map_err(|e| setns_error(req, false, e))?;
        }
    }
    match (&p.root, &p.toolkit) {
        (Some(root), Some(toolkit)) => super::toolkit::enter_root(root.fd(), toolkit)?,
        (Some(root), None) => sys::chroot_fd(root.fd().as_fd()).map_err(Error::io(
            "change root into the container (chroot)",
            "CAP_SYS_CHROOT",
        ))?,
        _ => {}
    }
    match (&req.cwd, &p.cwd) {
        (Some(dir), _) => rustix::process::chdir(dir.as_str()).map_err(|e| {
            Error::Bad(format!(
                "cannot change to directory {dir} in the container: {}",
                io::Error::from(e)
            ))
        })?,
        (None, _) if p.cwd_path.is_some() => {
            let dir = p.cwd_path.as_deref().unwrap_or("/");
            if rustix::process::chdir(dir).is_err() {
                let _ = rustix::process::chdir("/");
            }
        }
        (None, Some(fd)) => {
            if rustix::process::fchdir(fd).is_err() {
                let _ = rustix::process::chdir("/");
            }
        }
        (None, None) => {}
    }
    Ok(())
}

fn setns_error(req: &Request, files: bool, e: io::Error) -> Error {
    let step = if files {
        "join a namespace of the container (setns on /proc/<pid>/ns)"
    } else {
        "join the container's namespaces (setns)"
    };
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
            step,
            needs: "CAP_SYS_ADMIN",
            source: e,
        },
        Some(libc::ESRCH) => Error::Gone {
            container: req.container.clone(),
            what: "has exited".into(),
        },
        Some(libc::EINVAL) if !files => Error::Io {
            step: "join the container's namespaces through a pidfd (Linux 5.8 or later; use --setns-files on older kernels)",
            source: e,
        },
        _ => Error::Io { step, source: e },
    }
}
