//! Native transactions, for containers that keep an RPM database but ship no rpm (micro and
//! distroless images): the checks rpm would make, done here over the headers read natively
//! (`check.rs`, with librpm's version comparison in `vercmp.rs`). Extraction into the
//! container's root and registration in its database are the next steps of this path
//! (issue 12); until they exist, such a container answers 422 `rpm_not_available`.
//!
//! Invariant: the checks agree with the real rpm's `--test` on the cases the tests build.

pub mod check;
pub mod vercmp;
