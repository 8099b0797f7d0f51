//! Fuzzes the SQLite reader: the input is split into a main file and a WAL (the first two
//! bytes give the main file's length in 512-byte units), so the WAL overlay is exercised too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar::rpmdb::{header, sqlite, SliceSource};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize * 512).min(data.len() - 2);
    let (db, wal) = data[2..].split_at(split);
    let has_wal = !wal.is_empty();
    let db = SliceSource::new("rpmdb.sqlite", db);
    let wal = SliceSource::new("rpmdb.sqlite-wal", wal);
    let wal: Option<&dyn sidecar::rpmdb::Source> = if has_wal { Some(&wal) } else { None };
    let _ = sqlite::for_each_blob(&db, wal, &mut |instance, blob| {
        let _ = header::parse(blob, instance);
        let _ = header::parse_summary(blob, instance);
        Ok(())
    });
});
