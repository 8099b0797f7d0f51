//! A request body as a bounded stream: `Content-Length` bytes, or chunked (RFC 9112 section
//! 7.1), never more than the upload limit, each read under the request's deadline.
//!
//! Invariant: the reader answers end-of-body (`Ok(0)`) only when the body was framed
//! correctly to its very end (the last chunk, its trailers and CRLF); anything else is an
//! error, remembered in `failure` so that the server, not the handler, chooses the status.
//! A handler that stores a body commits it only after `Ok(0)`: a badly framed body is
//! never committed.

use std::io::{self, BufRead, Read};

/// Longest chunk-size line (size, extensions, CRLF) we read.
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of trailer fields we read and ignore.
const MAX_TRAILERS: usize = 16 << 10;

/// Why a body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFailure {
    /// Over the upload limit (413).
    TooLarge,
    /// Bad chunked framing (400).
    Malformed(String),
    /// Not received before the request's deadline (408).
    Timeout,
    /// The client closed the connection mid-body (no answer can reach it).
    Closed,
}

pub struct BodyReader<'a, R: BufRead> {
    inner: &'a mut R,
    chunked: bool,
    /// Bytes left in the body (length) or in the current chunk (chunked).
    remaining: u64,
    /// Chunked: the current chunk's data was read, its CRLF was not.
    need_crlf: bool,
    done: bool,
    limit: u64,
    total: u64,
    pub failure: Option<BodyFailure>,
}

impl<'a, R: BufRead> BodyReader<'a, R> {
    pub fn new(inner: &'a mut R, framing: super::head::Framing, limit: u64) -> Self {
        use super::head::Framing;
        let (chunked, remaining) = match framing {
            Framing::None => (false, 0),
            Framing::Length(n) => (false, n),
            Framing::Chunked => (true, 0),
        };
        BodyReader {
            inner,
            chunked,
            remaining,
            need_crlf: false,
            done: !chunked && remaining == 0,
            limit,
            total: 0,
            failure: None,
        }
    }

    /// Whether the whole body has been read (the connection may carry another request).
    pub fn finished(&self) -> bool {
        self.done && self.failure.is_none()
    }

    /// Reads one line ending in CRLF of at most `max` bytes, without the CRLF.
    fn line(&mut self, max: usize, what: &str) -> Result<Vec<u8>, BodyFailure> {
        let mut line = Vec::new();
        let n = (&mut *self.inner)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| classify(&e))?;
        if n == 0 {
            return Err(BodyFailure::Closed);
        }
        if !line.ends_with(b"\r\n") {
            return Err(if line.len() > max {
                BodyFailure::Malformed(format!("{what} longer than {max} bytes"))
            } else if line.ends_with(b"\n") {
                BodyFailure::Malformed(format!("{what} not ended by CRLF"))
            } else {
                BodyFailure::Closed
            });
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    /// Reads the CRLF after a chunk's data, then the next chunk-size line; at the last chunk
    /// (size 0) reads the trailers and the final CRLF.
    fn next_chunk(&mut self) -> Result<(), BodyFailure> {
        if self.need_crlf {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf).map_err(|e| classify(&e))?;
            if &crlf != b"\r\n" {
                return Err(BodyFailure::Malformed(
                    "chunk data not followed by CRLF".into(),
                ));
            }
            self.need_crlf = false;
        }
        let line = self.line(MAX_CHUNK_LINE, "chunk-size line")?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            let mut read = 0;
            loop {
                let t = self.line(MAX_TRAILERS, "trailer")?;
                if t.is_empty() {
                    break;
                }
                read += t.len() + 2;
                if read > MAX_TRAILERS {
                    return Err(BodyFailure::Malformed("trailers too large".into()));
                }
            }
            self.done = true;
        }
        self.remaining = size;
        Ok(())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize, BodyFailure> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.chunked && self.remaining == 0 {
            self.next_chunk()?;
            if self.done {
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self
            .inner
            .read(&mut buf[..want])
            .map_err(|e| classify(&e))?;
        if n == 0 {
            return Err(BodyFailure::Closed);
        }
        self.remaining -= n as u64;
        self.total += n as u64;
        if self.total > self.limit {
            return Err(BodyFailure::TooLarge);
        }
        if self.remaining == 0 {
            if self.chunked {
                self.need_crlf = true;
            } else {
                self.done = true;
            }
        }
        Ok(n)
    }
}

impl<R: BufRead> Read for BodyReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failure {
            return Err(to_io(f));
        }
        self.read_inner(buf).map_err(|f| {
            let e = to_io(&f);
            self.failure = Some(f);
            e
        })
    }
}

/// A chunk-size line: 1 to 16 hex digits, optional whitespace, optional `;` extensions
/// (RFC 9112 section 7.1.1) of visible characters.
fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyFailure> {
    let bad = || BodyFailure::Malformed("invalid chunk size".into());
    let (size, ext) = match line.iter().position(|&b| b == b';') {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, &[][..]),
    };
    let size = size.strip_suffix(b" ").unwrap_or(size);
    let size = size.strip_suffix(b"\t").unwrap_or(size);
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    if ext.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(bad());
    }
    u64::from_str_radix(std::str::from_utf8(size).map_err(|_| bad())?, 16).map_err(|_| bad())
}

fn classify(e: &io::Error) -> BodyFailure {
    if super::conn::is_timeout(e) {
        BodyFailure::Timeout
    } else {
        BodyFailure::Closed
    }
}

fn to_io(f: &BodyFailure) -> io::Error {
    match f {
        BodyFailure::TooLarge => {
            io::Error::new(io::ErrorKind::InvalidData, "body over the upload limit")
        }
        BodyFailure::Malformed(m) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed chunked body: {m}"),
        ),
        BodyFailure::Timeout => {
            io::Error::new(io::ErrorKind::TimedOut, "the body was not received in time")
        }
        BodyFailure::Closed => io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the client closed the connection mid-body",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::Framing;
    use super::*;

    fn read(framing: Framing, wire: &[u8], limit: u64) -> (Result<Vec<u8>, BodyFailure>, bool) {
        let mut r = io::BufReader::with_capacity(3, wire);
        let mut b = BodyReader::new(&mut r, framing, limit);
        let mut out = Vec::new();
        let res = b.read_to_end(&mut out);
        let finished = b.finished();
        (
            res.map(|_| out).map_err(|_| b.failure.clone().unwrap()),
            finished,
        )
    }

    #[test]
    fn chunked_bodies() {
        let ok = read(
            Framing::Chunked,
            b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
            100,
        );
        assert_eq!(ok, (Ok(b"abcde".to_vec()), true));
        let malformed = |wire: &[u8]| {
            matches!(
                read(Framing::Chunked, wire, 100).0,
                Err(BodyFailure::Malformed(_))
            )
        };
        assert!(malformed(b"3\r\nabcXX2\r\nde\r\n0\r\n\r\n"));
        assert!(malformed(b"+3\r\nabc\r\n0\r\n\r\n"));
        assert!(malformed(b"zz\r\n"));
        assert!(malformed(b"00000000000000001\r\nx\r\n0\r\n\r\n"));
        assert!(malformed(
            format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(2000)).as_bytes()
        ));
        assert!(malformed(b"3\nabc\r\n0\r\n\r\n"));
        assert!(malformed(b"1;\x01\r\nx\r\n0\r\n\r\n"));
        // Ends early: never Ok.
        assert_eq!(
            read(Framing::Chunked, b"3\r\nabc\r\n", 100).0,
            Err(BodyFailure::Closed)
        );
        assert_eq!(
            read(Framing::Chunked, b"3\r\nabc\r\n0\r\n", 100).0,
            Err(BodyFailure::Closed)
        );
        assert_eq!(
            read(Framing::Chunked, b"5\r\nabcdef\r\n0\r\n\r\n", 3).0,
            Err(BodyFailure::TooLarge)
        );
    }

    #[test]
    fn length_bodies() {
        assert_eq!(
            read(Framing::Length(3), b"abcdef", 100),
            (Ok(b"abc".to_vec()), true)
        );
        assert_eq!(
            read(Framing::Length(5), b"abc", 100).0,
            Err(BodyFailure::Closed)
        );
        assert_eq!(read(Framing::None, b"abc", 100), (Ok(vec![]), true));
    }
}
