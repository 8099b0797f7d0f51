//! Reader for rpm's native "ndb" package database (`Packages.db`, rpm's
//! `lib/backend/ndb/rpmpkg.c`): a 32-byte header (`RpmP`, version, generation, slot page
//! count, next pkgidx), slot pages of 16-byte slots (`Slot`, pkgidx, blkoff, blkcnt, in
//! 16-byte blocks), and blobs framed by a head (`BlbS`, pkgidx, timestamp, length) and a tail
//! (adler32 of everything before it, length, `BlbE`). All integers are little-endian.
//!
//! Invariant: slots are validated as rpm does (in-file, past the slot pages, non-overlapping)
//! before any blob is read, so the bytes we read in total never exceed the file size, and a
//! blob is handed on only after its checksum, pkgidx and length all agree.

use crate::rpmdb::{BlobSink, DbError, Source};

/// `'R' | 'p' << 8 | 'm' << 16 | 'P' << 24`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const VERSION: u32 = 0;
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOBHEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOBTAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");

const HEADER_SIZE: u64 = 32;
const SLOT_SIZE: u64 = 16;
const BLK_SIZE: u64 = 16;
const PAGE_SIZE: u64 = 4096;
const BLOBHEAD_SIZE: u64 = 16;
const BLOBTAIL_SIZE: u64 = 12;

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Adler-32 (RFC 1950), as rpm computes it over a blob.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the largest run that cannot overflow u32 before reducing.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[derive(Clone, Copy)]
struct Slot {
    pkgidx: u32,
    blkoff: u64,
    blkcnt: u64,
}

/// Calls `f(pkgidx, header_blob)` for every used slot of the ndb database in `src`.
pub fn for_each_blob(src: &dyn Source, f: BlobSink<'_>) -> Result<(), DbError> {
    let name = src.name();
    let size = src.size();
    let head = src.read_vec(0, HEADER_SIZE as usize)?;
    if le32(&head, 0) != MAGIC {
        return Err(DbError::corrupt(name, 0, "bad ndb magic"));
    }
    let version = le32(&head, 4);
    if version != VERSION {
        return Err(DbError::UnsupportedFormat {
            file: name,
            what: format!("ndb version {version}"),
        });
    }
    let slotnpages = le32(&head, 12) as u64;
    if slotnpages == 0 || slotnpages * PAGE_SIZE > size {
        return Err(DbError::corrupt(
            name,
            12,
            format!("{slotnpages} slot pages do not fit a {size}-byte file"),
        ));
    }
    if !size.is_multiple_of(BLK_SIZE) {
        return Err(DbError::corrupt(
            name,
            size,
            "file size not a multiple of 16",
        ));
    }
    let fileblks = size / BLK_SIZE;
    let minblkoff = slotnpages * (PAGE_SIZE / BLK_SIZE);

    let mut slots = Vec::new();
    for page in 0..slotnpages {
        let buf = src.read_vec(page * PAGE_SIZE, PAGE_SIZE as usize)?;
        let first = if page == 0 { HEADER_SIZE } else { 0 };
        for o in (first..PAGE_SIZE).step_by(SLOT_SIZE as usize) {
            let at = page * PAGE_SIZE + o;
            let s = &buf[o as usize..(o + SLOT_SIZE) as usize];
            if le32(s, 0) != SLOT_MAGIC {
                return Err(DbError::corrupt(name, at, "bad slot magic"));
            }
            let blkoff = le32(s, 8) as u64;
            if blkoff == 0 {
                continue; // a free slot
            }
            let slot = Slot {
                pkgidx: le32(s, 4),
                blkoff,
                blkcnt: le32(s, 12) as u64,
            };
            if slot.pkgidx == 0 || slot.blkcnt == 0 || slot.blkoff < minblkoff {
                return Err(DbError::corrupt(name, at, "bad slot entry"));
            }
            if slot.blkoff + slot.blkcnt > fileblks {
                return Err(DbError::corrupt(name, at, "slot points past end of file"));
            }
            slots.push(slot);
        }
    }

    // Overlapping blobs or a repeated pkgidx mean a corrupt (or half-written) file; refusing
    // them also caps the total we read at the file size.
    slots.sort_by_key(|s| s.blkoff);
    let mut last_end = minblkoff;
    for s in &slots {
        if s.blkoff < last_end {
            return Err(DbError::corrupt(name, s.blkoff * BLK_SIZE, "blobs overlap"));
        }
        last_end = s.blkoff + s.blkcnt;
    }
    let mut ids: Vec<u32> = slots.iter().map(|s| s.pkgidx).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(DbError::corrupt(
            name,
            12,
            format!("pkgidx {} in two slots", w[0]),
        ));
    }

    // One buffer for every blob, grown to the largest and never zero-filled again.
    let mut buf = Vec::new();
    for s in &slots {
        let off = s.blkoff * BLK_SIZE;
        let len = s.blkcnt * BLK_SIZE;
        if len < BLOBHEAD_SIZE + BLOBTAIL_SIZE {
            return Err(DbError::corrupt(name, off, "blob too small"));
        }
        src.read_into(off, len as usize, &mut buf)?;
        if le32(&buf, 0) != BLOBHEAD_MAGIC {
            return Err(DbError::corrupt(name, off, "bad blob head magic"));
        }
        if le32(&buf, 4) != s.pkgidx {
            return Err(DbError::corrupt(
                name,
                off,
                "blob pkgidx does not match slot",
            ));
        }
        let bloblen = le32(&buf, 12) as u64;
        if s.blkcnt != (BLOBHEAD_SIZE + bloblen + BLOBTAIL_SIZE).div_ceil(BLK_SIZE) {
            return Err(DbError::corrupt(
                name,
                off,
                "blob length does not match slot",
            ));
        }
        let tail = (len - BLOBTAIL_SIZE) as usize;
        if le32(&buf, tail) != adler32(&buf[..tail]) {
            return Err(DbError::corrupt(name, off, "blob checksum mismatch"));
        }
        if le32(&buf, tail + 4) as u64 != bloblen || le32(&buf, tail + 8) != BLOBTAIL_MAGIC {
            return Err(DbError::corrupt(name, off + tail as u64, "bad blob tail"));
        }
        let start = BLOBHEAD_SIZE as usize;
        f(s.pkgidx, &buf[start..start + bloblen as usize])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpmdb::header::build;
    use crate::rpmdb::SliceSource;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A one-slot-page database holding `blobs` as pkgidx 1.. (slot 2 left free).
    fn build(blobs: &[Vec<u8>]) -> Vec<u8> {
        let mut db = vec![0u8; PAGE_SIZE as usize];
        put32(&mut db, 0, MAGIC);
        put32(&mut db, 8, 5);
        put32(&mut db, 12, 1);
        put32(&mut db, 16, blobs.len() as u32 + 1);
        for o in (32..4096).step_by(16) {
            put32(&mut db, o, SLOT_MAGIC);
        }
        let mut slotno = 2usize; // the first two slots hold the header
        for (i, b) in blobs.iter().enumerate() {
            slotno += 1; // leave a free slot in between
            let blkoff = db.len() / 16;
            let blkcnt = (16 + b.len() + 12).div_ceil(16);
            let mut blob = vec![0u8; blkcnt * 16];
            put32(&mut blob, 0, BLOBHEAD_MAGIC);
            put32(&mut blob, 4, i as u32 + 1);
            put32(&mut blob, 12, b.len() as u32);
            blob[16..16 + b.len()].copy_from_slice(b);
            let tail = blob.len() - 12;
            let a = adler32(&blob[..tail]);
            put32(&mut blob, tail, a);
            put32(&mut blob, tail + 4, b.len() as u32);
            put32(&mut blob, tail + 8, BLOBTAIL_MAGIC);
            db.extend_from_slice(&blob);
            put32(&mut db, slotno * 16 + 4, i as u32 + 1);
            put32(&mut db, slotno * 16 + 8, blkoff as u32);
            put32(&mut db, slotno * 16 + 12, blkcnt as u32);
            slotno += 1;
        }
        db
    }

    fn read(db: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, DbError> {
        let mut out = Vec::new();
        for_each_blob(&SliceSource::new("Packages.db", db), &mut |i, b| {
            out.push((i, b.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn adler_known_value() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn roundtrip_and_checksum() {
        let blobs = vec![build::sample("a"), build::sample("bb")];
        let mut db = build(&blobs);
        let got = read(&db).unwrap();
        assert_eq!(got, vec![(1, blobs[0].clone()), (2, blobs[1].clone())]);
        // Flip one byte inside the first blob's header data: checksum must catch it.
        db[4096 + 40] ^= 1;
        assert!(matches!(read(&db), Err(DbError::Corrupt { .. })));
    }
}
