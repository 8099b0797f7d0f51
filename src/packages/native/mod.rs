//! Native transactions, for containers that keep an RPM database but ship no rpm (micro and
//! distroless images): the checks rpm would make, done here over the headers read natively
//! (`check.rs`, with librpm's version comparison in `vercmp.rs`). Extraction into the
//! container's root and registration in its database are the next steps of this path
//! (issue 12); until they exist, such a container answers 422 `rpm_not_available`.
//!
//! Invariant: the checks agree with the real rpm's `--test` on the cases the tests build.

pub mod check;
pub mod index;
pub mod ndb;
pub mod vercmp;

use crate::rpmdb::{header, Package};

/// The header blob of an RPM package file, as a database stores it (no magic): where
/// `upload::layout` says the header is.
///
/// # Errors
/// A message when the file is too short or a header's magic is wrong.
pub fn header_blob(file: &[u8]) -> Result<&[u8], String> {
    let l = crate::packages::upload::layout(|at| {
        let at = usize::try_from(at).ok()?;
        file.get(at..at.checked_add(16)?)?.try_into().ok()
    })?;
    let (start, end) = (l.header_at + 8, l.header_at + l.header_len);
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(s, e)| file.get(s..e))
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
