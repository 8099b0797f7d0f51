//! `sidecar exec -t`: the program gets a pseudo-terminal of its own, as `podman exec -it`
//! gives, so that job control, `vi` and `top` work.
//!
//! The terminal is allocated from the sidecar's own `/dev/ptmx` before the container is
//! joined (a shell-less container may have no devpts at all). The program gets only its
//! secondary side, as fds 0-2 and controlling terminal of a new session: never the caller's
//! own terminal, which would be a way out of the container. The sidecar copies bytes between
//! the caller and the primary side, passes the window size and its changes (SIGWINCH), and
//! puts the caller's terminal in raw mode while the program runs (its own terminal does the
//! line editing, echo and ^C).
//!
//! Invariant: the caller's terminal settings are restored on every way out of `relay` (a
//! guard restores them when dropped), and the caller's stdin is never made non-blocking (it
//! is a file description shared with the caller's shell).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::wait::{finish, kill_program};
use super::{Error, Finished};
use crate::sys;

/// Both sides of the program's terminal.
pub struct Pty {
    pub(super) primary: OwnedFd,
    pub(super) secondary: OwnedFd,
}

/// Allocates the terminal (in our own mount namespace), sized as the caller's when the
/// caller is at one.
pub(super) fn open() -> Result<Pty, Error> {
    let (primary, secondary) = sys::open_pty().map_err(|source| Error::Io {
        step: "allocate a pseudo-terminal (/dev/ptmx)",
        source,
    })?;
    if let Ok(size) = sys::window_size(io::stdin().as_fd()) {
        let _ = sys::set_window_size(primary.as_fd(), size);
    }
    Ok(Pty { primary, secondary })
}

/// The caller's terminal in raw mode until dropped.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: sys::TerminalMode,
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = sys::restore_terminal(self.fd, &self.saved);
    }
}

/// Writes all of `buf` to `fd`, waiting for it to take more when it is full.
fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let _ = sys::poll(&[(fd, true)], 100);
            }
            Err(_) => return,
        }
    }
}

/// Step 4 with a terminal: copies between the caller and the program's terminal until the
/// program has exited and its output is drained, forwarding signals sent to us and window
/// size changes; kills the program's session at `deadline`.
pub(super) fn relay(pid: sys::Pid, pty: Pty, deadline: Option<Instant>) -> Finished {
    // Our copy of the secondary side would keep the primary from ever reading EIO.
    drop(pty.secondary);
    let primary = pty.primary;
    let _ = sys::set_nonblocking(primary.as_fd());
    let stdin = io::stdin();
    let stdout = io::stdout();
    let (input, output) = (stdin.as_fd(), stdout.as_fd());
    let raw = sys::make_raw(input)
        .ok()
        .map(|saved| RawMode { fd: input, saved });
    let at_terminal = raw.is_some();
    let _ = sys::block_signals(&[libc::SIGWINCH]);
    let mut signals = crate::init::FORWARDED.to_vec();
    signals.extend([libc::SIGCHLD, libc::SIGWINCH]);
    let mut stdin_open = true;
    let mut primary_open = true;
    let mut exited: Option<(sys::ExitInfo, Instant)> = None;
    let mut timed_out = false;
    let mut buf = [0u8; 16384];
    loop {
        if exited.is_none() {
            if let Ok(Some(info)) = sys::wait_child(pid, true) {
                exited = Some((info, Instant::now()));
            }
        }
        if let Some((_, at)) = exited {
            // Output still buffered in the terminal is copied; background processes that
            // keep it open are not waited for long.
            if !primary_open || at.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        if exited.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            kill_program(pid, true);
            timed_out = true;
            let info = sys::wait_child(pid, false)
                .ok()
                .flatten()
                .unwrap_or((None, Some(9)));
            exited = Some((info, Instant::now()));
            continue;
        }
        let mut fds = vec![(primary.as_fd(), false)];
        if stdin_open && exited.is_none() {
            fds.push((input, false));
        }
        let wait = if exited.is_some() { 20 } else { 50 };
        let ready = sys::poll(&fds, wait).unwrap_or_default();
        if ready.first() == Some(&true) {
            match rustix::io::read(&primary, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::IO) => primary_open = false,
                Ok(n) => write_all(output, &buf[..n]),
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => primary_open = false,
            }
        } else if exited.is_some() {
            // Nothing more came within the wait after the exit: done.
            break;
        }
        if ready.get(1) == Some(&true) {
            match rustix::io::read(input, &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    // Piped input ended: end of file for the program too (^D at a line's
                    // start), as a terminal's user would type it.
                    if !at_terminal {
                        write_all(primary.as_fd(), b"\x04");
                    }
                }
                Ok(n) => write_all(primary.as_fd(), &buf[..n]),
            }
        }
        while let Some((sig, _)) = sys::wait_signal(&signals, 0) {
            match sig {
                libc::SIGWINCH => {
                    if let Ok(size) = sys::window_size(input) {
                        let _ = sys::set_window_size(primary.as_fd(), size);
                    }
                }
                libc::SIGCHLD => {}
                // At a raw terminal ^C is a byte for the program's terminal; a signal that
                // reaches us was sent to us: pass it on.
                s => {
                    if exited.is_none() {
                        let _ = sys::kill_child(pid, s);
                    }
                }
            }
        }
    }
    drop(raw);
    let (info, _) = exited.unwrap_or(((None, None), Instant::now()));
    finish(info, timed_out)
}
