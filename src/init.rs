//! Process duties: PID 1 of a container (reap every child, forward signals, exit with the
//! server's status) and, when not PID 1, a child subreaper; and the stop protocol every role
//! shares (SIGTERM/SIGINT: stop accepting, finish what is in flight, exit 0).
//!
//! Invariant: signals are blocked before any thread exists, and read synchronously with
//! `sigtimedwait` from one loop; no signal handler runs anywhere. PID 1 never exits from
//! inside its loop except with the server's status: a PID 1 death kills the container.

use std::process::Command;
use std::time::Duration;

/// The signals PID 1 (and `sidecar exec`) pass on to the program they run.
pub const FORWARDED: [i32; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Blocks every signal we handle synchronously. Call first thing in `main`, single-threaded.
pub fn block_signals() {
    let mut all = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    if let Err(e) = crate::sys::block_signals(&all) {
        eprintln!("sidecar: cannot block signals: {e}");
    }
}

/// As PID 1: runs this same command line as a child (which is then not PID 1 and serves),
/// forwards signals to it, reaps every process re-parented to us, and exits with the child's
/// status once it has exited.
pub fn run_as_pid1() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // std resets the signal mask and SIGPIPE in the child before exec.
    let child = match Command::new("/proc/self/exe").args(&args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sidecar: as PID 1, cannot start the server: {e}");
            std::process::exit(125);
        }
    };
    let Some(server) = crate::sys::Pid::new(child.id()) else {
        eprintln!(
            "sidecar: as PID 1, the server's PID {} is not a PID",
            child.id()
        );
        std::process::exit(125);
    };
    // The child has its own copy of the environment: our secrets are no longer needed here.
    // No thread has been started: this is the process's first act.
    match crate::sys::single_threaded() {
        Some(t) => {
            crate::sys::wipe_env_var(t, "SIDECAR_PASSWORD");
            crate::sys::wipe_env_var(t, "SIDECAR_USER");
        }
        None => {
            eprintln!("sidecar: as PID 1, not single-threaded: the secrets stay in its environment")
        }
    }
    let _ = crate::sys::set_non_dumpable();
    let mut watched = FORWARDED.to_vec();
    watched.push(libc::SIGCHLD);
    // From here on we are not allowed to bail: a PID 1 death kills the container.
    loop {
        if let Some((sig, _)) = crate::sys::wait_signal(&watched, 1000) {
            if sig != libc::SIGCHLD {
                let _ = crate::sys::kill(server, sig);
            }
        }
        while let Some((pid, status)) = crate::sys::reap_any() {
            if pid == server {
                // Reap what is left, then leave with the server's status.
                while crate::sys::reap_any().is_some() {}
                std::process::exit(status);
            }
        }
    }
}

/// Not PID 1: become the subreaper of what we start, so orphans of our helpers come to us
/// (and are reaped by `reap_orphans`, not left as zombies).
pub fn become_subreaper() {
    let _ = crate::sys::set_child_subreaper();
}

/// The children that some thread spawned and will wait for itself: the orphan reaper must
/// not take their exit status. Held while spawning, so a child that exits at once is
/// registered before the reaper can look at it.
static OWNED: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn owned() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<u32>> {
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spawns `cmd` as a child its caller will wait for (every spawn in the server goes here).
pub fn spawn(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut owned = owned();
    let child = cmd.spawn()?;
    owned.insert(child.id());
    Ok(child)
}

/// Waits for a child from `spawn` and forgets it.
pub fn wait(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    let status = child.wait();
    owned().remove(&child.id());
    status
}

/// Reaps exited children nobody waits for (orphans re-parented to us as subreaper). Stops
/// at the first exited child that has an owner: it will be reaped by its owner shortly.
pub fn reap_orphans() {
    let owned = owned();
    while let Some(pid) = crate::sys::peek_exited_child() {
        if owned.contains(&pid.get()) {
            break;
        }
        crate::sys::reap(pid);
    }
}

/// Waits until SIGTERM or SIGINT arrives (the caller blocked them before starting threads).
/// `tick` runs about every 500 ms; it may reap orphans.
pub fn wait_for_stop(mut tick: impl FnMut()) -> i32 {
    let watched = [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD, libc::SIGHUP];
    loop {
        match crate::sys::wait_signal(&watched, 500) {
            Some((sig, _)) if sig == libc::SIGTERM || sig == libc::SIGINT => return sig,
            _ => tick(),
        }
    }
}

/// How long a stop waits for in-flight requests before giving up on those that are not
/// package transactions (which are never cut: see `api`).
pub const STOP_GRACE: Duration = Duration::from_secs(30);
