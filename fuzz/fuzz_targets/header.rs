//! Fuzzes the header blob parser: any bytes must give a package or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sidecar::rpmdb::header::parse(data, 1);
    // The listing's path validates only the entries it reads: it must be as safe.
    let _ = sidecar::rpmdb::header::parse_summary(data, 1);
    let _ = sidecar::rpmdb::header::parse_files(data, 1);
});
