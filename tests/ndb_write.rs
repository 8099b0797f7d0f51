//! The ndb writer (`sidecar::packages::native::ndb`) against the real thing: Debian's rpm
//! source package built with ndb (`scripts/build-ndb-rpm`, into `target/ndb-rpm`), and
//! packages built here with Debian's `rpmbuild`. After each write the ndb rpm must agree:
//! `-qa` lists the package, a read-only `-q NAME` finds it without rebuilding (or warning
//! about) outdated indexes, `-qf` and `--whatprovides` name it, `rpmdb --verifydb` passes, and
//! rpm can go on writing the database (`-e`, `-i`). Our own reader must read it too.
//!
//! Invariant: as root with the ndb rpm and `rpmbuild` present these run; otherwise they skip
//! loudly, and under `CI=true` they fail.

mod common;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::TempDir;
use sidecar::packages::native::index::{index_keys, IndexKey, Key};
use sidecar::packages::native::ndb;

fn ndb_bin(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/ndb-rpm/bin")
        .join(tool)
}

/// True when the test may run (root, rpmbuild, the ndb rpm).
fn ready() -> bool {
    if !ndb_bin("rpm").exists() {
        let msg = format!(
            "no ndb-capable rpm at {} (run scripts/build-ndb-rpm, or make test-deps)",
            ndb_bin("rpm").display()
        );
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
            panic!("{msg} (CI=true turns skips into failures)");
        }
        eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
        return false;
    }
    common::privileged(&["rpmbuild"])
}

fn check(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    // A read-only rpm that finds Index.db out of step with Packages.db says so (and a
    // read-write one rebuilds it): our writes must never cause that.
    assert!(
        !err.contains("outdated index") && !err.contains("damaged"),
        "{cmd:?}: {err}"
    );
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = check(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The ndb rpm on the database in `db`.
fn rpm(db: &Path) -> Command {
    let mut c = Command::new(ndb_bin("rpm"));
    c.arg("--dbpath").arg(db);
    c
}

fn rpmdb(db: &Path) -> Command {
    let mut c = Command::new(ndb_bin("rpmdb"));
    c.arg("--dbpath").arg(db);
    c
}

/// The test packages: `ndbt-{alpha,beta,gamma}`, each owning `<files>/<name>.txt` (a real
/// file on this machine, for `-qf`) and providing `<name>-cap`.
struct Packages {
    files: TempDir,
    _build: TempDir,
    rpms: Vec<PathBuf>,
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn packages() -> &'static Packages {
    static P: OnceLock<Packages> = OnceLock::new();
    P.get_or_init(|| {
        let files = TempDir::new("ndbfiles");
        let build = TempDir::new("ndbbuild");
        let mut rpms = Vec::new();
        for (i, n) in NAMES.iter().enumerate() {
            let f = files.path().join(format!("{n}.txt"));
            fs::write(&f, format!("{n}\n")).unwrap();
            let spec = build.path().join(format!("{n}.spec"));
            fs::write(
                &spec,
                format!(
                    "Name: ndbt-{n}\nVersion: {v}.0\nRelease: 1\nSummary: {n}\nLicense: MIT\n\
                     Group: Testing/{n}\nBuildArch: noarch\nProvides: {n}-cap = 2\n\
                     %description\n{n}\n%install\nmkdir -p %{{buildroot}}{dir}\n\
                     echo {n} > %{{buildroot}}{f}\n%files\n{f}\n",
                    v = i + 1,
                    dir = files.path().display(),
                    f = f.display(),
                ),
            )
            .unwrap();
            ok(Command::new("rpmbuild")
                .args(["-bb", "--nodeps", "--quiet", "--define"])
                .arg(format!("_topdir {}", build.path().display()))
                .arg(&spec));
            rpms.push(
                build
                    .path()
                    .join(format!("RPMS/noarch/ndbt-{n}-{}.0-1.noarch.rpm", i + 1)),
            );
        }
        Packages {
            files,
            _build: build,
            rpms,
        }
    })
}

impl Packages {
    fn rpm(&self, name: &str) -> &Path {
        &self.rpms[NAMES.iter().position(|n| *n == name).unwrap()]
    }
    fn file(&self, name: &str) -> PathBuf {
        self.files.path().join(format!("{name}.txt"))
    }
}

/// A fresh ndb database in `<tmp>/<name>` holding `installed` (installed by the ndb rpm).
fn database(tmp: &TempDir, name: &str, installed: &[&str]) -> PathBuf {
    let db = tmp.path().join(name);
    fs::create_dir_all(&db).unwrap();
    ok(rpmdb(&db).arg("--initdb"));
    for n in installed {
        ok(rpm(&db)
            .args(["-i", "--justdb", "--nodeps"])
            .arg(packages().rpm(n)));
    }
    db
}

fn dir_fd(db: &Path) -> OwnedFd {
    rustix::fs::open(
        db,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap()
}

/// The stored header blobs of an ndb database, by instance, read by our reader.
fn blobs(db: &Path) -> Vec<(u32, Vec<u8>)> {
    let f = fs::File::open(db.join("Packages.db")).unwrap();
    let src = sidecar::rpmdb::FileSource::new("Packages.db", f).unwrap();
    let mut out = Vec::new();
    sidecar::rpmdb::ndb::for_each_blob(&src, &mut |i, b| {
        out.push((i, b.to_vec()));
        Ok(())
    })
    .unwrap();
    out
}

/// The instance and stored blob of package `ndbt-<name>`.
fn blob_of(db: &Path, name: &str) -> (u32, Vec<u8>) {
    let listing = sidecar::rpmdb::read_path(db).unwrap();
    let inst = listing
        .packages
        .iter()
        .find(|p| p.name == format!("ndbt-{name}"))
        .unwrap_or_else(|| panic!("ndbt-{name} not in {}", db.display()))
        .instance;
    blobs(db).into_iter().find(|(i, _)| *i == inst).unwrap()
}

/// `rpm -qa` as a sorted list of names, and our reader's list, which must agree.
fn names(db: &Path) -> Vec<String> {
    let mut rpm_names: Vec<String> = ok(rpm(db).args(["-qa", "--qf", "%{NAME}\n"]))
        .lines()
        .map(str::to_string)
        .collect();
    rpm_names.sort();
    let listing = sidecar::rpmdb::read_path(db).unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let mut ours: Vec<String> = listing.packages.into_iter().map(|p| p.name).collect();
    ours.sort();
    assert_eq!(ours, rpm_names, "our reader and rpm -qa disagree");
    rpm_names
}

/// What the ndb rpm answers about `ndbt-<name>`: installed (`-q`), owner of its file
/// (`-qf`), provider of its capability (`--whatprovides`).
fn assert_present(db: &Path, name: &str, v: usize) {
    let nevra = format!("ndbt-{name}-{v}.0-1.noarch\n");
    assert_eq!(ok(rpm(db).args(["-q", &format!("ndbt-{name}")])), nevra);
    assert_eq!(ok(rpm(db).arg("-qf").arg(packages().file(name))), nevra);
    assert_eq!(
        ok(rpm(db).args(["-q", "--whatprovides", &format!("{name}-cap")])),
        nevra
    );
}

fn assert_absent(db: &Path, name: &str) {
    let q = check(rpm(db).args(["-q", &format!("ndbt-{name}")]));
    assert!(!q.status.success());
    assert!(String::from_utf8_lossy(&q.stdout).contains("is not installed"));
    let f = check(rpm(db).arg("-qf").arg(packages().file(name)));
    assert!(String::from_utf8_lossy(&f.stdout).contains("is not owned by any package"));
    let p = check(rpm(db).args(["-q", "--whatprovides", &format!("{name}-cap")]));
    assert!(String::from_utf8_lossy(&p.stdout).contains("no package provides"));
}

fn verifydb(db: &Path) {
    ok(rpmdb(db).arg("--verifydb"));
}

#[test]
fn add_is_what_rpm_would_write() {
    if !ready() {
        return;
    }
    let tmp = TempDir::new("ndbw-add");
    let db = database(&tmp, "db", &["alpha", "beta"]);
    // The reference: the same database, and rpm's own install of gamma.
    let reference = tmp.path().join("ref");
    ok(Command::new("cp").arg("-a").arg(&db).arg(&reference));
    ok(rpm(&reference)
        .args(["-i", "--justdb", "--nodeps"])
        .arg(packages().rpm("gamma")));
    let (inst, blob) = blob_of(&reference, "gamma");
    let keys = index_keys(&blob).unwrap();

    let hnum = ndb::add(dir_fd(&db).as_fd(), &blob, &keys).unwrap();
    assert_eq!(hnum, inst);

    // Byte for byte what rpm wrote, but for the generation of Index.db's own header (rpm
    // bumps it once when it syncs the indexes, we twice: stale, then in sync).
    let ours = fs::read(db.join("Packages.db")).unwrap();
    let theirs = fs::read(reference.join("Packages.db")).unwrap();
    assert!(ours == theirs, "Packages.db differs from rpm's");
    let mut ours = fs::read(db.join("Index.db")).unwrap();
    let mut theirs = fs::read(reference.join("Index.db")).unwrap();
    assert_eq!(ours.len(), theirs.len());
    ours[8..12].fill(0);
    theirs[8..12].fill(0);
    if ours != theirs {
        let diff: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
        let kept = tmp.path().to_path_buf();
        std::mem::forget(tmp);
        panic!(
            "Index.db differs from rpm's at {} bytes, first {:?} (kept {})",
            diff.len(),
            &diff[..diff.len().min(20)],
            kept.display()
        );
    }

    assert_eq!(names(&db), ["ndbt-alpha", "ndbt-beta", "ndbt-gamma"]);
    for (i, n) in NAMES.iter().enumerate() {
        assert_present(&db, n, i + 1);
    }
    verifydb(&db);
    // rpm goes on with the database: erases what we added.
    ok(rpm(&db).args(["-e", "--justdb", "--nodeps", "ndbt-gamma"]));
    assert_absent(&db, "gamma");
    assert_eq!(names(&db), ["ndbt-alpha", "ndbt-beta"]);
    verifydb(&db);
}

#[test]
fn remove_what_rpm_installed() {
    if !ready() {
        return;
    }
    let tmp = TempDir::new("ndbw-rm");
    let db = database(&tmp, "db", &["alpha", "beta", "gamma"]);
    let (inst, blob) = blob_of(&db, "alpha");
    ndb::remove(dir_fd(&db).as_fd(), inst, &index_keys(&blob).unwrap()).unwrap();

    assert_eq!(names(&db), ["ndbt-beta", "ndbt-gamma"]);
    assert_absent(&db, "alpha");
    assert_present(&db, "beta", 2);
    assert_present(&db, "gamma", 3);
    verifydb(&db);
    // Removing it again is an error that changes nothing.
    let before = (
        fs::read(db.join("Packages.db")).unwrap(),
        fs::read(db.join("Index.db")).unwrap(),
    );
    assert!(ndb::remove(dir_fd(&db).as_fd(), inst, &[]).is_err());
    assert!(
        before.0 == fs::read(db.join("Packages.db")).unwrap()
            && before.1 == fs::read(db.join("Index.db")).unwrap()
    );
    // rpm installs it again into the database we changed, and erases the others.
    ok(rpm(&db)
        .args(["-i", "--justdb", "--nodeps"])
        .arg(packages().rpm("alpha")));
    assert_present(&db, "alpha", 1);
    ok(rpm(&db).args(["-e", "--justdb", "--nodeps", "ndbt-beta", "ndbt-gamma"]));
    assert_eq!(names(&db), ["ndbt-alpha"]);
    verifydb(&db);
}

/// 300 instances of one header: more than one slot page (254 slots), so blobs move out of
/// the new page's way; several index rebuilds (Providename passes half of its 1024 slots)
/// and key-area growth; then all but one removed again.
#[test]
fn many_packages() {
    if !ready() {
        return;
    }
    let tmp = TempDir::new("ndbw-many");
    let reference = database(&tmp, "ref", &["gamma"]);
    let (_, blob) = blob_of(&reference, "gamma");
    let keys = index_keys(&blob).unwrap();
    let db = database(&tmp, "db", &["alpha"]);
    let fd = dir_fd(&db);
    let added: Vec<u32> = (0..300)
        .map(|_| ndb::add(fd.as_fd(), &blob, &keys).unwrap())
        .collect();
    assert_eq!(added, (2..302).collect::<Vec<u32>>());
    let packages_db = fs::read(db.join("Packages.db")).unwrap();
    assert_eq!(
        u32::from_le_bytes(packages_db[12..16].try_into().unwrap()),
        2
    ); // slot pages

    assert_eq!(names(&db).len(), 301);
    let gamma = "ndbt-gamma-3.0-1.noarch\n";
    assert_eq!(ok(rpm(&db).args(["-q", "ndbt-gamma"])), gamma.repeat(300));
    assert_eq!(
        ok(rpm(&db).arg("-qf").arg(packages().file("gamma"))),
        gamma.repeat(300)
    );
    assert_eq!(
        ok(rpm(&db).args(["-q", "--whatprovides", "gamma-cap"])),
        gamma.repeat(300)
    );
    assert_present(&db, "alpha", 1);
    verifydb(&db);

    for &h in &added[..299] {
        ndb::remove(fd.as_fd(), h, &keys).unwrap();
    }
    assert_eq!(names(&db), ["ndbt-alpha", "ndbt-gamma"]);
    assert_eq!(
        ok(rpm(&db).args(["-q", "--qf", "%{DBINSTANCE}\n", "ndbt-gamma"])),
        "301\n"
    );
    assert_present(&db, "gamma", 3);
    verifydb(&db);
    ok(rpm(&db).args(["-e", "--justdb", "--nodeps", "ndbt-gamma"]));
    ok(rpm(&db)
        .args(["-i", "--justdb", "--nodeps"])
        .arg(packages().rpm("beta")));
    assert_eq!(names(&db), ["ndbt-alpha", "ndbt-beta"]);
    assert_present(&db, "beta", 2);
    verifydb(&db);
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// A write that fails half-way (the file system fills up while Index.db grows) leaves both
/// files byte for byte as they were; keys for an unknown index are refused before anything
/// is written.
#[test]
fn failure_leaves_the_database_as_it_was() {
    if !ready() || !common::privileged(&["mount", "umount"]) {
        return;
    }
    let tmp = TempDir::new("ndbw-fail");
    let reference = database(&tmp, "ref", &["gamma"]);
    let (_, blob) = blob_of(&reference, "gamma");
    let keys = index_keys(&blob).unwrap();

    let fs_dir = Tmpfs(TempDir::new("ndbw-tmpfs"));
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(fs_dir.0.path()));
    let db = database(&fs_dir.0, "db", &["alpha"]);
    let before = || {
        (
            fs::read(db.join("Packages.db")).unwrap(),
            fs::read(db.join("Index.db")).unwrap(),
        )
    };
    let orig = before();

    let mut bad = keys.clone();
    bad.push(IndexKey {
        index: "Nosuchindex",
        key: Key::Text("x".into()),
        idx: 0,
    });
    let e = ndb::add(dir_fd(&db).as_fd(), &blob, &bad).unwrap_err();
    assert!(e.contains("Nosuchindex"), "{e}");
    assert!(before() == orig);

    // Leave two free pages: the blob fits, a 40 kB key does not.
    let st = rustix::fs::statvfs(fs_dir.0.path()).unwrap();
    let filler = fs_dir.0.path().join("filler");
    fs::write(
        &filler,
        vec![1u8; ((st.f_bavail - 2) * st.f_bsize) as usize],
    )
    .unwrap();
    let mut big = keys.clone();
    big.push(IndexKey {
        index: "Group",
        key: Key::Text("g".repeat(40_000)),
        idx: 0,
    });
    let e = ndb::add(dir_fd(&db).as_fd(), &blob, &big).unwrap_err();
    assert!(e.contains("Index.db") && !e.contains("restoring"), "{e}");
    assert!(before() == orig, "a failed add changed the database");
    assert_eq!(names(&db), ["ndbt-alpha"]);
    assert_present(&db, "alpha", 1);

    fs::remove_file(&filler).unwrap();
    ndb::add(dir_fd(&db).as_fd(), &blob, &keys).unwrap();
    assert_present(&db, "gamma", 3);
    verifydb(&db);
}
