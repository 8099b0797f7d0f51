//! A container's sockets, like `ss -tuanp`: TCP and UDP over IPv4 and IPv6, and unix
//! sockets, of the container's network namespace, with the processes that hold them.
//!
//! `/proc/<pid>/net/*` shows the network namespace of `pid`, so reading it for one of the
//! container's processes gives the container's sockets without entering anything. Owners come
//! from the container's processes' descriptors (`/proc/<pid>/fd/N -> socket:[inode]`).
//! Parsers are pure functions over the text of those files.
//!
//! Invariant: only the container's own processes are searched for owners, so a socket is
//! never attributed to a process of another container sharing the network namespace (a pod).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::containers::Container;
use crate::procfs;

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
}

/// One socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    /// `tcp`, `tcp6`, `udp`, `udp6` or `unix`.
    pub protocol: &'static str,
    /// As `ss` names it: `LISTEN`, `ESTAB`, `TIME-WAIT`, `UNCONN`, …
    pub state: &'static str,
    /// `address:port` (`[v6]:port`), or for unix sockets the path (`@name` when abstract).
    pub local: Option<String>,
    pub remote: Option<String>,
    /// Unix sockets: `stream`, `dgram` or `seqpacket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub inode: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    pub processes: Vec<Owner>,
}

/// `ss`'s names for the kernel's TCP states (`include/net/tcp_states.h`).
fn tcp_state(code: u8) -> &'static str {
    match code {
        0x01 => "ESTAB",
        0x02 => "SYN-SENT",
        0x03 => "SYN-RECV",
        0x04 => "FIN-WAIT-1",
        0x05 => "FIN-WAIT-2",
        0x06 => "TIME-WAIT",
        0x07 => "UNCONN",
        0x08 => "CLOSE-WAIT",
        0x09 => "LAST-ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "SYN-RECV",
        _ => "UNKNOWN",
    }
}

/// Decodes `0100007F:1F90` (IPv4) or 32 hex digits `:port` (IPv6): the address is in the
/// kernel's byte order, 32-bit words of host (little-endian) order; the port is big-endian.
pub fn parse_address(s: &str) -> Option<String> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    match addr.len() {
        8 => {
            let v = u32::from_str_radix(addr, 16).ok()?;
            Some(format!("{}:{port}", Ipv4Addr::from(v.to_le_bytes())))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for (i, word) in bytes.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                word.copy_from_slice(&w.to_le_bytes());
            }
            Some(format!("[{}]:{port}", Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Parses `/proc/net/{tcp,tcp6,udp,udp6}` (the header line is skipped).
pub fn parse_inet(text: &str, protocol: &'static str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
            let state = if protocol.starts_with("udp") && state == 0x01 {
                "ESTAB"
            } else {
                tcp_state(state)
            };
            Some(Socket {
                protocol,
                state,
                local: Some(parse_address(f.get(1)?)?),
                remote: Some(parse_address(f.get(2)?)?),
                kind: None,
                inode: f.get(9)?.parse().ok()?,
                uid: f.get(7)?.parse().ok(),
                processes: Vec::new(),
            })
        })
        .collect()
}

/// Parses `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
pub fn parse_unix(text: &str) -> Vec<Socket> {
    const ACCEPTCON: u32 = 0x0001_0000;
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let kind = match u16::from_str_radix(f.get(4)?, 16).ok()? {
                1 => "stream",
                2 => "dgram",
                5 => "seqpacket",
                _ => "unknown",
            };
            let state = match (flags & ACCEPTCON != 0, f.get(5)?) {
                (true, _) => "LISTEN",
                (false, &"03") => "ESTAB",
                (false, &"02") => "SYN-SENT",
                (false, &"04") => "CLOSING",
                _ => "UNCONN",
            };
            // The path may hold spaces: it is everything after the seventh field.
            let path = after_fields(l, 7)
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            Some(Socket {
                protocol: "unix",
                state,
                local: path,
                remote: None,
                kind: Some(kind),
                inode: f.get(6)?.parse().ok()?,
                uid: None,
                processes: Vec::new(),
            })
        })
        .collect()
}

/// What follows the first `n` whitespace-separated fields of `line`.
fn after_fields(line: &str, n: usize) -> Option<&str> {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    Some(rest)
}

/// The inode in a descriptor link `socket:[12345]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The container's sockets with their owners, TCP first, then UDP, then unix.
pub fn list(c: &Container) -> std::io::Result<Vec<Socket>> {
    // The first stand-in still alive: one that exits meanwhile is not the container's end.
    let pid = c.live_pid()?;
    let mut all = Vec::new();
    for (file, protocol) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp6"),
        ("udp", "udp"),
        ("udp6", "udp6"),
    ] {
        // A kernel without IPv6 has no tcp6/udp6: that is no error.
        if let Ok(text) = procfs::read(pid, &format!("net/{file}")) {
            all.extend(parse_inet(&text, protocol));
        }
    }
    all.extend(parse_unix(&procfs::read(pid, "net/unix")?));

    let mut owners: BTreeMap<u64, Vec<Owner>> = BTreeMap::new();
    for (i, &p) in c.pids.iter().enumerate() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        let comm = c.stats.get(i).map(|s| s.comm.clone()).unwrap_or_default();
        for fd in fds.flatten() {
            let name = fd.file_name();
            let Some(inode) = procfs::link(p, &format!("fd/{}", name.to_string_lossy()))
                .ok()
                .and_then(|l| socket_inode(&l))
            else {
                continue;
            };
            let list = owners.entry(inode).or_default();
            if !list.iter().any(|o| o.pid == p) {
                list.push(Owner {
                    pid: p,
                    comm: comm.clone(),
                });
            }
        }
    }
    for s in &mut all {
        if let Some(o) = owners.get(&s.inode) {
            s.processes = o.clone();
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIX}/{name}")).unwrap()
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("0100007F:1F90").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            parse_address("00000000:0016").as_deref(),
            Some("0.0.0.0:22")
        );
        assert_eq!(
            parse_address("00000000000000000000000001000000:0050").as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            parse_address("0000000000000000FFFF00000100007F:01BB").as_deref(),
            Some("[::ffff:127.0.0.1]:443")
        );
        assert_eq!(parse_address("zz:1"), None);
        assert_eq!(parse_address("0100007F"), None);
    }

    #[test]
    fn tcp_and_udp_tables() {
        let tcp = parse_inet(&fixture("net-tcp"), "tcp");
        assert_eq!(tcp.len(), 2);
        assert_eq!(
            (tcp[0].state, tcp[0].local.as_deref(), tcp[0].inode),
            ("LISTEN", Some("0.0.0.0:2024"), 1077)
        );
        assert_eq!(
            (tcp[1].state, tcp[1].remote.as_deref()),
            ("ESTAB", Some("127.0.0.1:41170"))
        );
        assert_eq!(tcp[1].uid, Some(1000));
        let udp = parse_inet(&fixture("net-udp6"), "udp6");
        assert_eq!(
            (udp[0].state, udp[0].local.as_deref()),
            ("UNCONN", Some("[::]:5353"))
        );
        assert!(parse_inet("header only\n", "tcp").is_empty());
        assert!(parse_inet("h\n garbage line\n", "tcp").is_empty());
    }

    #[test]
    fn unix_table() {
        let u = parse_unix(&fixture("net-unix"));
        assert_eq!(u.len(), 4);
        assert_eq!(
            (u[0].state, u[0].kind, u[0].local.as_deref()),
            ("LISTEN", Some("stream"), Some("/run/app.sock"))
        );
        assert_eq!((u[1].state, u[1].local.as_deref()), ("ESTAB", None));
        assert_eq!(
            (u[2].kind, u[2].local.as_deref()),
            (Some("dgram"), Some("@abstract name"))
        );
        assert_eq!(u[3].local.as_deref(), Some("/tmp/with space.sock"));
    }

    #[test]
    fn descriptor_links() {
        assert_eq!(socket_inode("socket:[1077]"), Some(1077));
        assert_eq!(socket_inode("pipe:[1077]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }
}
