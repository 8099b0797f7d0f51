//! Fuzzes the SQLite reader: the input is split into a main file and a WAL or, when the
//! high bit of the second byte is set, a rollback journal (the first two bytes, that bit
//! cleared, give the main file's length in 512-byte units), so both overlays are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar::rpmdb::{header, sqlite, SliceSource};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let journal = data[1] & 0x80 != 0;
    let units = u16::from_le_bytes([data[0], data[1] & 0x7f]) as usize;
    let split = (units * 512).min(data.len() - 2);
    let (db, extra) = data[2..].split_at(split);
    let has_extra = !extra.is_empty();
    let db = SliceSource::new("rpmdb.sqlite", db);
    let extra = SliceSource::new("rpmdb.sqlite-extra", extra);
    let extra: Option<&dyn sidecar::rpmdb::Source> = if has_extra { Some(&extra) } else { None };
    let (wal, jrnl) = if journal { (None, extra) } else { (extra, None) };
    let _ = sqlite::for_each_blob(&db, wal, jrnl, &mut |instance, blob| {
        let _ = header::parse(blob, instance);
        let _ = header::parse_summary(blob, instance);
        let _ = header::parse_files(blob, instance);
        Ok(())
    });
});
