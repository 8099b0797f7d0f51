//! Step 3, the forked child: stdio, cgroups, capabilities, user, then `exec` of the program
//! found in the container's `PATH`. Why it could not `exec` goes back to the parent over a
//! close-on-exec pipe as fixed-size records (a `Step`, an index, errno), read by `read_report`.
//!
//! Invariant: the child ends in `exec` or `sys::exit_now`; it never returns into the
//! parent's code. Up to the `exec` it calls only async-signal-safe wrappers, except for the
//! native package path (`Request::native_job`), which runs in the child itself: the helper
//! is single-threaded, so a fork of it may use the heap.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};

use super::plan::search_path;
use super::prepare::Prepared;
use super::{Error, Request};
use crate::sys;

/// A record the child sends over the close-on-exec pipe: a step, an index (which cgroup),
/// and errno. `Step::Cgroup` records are notes; any other is why `exec` did not happen.
fn send(pipe: &OwnedFd, step: Step, index: u8, err: &io::Error) {
    let mut msg = [0u8; 6];
    msg[0] = step as u8;
    msg[1] = index;
    msg[2..].copy_from_slice(&err.raw_os_error().unwrap_or(libc::EIO).to_le_bytes());
    let _ = rustix::io::write(pipe, &msg);
}

/// Why the child could not `exec`; it ends there.
fn report(pipe: &OwnedFd, step: Step, err: &io::Error) -> ! {
    send(pipe, step, 0, err);
    sys::exit_now(if step == Step::Exec { 127 } else { 125 })
}

/// The step a record from the child is about. `Cgroup` records are notes; any other is why
/// `exec` did not happen.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The program was not found (exit status 127).
    Exec = 1,
    /// The program was found but `execve` failed (126).
    NoExec = 2,
    User = 3,
    Caps = 4,
    Stdio = 5,
    Cgroup = 6,
}

impl Step {
    fn from_u8(b: u8) -> Option<Step> {
        [
            Step::Exec,
            Step::NoExec,
            Step::User,
            Step::Caps,
            Step::Stdio,
            Step::Cgroup,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
    }
}

/// The child's side of step 3: never returns.
pub(super) fn child(
    p: &Prepared,
    req: &Request,
    own_group: bool,
    stdio: Option<[&OwnedFd; 3]>,
    session: bool,
    errpipe: &OwnedFd,
) -> ! {
    sys::reset_signals_for_exec();
    if own_group {
        let _ = sys::new_process_group();
    }
    if let Some(fds) = stdio {
        for (i, fd) in fds.iter().enumerate() {
            if let Err(e) = sys::dup_onto(fd.as_fd(), i as i32) {
                report(errpipe, Step::Stdio, &e);
            }
        }
    }
    // A terminal of its own (`exec -t`): a new session, that terminal its controlling one.
    if session {
        if let Err(e) = sys::new_session_with_terminal(std::io::stdin().as_fd()) {
            report(errpipe, Step::Stdio, &e);
        }
    }
    // Only 0, 1 and 2 reach the program: any other descriptor (one the sidecar inherited
    // from whoever started it, a root or namespace handle of ours) would be a way out of
    // the container.
    if let Err(e) = sys::cloexec_from_3() {
        report(errpipe, Step::Stdio, &e);
    }
    // Into the container's cgroups ("0" is the writer itself): the program counts against
    // the container's limits and is stopped with it, as `podman exec` does. Only the
    // program: the helper must outlive a container that stops, to say what happened.
    for (i, (_, fd)) in p.cgroups.iter().enumerate() {
        if let Err(e) = rustix::io::write(fd, b"0") {
            send(errpipe, Step::Cgroup, i as u8, &e.into());
        }
    }
    // Capabilities: the bounding set first (needs CAP_SETPCAP, which we may be about to
    // lose), then the user (setuid to non-root clears the rest), then, for root, the sets.
    if let Some(caps) = p.caps {
        for cap in 0..=p.last_cap.min(63) {
            if caps.bounding & (1 << cap) == 0 && p.our_caps.bounding & (1 << cap) != 0 {
                if let Err(e) = sys::capbset_drop(cap) {
                    report(errpipe, Step::Caps, &e);
                }
            }
        }
    }
    let id = &p.ident;
    if let Err(e) = sys::switch_user(id.uid, id.gid, &id.groups) {
        // Root with its own groups is what we already are: a user namespace that denies
        // setgroups must not stop a plain exec. Any other user must be taken or refused.
        if req.user.is_some() || id.uid != 0 || id.gid != 0 {
            report(errpipe, Step::User, &e);
        }
    }
    if let (Some(caps), 0) = (p.caps, id.uid) {
        let mine = p.our_caps.permitted;
        let r = sys::set_capabilities(
            caps.effective & caps.permitted & mine,
            caps.permitted & mine,
            caps.inheritable & mine,
        );
        if let Err(e) = r {
            report(errpipe, Step::Caps, &e);
        }
    }
    let env: Vec<CString> = p
        .env
        .iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let argv: Vec<CString> = match req.argv.iter().map(|a| CString::new(a.as_str())).collect() {
        Ok(a) => a,
        Err(_) => report(
            errpipe,
            Step::NoExec,
            &io::Error::from_raw_os_error(libc::EINVAL),
        ),
    };
    if let Some(job) = &req.native_job {
        // Not an exec, so nothing closes on exec: the helper's descriptors (this machine's
        // `/proc`, opened before the join; the pidfd; the pipes) would stay open while the
        // job runs, or waits for rpm's lock, which the container can hold, and the
        // container's root could take them from `/proc/<pid>/fd` (this process is dumpable,
        // its capabilities the container's). Non-dumpable first, while the report pipe is
        // open; then every descriptor but 0, 1, 2 closed, the report pipe with them, so that
        // the helper goes on to read the job's reply while the job writes it (a reply longer
        // than a pipe holds would otherwise wait for a reader that waits for it to end).
        if let Err(e) = sys::set_non_dumpable() {
            report(errpipe, Step::Stdio, &e);
        }
        if sys::close_from_3_in_child().is_err() {
            sys::exit_now(125);
        }
        // This process is a fork of the single-threaded helper, so its heap and the whole of
        // the sidecar's code are usable here.
        let code = crate::packages::native::apply::main(job);
        sys::exit_now(code);
    }
    let prog = &req.argv[0];
    if prog.contains('/') {
        let e = sys::execve(&argv[0], &argv, &env);
        let step = if e.raw_os_error() == Some(libc::ENOENT) {
            Step::Exec
        } else {
            Step::NoExec
        };
        report(errpipe, step, &e);
    }
    let mut denied = None;
    for dir in search_path(&p.env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let Ok(path) = CString::new(format!("{}/{prog}", dir.trim_end_matches('/'))) else {
            continue;
        };
        let e = sys::execve(&path, &argv, &env);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = Some(e),
            _ => report(errpipe, Step::NoExec, &e),
        }
    }
    match denied {
        Some(e) => report(errpipe, Step::NoExec, &e),
        None => report(
            errpipe,
            Step::Exec,
            &io::Error::from_raw_os_error(libc::ENOENT),
        ),
    }
}

/// What the child reported before `exec`: notes, and the error when it did not `exec`.
pub(super) fn read_report(
    pipe: OwnedFd,
    req: &Request,
    p: &Prepared,
    notes: &mut Vec<String>,
) -> Option<Error> {
    let mut all = Vec::new();
    let _ = std::fs::File::from(pipe).read_to_end(&mut all);
    let mut fatal = None;
    for msg in all.chunks_exact(6) {
        let errno = i32::from_le_bytes([msg[2], msg[3], msg[4], msg[5]]);
        let source = io::Error::from_raw_os_error(errno);
        let step = Step::from_u8(msg[0]).unwrap_or(Step::Stdio);
        if step == Step::Cgroup {
            let file = p
                .cgroups
                .get(msg[1] as usize)
                .map_or("?", |(f, _)| f.as_str());
            notes.push(format!("not in the container's cgroup {file}: {source}"));
        } else {
            fatal = Some((step, source));
        }
    }
    let (step, source) = fatal?;
    let program = req.argv[0].clone();
    Some(match step {
        Step::Exec => Error::NotFound {
            searched: if program.contains('/') {
                program.clone()
            } else {
                search_path(&p.env)
            },
            program,
        },
        Step::NoExec => Error::NotExecutable { program, source },
        Step::User => {
            Error::io("switch to the requested user", "CAP_SETUID and CAP_SETGID")(source)
        }
        Step::Caps => Error::io(
            "limit the program to the container's capabilities",
            "CAP_SETPCAP",
        )(source),
        _ => Error::Io {
            step: "set up the program's stdin, stdout and stderr",
            source,
        },
    })
}
