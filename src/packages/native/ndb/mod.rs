//! Registers and unregisters a package in rpm's native "ndb" database (`Packages.db` and
//! `Index.db` in one directory), as rpm 4.18 does it in `lib/backend/ndb/` (`rpmpkg.c` for
//! `Packages.db`, `rpmxdb.c` for the container `Index.db`, `rpmidx.c` for each index in it,
//! `glue.c` for how they fit together) and `lib/rpmdb.c` (`rpmdbAdd`, `rpmdbRemove`). The
//! formats are described in `pkg.rs`, `xdb.rs` and `idx.rs`; the reader is `crate::rpmdb::ndb`.
//!
//! **Locking.** The caller holds rpm's transaction lock (`fcntl` on `.rpm.lock`). Like rpm we
//! also take `flock(LOCK_EX)` on `Packages.db` for the whole change: rpm's readers (`rpm -q`)
//! hold `LOCK_SH` on it while they read either file.
//!
//! **Order of writes, and what a failure leaves.** The commit point of `Packages.db` is one
//! slot write (plus the header's generation), as in rpm: a new blob is first written into
//! free, zeroed space and synced, only then does a slot point to it. `Index.db` has no commit
//! point of its own; rpm relies on its "user generation", a copy of the `Packages.db`
//! generation that rpm stores after every change: when the two differ, the next rpm that
//! opens the database rebuilds every index from the headers. We use that the same way:
//! 1. `Index.db`'s user generation is set to a value `Packages.db` cannot have (synced): from
//!    here on, a crash leaves indexes that rpm rebuilds;
//! 2. an add writes the framed header into free space of `Packages.db` (synced), adding a
//!    slot page first, as rpm does, when no slot is free;
//! 3. the changed pages of `Index.db` are written (synced);
//! 4. the slot and the header (generation + 1, next pkgidx) of `Packages.db` (synced);
//! 5. the user generation becomes the new generation (synced): the indexes are valid again.
//!
//! Every write of steps 1 to 5 is journaled in memory (the bytes it replaces), so an error
//! anywhere in them puts both files back byte for byte, `Packages.db` first and the user
//! generation last. After step 5 an erase zeroes the old blob and may shorten the file (rpm's
//! clean-up; its failure changes nothing rpm reads). What this writer does not do that rpm
//! does: move blobs towards the front after an erase (an optimisation).
//!
//! **Indexes.** Keys come from `crate::packages::native::index` (rpm's `tag2index` rules).
//! An index that `Index.db` lacks is left out: rpm creates it, and fills it from every header
//! (the new one included), the first time it opens the database (`indexOpen` →
//! `buildIndexes`), so that is what rpm would end with. A database whose indexes are already
//! out of date (the two generations differ) is refused: writing would hide that.
//!
//! **Files.** Every file is opened relative to the database directory's descriptor, never
//! through a symlink (`O_NOFOLLOW`), only when it is a regular file (checked on an `O_PATH`
//! descriptor first), read/write without `O_CREAT`: rpm's files keep their modes and owners.
//! Nothing is mapped (`pread`/`pwrite`).
//!
//! Invariant: no byte of either file changes before both have been read and the whole change
//! planned and validated in memory; after that, either all of steps 1–5 happen or the files
//! are restored (or, when restoring fails too, left with indexes rpm rebuilds).

mod idx;
mod pkg;
mod xdb;

use std::fs::File;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

use rustix::fs::{FileType, FlockOperation, Mode, OFlags};

use crate::packages::native::index::{IndexKey, INDEXES};
use idx::Idx;
use pkg::{Pkgdb, BLK_SIZE, PAGE_BLKS, PAGE_SIZE};
use xdb::Xdb;

/// A little-endian u32 at byte `at` (every ndb file is little-endian, as rpm writes it).
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes `v` little-endian at byte `at`.
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Adds one package: its stored header blob (as rpm stores it, no magic) to `Packages.db`,
/// and its index keys to `Index.db`, in the database directory `dbdir`. Returns the new
/// header number (rpm's instance, the pkgidx).
///
/// # Errors
/// A message naming the file and what is wrong: a missing or non-regular file, a corrupt or
/// out-of-date database, an unknown index name, an I/O error. The database is then as it was
/// (see the module documentation for the one exception).
pub fn add(dbdir: BorrowedFd<'_>, blob: &[u8], keys: &[IndexKey]) -> Result<u32, String> {
    let ops = group(keys)?;
    let blkcnt = pkg::blob_blocks(blob.len())
        .filter(|_| u32::try_from(blob.len()).is_ok())
        .ok_or_else(|| format!("header blob of {} bytes too large", blob.len()))?;
    let mut db = Db::open(dbdir)?;
    let pkgidx = db.pkgs.nextpkgidx;
    if pkgidx == 0 || db.pkgs.find(pkgidx).is_some() {
        return Err(format!(
            "Packages.db: next header number {pkgidx} is 0 or taken (corrupt header)"
        ));
    }
    let plan = db.plan_index(&ops, Change::Put(pkgidx))?;
    db.transaction(|db| {
        db.mark_stale()?;
        db.ensure_free_slot()?;
        let p = &db.pkgs;
        let blkoff = p.find_empty(blkcnt, false);
        db.check_zero(blkoff, blkcnt)?;
        let framed = pkg::frame(pkgidx, p.generation, blob);
        db.pk.write(blkoff as u64 * BLK_SIZE, &framed)?;
        db.pk.sync()?;
        db.apply_index(&plan)?;
        let slotno = db.pkgs.freeslot.ok_or("Packages.db: no free slot")?;
        db.commit_slot(slotno, pkg::slot_bytes(pkgidx, blkoff, blkcnt), pkgidx + 1)?;
        db.mark_synced()
    })?;
    Ok(pkgidx)
}

/// Removes package `hnum` (its blob in `Packages.db`) and its index keys (as [`add`] was
/// given them, or as `index_keys` computes them from its stored header) from `Index.db`.
///
/// # Errors
/// As for [`add`]; also when no package `hnum` is in the database or its blob is damaged.
pub fn remove(dbdir: BorrowedFd<'_>, hnum: u32, keys: &[IndexKey]) -> Result<(), String> {
    let ops = group(keys)?;
    let mut db = Db::open(dbdir)?;
    let slot = db
        .pkgs
        .find(hnum)
        .ok_or_else(|| format!("Packages.db holds no package {hnum}"))?;
    let old = db.pk.read(
        slot.blkoff as u64 * BLK_SIZE,
        slot.blkcnt as usize * BLK_SIZE as usize,
    )?;
    if !pkg::verify(&old, hnum) {
        return Err(format!(
            "Packages.db: the blob of package {hnum} is damaged"
        ));
    }
    let plan = db.plan_index(&ops, Change::Del(hnum))?;
    let next = db.pkgs.nextpkgidx;
    db.transaction(|db| {
        db.mark_stale()?;
        db.apply_index(&plan)?;
        db.commit_slot(slot.slotno, pkg::slot_bytes(0, 0, 0), next)?;
        db.mark_synced()
    })?;
    db.after_erase(slot);
    Ok(())
}

/// The keys of each index, in rpm's index order: (tag, index name, [(key bytes, idx)]).
type Ops = Vec<(u32, &'static str, Vec<(Vec<u8>, u32)>)>;

fn group(keys: &[IndexKey]) -> Result<Ops, String> {
    if let Some(k) = keys
        .iter()
        .find(|k| !INDEXES.iter().any(|i| i.0 == k.index))
    {
        return Err(format!("unknown rpm index {:?}", k.index));
    }
    Ok(INDEXES
        .iter()
        .map(|&(name, tag)| {
            let entries = keys
                .iter()
                .filter(|k| k.index == name)
                .map(|k| (k.key.bytes(), k.idx))
                .collect::<Vec<_>>();
            (tag, name, entries)
        })
        .filter(|(_, _, e)| !e.is_empty())
        .collect())
}

#[derive(Clone, Copy)]
enum Change {
    Put(u32),
    Del(u32),
}

/// The writes that bring `Index.db` to its new state (apart from the user generation).
struct IndexPlan {
    /// The new slot table (its generation is set when it is written).
    xdb: Xdb,
    /// How many slots changed.
    slot_changes: u32,
    writes: Vec<(u64, Vec<u8>)>,
}

/// A database file opened for writing, with the journal of what its writes replaced.
struct DbFile {
    name: &'static str,
    file: File,
    orig_len: u64,
    undo: Vec<(u64, Vec<u8>)>,
}

impl DbFile {
    fn open(dir: BorrowedFd<'_>, name: &'static str) -> Result<DbFile, String> {
        let err = |what: &str, e: rustix::io::Errno| format!("{name}: {what}: {e}");
        let probe = rustix::fs::openat(
            dir,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", e))?;
        let st = rustix::fs::fstat(&probe).map_err(|e| err("fstat", e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(format!("{name}: not a regular file"));
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open for writing", e))?;
        let st2 = rustix::fs::fstat(&fd).map_err(|e| err("fstat", e))?;
        if (st2.st_dev, st2.st_ino) != (st.st_dev, st.st_ino) {
            return Err(format!("{name}: replaced while it was opened"));
        }
        Ok(DbFile {
            name,
            file: File::from(fd),
            orig_len: st2.st_size as u64,
            undo: Vec::new(),
        })
    }

    fn len(&self) -> Result<u64, String> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| format!("{}: fstat: {e}", self.name))
    }

    fn read(&self, off: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut b = vec![0u8; len];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| format!("{}: read {len} bytes at {off}: {e}", self.name))?;
        Ok(b)
    }

    /// Writes `data` at `off`, first keeping the bytes it replaces for [`DbFile::rollback`].
    fn write(&mut self, off: u64, data: &[u8]) -> Result<(), String> {
        let len = self.len()?;
        let keep = len.saturating_sub(off).min(data.len() as u64) as usize;
        let old = self.read(off, keep)?;
        self.undo.push((off, old));
        self.file
            .write_all_at(data, off)
            .map_err(|e| format!("{}: write {} bytes at {off}: {e}", self.name, data.len()))
    }

    fn sync(&self) -> Result<(), String> {
        self.file
            .sync_data()
            .map_err(|e| format!("{}: fdatasync: {e}", self.name))
    }

    /// Undoes the journaled writes, newest first, but the first `keep`; the file gets its
    /// first length back (before those are undone: they lie inside it). Synced.
    fn restore(&mut self, keep: usize) -> Result<(), String> {
        while self.undo.len() > keep {
            let (off, old) = self.undo.pop().expect("len > keep");
            self.file
                .write_all_at(&old, off)
                .map_err(|e| format!("{}: restore at {off}: {e}", self.name))?;
        }
        if self.len()? != self.orig_len {
            self.file
                .set_len(self.orig_len)
                .map_err(|e| format!("{}: restore length: {e}", self.name))?;
        }
        self.sync()
    }
}

/// Both files, locked and decoded.
struct Db {
    pk: DbFile,
    ix: DbFile,
    pkgs: Pkgdb,
    xdb: Xdb,
    /// The `Packages.db` generation before this change.
    orig_generation: u32,
}

impl Db {
    fn open(dir: BorrowedFd<'_>) -> Result<Db, String> {
        let pk = DbFile::open(dir, "Packages.db")?;
        rustix::fs::flock(&pk.file, FlockOperation::LockExclusive)
            .map_err(|e| format!("Packages.db: flock: {e}"))?;
        let ix = DbFile::open(dir, "Index.db")?;

        let len = pk.len()?;
        let head = pk.read(0, pkg::HEADER_SIZE.min(len as usize))?;
        let npages = pkg::peek(&head)?;
        if npages as u64 * PAGE_SIZE > len {
            return Err(format!("Packages.db: {npages} slot pages in {len} bytes"));
        }
        let pkgs = Pkgdb::parse(&pk.read(0, (npages as u64 * PAGE_SIZE) as usize)?, len)?;

        let len = ix.len()?;
        let head = ix.read(0, 32.min(len as usize))?;
        let (pagesize, npages) = xdb::peek(&head)?;
        let size = npages as u64 * pagesize as u64;
        if size > len {
            return Err(format!("Index.db: {npages} slot pages in {len} bytes"));
        }
        let xdb = Xdb::parse(&ix.read(0, size as usize)?, len).map_err(|e| e.to_string())?;
        if xdb.usergeneration != pkgs.generation {
            return Err(format!(
                "Index.db is out of date (generation {} for Packages.db's {}): rpm rebuilds \
                 its indexes the next time it opens the database; not writing over that",
                xdb.usergeneration, pkgs.generation
            ));
        }
        Ok(Db {
            pk,
            ix,
            orig_generation: pkgs.generation,
            pkgs,
            xdb,
        })
    }

    /// Applies every change to the index blobs in memory and places the changed blobs
    /// (`Index.db` is not touched).
    fn plan_index(&self, ops: &Ops, change: Change) -> Result<IndexPlan, String> {
        let mut x = self.xdb.clone();
        let ps = x.pagesize as usize;
        let mut writes = Vec::new();
        let mut slot_changes = 0;
        for (tag, name, entries) in ops {
            let Some(i) = x.find(*tag, 0) else {
                continue; // rpm builds a missing index from every header when it opens it
            };
            let s = x.slots[i];
            if s.pagecnt == 0 {
                return Err(format!("Index.db: the {name} index is empty (corrupt)"));
            }
            let old = self
                .ix
                .read(s.startpage as u64 * ps as u64, s.pagecnt as usize * ps)?;
            let mut idx =
                Idx::parse(old.clone(), ps).map_err(|e| format!("Index.db {name}: {e}"))?;
            for (key, datidx) in entries {
                match change {
                    Change::Put(p) => idx.put(key, p, *datidx),
                    Change::Del(p) => idx.del(key, p, *datidx),
                }
                .map_err(|e| format!("Index.db {name}: {e}"))?;
            }
            let new = idx.bytes();
            if new == old.as_slice() {
                continue;
            }
            if !new.len().is_multiple_of(ps) {
                return Err(format!("Index.db {name}: blob not a whole number of pages"));
            }
            let pagecnt = (new.len() / ps) as u32;
            let start = x.place(i, pagecnt);
            let base = start as u64 * ps as u64;
            if start == s.startpage {
                // In place: only the pages that differ.
                for (j, page) in new.chunks(ps).enumerate() {
                    if old.get(j * ps..(j + 1) * ps) != Some(page) {
                        writes.push((base + (j * ps) as u64, page.to_vec()));
                    }
                }
            } else {
                writes.push((base, new.to_vec()));
            }
            if (start, pagecnt) != (s.startpage, s.pagecnt) {
                slot_changes += 1;
                x.set(
                    i,
                    xdb::Slot {
                        startpage: start,
                        pagecnt,
                        ..s
                    },
                );
            }
        }
        Ok(IndexPlan {
            xdb: x,
            slot_changes,
            writes,
        })
    }

    /// Runs steps 1–5 of a change; on an error restores both files (module documentation).
    fn transaction(
        &mut self,
        steps: impl FnOnce(&mut Db) -> Result<(), String>,
    ) -> Result<(), String> {
        let Err(e) = steps(self) else {
            return Ok(());
        };
        // Packages.db first; then Index.db down to its first write, the stale user
        // generation, which is undone only when everything else was.
        let restored = self
            .pk
            .restore(0)
            .and_then(|()| self.ix.restore(1))
            .and_then(|()| self.ix.restore(0));
        match restored {
            Ok(()) => Err(e),
            Err(r) => Err(format!(
                "{e}; restoring the database failed too ({r}): its indexes are marked out of \
                 date, rpm rebuilds them the next time it opens the database"
            )),
        }
    }

    /// Step 1: `Index.db`'s user generation to a value the `Packages.db` generation does not
    /// reach during this change (it only grows). The container's generation is bumped as
    /// rpm does, so that a process that has the header mapped reads it again.
    fn mark_stale(&mut self) -> Result<(), String> {
        self.set_usergeneration(self.stale())
    }

    /// Step 5.
    fn mark_synced(&mut self) -> Result<(), String> {
        self.set_usergeneration(self.pkgs.generation)
    }

    fn stale(&self) -> u32 {
        self.orig_generation.wrapping_sub(1)
    }

    fn set_usergeneration(&mut self, g: u32) -> Result<(), String> {
        self.xdb.generation = self.xdb.generation.wrapping_add(1);
        self.ix
            .write(xdb::OFF_GENERATION, &self.xdb.header_fields(g))?;
        self.ix.sync()
    }

    /// Step 3: the planned pages, and the slot pages when the table changed (they keep the
    /// stale user generation until step 5).
    fn apply_index(&mut self, plan: &IndexPlan) -> Result<(), String> {
        for (off, data) in &plan.writes {
            self.ix.write(*off, data)?;
        }
        let stale = self.stale();
        let old = self.xdb.slot_pages(stale);
        let mut x = plan.xdb.clone();
        x.generation = self.xdb.generation.wrapping_add(plan.slot_changes);
        let new = x.slot_pages(stale);
        let ps = self.xdb.pagesize as usize;
        for (j, (o, n)) in old.chunks(ps).zip(new.chunks(ps)).enumerate() {
            if o != n {
                self.ix.write((j * ps) as u64, n)?;
            }
        }
        self.ix.sync()?;
        self.xdb = x;
        Ok(())
    }

    /// Step 4: one slot, then the header with the next generation (`rpmpkgWriteslot`).
    fn commit_slot(&mut self, slotno: u32, slot: [u8; 16], nextpkgidx: u32) -> Result<(), String> {
        self.pk.write(pkg::slot_offset(slotno), &slot)?;
        self.pkgs.generation = self.pkgs.generation.wrapping_add(1);
        self.pkgs.nextpkgidx = nextpkgidx;
        let h = self.pkgs.header(self.pkgs.generation, nextpkgidx);
        self.pk.write(0, &h)?;
        self.pk.sync()
    }

    /// `rpmpkgValidateZero` without the repair: the free run `blkoff..+blkcnt` (what of it
    /// lies inside the file) must be all zero.
    fn check_zero(&self, blkoff: u32, blkcnt: u32) -> Result<(), String> {
        let end = (blkoff as u64 + blkcnt as u64).min(self.pkgs.fileblks as u64);
        if end <= blkoff as u64 {
            return Ok(());
        }
        let b = self.pk.read(
            blkoff as u64 * BLK_SIZE,
            ((end - blkoff as u64) * BLK_SIZE) as usize,
        )?;
        if b.iter().any(|&x| x != 0) {
            return Err(format!(
                "Packages.db: free space at block {blkoff} is not zero (an interrupted \
                 write; rpm repairs it on its next write)"
            ));
        }
        Ok(())
    }

    /// `rpmpkgAddSlotPage` when no slot is free: the blobs in the way of a new slot page move
    /// (each copied, synced, its slot switched, the old copy zeroed), then the page is added.
    fn ensure_free_slot(&mut self) -> Result<(), String> {
        if self.pkgs.freeslot.is_some() {
            return Ok(());
        }
        let cutoff = (self.pkgs.slotnpages + 1) * PAGE_BLKS;
        let mut rounds = 0;
        while let Some(&s) = self.pkgs.slots.first().filter(|s| s.blkoff < cutoff) {
            rounds += 1;
            if rounds > 4 * self.pkgs.slots.len() + 16 {
                return Err("Packages.db: cannot clear room for a slot page".into());
            }
            let to = self.pkgs.find_empty(s.blkcnt, true);
            self.move_blob(s, to)?;
        }
        let at = self.pkgs.slotnpages * PAGE_BLKS;
        self.check_zero(at, PAGE_BLKS)?;
        self.pk
            .write(at as u64 * BLK_SIZE, &pkg::empty_slot_page())?;
        self.pk.sync()?;
        self.pkgs.freeslot = Some(self.pkgs.slotnpages * (PAGE_SIZE / pkg::SLOT_SIZE) as u32);
        self.pkgs.slotnpages += 1;
        self.pkgs.fileblks = self.pkgs.fileblks.max(at + PAGE_BLKS);
        self.pkgs.generation = self.pkgs.generation.wrapping_add(1);
        let h = self.pkgs.header(self.pkgs.generation, self.pkgs.nextpkgidx);
        self.pk.write(0, &h)?;
        self.pk.sync()
    }

    /// `rpmpkgMoveBlob`.
    fn move_blob(&mut self, s: pkg::Slot, to: u32) -> Result<(), String> {
        let len = s.blkcnt as usize * BLK_SIZE as usize;
        let framed = self.pk.read(s.blkoff as u64 * BLK_SIZE, len)?;
        if !pkg::verify(&framed, s.pkgidx) {
            return Err(format!(
                "Packages.db: the blob of package {} is damaged",
                s.pkgidx
            ));
        }
        self.check_zero(to, s.blkcnt)?;
        self.pk.write(to as u64 * BLK_SIZE, &framed)?;
        self.pk.sync()?;
        let next = self.pkgs.nextpkgidx;
        self.commit_slot(s.slotno, pkg::slot_bytes(s.pkgidx, to, s.blkcnt), next)?;
        self.pk.write(s.blkoff as u64 * BLK_SIZE, &vec![0u8; len])?;
        self.pk.sync()?;
        let p = &mut self.pkgs;
        p.fileblks = p.fileblks.max(to + s.blkcnt);
        if let Some(m) = p.slots.iter_mut().find(|m| m.slotno == s.slotno) {
            m.blkoff = to;
        }
        p.slots.sort_by_key(|m| m.blkoff);
        Ok(())
    }

    /// After an erase is committed: zero the old blob, and shorten the file when what
    /// follows the last blob is over a quarter of it (`rpmpkgDelInternal`). Best effort, as in
    /// rpm: free space that is not zero is repaired by rpm's next write.
    fn after_erase(&mut self, s: pkg::Slot) {
        let len = s.blkcnt as usize * BLK_SIZE as usize;
        if self
            .pk
            .file
            .write_all_at(&vec![0u8; len], s.blkoff as u64 * BLK_SIZE)
            .is_err()
            || self.pk.sync().is_err()
        {
            return;
        }
        let p = &self.pkgs;
        let end = p
            .slots
            .iter()
            .filter(|m| m.slotno != s.slotno)
            .map(|m| m.blkoff + m.blkcnt)
            .max()
            .unwrap_or(p.slotnpages * PAGE_BLKS);
        if end < p.fileblks / 4 * 3 {
            let _ = self.pk.file.set_len(end as u64 * BLK_SIZE);
        }
    }
}
