//! Reads every real database under `tests/fixtures/rpmdb/` through `read_path` and compares
//! it with the real rpm's output (`expected.tsv`, see SOURCES.md) on all seven columns, and
//! with upstream's in-container `packages.csv` where there is one.
//!
//! Invariant: the oracle files are never regenerated from our own output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sidecar::rpmdb::{read_path, Format, Package};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpmdb")
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("(none)".to_string(), |x| x.to_string())
}

/// `%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{INSTALLTIME}\t%{SIZE}`.
fn line(p: &Package) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        p.name,
        p.epoch.unwrap_or(0),
        opt(&p.version),
        opt(&p.release),
        opt(&p.arch),
        opt(&p.installtime),
        opt(&p.size)
    )
}

fn expected_format(dir: &Path) -> Format {
    if dir.join("rpmdb.sqlite").exists() {
        Format::Sqlite
    } else if dir.join("Packages.db").exists() {
        Format::Ndb
    } else {
        Format::BerkeleyDb
    }
}

#[test]
fn every_fixture_matches_rpm() {
    let mut checked = 0;
    let mut lines = 0;
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let expected = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
        let listing = read_path(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(listing.skipped.is_empty(), "{}", dir.display());
        let (format, pkgs) = (listing.format, listing.packages);
        assert_eq!(format, expected_format(&dir), "{}", dir.display());
        let mut got: Vec<String> = pkgs.iter().map(line).collect();
        got.sort();
        let want: Vec<String> = expected.lines().map(str::to_string).collect();
        assert_eq!(got, want, "{}", dir.display());
        // Sorted by instance, instances unique.
        assert!(pkgs.windows(2).all(|w| w[0].instance < w[1].instance));
        for p in &pkgs {
            assert_eq!(p.gpg_pubkey, p.name == "gpg-pubkey");
            if !p.gpg_pubkey {
                assert!(
                    !p.more().provides.is_empty(),
                    "{}: {} has no provides",
                    dir.display(),
                    p.name
                );
            }
        }
        eprintln!("{}: {} packages match", dir.display(), got.len());
        checked += 1;
        lines += got.len();
    }
    assert_eq!(checked, 10, "expected ten fixtures");
    eprintln!("{checked} fixtures, {lines} lines matched");
}

/// Upstream printed some missing tags as `(none)` and others (ARCH, VENDOR) as empty.
fn csv_matches<T: ToString>(ours: &Option<T>, csv: &str) -> bool {
    match ours {
        None => csv.is_empty() || csv == "(none)",
        Some(v) => v.to_string() == csv,
    }
}

/// `EPOCH¶NAME¶VERSION¶RELEASE¶ARCH¶SOURCERPM¶SIZE¶LICENSE¶VENDOR¶SUMMARY¶SIGMD5`.
#[test]
fn packages_csv_extra_columns() {
    let mut total = 0;
    for name in ["amazonlinux-2023", "sle15.3-bci-minimal-2023"] {
        let dir = fixtures().join(name);
        let pkgs = read_path(&dir).unwrap().packages;
        let by_nvra: BTreeMap<String, &Package> = pkgs
            .iter()
            .map(|p| {
                let arch = p.arch.clone().unwrap_or_default();
                (
                    format!(
                        "{}-{}-{}.{}",
                        p.name,
                        opt(&p.version),
                        opt(&p.release),
                        arch
                    ),
                    p,
                )
            })
            .collect();
        let csv = std::fs::read_to_string(dir.join("packages.csv")).unwrap();
        let mut n = 0;
        for l in csv.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = l.split('¶').collect();
            assert_eq!(f.len(), 11, "{l}");
            let key = format!("{}-{}-{}.{}", f[1], f[2], f[3], f[4]);
            let p = by_nvra
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: {key} missing"));
            let epoch = if f[0].is_empty() {
                None
            } else {
                Some(f[0].parse().unwrap())
            };
            assert_eq!(p.epoch, epoch, "{key}");
            assert!(
                csv_matches(&p.more().sourcerpm, f[5]),
                "{key}: sourcerpm {:?} vs {}",
                p.more().sourcerpm,
                f[5]
            );
            assert!(
                csv_matches(&p.size, f[6]),
                "{key}: size {:?} vs {}",
                p.size,
                f[6]
            );
            assert!(
                csv_matches(&p.more().license, f[7]),
                "{key}: license {:?} vs {}",
                p.more().license,
                f[7]
            );
            assert!(
                csv_matches(&p.more().vendor, f[8]),
                "{key}: vendor {:?} vs {}",
                p.more().vendor,
                f[8]
            );
            assert!(
                csv_matches(&p.summary, f[9]),
                "{key}: summary {:?} vs {}",
                p.summary,
                f[9]
            );
            n += 1;
        }
        assert_eq!(n, pkgs.len(), "{name}: csv and db differ in count");
        total += n;
    }
    eprintln!("{total} packages.csv rows matched");
}

#[test]
fn files_and_dependencies_look_right() {
    let pkgs = read_path(&fixtures().join("fedora36-tzdata"))
        .unwrap()
        .packages;
    let tz = &pkgs[0];
    assert_eq!(tz.name, "tzdata");
    assert!(
        tz.more()
            .files
            .iter()
            .any(|f| f == "/usr/share/zoneinfo/UTC"),
        "{:?}",
        &tz.more().files[..5]
    );
    assert!(tz.more().files.iter().all(|f| f.starts_with('/')));
    assert!(tz
        .more()
        .provides
        .iter()
        .any(|d| d.render().starts_with("tzdata = ")));
}
