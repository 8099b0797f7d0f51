//! A small HTTP/1.1 server on `std::net` and `std::os::unix::net`: one acceptor thread per
//! listener, one thread per connection (bounded), keep-alive, `Expect: 100-continue`, chunked
//! request bodies, optional TLS, and the limits a server facing hostile clients needs:
//! request-head size (431) and time (408, `--head-timeout`), body size (413, refused before
//! a byte of it is read), time to receive a request (408), time to send a reply
//! (`--send-timeout`), concurrent requests (503), concurrent connections.
//!
//! The head is parsed by `httparse` (`head.rs`); bodies are framed in `body.rs`; sockets,
//! TLS and deadlines are in `conn.rs`. This file is the connection loop.
//!
//! Invariants: the server never allocates what a client merely *declares* (bodies are
//! streamed to the handler through a bounded reader, and an unread rest is never drained: the
//! connection is closed instead); every read and write has a deadline; when every connection
//! slot is taken, the oldest connection that has not sent a complete request head is
//! dropped to make room (slow clients cannot lock others out, and `/healthz` keeps
//! answering); a panicking handler becomes a 500 for that request, never the end of the
//! process.

mod body;
mod conn;
pub mod head;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conn::{Closer, Conn, Stream};
pub use conn::{Listener, UnixAccess};
use head::{Framing, Head};

/// The limits of one server, each a command-line flag.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_head: usize,
    pub max_body: u64,
    /// From a request's first byte to the end of its head.
    pub head_timeout: Duration,
    /// From a request's first byte to the end of its body.
    pub request_timeout: Duration,
    /// To write one reply, whatever its size.
    pub send_timeout: Duration,
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
    /// The client's address (TCP and TLS).
    pub peer: Option<IpAddr>,
    /// The client's uid (unix sockets, from `SO_PEERCRED`).
    pub peer_uid: Option<u32>,
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

/// A reply body: bytes, a stream of known length (file contents), or a function that
/// writes a body of unknown length as it goes (a directory listing), sent chunked.
pub enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>, u64),
    /// An error from the function cuts the reply short (no last chunk): the client sees an
    /// incomplete reply, never a truncated one that looks whole.
    Writer(BodyWriter),
}

/// Writes a reply body of unknown length (see `Body::Writer`).
pub type BodyWriter = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send>;

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

/// TLS settings of a server: the rustls configuration, and whether a client certificate is
/// required (for every path but those in `Server::always`).
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub require_client_cert: bool,
}

/// A connection slot: when it began waiting for its current request head, and whether that
/// head has arrived (a request is being handled).
struct Slot {
    id: u64,
    since: Instant,
    in_request: bool,
    closer: Closer,
}

/// Shared state: the stop flag, the connection slots and the counters behind the 503s.
pub struct Server {
    pub limits: Limits,
    pub stopping: AtomicBool,
    busy: AtomicUsize,
    slots: Mutex<Vec<Slot>>,
    next_id: AtomicU64,
    handler: Box<Handler>,
    tls: Option<Tls>,
    /// Paths that are answered even when every worker is busy (`/healthz`).
    pub always: Vec<&'static str>,
}

struct Guard<'a>(&'a AtomicUsize);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Frees a connection's slot when its thread ends.
struct SlotGuard<'a>(&'a Server, u64);
impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.0.slots().retain(|s| s.id != self.1);
    }
}

impl Server {
    pub fn new(limits: Limits, handler: Box<Handler>, tls: Option<Tls>) -> Arc<Server> {
        Arc::new(Server {
            limits,
            stopping: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            slots: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            handler,
            tls,
            always: vec!["/healthz"],
        })
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark(&self, id: u64, in_request: bool) {
        if let Some(s) = self.slots().iter_mut().find(|s| s.id == id) {
            s.in_request = in_request;
            s.since = Instant::now();
        }
    }

    /// Takes a slot for a new connection. When all are taken, the oldest connection still
    /// waiting for a complete head is shut down to make room; `None` when every slot holds a
    /// request being handled.
    fn take_slot(&self, closer: Closer) -> Option<u64> {
        let mut slots = self.slots();
        if slots.len() >= self.limits.max_connections {
            let oldest = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.in_request)
                .min_by_key(|(_, s)| s.since)
                .map(|(k, _)| k)?;
            slots.swap_remove(oldest).closer.shutdown();
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        slots.push(Slot {
            id,
            since: Instant::now(),
            in_request: false,
            closer,
        });
        Some(id)
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
            let tls = self.tls.as_ref().map(|t| &t.config);
            let Ok(conn) = listener.accept(tls) else {
                continue;
            };
            let Some(id) = conn.closer().ok().and_then(|c| self.take_slot(c)) else {
                let mut s = Stream {
                    conn,
                    deadline: Some(Instant::now() + Duration::from_secs(1)),
                };
                let busy = Response::error(503, "busy", "every connection is busy; retry later");
                let _ = write_response(&mut s, busy, false, false, false);
                continue;
            };
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .stack_size(512 << 10)
                .spawn(move || {
                    let _g = SlotGuard(&me, id);
                    me.connection(conn, id);
                });
            if spawned.is_err() {
                self.slots().retain(|s| s.id != id);
            }
        }
    }

    fn connection(&self, conn: Conn, id: u64) {
        let peer = conn.peer();
        let peer_uid = conn.peer_uid();
        let peer_name = match (peer, peer_uid) {
            (Some(p), _) => p.to_string(),
            (None, Some(uid)) => format!("unix:uid={uid}"),
            (None, None) => "unix".into(),
        };
        let tls = conn.is_tls();
        let mut reader = BufReader::with_capacity(
            8192,
            Stream {
                conn,
                deadline: None,
            },
        );
        loop {
            // Wait for the next request in short slices, so a stop is noticed quickly.
            let idle_until = Instant::now() + self.limits.keep_alive;
            loop {
                if self.stopping.load(Ordering::SeqCst) && reader.buffer().is_empty() {
                    reader.get_mut().conn.close();
                    return;
                }
                let slice = Instant::now() + Duration::from_millis(250);
                reader.get_mut().deadline = Some(slice.min(idle_until));
                match reader.fill_buf() {
                    Ok([]) => return, // closed by the client
                    Ok(_) => break,
                    Err(e) if conn::is_timeout(&e) && Instant::now() < idle_until => continue,
                    Err(_) => return,
                }
            }
            let started = Instant::now();
            reader.get_mut().deadline = Some(started + self.limits.head_timeout);
            let head = match head::read_and_parse(&mut reader, self.limits.max_head) {
                Ok(h) => h,
                Err(e) => {
                    if let Some(r) = e.refusal(self.limits.max_head) {
                        audit(&peer_name, None, "-", "-", r.status, started, &[]);
                        reader.get_mut().deadline = Some(Instant::now() + Duration::from_secs(5));
                        let resp = Response::error(r.status, r.code, &r.message);
                        let _ = write_response(reader.get_mut(), resp, false, false, false);
                    }
                    return;
                }
            };
            self.mark(id, true);
            reader.get_mut().deadline = Some(started + self.limits.request_timeout);
            let client = Client {
                peer,
                peer_uid,
                peer_name: &peer_name,
                tls,
            };
            let keep = self.request(head, &mut reader, &client, started, id);
            if !keep || self.stopping.load(Ordering::SeqCst) {
                reader.get_mut().conn.close();
                return;
            }
            self.mark(id, false);
        }
    }

    /// Handles one request whose head has been read; `false` when the connection must close.
    fn request(
        &self,
        head: Head,
        reader: &mut BufReader<Stream>,
        client: &Client,
        started: Instant,
        id: u64,
    ) -> bool {
        let keep_alive = head.keep_alive();
        let is_head = head.method == "HEAD";
        let send_timeout = self.limits.send_timeout;
        let reply =
            |reader: &mut BufReader<Stream>, resp: Response, keep: bool, user: Option<&str>| {
                audit(
                    client.peer_name,
                    user,
                    &head.method,
                    &head.target,
                    resp.status,
                    started,
                    &audit_extra(&resp),
                );
                if user.is_none() && matches!(resp.body, Body::Bytes(_)) {
                    // A reply to nobody we know (`/healthz`, a 401, a refusal) is small and
                    // its work is done: while it waits for a client that does not read
                    // (pipelined requests never read), its slot may be reclaimed.
                    self.mark(id, false);
                }
                let out = reader.get_mut();
                out.deadline = Some(Instant::now() + send_timeout);
                let http10 = head.version == 0;
                let keep = keep && !(http10 && matches!(resp.body, Body::Writer(_)));
                write_response(out, resp, keep, is_head, http10).is_ok() && keep
            };
        let refuse = |reader: &mut BufReader<Stream>, status: u16, code: &str, msg: &str| {
            reply(reader, Response::error(status, code, msg), false, None)
        };
        if !METHODS.contains(&head.method.as_str()) {
            let msg = format!(
                "unknown method '{}' (methods are case-sensitive)",
                head.method
            );
            return refuse(reader, 501, "not_implemented", &msg);
        }
        let Some((path, query)) = split_target(&head.target) else {
            return refuse(
                reader,
                400,
                "bad_request",
                "the request target is not a valid path",
            );
        };
        let framing = match head.framing() {
            Ok(f) => f,
            Err(r) => return refuse(reader, r.status, r.code, &r.message),
        };
        let length = match framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0).filter(|_| head.header("content-length").is_some()),
            Framing::Chunked => None,
        };
        if length.is_some_and(|n| n > self.limits.max_body) {
            let msg = format!(
                "the body is larger than the limit of {} bytes (--max-upload)",
                self.limits.max_body
            );
            return refuse(reader, 413, "payload_too_large", &msg);
        }
        let always = self.always.contains(&path.as_str());
        if client.tls
            && !always
            && self.tls.as_ref().is_some_and(|t| t.require_client_cert)
            && !reader.get_ref().conn.has_client_cert()
        {
            return refuse(
                reader,
                403,
                "client_certificate_required",
                "this server requires a TLS client certificate (curl --cert FILE --key FILE)",
            );
        }
        let has_body = framing != Framing::None;
        if !always {
            if self.busy.fetch_add(1, Ordering::SeqCst) >= self.limits.workers {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                return refuse(reader, 503, "busy", "every worker is busy; retry later");
            }
        } else {
            self.busy.fetch_add(1, Ordering::SeqCst);
        }
        let _g = Guard(&self.busy);
        if has_body && head.expects_continue() {
            let out = reader.get_mut();
            let _ = out
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|_| out.flush());
        }
        let mut body = body::BodyReader::new(reader, framing, self.limits.max_body);
        let mut req = Request {
            method: head.method.clone(),
            target: head.target.clone(),
            path,
            query,
            headers: head.headers.clone(),
            peer: client.peer,
            peer_uid: client.peer_uid,
            peer_name: client.peer_name.to_string(),
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
        let failure = body.failure.take();
        // A body that failed is answered here, whatever the handler made of the error: the
        // status says what went wrong with the request, and nothing was committed.
        let resp = match failure {
            None => resp,
            Some(body::BodyFailure::TooLarge) => Response::error(
                413,
                "payload_too_large",
                &format!(
                    "the body is larger than the limit of {} bytes (--max-upload)",
                    self.limits.max_body
                ),
            ),
            Some(body::BodyFailure::Malformed(m)) => {
                Response::error(400, "bad_request", &format!("malformed chunked body: {m}"))
            }
            Some(body::BodyFailure::Timeout) => Response::error(
                408,
                "request_timeout",
                "the request body was not received in time (--request-timeout)",
            ),
            Some(body::BodyFailure::Closed) => {
                audit(
                    client.peer_name,
                    resp.user.as_deref(),
                    &head.method,
                    &head.target,
                    400,
                    started,
                    &[],
                );
                return false;
            }
        };
        let user = resp.user.clone();
        if user.is_none() && matches!(resp.body, Body::Bytes(_)) {
            // Nor does it keep a worker (see `reply`).
            drop(_g);
        }
        reply(reader, resp, keep_alive && body_done, user.as_deref())
    }
}

/// The methods any route takes; others are 501 (RFC 9110 section 9.1).
const METHODS: [&str; 5] = ["GET", "HEAD", "PUT", "POST", "DELETE"];

/// Parses `data` as a client would send it: a head, its framing, and a body read to its
/// end (at most 1 MiB kept). For the fuzzer (`fuzz/fuzz_targets/http_request.rs`): any
/// bytes must give a request or a refusal, never a panic or a hang.
#[doc(hidden)]
pub fn parse_request_bytes(data: &[u8]) -> Result<(head::Head, u64), String> {
    let mut r = BufReader::with_capacity(64, data);
    let h = head::read_and_parse(&mut r, 16 << 10).map_err(|e| format!("{e:?}"))?;
    let _ = h.keep_alive();
    let _ = h.expects_continue();
    let framing = h.framing().map_err(|e| e.message)?;
    let _ = split_target(&h.target);
    let mut body = body::BodyReader::new(&mut r, framing, 1 << 20);
    let n = io::copy(&mut body, &mut io::sink()).map_err(|e| e.to_string())?;
    Ok((h, n))
}

/// What a reply adds to its audit line: what it changed, and the damaged package records
/// it left out (`X-Sidecar-Skipped-Records`).
fn audit_extra(resp: &Response) -> Vec<(&'static str, serde_json::Value)> {
    let mut extra = Vec::new();
    if let Some(c) = &resp.change {
        extra.push(("change", c.clone()));
    }
    let name = crate::packages::SKIPPED_HEADER;
    let skipped = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.parse::<u64>().ok());
    if let Some(n) = skipped {
        extra.push(("skipped_records", n.into()));
    }
    extra
}

/// Who is on the other end of a connection.
struct Client<'a> {
    peer: Option<IpAddr>,
    peer_uid: Option<u32>,
    peer_name: &'a str,
    tls: bool,
}

/// Prints one audit line on stderr.
fn audit(
    peer: &str,
    user: Option<&str>,
    method: &str,
    path: &str,
    status: u16,
    started: Instant,
    extra: &[(&str, serde_json::Value)],
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
    for (k, v) in extra {
        line[*k] = v.clone();
    }
    eprintln!("{line}");
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
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Writes `resp`. An HTTP/1.0 client (`http10`) cannot take chunks: a body of unknown
/// length is then sent as it is and ended by closing the connection.
fn write_response(
    out: &mut impl Write,
    resp: Response,
    keep: bool,
    head_only: bool,
    http10: bool,
) -> io::Result<()> {
    let close_delimited = http10 && matches!(resp.body, Body::Writer(_));
    let keep = keep && !close_delimited;
    let framing = match &resp.body {
        Body::Bytes(b) => format!("Content-Length: {}\r\n", b.len()),
        Body::Stream(_, n) => format!("Content-Length: {n}\r\n"),
        Body::Writer(_) if close_delimited => String::new(),
        Body::Writer(_) => "Transfer-Encoding: chunked\r\n".to_string(),
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "{framing}Connection: {}\r\n\r\n",
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
            Body::Writer(f) if close_delimited => f(&mut w)?,
            Body::Writer(f) => {
                let mut chunks = io::BufWriter::with_capacity(32 << 10, Chunked(&mut w));
                f(&mut chunks)?;
                chunks.flush()?;
                drop(chunks);
                w.write_all(b"0\r\n\r\n")?;
            }
        }
    }
    w.flush()
}

/// Writes each buffer it is given as one chunk (RFC 9112 section 7.1).
struct Chunked<W: Write>(W);

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            write!(self.0, "{:x}\r\n", buf.len())?;
            self.0.write_all(buf)?;
            self.0.write_all(b"\r\n")?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
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
