//! A read-only reader for just the part of the SQLite 3 file format rpm's sqlite backend
//! needs: the database header, the `sqlite_schema` table on page 1 (to find the root page of
//! table `Packages (hnum INTEGER PRIMARY KEY, blob BLOB)`), table b-trees (interior 0x05 and
//! leaf 0x0d pages), records, overflow chains, and the write-ahead log: committed frames of
//! `rpmdb.sqlite-wal` (matching salts, valid cumulative checksums, up to the last commit
//! frame) override the main file's pages, the latest frame of a page winning; and the
//! rollback journal (`rpmdb.sqlite-journal`) of a database in rollback mode, whose saved
//! pages are the committed state of the pages a writer changed (or died changing).
//!
//! Invariants: we never write, lock or create anything (no `-shm`: the WAL is scanned
//! directly, as SQLite itself does during recovery; a journal is read, never played back
//! into the file), and every page is visited at most once
//! per traversal (b-tree and overflow pages share one visited set), so a corrupt file can
//! neither loop nor make us read or allocate more than its own size.

use std::collections::BTreeMap;

use crate::rpmdb::{check_bounds, make_room, BlobSink, DbError, PageSet, Source};

const WAL_MAGIC_LE: u32 = 0x377f_0682;
const WAL_MAGIC_BE: u32 = 0x377f_0683;
const WAL_VERSION: u32 = 3_007_000;
const WAL_HEADER: u64 = 32;
const WAL_FRAME_HEADER: u64 = 24;

/// Receives each `(rowid, payload)` of a table b-tree.
type RowSink<'a> = &'a mut dyn FnMut(i64, &[u8]) -> Result<(), DbError>;

const TABLE_INTERIOR: u8 = 0x05;
const TABLE_LEAF: u8 = 0x0d;

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    match b.get(at..at + 2) {
        Some(s) => u16::from_be_bytes([s[0], s[1]]) as usize,
        None => 0,
    }
}

/// Decodes a SQLite varint (1..=9 bytes, big-endian groups of 7 bits, the 9th byte whole).
/// Returns the value and the number of bytes used.
pub fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..8 {
        let x = *b.get(i)?;
        v = (v << 7) | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    let x = *b.get(8)?;
    Some(((v << 8) | u64::from(x), 9))
}

/// One column value of a record. Text and blobs borrow from the payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Blob(&'a [u8]),
    Text(&'a [u8]),
}

/// Decodes a record (header of serial types, then the values).
pub fn record(payload: &[u8]) -> Result<Vec<Value<'_>>, &'static str> {
    columns(payload)?.collect()
}

/// The values of a record one by one, decoded only as far as they are asked for: a row of
/// `Packages` needs its second column, and collecting every row into a `Vec` cost an
/// allocation per package.
pub fn columns(payload: &[u8]) -> Result<Columns<'_>, &'static str> {
    let (hlen, pos) = varint(payload).ok_or("truncated record header size")?;
    let hlen = usize::try_from(hlen).map_err(|_| "record header too long")?;
    if hlen > payload.len() || hlen < pos {
        return Err("record header size out of range");
    }
    Ok(Columns {
        payload,
        pos,
        hlen,
        data: hlen,
    })
}

/// Iterator over the values of a record (see [`columns`]).
pub struct Columns<'a> {
    payload: &'a [u8],
    /// Next serial type in the record header, which ends at `hlen`.
    pos: usize,
    hlen: usize,
    /// Start of the next value.
    data: usize,
}

impl<'a> Columns<'a> {
    fn decode(&mut self) -> Result<Value<'a>, &'static str> {
        let payload = self.payload;
        let (st, n) = varint(&payload[self.pos..self.hlen]).ok_or("truncated serial type")?;
        self.pos += n;
        let len = match st {
            0 | 8 | 9 => 0,
            1..=4 => st as usize,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return Err("reserved serial type"),
            _ => usize::try_from((st - 12) / 2).map_err(|_| "value too long")?,
        };
        let end = self
            .data
            .checked_add(len)
            .filter(|&e| e <= payload.len())
            .ok_or("value past end of record")?;
        let bytes = &payload[self.data..end];
        self.data = end;
        Ok(match st {
            0 => Value::Null,
            8 => Value::Int(0),
            9 => Value::Int(1),
            1..=6 => {
                // Sign-extend a big-endian two's complement integer of 1..8 bytes.
                let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
                for &b in bytes {
                    v = (v << 8) | i64::from(b);
                }
                Value::Int(v)
            }
            7 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(bytes);
                Value::Float(f64::from_be_bytes(a))
            }
            _ if st % 2 == 0 => Value::Blob(bytes),
            _ => Value::Text(bytes),
        })
    }
}

impl<'a> Iterator for Columns<'a> {
    type Item = Result<Value<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.hlen {
            return None;
        }
        let v = self.decode();
        if v.is_err() {
            self.pos = self.hlen; // an error ends the record
        }
        Some(v)
    }
}

/// The WAL's cumulative checksum (SQLite file format §4.3): over 32-bit words in the byte
/// order the WAL magic announces, `s0 += x[i] + s1; s1 += x[i+1] + s0`.
pub fn wal_checksum(big_endian: bool, data: &[u8], seed: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for c in data.chunks_exact(8) {
        let rd = |b: &[u8]| {
            let a = [b[0], b[1], b[2], b[3]];
            if big_endian {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        s0 = s0.wrapping_add(rd(&c[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(rd(&c[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// The committed content of a WAL: where the newest committed copy of each page lives.
#[derive(Debug, Default)]
pub struct Wal {
    pub page_size: u32,
    /// Page number → offset of the page data in the WAL file.
    pub frames: BTreeMap<u32, u64>,
    /// Database size in pages after the last commit.
    pub db_pages: u32,
}

/// Scans a WAL. `None` when it holds no committed transaction (or is not a valid WAL, which
/// SQLite also treats as empty).
pub fn read_wal(src: &dyn Source) -> Result<Option<Wal>, DbError> {
    let name = src.name();
    if src.size() < WAL_HEADER {
        return Ok(None);
    }
    let hdr = src.read_vec(0, WAL_HEADER as usize)?;
    let magic = be32(&hdr, 0);
    if magic != WAL_MAGIC_LE && magic != WAL_MAGIC_BE {
        return Ok(None);
    }
    let big = magic == WAL_MAGIC_BE;
    if be32(&hdr, 4) != WAL_VERSION {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: format!("WAL format version {}", be32(&hdr, 4)),
        });
    }
    let page_size = be32(&hdr, 8);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Ok(None);
    }
    let salt = (be32(&hdr, 16), be32(&hdr, 20));
    let mut sum = wal_checksum(big, &hdr[..24], (0, 0));
    if sum != (be32(&hdr, 24), be32(&hdr, 28)) {
        return Ok(None);
    }
    let frame_size = WAL_FRAME_HEADER + page_size as u64;
    let nframes = (src.size() - WAL_HEADER) / frame_size;
    let mut wal = Wal {
        page_size,
        ..Wal::default()
    };
    let mut pending = Vec::new();
    let mut buf = vec![0u8; frame_size as usize];
    for i in 0..nframes {
        let off = WAL_HEADER + i * frame_size;
        src.read_at(off, &mut buf)?;
        let pgno = be32(&buf, 0);
        let commit = be32(&buf, 4);
        // A frame from an older generation of the WAL (other salts) or a torn write (bad
        // checksum) ends the valid log, exactly as in SQLite's recovery.
        if pgno == 0 || (be32(&buf, 8), be32(&buf, 12)) != salt {
            break;
        }
        sum = wal_checksum(big, &buf[..8], sum);
        sum = wal_checksum(big, &buf[WAL_FRAME_HEADER as usize..], sum);
        if sum != (be32(&buf, 16), be32(&buf, 20)) {
            break;
        }
        pending.push((pgno, off + WAL_FRAME_HEADER));
        if commit != 0 {
            wal.frames.extend(pending.drain(..));
            wal.db_pages = commit;
        }
    }
    Ok((wal.db_pages != 0).then_some(wal))
}

/// What a live rollback journal saved: the original copy of each page a transaction
/// changed, and the database's size before it (SQLite file format §4.1, and `pager.c`'s
/// playback, which we follow: segments with their own headers, records up to the first bad
/// checksum, pages past the original size ignored).
#[derive(Debug, Default)]
pub struct Journal {
    pub page_size: u32,
    /// Database size in pages before the transaction.
    pub db_pages: u32,
    /// Page number → offset of the saved page data in the journal file.
    pub pages: BTreeMap<u32, u64>,
}

/// Scans a rollback journal. `None` when its first header is not valid (SQLite then treats
/// the journal as not hot and reads the main file as it is).
pub fn read_journal(src: &dyn Source) -> Result<Option<Journal>, DbError> {
    const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    let size = src.size();
    if size < 28 {
        return Ok(None);
    }
    let first = src.read_vec(0, 28)?;
    let (sector, page_size) = (be32(&first, 20) as u64, be32(&first, 24));
    let valid_sizes = (512..=65536).contains(&page_size)
        && page_size.is_power_of_two()
        && (32..=65536).contains(&sector)
        && sector.is_power_of_two();
    if first[..8] != MAGIC || !valid_sizes {
        return Ok(None);
    }
    let mut journal = Journal {
        page_size,
        db_pages: be32(&first, 16),
        pages: BTreeMap::new(),
    };
    let record = 8 + page_size as u64;
    // SQLite's "pending byte" page is never journaled; a record naming it ends playback.
    let pending = 0x4000_0000 / page_size + 1;
    let mut hdr_off = 0u64;
    let mut buf = Vec::new();
    // Each segment starts with a header at a sector boundary; a segment is at least a
    // sector long, so this loop ends within size / sector rounds.
    'segments: while hdr_off + 28 <= size {
        let hdr = src.read_vec(hdr_off, 28)?;
        if hdr[..8] != MAGIC {
            break;
        }
        // magic (8), record count, checksum nonce, original size in pages, sector and page
        // sizes, all big-endian.
        let cksum_init = be32(&hdr, 12);
        let mut off = hdr_off + sector;
        let mut nrec = be32(&hdr, 8) as u64;
        if nrec == 0xffff_ffff {
            nrec = size.saturating_sub(off) / record;
        }
        for _ in 0..nrec {
            if off + record > size {
                break 'segments;
            }
            src.read_into(off, record as usize, &mut buf)?;
            let pgno = be32(&buf, 0);
            if pgno == 0 || pgno == pending {
                break 'segments;
            }
            let data = &buf[4..4 + page_size as usize];
            // pager_cksum: the nonce plus every 200th byte, from the end.
            let mut sum = cksum_init;
            let mut i = page_size as usize - 200;
            while i > 0 {
                sum = sum.wrapping_add(u32::from(data[i]));
                i = i.saturating_sub(200);
            }
            if sum != be32(&buf, 4 + page_size as usize) {
                break 'segments;
            }
            if pgno <= journal.db_pages {
                journal.pages.insert(pgno, off + 4);
            }
            off += record;
        }
        // The next header sits at the next sector boundary.
        let next = off.div_ceil(sector) * sector;
        if next <= hdr_off {
            break;
        }
        hdr_off = next;
    }
    Ok(Some(journal))
}

/// Pages of the database as of the last committed WAL transaction.
struct Pager<'a> {
    db: &'a dyn Source,
    wal: Option<(&'a dyn Source, Wal)>,
    journal: Option<(&'a dyn Source, Journal)>,
    page_size: usize,
    usable: usize,
    npages: u32,
}

impl Pager<'_> {
    fn name(&self) -> &'static str {
        self.db.name()
    }

    /// Reads page `pgno` into `buf` (reused from page to page).
    fn page(&self, pgno: u32, buf: &mut Vec<u8>) -> Result<(), DbError> {
        let (src, off) = self.locate(pgno)?;
        src.read_into(off, self.page_size, buf)
    }

    /// Where the committed copy of page `pgno` lives: the WAL or the database file.
    fn locate(&self, pgno: u32) -> Result<(&dyn Source, u64), DbError> {
        if pgno == 0 || pgno > self.npages {
            return Err(DbError::page(
                self.name(),
                pgno as u64,
                format!("page number out of range (database has {})", self.npages),
            ));
        }
        if let Some((src, wal)) = &self.wal {
            if let Some(&off) = wal.frames.get(&pgno) {
                return Ok((*src, off));
            }
        }
        if let Some((src, journal)) = &self.journal {
            if let Some(&off) = journal.pages.get(&pgno) {
                return Ok((*src, off));
            }
        }
        Ok((self.db, (pgno as u64 - 1) * self.page_size as u64))
    }

    /// Bytes of all pages a payload could possibly span: a cheap cap for a claimed length
    /// before we allocate for it. The page count alone is no cap (a WAL commit frame or the
    /// header may claim billions of pages); the bytes actually on disk are.
    fn total_bytes(&self) -> u64 {
        let on_disk = self.db.size()
            + self.wal.as_ref().map_or(0, |(w, _)| w.size())
            + self.journal.as_ref().map_or(0, |(j, _)| j.size());
        (self.npages as u64 * self.usable as u64).min(on_disk)
    }

    /// Walks the table b-tree rooted at `root`, calling `f(rowid, payload)` for every row.
    fn walk_table(&self, root: u32, f: RowSink<'_>) -> Result<(), DbError> {
        let name = self.name();
        let mut visited = PageSet::new(self.db.size() / self.page_size as u64 + 1);
        let mut stack = vec![root];
        // One buffer each for the b-tree page and a spilled payload, reused for the whole
        // walk; a payload that fits its leaf page is handed over in place.
        let (mut page_buf, mut payload_buf) = (Vec::new(), Vec::new());
        while let Some(pgno) = stack.pop() {
            let err = |what: String| DbError::page(name, pgno as u64, what);
            if !visited.insert(pgno) {
                return Err(err("b-tree page reached twice (cycle)".into()));
            }
            self.page(pgno, &mut page_buf)?;
            let page = &page_buf[..self.usable];
            let h = if pgno == 1 { 100 } else { 0 };
            let kind = page[h];
            let ncells = be16(page, h + 3);
            let ptrs = match kind {
                TABLE_INTERIOR => h + 12,
                TABLE_LEAF => h + 8,
                _ => return Err(err(format!("not a table b-tree page (type {kind:#x})"))),
            };
            if ptrs + 2 * ncells > page.len() {
                return Err(err("cell count past page end".into()));
            }
            let cell = |i: usize| -> Result<&[u8], DbError> {
                let at = be16(page, ptrs + 2 * i);
                if at < ptrs + 2 * ncells || at >= page.len() {
                    return Err(err(format!("cell {i} pointer out of range")));
                }
                Ok(&page[at..])
            };
            if kind == TABLE_INTERIOR {
                // Push right-most child first so children are visited in key order.
                stack.push(be32(page, h + 8));
                for i in (0..ncells).rev() {
                    let c = cell(i)?;
                    if c.len() < 4 {
                        return Err(err(format!("cell {i} truncated")));
                    }
                    stack.push(be32(c, 0));
                }
                continue;
            }
            for i in 0..ncells {
                let c = cell(i)?;
                let (plen, n1) =
                    varint(c).ok_or_else(|| err(format!("cell {i}: bad payload size")))?;
                let (rowid, n2) =
                    varint(&c[n1..]).ok_or_else(|| err(format!("cell {i}: bad rowid")))?;
                let payload =
                    self.payload(&c[n1 + n2..], plen, &mut visited, pgno, &mut payload_buf)?;
                f(rowid as i64, payload)?;
            }
        }
        Ok(())
    }

    /// The table-leaf payload of `plen` bytes whose local part starts at `local`: in place
    /// when it fits there, else assembled in `out` from the overflow chain, each page's
    /// data appended straight from the source (SQLite file format §1.6).
    fn payload<'b>(
        &self,
        local: &'b [u8],
        plen: u64,
        visited: &mut PageSet,
        pgno: u32,
        out: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], DbError> {
        let name = self.name();
        let u = self.usable as u64;
        if plen > self.total_bytes() {
            return Err(DbError::page(
                name,
                pgno as u64,
                "payload longer than database",
            ));
        }
        let x = u - 35;
        let local_len = if plen <= x {
            plen
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((plen - m) % (u - 4));
            if k <= x {
                k
            } else {
                m
            }
        } as usize;
        let here = local
            .get(..local_len)
            .ok_or_else(|| DbError::page(name, pgno as u64, "local payload past page end"))?;
        if plen == local_len as u64 {
            return Ok(here);
        }
        make_room(out, plen as usize);
        out.extend_from_slice(here);
        let mut next = be32(
            local
                .get(local_len..local_len + 4)
                .ok_or_else(|| DbError::page(name, pgno as u64, "overflow pointer past page"))?,
            0,
        );
        while (out.len() as u64) < plen {
            if next == 0 || !visited.insert(next) {
                return Err(DbError::page(
                    name,
                    next as u64,
                    "overflow chain ends early or loops",
                ));
            }
            let (src, at) = self.locate(next)?;
            let mut pointer = [0u8; 4];
            check_bounds(src, at, self.page_size)?;
            src.read_at(at, &mut pointer)?;
            let take = ((plen - out.len() as u64).min(u - 4)) as usize;
            src.read_append(at + 4, take, out)?;
            next = u32::from_be_bytes(pointer);
        }
        Ok(out)
    }
}

fn valid_page_size(raw: usize) -> Option<usize> {
    // The header stores 65536 as 1.
    let ps = if raw == 1 { 65536 } else { raw };
    ((512..=65536).contains(&ps) && ps.is_power_of_two()).then_some(ps)
}

/// Calls `f(hnum, header_blob)` for every row of table `Packages` of the SQLite database
/// `db`, as seen through the committed part of `wal` when given, or through the pages a
/// live rollback `journal` saved.
pub fn for_each_blob(
    db: &dyn Source,
    wal: Option<&dyn Source>,
    journal: Option<&dyn Source>,
    f: BlobSink<'_>,
) -> Result<(), DbError> {
    let name = db.name();
    let main_hdr = if db.size() >= 100 {
        let h = db.read_vec(0, 100)?;
        if &h[..16] != b"SQLite format 3\0" {
            return Err(DbError::corrupt(name, 0, "bad SQLite magic"));
        }
        Some(h)
    } else if db.size() == 0 {
        None
    } else {
        return Err(DbError::corrupt(
            name,
            0,
            "file shorter than the SQLite header",
        ));
    };
    // Only a database in WAL mode (read/write versions 2) reads its WAL; a stray WAL next to
    // a rollback-journal database is ignored, as SQLite does.
    let wal_mode = main_hdr.as_ref().is_none_or(|h| h[18] == 2 || h[19] == 2);
    let wal = match wal {
        Some(w) if wal_mode => read_wal(w)?.map(|parsed| (w, parsed)),
        _ => None,
    };
    let page_size = match (&main_hdr, &wal) {
        (Some(h), _) => valid_page_size(be16(h, 16))
            .ok_or_else(|| DbError::corrupt(name, 16, "bad page size"))?,
        (None, Some((_, w))) => w.page_size as usize,
        (None, None) => return Ok(()), // an empty file is an empty database
    };
    if let Some((wsrc, w)) = &wal {
        if w.page_size as usize != page_size {
            return Err(DbError::corrupt(
                wsrc.name(),
                8,
                "WAL page size differs from database",
            ));
        }
    }
    // A journal counts only for a database in rollback mode with something in it (SQLite's
    // hasHotJournal), and only with the database's page size.
    let journal = match (journal, &main_hdr) {
        (Some(j), Some(_)) if !wal_mode || wal.is_none() => match read_journal(j)? {
            Some(parsed) if parsed.page_size as usize == page_size => Some((j, parsed)),
            Some(_) => {
                return Err(DbError::corrupt(
                    j.name(),
                    24,
                    "journal page size differs from database",
                ))
            }
            None => None,
        },
        _ => None,
    };
    let npages = match (&wal, &journal, &main_hdr) {
        (Some((_, w)), _, _) => w.db_pages,
        (None, Some((_, j)), _) if j.db_pages > 0 => j.db_pages,
        (None, _, None) => 0,
        (None, _, Some(h)) => {
            // The in-header size is valid only when written by the same version that last
            // changed the file (offset 92 == change counter at 24).
            let in_header = be32(h, 28);
            if in_header != 0 && be32(h, 24) == be32(h, 92) {
                in_header
            } else {
                u32::try_from(db.size() / page_size as u64).unwrap_or(u32::MAX)
            }
        }
    };
    let mut pager = Pager {
        db,
        wal,
        journal,
        page_size,
        usable: page_size,
        npages,
    };
    // Page 1 as of the snapshot (the WAL may hold a newer copy of it) has the header that
    // counts: reserved bytes and text encoding.
    let mut p1 = Vec::new();
    pager.page(1, &mut p1)?;
    if &p1[..16] != b"SQLite format 3\0" {
        return Err(DbError::page(name, 1, "bad SQLite magic on page 1"));
    }
    let reserved = p1[20] as usize;
    if page_size - reserved < 480 {
        return Err(DbError::page(name, 1, "too many reserved bytes"));
    }
    pager.usable = page_size - reserved;
    let encoding = be32(&p1, 56);
    if encoding > 1 {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: format!("text encoding {encoding} (rpm writes UTF-8)"),
        });
    }

    let mut root = None;
    pager.walk_table(1, &mut |_, payload| {
        let cols = record(payload).map_err(|e| DbError::page(name, 1, e))?;
        if let [Value::Text(b"table"), Value::Text(tname), _, Value::Int(r), ..] = cols[..] {
            if tname.eq_ignore_ascii_case(b"Packages") {
                root = u32::try_from(r).ok();
            }
        }
        Ok(())
    })?;
    let root = root.ok_or_else(|| DbError::UnsupportedFormat {
        file: name,
        what: "no table Packages in sqlite_schema".into(),
    })?;
    pager.walk_table(root, &mut |rowid, payload| {
        let bad = |what: &str| DbError::page(name, root as u64, format!("row {rowid}: {what}"));
        let hnum = u32::try_from(rowid).map_err(|_| bad("hnum out of range"))?;
        match columns(payload).map_err(bad)?.nth(1) {
            Some(Ok(Value::Blob(b))) => f(hnum, b),
            Some(Err(e)) => Err(bad(e)),
            _ => Err(bad("blob column is not a BLOB")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpmdb::SliceSource;

    #[test]
    fn varints() {
        assert_eq!(varint(&[0x00]), Some((0, 1)));
        assert_eq!(varint(&[0x7f]), Some((127, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x82, 0x80, 0x01]), Some(((2 << 14) | 1, 3)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
        assert_eq!(varint(&[]), None);
    }

    #[test]
    fn record_decoding() {
        // header: size 5, types NULL, int8, blob(3) = 12+6=18, text(2) = 13+4=17
        let payload = [5, 0, 1, 18, 17, 0xfe, 1, 2, 3, b'h', b'i'];
        let cols = record(&payload).unwrap();
        assert_eq!(
            cols,
            vec![
                Value::Null,
                Value::Int(-2),
                Value::Blob(&[1, 2, 3]),
                Value::Text(b"hi")
            ]
        );
        // 24-bit and 48-bit integers, constants 0 and 1.
        let p = [
            5, 3, 5, 8, 9, 0x01, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
        ];
        assert_eq!(
            record(&p).unwrap(),
            vec![
                Value::Int(65536),
                Value::Int(-2),
                Value::Int(0),
                Value::Int(1)
            ]
        );
        assert!(record(&[3, 18, 0]).is_err()); // blob runs past the end
        assert!(record(&[9, 0]).is_err()); // header longer than payload
        assert!(record(&[2, 10]).is_err()); // reserved type
    }

    fn wal_with_frames(big: bool, frames: &[(u32, u32, u8)], ps: usize) -> Vec<u8> {
        let mut w = Vec::new();
        let magic = if big { WAL_MAGIC_BE } else { WAL_MAGIC_LE };
        for v in [magic, WAL_VERSION, ps as u32, 0, 0x1234, 0x5678] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        let mut sum = wal_checksum(big, &w, (0, 0));
        w.extend_from_slice(&sum.0.to_be_bytes());
        w.extend_from_slice(&sum.1.to_be_bytes());
        for &(pgno, commit, fill) in frames {
            let mut fh = Vec::new();
            for v in [pgno, commit, 0x1234, 0x5678] {
                fh.extend_from_slice(&v.to_be_bytes());
            }
            let page = vec![fill; ps];
            sum = wal_checksum(big, &fh[..8], sum);
            sum = wal_checksum(big, &page, sum);
            fh.extend_from_slice(&sum.0.to_be_bytes());
            fh.extend_from_slice(&sum.1.to_be_bytes());
            w.extend_from_slice(&fh);
            w.extend_from_slice(&page);
        }
        w
    }

    #[test]
    fn wal_takes_only_committed_frames() {
        for big in [false, true] {
            // page 2 twice (second wins), commit; then page 3 uncommitted.
            let w = wal_with_frames(big, &[(2, 0, 1), (2, 5, 2), (3, 0, 3)], 512);
            let parsed = read_wal(&SliceSource::new("rpmdb.sqlite-wal", &w))
                .unwrap()
                .unwrap();
            assert_eq!(parsed.db_pages, 5);
            assert_eq!(parsed.frames.len(), 1);
            let off = parsed.frames[&2];
            assert_eq!(w[off as usize], 2);
        }
    }

    #[test]
    fn wal_stops_at_bad_checksum() {
        let mut w = wal_with_frames(false, &[(2, 3, 1), (4, 4, 2)], 512);
        let second_page = 32 + (24 + 512) + 24;
        w[second_page + 7] ^= 0xff;
        let parsed = read_wal(&SliceSource::new("w", &w)).unwrap().unwrap();
        assert_eq!(parsed.db_pages, 3);
        assert!(!parsed.frames.contains_key(&4));
        // A broken header checksum makes the whole WAL invalid (empty).
        let mut w = wal_with_frames(false, &[(2, 3, 1)], 512);
        w[25] ^= 1;
        assert!(read_wal(&SliceSource::new("w", &w)).unwrap().is_none());
    }

    /// A journal as SQLite's pager writes one: header (magic, record count, nonce, original
    /// size, sector and page size) padded to a sector, then page number, page, checksum.
    fn journal(segments: &[&[(u32, u8)]], db_pages: u32, ps: usize) -> Vec<u8> {
        let mut j = Vec::new();
        let nonce = 0x1234_5678u32;
        for seg in segments {
            let at = j.len().div_ceil(512) * 512;
            j.resize(at, 0);
            j.extend_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
            for v in [seg.len() as u32, nonce, db_pages, 512, ps as u32] {
                j.extend_from_slice(&v.to_be_bytes());
            }
            j.resize(at + 512, 0);
            for &(pgno, fill) in *seg {
                let page = vec![fill; ps];
                let mut sum = nonce;
                let mut i = ps - 200;
                while i > 0 {
                    sum = sum.wrapping_add(u32::from(page[i]));
                    i = i.saturating_sub(200);
                }
                j.extend_from_slice(&pgno.to_be_bytes());
                j.extend_from_slice(&page);
                j.extend_from_slice(&sum.to_be_bytes());
            }
        }
        j
    }

    #[test]
    fn journal_pages_and_where_playback_stops() {
        let j = journal(&[&[(2, 7), (9, 1)], &[(3, 8)]], 5, 1024);
        let parsed = read_journal(&SliceSource::new("j", &j)).unwrap().unwrap();
        assert_eq!((parsed.page_size, parsed.db_pages), (1024, 5));
        // Page 9 lies past the original size: SQLite ignores it.
        assert_eq!(parsed.pages.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(j[parsed.pages[&3] as usize], 8);
        // A bad checksum ends playback there.
        // (The second segment's header sits at the sector after the first's two records,
        // 3072; its page at 3072 + 512 + 4; byte 824 of a 1024-byte page is summed.)
        let mut bad = j.clone();
        bad[3072 + 512 + 4 + 824] ^= 0xff;
        let parsed = read_journal(&SliceSource::new("j", &bad)).unwrap().unwrap();
        assert!(parsed.pages.contains_key(&2));
        assert!(!parsed.pages.contains_key(&3));
        // A zeroed header means no live journal.
        let mut done = j;
        done[..8].fill(0);
        assert!(read_journal(&SliceSource::new("j", &done))
            .unwrap()
            .is_none());
    }

    #[test]
    fn checksum_known_value() {
        // Two words each: s0 = 1 + 0 = 1, s1 = 2 + 1 = 3; then s0 = 1 + 3 + 3 = 7, s1 = 3 + 4 + 7.
        let d = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];
        assert_eq!(wal_checksum(true, &d, (0, 0)), (7, 14));
    }
}
