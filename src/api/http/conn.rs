//! Listening sockets and the connections they accept: TCP, unix (created mode 0600, or 0660
//! for a named group, peers known by uid through `SO_PEERCRED`), and TLS over TCP (rustls);
//! and `Stream`, a connection whose every read and write must end before a deadline.
//!
//! Invariant: no read or write on a client's connection blocks past the deadline its caller
//! set, and a connection can always be shut down from another thread (`Closer`), which
//! wakes whatever is blocked on it.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rustix::fs::Mode;

/// How a unix socket is created: mode 0600 (only root, or whoever runs the sidecar, may
/// connect), or 0660 and this group (`serve --unix-group`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnixAccess {
    pub group: Option<u32>,
}

/// A listening socket: TCP or unix.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `host:port`, `[v6]:port` or `unix:/path`. A stale socket file is replaced; the
    /// new one is created with mode 0600 whatever the umask (0660 and `access.group`'s group
    /// when one is named), so no other local user can connect, not even for a moment.
    pub fn bind(addr: &str, access: UnixAccess) -> io::Result<Listener> {
        let Some(path) = addr.strip_prefix("unix:") else {
            return Ok(Listener::Tcp(TcpListener::bind(addr)?));
        };
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{path} exists and is not a socket: not replacing it"),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // bind(2) creates the file with the umask applied: 0177 leaves 0600, 0117 leaves
        // 0660 for a group. umask is process-wide; listeners are bound before any thread is
        // started. The mode is never changed afterwards by path (a chmod would follow a
        // symlink swapped in meanwhile); the group is set with lchown, which never does.
        let mask = if access.group.is_some() { 0o117 } else { 0o177 };
        let old = rustix::process::umask(Mode::from_raw_mode(mask));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old);
        let listener = bound?;
        if let Some(gid) = access.group {
            rustix::fs::chownat(
                rustix::fs::CWD,
                path,
                None,
                Some(rustix::fs::Gid::from_raw(gid)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(Listener::Unix(listener, path.into()))
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, Listener::Tcp(_))
    }

    /// Whether this is a TCP socket on a loopback address (where plain HTTP is fine).
    pub fn is_loopback(&self) -> bool {
        match self {
            Listener::Tcp(l) => l.local_addr().is_ok_and(|a| a.ip().is_loopback()),
            Listener::Unix(..) => true,
        }
    }

    /// What it is bound to, for logs (`127.0.0.1:8889`, `unix:/run/s.sock`).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }

    /// Accepts one connection; TCP ones are wrapped in TLS when `tls` is set (the handshake
    /// happens on the first read, under that read's deadline).
    pub(super) fn accept(&self, tls: Option<&Arc<rustls::ServerConfig>>) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                let _ = s.set_nodelay(true);
                match tls {
                    None => Ok(Conn::Tcp(s, a.ip())),
                    Some(cfg) => {
                        let session = rustls::ServerConnection::new(Arc::clone(cfg))
                            .map_err(io::Error::other)?;
                        let sock = TlsSocket {
                            sock: s,
                            deadline: None,
                        };
                        Ok(Conn::Tls(
                            Box::new(rustls::StreamOwned::new(session, sock)),
                            a.ip(),
                        ))
                    }
                }
            }
            Listener::Unix(l, _) => {
                let s = l.accept()?.0;
                let uid = rustix::net::sockopt::socket_peercred(&s)
                    .ok()
                    .map(|c| c.uid.as_raw());
                Ok(Conn::Unix(s, uid))
            }
        }
    }
}

/// One client connection.
pub(super) enum Conn {
    Tcp(TcpStream, IpAddr),
    /// With the peer's uid, when the kernel told it.
    Unix(UnixStream, Option<u32>),
    Tls(
        Box<rustls::StreamOwned<rustls::ServerConnection, TlsSocket>>,
        IpAddr,
    ),
}

/// The TCP socket under a TLS session. rustls reads (and writes) it several times inside
/// one call, until a record is whole: each of those is armed with what is left of the
/// deadline, so a record trickled a byte at a time cannot outlast it.
pub(super) struct TlsSocket {
    sock: TcpStream,
    deadline: Option<Instant>,
}

impl TlsSocket {
    fn arm(&self, read: bool) -> io::Result<()> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
            if read {
                self.sock.set_read_timeout(Some(left))?;
            } else {
                self.sock.set_write_timeout(Some(left))?;
            }
        }
        Ok(())
    }
}

impl Read for TlsSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(true)?;
        self.sock.read(buf)
    }
}

impl Write for TlsSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(false)?;
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// A handle that shuts a connection down from another thread.
pub(super) enum Closer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Closer {
    pub(super) fn shutdown(&self) {
        let _ = match self {
            Closer::Tcp(s) => s.shutdown(Shutdown::Both),
            Closer::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Conn {
    pub(super) fn closer(&self) -> io::Result<Closer> {
        Ok(match self {
            Conn::Tcp(s, _) => Closer::Tcp(s.try_clone()?),
            Conn::Tls(s, _) => Closer::Tcp(s.sock.sock.try_clone()?),
            Conn::Unix(s, _) => Closer::Unix(s.try_clone()?),
        })
    }

    pub(super) fn peer(&self) -> Option<IpAddr> {
        match self {
            Conn::Tcp(_, a) | Conn::Tls(_, a) => Some(*a),
            Conn::Unix(..) => None,
        }
    }

    pub(super) fn peer_uid(&self) -> Option<u32> {
        match self {
            Conn::Unix(_, uid) => *uid,
            _ => None,
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(..))
    }

    /// Whether the TLS client presented a certificate (verified by the handshake).
    pub(super) fn has_client_cert(&self) -> bool {
        match self {
            Conn::Tls(s, _) => s.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
            _ => false,
        }
    }

    /// Sets how long the next read (`read`) or write may block; for TLS, the deadline of
    /// every socket read and write rustls makes (it may write during a read and read
    /// during a write, and loops until a record is whole).
    fn set_timeout(&mut self, d: std::time::Duration, read: bool) -> io::Result<()> {
        let d = d.max(std::time::Duration::from_millis(1));
        match self {
            Conn::Tcp(s, _) if read => s.set_read_timeout(Some(d)),
            Conn::Tcp(s, _) => s.set_write_timeout(Some(d)),
            Conn::Unix(s, _) if read => s.set_read_timeout(Some(d)),
            Conn::Unix(s, _) => s.set_write_timeout(Some(d)),
            Conn::Tls(s, _) => {
                s.sock.deadline = Some(Instant::now() + d);
                Ok(())
            }
        }
    }

    /// Ends a TLS session politely (close_notify, within a second); nothing for plain
    /// sockets.
    pub(super) fn close(&mut self) {
        if let Conn::Tls(s, _) = self {
            s.sock.deadline = Some(Instant::now() + std::time::Duration::from_secs(1));
            s.conn.send_close_notify();
            let _ = s.flush();
        }
    }
}

/// A connection whose reads and writes fail with `TimedOut` once `deadline` has passed.
pub(super) struct Stream {
    pub conn: Conn,
    pub deadline: Option<Instant>,
}

impl Stream {
    fn arm(&mut self, read: bool) -> io::Result<()> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
            }
            self.conn.set_timeout(left, read)?;
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm(true)?;
        match &mut self.conn {
            Conn::Tcp(s, _) => s.read(buf),
            Conn::Unix(s, _) => s.read(buf),
            Conn::Tls(s, _) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm(false)?;
        match &mut self.conn {
            Conn::Tcp(s, _) => s.write(buf),
            Conn::Unix(s, _) => s.write(buf),
            Conn::Tls(s, _) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.arm(false)?;
        match &mut self.conn {
            Conn::Tls(s, _) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// Whether an error is a read or write that ran into its deadline.
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
