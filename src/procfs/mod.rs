//! Reading `/proc`: pure parsers for the files we use (`stat`, `status`, `cgroup`, `limits`,
//! `/etc/passwd`) and thin readers that fetch them for one PID. Parsers take `&str` and never
//! fail on odd input: a field they cannot read is `None`, not a panic.
//!
//! Invariant: nothing here follows a path inside a container's root by string concatenation
//! (`/proc/<pid>/root/...`); that is `rootfs`'s job.

mod parse;
pub use parse::*;

use std::fmt::Write as _;
use std::fs;
use std::io;

/// Linux reports times in `/proc/<pid>/stat` in USER_HZ, which is 100 on every architecture.
pub const TICKS_PER_SECOND: u64 = 100;

/// Reads a whole `/proc` file with few system calls: open, read until a read returns 0,
/// close. `std::fs::read` also calls `fstat` and grows its buffer from a size hint that procfs
/// reports as 0; listing every process of a node reads thousands of these files, so it shows.
///
/// A short read is *not* the end of a `/proc` file: seq_file tables (`net/tcp`, `net/unix`,
/// `mountinfo`) hand back about a page per `read` whatever the buffer's size, so only a read
/// of 0 ends the file (40 TCP listeners are more than a page).
pub fn read_bytes(path: &str) -> io::Result<Vec<u8>> {
    with_scratch(|s| Ok(read_into(path, &mut s.buf)?.to_vec()))
}

/// Reads `/proc/<pid>/<file>` as text (lossy: `comm` and `cmdline` may hold any bytes).
pub fn read(pid: u32, file: &str) -> io::Result<String> {
    with_bytes(pid, file, |b| String::from_utf8_lossy(b).into_owned())
}

/// Calls `f` with the text of `/proc/<pid>/<file>` (lossy UTF-8).
pub fn with_text<T>(pid: u32, file: &str, f: impl FnOnce(&str) -> T) -> io::Result<T> {
    with_bytes(pid, file, |bytes| match std::str::from_utf8(bytes) {
        Ok(text) => f(text),
        Err(_) => f(&String::from_utf8_lossy(bytes)),
    })
}

/// Calls `f` with the bytes of `/proc/<pid>/<file>`, read into a per-thread buffer: the hot
/// path of a listing allocates no temporaries per file. (musl's allocator maps and unmaps a
/// page for short-lived allocations whose group empties, which doubled `sidecar ps`'s time.)
pub fn with_bytes<T>(pid: u32, file: &str, f: impl FnOnce(&[u8]) -> T) -> io::Result<T> {
    with_scratch(|s| {
        s.path.clear();
        let _ = write!(s.path, "/proc/{pid}/{file}");
        Ok(f(read_into(&s.path, &mut s.buf)?))
    })
}

/// The target of a symlink under `/proc/<pid>/` (`exe`, `cwd`, `fd/N`, `ns/mnt`).
pub fn link(pid: u32, file: &str) -> io::Result<String> {
    with_scratch(|s| {
        s.path.clear();
        let _ = write!(s.path, "/proc/{pid}/{file}");
        let target = rustix::fs::readlink(s.path.as_str(), std::mem::take(&mut s.link))?;
        let text = String::from_utf8_lossy(target.as_bytes()).into_owned();
        s.link = target.into_bytes();
        Ok(text)
    })
}

struct Scratch {
    path: String,
    buf: Vec<u8>,
    link: Vec<u8>,
}

/// Runs `f` with this thread's scratch buffers (`buf` zero-filled, its length its size). A
/// nested call (none today) gets fresh buffers rather than a panic.
fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> io::Result<T>) -> io::Result<T> {
    use std::cell::RefCell;
    let fresh = || Scratch {
        path: String::with_capacity(64),
        buf: vec![0; 16 << 10],
        link: Vec::with_capacity(256),
    };
    thread_local! {
        static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(fresh)),
        Err(_) => f(&mut fresh()),
    })
}

/// Reads the file at `path` into `buf` (growing it as needed) and returns the bytes read:
/// everything up to the read that returns 0, never less (see `read_bytes`).
fn read_into<'a>(path: &str, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let len = read_to_end_into(&fd, buf)?;
    Ok(&buf[..len])
}

/// Reads `fd` until a read returns 0 (the only end of a `/proc` file), into `buf` from its
/// start, growing it as needed; returns the length read. Shared by every reader of `/proc`.
fn read_to_end_into(fd: impl std::os::fd::AsFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut len = 0;
    loop {
        if buf.len() - len < 4096 {
            let grown = (buf.len() * 2).max(16 << 10);
            buf.resize(grown, 0);
        }
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `/proc/<pid>/stat`, parsed.
pub fn stat(pid: u32) -> io::Result<Stat> {
    parse_stat(&read(pid, "stat")?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
}

/// `/proc/<pid>/cmdline` as its argument vector.
pub fn argv(pid: u32) -> io::Result<Vec<String>> {
    with_bytes(pid, "cmdline", split_nul)
}

/// `/proc/<pid>/environ` as `KEY=VALUE` strings.
pub fn environ(pid: u32) -> io::Result<Vec<String>> {
    with_bytes(pid, "environ", split_nul)
}

/// The inode of namespace `kind` of `pid` (`/proc/<pid>/ns/<kind>` reads `mnt:[4026531840]`).
pub fn namespace(pid: u32, kind: &str) -> Option<u64> {
    parse_ns_link(&link(pid, &format!("ns/{kind}")).ok()?)
}

/// Every numeric entry of `/proc`, sorted.
pub fn pids() -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The boot time (`btime` in `/proc/stat`), in seconds since the epoch.
pub fn boot_time() -> u64 {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The size of a memory page, for RSS in bytes.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}
