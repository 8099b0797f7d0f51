//! Thin wrappers over the system calls the sidecar needs, and the only module allowed to
//! use `unsafe`. Each wrapper takes and returns typed values (`OwnedFd`, `BorrowedFd`,
//! `io::Result`); raw integers for descriptors do not leave this module. Where rustix has the
//! call we use it; libc only for what rustix lacks (any-number signals through a pidfd,
//! sigprocmask/sigtimedwait for the PID-1 loop, `environ`, fork).
//!
//! Invariant: every `unsafe` block carries a `// SAFETY:` line naming what it relies on.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Turns a libc-style `-1` return into the `errno` error.
fn cerr(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `pidfd_open(2)`: a descriptor that keeps naming process `pid` even after the PID is reused.
///
/// # Errors
/// `ESRCH` when no such process exists; `ENOSYS` before Linux 5.3.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// `pidfd_send_signal(2)` with any signal number 1..=64 (rustix only takes named signals).
///
/// # Errors
/// `ESRCH` when the process has exited, `EPERM` without `CAP_KILL` over it, `EINVAL` for a
/// bad signal number.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the syscall takes an fd we borrow for the call, a plain int and a null siginfo
    // pointer (allowed: the kernel then fills in the info itself) and flags 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    cerr(ret).map(drop)
}

/// `kill(2)` to a whole process group (negative PID), used for exec time-outs.
pub fn kill_process_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pgid =
        libc::pid_t::try_from(pgid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill takes two plain integers; a negative pid names a process group.
    cerr(unsafe { libc::kill(-pgid, signal) }.into()).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, 0)`: other processes of our user can no longer read our memory,
/// environment or fds through `/proc/<pid>/`, and we leave no core dump.
pub fn set_non_dumpable() -> io::Result<()> {
    Ok(rustix::process::set_dumpable_behavior(
        rustix::process::DumpableBehavior::NotDumpable,
    )?)
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`: orphaned descendants are re-parented to us, not to PID 1.
pub fn set_child_subreaper() -> io::Result<()> {
    Ok(rustix::process::set_child_subreaper(Some(
        rustix::process::getpid(),
    ))?)
}

/// Fills `buf` from the kernel's random pool (`getrandom(2)`).
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(())
}

/// Overwrites the value of environment variable `name` in the process's original environment
/// block with zero bytes, then removes it. `/proc/<pid>/environ` shows that block (the memory
/// between the kernel's `env_start` and `env_end`), not what `std::env` holds, so removing the
/// variable alone would leave the secret readable there.
///
/// Must be called while the process is single-threaded (at start-up), like `std::env::remove_var`.
pub fn wipe_env_var(name: &str) {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: single-threaded (documented precondition), so nothing else reads or changes
    // `environ` meanwhile; `environ` is a NULL-terminated array of NUL-terminated strings, so
    // walking it until NULL and measuring each entry with strlen stays inside the entries; we
    // only write zeros over bytes of an entry, before its terminating NUL.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let s = *entry;
            let len = libc::strlen(s);
            let bytes = std::slice::from_raw_parts_mut(s.cast::<u8>(), len);
            if bytes.starts_with(prefix.as_bytes()) {
                bytes[prefix.len()..].fill(0);
            }
            entry = entry.add(1);
        }
        std::env::remove_var(name);
    }
}

/// Blocks `signals` in the calling thread (inherited by threads it creates later).
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before use; the pointers
    // passed are valid for the duration of each call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Waits up to `timeout_ms` for one of `signals` (which must be blocked) and returns its
/// number and sender PID, or `None` on time-out or interruption.
pub fn wait_signal(signals: &[i32], timeout_ms: u64) -> Option<(i32, i32)> {
    // SAFETY: `set` and `info` are locals initialised before use (sigemptyset, zeroed POD);
    // sigtimedwait writes only into `info`; si_pid reads the union member the kernel fills
    // for signals sent with kill/pidfd_send_signal and SIGCHLD.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as _,
            tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
        };
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let sig = libc::sigtimedwait(&set, &mut info, &ts);
        if sig <= 0 {
            None
        } else {
            Some((sig, info.si_pid()))
        }
    }
}

/// Reaps one exited child without blocking: `Some((pid, status as a shell reports it))`.
pub fn reap_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our local int; -1 means any child.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        0
    };
    Some((pid, code))
}

/// Sends `signal` to process `pid` with `kill(2)` (used only by PID 1 to forward signals to
/// its own child, which it reaps itself and so cannot be a reused PID).
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two plain integers.
    cerr(unsafe { libc::kill(pid, signal) }.into()).map(drop)
}

/// Waits until `fd` is readable (a listening socket has a connection), at most `timeout_ms`.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack, count 1.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(n > 0)
}

/// The file system magic of what `fd` is open on (`fstatfs`), to refuse procfs and sysfs.
pub fn fs_magic(fd: impl AsFd) -> io::Result<i64> {
    Ok(rustix::fs::fstatfs(fd)?.f_type as i64)
}

/// `PROC_SUPER_MAGIC` and `SYSFS_MAGIC` from `linux/magic.h`.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Restores the default SIGPIPE action (std ignores it), so that a command-line listing piped
/// into `head` ends quietly like any Unix tool instead of failing on EPIPE. Not for `serve`.
pub fn default_sigpipe() {
    // SAFETY: signal() with SIG_DFL installs no handler code; called before threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The PID of a child that has exited and is waiting to be reaped, without reaping it
/// (`waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`), so that its owner can still wait for it.
pub fn peek_exited_child() -> Option<u32> {
    // SAFETY: waitid writes only into `info`, a zeroed siginfo_t on our stack; with WNOHANG
    // and no child exited it leaves si_pid 0, which we read back through the libc accessor.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        let pid = info.si_pid();
        (rc == 0 && pid > 0).then_some(pid as u32)
    }
}

/// Reaps child `pid` if it has exited (`waitpid(pid, WNOHANG)`).
pub fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our local int.
    unsafe {
        libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG);
    }
}
