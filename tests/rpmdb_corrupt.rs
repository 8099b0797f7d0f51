//! Damages every fixture database many ways (truncation at many offsets, single-byte flips
//! at many positions, chosen by a fixed-seed PRNG) and checks that `read_path` returns
//! `Ok` or `Err` every time: no panic, no hang, and never the "changed, retry" error for a
//! file that did not change while being read.
//!
//! Invariant: deterministic (fixed seed, no timing assertions); the damaged copy lives in a
//! private temp dir that is removed at the end, the fixtures themselves are never touched.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sidecar::rpmdb::{read_path, read_path_with, DbError, Detail};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn db_file(dir: &Path) -> PathBuf {
    ["rpmdb.sqlite", "Packages.db", "Packages"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .expect("fixture without database")
}

/// Dates the mutated file an hour back: the reader takes an unreadable file modified in the
/// last two seconds for one being written and asks for a retry; these are damaged files.
fn age(f: &fs::File) {
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

/// Reads the damaged copy fully and as a listing does (summary mode validates less and
/// reads other paths), counting the full read's outcome.
fn check(dir: &Path, what: &str, stats: &mut (usize, usize)) {
    if let Err(e @ (DbError::Changed { .. } | DbError::Unsettled { .. })) =
        read_path_with(dir, Detail::Summary)
    {
        panic!("{what}: spurious retry error (summary): {e}");
    }
    // The paths of -qf/-V and of a detail view parse other parts of each header.
    for detail in [Detail::Files, Detail::Named("bash")] {
        if let Err(e @ (DbError::Changed { .. } | DbError::Unsettled { .. })) =
            read_path_with(dir, detail)
        {
            panic!("{what}: spurious retry error ({detail:?}): {e}");
        }
    }
    match read_path(dir) {
        Ok(_) => stats.0 += 1,
        Err(e @ (DbError::Changed { .. } | DbError::Unsettled { .. })) => {
            panic!("{what}: spurious retry error: {e}")
        }
        Err(_) => stats.1 += 1,
    }
}

#[test]
fn damaged_fixtures_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpmdb");
    let tmp = std::env::temp_dir().join(format!("rpmdb-corrupt-{}", std::process::id()));
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut total = (0usize, 0usize);
    for dir in dirs {
        let src = db_file(&dir);
        let fname = src.file_name().unwrap().to_owned();
        let work = tmp.join(dir.file_name().unwrap());
        fs::create_dir_all(&work).unwrap();
        let dst = work.join(&fname);
        fs::copy(&src, &dst).unwrap();
        let orig = fs::read(&src).unwrap();
        let len = orig.len() as u64;
        // Fewer rounds for the multi-megabyte files keeps the whole test well under 30 s.
        let rounds = if len > 1 << 20 { 120 } else { 300 };
        let mut stats = (0usize, 0usize);
        let f = OpenOptions::new().write(true).open(&dst).unwrap();

        for _ in 0..rounds {
            // Truncation: half near the start, where the structure lives.
            let at = if rng.below(2) == 0 {
                rng.below(len.min(16384))
            } else {
                rng.below(len)
            };
            f.set_len(at).unwrap();
            age(&f);
            check(
                &work,
                &format!("{} truncated at {at}", dir.display()),
                &mut stats,
            );
            f.set_len(len).unwrap();
            f.write_all_at(&orig[at as usize..], at).unwrap();
        }
        for _ in 0..rounds * 2 {
            let at = if rng.below(2) == 0 {
                rng.below(len.min(16384))
            } else {
                rng.below(len)
            };
            let mask = (rng.below(255) + 1) as u8;
            let byte = orig[at as usize] ^ mask;
            f.write_all_at(&[byte], at).unwrap();
            age(&f);
            check(
                &work,
                &format!("{} byte {at} ^= {mask:#x}", dir.display()),
                &mut stats,
            );
            f.write_all_at(&orig[at as usize..at as usize + 1], at)
                .unwrap();
        }
        drop(f);
        // The copy must be intact again: the last check reads it unchanged.
        assert_eq!(fs::read(&dst).unwrap(), orig);
        assert!(read_path(&work).is_ok(), "{}", dir.display());
        eprintln!(
            "{}: {} mutations, {} ok, {} err",
            dir.display(),
            stats.0 + stats.1,
            stats.0,
            stats.1
        );
        total.0 += stats.0;
        total.1 += stats.1;
    }
    let _ = fs::remove_dir_all(&tmp);
    eprintln!("total: {} ok, {} err", total.0, total.1);
}
