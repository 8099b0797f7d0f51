//! Step 4, the parent waits for the program: passing stdio through and forwarding signals
//! (the command line), or feeding stdin and capturing stdout and stderr under a time-out
//! (the API's helper).
//!
//! Invariant: the program's exit is always reaped here, and a time-out kills its whole
//! process group; what left the group is reported, never silently left.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};

use super::{Finished, Truncated, MAX_OUTPUT};
use crate::procfs;
use crate::sys;

/// Whether the target process has exited (its pidfd is readable), waiting up to `wait_ms`.
pub(super) fn target_exited(pidfd: &OwnedFd, wait_ms: i32) -> bool {
    sys::wait_readable(pidfd.as_fd(), wait_ms).unwrap_or(false)
}

pub(super) fn finish(info: sys::ExitInfo, timed_out: bool) -> Finished {
    let (code, sig) = info;
    Finished {
        exit_code: code,
        signal: sig.map(signal_name),
        timed_out,
        status: code.unwrap_or_else(|| 128 + sig.unwrap_or(0)),
        ..Finished::default()
    }
}

fn signal_name(n: i32) -> String {
    crate::processes::parse_signal(&n.to_string()).map_or_else(|_| n.to_string(), |(_, name)| name)
}

/// Step 4 for the command line: our stdio is the program's; signals sent to us go to it.
pub(super) fn pass_through(pid: sys::Pid, own_group: bool, deadline: Option<Instant>) -> Finished {
    let mut forwarded = crate::init::FORWARDED.to_vec();
    forwarded.push(libc::SIGCHLD);
    loop {
        if let Ok(Some(info)) = sys::wait_child(pid, true) {
            return finish(info, false);
        }
        let wait = deadline.map_or(200, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(200) as u64
        });
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_program(pid, own_group);
            let info = sys::wait_child(pid, false)
                .ok()
                .flatten()
                .unwrap_or((None, Some(9)));
            return finish(info, true);
        }
        if let Some((sig, _)) = sys::wait_signal(&forwarded, wait) {
            // At a terminal ^C and ^\ reach the program's group directly: do not double them.
            let from_tty = !own_group && (sig == libc::SIGINT || sig == libc::SIGQUIT);
            if sig != libc::SIGCHLD && !from_tty {
                let _ = sys::kill_child(pid, sig);
            }
        }
    }
}

pub(super) fn kill_program(pid: sys::Pid, own_group: bool) {
    if own_group {
        let _ = sys::kill_process_group(pid, libc::SIGKILL);
    } else {
        let _ = sys::kill_child(pid, libc::SIGKILL);
    }
}

/// One captured stream: kept up to `MAX_OUTPUT`, the rest read and dropped.
struct Captured {
    fd: Option<OwnedFd>,
    kept: Vec<u8>,
    truncated: bool,
}

impl Captured {
    fn new(fd: OwnedFd) -> Captured {
        // Read only what is there: a blocking read would stall the other stream and stdin.
        let _ = sys::set_nonblocking(fd.as_fd());
        Captured {
            fd: Some(fd),
            kept: Vec::new(),
            truncated: false,
        }
    }

    /// Reads what is there; drops the descriptor at end of file.
    fn read(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 16384];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => self.fd = None,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(self.kept.len());
                self.kept.extend_from_slice(&buf[..n.min(room)]);
                self.truncated |= n > room;
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => self.fd = None,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

/// Step 4 for the API: feed stdin, capture stdout and stderr until both are closed and the
/// program has exited, or the deadline passes (then its process group is killed). Output
/// still held open by background processes a second after the program exited is left.
pub(super) fn capture_output(
    pid: sys::Pid,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    input: Vec<u8>,
    deadline: Option<Instant>,
    proc_dir: Option<&OwnedFd>,
) -> Finished {
    let mut stdin = stdin.filter(|fd| sys::set_nonblocking(fd.as_fd()).is_ok());
    let mut written = 0;
    let mut out = Captured::new(stdout);
    let mut err = Captured::new(stderr);
    let child = sys::pidfd_open(pid).ok();
    let mut exited: Option<(sys::ExitInfo, Instant)> = None;
    let mut notes = Vec::new();
    let mut timed_out = false;
    let mut escaped = Vec::new();
    loop {
        if exited.is_none() {
            if let Ok(Some(info)) = sys::wait_child(pid, true) {
                exited = Some((info, Instant::now()));
            }
        }
        let open = out.fd.is_some() || err.fd.is_some();
        if let Some((_, at)) = exited {
            if !open {
                break;
            }
            if at.elapsed() > Duration::from_secs(1) {
                notes.push("the program exited but processes it started still hold its stdout or stderr: output after its exit was not captured".to_string());
                break;
            }
        }
        if exited.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(dir) = proc_dir {
                escaped = escaped_descendants(dir, pid.get());
            }
            let _ = sys::kill_process_group(pid, libc::SIGKILL);
            timed_out = true;
            let info = sys::wait_child(pid, false)
                .ok()
                .flatten()
                .unwrap_or((None, Some(9)));
            exited = Some((info, Instant::now()));
            continue;
        }
        if written >= input.len() {
            stdin = None; // end of file for the program
        }
        let mut fds: Vec<(BorrowedFd<'_>, bool)> = Vec::new();
        for fd in [&out.fd, &err.fd].into_iter().flatten() {
            fds.push((fd.as_fd(), false));
        }
        if let Some(fd) = &stdin {
            fds.push((fd.as_fd(), true));
        }
        if let (Some(fd), None) = (&child, exited) {
            fds.push((fd.as_fd(), false));
        }
        let mut wait = 100;
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(Instant::now()).as_millis() as i32);
        }
        if sys::poll(&fds, wait.max(1)).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
        out.read();
        err.read();
        if let Some(fd) = &stdin {
            match rustix::io::write(fd, &input[written..]) {
                Ok(n) => written += n,
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => written = input.len(), // the program closed its stdin
            }
        }
    }
    let (info, _) = exited.unwrap_or(((None, None), Instant::now()));
    let mut done = finish(info, timed_out);
    done.stdout = out.text();
    done.stderr = err.text();
    done.truncated = Truncated {
        stdout: out.truncated,
        stderr: err.truncated,
    };
    done.escaped = escaped;
    done.notes = notes;
    done
}

/// Descendants of `pid` (read through our own `/proc`, held open as `dir`) that are not in
/// its process group: what killing the group leaves running.
fn escaped_descendants(dir: &OwnedFd, pid: u32) -> Vec<u32> {
    let Ok(listing) = rustix::fs::Dir::read_from(dir) else {
        return Vec::new();
    };
    let mut stats = Vec::new();
    for entry in listing.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fd) = rustix::fs::openat(
            dir,
            format!("{p}/stat"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let mut text = String::new();
        if std::fs::File::from(fd).read_to_string(&mut text).is_ok() {
            if let Some(s) = procfs::parse_stat(&text) {
                stats.push(s);
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(stats.iter().filter(|s| s.ppid == parent).map(|s| s.pid));
        i += 1;
    }
    stats
        .iter()
        .filter(|s| tree.contains(&s.pid) && s.pgrp != pid)
        .map(|s| s.pid)
        .collect()
}
