//! Entering a container to run a program in it, as `nsenter --all --root` does, plus what
//! `podman exec` adds: the container's environment, user, cgroups and capabilities.
//!
//! The steps, in order, each in a file of its own (`prepare`, `join`, `child`, `wait`; the
//! pure decisions in `plan`, the server's helper role in `helper`):
//! 1. `prepare`: while still in our own namespaces and root, open everything we will need
//!    (a pidfd of the target, its root and cwd, its namespace files for the fallback, the
//!    cgroup directories to join), read its environment, capabilities and users, and check
//!    the target is still the process the caller saw (same start time): PIDs are reused.
//! 2. `join`: move into the target's cgroups, `setns` into its namespaces (one call on the
//!    pidfd, or the `/proc/<pid>/ns/*` files one by one, user first and mount last), then
//!    `fchdir` + `chroot(".")` into its root and change to the working directory.
//! 3. `fork`: the PID namespace applies only to children. The child drops to the target's
//!    capabilities, switches user and `exec`s the program found in the container's `PATH`;
//!    why it could not is sent back over a close-on-exec pipe.
//! 4. The parent waits: passing stdio through and forwarding signals (the command line), or
//!    capturing the program's output under a time-out (the API's helper, `helper_main`).
//!
//! Invariant: everything here runs in a single-threaded process (checked first): the kernel
//! refuses `setns` into a mount or user namespace for a process whose threads share `fs`, and
//! only a single-threaded process may use its heap after `fork`. The HTTP server never calls
//! this module; it runs `sidecar enter` (this binary, re-executed) with the request on stdin.

mod child;
mod error;
mod helper;
mod join;
mod plan;
mod prepare;
mod pty;
pub mod toolkit;
mod wait;

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sys;

pub use error::{Error, Failure, Kind, Reply};
pub use helper::helper_main;
pub use plan::{environment, namespaces_to_join, ns_list, resolve_user, Ident};

/// Namespace kinds in the order the fallback joins them: user first (it grants the
/// capabilities the others need), mount last (it changes how every later path resolves).
pub const KINDS: [(&str, i32); 7] = [
    ("user", libc::CLONE_NEWUSER),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// The `PATH` a program is looked up in when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Output kept per stream when capturing; the rest is read and dropped (`truncated`).
pub const MAX_OUTPUT: usize = 1 << 20;

/// What to run where. The API's helper reads it as JSON on stdin; the command line builds it
/// (fields added later have defaults: build it with `..Request::default()`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The container's ID, for messages.
    pub container: String,
    /// A process of the container (as we see it) and its start time when it was chosen.
    pub pid: u32,
    pub starttime: u64,
    /// The container's other processes (with start times) that may stand in when `pid`
    /// exits before it is entered.
    #[serde(default)]
    pub stand_ins: Vec<(u32, u64)>,
    pub argv: Vec<String>,
    /// Set on top of the environment of the target process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container; default: the target process's.
    #[serde(default)]
    pub cwd: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`; default: the user of the container's init
    /// (as its user namespace sees it), as `podman exec` does.
    #[serde(default)]
    pub user: Option<String>,
    /// Namespace kinds to join; default: every one of the target's that differs from ours.
    #[serde(default)]
    pub ns: Option<Vec<String>>,
    /// Seconds before the program's process group is killed; none: no limit.
    #[serde(default)]
    pub timeout_s: Option<f64>,
    /// Keep the sidecar's capabilities instead of taking the target's.
    #[serde(default)]
    pub privileged: bool,
    /// Join through `/proc/<pid>/ns/*` one by one (the path for kernels before 5.8).
    #[serde(default)]
    pub setns_files: bool,
    /// A toolkit directory (static programs in its `bin/`) to mount at `/.sidecar/toolkit`
    /// in a private copy of the container's mount namespace (see `toolkit`).
    #[serde(default)]
    pub tools: Option<String>,
    /// Bytes for the program's stdin (capture mode only).
    #[serde(default)]
    pub stdin: Option<String>,
    /// The program's stdin is the helper's inherited descriptor 3 instead (capture mode
    /// only): a memfd holding an uploaded package, which the program (rpm) reopens by path
    /// as `/proc/self/fd/0`. Nothing is written anywhere for it.
    #[serde(default)]
    pub stdin_from_fd3: bool,
    /// Instead of a program, the native package path's job (JSON of
    /// `packages::native::apply::Job`), run by the forked child itself once it is in the
    /// container (namespaces, cgroups, root, uid 0 with the container's capabilities): no
    /// copy of the sidecar exists there to `exec`. Its reply is the child's stdout.
    #[serde(default)]
    pub native_job: Option<String>,
}

/// How a program ended, and what it printed when captured.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub exit_code: Option<i32>,
    /// The signal that ended it, by name (`KILL`), when one did.
    pub signal: Option<String>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub truncated: Truncated,
    pub duration_ms: u64,
    /// Processes the program started that left its process group (`setsid`): a time-out
    /// does not kill them. PIDs as the sidecar sees them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escaped: Vec<u32>,
    /// What did not go as asked but did not stop the program (cgroups not joined...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The exit status as a shell reports it (128+N for signal N); not in the API's JSON.
    #[serde(skip)]
    pub status: i32,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Truncated {
    pub stdout: bool,
    pub stderr: bool,
}

/// Where the program's stdin, stdout and stderr go.
pub enum Stdio {
    /// Ours, passed through (the command line, like `nsenter`).
    Inherit,
    /// Pipes: the request's `stdin` is written, output is captured (the API's helper).
    Capture,
    /// A pseudo-terminal of the program's own, copied to and from ours (`exec -t`).
    Pty,
}

/// Runs `req` in the container: steps 1 to 4. `Stdio::Inherit` passes our stdio through and
/// forwards signals; `Stdio::Capture` writes `req.stdin` and captures the output.
pub fn run(req: &Request, stdio: Stdio) -> Result<Finished, Error> {
    let started = Instant::now();
    let mut p = prepare::prepare(req)?;
    let mut notes = std::mem::take(&mut p.notes);
    // The terminal comes from our own devpts, before the join (see `pty`).
    let terminal = match stdio {
        Stdio::Pty => Some(pty::open()?),
        _ => None,
    };
    join::join(&p, req)?;
    let capture = matches!(stdio, Stdio::Capture);
    // A program at a terminal stays in its foreground process group (job control, ^C);
    // otherwise it leads its own, so that a time-out kills it and what it started. With a
    // terminal of its own it leads a new session instead, that terminal its controlling one.
    let own_group = terminal.is_none() && (capture || !io::IsTerminal::is_terminal(&io::stdin()));
    let pipes = if capture {
        let pipe = |what| sys::pipe().map_err(|source| Error::Io { step: what, source });
        // (the program's side, ours to write): with stdin_from_fd3 the program reads the
        // inherited file and there is nothing to write.
        let stdin = if req.stdin_from_fd3 {
            let fd = sys::take_inherited_fd(3).map_err(|source| Error::Io {
                step: "take the uploaded file (descriptor 3)",
                source,
            })?;
            (fd, None)
        } else {
            let (r, w) = pipe("make the stdin pipe")?;
            (r, Some(w))
        };
        Some((
            stdin,
            pipe("make the stdout pipe")?,
            pipe("make the stderr pipe")?,
        ))
    } else {
        None
    };
    let (err_r, err_w) = sys::pipe().map_err(|source| Error::Io {
        step: "make a pipe",
        source,
    })?;
    let pid = match sys::fork(p.one_thread) {
        Ok(sys::Forked::Child) => {
            let stdio = match &terminal {
                Some(t) => Some([&t.secondary; 3]),
                None => pipes.as_ref().map(|(i, o, e)| [&i.0, &o.1, &e.1]),
            };
            child::child(&p, req, own_group, stdio, terminal.is_some(), &err_w)
        }
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && p.flags & libc::CLONE_NEWPID != 0 => {
            return Err(Error::Gone {
                container: req.container.clone(),
                what: "has exited (its PID namespace has no init any more)".into(),
            })
        }
        Err(source) => {
            return Err(Error::Io {
                step: "fork",
                source,
            })
        }
    };
    drop(err_w);
    let (stdin_w, stdout_r, stderr_r) = match pipes {
        Some((i, o, e)) => (i.1, Some(o.0), Some(e.0)),
        None => (None, None, None),
    };
    if let Some(e) = child::read_report(err_r, req, &p, &mut notes) {
        let _ = sys::wait_child(pid, false);
        return Err(e);
    }
    let deadline = req
        .timeout_s
        .filter(|t| *t > 0.0)
        .map(|t| Instant::now() + Duration::from_secs_f64(t.min(1e7)));
    let mut done = match (stdout_r, stderr_r, terminal) {
        (Some(out), Some(err), _) => {
            let input = req.stdin.clone().unwrap_or_default().into_bytes();
            wait::capture_output(pid, stdin_w, out, err, input, deadline, p.proc_dir.as_ref())
        }
        (_, _, Some(t)) => pty::relay(pid, t, deadline),
        _ => wait::pass_through(pid, own_group, deadline),
    };
    // A stopping container takes its processes down one by one: when ours was killed the way
    // a runtime or the kernel does, give the container's own process a moment to go too.
    let grace = match done.signal.as_deref() {
        Some("KILL") | Some("TERM") if !done.timed_out => 500,
        Some(_) => 0,
        None => -1,
    };
    if grace >= 0 && wait::target_exited(&p.pidfd, grace) {
        return Err(Error::Gone {
            container: req.container.clone(),
            what: format!(
                "exited while the program ran (the program was killed by SIG{})",
                done.signal.as_deref().unwrap_or("?")
            ),
        });
    }
    if !done.escaped.is_empty() {
        notes.push(format!(
            "processes that left the program's process group were not killed: {:?}",
            done.escaped
        ));
    }
    done.notes.extend(notes);
    done.duration_ms = started.elapsed().as_millis() as u64;
    Ok(done)
}
