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
    /// `address:port` (`[v6]:port`), or for unix sockets the path (`@name` when abstract),
    /// exactly (a newline or leading blanks included); U+FFFD where it is not UTF-8.
    pub local: Option<String>,
    /// Only when the unix path is not UTF-8: its bytes, percent-encoded (`caf%E9.sock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_bytes: Option<String>,
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
                local_bytes: None,
                remote: Some(parse_address(f.get(2)?)?),
                kind: None,
                inode: f.get(9)?.parse().ok()?,
                uid: f.get(7)?.parse().ok(),
                processes: Vec::new(),
            })
        })
        .collect()
}

/// Parses `/proc/net/unix`: `Num: RefCount Protocol Flags Type St Inode[ Path]`, one record
/// per socket. The kernel writes the path's bytes as they are (a newline, leading blanks and
/// bytes that are not UTF-8 included; abstract names start with `@`, their NULs shown as `@`),
/// so records are parsed by fields, not by lines: a record starts with its fixed fields, the
/// path is every byte after the one space that follows the inode, up to the newline that is
/// followed by the next record's fixed fields (or by the end of the file).
pub fn parse_unix(text: &[u8]) -> Vec<Socket> {
    let Some(mut pos) = text.iter().position(|&b| b == b'\n').map(|i| i + 1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while pos < text.len() {
        let Some((fields, after)) = unix_fields(&text[pos..]) else {
            // Not a record: skip the line (nothing the kernel writes).
            pos += text[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| i + 1);
            continue;
        };
        let rest = &text[pos + after..];
        let (path, used) = match rest.first() {
            Some(b' ') => {
                let end = unix_record_end(rest);
                (Some(&rest[1..end]), (end + 1).min(rest.len()))
            }
            Some(b'\n') => (None, 1),
            _ => (None, rest.len()),
        };
        pos += after + used;
        out.push(unix_socket(&fields, path));
    }
    out
}

/// The fixed fields of a `/proc/net/unix` record: flags, type, state, inode.
struct UnixFields {
    flags: u32,
    kind: u16,
    st: u8,
    inode: u64,
}

/// Parses the fixed fields at the start of `b` (`%pK: %08X %08X %08X %04X %02X %5lu`), and
/// returns them with the length they take.
fn unix_fields(b: &[u8]) -> Option<(UnixFields, usize)> {
    let colon = b.iter().take(17).position(|&c| c == b':')?;
    if !(colon == 8 || colon == 16) || !b[..colon].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut i = colon + 1;
    let mut hex = |width: usize| -> Option<u32> {
        if b.get(i) != Some(&b' ') {
            return None;
        }
        let f = b.get(i + 1..i + 1 + width)?;
        i += 1 + width;
        if !f.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(f).ok()?, 16).ok()
    };
    let _refcount = hex(8)?;
    let _protocol = hex(8)?;
    let flags = hex(8)?;
    let kind = hex(4)? as u16;
    let st = hex(2)? as u8;
    // `%5lu`: one separating space, then the inode right-aligned in at least five columns.
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let inode = std::str::from_utf8(&b[i..i + digits]).ok()?.parse().ok()?;
    i += digits;
    match b.get(i) {
        None | Some(b' ') | Some(b'\n') => {}
        _ => return None,
    }
    Some((
        UnixFields {
            flags,
            kind,
            st,
            inode,
        },
        i,
    ))
}

/// Where the path that starts `rest` (after its leading space) ends: the first newline that
/// is followed by the fixed fields of a record, or by nothing.
fn unix_record_end(rest: &[u8]) -> usize {
    let mut from = 1;
    while let Some(nl) = rest[from..].iter().position(|&b| b == b'\n') {
        let nl = from + nl;
        let next = &rest[nl + 1..];
        if next.is_empty() || unix_fields(next).is_some() {
            return nl;
        }
        from = nl + 1;
    }
    rest.len()
}

fn unix_socket(f: &UnixFields, path: Option<&[u8]>) -> Socket {
    const ACCEPTCON: u32 = 0x0001_0000;
    let kind = match f.kind {
        1 => "stream",
        2 => "dgram",
        5 => "seqpacket",
        _ => "unknown",
    };
    let state = match (f.flags & ACCEPTCON != 0, f.st) {
        (true, _) => "LISTEN",
        (false, 3) => "ESTAB",
        (false, 2) => "SYN-SENT",
        (false, 4) => "CLOSING",
        _ => "UNCONN",
    };
    let (local, local_bytes) = match path {
        Some(p) => {
            let (text, bytes) = crate::files::json_name(p);
            (Some(text), bytes)
        }
        None => (None, None),
    };
    Socket {
        protocol: "unix",
        state,
        local,
        local_bytes,
        remote: None,
        kind: Some(kind),
        inode: f.inode,
        uid: None,
        processes: Vec::new(),
    }
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
    all.extend(procfs::with_bytes(pid, "net/unix", parse_unix)?);

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
        let u = parse_unix(fixture("net-unix").as_bytes());
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
    fn unix_names_are_kept_exactly() {
        // As the kernel writes them: `%5lu` inodes, the path's bytes raw (newlines, leading
        // blanks, bytes that are not UTF-8), a record with no path at all.
        let mut t = b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec();
        let rec = |inode: &str, path: &[u8]| {
            let mut r = format!("0000000000000000: 00000002 00000000 00010000 0001 01 {inode:>5}")
                .into_bytes();
            if !path.is_empty() {
                r.push(b' ');
                r.extend_from_slice(path);
            }
            r.push(b'\n');
            r
        };
        t.extend(rec("41", b"/run/two\nlines.sock"));
        t.extend(rec("42", b"   leading blanks"));
        t.extend(rec("43", b""));
        t.extend(rec("44", b"/tmp/caf\xe9.sock"));
        t.extend(rec("123456", b"@abs\n\n 00: not a record\n"));
        t.extend(rec("45", b"/end"));
        let u = parse_unix(&t);
        let got: Vec<(u64, Option<&str>, Option<&str>)> = u
            .iter()
            .map(|s| (s.inode, s.local.as_deref(), s.local_bytes.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (41, Some("/run/two\nlines.sock"), None),
                (42, Some("   leading blanks"), None),
                (43, None, None),
                (44, Some("/tmp/caf\u{FFFD}.sock"), Some("/tmp/caf%E9.sock")),
                (123456, Some("@abs\n\n 00: not a record\n"), None),
                (45, Some("/end"), None),
            ]
        );
        assert!(u.iter().all(|s| s.state == "LISTEN"));
        assert!(parse_unix(b"").is_empty());
        assert!(parse_unix(b"header\ngarbage\n").is_empty());
    }

    #[test]
    fn descriptor_links() {
        assert_eq!(socket_inode("socket:[1077]"), Some(1077));
        assert_eq!(socket_inode("pipe:[1077]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }
}
