//! An uploaded RPM package (`PUT /<c>/rpms`, `sidecar rpm-install`): streamed into a memfd
//! (never held whole in the heap, never written to a disk), then checked before anything
//! runs: lead, signature header and header parsed by the `rpm` crate, the header digest
//! (`RPMSIGTAG_SHA256`/`SHA1` over the header, checked by the crate), and the payload
//! digest (`RPMTAG_PAYLOADDIGEST` in the algorithm `RPMTAG_PAYLOADDIGESTALGO` names,
//! computed here with `sha2` over the rest of the upload: the crate checks payload digests
//! only on a package it holds in memory). OpenPGP signatures are left to the container's
//! own rpm and its `%_pkgverify_level`.
//!
//! Invariant: an `Upload` exists only for bytes that passed every check; the memfd is gone
//! with the last descriptor, whatever happens.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

use rpm::{IndexTag, PackageMetadata};
use sha2::Digest;

/// A package that passed the checks, in a memfd.
#[derive(Debug)]
pub struct Upload {
    pub file: File,
    pub size: u64,
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: Option<String>,
}

impl Upload {
    /// `name-[epoch:]version-release.arch`, as rpm prints `%{NEVRA}`.
    pub fn nevra(&self) -> String {
        super::transaction::format_nevra(
            &self.name,
            self.epoch,
            &self.version,
            &self.release,
            self.arch.as_deref(),
        )
    }
}

/// Why an upload was refused.
#[derive(Debug)]
pub enum UploadError {
    /// Not an RPM, truncated, or a digest that does not match (422 `bad_package`).
    Bad(String),
    /// Reading the body or writing the memfd failed.
    Io(io::Error),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Bad(m) => write!(f, "not a usable RPM package: {m}"),
            UploadError::Io(e) => write!(f, "cannot receive the package: {e}"),
        }
    }
}

/// Streams `body` (at most `limit` bytes) into a memfd and checks it.
///
/// # Errors
/// `Bad` naming what is wrong: no RPM lead, a header that does not parse, a header digest
/// or payload digest that does not match, an empty or truncated body; `Io` for the stream.
pub fn receive(body: &mut dyn Read, limit: u64) -> Result<Upload, UploadError> {
    let fd = crate::sys::memfd("sidecar-upload").map_err(UploadError::Io)?;
    let mut file = File::from(fd);
    let size = {
        let mut w = io::BufWriter::with_capacity(256 << 10, &mut file);
        let n = io::copy(&mut body.take(limit + 1), &mut w).map_err(UploadError::Io)?;
        w.flush().map_err(UploadError::Io)?;
        n
    };
    if size > limit {
        return Err(UploadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "body over the upload limit",
        )));
    }
    if size == 0 {
        return Err(UploadError::Bad(
            "the body is empty (curl -T FILE.rpm)".into(),
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(UploadError::Io)?;
    check(file, size)
}

/// Checks a package file from its start.
///
/// The `rpm` crate indexes a header's data by the offsets its index declares and computes
/// sizes in 32 bits: an index that lies panics inside it. That is a bad package too.
pub fn check(file: File, size: u64) -> Result<Upload, UploadError> {
    header_sizes(&file)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_parsed(file, size)))
        .unwrap_or_else(|_| {
            Err(UploadError::Bad(
                "lead or headers: a header index points outside its data".into(),
            ))
        })
}

fn check_parsed(file: File, size: u64) -> Result<Upload, UploadError> {
    let mut r = BufReader::with_capacity(64 << 10, file);
    let meta = PackageMetadata::parse(&mut r)
        .map_err(|e| UploadError::Bad(format!("lead or headers: {e}")))?;
    meta.verify_digests()
        .map_err(|e| UploadError::Bad(format!("header digest: {e}")))?;
    let payload_start = r.stream_position().map_err(UploadError::Io)?;
    let h = &meta.header;
    let digests = h
        .get_entry_data_as_string_array(IndexTag::RPMTAG_PAYLOADSHA256)
        .ok();
    if let Some(want) = digests.as_ref().and_then(|d| d.first()) {
        let algo = h
            .get_entry_data_as_u32_array(IndexTag::RPMTAG_PAYLOADSHA256ALGO)
            .ok()
            .and_then(|a| a.first().copied())
            .unwrap_or(8);
        let got = match algo {
            8 => hex_digest::<sha2::Sha256>(&mut r)?,
            9 => hex_digest::<sha2::Sha384>(&mut r)?,
            10 => hex_digest::<sha2::Sha512>(&mut r)?,
            11 => hex_digest::<sha2::Sha224>(&mut r)?,
            other => {
                return Err(UploadError::Bad(format!(
                    "payload digest algorithm {other} is not supported (SHA-224/256/384/512 are)"
                )))
            }
        };
        if !got.eq_ignore_ascii_case(want) {
            return Err(UploadError::Bad(format!(
                "the payload digest does not match (the package is truncated or altered: {} of {size} bytes are payload)",
                size.saturating_sub(payload_start)
            )));
        }
    } else if size <= payload_start {
        return Err(UploadError::Bad("the package has no payload".into()));
    }
    let name = meta
        .get_name()
        .map_err(|e| UploadError::Bad(format!("name: {e}")))?
        .to_string();
    let version = meta
        .get_version()
        .map_err(|e| UploadError::Bad(format!("version: {e}")))?
        .to_string();
    let release = meta
        .get_release()
        .map_err(|e| UploadError::Bad(format!("release: {e}")))?
        .to_string();
    let epoch = meta.get_epoch().ok();
    let arch = meta.get_arch().ok().map(str::to_string);
    if meta.is_source_package() {
        return Err(UploadError::Bad(format!(
            "{name}-{version}-{release} is a source package: only binary packages install"
        )));
    }
    let mut file = r.into_inner();
    file.seek(SeekFrom::Start(0)).map_err(UploadError::Io)?;
    Ok(Upload {
        file,
        size,
        name,
        epoch,
        version,
        release,
        arch,
    })
}

/// The largest headers the sidecar parses: the `rpm` crate reads a header whole and copies
/// it, so a header is held in memory twice. rpm itself allows 256 MiB of header data;
/// real packages stay far below a few MiB (a kernel's is about 2 MiB).
pub const MAX_HEADER: u64 = 32 << 20;
pub const MAX_SIGNATURE_HEADER: u64 = 1 << 20;

/// Where the parts of an RPM package file are (rpm's `lib/package.c`): the 96-byte lead,
/// the signature header (padded to 8 bytes), then the header. Lengths count the 16-byte
/// intro (magic, index length, data length), the index and the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub signature_len: u64,
    pub header_at: u64,
    pub header_len: u64,
}

/// Reads the layout from the two headers' intros, `read16(offset)` giving the 16 bytes at
/// an offset (`None` past the end). Checks the header magic; not the lead's.
///
/// # Errors
/// A message naming the header that ends early or lacks its magic.
pub fn layout(read16: impl Fn(u64) -> Option<[u8; 16]>) -> Result<Layout, String> {
    let intro = |at: u64, what: &str| -> Result<u64, String> {
        let b = read16(at).ok_or_else(|| format!("the package ends inside its {what}"))?;
        if b[..3] != [0x8e, 0xad, 0xe8] {
            return Err(format!(
                "no {what} magic at offset {at} (not an RPM package)"
            ));
        }
        let il = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as u64;
        let dl = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as u64;
        Ok(16 + 16 * il + dl)
    };
    let signature_len = intro(96, "signature header")?;
    let header_at = (96 + signature_len).next_multiple_of(8);
    let header_len = intro(header_at, "header")?;
    Ok(Layout {
        signature_len,
        header_at,
        header_len,
    })
}

/// Reads the sizes the signature header and the header declare and refuses one over the
/// limits before anything reads them whole.
fn header_sizes(file: &File) -> Result<(), UploadError> {
    use std::os::unix::fs::FileExt;
    let mut lead = [0u8; 4];
    file.read_exact_at(&mut lead, 0)
        .map_err(|_| UploadError::Bad("lead: the body is shorter than an RPM lead".into()))?;
    if lead != [0xed, 0xab, 0xee, 0xdb] {
        return Err(UploadError::Bad(
            "lead: no RPM lead magic (not an RPM package)".into(),
        ));
    }
    let l = layout(|at| {
        let mut b = [0u8; 16];
        file.read_exact_at(&mut b, at).ok().map(|_| b)
    })
    .map_err(UploadError::Bad)?;
    if l.signature_len > MAX_SIGNATURE_HEADER {
        return Err(UploadError::Bad(format!(
            "the signature header declares {} bytes, more than the {MAX_SIGNATURE_HEADER} the sidecar accepts",
            l.signature_len
        )));
    }
    if l.header_len > MAX_HEADER {
        return Err(UploadError::Bad(format!(
            "the header declares {} MiB, more than the {} MiB the sidecar accepts (real packages' headers are a few MiB)",
            l.header_len >> 20,
            MAX_HEADER >> 20
        )));
    }
    Ok(())
}

fn hex_digest<D: Digest>(r: &mut impl Read) -> Result<String, UploadError> {
    let mut h = D::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).map_err(UploadError::Io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::auth::hash::hex(&h.finalize()))
}
