//! Fuzzes the bdb reader and the header parser behind it: any file image must give packages
//! or an error, never a panic, hang or runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar::rpmdb::{header, bdb, SliceSource};

fuzz_target!(|data: &[u8]| {
    let src = SliceSource::new("db", data);
    let _ = bdb::for_each_blob(&src, &mut |instance, blob| {
        let _ = header::parse(blob, instance);
        let _ = header::parse_summary(blob, instance);
        let _ = header::parse_files(blob, instance);
        Ok(())
    });
});
