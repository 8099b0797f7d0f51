//! The request head (RFC 9112 sections 2-3, 5-7): read within a size limit, parsed by
//! `httparse` (hyper's parser), then the framing of the body decided as RFC 9112 section 6
//! says: one `Content-Length` of digits only, or `Transfer-Encoding: chunked` alone, never
//! both; and the connection's persistence from `Connection`'s token list.
//!
//! Invariant: anything ambiguous about where a request ends is refused (400, or 501 for a
//! transfer coding we do not know) and the connection closed: a request smuggled past us
//! must never reach a handler.

use std::io::BufRead;

/// Header fields accepted in one request; more is a 431.
pub const MAX_HEADERS: usize = 100;

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    /// The request target exactly as sent.
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub headers: Vec<(String, String)>,
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Why a head was refused: the status, the stable code and a message for people.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

impl Head {
    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The comma-separated tokens of every field named `name`, lower-cased.
    fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Whether the connection may carry another request (RFC 9112 section 9.3): HTTP/1.1
    /// unless `close` is among `Connection`'s options; HTTP/1.0 only with `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let options = self.tokens("connection");
        let has = |t: &str| options.iter().any(|o| o == t);
        if has("close") {
            return false;
        }
        self.version == 1 || has("keep-alive")
    }

    /// Whether the client asked for `100 Continue` before sending its body.
    pub fn expects_continue(&self) -> bool {
        self.version == 1
            && self
                .header("expect")
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"))
    }

    /// The body's framing (RFC 9112 section 6.3).
    ///
    /// # Errors
    /// 400 for a `Content-Length` that is not digits only, several that differ, both
    /// `Content-Length` and `Transfer-Encoding`, chunked not the final coding, or a
    /// transfer coding in an HTTP/1.0 request; 501 for a transfer coding other than chunked.
    pub fn framing(&self) -> Result<Framing, Refusal> {
        let codings = self.tokens("transfer-encoding");
        let lengths: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect();
        if !codings.is_empty() {
            if !lengths.is_empty() {
                return Err(refuse(
                    400,
                    "bad_request",
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if self.version == 0 {
                return Err(refuse(
                    400,
                    "bad_request",
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            if codings.last().map(String::as_str) != Some("chunked") {
                return Err(refuse(
                    400,
                    "bad_request",
                    "Transfer-Encoding must end with chunked",
                ));
            }
            if codings.len() > 1 {
                return Err(refuse(
                    501,
                    "not_implemented",
                    format!(
                        "unsupported transfer coding '{}' (only chunked)",
                        codings[0]
                    ),
                ));
            }
            return Ok(Framing::Chunked);
        }
        let mut length = None;
        for v in lengths {
            if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse(
                    400,
                    "bad_request",
                    format!("invalid Content-Length '{v}' (digits only)"),
                ));
            }
            let n: u64 = v
                .parse()
                .map_err(|_| refuse(400, "bad_request", "invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(refuse(
                    400,
                    "bad_request",
                    "several Content-Length values that differ",
                ));
            }
            length = Some(n);
        }
        Ok(match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// Why no head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The client closed the connection before sending anything.
    Closed,
    TooLarge,
    Timeout,
    Refused(Refusal),
}

impl HeadError {
    /// The answer to send, if any.
    pub fn refusal(self, max: usize) -> Option<Refusal> {
        match self {
            HeadError::Closed => None,
            HeadError::TooLarge => Some(refuse(
                431,
                "header_too_large",
                format!("the request head is larger than {max} bytes or has more than {MAX_HEADERS} fields (--max-head)"),
            )),
            HeadError::Timeout => Some(refuse(
                408,
                "request_timeout",
                "the request head was not received in time",
            )),
            HeadError::Refused(r) => Some(r),
        }
    }
}

/// Reads the bytes of one request head (up to and including the empty line) of at most
/// `max` bytes. Empty lines before a request are skipped (RFC 9112 section 2.2).
pub fn read_head(r: &mut impl BufRead, max: usize) -> Result<Vec<u8>, HeadError> {
    let mut raw: Vec<u8> = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if super::conn::is_timeout(&e) => return Err(HeadError::Timeout),
            Err(_) => return Err(HeadError::Closed),
        };
        if buf.is_empty() {
            return Err(if raw.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Refused(refuse(
                    400,
                    "bad_request",
                    "the connection closed inside the request head",
                ))
            });
        }
        // Leading empty lines.
        if raw.is_empty() {
            let skip = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if skip > 0 {
                r.consume(skip);
                continue;
            }
        }
        let before = raw.len();
        raw.extend_from_slice(buf);
        // Look for the end of the head, starting a little before the new bytes.
        let from = before.saturating_sub(3);
        let end = find_end(&raw[from..]).map(|e| from + e);
        match end {
            Some(end) if end <= max => {
                r.consume(end - before);
                raw.truncate(end);
                return Ok(raw);
            }
            Some(_) => return Err(HeadError::TooLarge),
            None if raw.len() > max => return Err(HeadError::TooLarge),
            None => {
                let n = raw.len() - before;
                r.consume(n);
            }
        }
    }
}

/// The offset just past the first `\r\n\r\n` (or `\n\n`), if any.
fn find_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Parses a complete request head with `httparse`.
///
/// # Errors
/// `TooLarge` for more than [`MAX_HEADERS`] fields; `Refused` (400) for anything httparse
/// rejects (a bad request line or version, a bare CR, NUL or another control character in a
/// field, a field name with spaces) and for field values that are not UTF-8.
pub fn parse_head(raw: &[u8]) -> Result<Head, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let bad = |what: String| HeadError::Refused(refuse(400, "bad_request", what));
    match req.parse(raw) {
        Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
        Ok(_) => return Err(bad("malformed request: incomplete head".into())),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(bad(format!("malformed request: {e}"))),
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed request line".into()));
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| bad(format!("the value of {} is not UTF-8", h.name)))?;
        headers.push((h.name.to_string(), value.trim().to_string()));
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers,
    })
}

/// Reads and parses one head.
pub fn read_and_parse(r: &mut impl BufRead, max: usize) -> Result<Head, HeadError> {
    parse_head(&read_head(r, max)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn parse(s: &str) -> Result<Head, HeadError> {
        read_and_parse(&mut io::BufReader::new(s.as_bytes()), 16384)
    }

    fn status(s: &str) -> u16 {
        match parse(s) {
            Ok(h) => match h.framing() {
                Ok(_) => 200,
                Err(r) => r.status,
            },
            Err(e) => e.refusal(16384).map(|r| r.status).unwrap_or(0),
        }
    }

    #[test]
    fn framing_cases_of_rfc_9112() {
        let ok = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status(ok), 200);
        assert_eq!(status("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 200);
        let cl = |v: &str| format!("PUT / HTTP/1.1\r\n{v}\r\n\r\n");
        assert_eq!(status(&cl("Content-Length: 5\r\nContent-Length: 6")), 400);
        assert_eq!(status(&cl("Content-Length: 5, 6")), 400);
        assert_eq!(status(&cl("Content-Length: 5\r\nContent-Length: 5")), 200);
        assert_eq!(status(&cl("Content-Length: +5")), 400);
        assert_eq!(status(&cl("Content-Length: -1")), 400);
        assert_eq!(status(&cl("Content-Length: 0x5")), 400);
        assert_eq!(status(&cl("Content-Length: 99999999999999999999")), 400);
        assert_eq!(status(&cl("Transfer-Encoding: gzip")), 400);
        assert_eq!(status(&cl("Transfer-Encoding: gzip, chunked")), 501);
        assert_eq!(status(&cl("Transfer-Encoding: chunked, chunked")), 501);
        assert_eq!(status(&cl("Transfer-Encoding: chunked")), 200);
        assert_eq!(
            status(&cl("Transfer-Encoding: chunked\r\nContent-Length: 3")),
            400
        );
        assert_eq!(
            status("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        // Bare CR and NUL in a value, a bad version, spaces in a name.
        assert_eq!(status("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
        assert_eq!(status("GET  / HTTP/1.1\r\n\r\n"), 400);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X{i}: y\r\n"))
            .collect();
        assert_eq!(status(&format!("GET / HTTP/1.1\r\n{many}\r\n")), 431);
    }

    #[test]
    fn persistence_from_connection_tokens() {
        let keep = |s: &str| parse(s).unwrap().keep_alive();
        assert!(keep("GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep("GET / HTTP/1.1\r\nConnection: close, te\r\n\r\n"));
        assert!(!keep(
            "GET / HTTP/1.1\r\nConnection: te\r\nConnection: Close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn head_size_and_end() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert!(matches!(
            read_head(&mut io::BufReader::new(long.as_bytes()), 50),
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            read_head(&mut io::BufReader::new(&b"GET / HTTP/1.1\r\nX: y"[..]), 500),
            Err(HeadError::Refused(_))
        ));
        assert!(matches!(
            read_head(&mut io::BufReader::new(&b""[..]), 500),
            Err(HeadError::Closed)
        ));
        // What follows the head stays in the reader for the body.
        let mut r = io::BufReader::with_capacity(4, &b"GET / HTTP/1.1\r\n\r\nBODY"[..]);
        let raw = read_head(&mut r, 500).unwrap();
        assert!(raw.ends_with(b"\r\n\r\n"));
        let mut rest = String::new();
        io::Read::read_to_string(&mut r, &mut rest).unwrap();
        assert_eq!(rest, "BODY");
    }
}
