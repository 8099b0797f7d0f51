//! The slot table of `Packages.db` (rpm 4.18's `lib/backend/ndb/rpmpkg.c`) and the blob
//! framing, decoded and planned in memory; pure, no I/O. The format itself is described in
//! `crate::rpmdb::ndb` (the reader).
//!
//! What the writer needs from rpmpkg.c: a new package gets `nextpkgidx` (then incremented);
//! its blob goes into the best-fitting free run of 16-byte blocks after the slot pages (the
//! smallest that holds it, else after the last blob), which must be all zero; the blob head
//! carries the generation at the time of writing; a slot with `blkoff` 0 is free. When no
//! slot is free rpm adds a slot page, first moving the blobs that sit in that page elsewhere
//! (`rpmpkgAddSlotPage`). Every slot write bumps the generation.
//!
//! Invariant: `parse` accepts only a table rpm would accept (`rpmpkgReadSlots`), with no
//! overlapping blobs and no pkgidx twice, so that the plans made from it never overwrite a
//! live blob.

use super::{le32, put32};
use crate::rpmdb::ndb::{adler32, MAGIC};

pub const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOBHEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const BLOBTAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
pub const HEADER_SIZE: usize = 32;
pub const SLOT_SIZE: u64 = 16;
pub const BLK_SIZE: u64 = 16;
pub const PAGE_SIZE: u64 = 4096;
const BLOBHEAD_SIZE: u64 = 16;
const BLOBTAIL_SIZE: u64 = 12;
/// Slot numbers 0 and 1 are the file header.
const SLOT_START: u32 = (HEADER_SIZE as u64 / SLOT_SIZE) as u32;
/// Blocks per page.
pub const PAGE_BLKS: u32 = (PAGE_SIZE / BLK_SIZE) as u32;

/// A used slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub slotno: u32,
    pub pkgidx: u32,
    pub blkoff: u32,
    pub blkcnt: u32,
}

/// The header and the used slots of `Packages.db`.
#[derive(Debug, Clone)]
pub struct Pkgdb {
    pub generation: u32,
    pub slotnpages: u32,
    pub nextpkgidx: u32,
    /// Ordered by `blkoff`.
    pub slots: Vec<Slot>,
    /// The lowest free slot number.
    pub freeslot: Option<u32>,
    /// The file size in blocks.
    pub fileblks: u32,
}

/// The header fields needed to read the slot pages: the slot page count.
///
/// # Errors
/// A message when the magic or version is wrong.
pub fn peek(head: &[u8]) -> Result<u32, String> {
    if head.len() < HEADER_SIZE || le32(head, 0) != MAGIC {
        return Err("Packages.db has no RpmP magic".into());
    }
    if le32(head, 4) != 0 {
        return Err(format!("Packages.db version {}", le32(head, 4)));
    }
    match le32(head, 12) {
        0 => Err("Packages.db with 0 slot pages".into()),
        n => Ok(n),
    }
}

impl Pkgdb {
    /// Decodes the slot pages (all of them, header included) of a file of `file_len` bytes.
    ///
    /// # Errors
    /// A message saying what rpm (or our stricter checks) would reject.
    pub fn parse(pages: &[u8], file_len: u64) -> Result<Pkgdb, String> {
        let slotnpages = peek(pages)?;
        if pages.len() as u64 != slotnpages as u64 * PAGE_SIZE {
            return Err("Packages.db slot pages cut short".into());
        }
        if !file_len.is_multiple_of(BLK_SIZE) {
            return Err(format!("Packages.db size {file_len} not a multiple of 16"));
        }
        let fileblks =
            u32::try_from(file_len / BLK_SIZE).map_err(|_| "Packages.db too large".to_string())?;
        let minblkoff = slotnpages * PAGE_BLKS;
        let mut slots = Vec::new();
        let mut freeslot = None;
        for (n, o) in (HEADER_SIZE..pages.len())
            .step_by(SLOT_SIZE as usize)
            .enumerate()
        {
            let slotno = SLOT_START + n as u32;
            if le32(pages, o) != SLOT_MAGIC {
                return Err(format!("Packages.db slot {slotno} without its magic"));
            }
            let s = Slot {
                slotno,
                pkgidx: le32(pages, o + 4),
                blkoff: le32(pages, o + 8),
                blkcnt: le32(pages, o + 12),
            };
            if s.blkoff == 0 {
                freeslot.get_or_insert(slotno);
                continue;
            }
            if s.pkgidx == 0 || s.blkcnt == 0 || s.blkoff < minblkoff {
                return Err(format!("Packages.db slot {slotno}: bad entry"));
            }
            if s.blkoff as u64 + s.blkcnt as u64 > fileblks as u64 {
                return Err(format!("Packages.db slot {slotno} points past the end"));
            }
            slots.push(s);
        }
        slots.sort_by_key(|s| s.blkoff);
        let mut end = minblkoff;
        for s in &slots {
            if s.blkoff < end {
                return Err(format!("Packages.db blobs overlap at block {}", s.blkoff));
            }
            end = s.blkoff + s.blkcnt;
        }
        let mut ids: Vec<u32> = slots.iter().map(|s| s.pkgidx).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("Packages.db: pkgidx {} in two slots", w[0]));
        }
        Ok(Pkgdb {
            generation: le32(pages, 8),
            slotnpages,
            nextpkgidx: le32(pages, 16),
            slots,
            freeslot,
            fileblks,
        })
    }

    /// The used slot of package `pkgidx`.
    pub fn find(&self, pkgidx: u32) -> Option<Slot> {
        self.slots.iter().copied().find(|s| s.pkgidx == pkgidx)
    }

    /// `rpmpkgFindEmptyOffset`: the smallest free run of at least `blkcnt` blocks (the first
    /// of equal ones), else the end of the last blob. With `dontprepend`, the space before the
    /// first blob does not count (used when clearing room for a slot page).
    pub fn find_empty(&self, blkcnt: u32, dontprepend: bool) -> u32 {
        let mut last = self.slotnpages * PAGE_BLKS;
        if dontprepend {
            if let Some(first) = self.slots.first() {
                last = first.blkoff;
            }
        }
        let mut best: Option<(u32, u32)> = None; // (blkoff, free count)
        for s in &self.slots {
            let free = s.blkoff.saturating_sub(last);
            if free >= blkcnt && best.is_none_or(|(_, f)| f > free) {
                best = Some((last, free));
            }
            last = s.blkoff + s.blkcnt;
        }
        best.map_or(last, |(off, _)| off)
    }

    /// The file header with the given generation and next pkgidx.
    pub fn header(&self, generation: u32, nextpkgidx: u32) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        put32(&mut h, 0, MAGIC);
        put32(&mut h, 4, 0);
        put32(&mut h, 8, generation);
        put32(&mut h, 12, self.slotnpages);
        put32(&mut h, 16, nextpkgidx);
        h
    }
}

/// The file offset of slot `slotno`.
pub fn slot_offset(slotno: u32) -> u64 {
    slotno as u64 * SLOT_SIZE
}

/// The 16 bytes of a slot (`rpmpkgWriteslot`); `(0, 0, 0)` frees it.
pub fn slot_bytes(pkgidx: u32, blkoff: u32, blkcnt: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    put32(&mut b, 0, SLOT_MAGIC);
    put32(&mut b, 4, pkgidx);
    put32(&mut b, 8, blkoff);
    put32(&mut b, 12, blkcnt);
    b
}

/// An empty slot page (`rpmpkgWriteEmptySlotpage`), all of its slots free.
pub fn empty_slot_page() -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE as usize];
    for o in (0..p.len()).step_by(SLOT_SIZE as usize) {
        put32(&mut p, o, SLOT_MAGIC);
    }
    p
}

/// The blocks a blob of `len` bytes takes, framed.
pub fn blob_blocks(len: usize) -> Option<u32> {
    let total = BLOBHEAD_SIZE + len as u64 + BLOBTAIL_SIZE;
    u32::try_from(total.div_ceil(BLK_SIZE)).ok()
}

/// The framed blob (`rpmpkgWriteBlob`): head (`BlbS`, pkgidx, generation, length), the data,
/// zero padding to a block, tail (adler32 of all before it, length, `BlbE`).
pub fn frame(pkgidx: u32, generation: u32, data: &[u8]) -> Vec<u8> {
    let blkcnt = blob_blocks(data.len()).expect("caller checked the size") as usize;
    let mut b = vec![0u8; blkcnt * BLK_SIZE as usize];
    put32(&mut b, 0, BLOBHEAD_MAGIC);
    put32(&mut b, 4, pkgidx);
    put32(&mut b, 8, generation);
    put32(&mut b, 12, data.len() as u32);
    b[16..16 + data.len()].copy_from_slice(data);
    let tail = b.len() - BLOBTAIL_SIZE as usize;
    let a = adler32(&b[..tail]);
    put32(&mut b, tail, a);
    put32(&mut b, tail + 4, data.len() as u32);
    put32(&mut b, tail + 8, BLOBTAIL_MAGIC);
    b
}

/// Whether `framed` (a whole slot's blocks) is a valid blob of `pkgidx` (`rpmpkgVerifyblob`).
pub fn verify(framed: &[u8], pkgidx: u32) -> bool {
    let n = framed.len();
    if n < (BLOBHEAD_SIZE + BLOBTAIL_SIZE) as usize || !n.is_multiple_of(BLK_SIZE as usize) {
        return false;
    }
    let len = le32(framed, 12) as usize;
    let tail = n - BLOBTAIL_SIZE as usize;
    le32(framed, 0) == BLOBHEAD_MAGIC
        && le32(framed, 4) == pkgidx
        && blob_blocks(len).is_some_and(|b| b as usize * BLK_SIZE as usize == n)
        && le32(framed, tail) == adler32(&framed[..tail])
        && le32(framed, tail + 4) as usize == len
        && le32(framed, tail + 8) == BLOBTAIL_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(slots: &[(u32, u32, u32)], fileblks: u32) -> Pkgdb {
        let mut p = vec![0u8; PAGE_SIZE as usize];
        p[..HEADER_SIZE].copy_from_slice(
            &Pkgdb {
                generation: 7,
                slotnpages: 1,
                nextpkgidx: 9,
                slots: vec![],
                freeslot: None,
                fileblks: 0,
            }
            .header(7, 9),
        );
        for o in (HEADER_SIZE..p.len()).step_by(16) {
            put32(&mut p, o, SLOT_MAGIC);
        }
        for (i, &(idx, off, cnt)) in slots.iter().enumerate() {
            let at = HEADER_SIZE + 16 * (i + 1); // slot 2 stays free
            p[at..at + 16].copy_from_slice(&slot_bytes(idx, off, cnt));
        }
        Pkgdb::parse(&p, fileblks as u64 * 16).unwrap()
    }

    #[test]
    fn parse_and_best_fit() {
        // Blobs at 256..266, 300..310 and 320..330: gaps of 34 and 10 blocks.
        let d = db(&[(1, 256, 10), (2, 300, 10), (3, 320, 10)], 330);
        assert_eq!(d.freeslot, Some(2));
        assert_eq!(d.find_empty(10, false), 310); // the smallest gap that fits
        assert_eq!(d.find_empty(11, false), 266);
        assert_eq!(d.find_empty(40, false), 330); // none: after the last blob
        assert_eq!(d.find(2).unwrap().blkoff, 300);
    }

    #[test]
    fn rejects_overlap_and_twins() {
        let p = |slots: &[(u32, u32, u32)]| {
            let mut p = empty_slot_page();
            p[..HEADER_SIZE].fill(0);
            put32(&mut p, 0, MAGIC);
            put32(&mut p, 12, 1);
            for (i, &(idx, off, cnt)) in slots.iter().enumerate() {
                let at = HEADER_SIZE + 16 * i;
                p[at..at + 16].copy_from_slice(&slot_bytes(idx, off, cnt));
            }
            Pkgdb::parse(&p, 400 * 16)
        };
        assert!(p(&[(1, 256, 10), (2, 260, 10)]).is_err());
        assert!(p(&[(1, 256, 10), (1, 300, 10)]).is_err());
        assert!(p(&[(1, 200, 10)]).is_err()); // inside the slot pages
        assert!(p(&[(1, 395, 10)]).is_err()); // past the end
        assert!(p(&[(1, 256, 10)]).is_ok());
    }

    #[test]
    fn frame_verifies() {
        let f = frame(5, 3, b"hello header");
        assert_eq!(f.len(), 48);
        assert!(verify(&f, 5));
        assert!(!verify(&f, 6));
        let mut g = f.clone();
        g[20] ^= 1;
        assert!(!verify(&g, 5));
    }
}
