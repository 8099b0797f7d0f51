//! Reader for the BerkeleyDB hash database rpm up to 4.15 kept packages in (`Packages`): a
//! hash meta page (page 0), hash pages holding key/data item pairs, and chains of overflow
//! pages for data too big to sit on a hash page (every header blob, in practice). The key is
//! the package's record number (u32, the db's byte order), the data its header blob. The
//! byte order of the whole file is the one in which the meta page magic reads 0x061561.
//!
//! We read every hash page in page order instead of walking buckets: it finds the same
//! items (bucket overflow pages are hash pages too) and cannot loop. Invariants: every page
//! is read at most twice (once as a candidate hash page, at most once as part of one overflow
//! chain: a page seen in two chains is an error), so work and memory stay bounded by the file
//! size; each key appears at most once.

use std::collections::BTreeSet;

use crate::rpmdb::{make_room, BlobSink, DbError, PageSet, Source};

pub const HASH_MAGIC: u32 = 0x061561;
pub const BTREE_MAGIC: u32 = 0x053162;

/// Size of the generic page header (`PAGE` in db_page.h): lsn 8, pgno 4, prev 4, next 4,
/// entries 2, hf_offset 2, level 1, type 1.
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

/// rpm never stores a header over `8 + 0xffff*16 + 0x0fffffff` bytes.
const MAX_BLOB: u64 = 8 + 0xffff * 16 + 0x0fff_ffff;

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u32(self, b: &[u8], at: usize) -> u32 {
        match b.get(at..at + 4) {
            Some(s) if self.big => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
            Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            None => 0,
        }
    }
    fn u16(self, b: &[u8], at: usize) -> u16 {
        match b.get(at..at + 2) {
            Some(s) if self.big => u16::from_be_bytes([s[0], s[1]]),
            Some(s) => u16::from_le_bytes([s[0], s[1]]),
            None => 0,
        }
    }
}

struct Db<'a> {
    src: &'a dyn Source,
    order: Order,
    page_size: usize,
    last_pgno: u32,
    /// Overflow pages already used by some chain.
    /// Overflow pages already read (every page of a BDB file is an overflow page but a few).
    overflow_seen: PageSet,
}

impl Db<'_> {
    fn name(&self) -> &'static str {
        self.src.name()
    }

    /// Reads page `pgno` into `buf` (reused from page to page).
    fn page(&self, pgno: u32, buf: &mut Vec<u8>) -> Result<(), DbError> {
        if pgno > self.last_pgno {
            return Err(DbError::page(self.name(), pgno as u64, "past last_pgno"));
        }
        self.src
            .read_into(pgno as u64 * self.page_size as u64, self.page_size, buf)
    }

    /// Reads the `tlen`-byte item stored in the overflow chain starting at `pgno` into `out`
    /// (reused from item to item): each page's header, then its data appended straight to
    /// `out`, one copy.
    fn overflow(&mut self, mut pgno: u32, tlen: u32, out: &mut Vec<u8>) -> Result<(), DbError> {
        let name = self.name();
        let tlen = tlen as u64;
        if tlen > MAX_BLOB || tlen > self.src.size() {
            return Err(DbError::page(name, pgno as u64, "overflow item too long"));
        }
        make_room(out, tlen as usize);
        while (out.len() as u64) < tlen {
            if pgno > self.last_pgno {
                return Err(DbError::page(name, pgno as u64, "past last_pgno"));
            }
            if pgno == 0 || !self.overflow_seen.insert(pgno) {
                return Err(DbError::page(
                    name,
                    pgno as u64,
                    "overflow chain broken or shared",
                ));
            }
            let at = pgno as u64 * self.page_size as u64;
            let mut p = [0u8; PAGE_HEADER];
            self.src.read_at(at, &mut p)?;
            if p[25] != P_OVERFLOW || self.order.u32(&p, 8) != pgno {
                return Err(DbError::page(name, pgno as u64, "not an overflow page"));
            }
            // On overflow pages hf_offset is the number of data bytes on the page.
            let len = self.order.u16(&p, 22) as usize;
            let want = (tlen - out.len() as u64).min(len as u64) as usize;
            if PAGE_HEADER + want > self.page_size {
                return Err(DbError::page(
                    name,
                    pgno as u64,
                    "overflow length past page",
                ));
            }
            if len == 0 {
                return Err(DbError::page(name, pgno as u64, "empty overflow page"));
            }
            self.src.read_append(at + PAGE_HEADER as u64, want, out)?;
            pgno = self.order.u32(&p, 16);
        }
        Ok(())
    }
}

/// Calls `f(record_number, header_blob)` for every package in the BDB hash database `src`.
pub fn for_each_blob(src: &dyn Source, f: BlobSink<'_>) -> Result<(), DbError> {
    let name = src.name();
    let meta = src.read_vec(0, 512.min(src.size() as usize))?;
    if meta.len() < 84 {
        return Err(DbError::corrupt(name, 0, "file too short for a meta page"));
    }
    let (le, be) = (Order { big: false }, Order { big: true });
    let order = if le.u32(&meta, 12) == HASH_MAGIC {
        le
    } else if be.u32(&meta, 12) == HASH_MAGIC {
        be
    } else {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: "not a BerkeleyDB hash database".into(),
        });
    };
    let version = order.u32(&meta, 16);
    if !(8..=10).contains(&version) {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: format!("BerkeleyDB hash version {version}"),
        });
    }
    let page_size = order.u32(&meta, 20);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(DbError::corrupt(
            name,
            20,
            format!("bad page size {page_size}"),
        ));
    }
    // encrypt_alg (24) and the checksum metaflag (26 & 1) change the page layout; rpm
    // never turns them on, so we refuse rather than guess.
    if meta[24] != 0 || meta[26] & 1 != 0 {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: "encrypted or checksummed BerkeleyDB".into(),
        });
    }
    if meta[25] != P_HASHMETA {
        return Err(DbError::corrupt(
            name,
            25,
            "meta page type is not hash meta",
        ));
    }
    let last_pgno = order.u32(&meta, 32);
    let page_size = page_size as usize;
    if (last_pgno as u64 + 1) * page_size as u64 > src.size() {
        return Err(DbError::corrupt(
            name,
            32,
            format!("last_pgno {last_pgno} past end of file"),
        ));
    }
    let mut db = Db {
        src,
        order,
        page_size,
        last_pgno,
        overflow_seen: PageSet::new(last_pgno as u64 + 1),
    };
    let mut keys = BTreeSet::new();
    // The hash page and an overflow item: buffers reused for every page.
    let (mut p, mut spilled) = (Vec::new(), Vec::new());
    for pgno in 1..=last_pgno {
        // Overflow pages already read with their chains are not even looked at (their
        // chains mostly follow the hash pages that point into them).
        if db.overflow_seen.contains(pgno) {
            continue;
        }
        // The page type first: most pages are overflow pages, read with their chains, and
        // copying each of them whole just to skip it was a fifth of a listing.
        let mut kind = [0u8; PAGE_HEADER];
        db.src.read_at(pgno as u64 * page_size as u64, &mut kind)?;
        if kind[25] != P_HASH && kind[25] != P_HASH_UNSORTED {
            continue;
        }
        db.page(pgno, &mut p)?;
        if order.u32(&p, 8) != pgno {
            return Err(DbError::page(name, pgno as u64, "page number mismatch"));
        }
        let entries = order.u16(&p, 20) as usize;
        if !entries.is_multiple_of(2) || PAGE_HEADER + 2 * entries > page_size {
            return Err(DbError::page(name, pgno as u64, "bad entry count"));
        }
        // Item i spans from its offset to the previous item's offset (or the page end).
        let item = |i: usize| -> Result<&[u8], DbError> {
            let start = order.u16(&p, PAGE_HEADER + 2 * i) as usize;
            let end = if i == 0 {
                page_size
            } else {
                order.u16(&p, PAGE_HEADER + 2 * (i - 1)) as usize
            };
            if start < PAGE_HEADER + 2 * entries || start >= end || end > page_size {
                return Err(DbError::page(name, pgno as u64, format!("bad item {i}")));
            }
            Ok(&p[start..end])
        };
        for pair in 0..entries / 2 {
            let key = item(2 * pair)?;
            if key[0] != H_KEYDATA || key.len() != 5 {
                return Err(DbError::page(
                    name,
                    pgno as u64,
                    "key is not a record number",
                ));
            }
            let recno = order.u32(key, 1);
            let data = item(2 * pair + 1)?;
            let blob: &[u8] = match data[0] {
                H_KEYDATA => &data[1..],
                H_OFFPAGE if data.len() >= 12 => {
                    let (opg, tlen) = (order.u32(data, 4), order.u32(data, 8));
                    db.overflow(opg, tlen, &mut spilled)?;
                    &spilled
                }
                H_DUPLICATE | H_OFFDUP => {
                    return Err(DbError::page(
                        name,
                        pgno as u64,
                        "duplicate data items (rpm never writes them)",
                    ))
                }
                _ => return Err(DbError::page(name, pgno as u64, "unknown item type")),
            };
            // Record 0 holds no header (old rpm kept a counter there).
            if recno == 0 {
                continue;
            }
            if !keys.insert(recno) {
                return Err(DbError::page(
                    name,
                    pgno as u64,
                    format!("record {recno} appears twice"),
                ));
            }
            f(recno, blob)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpmdb::header::{self, build};
    use crate::rpmdb::SliceSource;

    const PS: usize = 512;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Big-endian hash db: meta page 0, hash page 1 holding record 42 whose data lives in
    /// overflow pages 2 → 3.
    fn build_be(blob: &[u8]) -> Vec<u8> {
        let cap = PS - PAGE_HEADER;
        assert!(
            blob.len() > cap && blob.len() <= 2 * cap,
            "test blob must need 2 pages"
        );
        let mut db = vec![0u8; 4 * PS];
        let meta = &mut db[..PS];
        put32(meta, 8, 0);
        put32(meta, 12, HASH_MAGIC);
        put32(meta, 16, 9);
        put32(meta, 20, PS as u32);
        meta[25] = P_HASHMETA;
        put32(meta, 32, 3);
        put32(meta, 72, 0); // max_bucket
        put32(meta, 76, 1); // high_mask
        put32(meta, 80, 0); // low_mask

        let hp = &mut db[PS..2 * PS];
        put32(hp, 8, 1);
        put16(hp, 20, 2);
        hp[25] = P_HASH;
        // Key item (5 bytes) at the very end, the 12-byte HOFFPAGE item below it.
        let key_at = PS - 5;
        hp[key_at] = H_KEYDATA;
        put32(hp, key_at + 1, 42);
        let data_at = key_at - 12;
        hp[data_at] = H_OFFPAGE;
        put32(hp, data_at + 4, 2);
        put32(hp, data_at + 8, blob.len() as u32);
        put16(hp, PAGE_HEADER, key_at as u16);
        put16(hp, PAGE_HEADER + 2, data_at as u16);

        for (i, (pg, chunk)) in [2u32, 3].iter().zip(blob.chunks(cap)).enumerate() {
            let p = &mut db[*pg as usize * PS..(*pg as usize + 1) * PS];
            put32(p, 8, *pg);
            put32(p, 16, if i == 0 { 3 } else { 0 });
            put16(p, 22, chunk.len() as u16);
            p[25] = P_OVERFLOW;
            p[PAGE_HEADER..PAGE_HEADER + chunk.len()].copy_from_slice(chunk);
        }
        db
    }

    fn read(db: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, DbError> {
        let mut out = Vec::new();
        for_each_blob(&SliceSource::new("Packages", db), &mut |k, b| {
            out.push((k, b.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    fn big_blob() -> Vec<u8> {
        let long = "x".repeat(500);
        build::blob(
            &[
                (
                    header::TAG_NAME,
                    build::STRING,
                    1,
                    build::s("bigendian-pkg"),
                ),
                (header::TAG_VERSION, build::STRING, 1, build::s("1")),
                (header::TAG_RELEASE, build::STRING, 1, build::s("2")),
                (
                    header::TAG_DESCRIPTION,
                    build::I18NSTRING,
                    1,
                    build::s(&long),
                ),
                (
                    header::TAG_INSTALLTIME,
                    build::INT32,
                    1,
                    build::ints(&[1_600_000_000]),
                ),
            ],
            Some(4),
        )
    }

    #[test]
    fn big_endian_with_overflow_chain() {
        let blob = big_blob();
        let db = build_be(&blob);
        let got = read(&db).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 42);
        assert_eq!(got[0].1, blob);
        let pkg = header::parse(&got[0].1, got[0].0).unwrap();
        assert_eq!(pkg.name, "bigendian-pkg");
        assert_eq!(pkg.installtime, Some(1_600_000_000));
    }

    #[test]
    fn overflow_cycle_is_an_error() {
        let blob = big_blob();
        let mut db = build_be(&blob);
        // Page 3 points back to page 2, and claim a longer item so the loop would go on.
        put32(&mut db[3 * PS..], 16, 2);
        put32(&mut db[PS..], PS - 5 - 12 + 8, 4 * blob.len() as u32);
        assert!(read(&db).is_err());
    }
}
