//! Databases with one bad record, built in the test and compared with what the real rpm
//! lists: a header blob cut short (rpm skips it with a warning, lists the rest) in each
//! format (SQLite made here by Debian's rpm and damaged with Python's sqlite3; BerkeleyDB
//! and ndb copies of fixtures damaged byte by byte: a `dl` one too large), a header without VERSION (rpm lists it
//! as `name-release.arch`), a file list whose DIRINDEXES point past DIRNAMES (rpm lists the
//! package, with no files), every record damaged (an error, as rpm lists nothing), a hot
//! rollback journal left by a writer that died (read through, never written), a corrupt
//! file that is merely new, and `--dbpath` given something that is not a database
//! directory. The damage is done by `tests/tools/rpmhdr.py`, which recomputes the header
//! digests rpm checks, so rpm reads the edited headers as genuine ones.
//!
//! Invariant: without `rpm`, `rpmbuild` or `python3` each test skips loudly (a failure under
//! CI=true); every database lives in its own temporary directory, removed at the end.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use sidecar::rpmdb::{read_path, read_path_with, Detail, Format};

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/rpmhdr.py");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rpmdb");

fn tools() -> bool {
    privileged(&["rpm", "rpmbuild", "python3"])
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Six small noarch packages (one with `Epoch: 0`, one with `Epoch: 3`), each owning a file.
fn build_packages(top: &Path) -> Vec<PathBuf> {
    let mut spec = String::from(
        "Name: ft-alpha\nVersion: 1.0\nRelease: 1\nEpoch: 0\nSummary: alpha\nLicense: MIT\n\
         BuildArch: noarch\n%description\nalpha\n%files\n/opt/ft/alpha.txt\n",
    );
    for (name, extra) in [
        ("beta", ""),
        ("gamma", ""),
        ("delta", "Epoch: 3\n"),
        ("eps", ""),
        ("zeta", ""),
    ] {
        spec += &format!(
            "%package -n ft-{name}\nSummary: {name}\nVersion: 2.{}\n{extra}\
             %description -n ft-{name}\n{name}\n%files -n ft-{name}\n/opt/ft/{name}.txt\n",
            name.len()
        );
    }
    spec += "%install\nmkdir -p %{buildroot}/opt/ft\n\
             for n in alpha beta gamma delta eps zeta; do echo $n > %{buildroot}/opt/ft/$n.txt; done\n";
    fs::write(top.join("ft.spec"), spec).unwrap();
    rpmbuild(top, "ft.spec")
}

fn rpmbuild(top: &Path, spec: &str) -> Vec<PathBuf> {
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--nodeps")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(top.join(spec)));
    let mut rpms: Vec<PathBuf> = fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rpms.sort();
    rpms
}

fn install_justdb(db: &Path, rpms: &[PathBuf]) {
    run(Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .args(["-i", "--nodeps", "--justdb", "--nosignature"])
        .args(rpms));
}

/// rpm's listing (`rpm -qa`, its default format) of a copy of `db` (rpm may write beside a
/// database it opens), sorted; and what it said on stderr.
fn rpm_qa(db: &Path, backend: &str) -> (Vec<String>, String) {
    let copy = TempDir::new("rpm-copy");
    for e in fs::read_dir(db).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
    }
    let out = Command::new("rpm")
        .arg("--dbpath")
        .arg(copy.path())
        .args(["--define", &format!("_db_backend {backend}"), "-qa"])
        .output()
        .unwrap();
    assert!(out.status.success(), "rpm -qa failed");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `sidecar rpms --dbpath DB`: (sorted lines, stderr, exit status).
fn sidecar_qa(db: &Path) -> (Vec<String>, String, i32) {
    let out = Command::new(SIDECAR)
        .args(["rpms", "--dbpath"])
        .arg(db)
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    (
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn damage(kind: &str, db_file: &Path, record: u32, op: &str) {
    run(Command::new("python3")
        .arg(TOOL)
        .arg(kind)
        .arg(db_file)
        .arg(record.to_string())
        .arg(op));
    age(db_file);
}

/// Dates a damaged file an hour back: one modified moments ago is first taken for a file
/// being written.
fn age(f: &Path) {
    let ok = Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(f)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The SQLite `hnum` of each package name in `db`.
fn instances(db: &Path) -> BTreeMap<String, u32> {
    read_path(db)
        .unwrap()
        .packages
        .into_iter()
        .map(|p| (p.name, p.instance))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn sqlite_damaged_headers_are_skipped_or_listed_as_rpm_does() {
    if !tools() {
        return;
    }
    let top = TempDir::new("ft-build");
    let rpms = build_packages(top.path());
    assert_eq!(rpms.len(), 6);
    let pristine = TempDir::new("ft-db");
    install_justdb(pristine.path(), &rpms);
    let ids = instances(pristine.path());

    // Untouched: exactly rpm -qa's lines, with no epoch even for `Epoch: 0` and `Epoch: 3`.
    let (want, _) = rpm_qa(pristine.path(), "sqlite");
    let (got, err, code) = sidecar_qa(pristine.path());
    assert_eq!((&got, err.as_str(), code), (&want, "", 0));
    assert!(
        got.contains(&"ft-alpha-1.0-1.noarch".to_string()),
        "{got:?}"
    );
    assert!(
        got.contains(&"ft-delta-2.5-1.noarch".to_string()),
        "{got:?}"
    );

    // 1. One blob cut to 100 bytes among good ones: rpm skips it, warns, lists the rest.
    let cut = TempDir::new("ft-cut");
    copy_dir(pristine.path(), cut.path());
    let victim = ids["ft-gamma"];
    damage(
        "sqlite",
        &cut.path().join("rpmdb.sqlite"),
        victim,
        "cut:100",
    );
    let (want, rpm_err) = rpm_qa(cut.path(), "sqlite");
    assert_eq!(want.len(), 5, "rpm: {want:?}");
    assert!(rpm_err.contains("skipping"), "rpm said: {rpm_err}");
    let (got, err, code) = sidecar_qa(cut.path());
    assert_eq!(got, want);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains(&format!("#{victim}")), "{err}");
    let listing = read_path(cut.path()).unwrap();
    assert_eq!(listing.skipped.len(), 1);
    assert_eq!(listing.skipped[0].instance, victim);
    // The in-depth view of another package is unaffected.
    let out = Command::new(SIDECAR)
        .args(["rpms", "--dbpath"])
        .arg(cut.path())
        .args(["ft-beta", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["files"], serde_json::json!(["/opt/ft/beta.txt"]));

    // 2. A header without VERSION: rpm lists it as name-release.arch; so do we, and the
    // JSON says version null.
    let nover = TempDir::new("ft-nover");
    copy_dir(pristine.path(), nover.path());
    damage(
        "sqlite",
        &nover.path().join("rpmdb.sqlite"),
        ids["ft-beta"],
        "drop:1001",
    );
    let (want, _) = rpm_qa(nover.path(), "sqlite");
    assert!(want.contains(&"ft-beta-1.noarch".to_string()), "{want:?}");
    let (got, err, code) = sidecar_qa(nover.path());
    assert_eq!((got, err.as_str(), code), (want, "", 0));
    let out = Command::new(SIDECAR)
        .args(["rpms", "--dbpath"])
        .arg(nover.path())
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let beta = v
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ft-beta")
        .unwrap();
    assert!(beta["version"].is_null(), "{beta}");
    assert_eq!(beta["release"], "1");

    // 3. DIRINDEXES past DIRNAMES: rpm lists the package and shows it without files; only
    // that package's in-depth view says so, others and unknown names answer as usual.
    let badfiles = TempDir::new("ft-dirindex");
    copy_dir(pristine.path(), badfiles.path());
    damage(
        "sqlite",
        &badfiles.path().join("rpmdb.sqlite"),
        ids["ft-delta"],
        "dirindex",
    );
    let (want, _) = rpm_qa(badfiles.path(), "sqlite");
    let (got, err, code) = sidecar_qa(badfiles.path());
    assert_eq!((got, err.as_str(), code), (want, "", 0));
    let rpm_ql = Command::new("rpm")
        .arg("--dbpath")
        .arg(badfiles.path())
        .args(["-ql", "ft-delta"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rpm_ql.stdout),
        "(contains no files)\n"
    );
    let detail = |name: &str| {
        Command::new(SIDECAR)
            .args(["rpms", "--dbpath"])
            .arg(badfiles.path())
            .args([name, "--json"])
            .output()
            .unwrap()
    };
    let delta: serde_json::Value = serde_json::from_slice(&detail("ft-delta").stdout).unwrap();
    assert_eq!(delta[0]["files"], serde_json::json!([]));
    assert!(
        delta[0]["files_error"]
            .as_str()
            .is_some_and(|e| e.contains("DIRINDEXES")),
        "{delta}"
    );
    let eps: serde_json::Value = serde_json::from_slice(&detail("ft-eps").stdout).unwrap();
    assert_eq!(eps[0]["files"], serde_json::json!(["/opt/ft/eps.txt"]));
    assert!(eps[0].get("files_error").is_none());
    let none = detail("no-such-package");
    assert_eq!(none.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&none.stderr).contains("not installed"));
    // A full parse of every package (what the library offers) keeps going too.
    let full = read_path(badfiles.path()).unwrap();
    assert_eq!(full.packages.len(), 6);

    // 4. Every record damaged: an error, as rpm lists nothing.
    let all = TempDir::new("ft-all");
    copy_dir(pristine.path(), all.path());
    for id in ids.values() {
        damage("sqlite", &all.path().join("rpmdb.sqlite"), *id, "cut:100");
    }
    let (want, _) = rpm_qa(all.path(), "sqlite");
    assert!(want.is_empty());
    let (got, err, code) = sidecar_qa(all.path());
    assert!(got.is_empty());
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("every other record"), "{err}");
}

#[test]
fn bdb_damaged_header_is_skipped_as_rpm_does() {
    if !tools() {
        return;
    }
    let db = TempDir::new("ft-bdb");
    copy_dir(&Path::new(FIXTURES).join("sles12-sp4"), db.path());
    fs::remove_file(db.path().join("expected.tsv")).unwrap();
    let bash = read_path(db.path())
        .unwrap()
        .packages
        .into_iter()
        .find(|p| p.name == "bash")
        .unwrap();
    damage("bdb", &db.path().join("Packages"), bash.instance, "baddl");
    let (want, rpm_err) = rpm_qa(db.path(), "bdb_ro");
    assert_eq!(want.len(), 107, "{rpm_err}");
    assert!(!want.iter().any(|l| l.starts_with("bash-4")));
    let (got, err, code) = sidecar_qa(db.path());
    assert_eq!(got, want);
    assert_eq!(code, 0);
    assert!(err.contains(&format!("#{}", bash.instance)), "{err}");
    let listing = read_path_with(db.path(), Detail::Summary).unwrap();
    assert_eq!(listing.format, Format::BerkeleyDb);
    assert_eq!(listing.skipped.len(), 1);
}

#[test]
fn ndb_damaged_header_is_skipped() {
    if !tools() {
        return;
    }
    // Debian's rpm cannot read ndb: the oracle is the real rpm's listing of the fixture
    // (expected.tsv, see SOURCES.md) without the damaged package.
    let fixture = Path::new(FIXTURES).join("sle15.3-bci-minimal-2021");
    let db = TempDir::new("ft-ndb");
    fs::copy(fixture.join("Packages.db"), db.path().join("Packages.db")).unwrap();
    let before = read_path(db.path()).unwrap().packages;
    let victim = before.iter().find(|p| p.name == "bash").unwrap();
    damage(
        "ndb",
        &db.path().join("Packages.db"),
        victim.instance,
        "baddl",
    );
    let listing = read_path(db.path()).unwrap();
    assert_eq!(listing.format, Format::Ndb);
    assert_eq!(
        listing
            .skipped
            .iter()
            .map(|s| s.instance)
            .collect::<Vec<_>>(),
        vec![victim.instance]
    );
    let mut got: Vec<String> = listing
        .packages
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}\t{}",
                p.name,
                p.epoch.unwrap_or(0),
                p.version.as_deref().unwrap_or("(none)"),
                p.release.as_deref().unwrap_or("(none)")
            )
        })
        .collect();
    got.sort();
    let want: Vec<String> = fs::read_to_string(fixture.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("bash\t"))
        .map(|l| l.split('\t').take(4).collect::<Vec<_>>().join("\t"))
        .collect();
    assert_eq!(got, want);
    let (_, err, code) = sidecar_qa(db.path());
    assert_eq!(code, 0);
    assert!(err.contains(&format!("#{}", victim.instance)), "{err}");
}

/// A hot rollback journal left by a writer that died mid-transaction, months ago: its saved
/// pages are the committed state. We read through it (what rpm shows once SQLite has rolled
/// it back), and write nothing; the main file alone would show the half-done transaction.
#[test]
fn stale_hot_journal_is_read_through() {
    if !tools() {
        return;
    }
    let top = TempDir::new("ft-jbuild");
    let rpms = build_packages(top.path());
    let db = TempDir::new("ft-jdb");
    install_justdb(db.path(), &rpms);
    let (want, _) = rpm_qa(db.path(), "sqlite");
    // A rollback-journal database, then a transaction that deletes every package and spills
    // its pages into the main file, then a copy taken as if the writer had died there.
    let crashed = TempDir::new("ft-jcrash");
    let py = r#"
import os, shutil, sqlite3, sys
db, out = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("PRAGMA cache_size=1")
c.execute("PRAGMA cache_spill=1")
c.execute("BEGIN IMMEDIATE")
c.execute("DELETE FROM Packages")
for t in [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")]:
    if t != "Packages":
        c.execute("DELETE FROM \"%s\"" % t)
c.execute("PRAGMA shrink_memory")
for f in ("rpmdb.sqlite", "rpmdb.sqlite-journal"):
    shutil.copy(os.path.join(os.path.dirname(db), f), os.path.join(out, f))
    old = 1_600_000_000
    os.utime(os.path.join(out, f), (old, old))
c.execute("ROLLBACK")
"#;
    run(Command::new("python3")
        .args(["-c", py])
        .arg(db.path().join("rpmdb.sqlite"))
        .arg(crashed.path()));
    let journal = crashed.path().join("rpmdb.sqlite-journal");
    assert!(fs::metadata(&journal).unwrap().len() > 512, "no journal");
    // The main file alone shows the half-done transaction (fewer packages, or none).
    let main_only = TempDir::new("ft-jmain");
    fs::copy(
        crashed.path().join("rpmdb.sqlite"),
        main_only.path().join("rpmdb.sqlite"),
    )
    .unwrap();
    age(&main_only.path().join("rpmdb.sqlite"));
    let alone = read_path(main_only.path()).map(|l| l.packages.len());
    assert!(alone.as_ref().map_or(true, |n| *n < 6), "{alone:?}");

    let snapshot = |d: &Path| -> Vec<(String, u64, i64)> {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    m.len(),
                    m.mtime(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(crashed.path());
    let (got, err, code) = sidecar_qa(crashed.path());
    assert_eq!((got, err.as_str(), code), (want.clone(), "", 0));
    assert_eq!(
        snapshot(crashed.path()),
        before,
        "the reader wrote something"
    );
    // rpm opens the database read-only and cannot roll a hot journal back (it fails with
    // "attempt to write a readonly database"); SQLite itself, opening a copy read-write,
    // rolls it back: then rpm lists what we listed.
    let recovered = TempDir::new("ft-jrecovered");
    copy_dir(crashed.path(), recovered.path());
    let count = run(Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM Packages').fetchone()[0])",
        ])
        .arg(recovered.path().join("rpmdb.sqlite")));
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "6");
    let (rpm_sees, _) = rpm_qa(recovered.path(), "sqlite");
    assert_eq!(rpm_sees, want);
}

/// A corrupt file modified moments ago is first taken for one being written; once retries
/// show that nothing changes it, it is called corrupt (422), not "retry" (503).
#[test]
fn new_corrupt_file_is_called_corrupt() {
    let dir = TempDir::new("ft-newcorrupt");
    fs::write(dir.path().join("Packages"), vec![0x5au8; 8192]).unwrap();
    let t = std::time::Instant::now();
    let err = sidecar::packages::read_dbpath(dir.path(), Detail::Summary)
        .err()
        .expect("a corrupt database read");
    assert!(
        matches!(err, sidecar::packages::Error::Db { .. }),
        "{err:?} after {:?}",
        t.elapsed()
    );
    assert!(!err.to_string().contains("retry"), "{err}");
}

/// `--dbpath` given a missing path, a file, a directory without a database, or a root file
/// system: each named for what it is; the root file system's database is read.
#[test]
fn dbpath_says_what_it_was_given() {
    if !tools() {
        return;
    }
    let cases = TempDir::new("ft-dbpath");
    let sidecar = |dir: &Path| {
        let out = Command::new(SIDECAR)
            .args(["rpms", "--dbpath"])
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = sidecar(&cases.path().join("missing"));
    assert_eq!(code, Some(125));
    assert!(err.contains("no such directory"), "{err}");
    assert!(!err.contains("container"), "{err}");
    fs::write(cases.path().join("afile"), b"x").unwrap();
    let (code, _, err) = sidecar(&cases.path().join("afile"));
    assert_eq!(code, Some(125));
    assert!(err.contains("is a file, not a directory"), "{err}");
    let (code, _, err) = sidecar(cases.path());
    assert_eq!(code, Some(125));
    assert!(err.contains("holds no RPM database"), "{err}");
    // A root file system with its database at /var/lib/rpm -> /usr/lib/sysimage/rpm (an
    // absolute symlink, resolved inside the root, as rpm --root does).
    let root = cases.path().join("rootfs");
    fs::create_dir_all(root.join("usr/lib/sysimage/rpm")).unwrap();
    fs::create_dir_all(root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/sysimage/rpm", root.join("var/lib/rpm")).unwrap();
    let top = TempDir::new("ft-dbpath-build");
    let rpms = build_packages(top.path());
    install_justdb(&root.join("usr/lib/sysimage/rpm"), &rpms);
    let (want, _) = rpm_qa(&root.join("usr/lib/sysimage/rpm"), "sqlite");
    let (code, out, err) = sidecar(&root);
    assert_eq!(code, Some(0), "{err}");
    let mut got: Vec<String> = out.lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, want);
}
