//! Unix sockets as `ss` lists them: from the kernel over netlink (`NETLINK_SOCK_DIAG`,
//! `unix_diag`), which gives each socket's name as counted bytes. `/proc/net/unix` prints a
//! name's bytes raw, newlines included, so a name that holds a newline followed by a whole
//! forged record cannot be told from two sockets there; netlink has no such ambiguity.
//!
//! A netlink socket answers for the network namespace it was made in, so it is made by a
//! short-lived thread that first joins the container's network namespace (a thread may do
//! that alone, even in the multi-threaded server: only mount and user namespaces need the
//! whole process). That takes `CAP_SYS_ADMIN` over the namespace: without it the caller falls
//! back to `/proc/<pid>/net/unix`.
//!
//! Invariant: nothing but that one thread changes namespace, and it ends before we return.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketType};

use super::Socket;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x01;
const NLM_F_DUMP: u16 = 0x300;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UNIX_DIAG_NAME: u16 = 0;

/// The unix sockets of process `pid`'s network namespace, asked of the kernel from inside it.
///
/// # Errors
/// `EPERM` without `CAP_SYS_ADMIN` over the namespace (the caller then reads `/proc`).
pub fn unix_sockets(pid: u32) -> io::Result<Vec<Socket>> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            dump()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the netlink thread panicked")))
    })
}

/// Sends the dump request on a fresh `NETLINK_SOCK_DIAG` socket and parses every reply.
fn dump() -> io::Result<Vec<Socket>> {
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        Some(netlink::SOCK_DIAG),
    )?;
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&40u32.to_ne_bytes()); // nlmsg_len
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
                                                // struct unix_diag_req
    req.push(libc::AF_UNIX as u8);
    req.push(0); // protocol
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    req.extend_from_slice(&UDIAG_SHOW_NAME.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // no cookie
    rustix::net::send(&fd, &req, SendFlags::empty())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        if n == 0 {
            return Ok(out);
        }
        if parse_replies(&buf[..n], &mut out)? {
            return Ok(out);
        }
    }
}

/// Parses one datagram of netlink messages into `out`; true once `NLMSG_DONE` is seen.
pub fn parse_replies(mut b: &[u8], out: &mut Vec<Socket>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    while b.len() >= 16 {
        let len = u32::from_ne_bytes(b[0..4].try_into().map_err(|_| bad())?) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return Err(bad());
        }
        let body = &b[16..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = body
                    .get(0..4)
                    .map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
                    .unwrap_or(0);
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_unix_msg(body).ok_or_else(bad)?),
            _ => {}
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(false)
}

/// `struct unix_diag_msg` (family, type, state, pad, inode, cookie) and its attributes.
fn parse_unix_msg(m: &[u8]) -> Option<Socket> {
    let kind = *m.get(1)?;
    let state = *m.get(2)?;
    let inode = u32::from_ne_bytes(m.get(4..8)?.try_into().ok()?) as u64;
    let mut name = None;
    let mut attrs = m.get(16..)?;
    while attrs.len() >= 4 {
        let alen = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let atype = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if alen < 4 || alen > attrs.len() {
            return None;
        }
        if atype == UNIX_DIAG_NAME {
            name = Some(display_name(&attrs[4..alen]));
        }
        attrs = attrs.get((alen + 3) & !3..).unwrap_or(&[]);
    }
    let (local, local_bytes) = match name {
        Some(n) => {
            let (text, bytes) = crate::files::json_name(&n);
            (Some(text), bytes)
        }
        None => (None, None),
    };
    Some(Socket {
        protocol: "unix",
        state: match state {
            10 => "LISTEN",
            1 => "ESTAB",
            2 => "SYN-SENT",
            11 => "CLOSING",
            _ => "UNCONN",
        },
        local,
        local_bytes,
        remote: None,
        kind: Some(match kind {
            1 => "stream",
            2 => "dgram",
            5 => "seqpacket",
            _ => "unknown",
        }),
        inode,
        uid: None,
        processes: Vec::new(),
    })
}

/// A socket's name as `/proc/net/unix` and `ss` write it: a path up to its NUL; an abstract
/// name with `@` for its leading NUL (and for any NUL inside it).
fn display_name(raw: &[u8]) -> Vec<u8> {
    match raw.first() {
        Some(0) => raw.iter().map(|&b| if b == 0 { b'@' } else { b }).collect(),
        _ => raw.iter().take_while(|&&b| b != 0).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u8, state: u8, inode: u32, name: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![libc::AF_UNIX as u8, kind, state, 0];
        body.extend_from_slice(&inode.to_ne_bytes());
        body.extend_from_slice(&[0; 8]);
        if let Some(n) = name {
            body.extend_from_slice(&((4 + n.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&UNIX_DIAG_NAME.to_ne_bytes());
            body.extend_from_slice(n);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = ((16 + body.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend(body);
        m
    }

    #[test]
    fn replies_are_parsed_with_exact_names() {
        let mut d = msg(1, 10, 41, Some(b"/run/two\nlines\0"));
        d.extend(msg(2, 7, 42, Some(b"\0abs\0tract")));
        d.extend(msg(1, 1, 43, None));
        d.extend(msg(5, 10, 44, Some(b"/caf\xe9\0")));
        let mut done = 16u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&[0; 10]);
        d.extend(done);
        let mut out = Vec::new();
        assert!(parse_replies(&d, &mut out).unwrap());
        let got: Vec<_> = out
            .iter()
            .map(|s| {
                (
                    s.inode,
                    s.kind,
                    s.state,
                    s.local.as_deref(),
                    s.local_bytes.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (41, Some("stream"), "LISTEN", Some("/run/two\nlines"), None),
                (42, Some("dgram"), "UNCONN", Some("@abs@tract"), None),
                (43, Some("stream"), "ESTAB", None, None),
                (
                    44,
                    Some("seqpacket"),
                    "LISTEN",
                    Some("/caf\u{FFFD}"),
                    Some("/caf%E9")
                ),
            ]
        );
        assert!(parse_replies(&d[..10], &mut Vec::new()).is_ok_and(|done| !done));
        let mut broken = d.clone();
        broken[0] = 200;
        assert!(parse_replies(&broken, &mut Vec::new()).is_err());
    }
}
