//! Native transactions, for containers that keep an RPM database but ship no rpm (micro and
//! distroless images): the checks rpm would make, done here over the headers read natively
//! (`check.rs`, with librpm's version comparison in `vercmp.rs`). Extraction into the
//! container's root and registration in its database are the next steps of this path
//! (issue 12); until they exist, such a container answers 422 `rpm_not_available`.
//!
//! Invariant: the checks agree with the real rpm's `--test` on the cases the tests build.

pub mod check;
pub mod vercmp;

use crate::rpmdb::{header, Package};

/// The header blob of an RPM package file (as a database stores it: no magic), after its
/// 96-byte lead and its signature header (padded to 8 bytes), as rpm's `lib/package.c`
/// lays them out.
///
/// # Errors
/// A message when the file is too short or a header's magic is wrong.
pub fn header_blob(file: &[u8]) -> Result<&[u8], String> {
    const MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];
    let be = |b: &[u8], at: usize| -> Result<usize, String> {
        b.get(at..at + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
            .ok_or_else(|| "the package ends inside a header".to_string())
    };
    let header_len = |at: usize| -> Result<usize, String> {
        if file.get(at..at + 3) != Some(&MAGIC[..]) {
            return Err(format!("no header magic at offset {at}"));
        }
        let (il, dl) = (be(file, at + 8)?, be(file, at + 12)?);
        Ok(16 + il.checked_mul(16).ok_or("header index too large")? + dl)
    };
    let sig = 96;
    let main = sig + header_len(sig)?.next_multiple_of(8);
    let len = header_len(main)?;
    file.get(main + 8..main + len)
        .ok_or_else(|| "the package ends inside its header".to_string())
}

/// The package an RPM file would install, parsed as an installed one is: dependencies,
/// and every file with its mode, digest and link (`FileEntry`).
pub fn parse_package_file(file: &[u8]) -> Result<(Package, Vec<crate::rpmdb::FileEntry>), String> {
    let blob = header_blob(file)?;
    let p = header::parse(blob, 0).map_err(|e| e.to_string())?;
    let files = header::parse_files(blob, 0)
        .map_err(|e| e.to_string())?
        .more()
        .entries
        .clone();
    Ok((p, files))
}
