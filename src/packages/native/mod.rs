//! Native transactions, for containers that keep an RPM database but ship no rpm (micro and
//! distroless images). The steps, a file each:
//! 1. `run`: on the server, when the container has no usable rpm, the checks rpm would
//!    make (`check`, with librpm's version comparison in `vercmp`) over the database read
//!    natively, answered in rpm's problems; then the job handed to an enter helper.
//! 2. `apply`: in the helper's child, inside the container (namespaces, cgroups, root):
//!    rpm's lock, then `install` (refuse, stage, register, commit) or `erase`, writing
//!    only through `place` (confined lookups, `*at` calls, no final symlink followed).
//! 3. `store` and `index`: the header rpm stores and the index keys it keeps, written by
//!    `register` into SQLite (`sqlite`, rusqlite, one transaction committed with the files)
//!    or ndb (`ndb`).
//!
//! SQLite (`sqlite`) and ndb (`ndb`) databases are written, through `register`; BerkeleyDB
//! is refused (422 `native_unsupported`) and nothing is touched.
//!
//! Invariants: the checks agree with the real rpm's `--test`, and what is stored is what
//! Debian's rpm 4.18 stores for the same package (header and every index row), on the
//! cases `tests/transactions.rs` and `tests/native.rs` build.

pub mod apply;
pub mod check;
pub mod erase;
pub mod index;
pub mod install;
pub mod ndb;
pub mod place;
pub mod register;
mod run;
pub mod sqlite;
pub mod store;
pub mod vercmp;

use crate::rpmdb::{header, Package};

/// The signature header blob and the header blob of an RPM package file, as a database
/// stores a header (no magic): where `upload::layout` says they are.
///
/// # Errors
/// A message when the file is too short or a header's magic is wrong.
pub fn blobs(file: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let l = crate::packages::upload::layout(|at| {
        let at = usize::try_from(at).ok()?;
        file.get(at..at.checked_add(16)?)?.try_into().ok()
    })?;
    let slice = |start: u64, end: u64| {
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| file.get(s..e))
            .ok_or_else(|| "the package ends inside its headers".to_string())
    };
    Ok((
        slice(96 + 8, 96 + l.signature_len)?,
        slice(l.header_at + 8, l.header_at + l.header_len)?,
    ))
}

/// The header blob of an RPM package file (see [`blobs`]).
///
/// # Errors
/// As [`blobs`].
pub fn header_blob(file: &[u8]) -> Result<&[u8], String> {
    blobs(file).map(|(_, h)| h)
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
