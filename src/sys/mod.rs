//! Thin wrappers over the system calls the sidecar needs, and the only module allowed to
//! use `unsafe`. Each wrapper takes and returns typed values (`OwnedFd`, `BorrowedFd`,
//! `io::Result`); raw integers for descriptors do not leave this module. Where rustix has the
//! call we use it; libc only for what rustix lacks (any-number signals through a pidfd,
//! sigprocmask/sigtimedwait for the PID-1 loop, `environ`, fork, `mount_setattr`).
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

/// A process ID as the kernel hands them out (1 ..= `i32::MAX`): the only form in which a
/// PID goes into or comes out of `sys`, so that a raw 0 or -1 (which `kill` and `waitpid`
/// read as "my process group" and "every process") cannot reach a system call by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pid(rustix::process::Pid);

impl Pid {
    /// `None` for 0 and for what does not fit a `pid_t`.
    pub fn new(raw: u32) -> Option<Pid> {
        i32::try_from(raw)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .map(Pid)
    }

    /// The number, as `/proc` and the API show it.
    pub fn get(self) -> u32 {
        self.0.as_raw_nonzero().get() as u32
    }

    fn raw(self) -> libc::pid_t {
        self.0.as_raw_nonzero().get()
    }
}

impl std::fmt::Display for Pid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// `pidfd_open(2)`: a descriptor that keeps naming process `pid` even after the PID is reused.
///
/// # Errors
/// `ESRCH` when no such process exists; `ENOSYS` before Linux 5.3.
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(
        pid.0,
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
pub fn kill_process_group(pgid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two plain integers; a negative pid (of a positive `Pid`) names a
    // process group.
    cerr(unsafe { libc::kill(-pgid.raw(), signal) }.into()).map(drop)
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

/// Proof that the process had one thread when `single_threaded` handed it out: what `fork`
/// and `wipe_env_var` require, so that their precondition is in their signature (sudo-rs
/// makes `fork` an `unsafe fn`; we allow no `unsafe` outside `sys`, so a token does that
/// job). It is neither `Send` nor `Sync`: it stays on the thread that checked.
#[derive(Debug, Clone, Copy)]
pub struct SingleThreaded(std::marker::PhantomData<*const ()>);

/// The token when this process has exactly one thread (the entries of `/proc/self/task`),
/// `None` otherwise (or when that cannot be read).
pub fn single_threaded() -> Option<SingleThreaded> {
    let threads = std::fs::read_dir("/proc/self/task").ok()?.count();
    (threads == 1).then_some(SingleThreaded(std::marker::PhantomData))
}

/// Overwrites the value of environment variable `name` in the process's original environment
/// block with zero bytes, then removes it. `/proc/<pid>/environ` shows that block (the memory
/// between the kernel's `env_start` and `env_end`), not what `std::env` holds, so removing the
/// variable alone would leave the secret readable there.
///
/// Must be called while the process is single-threaded (at start-up), like
/// `std::env::remove_var`: the token says so.
pub fn wipe_env_var(_one_thread: SingleThreaded, name: &str) {
    extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: single-threaded (the token), so nothing else reads or changes
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
    sigmask(libc::SIG_BLOCK, signals)
}

/// Unblocks `signals` in the calling thread: a pending or later one takes its default action
/// (for SIGTERM and SIGINT: the process ends).
pub fn unblock_signals(signals: &[i32]) -> io::Result<()> {
    sigmask(libc::SIG_UNBLOCK, signals)
}

fn sigmask(how: libc::c_int, signals: &[i32]) -> io::Result<()> {
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before use; the pointers
    // passed are valid for the duration of each call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(how, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Waits up to `timeout_ms` for one of `signals` (which must be blocked) and returns its
/// number and sender (none for the kernel's own), or `None` on time-out or interruption.
pub fn wait_signal(signals: &[i32], timeout_ms: u64) -> Option<(i32, Option<Pid>)> {
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
            Some((sig, u32::try_from(info.si_pid()).ok().and_then(Pid::new)))
        }
    }
}

/// Reaps one exited child without blocking: `Some((pid, status as a shell reports it))`.
pub fn reap_any() -> Option<(Pid, i32)> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our local int; -1 means any child.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    let pid = u32::try_from(pid).ok().and_then(Pid::new)?;
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
pub fn kill(pid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes two plain integers; a positive pid names one process.
    cerr(unsafe { libc::kill(pid.raw(), signal) }.into()).map(drop)
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

/// Opens the file that the `O_PATH` descriptor `fd` names, again, with `flags` (through
/// `/proc/self/fd/N`, as `open(2)` documents for `O_PATH` descriptors): the kernel opens that
/// very inode, without resolving a path again, so nothing can be swapped in between.
///
/// # Errors
/// Those of `open(2)`; ENOENT when this process's `/proc` is not mounted.
pub fn reopen(fd: BorrowedFd<'_>, flags: rustix::fs::OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        flags | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// This thread's `/proc/thread-self/fd`, held open to reopen many `O_PATH` descriptors as
/// [`reopen`] does, each with one `openat` of the descriptor's number (no path walk through
/// `/proc/self`, no allocation): what verifying thousands of files costs less with.
///
/// It names the descriptor table of the thread that opened it, so it is not `Send`: a
/// thread uses its own.
pub struct FdDir {
    dir: OwnedFd,
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl FdDir {
    /// Opens the calling thread's `/proc/thread-self/fd`.
    ///
    /// # Errors
    /// Those of `open(2)`; ENOENT when this process's `/proc` is not mounted.
    pub fn of_this_thread() -> io::Result<FdDir> {
        let dir = rustix::fs::open(
            "/proc/thread-self/fd",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(FdDir {
            dir,
            _this_thread: std::marker::PhantomData,
        })
    }

    /// [`reopen`] through this directory: the kernel opens the very inode `fd` names.
    ///
    /// # Errors
    /// Those of `openat(2)`.
    pub fn reopen(&self, fd: BorrowedFd<'_>, flags: rustix::fs::OFlags) -> io::Result<OwnedFd> {
        // The descriptor's number in decimal, NUL-terminated, on the stack.
        let mut name = [0u8; 12];
        let mut n = fd.as_raw_fd().unsigned_abs();
        let mut i = name.len() - 1;
        loop {
            i -= 1;
            name[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let name = std::ffi::CStr::from_bytes_with_nul(&name[i..])
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(rustix::fs::openat(
            &self.dir,
            name,
            flags | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?)
    }
}

/// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11): every descriptor but 0, 1 and 2
/// is closed at the next `execve`, whoever opened it and however it was inherited. Falls back
/// to setting `FD_CLOEXEC` on each open descriptor (from `/proc/self/fd`) on older kernels.
///
/// # Errors
/// Only when neither way works.
pub fn cloexec_from_3() -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing; it only sets a flag on
    // descriptors, so no descriptor owned by Rust code is invalidated.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir("/proc/self/fd")?.flatten() {
        if let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        {
            if fd > 2 {
                // SAFETY: F_SETFD only changes the close-on-exec flag of descriptor `fd`
                // (EBADF for the directory's own, now closed, descriptor is harmless).
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    Ok(())
}

/// `close_range(3, ~0, 0)` (Linux 5.9): every descriptor but 0, 1 and 2 is closed now, for a
/// forked child that runs our own code instead of `execve` (the native package path) and so
/// gets no close-on-exec. Falls back to closing each one listed in `/proc/self/fd`.
///
/// Only for a forked child that ends in [`exit_now`]: the `OwnedFd`s of its parent's code
/// that this closes must never be used or dropped afterwards.
///
/// # Errors
/// Only when neither way works.
pub fn close_from_3_in_child() -> io::Result<()> {
    // SAFETY: close_range takes plain integers. The caller's contract (a forked child that
    // never returns into the code owning these descriptors) keeps any `OwnedFd` of a closed
    // number from being used or closed again.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|&fd| fd > 2)
        .collect();
    for fd in open {
        // SAFETY: as above; EBADF for the listing's own, now closed, descriptor is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Takes ownership of descriptor `fd` that this process inherited (the enter helper's fd 3,
/// handed over by `give_fd_to_child`).
///
/// # Errors
/// EBADF when no such descriptor is open.
pub fn take_inherited_fd(fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF when `fd` is
    // not open, so a success proves there is an open descriptor to own.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is open (checked above) and nothing else in this process owns it: it was
    // inherited for us alone, and is taken once.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Makes `fd` the child's descriptor `target` (>= 3) when `cmd` is spawned, without the
/// close-on-exec flag, so that the child inherits it there. Everything else keeps
/// close-on-exec.
pub fn give_fd_to_child(cmd: &mut std::process::Command, fd: BorrowedFd<'_>, target: i32) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only dup2 and
    // fcntl, which are async-signal-safe; `raw` stays open in the parent until spawn returns
    // (the caller holds `fd` across the spawn), so the child has it too.
    unsafe {
        cmd.pre_exec(move || {
            if raw == target {
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(raw, target) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A memfd (`memfd_create(2)`): an anonymous file in memory, gone with its last descriptor.
pub fn memfd(name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC,
    )?)
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
pub fn peek_exited_child() -> Option<Pid> {
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
        if rc != 0 {
            return None;
        }
        u32::try_from(pid).ok().and_then(Pid::new)
    }
}

/// Reaps child `pid` if it has exited (`waitpid(pid, WNOHANG)`).
pub fn reap(pid: Pid) {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our local int; a positive pid names one child.
    unsafe {
        libc::waitpid(pid.raw(), &mut status, libc::WNOHANG);
    }
}

/// What `fork` returned, in the process that sees it.
pub enum Forked {
    Child,
    Parent(Pid),
}

/// `fork(2)`.
///
/// Precondition, carried by the token: the calling process is single-threaded (the child of
/// a multi-threaded process may find a lock held by a thread that does not exist in it, and
/// must not allocate).
///
/// # Errors
/// `EAGAIN` at a process limit; `ENOMEM` also when the PID namespace we joined has lost its
/// init (the container has exited).
pub fn fork(_one_thread: SingleThreaded) -> io::Result<Forked> {
    // SAFETY: fork takes no arguments; the single-threaded precondition (the token) is what
    // makes using the child's copy of the heap sound.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => Ok(Forked::Child),
        p => match u32::try_from(p).ok().and_then(Pid::new) {
            Some(p) => Ok(Forked::Parent(p)),
            None => Err(io::Error::last_os_error()),
        },
    }
}

/// Replaces the process image: `execve(path, argv, envp)`. Returns only on failure.
pub fn execve(
    path: &std::ffi::CStr,
    argv: &[std::ffi::CString],
    envp: &[std::ffi::CString],
) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `path` and every string are NUL-terminated CStrs that outlive the call; both
    // pointer arrays end with the NULL execve requires.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// Ends the process at once with `code`, running no destructors or atexit handlers: what a
/// forked child must do when its `exec` failed (the parent's buffers are not its to flush).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an int and does not return.
    unsafe { libc::_exit(code) }
}

/// `setns(2)` on a pidfd: joins several of the process's namespaces at once (Linux 5.8+).
/// `flags` are `CLONE_NEW*` bits.
///
/// # Errors
/// `EINVAL` on kernels before 5.8 (or a namespace we are already in, for the user namespace);
/// `EPERM` without `CAP_SYS_ADMIN` (in the target's user namespace).
pub fn setns_pidfd(pidfd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    let types = rustix::thread::ThreadNameSpaceType::from_bits_retain(flags as u32);
    Ok(rustix::thread::move_into_thread_name_spaces(pidfd, types)?)
}

/// `setns(2)` on one `/proc/<pid>/ns/<kind>` file: the fallback for kernels before 5.8.
pub fn setns_file(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::thread::move_into_link_name_space(fd, None)?)
}

/// `fchdir(fd)` then `chroot(".")`: makes the directory `fd` is open on our root, as
/// `nsenter --root` does (the directory may belong to another mount namespace we joined).
pub fn chroot_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::process::fchdir(fd)?;
    rustix::process::chroot(".")?;
    Ok(())
}

/// `setpgid(0, 0)`: the calling process leads a new process group (so that a time-out can
/// kill the program and everything it started, and nothing else).
pub fn new_process_group() -> io::Result<()> {
    Ok(rustix::process::setpgid(None, None)?)
}

/// Switches to `uid`/`gid` with supplementary `groups` (setgroups, setgid, setuid: in that
/// order, since each needs the privilege the next one drops).
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: setgroups reads `groups.len()` gids from a live Vec; setgid/setuid take ints.
    unsafe {
        cerr(libc::setgroups(groups.len(), groups.as_ptr()).into())?;
        cerr(libc::setgid(gid).into())?;
        cerr(libc::setuid(uid).into())?;
    }
    Ok(())
}

/// Drops capability `cap` from the bounding set (`PR_CAPBSET_DROP`; needs `CAP_SETPCAP`).
/// rustix takes only the capabilities it names; the kernel may know newer ones.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: prctl with PR_CAPBSET_DROP takes the capability number as a plain integer.
    cerr(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }.into())
        .map(drop)
}

/// Sets the effective, permitted and inheritable capability sets (`capset(2)`), given as
/// 64-bit masks as `/proc/<pid>/status` shows them.
pub fn set_capabilities(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    use rustix::thread::CapabilitySet as S;
    Ok(rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: S::from_bits_retain(effective),
            permitted: S::from_bits_retain(permitted),
            inheritable: S::from_bits_retain(inheritable),
        },
    )?)
}

/// `PR_SET_PDEATHSIG`: the kernel sends us `signal` when the thread that forked us exits (the
/// `enter` helper dies with the server that started it).
pub fn die_with_parent(signal: i32) -> io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes the signal number as a plain integer.
    cerr(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) }.into())
        .map(drop)
}

/// Undoes what a program must not inherit from us across `exec`: our blocked signals (the
/// mask survives exec) and the ignored SIGPIPE (ignored dispositions survive exec too).
pub fn reset_signals_for_exec() {
    // SAFETY: `set` is a local sigset_t filled by sigfillset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    default_sigpipe();
}

/// Makes `fd` the process's descriptor number `target` (0, 1 or 2), without close-on-exec.
pub fn dup_onto(fd: BorrowedFd<'_>, target: i32) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        // dup2 onto itself would keep FD_CLOEXEC: clear it instead.
        return Ok(rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?);
    }
    // SAFETY: dup2 takes two ints; `fd` is open for the duration of the call, and `target` is
    // one of the standard descriptors, which nothing in this process holds as an OwnedFd.
    cerr(unsafe { libc::dup2(fd.as_raw_fd(), target) }.into()).map(drop)
}

/// A pipe whose two ends close on `exec`: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Puts `fd` in non-blocking mode.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    Ok(rustix::fs::fcntl_setfl(
        fd,
        flags | rustix::fs::OFlags::NONBLOCK,
    )?)
}

/// Waits up to `timeout_ms` (-1: forever) until one of `fds` is ready for what its `write`
/// flag asks (readable, or writable); returns one flag per fd: ready, hung up or in error.
pub fn poll(fds: &[(BorrowedFd<'_>, bool)], timeout_ms: i32) -> io::Result<Vec<bool>> {
    use rustix::event::{PollFd, PollFlags};
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, write)| {
            let ev = if *write {
                PollFlags::OUT
            } else {
                PollFlags::IN
            };
            PollFd::new(fd, ev)
        })
        .collect();
    let timeout = (timeout_ms >= 0).then(|| rustix::event::Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    });
    match rustix::event::poll(&mut pfds, timeout.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}

/// How a child ended: `(exit code, terminating signal)`, one of them set.
pub type ExitInfo = (Option<i32>, Option<i32>);

/// Waits for child `pid` (blocking unless `nohang`); `None` while it still runs.
pub fn wait_child(pid: Pid, nohang: bool) -> io::Result<Option<ExitInfo>> {
    use rustix::process::WaitOptions;
    let pid = pid.0;
    let opts = if nohang {
        WaitOptions::NOHANG
    } else {
        WaitOptions::empty()
    };
    loop {
        match rustix::process::waitpid(Some(pid), opts) {
            Ok(Some((_, st))) => {
                if st.exited() || st.signaled() {
                    return Ok(Some((st.exit_status(), st.terminating_signal())));
                }
                if nohang {
                    return Ok(None);
                }
            }
            Ok(None) => return Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `signal` to process `pid` with `kill(2)` when it is our own child (not yet reaped,
/// so its PID cannot have been reused).
pub fn kill_child(pid: Pid, signal: i32) -> io::Result<()> {
    kill(pid, signal)
}

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | AT_RECURSIVE | OPEN_TREE_CLOEXEC)`: a detached
/// copy of the mount tree at `path` (a bind mount not yet attached anywhere), which can be
/// attached with `move_mount_onto` in another mount namespace.
///
/// # Errors
/// `ENOSYS` before Linux 5.2; `EPERM` without `CAP_SYS_ADMIN` over the mount namespace;
/// `EINVAL` for a tree that may not be cloned (some kernels refuse a detached source).
pub fn clone_tree(dirfd: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::AT_RECURSIVE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_SYMLINK_NOFOLLOW;
    Ok(rustix::mount::open_tree(dirfd, path, flags)?)
}

/// A detached, read-only copy of the mount tree `root` names (from `Root::of_pid` or
/// `Root::of_dir`), rooted at that very directory, every mount in it `nodev,nosuid,noexec,ro`
/// (and `noatime` where the mount's atime flags are not locked)
/// (`open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` then `mount_setattr(AT_RECURSIVE)`, Linux
/// 5.12+). Opening a device node through it fails with `EACCES` before any driver sees the
/// open; nothing can be written through it. The container's own mounts are not touched; the
/// copy goes when the descriptor is closed.
///
/// `open_tree` silently leaves out every *unbindable* mount below the one it clones: cloned
/// straight from the container's mounts, the copy would show what lies under such a mount
/// (the package's own file) where the container sees the mount (a file of its choosing), and
/// `rpm -V` would be blind to it. So the clone is made from a private copy of the whole
/// mount namespace (`unshare(CLONE_NEWNS)` copies unbindable mounts too, in one step under
/// the kernel's namespace lock), made private there (unbindable no more; the copy is no
/// peer of anything, so neither the container nor this machine sees a mount event and
/// nothing propagates into the view while we look). All of it is done by a short-lived
/// thread of ours that unshares its file-system context (`unshare(CLONE_FS)`, so that what
/// follows affects it alone), joins `mntns` (the container's `/proc/<pid>/ns/mnt`) when
/// given, moves its working directory to `root`, copies the namespace, clones, and ends,
/// taking the namespace copy with it (after it has handed the view over: it is not
/// waited for).
///
/// # Errors
/// `ENOSYS` before Linux 5.12; `EPERM` without `CAP_SYS_ADMIN`; `EINVAL` when `root` is in
/// another mount namespace than `mntns` (or ours) or our root is not a mount's root.
/// Callers fall back to looking without the copy.
pub fn read_only_view(root: BorrowedFd<'_>, mntns: Option<BorrowedFd<'_>>) -> io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    // The thread owns copies of both descriptors: it is not waited for. Its end tears its
    // namespace copy down, which waits for an RCU grace period (0.2 to 3 ms here), and the
    // caller has its view before that.
    let root = root.try_clone_to_owned()?;
    let mntns = mntns.map(|n| n.try_clone_to_owned()).transpose()?;
    let in_private_copy = move || -> io::Result<OwnedFd> {
        let (root, mntns) = (root.as_fd(), mntns.as_ref().map(|n| n.as_fd()));
        // SAFETY: only CLONE_FS is unshared (never CLONE_FILES, the case rustix's safety
        // note is about): this thread's root, working directory and mount namespace become
        // its own, and it ends when this closure returns.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS)? };
        if let Some(ns) = mntns {
            rustix::thread::move_into_link_name_space(
                ns,
                Some(rustix::thread::LinkNameSpaceType::Mount),
            )?;
        }
        rustix::process::fchdir(root)?;
        // SAFETY: only CLONE_NEWNS (never CLONE_FILES); its file-system context is this
        // thread's own already (above), so the copy is this thread's alone, and its root
        // and working directory move to the copies of their mounts.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)? };
        make_rprivate_root()?;
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        let tree = rustix::mount::open_tree(rustix::fs::CWD, ".", flags)?;
        // `struct mount_attr` of <linux/mount.h> (MOUNT_ATTR_SIZE_VER0).
        #[repr(C)]
        struct MountAttr {
            attr_set: u64,
            attr_clr: u64,
            propagation: u64,
            userns_fd: u64,
        }
        const MOUNT_ATTR_RDONLY: u64 = 0x1;
        const MOUNT_ATTR_NOSUID: u64 = 0x2;
        const MOUNT_ATTR_NODEV: u64 = 0x4;
        const MOUNT_ATTR_NOEXEC: u64 = 0x8;
        const MOUNT_ATTR_ATIME_MASK: u64 = 0x70; // MOUNT_ATTR__ATIME
        const MOUNT_ATTR_NOATIME: u64 = 0x10;
        let set = |attr: &MountAttr| {
            // SAFETY: `tree` is an open descriptor, the path is a NUL-terminated empty
            // string, and `attr` is a live `struct mount_attr` whose size is the one passed.
            cerr(unsafe {
                libc::syscall(
                    libc::SYS_mount_setattr,
                    tree.as_raw_fd(),
                    c"".as_ptr(),
                    libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
                    attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                )
            })
        };
        let mut attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY
                | MOUNT_ATTR_NOSUID
                | MOUNT_ATTR_NODEV
                | MOUNT_ATTR_NOEXEC
                | MOUNT_ATTR_NOATIME,
            attr_clr: MOUNT_ATTR_ATIME_MASK,
            propagation: 0,
            userns_fd: 0,
        };
        // `noatime` too, so that reading leaves no trace; a mount whose atime flags are
        // locked (copied into a user namespace) refuses that with EPERM: then without.
        if let Err(e) = set(&attr) {
            if e.raw_os_error() != Some(libc::EPERM) {
                return Err(e);
            }
            attr.attr_set &= !MOUNT_ATTR_NOATIME;
            attr.attr_clr = 0;
            set(&attr)?;
        }
        Ok(tree)
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("read-only-view".into())
        .spawn(move || {
            let _ = tx.send(in_private_copy());
        })?;
    rx.recv().unwrap_or_else(|_| {
        Err(io::Error::other(
            "the mount-namespace thread ended without an answer",
        ))
    })
}

/// `move_mount(tree, "", dirfd, path, MOVE_MOUNT_F_EMPTY_PATH)`: attaches the detached
/// mount `tree` (from `clone_tree` or `new_tmpfs`) on `path` relative to `dirfd`.
///
/// # Errors
/// `ENOSYS` before Linux 5.2; `ENOENT`/`ENOTDIR` when `path` is missing or of the wrong kind.
pub fn move_mount_onto(tree: BorrowedFd<'_>, dirfd: BorrowedFd<'_>, path: &str) -> io::Result<()> {
    Ok(rustix::mount::move_mount(
        tree,
        "",
        dirfd,
        path,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?)
}

/// A new, detached tmpfs (`fsopen("tmpfs")`, `fsconfig(CMD_CREATE)`, `fsmount`), mode 0755,
/// `nosuid,nodev`.
///
/// # Errors
/// `ENOSYS` before Linux 5.2; `EPERM` without `CAP_SYS_ADMIN` over the mount namespace.
pub fn new_tmpfs() -> io::Result<OwnedFd> {
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};
    let fs = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, "mode", "0755")?;
    rustix::mount::fsconfig_create(&fs)?;
    Ok(rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?)
}

/// `unshare(CLONE_NEWNS)`: this process gets a private copy of its current mount namespace;
/// its root and working directory move to the copies of their mounts.
///
/// # Errors
/// `EPERM` without `CAP_SYS_ADMIN` in the user namespace that owns the mount namespace.
pub fn unshare_mount_namespace() -> io::Result<()> {
    // SAFETY: only CLONE_NEWNS is unshared (never CLONE_FILES, the case rustix's safety
    // note is about), and the callers (the enter helper) are single-threaded.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)? };
    Ok(())
}

/// `mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)`: nothing mounted in our mount
/// namespace from now on propagates to the one it was copied from (nor back).
pub fn make_rprivate_root() -> io::Result<()> {
    use rustix::mount::MountPropagationFlags;
    Ok(rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?)
}

/// A new pseudo-terminal from our own `/dev/ptmx`: `(primary, secondary)`, both close-on-exec,
/// neither our controlling terminal. The secondary is opened from the primary
/// (`TIOCGPTPEER`, Linux 4.13+), so no path in `/dev/pts` is looked up.
///
/// # Errors
/// `ENOENT` when this mount namespace has no `/dev/ptmx`; those of `posix_openpt(3)`.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    // SAFETY: posix_openpt returns a new descriptor or -1; on success nothing else owns it,
    // so wrapping it in an OwnedFd is sound. unlockpt and the ioctl take that live fd and
    // plain integer flags; TIOCGPTPEER returns a new descriptor we then own alone.
    unsafe {
        let fd = cerr(libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC).into())?;
        let primary = OwnedFd::from_raw_fd(fd as i32);
        cerr(libc::unlockpt(primary.as_raw_fd()).into())?;
        let peer = cerr(
            libc::ioctl(
                primary.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
            .into(),
        )?;
        Ok((primary, OwnedFd::from_raw_fd(peer as i32)))
    }
}

/// A terminal's window size: rows, columns, and the pixel sizes some programs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

/// `ioctl(TIOCGWINSZ)`: the window size of terminal `fd`.
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<WinSize> {
    // SAFETY: `ws` is a zeroed POD the ioctl fills; `fd` is live for the call.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        cerr(libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws).into())?;
        Ok(WinSize {
            rows: ws.ws_row,
            cols: ws.ws_col,
            xpixel: ws.ws_xpixel,
            ypixel: ws.ws_ypixel,
        })
    }
}

/// `ioctl(TIOCSWINSZ)`: sets the window size of terminal `fd` (its foreground process group
/// gets SIGWINCH when it changes).
pub fn set_window_size(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: size.xpixel,
        ws_ypixel: size.ypixel,
    };
    // SAFETY: the ioctl reads `ws`, a live local; `fd` is live for the call.
    cerr(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) }.into()).map(drop)
}

/// A terminal's settings as they were, to put back (`restore_terminal`).
pub struct TerminalMode(libc::termios);

/// Puts terminal `fd` in raw mode (no echo, no line editing, no signals from ^C: every byte
/// goes to the program, whose own terminal handles them) and returns the previous settings.
pub fn make_raw(fd: BorrowedFd<'_>) -> io::Result<TerminalMode> {
    // SAFETY: `saved` is a zeroed POD that tcgetattr fills before it is read; cfmakeraw
    // edits a copy of it in place; `fd` is live for the calls.
    unsafe {
        let mut saved: libc::termios = std::mem::zeroed();
        cerr(libc::tcgetattr(fd.as_raw_fd(), &mut saved).into())?;
        let mut raw = saved;
        libc::cfmakeraw(&mut raw);
        cerr(libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &raw).into())?;
        Ok(TerminalMode(saved))
    }
}

/// Puts back settings `make_raw` returned.
pub fn restore_terminal(fd: BorrowedFd<'_>, mode: &TerminalMode) -> io::Result<()> {
    // SAFETY: tcsetattr reads the live termios in `mode`; `fd` is live for the call.
    cerr(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSADRAIN, &mode.0) }.into()).map(drop)
}

/// In a child before `exec`: a new session (`setsid`), with terminal `fd` (already dup'ed
/// onto 0) as its controlling terminal (`TIOCSCTTY`): job control and ^C then work in it.
pub fn new_session_with_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::process::setsid()?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal); `fd` is live.
    cerr(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }.into()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No token while another thread runs (the test harness's threads aside, this one is
    /// held open until the check is done); `enter`'s tests take the token in a helper
    /// process that has one thread.
    #[test]
    fn pids_are_positive_pid_ts() {
        assert!(Pid::new(0).is_none(), "0 is `kill`'s own process group");
        assert!(
            Pid::new(u32::MAX).is_none(),
            "it would be -1, every process"
        );
        assert!(Pid::new(1 << 31).is_none());
        assert_eq!(Pid::new(1).map(Pid::get), Some(1));
        assert_eq!(
            Pid::new(i32::MAX as u32).map(|p| p.to_string()),
            Some(i32::MAX.to_string())
        );
    }

    #[test]
    fn no_token_with_a_second_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        assert!(single_threaded().is_none());
        drop(tx);
        t.join().unwrap();
    }
}
