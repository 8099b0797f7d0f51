//! Read-only access to a target's RPM database, in pure std Rust: find the database file in a
//! db directory, recognise its format by content (SQLite, rpm's native ndb, BerkeleyDB hash),
//! pull every header blob out of it and parse the blobs into [`Package`]s.
//!
//! Invariants not to break: nothing here writes, locks or creates a file (no `-shm`, no
//! journal, no `mmap`: only `pread` into owned buffers, so a file truncated under us gives an
//! error, not SIGBUS); no input, however corrupt, may panic, hang or make us allocate more
//! than the file sizes and rpm's own header limits justify; and a database that changes while
//! we read it yields [`DbError::Changed`] (retry), never a mix of two states.

pub mod bdb;
pub mod header;
pub mod ndb;
pub mod sqlite;

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `RPMSENSE_LESS`: the dependency's version comparison includes "less than".
pub const RPMSENSE_LESS: u32 = 0x02;
/// `RPMSENSE_GREATER`.
pub const RPMSENSE_GREATER: u32 = 0x04;
/// `RPMSENSE_EQUAL`.
pub const RPMSENSE_EQUAL: u32 = 0x08;

/// One entry of a package's requires/provides/conflicts/obsoletes list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// `RPMSENSE_*` bits as stored in the header.
    pub flags: u32,
    /// Empty when the dependency has no version.
    pub version: String,
}

impl Dependency {
    /// The comparison operator rpm prints for these flags (`""` when there is none).
    pub fn operator(&self) -> &'static str {
        match self.flags & (RPMSENSE_LESS | RPMSENSE_GREATER | RPMSENSE_EQUAL) {
            RPMSENSE_LESS => "<",
            RPMSENSE_GREATER => ">",
            RPMSENSE_EQUAL => "=",
            x if x == RPMSENSE_LESS | RPMSENSE_EQUAL => "<=",
            x if x == RPMSENSE_GREATER | RPMSENSE_EQUAL => ">=",
            _ => "",
        }
    }

    /// Renders the dependency the way `rpm -q --requires` does: `name`, or `name >= 1.0`.
    pub fn render(&self) -> String {
        let op = self.operator();
        if op.is_empty() || self.version.is_empty() {
            self.name.clone()
        } else {
            format!("{} {} {}", self.name, op, self.version)
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// One installed package, as much of its header as the sidecar needs.
///
/// The fields a listing shows are inline; the rest, which only a full parse fills (detail
/// views), are boxed in [`More`]: a listing holds hundreds of packages, and at ~430 bytes
/// each their list alone faulted in ~40 fresh pages (~1.4 us each).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Package {
    pub name: String,
    pub epoch: Option<u32>,
    /// `None` when the header has no VERSION (rpm accepts that: `rpm -qa` leaves it out,
    /// `rpm -qi` shows `(none)`); the same for RELEASE.
    pub version: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
    pub installtime: Option<u32>,
    /// `LONGSIZE` when present, else `SIZE`.
    pub size: Option<u64>,
    pub summary: Option<String>,
    /// The database record number (BDB key, ndb pkgidx, SQLite `hnum`).
    pub instance: u32,
    /// `name == "gpg-pubkey"`: an imported signing key, not a real package.
    pub gpg_pubkey: bool,
    /// Filled by a full parse; `None` after a summary parse (see [`Package::more`]).
    pub more: Option<Box<More>>,
    /// [`Detail::Files`]: the header, whose file list is decoded on the first
    /// [`Package::more`] (by the thread that asks: `rpm -Va` decodes its packages on its
    /// worker threads, and a package whose files are never asked for is never decoded).
    pub(crate) files_later: Option<std::sync::Arc<FilesLater>>,
}

/// A header kept for its file list, decoded once on demand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FilesLater {
    pub(crate) blob: Box<[u8]>,
    pub(crate) more: std::sync::OnceLock<Box<More>>,
}

/// The parts of a [`Package`] only a full parse reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct More {
    pub description: Option<String>,
    pub license: Option<String>,
    pub vendor: Option<String>,
    pub buildtime: Option<u32>,
    pub sourcerpm: Option<String>,
    pub url: Option<String>,
    pub packager: Option<String>,
    pub requires: Vec<Dependency>,
    pub provides: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    /// Full paths, from DIRNAMES/BASENAMES/DIRINDEXES (or OLDFILENAMES).
    pub files: Vec<String>,
    /// Why the file list could not be decoded (then `files` and `entries` are empty, as rpm
    /// shows such a package: "(contains no files)"). Only this package is affected.
    pub files_error: Option<String>,
    /// Every file with what rpm recorded about it; filled by [`Detail::Files`] only.
    pub entries: Vec<FileEntry>,
    /// FILEDIGESTALGO (`PGPHASHALGO_*`: 1 MD5, 2 SHA1, 8 SHA256, ...); filled by
    /// [`Detail::Files`] only.
    pub digest_algo: u32,
}

/// One file of a package as its header records it: what `rpm -V` compares with the file
/// system and `rpm -qf` looks up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileEntry {
    pub path: String,
    /// `st_mode` bits, type included.
    pub mode: u16,
    pub size: u64,
    pub mtime: u32,
    /// Lowercase hex in the package's digest algorithm; empty for non-regular files.
    pub digest: String,
    /// A symlink's target; empty otherwise.
    pub linkto: String,
    /// `RPMFILE_*` (config, doc, ghost, ...).
    pub flags: u32,
    /// `RPMVERIFY_*`: which attributes `rpm -V` checks.
    pub verify: u32,
    pub user: String,
    pub group: String,
    pub rdev: u16,
    /// `RPMFILE_STATE_*` (0 normal, 1 replaced, 2 not installed, 3 net shared, ...).
    pub state: u8,
    /// File capabilities in libcap's text form (`cap_net_raw=ep`); empty when none.
    pub caps: String,
}

/// What a package parsed for a listing has beyond it: nothing.
static NO_MORE: More = More {
    description: None,
    license: None,
    vendor: None,
    buildtime: None,
    sourcerpm: None,
    url: None,
    packager: None,
    requires: Vec::new(),
    provides: Vec::new(),
    conflicts: Vec::new(),
    obsoletes: Vec::new(),
    files: Vec::new(),
    files_error: None,
    entries: Vec::new(),
    digest_algo: 0,
};

impl Package {
    /// The fields beyond the listing's: empty if only a summary was parsed.
    pub fn more(&self) -> &More {
        if let Some(m) = &self.more {
            return m;
        }
        match &self.files_later {
            Some(l) => l
                .more
                .get_or_init(|| Box::new(header::decode_files(&l.blob))),
            None => &NO_MORE,
        }
    }
}

/// The on-disk format a database was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sqlite,
    Ndb,
    BerkeleyDb,
}

/// What went wrong reading a database. `file` is the database file's name inside the db
/// directory; offsets are byte offsets in that file unless the variant says page.
#[derive(Debug)]
pub enum DbError {
    /// None of `rpmdb.sqlite`, `Packages.db`, `Packages` exists in the directory.
    NoDatabase,
    /// Opening or reading a file failed for a reason other than "it changed".
    Io {
        file: &'static str,
        source: io::Error,
    },
    /// The file is no database format we read (BDB btree, unknown magic, encrypted, ...).
    UnsupportedFormat { file: &'static str, what: String },
    /// The file violates its format at `offset`.
    Corrupt {
        file: &'static str,
        offset: u64,
        what: String,
    },
    /// A page-structured file violates its format on page `page`.
    CorruptPage {
        file: &'static str,
        page: u64,
        what: String,
    },
    /// The header blob of record `instance` is malformed.
    BadHeader {
        file: &'static str,
        instance: u32,
        what: String,
    },
    /// The database changed while we read it (a transaction ran): read again.
    Changed {
        file: &'static str,
        what: &'static str,
    },
    /// Unreadable, and modified moments ago: maybe a writer is halfway through, so worth a
    /// retry; when retries do not help, `source` is what is wrong with the file.
    Unsettled {
        file: &'static str,
        source: Box<DbError>,
        /// The file's mtime (seconds, nanoseconds) when it was read: one that stays the same
        /// over the retries is not being written.
        mtime: (i64, i64),
    },
}

impl DbError {
    /// True when reading again may well succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Changed { .. } | DbError::Unsettled { .. })
    }

    /// What is wrong with the file once it is clear nothing is writing it: an
    /// [`DbError::Unsettled`] file that stayed the same over the retries is simply damaged.
    pub fn settled(self) -> DbError {
        match self {
            DbError::Unsettled { source, .. } => *source,
            e => e,
        }
    }

    pub(crate) fn corrupt(file: &'static str, offset: u64, what: impl Into<String>) -> Self {
        DbError::Corrupt {
            file,
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn page(file: &'static str, page: u64, what: impl Into<String>) -> Self {
        DbError::CorruptPage {
            file,
            page,
            what: what.into(),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::NoDatabase => {
                f.write_str("no rpm database (rpmdb.sqlite, Packages.db or Packages) found")
            }
            DbError::Io { file, source } => write!(f, "{file}: {source}"),
            DbError::UnsupportedFormat { file, what } => {
                write!(f, "{file}: unsupported database format: {what}")
            }
            DbError::Corrupt { file, offset, what } => {
                write!(f, "{file}: corrupt at offset {offset}: {what}")
            }
            DbError::CorruptPage { file, page, what } => {
                write!(f, "{file}: corrupt page {page}: {what}")
            }
            DbError::BadHeader {
                file,
                instance,
                what,
            } => write!(f, "{file}: bad header in record {instance}: {what}"),
            DbError::Changed { file, what } => {
                write!(f, "{file}: database changed while reading ({what}); retry")
            }
            DbError::Unsettled { file, source, .. } => write!(
                f,
                "{file}: unreadable and modified moments ago, maybe being written ({source})"
            ),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Io { source, .. } => Some(source),
            DbError::Unsettled { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Random access to the bytes of one database file: a byte slice (tests, fuzzing) or an open
/// file read with `pread`. `size` is fixed when the source is made, so every bounds check is
/// against one snapshot; a file that shrinks later shows up as [`DbError::Changed`].
pub trait Source {
    /// The file name used in errors.
    fn name(&self) -> &'static str;
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`. Callers check bounds against `size()` first.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DbError>;

    /// Appends the `len` bytes at `offset` to `out` (whose capacity the caller reserved):
    /// an overflow chain is assembled with one copy per page instead of two.
    fn read_append(&self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), DbError> {
        check_bounds(self, offset, len)?;
        let start = out.len();
        out.resize(start + len, 0);
        self.read_at(offset, &mut out[start..])
    }

    /// Reads `len` bytes at `offset`, checking bounds against `size()` before allocating.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>, DbError> {
        let mut buf = Vec::new();
        self.read_into(offset, len, &mut buf)?;
        Ok(buf)
    }

    /// `read_vec` into a buffer the caller reuses from page to page: resized to `len`, so
    /// it is allocated and zero-filled once, not for every page (a fresh zeroed page per
    /// read was a tenth of a listing's instructions).
    fn read_into(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<(), DbError> {
        check_bounds(self, offset, len)?;
        buf.resize(len, 0);
        self.read_at(offset, buf)
    }
}

/// A set of page numbers: a bitmap below `limit` (the pages a file of its size can hold,
/// so its size is bounded by the file's) and an ordered set above it (pages only a WAL holds;
/// ordered sets and maps here need no random hash keys, a `getrandom` call per run).
/// A SipHash set per visited page was a tenth of a listing's instructions.
pub(crate) struct PageSet {
    bits: Vec<u64>,
    beyond: std::collections::BTreeSet<u32>,
}

impl PageSet {
    pub(crate) fn new(limit: u64) -> Self {
        PageSet {
            bits: vec![0; (limit / 64 + 1) as usize],
            beyond: std::collections::BTreeSet::new(),
        }
    }

    pub(crate) fn contains(&self, pgno: u32) -> bool {
        match self.bits.get(pgno as usize / 64) {
            Some(w) => w & (1u64 << (pgno % 64)) != 0,
            None => self.beyond.contains(&pgno),
        }
    }

    /// Adds `pgno`; false if it was there already.
    pub(crate) fn insert(&mut self, pgno: u32) -> bool {
        let (word, bit) = (pgno as usize / 64, 1u64 << (pgno % 64));
        match self.bits.get_mut(word) {
            Some(w) => {
                let new = *w & bit == 0;
                *w |= bit;
                new
            }
            None => self.beyond.insert(pgno),
        }
    }
}

/// Empties `out`, the buffer an item spread over several pages is assembled in, and makes
/// room for `len` bytes. A buffer too small is replaced, not grown (growing copies the old
/// bytes), by one of 256 KiB at least and twice the old one: most headers fit the first,
/// so few buffers serve the whole database and few pages are faulted in (a fresh buffer
/// for each new largest item faulted in all of them: most of the page faults of a
/// BerkeleyDB listing). Callers have checked `len` against the file size.
pub(crate) fn make_room(out: &mut Vec<u8>, len: usize) {
    out.clear();
    if out.capacity() < len {
        *out = Vec::with_capacity(len.max(out.capacity() * 2).max(256 << 10));
    }
}

/// An error unless `len` bytes at `offset` lie inside the source.
pub(crate) fn check_bounds(
    src: &(impl Source + ?Sized),
    offset: u64,
    len: usize,
) -> Result<(), DbError> {
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > src.size()) {
        return Err(DbError::corrupt(
            src.name(),
            offset,
            format!(
                "read of {len} bytes past end of file ({} bytes)",
                src.size()
            ),
        ));
    }
    Ok(())
}

/// A database image held in memory.
pub struct SliceSource<'a> {
    name: &'static str,
    data: &'a [u8],
}

impl<'a> SliceSource<'a> {
    pub fn new(name: &'static str, data: &'a [u8]) -> Self {
        SliceSource { name, data }
    }
}

impl Source for SliceSource<'_> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DbError> {
        let start = usize::try_from(offset).ok();
        let bytes = start.and_then(|s| self.data.get(s..s.checked_add(buf.len())?));
        match bytes {
            Some(b) => {
                buf.copy_from_slice(b);
                Ok(())
            }
            None => Err(DbError::corrupt(self.name, offset, "read past end of data")),
        }
    }
    fn read_append(&self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), DbError> {
        check_bounds(self, offset, len)?;
        // In bounds of `size()`, which is the slice's length.
        let start = offset as usize;
        out.extend_from_slice(&self.data[start..start + len]);
        Ok(())
    }
}

/// An open database file, read with `pread` only.
pub struct FileSource {
    name: &'static str,
    file: File,
    size: u64,
    /// Read-ahead windows: readers ask for one page at a time, mostly in file order, and a
    /// `pread` per page cost more than the parsing (a BerkeleyDB of 4 MiB took ~2000). Two
    /// reused buffers, not the whole file: memory stays flat and no fresh pages are faulted
    /// in. Two because readers follow two streams at once, the b-tree or hash pages and the
    /// overflow chains they point into, and one window refilled for each in turn read a
    /// BerkeleyDB file nearly three times over. Still a copy, never a mapping.
    windows: std::cell::RefCell<[Window; 2]>,
    /// The window used last; a miss refills the other one, unless it only continues the
    /// stream of this one (then the second buffer is never needed for a plain scan).
    recent: std::cell::Cell<usize>,
}

#[derive(Default)]
struct Window {
    offset: u64,
    len: usize,
    buf: Vec<u8>,
}

/// A read-ahead window's size: room for one of the largest pages (64 KiB), and small enough
/// that faulting its pages in (the first read of each) does not cost more than the extra
/// `pread`s it saves (one window of 256 KiB was measurably slower on a 1 MiB database).
const WINDOW: usize = 64 << 10;

impl FileSource {
    pub fn new(name: &'static str, file: File) -> Result<Self, DbError> {
        let size = file
            .metadata()
            .map_err(|source| DbError::Io { file: name, source })?
            .len();
        Ok(Self::with_size(name, file, size))
    }

    /// Like `new`, with the size already known (from a stamp taken just before).
    fn with_size(name: &'static str, file: File, size: u64) -> Self {
        FileSource {
            name,
            file,
            size,
            windows: Default::default(),
            recent: std::cell::Cell::new(0),
        }
    }

    fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<(), DbError> {
        match self.file.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            // In bounds of the size we saw at open, yet short: the file shrank under us.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(DbError::Changed {
                file: self.name,
                what: "file shrank",
            }),
            Err(source) => Err(DbError::Io {
                file: self.name,
                source,
            }),
        }
    }
}

impl Source for FileSource {
    fn name(&self) -> &'static str {
        self.name
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DbError> {
        match self.windowed(offset, buf.len(), |bytes| buf.copy_from_slice(bytes))? {
            Some(()) => Ok(()),
            None => self.pread(offset, buf),
        }
    }

    fn read_append(&self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), DbError> {
        check_bounds(self, offset, len)?;
        match self.windowed(offset, len, |bytes| out.extend_from_slice(bytes))? {
            Some(()) => Ok(()),
            None => {
                let start = out.len();
                out.resize(start + len, 0);
                self.pread(offset, &mut out[start..])
            }
        }
    }
}

impl FileSource {
    /// Calls `f` with the `len` bytes at `offset` as they sit in the read-ahead window,
    /// refilling it first if need be; `None` when the range does not suit the window (too
    /// long or past the end), for the caller to `pread` directly.
    fn windowed<R>(
        &self,
        offset: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, DbError> {
        let end = offset.checked_add(len as u64);
        if len > WINDOW || end.is_none_or(|e| e > self.size) {
            return Ok(None);
        }
        let mut windows = self.windows.borrow_mut();
        let inside =
            |w: &Window| offset >= w.offset && offset + len as u64 <= w.offset + w.len as u64;
        let recent = self.recent.get();
        let i = match windows.iter().position(inside) {
            Some(i) => i,
            None => {
                let last = &windows[recent];
                let streaming = last.buf.is_empty()
                    || (offset >= last.offset + last.len as u64
                        && offset < last.offset + (last.len + WINDOW) as u64);
                let i = if streaming { recent } else { 1 - recent };
                let w = &mut windows[i];
                // Refill from the page-aligned start, as much as the file has.
                let start = offset - offset % 4096;
                let fill = (self.size - start).min(WINDOW as u64) as usize;
                if w.buf.is_empty() {
                    // Allocated zeroed, not grown and filled byte by byte (`resize` was as
                    // costly as the whole header validation of a listing).
                    w.buf = vec![0u8; WINDOW];
                }
                self.pread(start, &mut w.buf[..fill])?;
                w.offset = start;
                w.len = fill;
                if !inside(w) {
                    return Ok(None);
                }
                i
            }
        };
        self.recent.set(i);
        let w = &windows[i];
        let at = (offset - w.offset) as usize;
        Ok(Some(f(&w.buf[at..at + len])))
    }
}

/// Magic at the start of every SQLite 3 database.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Recognises a database by its first bytes (at least the first 16; 20 for BDB).
pub fn detect(head: &[u8], file: &'static str) -> Result<Format, DbError> {
    if head.starts_with(SQLITE_MAGIC) {
        return Ok(Format::Sqlite);
    }
    if head.len() >= 4 && head[..4] == ndb::MAGIC.to_le_bytes() {
        return Ok(Format::Ndb);
    }
    if let Some(m) = head.get(12..16) {
        let le = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        let be = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
        if le == bdb::HASH_MAGIC || be == bdb::HASH_MAGIC {
            return Ok(Format::BerkeleyDb);
        }
        if le == bdb::BTREE_MAGIC || be == bdb::BTREE_MAGIC {
            return Err(DbError::UnsupportedFormat {
                file,
                what: "BerkeleyDB btree (rpm only writes hash databases)".into(),
            });
        }
    }
    Err(DbError::UnsupportedFormat {
        file,
        what: "unknown magic".into(),
    })
}

/// Everything we compare before and after a read to notice a concurrent writer: size,
/// mtime and the first bytes (SQLite change counter, ndb generation, BDB meta LSN, WAL salts).
#[derive(PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ino: u64,
    head: Vec<u8>,
}

fn stamp(file: &File) -> io::Result<Stamp> {
    let md = file.metadata()?;
    let mut head = vec![0u8; md.len().min(512) as usize];
    let n = file.read_at(&mut head, 0)?;
    head.truncate(n);
    Ok(Stamp {
        size: md.len(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ino: md.ino(),
        head,
    })
}

/// Receives each `(instance, header blob)` a format reader finds; an error stops the read.
pub type BlobSink<'a> = &'a mut dyn FnMut(u32, &[u8]) -> Result<(), DbError>;

/// A record whose header blob rpm's `headerImport` refuses (or that has no NAME): rpm
/// warns "rpmdb: damaged header #N retrieved -- skipping" and lists the others; so do we.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The database record number (SQLite `hnum`, ndb pkgidx, BDB key).
    pub instance: u32,
    /// Why the header was refused.
    pub what: String,
}

/// What a database holds: its packages (in record order) and the records skipped as damaged.
#[derive(Debug)]
pub struct Listing {
    pub format: Format,
    pub packages: Vec<Package>,
    pub skipped: Vec<Skipped>,
}

/// Reads every package from one opened database source (plus the SQLite WAL, if any).
pub fn read_source(db: &dyn Source, wal: Option<&dyn Source>) -> Result<Listing, DbError> {
    read_source_with(db, wal, None, Detail::Full)
}

/// `read_source`, parsing only as much of each header as `detail` asks; `journal` is a
/// SQLite rollback journal whose saved pages stand for the main file's (see
/// [`sqlite::for_each_blob`]).
///
/// A header blob that rpm would refuse is skipped and listed in [`Listing::skipped`];
/// damage to the file's structure (pages, slots, b-trees) stays an error, as does a
/// database whose every record is damaged: rpm lists nothing then either.
pub fn read_source_with(
    db: &dyn Source,
    wal: Option<&dyn Source>,
    journal: Option<&dyn Source>,
    detail: Detail<'_>,
) -> Result<Listing, DbError> {
    read_source_observed(db, wal, journal, detail, &mut |_| {})
}

/// [`read_source_with`], handing `each` every package as soon as it is parsed (before the
/// read is over, so before it is known to be consistent: see [`read_dir_observed`]).
pub fn read_source_observed(
    db: &dyn Source,
    wal: Option<&dyn Source>,
    journal: Option<&dyn Source>,
    detail: Detail<'_>,
    each: &mut dyn FnMut(&Package),
) -> Result<Listing, DbError> {
    let mut head = vec![0u8; db.size().min(512) as usize];
    db.read_at(0, &mut head)?;
    // SQLite treats an empty file as an empty database, and a WAL-mode database can be
    // empty on disk with every page still in the WAL.
    let format = if head.is_empty() && (wal.is_some() || db.name() == "rpmdb.sqlite") {
        Format::Sqlite
    } else {
        detect(&head, db.name())?
    };
    let file = db.name();
    // Room for as many packages as a database this size usually holds (a header is rarely
    // under 1 KiB), so the list is not grown and copied again and again; capped, and only
    // the part used is ever touched.
    let mut pkgs = Vec::with_capacity((db.size() / 1024).min(8192) as usize);
    let mut skipped = Vec::new();
    let mut sink = |instance: u32, blob: &[u8]| {
        let parsed = match detail {
            Detail::Full => header::parse(blob, instance).map(|p| pkgs.push(p)),
            Detail::Files => header::parse_files(blob, instance).map(|p| {
                each(&p);
                pkgs.push(p)
            }),
            // Parsed in its slot of the list, not moved there.
            Detail::Summary | Detail::Named(_) => {
                pkgs.push(Package::default());
                let Some(slot) = pkgs.last_mut() else {
                    return Ok(());
                };
                let mut r = header::parse_summary_into(blob, instance, slot);
                // Only the packages asked for are parsed in full (their file lists
                // included): another package's damage cannot fail the answer.
                if let (Ok(()), Detail::Named(name)) = (&r, detail) {
                    if slot.name == name {
                        r = header::parse(blob, instance).map(|p| *slot = p);
                    }
                }
                if r.is_err() {
                    pkgs.pop();
                }
                r
            }
        };
        if let Err(e) = parsed {
            skipped.push(Skipped {
                instance,
                what: e.to_string(),
            });
        }
        Ok(())
    };
    match format {
        Format::Sqlite => sqlite::for_each_blob(db, wal, journal, &mut sink)?,
        Format::Ndb => ndb::for_each_blob(db, &mut sink)?,
        Format::BerkeleyDb => bdb::for_each_blob(db, &mut sink)?,
    }
    if pkgs.is_empty() {
        if let Some(first) = skipped.first() {
            return Err(DbError::BadHeader {
                file,
                instance: first.instance,
                what: format!(
                    "{} (and every other record of the database: {} in all are damaged)",
                    first.what,
                    skipped.len()
                ),
            });
        }
    }
    pkgs.sort_by_key(|p| p.instance);
    skipped.sort_by_key(|s| s.instance);
    Ok(Listing {
        format,
        packages: pkgs,
        skipped,
    })
}

/// The file names we look for, in rpm's order of preference, with their WAL companions.
const CANDIDATES: [(&str, Option<&str>); 3] = [
    ("rpmdb.sqlite", Some("rpmdb.sqlite-wal")),
    ("Packages.db", None),
    ("Packages", None),
];

fn open_optional(
    opener: &dyn Fn(&str) -> io::Result<File>,
    name: &'static str,
) -> Result<Option<File>, DbError> {
    match opener(name) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DbError::Io { file: name, source }),
    }
}

fn stamp_of(name: &'static str, f: &File) -> Result<Stamp, DbError> {
    stamp(f).map_err(|source| DbError::Io { file: name, source })
}

/// First bytes of a SQLite rollback journal that still counts (DELETE, TRUNCATE and PERSIST
/// modes all remove or zero them when a transaction ends).
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// A SQLite rollback journal beside `rpmdb.sqlite` when its header is live: a transaction
/// is under way, or its writer died (a hot journal). Either way the committed state of each
/// page it saved is the journal's copy; we read through it in memory (SQLite would roll the
/// main file back, which is a write). A journal whose header is zeroed or absent is done.
fn live_journal(
    opener: &dyn Fn(&str) -> io::Result<File>,
) -> Result<Option<(&'static str, File)>, DbError> {
    const NAME: &str = "rpmdb.sqlite-journal";
    let Some(j) = open_optional(opener, NAME)? else {
        return Ok(None);
    };
    let mut magic = [0u8; 8];
    match j.read_exact_at(&mut magic, 0) {
        Ok(()) if magic == JOURNAL_MAGIC => Ok(Some((NAME, j))),
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(source) => Err(DbError::Io { file: NAME, source }),
    }
}

/// Reads the database of a db directory. `opener` opens a file by name inside that directory
/// (read-only; the caller decides how paths are resolved inside a target); `NotFound` from it
/// means "try the next name".
pub fn read_dir(opener: &dyn Fn(&str) -> io::Result<File>) -> Result<Listing, DbError> {
    read_dir_with(opener, Detail::Full)
}

/// How much of each header to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail<'a> {
    /// What a listing shows: no dependencies, files or description (several times faster
    /// on databases whose packages own thousands of files).
    Summary,
    /// Everything a detail view shows, for every package.
    Full,
    /// The listing's fields for every package, everything for the packages of this name:
    /// a detail view decodes only what it shows.
    Named(&'a str),
    /// The listing's fields and every file with its recorded attributes (`-qf`, `-V`).
    Files,
}

/// An open companion file (WAL or journal) with the stamp it had before the read.
struct Companion {
    src: FileSource,
    before: Stamp,
}

fn companion(found: Option<(&'static str, File)>) -> Result<Option<Companion>, DbError> {
    let Some((name, file)) = found else {
        return Ok(None);
    };
    let before = stamp_of(name, &file)?;
    Ok(Some(Companion {
        src: FileSource::with_size(name, file, before.size),
        before,
    }))
}

fn as_src(c: &Option<Companion>) -> Option<&dyn Source> {
    c.as_ref().map(|c| &c.src as &dyn Source)
}

/// `read_dir`, parsing only as much of each header as `detail` asks.
pub fn read_dir_with(
    opener: &dyn Fn(&str) -> io::Result<File>,
    detail: Detail,
) -> Result<Listing, DbError> {
    read_dir_observed(opener, detail, &mut |_| {})
}

/// [`read_dir_with`], handing `each` every package as soon as it is parsed (only
/// [`Detail::Files`] does so far), so that a caller can work on it while the rest is read.
/// What `each` saw counts only if the read then succeeds: a read that fails (a writer moved
/// the file meanwhile, a damaged page further on) may have shown it packages of a state
/// that never was.
pub fn read_dir_observed(
    opener: &dyn Fn(&str) -> io::Result<File>,
    detail: Detail,
    each: &mut dyn FnMut(&Package),
) -> Result<Listing, DbError> {
    for (name, wal_name) in CANDIDATES {
        let Some(file) = open_optional(opener, name)? else {
            continue;
        };
        let wal = match wal_name {
            Some(w) => open_optional(opener, w)?.map(|f| (w, f)),
            None => None,
        };
        let journal = if name == "rpmdb.sqlite" {
            live_journal(opener)?
        } else {
            None
        };
        // Stamp first and size the sources from the stamps, so the bounds we check against
        // belong to the state we compare with afterwards.
        let before = stamp_of(name, &file)?;
        let wal = companion(wal)?;
        let journal = companion(journal)?;
        let db_src = FileSource::with_size(name, file, before.size);
        let result = read_source_observed(&db_src, as_src(&wal), as_src(&journal), detail, each);
        // Whatever the result, a file that moved under us makes it untrustworthy: a
        // "corrupt" page may just be one a writer was halfway through.
        if stamp_of(name, &db_src.file)? != before {
            return Err(DbError::Changed {
                file: name,
                what: "size, mtime or header changed during the read",
            });
        }
        for c in [&wal, &journal].into_iter().flatten() {
            if stamp_of(c.src.name, &c.src.file)? != c.before {
                return Err(DbError::Changed {
                    file: c.src.name,
                    what: "changed during the read",
                });
            }
        }
        // A file caught between a non-atomic writer's steps (truncated, half written) can
        // look the same before and after the read: the kernel's mtime ticks coarsely. An
        // unreadable file that changed moments ago may be one being written: worth a retry,
        // and if retries do not help, what is wrong with it is the answer.
        return match result {
            Err(e) if !e.is_retryable() && recently_modified(&before) => Err(DbError::Unsettled {
                file: name,
                source: Box::new(e),
                mtime: before.mtime,
            }),
            r => r,
        };
    }
    Err(DbError::NoDatabase)
}

/// Whether a file's mtime is within the last two seconds (or in the future).
fn recently_modified(stamp: &Stamp) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now - stamp.mtime.0 < 2
}

/// Reads the database in directory `dir` (for `--dbpath`).
pub fn read_path(dir: &Path) -> Result<Listing, DbError> {
    read_path_with(dir, Detail::Full)
}

/// `read_path`, parsing only as much of each header as `detail` asks.
pub fn read_path_with(dir: &Path, detail: Detail) -> Result<Listing, DbError> {
    // A FIFO or device where a database file should be is refused, never opened.
    read_dir_with(
        &|name| crate::rootfs::open_host_file(&dir.join(name)),
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_content() {
        let mut bdb = vec![0u8; 32];
        bdb[12..16].copy_from_slice(&bdb::HASH_MAGIC.to_be_bytes());
        assert_eq!(detect(&bdb, "x").unwrap(), Format::BerkeleyDb);
        bdb[12..16].copy_from_slice(&bdb::HASH_MAGIC.to_le_bytes());
        assert_eq!(detect(&bdb, "x").unwrap(), Format::BerkeleyDb);
        bdb[12..16].copy_from_slice(&bdb::BTREE_MAGIC.to_le_bytes());
        assert!(matches!(
            detect(&bdb, "x"),
            Err(DbError::UnsupportedFormat { .. })
        ));
        assert_eq!(
            detect(b"SQLite format 3\0....", "x").unwrap(),
            Format::Sqlite
        );
        assert_eq!(detect(b"RpmP\0\0\0\0", "x").unwrap(), Format::Ndb);
        assert!(detect(b"", "x").is_err());
    }

    #[test]
    fn missing_files_mean_next_name_then_no_database() {
        let tried = std::cell::RefCell::new(Vec::new());
        let r = read_dir(&|name| {
            tried.borrow_mut().push(name.to_string());
            Err(io::Error::from(io::ErrorKind::NotFound))
        });
        assert!(matches!(r, Err(DbError::NoDatabase)));
        assert_eq!(*tried.borrow(), ["rpmdb.sqlite", "Packages.db", "Packages"]);
        let r = read_dir(&|_| Err(io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(matches!(r, Err(DbError::Io { .. })));
    }

    #[test]
    fn page_set_inside_and_beyond_the_bitmap() {
        let mut set = PageSet::new(100);
        for pgno in [0, 1, 63, 64, 127, 128, 5000, u32::MAX] {
            assert!(!set.contains(pgno), "{pgno}");
            assert!(set.insert(pgno), "{pgno}");
            assert!(!set.insert(pgno), "{pgno} again");
            assert!(set.contains(pgno), "{pgno}");
        }
        assert!(set.insert(2));
    }

    #[test]
    fn dependency_rendering() {
        let d = |flags, version: &str| Dependency {
            name: "foo".into(),
            flags,
            version: version.into(),
        };
        assert_eq!(d(0, "").render(), "foo");
        assert_eq!(
            d(RPMSENSE_GREATER | RPMSENSE_EQUAL, "1.0").to_string(),
            "foo >= 1.0"
        );
        assert_eq!(d(RPMSENSE_LESS, "2").render(), "foo < 2");
        assert_eq!(d(RPMSENSE_EQUAL | 0x4000, "1:2-3").render(), "foo = 1:2-3");
    }
}
