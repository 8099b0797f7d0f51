//! The header rpm stores in its database for an installed package: the package's own header
//! (its immutable region byte for byte), the signature header's tags merged in as rpm's
//! `headerMergeLegacySigs` translates them (rpm 4.18 `lib/package.c`, `xlateTags`), then
//! what the install adds (`lib/psm.c`, `lib/transaction.c`): INSTALLTIME, INSTALLTID,
//! INSTALLCOLOR, FILESTATES and, for a relocatable package, INSTPREFIXES.
//!
//! The blob is `il`, `dl`, the index and the data (no magic), as `headerExport` writes it:
//! the package header's entries first, untouched, then the added ones in tag order, each
//! one's data after the region's, aligned for its type. Checked against what Debian's rpm
//! 4.18 stored for the same package (tests/native.rs).
//!
//! Invariant: pure; the package header's bytes are copied, never re-encoded, so its
//! immutable region and SHA-256/SHA-1 header digests stay valid.

use crate::rpmdb::header::{raw_entries, RawEntry};

pub const TYPE_CHAR: u32 = 1;
pub const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;

const TAG_PREFIXES: u32 = 1098;
const TAG_INSTPREFIXES: u32 = 1099;
const TAG_INSTALLTIME: u32 = 1008;
const TAG_FILESTATES: u32 = 1029;
const TAG_INSTALLCOLOR: u32 = 1127;
const TAG_INSTALLTID: u32 = 1128;

/// `xlateTags`: signature tag, the header tag it becomes, the count it must have (0: any),
/// the quirk (the tag may already be in the main header), and the type rpm expects.
const XLATE: [(u32, u32, u32, bool, u32); 15] = [
    (1000, 257, 1, false, TYPE_INT32),       // SIZE -> SIGSIZE
    (1002, 259, 0, false, TYPE_BIN),         // PGP -> SIGPGP
    (1004, 261, 16, false, TYPE_BIN),        // MD5 -> SIGMD5
    (1005, 262, 0, false, TYPE_BIN),         // GPG -> SIGGPG
    (1007, 1046, 1, true, TYPE_INT32),       // PAYLOADSIZE -> ARCHIVESIZE
    (274, 5090, 0, true, TYPE_STRING_ARRAY), // FILESIGNATURES
    (275, 5091, 1, true, TYPE_INT32),        // FILESIGNATURELENGTH
    (276, 276, 0, false, TYPE_STRING_ARRAY), // VERITYSIGNATURES
    (277, 277, 1, false, TYPE_INT32),        // VERITYSIGNATUREALGO
    (269, 269, 1, false, TYPE_STRING),       // SHA1 -> SHA1HEADER
    (273, 273, 1, false, TYPE_STRING),       // SHA256 -> SHA256HEADER
    (267, 267, 0, false, TYPE_BIN),          // DSA -> DSAHEADER
    (268, 268, 0, false, TYPE_BIN),          // RSA -> RSAHEADER
    (270, 270, 1, false, TYPE_INT64),        // LONGSIZE -> LONGSIGSIZE
    (271, 271, 1, false, TYPE_INT64),        // LONGARCHIVESIZE
];

/// What the install itself records.
#[derive(Debug, Clone)]
pub struct Install {
    /// Seconds since the epoch (INSTALLTIME).
    pub time: u32,
    /// The transaction ID (INSTALLTID; rpm uses the transaction's start time).
    pub tid: u32,
    /// The transaction color (INSTALLCOLOR): 3 on 64-bit multilib systems, as rpm's
    /// `%_transaction_color` there; 0 elsewhere.
    pub color: u32,
    /// One `RPMFILE_STATE_*` per file (FILESTATES), in header order.
    pub file_states: Vec<u8>,
}

/// One entry to append: tag, type, count and its data, big-endian as stored.
struct Added {
    tag: u32,
    ty: u32,
    count: u32,
    data: Vec<u8>,
}

fn align(ty: u32) -> usize {
    match ty {
        3 => 2,
        TYPE_INT32 => 4,
        TYPE_INT64 => 8,
        _ => 1,
    }
}

/// The header blob to store for the package whose signature header blob is `signature` and
/// main header blob is `header` (both as in the package file, without their 8-byte magic).
///
/// # Errors
/// A message when a header does not import, or a signature tag is one rpm refuses to merge
/// ("invalid signature tag …", as rpm says).
pub fn stored_header(
    signature: &[u8],
    header: &[u8],
    install: &Install,
) -> Result<Vec<u8>, String> {
    let main = raw_entries(header).map_err(|e| format!("package header: {e}"))?;
    let sig = raw_entries(signature).map_err(|e| format!("signature header: {e}"))?;
    let has = |es: &[RawEntry<'_>], tag: u32| es.iter().any(|e| e.tag == tag);
    let mut added = Vec::new();
    for (stag, xtag, count, quirk, ty) in XLATE {
        if has(&main, xtag) {
            if quirk && !has(&sig, stag) {
                continue;
            }
            return Err(format!("invalid signature tag {xtag}"));
        }
        let Some(e) = sig.iter().rev().find(|e| e.tag == stag) else {
            continue;
        };
        if e.ty != ty || e.count < 1 || e.count > 16 << 20 || (count != 0 && e.count != count) {
            return Err(format!("invalid signature tag {xtag}"));
        }
        added.push(Added {
            tag: xtag,
            ty,
            count: e.count,
            data: e.data.to_vec(),
        });
    }
    let int = |tag, n: u32| Added {
        tag,
        ty: TYPE_INT32,
        count: 1,
        data: n.to_be_bytes().to_vec(),
    };
    added.push(int(TAG_INSTALLTIME, install.time));
    added.push(int(TAG_INSTALLCOLOR, install.color));
    added.push(int(TAG_INSTALLTID, install.tid));
    if !install.file_states.is_empty() {
        added.push(Added {
            tag: TAG_FILESTATES,
            ty: TYPE_CHAR,
            count: install.file_states.len() as u32,
            data: install.file_states.clone(),
        });
    }
    if let Some(p) = main.iter().rev().find(|e| e.tag == TAG_PREFIXES) {
        added.push(Added {
            tag: TAG_INSTPREFIXES,
            ty: p.ty,
            count: p.count,
            data: p.data.to_vec(),
        });
    }
    for a in &added {
        if has(&main, a.tag) && a.tag != TAG_INSTPREFIXES {
            return Err(format!(
                "the package header already has install-time tag {}",
                a.tag
            ));
        }
    }
    added.sort_by_key(|a| a.tag);
    Ok(append(header, &added))
}

/// `header` with `added` appended to its index and data.
fn append(header: &[u8], added: &[Added]) -> Vec<u8> {
    let be = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let (il, dl) = (be(0) as usize, be(4) as usize);
    let index = &header[8..8 + 16 * il];
    let mut data = header[8 + 16 * il..8 + 16 * il + dl].to_vec();
    let mut entries = Vec::with_capacity(added.len() * 16);
    for a in added {
        while !data.len().is_multiple_of(align(a.ty)) {
            data.push(0);
        }
        for w in [a.tag, a.ty, data.len() as u32, a.count] {
            entries.extend_from_slice(&w.to_be_bytes());
        }
        data.extend_from_slice(&a.data);
    }
    let mut out = Vec::with_capacity(8 + index.len() + entries.len() + data.len());
    out.extend_from_slice(&((il + added.len()) as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(index);
    out.extend_from_slice(&entries);
    out.extend_from_slice(&data);
    out
}

/// The transaction color of this machine's rpm (`%_transaction_color`): 3 where rpm's
/// platform macros set it (the 64-bit multilib platforms), 0 elsewhere.
pub fn transaction_color() -> u32 {
    if cfg!(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64",
        target_arch = "s390x"
    )) {
        3
    } else {
        0
    }
}
