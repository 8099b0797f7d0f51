//! The checks of a native transaction, before anything is touched, with the problems rpm
//! itself reports (`lib/depends.c`, `lib/transaction.c`), in rpm's words and shape
//! (`transaction::Problem`): for an install or update, the new package's requirements
//! against what stays installed (package provides, file provides, the `rpmlib(...)`
//! capabilities the native path supports), conflicts both ways, installed packages that
//! obsolete it, requirements of installed packages that only a replaced package met, file
//! conflicts with installed packages, and an older version than the installed one; for an
//! erase, what still requires the package.
//!
//! Invariant: pure functions over parsed headers; nothing here reads or writes a file.

use super::vercmp::{ranges_overlap, SENSEMASK};
use crate::packages::transaction::{nevra, problem_type as t, release_of, version_of, Problem};
use crate::rpmdb::{Dependency, FileEntry, Package};

/// `RPMSENSE_RPMLIB`: a dependency on a capability of rpm itself.
const RPMSENSE_RPMLIB: u32 = 1 << 24;

/// The `rpmlib(...)` capabilities the native path provides (what its extraction and
/// registration handle).
pub const RPMLIB_PROVIDES: [&str; 13] = [
    "rpmlib(CompressedFileNames)",
    "rpmlib(PayloadFilesHavePrefix)",
    "rpmlib(PayloadIsBzip2)",
    "rpmlib(PayloadIsXz)",
    "rpmlib(PayloadIsLzma)",
    "rpmlib(PayloadIsZstd)",
    "rpmlib(FileDigests)",
    "rpmlib(PartialHardlinkSets)",
    "rpmlib(VersionedDependencies)",
    "rpmlib(ExplicitPackageProvide)",
    "rpmlib(TildeInVersions)",
    "rpmlib(CaretInVersions)",
    "rpmlib(FileCaps)",
];

/// rpm's `rpmfilesCompare` for a file conflict: the same type, and for regular files the
/// same digest, for symlinks the same target.
pub fn same_file(a: &FileEntry, b: &FileEntry) -> bool {
    let kind = |m: u16| m & 0o170000;
    kind(a.mode) == kind(b.mode)
        && match kind(a.mode) {
            0o100000 => a.digest == b.digest,
            0o120000 => a.linkto == b.linkto,
            _ => true,
        }
}

fn is_dir(f: &FileEntry) -> bool {
    f.mode & 0o170000 == 0o040000
}

/// `RPMFILE_GHOST`: not on disk, never in conflict.
const RPMFILE_GHOST: u32 = 1 << 6;

/// The files of an installed or new package (the caller decodes them from the header).
pub type FilesOf<'a> = dyn Fn(&Package) -> Vec<FileEntry> + 'a;

/// Whether `dep` is provided by `p` (its Provides and its implicit `name = E:V-R`).
fn provides(p: &Package, dep: &Dependency) -> bool {
    let evr = evr_of(p);
    if p.name == dep.name && ranges_overlap(dep.flags, &dep.version, super::vercmp::EQUAL, &evr) {
        return true;
    }
    p.more().provides.iter().any(|pr| {
        pr.name == dep.name && ranges_overlap(dep.flags, &dep.version, pr.flags, &pr.version)
    })
}

/// `[epoch:]version-release` of a package.
fn evr_of(p: &Package) -> String {
    match p.epoch {
        Some(e) => format!("{e}:{}-{}", version_of(p), release_of(p)),
        None => format!("{}-{}", version_of(p), release_of(p)),
    }
}

/// Whether `dep` is met by any of `pkgs` (package or file provides).
fn satisfied(dep: &Dependency, pkgs: &[&Package]) -> bool {
    if dep.flags & RPMSENSE_RPMLIB != 0 || dep.name.starts_with("rpmlib(") {
        return RPMLIB_PROVIDES.contains(&dep.name.as_str());
    }
    if pkgs.iter().any(|p| provides(p, dep)) {
        return true;
    }
    dep.name.starts_with('/')
        && dep.flags & SENSEMASK == 0
        && pkgs
            .iter()
            .any(|p| p.more().files.iter().any(|f| f == &dep.name))
}

fn problem(kind: u32, message: String, str1: Option<String>, num1: u32) -> Problem {
    Problem {
        message,
        kind,
        str1,
        num1: num1 as u64,
    }
}

/// Whether `new` obsoletes installed package `p` (by name and version, as rpm matches an
/// `Obsoletes:` against installed packages).
pub fn obsoletes(new: &Package, p: &Package) -> bool {
    new.more().obsoletes.iter().any(|o| {
        o.name == p.name && ranges_overlap(o.flags, &o.version, super::vercmp::EQUAL, &evr_of(p))
    })
}

/// The problems of installing (or, with installed packages of the same name, updating to)
/// `new` over `installed`, as `rpm -U` reports them. `files` gives each package's files.
pub fn check_install(installed: &[Package], new: &Package, files: &FilesOf) -> Vec<Problem> {
    let new_nevra = nevra(new);
    let mut problems = Vec::new();
    let new_evr = evr_of(new);
    if let Some(p) = installed.iter().find(|p| nevra(p) == new_nevra) {
        return vec![problem(
            t::PKG_INSTALLED,
            format!("package {new_nevra} is already installed"),
            None,
            p.instance,
        )];
    }
    // Older than what is installed under the same name (same arch or noarch).
    for p in installed
        .iter()
        .filter(|p| p.name == new.name && !p.gpg_pubkey)
    {
        if ranges_overlap(
            super::vercmp::GREATER,
            &new_evr,
            super::vercmp::EQUAL,
            &evr_of(p),
        ) {
            problems.push(problem(
                t::OLDPACKAGE,
                format!(
                    "package {} (which is newer than {new_nevra}) is already installed",
                    nevra(p)
                ),
                None,
                p.instance,
            ));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    // What the transaction removes: older versions of the same name, and what it obsoletes.
    let removed = |p: &Package| p.name == new.name || obsoletes(new, p);
    let staying: Vec<&Package> = installed.iter().filter(|p| !removed(p)).collect();
    let mut after = staying.clone();
    after.push(new);
    for r in &new.more().requires {
        if !satisfied(r, &after) {
            problems.push(problem(
                t::REQUIRES,
                format!("{} is needed by {new_nevra}", r.render()),
                Some(r.render()),
                0,
            ));
        }
    }
    for c in &new.more().conflicts {
        if staying.iter().any(|p| provides(p, c)) {
            problems.push(problem(
                t::CONFLICT,
                format!("{} conflicts with {new_nevra}", c.render()),
                Some(c.render()),
                0,
            ));
        }
    }
    for p in &staying {
        for c in &p.more().conflicts {
            if provides(new, c) {
                problems.push(problem(
                    t::CONFLICT,
                    format!("{} conflicts with (installed) {}", c.render(), nevra(p)),
                    Some(c.render()),
                    p.instance,
                ));
            }
        }
        for o in &p.more().obsoletes {
            if o.name == new.name
                && ranges_overlap(o.flags, &o.version, super::vercmp::EQUAL, &new_evr)
            {
                problems.push(problem(
                    t::OBSOLETES,
                    format!("{} is obsoleted by (installed) {}", o.render(), nevra(p)),
                    Some(o.render()),
                    p.instance,
                ));
            }
        }
        // Requirements that only a package this transaction removes met.
        for r in &p.more().requires {
            let before: Vec<&Package> = installed.iter().collect();
            if satisfied(r, &before) && !satisfied(r, &after) {
                problems.push(problem(
                    t::REQUIRES,
                    format!("{} is needed by (installed) {}", r.render(), nevra(p)),
                    Some(r.render()),
                    p.instance,
                ));
            }
        }
    }
    // Files the new package shares with a staying package, different in kind or content.
    let mine = files(new);
    if !mine.is_empty() {
        for p in &staying {
            let theirs = files(p);
            // By path, once per package: a linear search per new file was quadratic.
            let by_path: std::collections::HashMap<&str, &FileEntry> = theirs
                .iter()
                .filter(|o| o.flags & RPMFILE_GHOST == 0)
                .map(|o| (o.path.as_str(), o))
                .collect();
            for f in mine
                .iter()
                .filter(|f| !is_dir(f) && f.flags & RPMFILE_GHOST == 0)
            {
                if let Some(o) = by_path.get(f.path.as_str()) {
                    if !same_file(f, o) {
                        problems.push(problem(
                            t::FILE_CONFLICT,
                            format!(
                                "file {} from install of {new_nevra} conflicts with file from package {}",
                                f.path,
                                nevra(p)
                            ),
                            Some(f.path.clone()),
                            p.instance,
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The problems of erasing `target`: what stays installed and needs what only it provides.
pub fn check_erase(installed: &[Package], target: &Package) -> Vec<Problem> {
    let same = |p: &Package| p.instance == target.instance;
    let before: Vec<&Package> = installed.iter().collect();
    let after: Vec<&Package> = installed.iter().filter(|p| !same(p)).collect();
    let mut problems = Vec::new();
    for p in &after {
        for r in &p.more().requires {
            if satisfied(r, &before) && !satisfied(r, &after) {
                problems.push(problem(
                    t::REQUIRES,
                    format!("{} is needed by (installed) {}", r.render(), nevra(p)),
                    Some(r.render()),
                    p.instance,
                ));
            }
        }
    }
    problems
}
