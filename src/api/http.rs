//! A small HTTP/1.1 server on `std::net` and `std::os::unix::net`: one acceptor thread per
//! listener, one thread per connection (bounded), keep-alive, `Expect: 100-continue`, chunked
//! request bodies, and the limits a server facing hostile clients needs: request-head size
//! (431), body size (413, refused before a byte of it is read), time to receive a request
//! (408), concurrent requests (503), concurrent connections (503 from the acceptor).
//!
//! Invariants: the server never allocates what a client merely *declares* (bodies are
//! streamed to the handler through a bounded reader, and an unread rest is never drained: the
//! connection is closed instead); every read has a deadline; a panicking handler becomes a
//! 500 for that request, never the end of the process.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits of one server, each a command-line flag.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: u64,
    pub request_timeout: Duration,
    pub keep_alive: Duration,
    pub workers: usize,
    pub max_connections: usize,
}

/// A parsed request head, and its body as a bounded stream.
pub struct Request<'a> {
    pub method: String,
    /// The request target exactly as sent (what Digest's `uri` must equal).
    pub target: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub peer: Option<IpAddr>,
    pub peer_name: String,
    pub body: &'a mut dyn Read,
    /// Set by the server: whether a body was announced (Content-Length > 0 or chunked).
    pub has_body: bool,
    pub content_length: Option<u64>,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A reply body: bytes, or a stream of known length (file contents).
pub enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>, u64),
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// For the audit line: who asked, and what changed (`None` for reads).
    pub user: Option<String>,
    pub change: Option<serde_json::Value>,
}

impl Response {
    pub fn json(status: u16, value: &(impl serde::Serialize + ?Sized)) -> Response {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(body),
            user: None,
            change: None,
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({"error": {"code": code, "message": message}}),
        )
    }
}

pub type Handler = dyn Fn(&mut Request) -> Response + Send + Sync;

/// A listening socket: TCP or unix.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Binds `host:port`, `[v6]:port` or `unix:/path` (a stale socket file is replaced).
    pub fn bind(addr: &str) -> io::Result<Listener> {
        if let Some(path) = addr.strip_prefix("unix:") {
            let _ = std::fs::remove_file(path);
            return Ok(Listener::Unix(UnixListener::bind(path)?, path.into()));
        }
        Ok(Listener::Tcp(TcpListener::bind(addr)?))
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, Listener::Tcp(_))
    }

    /// What it is bound to, for logs (`127.0.0.1:8889`, `unix:/run/s.sock`).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }

    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok(Conn::Tcp(s, a.ip()))
            }
            Listener::Unix(l, _) => Ok(Conn::Unix(l.accept()?.0)),
        }
    }
}

enum Conn {
    Tcp(TcpStream, IpAddr),
    Unix(UnixStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s, a) => Conn::Tcp(s.try_clone()?, *a),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }
    fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        let d = Some(d.max(Duration::from_millis(1)));
        match self {
            Conn::Tcp(s, _) => s.set_read_timeout(d),
            Conn::Unix(s) => s.set_read_timeout(d),
        }
    }
    fn set_write_timeout(&self, d: Duration) -> io::Result<()> {
        match self {
            Conn::Tcp(s, _) => s.set_write_timeout(Some(d)),
            Conn::Unix(s) => s.set_write_timeout(Some(d)),
        }
    }
    fn peer(&self) -> Option<IpAddr> {
        match self {
            Conn::Tcp(_, a) => Some(*a),
            Conn::Unix(_) => None,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s, _) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s, _) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Shared state: the stop flag and the counters behind the 503s.
pub struct Server {
    pub limits: Limits,
    pub stopping: AtomicBool,
    busy: AtomicUsize,
    connections: AtomicUsize,
    handler: Box<Handler>,
    /// Paths that are answered even when every worker is busy (`/healthz`).
    pub always: Vec<&'static str>,
}

struct Guard<'a>(&'a AtomicUsize);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    pub fn new(limits: Limits, handler: Box<Handler>) -> Arc<Server> {
        Arc::new(Server {
            limits,
            stopping: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            handler,
            always: vec!["/healthz"],
        })
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    /// Accepts on `listener` until `stopping` is set (checked every 100 ms).
    pub fn serve(self: &Arc<Self>, listener: Listener) {
        while !self.stopping.load(Ordering::SeqCst) {
            match crate::sys::wait_readable(listener.fd(), 100) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            let Ok(mut conn) = listener.accept() else {
                continue;
            };
            if self.connections.fetch_add(1, Ordering::SeqCst) >= self.limits.max_connections {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                let _ = conn.set_write_timeout(Duration::from_secs(1));
                let _ = write_response(
                    &mut conn,
                    Response::error(503, "busy", "too many connections; retry later"),
                    false,
                    false,
                );
                continue;
            }
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .stack_size(512 << 10)
                .spawn(move || {
                    let _g = Guard(&me.connections);
                    me.connection(conn);
                });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn connection(&self, conn: Conn) {
        let Ok(write_half) = conn.try_clone() else {
            return;
        };
        let mut out = write_half;
        let _ = out.set_write_timeout(self.limits.request_timeout);
        let peer = conn.peer();
        let peer_name = peer.map(|p| p.to_string()).unwrap_or_else(|| "unix".into());
        let mut reader = BufReader::with_capacity(
            8192,
            Deadline {
                conn,
                deadline: None,
            },
        );
        loop {
            // Wait for the next request in short slices, so a stop is noticed quickly.
            let idle_until = Instant::now() + self.limits.keep_alive;
            loop {
                if self.stopping.load(Ordering::SeqCst) && reader.buffer().is_empty() {
                    return;
                }
                let slice = Instant::now() + Duration::from_millis(250);
                reader.get_mut().deadline = Some(slice.min(idle_until));
                match reader.fill_buf() {
                    Ok([]) => return, // closed by the client
                    Ok(_) => break,
                    Err(e) if is_timeout(&e) && Instant::now() < idle_until => continue,
                    Err(_) => return,
                }
            }
            let started = Instant::now();
            reader.get_mut().deadline = Some(started + self.limits.request_timeout);
            let head = match read_head(&mut reader, self.limits.max_head) {
                Ok(h) => h,
                Err(HeadError::Closed) => return,
                Err(e) => {
                    let (status, code, msg) = e.describe(self.limits.max_head);
                    let resp = Response::error(status, code, &msg);
                    audit(&peer_name, None, "-", "-", status, started, None);
                    let _ = write_response(&mut out, resp, false, false);
                    return;
                }
            };
            let keep = self.request(head, &mut reader, &mut out, peer, &peer_name, started);
            if !keep || self.stopping.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    /// Handles one request whose head has been read; `false` when the connection must close.
    fn request(
        &self,
        head: Head,
        reader: &mut BufReader<Deadline>,
        out: &mut Conn,
        peer: Option<IpAddr>,
        peer_name: &str,
        started: Instant,
    ) -> bool {
        let keep_alive = head.keep_alive();
        let is_head = head.method == "HEAD";
        let reply = |out: &mut Conn, resp: Response, keep: bool, user: Option<&str>| {
            audit(
                peer_name,
                user,
                &head.method,
                &head.target,
                resp.status,
                started,
                resp.change.as_ref(),
            );
            write_response(out, resp, keep, is_head).is_ok() && keep
        };
        let (path, query) = match split_target(&head.target) {
            Some(pq) => pq,
            None => {
                return reply(
                    out,
                    Response::error(400, "bad_request", "the request target is not a valid path"),
                    false,
                    None,
                )
            }
        };
        let chunked = head
            .header("transfer-encoding")
            .map(|t| t.eq_ignore_ascii_case("chunked"));
        let length = match (head.header("content-length"), chunked) {
            (_, Some(false)) => {
                return reply(
                    out,
                    Response::error(
                        400,
                        "bad_request",
                        "unsupported Transfer-Encoding (only chunked)",
                    ),
                    false,
                    None,
                )
            }
            (Some(_), Some(true)) => {
                return reply(
                    out,
                    Response::error(
                        400,
                        "bad_request",
                        "both Content-Length and Transfer-Encoding",
                    ),
                    false,
                    None,
                )
            }
            (Some(v), None) => match v.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    return reply(
                        out,
                        Response::error(400, "bad_request", "invalid Content-Length"),
                        false,
                        None,
                    )
                }
            },
            (None, _) => None,
        };
        if length.is_some_and(|n| n > self.limits.max_body) {
            let msg = format!(
                "the body is larger than the limit of {} bytes (--max-upload)",
                self.limits.max_body
            );
            return reply(
                out,
                Response::error(413, "payload_too_large", &msg),
                false,
                None,
            );
        }
        let has_body = chunked == Some(true) || length.unwrap_or(0) > 0;
        if !self.always.contains(&path.as_str()) {
            if self.busy.fetch_add(1, Ordering::SeqCst) >= self.limits.workers {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                return reply(
                    out,
                    Response::error(503, "busy", "every worker is busy; retry later"),
                    false,
                    None,
                );
            }
        } else {
            self.busy.fetch_add(1, Ordering::SeqCst);
        }
        let _g = Guard(&self.busy);
        if has_body
            && head
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            let _ = out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = BodyReader {
            inner: reader,
            remaining: length.unwrap_or(0),
            chunked: chunked == Some(true),
            chunk_done: false,
            limit: self.limits.max_body,
            total: 0,
        };
        let mut req = Request {
            method: head.method.clone(),
            target: head.target.clone(),
            path,
            query,
            headers: head.headers.clone(),
            peer,
            peer_name: peer_name.to_string(),
            body: &mut body,
            has_body,
            content_length: length,
        };
        let resp =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.handler)(&mut req)))
                .unwrap_or_else(|_| {
                    Response::error(
                        500,
                        "internal",
                        "the request failed inside the sidecar; see its log",
                    )
                });
        // An unread body is never drained (it may be huge): close the connection instead.
        let body_done = body.finished();
        let user = resp.user.clone();
        reply(out, resp, keep_alive && body_done, user.as_deref())
    }
}

/// Prints one audit line on stderr.
fn audit(
    peer: &str,
    user: Option<&str>,
    method: &str,
    path: &str,
    status: u16,
    started: Instant,
    change: Option<&serde_json::Value>,
) {
    let mut line = serde_json::json!({
        "time": crate::procfs::format_utc(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)) + "Z",
        "peer": peer,
        "user": user,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    if let Some(c) = change {
        line["change"] = c.clone();
    }
    eprintln!("{line}");
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A connection whose every read must finish before `deadline`.
struct Deadline {
    conn: Conn,
    deadline: Option<Instant>,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(d) = self.deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request deadline"));
            }
            self.conn.set_read_timeout(left)?;
        }
        self.conn.read(buf)
    }
}

/// A request body: at most Content-Length bytes, or chunked, never past the body limit.
struct BodyReader<'a> {
    inner: &'a mut BufReader<Deadline>,
    remaining: u64,
    chunked: bool,
    chunk_done: bool,
    limit: u64,
    total: u64,
}

impl BodyReader<'_> {
    fn finished(&self) -> bool {
        if self.chunked {
            self.chunk_done
        } else {
            self.remaining == 0
        }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut line = Vec::new();
        (&mut *self.inner).take(64).read_until(b'\n', &mut line)?;
        let text = std::str::from_utf8(&line)
            .map_err(|_| bad("chunk size"))?
            .trim();
        let size = text.split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size.trim(), 16).map_err(|_| bad("chunk size"))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut t = Vec::new();
                (&mut *self.inner).take(1024).read_until(b'\n', &mut t)?;
                if t == b"\r\n" || t == b"\n" || t.is_empty() {
                    break;
                }
            }
            self.chunk_done = true;
        }
        self.remaining = size;
        Ok(())
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed chunked body ({what})"),
    )
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.chunked && self.remaining == 0 && !self.chunk_done {
            if self.total > 0 {
                let mut crlf = [0u8; 2];
                self.inner.read_exact(&mut crlf)?;
            }
            self.next_chunk()?;
        }
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection mid-body",
            ));
        }
        self.remaining -= n as u64;
        self.total += n as u64;
        if self.total > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "body over the upload limit",
            ));
        }
        Ok(n)
    }
}

struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn keep_alive(&self) -> bool {
        let conn = self.header("connection").map(|c| c.to_ascii_lowercase());
        match self.version.as_str() {
            "HTTP/1.1" => conn.as_deref() != Some("close"),
            _ => conn.as_deref() == Some("keep-alive"),
        }
    }
}

#[derive(Debug)]
enum HeadError {
    Closed,
    TooLarge,
    Timeout,
    Malformed(&'static str),
}

impl HeadError {
    fn describe(&self, max: usize) -> (u16, &'static str, String) {
        match self {
            HeadError::TooLarge => (
                431,
                "header_too_large",
                format!("the request head is larger than {max} bytes"),
            ),
            HeadError::Timeout => (
                408,
                "request_timeout",
                "the request was not received in time".into(),
            ),
            HeadError::Malformed(w) => (400, "bad_request", format!("malformed request: {w}")),
            HeadError::Closed => (400, "bad_request", "closed".into()),
        }
    }
}

/// Reads a request head (request line and headers) of at most `max` bytes.
fn read_head(r: &mut BufReader<Deadline>, max: usize) -> Result<Head, HeadError> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        let limit = (max + 1).saturating_sub(raw.len()) as u64;
        match (&mut *r).take(limit).read_until(b'\n', &mut line) {
            Ok(0) if raw.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Malformed("connection closed inside the head")),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(HeadError::Timeout),
            Err(_) => return Err(HeadError::Closed),
        }
        raw.extend_from_slice(&line);
        if raw.len() > max {
            return Err(HeadError::TooLarge);
        }
        if !line.ends_with(b"\n") {
            return Err(HeadError::Malformed("connection closed inside the head"));
        }
        if line == b"\r\n" || line == b"\n" {
            if raw.len() == line.len() {
                raw.clear(); // tolerate blank lines before a request (RFC 9112 2.2)
                continue;
            }
            break;
        }
    }
    let text =
        std::str::from_utf8(&raw).map_err(|_| HeadError::Malformed("the head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("request line"));
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !version.starts_with("HTTP/1.")
    {
        return Err(HeadError::Malformed("request line"));
    }
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l
            .split_once(':')
            .ok_or(HeadError::Malformed("header line without ':'"))?;
        if k.is_empty()
            || k.bytes()
                .any(|b| b == b' ' || b == b'\t' || b.is_ascii_control())
        {
            return Err(HeadError::Malformed("header name"));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    Ok(Head {
        method: method.into(),
        target: target.into(),
        version: version.into(),
        headers,
    })
}

/// Splits a request target into its decoded path and query pairs. `None` for targets that
/// are not origin-form paths or whose escapes decode to something that is not UTF-8.
pub fn split_target(target: &str) -> Option<(String, Vec<(String, String)>)> {
    if !target.starts_with('/') {
        return None;
    }
    let (p, q) = target.split_once('?').unwrap_or((target, ""));
    // Names need not be UTF-8: such a path is kept here with U+FFFD, and the routes that take
    // names as bytes (files) decode `target` again with `percent_decode_bytes`.
    let path = String::from_utf8_lossy(&percent_decode_bytes(p, false)?).into_owned();
    let query = q
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((path, query))
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s, plus_is_space)?).ok()
}

/// Decodes `%HH` escapes (and `+` as a space when `plus_is_space`) into bytes; `None` for a
/// malformed escape.
pub fn percent_decode_bytes(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(out: &mut Conn, resp: Response, keep: bool, head_only: bool) -> io::Result<()> {
    let len = match &resp.body {
        Body::Bytes(b) => b.len() as u64,
        Body::Stream(_, n) => *n,
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {len}\r\nConnection: {}\r\n\r\n",
        if keep { "keep-alive" } else { "close" }
    ));
    let mut w = io::BufWriter::with_capacity(64 << 10, out);
    w.write_all(head.as_bytes())?;
    if !head_only {
        match resp.body {
            Body::Bytes(b) => w.write_all(&b)?,
            Body::Stream(r, n) => {
                let copied = io::copy(&mut r.take(n), &mut w)?;
                if copied != n {
                    // The file shrank while we sent it: the client must not take this as whole.
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                }
            }
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (p, q) = split_target("/a%20b/c?x=1&y=%2F&z").unwrap();
        assert_eq!(p, "/a b/c");
        assert_eq!(
            q,
            vec![
                ("x".into(), "1".into()),
                ("y".into(), "/".into()),
                ("z".into(), "".into())
            ]
        );
        assert!(split_target("http://x/").is_none());
        assert!(split_target("/%zz").is_none());
        assert_eq!(split_target("/caf%e9").unwrap().0, "/caf\u{FFFD}");
        assert!(split_target("/?x=%ff").is_none());
        assert!(split_target("/%").is_none());
        assert_eq!(split_target("/a%00b").unwrap().0, "/a\0b");
    }
}
