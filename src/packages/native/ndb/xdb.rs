//! The container file `Index.db` (rpm 4.18's `lib/backend/ndb/rpmxdb.c`): a table of blobs,
//! one per index database, decoded from its slot pages; pure, no I/O.
//!
//! Layout (little-endian): page 0 starts with a 32-byte header (`RpmX`, version 0,
//! generation, slot page count, page size, user generation); the rest of the slot pages hold
//! 16-byte slots `("Slo" | subtag << 24, blobtag, startpage, pagecnt)`, slot number 1 right
//! after the header. A blob is a run of whole pages after the slot pages; blobs never
//! overlap; space between them is free. rpm names an index blob by its tag (`blobtag`, the
//! rpm tag the index is over, e.g. 1000 for Name) and subtag 0 (1 while it rebuilds one). A
//! used slot with `pagecnt` 0 holds an empty blob (written with startpage 1). Every slot
//! change bumps the generation, so that rpm processes that have the file mapped remap it.
//!
//! The user generation is how rpm keeps `Index.db` in step with `Packages.db`: after every
//! change rpm copies the `Packages.db` generation into it, and when rpm opens a database whose
//! two generations differ it throws every index away and rebuilds them from the headers
//! (`ndb_CheckIndexSync` in glue.c). The writer uses that for crash safety (see `mod.rs`).
//!
//! Invariant: `parse` accepts only a table whose used blobs lie inside the file, after the
//! slot pages, without overlapping; everything else here keeps that true.

use super::{le32, put32};

const MAGIC: u32 = u32::from_le_bytes(*b"RpmX");
const VERSION: u32 = 0;
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slo\0");
const HEADER_SIZE: usize = 32;
const SLOT_SIZE: usize = 16;
/// Offset of the generation in the header (`header_fields` starts there).
pub const OFF_GENERATION: u64 = 8;

/// One slot. `startpage` 0 means a free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub blobtag: u32,
    pub subtag: u32,
    pub startpage: u32,
    pub pagecnt: u32,
}

/// The decoded header and slot table.
#[derive(Debug, Clone)]
pub struct Xdb {
    pub pagesize: u32,
    pub generation: u32,
    pub slotnpages: u32,
    pub usergeneration: u32,
    /// Slot number `i + 1` at index `i`.
    pub slots: Vec<Slot>,
    /// The file size in pages.
    pub file_pages: u32,
}

/// The header fields needed to read the slot pages: (pagesize, slotnpages).
///
/// # Errors
/// A message when the magic, version or sizes are wrong.
pub fn peek(head: &[u8]) -> Result<(u32, u32), String> {
    if head.len() < HEADER_SIZE || le32(head, 0) != MAGIC {
        return Err("Index.db has no RpmX magic".into());
    }
    if le32(head, 4) != VERSION {
        return Err(format!("Index.db version {}", le32(head, 4)));
    }
    let (slotnpages, pagesize) = (le32(head, 12), le32(head, 16));
    if !(512..=65536).contains(&pagesize) || !pagesize.is_power_of_two() || slotnpages == 0 {
        return Err(format!(
            "Index.db page size {pagesize}, {slotnpages} slot pages"
        ));
    }
    Ok((pagesize, slotnpages))
}

impl Xdb {
    /// Decodes the slot pages `pages` (all `slotnpages` of them) of a file of `file_len`
    /// bytes, with `rpmxdbReadHeader`'s checks and the blobs' ends checked against the file.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(pages: &[u8], file_len: u64) -> Result<Xdb, String> {
        let (pagesize, slotnpages) = peek(pages)?;
        if pages.len() != slotnpages as usize * pagesize as usize {
            return Err("Index.db slot pages cut short".into());
        }
        if !file_len.is_multiple_of(pagesize as u64) {
            return Err(format!(
                "Index.db size {file_len} not a multiple of its page size {pagesize}"
            ));
        }
        let file_pages = u32::try_from(file_len / pagesize as u64)
            .map_err(|_| "Index.db too large".to_string())?;
        if file_pages < slotnpages {
            return Err("Index.db shorter than its slot pages".into());
        }
        let mut slots = Vec::new();
        for o in (HEADER_SIZE..pages.len()).step_by(SLOT_SIZE) {
            let w = le32(pages, o);
            if w & 0x00ff_ffff != SLOT_MAGIC {
                return Err(format!("Index.db slot at {o} without its magic"));
            }
            let mut s = Slot {
                subtag: w >> 24,
                blobtag: le32(pages, o + 4),
                startpage: le32(pages, o + 8),
                pagecnt: le32(pages, o + 12),
            };
            if s.pagecnt == 0 && s.startpage != 0 {
                s.startpage = slotnpages; // empty but used
            }
            slots.push(s);
        }
        let x = Xdb {
            pagesize,
            generation: le32(pages, 8),
            slotnpages,
            usergeneration: le32(pages, 20),
            slots,
            file_pages,
        };
        let mut used = x.used();
        used.sort_unstable();
        let mut end = slotnpages as u64;
        for &(start, cnt, _) in &used {
            if (start as u64) < end {
                return Err(format!("Index.db blobs overlap at page {start}"));
            }
            end = start as u64 + cnt as u64;
        }
        if end > file_pages as u64 {
            return Err(format!("Index.db blob ends past the file (page {end})"));
        }
        Ok(x)
    }

    /// (startpage, pagecnt, slot index) of every blob that occupies pages.
    fn used(&self) -> Vec<(u32, u32, usize)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.startpage != 0 && s.pagecnt != 0)
            .map(|(i, s)| (s.startpage, s.pagecnt, i))
            .collect()
    }

    /// The slot index of the blob `(blobtag, subtag)`.
    pub fn find(&self, blobtag: u32, subtag: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.startpage != 0 && s.blobtag == blobtag && s.subtag == subtag)
    }

    /// Where blob `i` goes when it needs `pagecnt` pages: where it is when the space up to the
    /// next blob (or the end of the file, which may grow) holds it, as rpm resizes in place;
    /// otherwise the first free run that holds it, counting from the slot pages, or after the
    /// last blob (`moveblob`).
    pub fn place(&self, i: usize, pagecnt: u32) -> u32 {
        let mut used = self.used();
        used.sort_unstable();
        let s = self.slots[i];
        if s.startpage != 0 && s.pagecnt != 0 {
            let next = used
                .iter()
                .map(|u| u.0)
                .find(|&start| start > s.startpage)
                .unwrap_or(u32::MAX);
            if (next - s.startpage) >= pagecnt {
                return s.startpage;
            }
        }
        let mut end = self.slotnpages;
        for &(start, cnt, _) in &used {
            if start - end >= pagecnt {
                return end;
            }
            end = start + cnt;
        }
        end
    }

    /// Sets slot `i` (the caller bumps the generation, once per slot change as
    /// `rpmxdbUpdateSlot` does); the file grows to hold the blob.
    pub fn set(&mut self, i: usize, slot: Slot) {
        self.slots[i] = slot;
        self.file_pages = self.file_pages.max(slot.startpage + slot.pagecnt);
    }

    /// Header bytes 8..24 (generation, slot pages, page size, user generation): what rpm
    /// rewrites when it sets the user generation (`rpmxdbSetUserGeneration`).
    pub fn header_fields(&self, usergeneration: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        put32(&mut b, 0, self.generation);
        put32(&mut b, 4, self.slotnpages);
        put32(&mut b, 8, self.pagesize);
        put32(&mut b, 12, usergeneration);
        b
    }

    /// The slot pages as they are written to the file, with `usergeneration` in the header.
    pub fn slot_pages(&self, usergeneration: u32) -> Vec<u8> {
        let mut b = vec![0u8; self.slotnpages as usize * self.pagesize as usize];
        put32(&mut b, 0, MAGIC);
        put32(&mut b, 4, VERSION);
        put32(&mut b, 8, self.generation);
        put32(&mut b, 12, self.slotnpages);
        put32(&mut b, 16, self.pagesize);
        put32(&mut b, 20, usergeneration);
        for (i, s) in self.slots.iter().enumerate() {
            let o = HEADER_SIZE + i * SLOT_SIZE;
            put32(&mut b, o, SLOT_MAGIC | s.subtag << 24);
            put32(&mut b, o + 4, s.blobtag);
            let start = if s.pagecnt != 0 || s.startpage == 0 {
                s.startpage
            } else {
                1 // "empty but used" blobs are written as starting at 1
            };
            put32(&mut b, o + 8, start);
            put32(&mut b, o + 12, s.pagecnt);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(blobs: &[(u32, u32, u32)], file_pages: u32) -> Xdb {
        let mut slots = vec![
            Slot {
                blobtag: 0,
                subtag: 0,
                startpage: 0,
                pagecnt: 0
            };
            254
        ];
        for (i, &(tag, start, cnt)) in blobs.iter().enumerate() {
            slots[i] = Slot {
                blobtag: tag,
                subtag: 0,
                startpage: start,
                pagecnt: cnt,
            };
        }
        Xdb {
            pagesize: 4096,
            generation: 3,
            slotnpages: 1,
            usergeneration: 9,
            slots,
            file_pages,
        }
    }

    #[test]
    fn roundtrip_and_placement() {
        let x = table(&[(1000, 1, 5), (1117, 6, 5), (1016, 14, 2)], 16);
        let pages = x.slot_pages(9);
        let y = Xdb::parse(&pages, 16 * 4096).unwrap();
        assert_eq!(y.slots, x.slots);
        assert_eq!(y.usergeneration, 9);
        assert_eq!(y.find(1117, 0), Some(1));
        assert_eq!(y.place(1, 5), 6); // same size: in place
        assert_eq!(y.place(1, 8), 6); // grows into the free pages 11..14
        assert_eq!(y.place(1, 9), 16); // does not fit anywhere: after the last blob
        assert_eq!(y.place(2, 7), 14); // the last blob grows in place, the file with it
        assert_eq!(y.place(3, 3), 11); // a new blob: the first free run that holds it
    }

    #[test]
    fn rejects_overlap_and_overrun() {
        let x = table(&[(1000, 1, 5), (1117, 5, 5)], 16);
        assert!(Xdb::parse(&x.slot_pages(0), 16 * 4096).is_err());
        let x = table(&[(1000, 1, 5)], 5);
        assert!(Xdb::parse(&x.slot_pages(0), 5 * 4096).is_err());
        let x = table(&[(1000, 0, 5)], 8);
        assert!(Xdb::parse(&x.slot_pages(0), 8 * 4096).is_ok()); // startpage 0: a free slot
    }
}
