//! Parser for an installed rpm header blob, as the database stores it: big-endian `il`
//! (entry count) and `dl` (data length), `il` 16-byte index entries, then `dl` bytes of data.
//! No lead, no signature header and no 8-byte header magic in front.
//!
//! We do not use the `rpm` crate here: rpm 0.30 parses a header only through
//! `PackageMetadata::parse`, which wants a lead, a signature header and the header magic in
//! front of the blob (a database has none of them), and it pulls in a lot of dependencies
//! for the few dozen lines of bounds checking we need.
//!
//! Invariant: every offset, count and length read from the blob is checked against the blob
//! before use, with rpm's own limits (`headerImport`/`hdrblobVerifyInfo`/
//! `hdrblobVerifyRegion`), so any input gives a `Package` or a `HeaderError`, never a panic,
//! and nothing is allocated beyond what the blob itself contains.

use std::fmt;

use crate::rpmdb::{Dependency, FileEntry, More, Package};

/// rpm's `HEADER_TAGS_MAX`: at most 65535 index entries.
const MAX_TAGS: u32 = 0xffff;
/// rpm's `HEADER_DATA_MAX`: at most 256 MiB of data.
const MAX_DATA: u32 = 0x0fff_ffff;
/// Size of one index entry (and of a region trailer).
const ENTRY_SIZE: usize = 16;

const TYPE_NULL: u32 = 0;
const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Region tags: the first entry of a header that carries a signed, immutable region.
const TAG_HEADERIMAGE: u32 = 61;
const TAG_HEADERSIGNATURES: u32 = 62;
const TAG_HEADERIMMUTABLE: u32 = 63;
/// rpm rejects tags below `HEADER_I18NTABLE` (100) other than the region tag.
const TAG_MIN: u32 = 100;

pub const TAG_NAME: u32 = 1000;
pub const TAG_VERSION: u32 = 1001;
pub const TAG_RELEASE: u32 = 1002;
pub const TAG_EPOCH: u32 = 1003;
pub const TAG_SUMMARY: u32 = 1004;
pub const TAG_DESCRIPTION: u32 = 1005;
pub const TAG_BUILDTIME: u32 = 1006;
pub const TAG_INSTALLTIME: u32 = 1008;
pub const TAG_SIZE: u32 = 1009;
pub const TAG_VENDOR: u32 = 1011;
pub const TAG_LICENSE: u32 = 1014;
pub const TAG_PACKAGER: u32 = 1015;
pub const TAG_URL: u32 = 1020;
pub const TAG_ARCH: u32 = 1022;
pub const TAG_OLDFILENAMES: u32 = 1027;
pub const TAG_SOURCERPM: u32 = 1044;
pub const TAG_PROVIDENAME: u32 = 1047;
pub const TAG_REQUIREFLAGS: u32 = 1048;
pub const TAG_REQUIRENAME: u32 = 1049;
pub const TAG_REQUIREVERSION: u32 = 1050;
pub const TAG_CONFLICTFLAGS: u32 = 1053;
pub const TAG_CONFLICTNAME: u32 = 1054;
pub const TAG_CONFLICTVERSION: u32 = 1055;
pub const TAG_OBSOLETENAME: u32 = 1090;
pub const TAG_PROVIDEFLAGS: u32 = 1112;
pub const TAG_PROVIDEVERSION: u32 = 1113;
pub const TAG_OBSOLETEFLAGS: u32 = 1114;
pub const TAG_OBSOLETEVERSION: u32 = 1115;
pub const TAG_DIRINDEXES: u32 = 1116;
pub const TAG_BASENAMES: u32 = 1117;
pub const TAG_DIRNAMES: u32 = 1118;
pub const TAG_LONGSIZE: u32 = 5009;
pub const TAG_FILESIZES: u32 = 1028;
pub const TAG_FILESTATES: u32 = 1029;
pub const TAG_FILEMODES: u32 = 1030;
pub const TAG_FILERDEVS: u32 = 1033;
pub const TAG_FILEMTIMES: u32 = 1034;
pub const TAG_FILEDIGESTS: u32 = 1035;
pub const TAG_FILELINKTOS: u32 = 1036;
pub const TAG_FILEFLAGS: u32 = 1037;
pub const TAG_FILEUSERNAME: u32 = 1039;
pub const TAG_FILEGROUPNAME: u32 = 1040;
pub const TAG_FILEVERIFYFLAGS: u32 = 1045;
pub const TAG_LONGFILESIZES: u32 = 5008;
pub const TAG_FILECAPS: u32 = 5010;
pub const TAG_FILEDIGESTALGO: u32 = 5011;

/// Why a header blob was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The blob is shorter than its own `il`/`dl` say, or longer.
    Length { have: usize, need: u64 },
    /// `il` or `dl` over rpm's limits.
    Limits { il: u32, dl: u32 },
    /// Index entry `index` is malformed.
    Entry {
        index: usize,
        tag: u32,
        what: &'static str,
    },
    /// The immutable region tag or its trailer is malformed.
    Region(&'static str),
    /// The file list tags do not fit together.
    Files(&'static str),
    /// NAME is missing (or not a string): rpm's database iterator skips such a header as
    /// damaged. Every other tag is optional to rpm (`rpm -qa` prints a package without
    /// VERSION as `name-release.arch`), and so to us.
    Missing(u32),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Length { have, need } => {
                write!(f, "blob is {have} bytes, its il/dl need {need}")
            }
            HeaderError::Limits { il, dl } => {
                write!(f, "il {il} / dl {dl} over rpm's limits (65535 / 256 MiB)")
            }
            HeaderError::Entry { index, tag, what } => {
                write!(f, "index entry {index} (tag {tag}): {what}")
            }
            HeaderError::Region(what) => write!(f, "region: {what}"),
            HeaderError::Files(what) => write!(f, "file list: {what}"),
            HeaderError::Missing(tag) => write!(f, "required tag {tag} missing"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// One validated index entry; `data` is exactly the bytes rpm's `dataLength` assigns to it.
#[derive(Clone, Copy)]
struct Entry<'a> {
    tag: u32,
    ty: u32,
    count: u32,
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> u32 {
    // Callers pass in-bounds offsets; the fallback keeps us panic-free regardless.
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn raw_entry(index_bytes: &[u8], i: usize) -> (u32, u32, i32, u32) {
    let at = i * ENTRY_SIZE;
    match index_bytes.get(at..at + ENTRY_SIZE) {
        Some(raw) => entry_fields(raw.try_into().unwrap_or(&[0; ENTRY_SIZE])),
        None => (0, 0, 0, 0),
    }
}

/// Tag, type, offset and count of a 16-byte index entry: fixed-size array, no bounds
/// checks (this runs for every entry of every header).
fn entry_fields(raw: &[u8; ENTRY_SIZE]) -> (u32, u32, i32, u32) {
    let w = |k: usize| u32::from_be_bytes([raw[k], raw[k + 1], raw[k + 2], raw[k + 3]]);
    (w(0), w(4), w(8) as i32, w(12))
}

/// rpm's `dataLength`: how many bytes `count` items of `ty` occupy at the start of `data`,
/// or `None` when they do not fit (an unterminated string included).
fn data_length(ty: u32, count: u32, data: &[u8]) -> Option<usize> {
    let count = count as usize;
    match ty {
        TYPE_STRING => {
            if count != 1 {
                return None;
            }
            nth_nul(data, 1).map(|n| n + 1)
        }
        TYPE_STRING_ARRAY | TYPE_I18NSTRING => nth_nul(data, count).map(|n| n + 1),
        TYPE_NULL => None,
        _ => {
            let size = match ty {
                TYPE_CHAR | TYPE_INT8 | TYPE_BIN => 1,
                TYPE_INT16 => 2,
                TYPE_INT32 => 4,
                TYPE_INT64 => 8,
                _ => return None,
            };
            let len = count.checked_mul(size)?;
            (len <= data.len()).then_some(len)
        }
    }
}

/// The position of the `n`th NUL byte of `data` (n ≥ 1). Eight bytes at a time, counting
/// the NULs of each word with one popcount: file lists make string arrays most of a
/// database, and a byte-by-byte scan was a quarter of a listing's time.
fn nth_nul(data: &[u8], mut n: usize) -> Option<usize> {
    if n == 0 {
        return None;
    }
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut chunks = data.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let v = u64::from_le_bytes(chunk.try_into().unwrap_or([1; 8]));
        // Exactly the zero bytes of v get their high bit set (no carries between bytes).
        let zeros = !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7);
        let count = zeros.count_ones() as usize;
        if count >= n {
            let mut z = zeros;
            for _ in 1..n {
                z &= z - 1; // drop the lowest set bit
            }
            return Some(base + z.trailing_zeros() as usize / 8);
        }
        n -= count;
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == 0 {
            n -= 1;
            if n == 0 {
                return Some(base + i);
            }
        }
    }
    None
}

fn type_align(ty: u32) -> usize {
    match ty {
        TYPE_INT16 => 2,
        TYPE_INT32 => 4,
        TYPE_INT64 => 8,
        _ => 1,
    }
}

/// First string of a STRING, I18NSTRING or STRING_ARRAY entry (rpm shows the first
/// translation in the C locale).
fn entry_string(e: &Entry<'_>) -> Option<String> {
    match e.ty {
        TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY => {
            // A STRING's data is exactly its text and NUL (measured by `data_length`).
            let end = match e.ty {
                TYPE_STRING => e.data.len().checked_sub(1)?,
                _ => nth_nul(e.data, 1)?,
            };
            let text = &e.data[..end];
            // The checked conversion has an ASCII fast path the lossy one lacks.
            Some(match std::str::from_utf8(text) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(text).into_owned(),
            })
        }
        _ => None,
    }
}

fn entry_u32(e: &Entry<'_>) -> Option<u32> {
    let d = e.data;
    match e.ty {
        TYPE_INT32 => Some(be32(d, 0)),
        TYPE_INT16 if d.len() >= 2 => Some(u16::from_be_bytes([d[0], d[1]]) as u32),
        TYPE_INT8 | TYPE_CHAR => d.first().map(|&b| b as u32),
        _ => None,
    }
}

fn entry_u64(e: &Entry<'_>) -> Option<u64> {
    match e.ty {
        TYPE_INT64 => {
            let b: [u8; 8] = e.data.get(..8)?.try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }
        _ => entry_u32(e).map(u64::from),
    }
}

/// The parsed index of a header: entries in blob order, later ones overriding earlier ones
/// with the same tag (tags added at install time sit after the immutable region).
struct Header<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Header<'a> {
    fn get(&self, tag: u32) -> Option<&Entry<'a>> {
        self.entries.iter().rev().find(|e| e.tag == tag)
    }

    fn string(&self, tag: u32) -> Option<String> {
        entry_string(self.get(tag)?)
    }

    fn strings(&self, tag: u32) -> Vec<String> {
        match self.get(tag) {
            Some(e) if e.ty == TYPE_STRING_ARRAY || e.ty == TYPE_STRING => e
                .data
                .split(|&b| b == 0)
                .take(e.count as usize)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    fn u32s(&self, tag: u32) -> Vec<u32> {
        match self.get(tag) {
            Some(e) if e.ty == TYPE_INT32 => e
                .data
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn u32(&self, tag: u32) -> Option<u32> {
        entry_u32(self.get(tag)?)
    }

    fn deps(&self, name: u32, flags: u32, version: u32) -> Vec<Dependency> {
        let names = self.strings(name);
        let flags = self.u32s(flags);
        let mut versions = self.strings(version).into_iter();
        // rpm pairs the three arrays by position; a short flags/version array (never seen
        // in practice) degrades to "no flags, no version" rather than failing the package.
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| Dependency {
                name,
                flags: flags.get(i).copied().unwrap_or(0),
                version: versions.next().unwrap_or_default(),
            })
            .collect()
    }

    fn files(&self) -> Result<Vec<String>, HeaderError> {
        let basenames = self.strings(TAG_BASENAMES);
        if basenames.is_empty() {
            return Ok(self.strings(TAG_OLDFILENAMES));
        }
        let dirnames = self.strings(TAG_DIRNAMES);
        let dirindexes = self.u32s(TAG_DIRINDEXES);
        if dirindexes.len() != basenames.len() {
            return Err(HeaderError::Files(
                "BASENAMES and DIRINDEXES differ in length",
            ));
        }
        basenames
            .iter()
            .zip(&dirindexes)
            .map(|(base, &di)| match dirnames.get(di as usize) {
                Some(dir) => Ok(format!("{dir}{base}")),
                None => Err(HeaderError::Files("DIRINDEXES entry out of range")),
            })
            .collect()
    }
}

impl Header<'_> {
    /// The integers of an integer entry, whatever its width; `None` when the tag is absent,
    /// empty when it has another type (which then fails the count check of the caller).
    fn numbers(&self, tag: u32) -> Option<Vec<u64>> {
        let e = self.get(tag)?;
        let size = match e.ty {
            TYPE_CHAR | TYPE_INT8 => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 => 8,
            _ => return Some(Vec::new()),
        };
        Some(
            e.data
                .chunks_exact(size)
                .map(|c| c.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
                .collect(),
        )
    }

    /// The strings of a STRING_ARRAY entry; `None` when the tag is absent.
    fn string_column(&self, tag: u32) -> Option<Vec<String>> {
        self.get(tag)?;
        Some(self.strings(tag))
    }

    /// The file list with what rpm recorded about each file, as `rpmfilesNew` reads it:
    /// a per-file array whose length is not the number of files makes the whole list
    /// unusable (rpm: "Wrong number of entries for tag …", and the package has no files).
    fn file_entries(&self) -> Result<Vec<FileEntry>, HeaderError> {
        let paths = self.files()?;
        let n = paths.len();
        fn fit<T>(v: Option<Vec<T>>, n: usize) -> Result<Option<Vec<T>>, HeaderError> {
            match v {
                Some(v) if v.len() != n => Err(HeaderError::Files(
                    "a per-file array has the wrong number of entries",
                )),
                v => Ok(v),
            }
        }
        let sizes = match fit(self.numbers(TAG_LONGFILESIZES), n)? {
            Some(v) => Some(v),
            None => fit(self.numbers(TAG_FILESIZES), n)?,
        };
        let modes = fit(self.numbers(TAG_FILEMODES), n)?;
        let rdevs = fit(self.numbers(TAG_FILERDEVS), n)?;
        let mtimes = fit(self.numbers(TAG_FILEMTIMES), n)?;
        let flags = fit(self.numbers(TAG_FILEFLAGS), n)?;
        let verify = fit(self.numbers(TAG_FILEVERIFYFLAGS), n)?;
        let states = fit(self.numbers(TAG_FILESTATES), n)?;
        let digests = fit(self.string_column(TAG_FILEDIGESTS), n)?;
        let links = fit(self.string_column(TAG_FILELINKTOS), n)?;
        let users = fit(self.string_column(TAG_FILEUSERNAME), n)?;
        let groups = fit(self.string_column(TAG_FILEGROUPNAME), n)?;
        let caps = fit(self.string_column(TAG_FILECAPS), n)?;
        let num =
            |v: &Option<Vec<u64>>, i: usize, default: u64| v.as_ref().map_or(default, |v| v[i]);
        let text = |v: &Option<Vec<String>>, i: usize| {
            v.as_ref().map(|v| v[i].clone()).unwrap_or_default()
        };
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| FileEntry {
                path,
                mode: num(&modes, i, 0) as u16,
                size: num(&sizes, i, 0),
                mtime: num(&mtimes, i, 0) as u32,
                digest: text(&digests, i),
                linkto: text(&links, i),
                flags: num(&flags, i, 0) as u32,
                // rpm verifies everything when the header does not say.
                verify: num(&verify, i, u64::from(u32::MAX)) as u32,
                user: text(&users, i),
                group: text(&groups, i),
                rdev: num(&rdevs, i, 0) as u16,
                state: num(&states, i, 0) as u8,
                caps: text(&caps, i),
            })
            .collect())
    }
}

/// Validates the index of `blob` the way rpm's `headerImport` does and returns its entries.
fn index(blob: &[u8]) -> Result<Header<'_>, HeaderError> {
    let mut entries = Vec::new();
    index_with(blob, |_| true, |e| entries.push(e))?;
    Ok(Header { entries })
}

/// One index entry of a validated header, for code that needs tags the `Package` view does
/// not carry (the native path's index keys and stored header): the type (rpm's
/// `rpmTagType`, 1 CHAR … 9 I18NSTRING), the count and exactly the data bytes rpm's
/// `dataLength` assigns to it, big-endian as stored.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub tag: u32,
    pub ty: u32,
    pub count: u32,
    pub data: &'a [u8],
}

impl<'a> RawEntry<'a> {
    /// The strings of a STRING, STRING_ARRAY or I18NSTRING entry (lossy UTF-8).
    pub fn strings(&self) -> Vec<String> {
        match self.ty {
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => self
                .data
                .split(|&b| b == 0)
                .take(self.count as usize)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The numbers of an INT8/CHAR, INT16, INT32 or INT64 entry.
    pub fn numbers(&self) -> Vec<u64> {
        Header {
            entries: vec![self.entry()],
        }
        .numbers(self.tag)
        .unwrap_or_default()
    }

    fn entry(&self) -> Entry<'a> {
        Entry {
            tag: self.tag,
            ty: self.ty,
            count: self.count,
            data: self.data,
        }
    }
}

/// The entries of `blob` in index order, validated as rpm's `headerImport` does (region,
/// offsets, lengths); a tag may appear twice, the later one winning, as in [`parse`].
///
/// # Errors
/// [`HeaderError`] for whatever rpm itself would refuse.
pub fn raw_entries(blob: &[u8]) -> Result<Vec<RawEntry<'_>>, HeaderError> {
    Ok(index(blob)?
        .entries
        .into_iter()
        .map(|e| RawEntry {
            tag: e.tag,
            ty: e.ty,
            count: e.count,
            data: e.data,
        })
        .collect())
}

/// The tags a listing shows (see [`parse_summary`]).
fn summary_tag(tag: u32) -> bool {
    matches!(
        tag,
        TAG_NAME
            | TAG_VERSION
            | TAG_RELEASE
            | TAG_EPOCH
            | TAG_ARCH
            | TAG_INSTALLTIME
            | TAG_SIZE
            | TAG_LONGSIZE
            | TAG_SUMMARY
    )
}

/// Validates the index of `blob` as rpm's `headerImport` does and hands every entry, in
/// blob order, to `each`; entries of tags `wanted` refuses are passed over unchecked and
/// unread. With every tag wanted this is rpm's validation; a listing wants a few tags, and
/// checking the other fifty-odd entries of each header (order, overlap, and scanning file
/// name arrays, most of a database, for their terminators) was most of its time. What is
/// read is checked all the same: the blob's length against il/dl, the region, and each
/// wanted entry's type, count, alignment, offset, order and data length, so every byte read
/// is in bounds.
fn index_with<'a>(
    blob: &'a [u8],
    wanted: impl Fn(u32) -> bool,
    mut each: impl FnMut(Entry<'a>),
) -> Result<(), HeaderError> {
    if blob.len() < 8 {
        return Err(HeaderError::Length {
            have: blob.len(),
            need: 8,
        });
    }
    let il = be32(blob, 0);
    let dl = be32(blob, 4);
    if il & !MAX_TAGS != 0 || dl & !MAX_DATA != 0 {
        return Err(HeaderError::Limits { il, dl });
    }
    let need = 8 + il as u64 * ENTRY_SIZE as u64 + dl as u64;
    // rpm compares the stored length with `8 + il*16 + dl` exactly; ndb pads blobs to 16
    // bytes but strips the padding before handing them over, so equality holds for us too.
    if blob.len() as u64 != need {
        return Err(HeaderError::Length {
            have: blob.len(),
            need,
        });
    }
    let il = il as usize;
    let dl = dl as usize;
    let index_bytes = &blob[8..8 + il * ENTRY_SIZE];
    let data = &blob[8 + il * ENTRY_SIZE..];
    if il < 1 {
        return Err(HeaderError::Region("no tags"));
    }

    // Region: the first entry is HEADERIMMUTABLE (or a legacy region tag) of type BIN,
    // count 16, whose offset points at a 16-byte trailer: the same tag with a negative
    // offset of -(entries in region * 16).
    let (tag0, ty0, off0, count0) = raw_entry(index_bytes, 0);
    let mut region_end = 0usize; // rdl: data bytes covered by the region, trailer included
    let has_region = matches!(
        tag0,
        TAG_HEADERIMAGE | TAG_HEADERSIGNATURES | TAG_HEADERIMMUTABLE
    );
    if has_region {
        if ty0 != TYPE_BIN || count0 != ENTRY_SIZE as u32 {
            return Err(HeaderError::Region("region tag has wrong type or count"));
        }
        let trailer_at =
            usize::try_from(off0).map_err(|_| HeaderError::Region("negative region offset"))?;
        let trailer = data
            .get(trailer_at..trailer_at + ENTRY_SIZE)
            .ok_or(HeaderError::Region("trailer outside data"))?;
        let (ttag, tty, toff, tcount) = raw_entry(trailer, 0);
        let ttag = if tag0 == TAG_HEADERSIGNATURES && ttag == TAG_HEADERIMAGE {
            TAG_HEADERSIGNATURES
        } else {
            ttag
        };
        if ttag != tag0 || tty != TYPE_BIN || tcount != ENTRY_SIZE as u32 {
            return Err(HeaderError::Region("trailer does not match region tag"));
        }
        let ril_bytes = toff
            .checked_neg()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(HeaderError::Region("trailer offset not negative"))?;
        let ril = ril_bytes / ENTRY_SIZE;
        if ril_bytes % ENTRY_SIZE != 0 || ril > il {
            return Err(HeaderError::Region("region entry count out of range"));
        }
        region_end = trailer_at + ENTRY_SIZE;
    }

    let first = usize::from(has_region);
    let mut end = 0usize;
    let (entries, _) = index_bytes.as_chunks::<ENTRY_SIZE>();
    for (k, raw) in entries.get(first..).unwrap_or_default().iter().enumerate() {
        let i = first + k;
        let (tag, ty, off, count) = entry_fields(raw);
        if !wanted(tag) {
            continue;
        }
        let bad = |what| HeaderError::Entry {
            index: i,
            tag,
            what,
        };
        // rpm requires entries sorted by offset with no overlapping data.
        let off = usize::try_from(off).map_err(|_| bad("negative offset"))?;
        if end > off {
            return Err(bad("data overlaps previous entry"));
        }
        if tag < TAG_MIN {
            return Err(bad("tag below 100"));
        }
        if ty > TYPE_I18NSTRING {
            return Err(bad("unknown type"));
        }
        if count < 1 || count as usize > dl {
            return Err(bad("count out of range"));
        }
        if off % type_align(ty) != 0 {
            return Err(bad("misaligned data"));
        }
        if off > dl {
            return Err(bad("offset past data"));
        }
        let len = data_length(ty, count, &data[off..]).ok_or_else(|| bad("data does not fit"))?;
        if len == 0 {
            return Err(bad("empty data"));
        }
        end = off + len;
        // The region trailer is not an entry of its own; nothing may overlap it.
        if has_region && end > region_end - ENTRY_SIZE && off < region_end {
            return Err(bad("data overlaps region trailer"));
        }
        each(Entry {
            tag,
            ty,
            count,
            data: &data[off..end],
        });
    }
    Ok(())
}

/// Parses an installed header blob into a [`Package`] with the given db record number.
pub fn parse(blob: &[u8], instance: u32) -> Result<Package, HeaderError> {
    let h = index(blob)?;
    let mut more = More {
        license: h.string(TAG_LICENSE),
        vendor: h.string(TAG_VENDOR),
        buildtime: h.u32(TAG_BUILDTIME),
        sourcerpm: h.string(TAG_SOURCERPM),
        url: h.string(TAG_URL),
        packager: h.string(TAG_PACKAGER),
        description: h.string(TAG_DESCRIPTION),
        requires: h.deps(TAG_REQUIRENAME, TAG_REQUIREFLAGS, TAG_REQUIREVERSION),
        provides: h.deps(TAG_PROVIDENAME, TAG_PROVIDEFLAGS, TAG_PROVIDEVERSION),
        conflicts: h.deps(TAG_CONFLICTNAME, TAG_CONFLICTFLAGS, TAG_CONFLICTVERSION),
        obsoletes: h.deps(TAG_OBSOLETENAME, TAG_OBSOLETEFLAGS, TAG_OBSOLETEVERSION),
        ..More::default()
    };
    // A file list that does not hold together is this package's problem only: rpm lists
    // it as having no files (`rpm -ql`: "(contains no files)").
    match h.files() {
        Ok(files) => more.files = files,
        Err(e) => more.files_error = Some(e.to_string()),
    }
    let mut p = Package {
        more: Some(Box::new(more)),
        ..Package::default()
    };
    Shown::of(&h).fill(&mut p, instance)?;
    Ok(p)
}

/// What `rpm -qf` and `rpm -V` need of a header: the listing's fields, and every file with
/// what rpm recorded about it (mode, size, digest, owner, ...). The whole blob is validated
/// as rpm does; a file list that does not hold together leaves `entries` empty and says why
/// in `files_error`, as `rpm -V` then verifies nothing of that package. The file list is
/// decoded when [`Package::more`] is first called ([`decode_files`]).
pub fn parse_files(blob: &[u8], instance: u32) -> Result<Package, HeaderError> {
    let h = index(blob)?;
    let mut p = Package {
        files_later: Some(std::sync::Arc::new(super::FilesLater {
            blob: blob.into(),
            ..Default::default()
        })),
        ..Package::default()
    };
    Shown::of(&h).fill(&mut p, instance)?;
    Ok(p)
}

/// The file list and digest algorithm of a header [`parse_files`] accepted (its `more`,
/// decoded when first asked for). A file list that cannot be decoded is `files_error`.
pub(crate) fn decode_files(blob: &[u8]) -> More {
    let h = match index(blob) {
        Ok(h) => h,
        Err(e) => {
            return More {
                files_error: Some(e.to_string()),
                ..More::default()
            }
        }
    };
    let mut more = More {
        // rpm's default when the header names no algorithm: MD5.
        digest_algo: h.u32(TAG_FILEDIGESTALGO).unwrap_or(1),
        ..More::default()
    };
    match h.file_entries() {
        Ok(entries) => more.entries = entries,
        Err(e) => more.files_error = Some(e.to_string()),
    }
    more
}

/// Like [`parse`], with only what a listing shows: name, epoch, version, release, arch,
/// install time, size and summary; everything else stays empty. Only the entries it reads
/// are validated (a full parse validates all of them, as rpm does), in one pass that keeps
/// them instead of collecting every entry.
pub fn parse_summary(blob: &[u8], instance: u32) -> Result<Package, HeaderError> {
    let mut p = Package::default();
    parse_summary_into(blob, instance, &mut p)?;
    Ok(p)
}

/// [`parse_summary`] into a package that is already in place (a listing's slot in its
/// list): a `Package` is a few hundred bytes, and returning one through `Result` and
/// pushing it copied each one three times. `p` should be empty (`Package::default()`);
/// the listing's fields are overwritten, the others left as they are. On error, `p` may
/// hold some of the fields.
pub fn parse_summary_into(blob: &[u8], instance: u32, p: &mut Package) -> Result<(), HeaderError> {
    let mut shown = Shown::default();
    index_with(blob, summary_tag, |e| {
        // Later entries override earlier ones with the same tag, as in `Header::get`.
        let slot = match e.tag {
            TAG_NAME => &mut shown.name,
            TAG_VERSION => &mut shown.version,
            TAG_RELEASE => &mut shown.release,
            TAG_EPOCH => &mut shown.epoch,
            TAG_ARCH => &mut shown.arch,
            TAG_INSTALLTIME => &mut shown.installtime,
            TAG_SIZE => &mut shown.size,
            TAG_LONGSIZE => &mut shown.longsize,
            TAG_SUMMARY => &mut shown.summary,
            _ => return,
        };
        *slot = Some(e);
    })?;
    shown.fill(p, instance)
}

/// The entries of the fields a listing shows, the last of each tag.
#[derive(Default)]
struct Shown<'a> {
    name: Option<Entry<'a>>,
    version: Option<Entry<'a>>,
    release: Option<Entry<'a>>,
    epoch: Option<Entry<'a>>,
    arch: Option<Entry<'a>>,
    installtime: Option<Entry<'a>>,
    size: Option<Entry<'a>>,
    longsize: Option<Entry<'a>>,
    summary: Option<Entry<'a>>,
}

impl<'a> Shown<'a> {
    /// The listing's entries of a fully indexed header.
    fn of(h: &Header<'a>) -> Shown<'a> {
        let get = |tag| h.get(tag).copied();
        Shown {
            name: get(TAG_NAME),
            version: get(TAG_VERSION),
            release: get(TAG_RELEASE),
            epoch: get(TAG_EPOCH),
            arch: get(TAG_ARCH),
            installtime: get(TAG_INSTALLTIME),
            size: get(TAG_SIZE),
            longsize: get(TAG_LONGSIZE),
            summary: get(TAG_SUMMARY),
        }
    }

    fn fill(&self, p: &mut Package, instance: u32) -> Result<(), HeaderError> {
        let string = |e: &Option<Entry<'_>>| e.as_ref().and_then(entry_string);
        p.name = string(&self.name).ok_or(HeaderError::Missing(TAG_NAME))?;
        p.version = string(&self.version);
        p.release = string(&self.release);
        p.gpg_pubkey = p.name == "gpg-pubkey";
        p.epoch = self.epoch.as_ref().and_then(entry_u32);
        p.arch = string(&self.arch);
        p.installtime = self.installtime.as_ref().and_then(entry_u32);
        p.size = (self.longsize.as_ref().and_then(entry_u64))
            .or_else(|| self.size.as_ref().and_then(entry_u64));
        p.summary = string(&self.summary);
        p.instance = instance;
        Ok(())
    }
}

/// Builds header blobs for tests (ours and other modules'): a region-less or region-wrapped
/// header from `(tag, type, count, data)` entries, laid out with rpm's alignment.
#[cfg(test)]
pub(crate) mod build {
    pub const BIN: u32 = super::TYPE_BIN;
    pub const STRING: u32 = super::TYPE_STRING;
    pub const INT32: u32 = super::TYPE_INT32;
    pub const STRING_ARRAY: u32 = super::TYPE_STRING_ARRAY;
    pub const I18NSTRING: u32 = super::TYPE_I18NSTRING;

    pub fn s(x: &str) -> Vec<u8> {
        let mut v = x.as_bytes().to_vec();
        v.push(0);
        v
    }

    pub fn ints(xs: &[u32]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// `immutable: Some(n)` wraps the first `n` entries in a HEADERIMMUTABLE region, the rest
    /// appended after it like tags rpm adds at install time.
    pub fn blob(entries: &[(u32, u32, u32, Vec<u8>)], immutable: Option<usize>) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        let push = |index: &mut Vec<u8>, data: &mut Vec<u8>, e: &(u32, u32, u32, Vec<u8>)| {
            let align = super::type_align(e.1);
            while !data.len().is_multiple_of(align) {
                data.push(0);
            }
            index.extend_from_slice(&e.0.to_be_bytes());
            index.extend_from_slice(&e.1.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&e.2.to_be_bytes());
            data.extend_from_slice(&e.3);
        };
        let n_region = immutable.unwrap_or(0);
        let mut il = entries.len();
        if immutable.is_some() {
            il += 1;
        }
        for e in &entries[..n_region] {
            push(&mut index, &mut data, e);
        }
        if immutable.is_some() {
            let trailer_at = data.len() as u32;
            let ril = (n_region as i32 + 1) * 16;
            data.extend_from_slice(&63u32.to_be_bytes());
            data.extend_from_slice(&BIN.to_be_bytes());
            data.extend_from_slice(&(-ril).to_be_bytes());
            data.extend_from_slice(&16u32.to_be_bytes());
            let mut region = Vec::new();
            region.extend_from_slice(&63u32.to_be_bytes());
            region.extend_from_slice(&BIN.to_be_bytes());
            region.extend_from_slice(&trailer_at.to_be_bytes());
            region.extend_from_slice(&16u32.to_be_bytes());
            region.extend_from_slice(&index);
            index = region;
        }
        for e in &entries[n_region..] {
            push(&mut index, &mut data, e);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(il as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&data);
        out
    }

    /// A small but complete package header with an immutable region and an INSTALLTIME
    /// appended outside it.
    pub fn sample(name: &str) -> Vec<u8> {
        blob(
            &[
                (super::TAG_NAME, STRING, 1, s(name)),
                (super::TAG_VERSION, STRING, 1, s("1.0")),
                (super::TAG_RELEASE, STRING, 1, s("1")),
                (super::TAG_EPOCH, INT32, 1, ints(&[3])),
                (
                    super::TAG_SUMMARY,
                    I18NSTRING,
                    2,
                    [s("sum"), s("résumé")].concat(),
                ),
                (super::TAG_SIZE, INT32, 1, ints(&[1234])),
                (super::TAG_ARCH, STRING, 1, s("noarch")),
                (super::TAG_REQUIREFLAGS, INT32, 2, ints(&[0, 12])),
                (
                    super::TAG_REQUIRENAME,
                    STRING_ARRAY,
                    2,
                    [s("a"), s("b")].concat(),
                ),
                (
                    super::TAG_REQUIREVERSION,
                    STRING_ARRAY,
                    2,
                    [s(""), s("2.0")].concat(),
                ),
                (super::TAG_DIRINDEXES, INT32, 2, ints(&[0, 1])),
                (
                    super::TAG_BASENAMES,
                    STRING_ARRAY,
                    2,
                    [s("x"), s("y")].concat(),
                ),
                (
                    super::TAG_DIRNAMES,
                    STRING_ARRAY,
                    2,
                    [s("/usr/"), s("/etc/")].concat(),
                ),
                (super::TAG_INSTALLTIME, INT32, 1, ints(&[1_600_000_000])),
            ],
            Some(13),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn with_installtime(name: &str) -> Vec<u8> {
        blob(
            &[
                (TAG_NAME, STRING, 1, s(name)),
                (TAG_VERSION, STRING, 1, s("1.0")),
                (TAG_RELEASE, STRING, 1, s("1")),
                (TAG_INSTALLTIME, INT32, 1, ints(&[1_700_000_000])),
            ],
            Some(3),
        )
    }

    #[test]
    fn nth_nul_finds_each_terminator() {
        let data = b"a\0bc\0\0defghijklmnop\0q";
        let naive = |n: usize| {
            data.iter()
                .enumerate()
                .filter(|(_, b)| **b == 0)
                .nth(n - 1)
                .map(|(i, _)| i)
        };
        for n in 1..=5 {
            assert_eq!(nth_nul(data, n), naive(n), "n={n}");
        }
        assert_eq!(nth_nul(data, 0), None);
        assert_eq!(nth_nul(b"", 1), None);
        // Every length and position around the 8-byte chunks, and bytes whose low seven
        // bits or high bit alone could fool a word-at-a-time test.
        for len in 0..40 {
            for z in 0..len {
                for fill in [b'x', 0x80, 0x01, 0xff, 0x7f] {
                    let mut d = vec![fill; len];
                    d[z] = 0;
                    assert_eq!(
                        nth_nul(&d, 1),
                        Some(z),
                        "len {len} zero at {z} fill {fill:#x}"
                    );
                    assert_eq!(nth_nul(&d, 2), None);
                }
            }
        }
        let dense = [0u8, 1, 0, 0, 2, 0, 3, 0, 0, 0, 4, 0];
        let naive = |n: usize| {
            dense
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == 0)
                .nth(n - 1)
                .map(|(i, _)| i)
        };
        for n in 1..=9 {
            assert_eq!(nth_nul(&dense, n), naive(n), "n={n}");
        }
    }

    #[test]
    fn sample_parses() {
        let p = parse(&sample("foo"), 7).unwrap();
        assert_eq!(p.name, "foo");
        assert_eq!(p.epoch, Some(3));
        assert_eq!(p.summary.as_deref(), Some("sum"));
        assert_eq!(p.size, Some(1234));
        assert_eq!(p.arch.as_deref(), Some("noarch"));
        assert_eq!(p.more().files, vec!["/usr/x", "/etc/y"]);
        assert_eq!(p.more().requires[1].render(), "b >= 2.0");
        assert_eq!(p.more().requires[0].render(), "a");
        assert_eq!(p.instance, 7);
        assert!(!p.gpg_pubkey);
    }

    #[test]
    fn tags_after_region_are_included() {
        let p = parse(&with_installtime("bar"), 1).unwrap();
        assert_eq!(p.installtime, Some(1_700_000_000));
        assert_eq!(p.epoch, None);
        assert_eq!(p.arch, None);
    }

    #[test]
    fn region_less_header() {
        let b = blob(
            &[
                (TAG_NAME, STRING, 1, s("old")),
                (TAG_VERSION, STRING, 1, s("1")),
                (TAG_RELEASE, STRING, 1, s("2")),
                (TAG_OLDFILENAMES, STRING_ARRAY, 1, s("/bin/old")),
            ],
            None,
        );
        let p = parse(&b, 1).unwrap();
        assert_eq!(p.more().files, vec!["/bin/old"]);
    }

    #[test]
    fn bad_trailer_rejected() {
        let mut b = with_installtime("x");
        // Region entry's offset points at the trailer; corrupt the trailer's tag.
        let il = be32(&b, 0) as usize;
        let trailer_at = be32(&b, 8 + 8) as usize;
        let at = 8 + il * 16 + trailer_at;
        b[at + 3] = 62;
        assert!(matches!(parse(&b, 1), Err(HeaderError::Region(_))));
    }

    #[test]
    fn unterminated_string_rejected() {
        let mut b = blob(&[(TAG_NAME, STRING, 1, s("abc"))], None);
        let n = b.len();
        b[n - 1] = b'x';
        assert!(matches!(parse(&b, 1), Err(HeaderError::Entry { .. })));
    }

    #[test]
    fn misaligned_int_rejected() {
        let mut b = blob(
            &[
                (TAG_NAME, STRING, 1, s("ab")),
                (TAG_SIZE, INT32, 1, ints(&[1])),
            ],
            None,
        );
        // Entry 1's offset is 4 (aligned); move it to 3.
        b[8 + 16 + 11] = 3;
        assert!(matches!(parse(&b, 1), Err(HeaderError::Entry { .. })));
    }

    #[test]
    fn limits_and_lengths() {
        assert!(parse(&[], 1).is_err());
        assert!(parse(&[0, 1, 0, 0, 0, 0, 0, 0], 1).is_err());
        assert!(matches!(
            parse(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], 1),
            Err(HeaderError::Limits { .. })
        ));
        let mut b = sample("x");
        b.push(0);
        assert!(matches!(parse(&b, 1), Err(HeaderError::Length { .. })));
    }
}
