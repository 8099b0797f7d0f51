//! Reading `/proc`: pure parsers for the files we use (`stat`, `status`, `cgroup`, `limits`,
//! `/etc/passwd`) and thin readers that fetch them for one PID. Parsers take `&str` and never
//! fail on odd input: a field they cannot read is `None`, not a panic.
//!
//! Invariant: nothing here follows a path inside a container's root by string concatenation
//! (`/proc/<pid>/root/...`); that is `rootfs`'s job.

mod parse;
pub use parse::*;

use std::fs;
use std::io;
use std::path::PathBuf;

/// Linux reports times in `/proc/<pid>/stat` in USER_HZ, which is 100 on every architecture.
pub const TICKS_PER_SECOND: u64 = 100;

fn proc_path(pid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{file}"))
}

/// Reads `/proc/<pid>/<file>` as text (lossy: `comm` and `cmdline` may hold any bytes).
pub fn read(pid: u32, file: &str) -> io::Result<String> {
    let bytes = fs::read(proc_path(pid, file))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `/proc/<pid>/stat`, parsed.
pub fn stat(pid: u32) -> io::Result<Stat> {
    parse_stat(&read(pid, "stat")?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
}

/// `/proc/<pid>/cmdline` as its argument vector.
pub fn argv(pid: u32) -> io::Result<Vec<String>> {
    let bytes = fs::read(proc_path(pid, "cmdline"))?;
    Ok(split_nul(&bytes))
}

/// `/proc/<pid>/environ` as `KEY=VALUE` strings.
pub fn environ(pid: u32) -> io::Result<Vec<String>> {
    let bytes = fs::read(proc_path(pid, "environ"))?;
    Ok(split_nul(&bytes))
}

/// The target of a symlink under `/proc/<pid>/` (`exe`, `cwd`, `fd/N`, `ns/mnt`).
pub fn link(pid: u32, file: &str) -> io::Result<String> {
    Ok(fs::read_link(proc_path(pid, file))?
        .to_string_lossy()
        .into_owned())
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
