//! A container's packages, read natively: find its RPM database inside its root, read it with
//! `rpmdb`, and shape the answers (`GET /<c>/rpms`, `sidecar rpms`); which package owns a
//! file (`owners`, as `rpm -qf`) and what changed since the packages were installed
//! (`verify`, as `rpm -V`). Transactions (install, update, erase) through the container's
//! own rpm are in `transaction.rs`, uploaded packages are received and checked in
//! `upload.rs`, and the native path's checks are in `native/`.
//!
//! Invariant: the database is located and opened only through the container's root
//! (`rootfs::Root`, `RESOLVE_IN_ROOT`), so `/var/lib/rpm -> /usr/lib/sysimage/rpm` resolves in
//! the container and nothing outside it is ever read; and nothing here writes beside it.

mod caps;
pub mod digest;
pub mod ids;
mod owners;
mod verify;

pub use owners::{clean_path, owners, owners_json, Owners};
pub use verify::{differs, strerror, verify, verify_json, Finding};

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::procfs::{format_utc, format_utc_into};
use crate::rootfs::Root;
use crate::rpmdb::{self, DbError, Dependency, Detail, Format, Listing, Package, Skipped};

pub mod native;
pub mod transaction;
pub mod upload;

/// Where rpm keeps its database, newest layout first.
pub const DB_DIRS: [&str; 3] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm", "/usr/share/rpm"];

/// How often a read is retried when the database changes under it.
const RETRIES: u32 = 5;

#[derive(Debug)]
pub enum Error {
    /// No database in any of `DB_DIRS`.
    NoDatabase {
        container: String,
    },
    /// `--dbpath DIR`/`--root DIR` on this machine: DIR is not what was expected (missing,
    /// a file, a directory without a database); `what` says which, and what was expected.
    BadDbPath {
        dir: String,
        what: String,
    },
    /// The database kept changing while we read it.
    Busy(DbError),
    /// Unreadable or corrupt.
    Db {
        dir: String,
        source: DbError,
    },
    NotInstalled {
        name: String,
    },
    /// A path given to look up (`-qf`) that cannot be one.
    BadPath {
        path: String,
        what: &'static str,
    },
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDatabase { container } => write!(
                f,
                "container {container} has no RPM database (looked in {})",
                DB_DIRS.join(", ")
            ),
            Error::BadDbPath { dir, what } => write!(f, "{dir}: {what}"),
            Error::Busy(e) => write!(
                f,
                "the RPM database is being written ({e}); retry in a moment"
            ),
            Error::Db { dir, source } => {
                write!(f, "cannot read the RPM database in {dir}: {source}")
            }
            Error::NotInstalled { name } => write!(f, "package {name} is not installed"),
            Error::BadPath { path, what } => write!(f, "{path}: {what}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A database that was read: where, in which format, what it holds (sorted by name), and
/// the records skipped as damaged (as rpm skips them, warning about each).
pub struct Database {
    pub dir: String,
    pub format: Format,
    pub packages: Vec<Package>,
    pub skipped: Vec<Skipped>,
}

impl Database {
    /// One line per skipped record, as a warning for people (stderr, logs).
    pub fn warnings(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|s| {
                format!(
                    "warning: {}: damaged header #{} skipped ({})",
                    self.dir, s.instance, s.what
                )
            })
            .collect()
    }
}

/// The response header that counts the records skipped as damaged (only when there are).
pub const SKIPPED_HEADER: &str = "X-Sidecar-Skipped-Records";

/// The database of directory `dir`, its packages by name (then record number).
fn database(dir: &str, mut listing: Listing) -> Database {
    listing
        .packages
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.instance.cmp(&b.instance)));
    Database {
        dir: dir.to_string(),
        format: listing.format,
        packages: listing.packages,
        skipped: listing.skipped,
    }
}

fn with_retries(
    dir: &str,
    read: impl Fn() -> Result<Listing, DbError>,
) -> Result<Option<Database>, Error> {
    let mut last = None;
    // The mtimes of the file each time it read as unsettled (unreadable and new).
    let mut unsettled = Vec::new();
    for attempt in 0..RETRIES {
        match read() {
            Ok(listing) => return Ok(Some(database(dir, listing))),
            Err(DbError::NoDatabase) => return Ok(None),
            Err(e) if e.is_retryable() => {
                if let DbError::Unsettled { mtime, .. } = &e {
                    unsettled.push(*mtime);
                }
                last = Some(e);
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
            Err(e) => {
                return Err(Error::Db {
                    dir: dir.to_string(),
                    source: e,
                })
            }
        }
    }
    match last.expect("a retryable error was seen") {
        // Unreadable through every retry, and its mtime never moved since it was first
        // seen so: nothing is writing it, it is damaged. Advising a retry could not help.
        e @ DbError::Unsettled { .. }
            if unsettled.len() >= 2 && unsettled.iter().all(|m| *m == unsettled[0]) =>
        {
            Err(Error::Db {
                dir: dir.to_string(),
                source: e.settled(),
            })
        }
        e => Err(Error::Busy(e)),
    }
}

/// Reads the container's database, the first of `DB_DIRS` that holds one.
pub fn read_container(root: &Root, container: &str, detail: Detail) -> Result<Database, Error> {
    read_root(root, detail).map_err(|e| match e {
        Error::NoDatabase { .. } => Error::NoDatabase {
            container: container.to_string(),
        },
        e => e,
    })
}

/// Reads the database of a root file system (a container's, or `--root DIR`'s), the first
/// of `DB_DIRS` that holds one.
pub fn read_root(root: &Root, detail: Detail) -> Result<Database, Error> {
    for dir in DB_DIRS {
        // Root::open: looked at first (O_PATH, fstat) and opened only when it is a regular
        // file; a FIFO or device planted where the database belongs is never opened.
        let opener = |name: &str| root.open(&format!("{dir}/{name}"));
        if let Some(db) = with_retries(dir, || rpmdb::read_dir_with(&opener, detail))? {
            return Ok(db);
        }
    }
    Err(Error::NoDatabase {
        container: String::new(),
    })
}

/// `rpm -V NAME` (`name`) or `rpm -Va` in a root: its database (read with [`Detail::Files`])
/// and what differs. `-Va` verifies each package while the database is still being read;
/// when that one read does not succeed, it is read as every other answer is (with
/// retries), then verified.
///
/// # Errors
/// Those of [`read_container`], and [`Error::NotInstalled`] for a `name` not installed.
pub fn verify_root(
    root: &Root,
    container: &str,
    name: Option<&str>,
) -> Result<(Database, Vec<Finding>), Error> {
    if name.is_none() {
        let streamed =
            verify::verify_all_while_reading(root, |each| read_root_observed(root, each));
        if let Some(done) = streamed {
            return Ok(done);
        }
    }
    let db = read_container(root, container, Detail::Files)?;
    let found = verify(root, &db, name)?;
    Ok((db, found))
}

/// [`read_root`] with [`Detail::Files`], for `rpm -Va`: `each` is handed every package as
/// soon as it is read, so that the caller verifies it while the rest is read. One read,
/// without `read_root`'s retries: `None` when it did not succeed (the caller then forgets
/// what `each` saw, and reads with `read_root`, which retries and says what is wrong).
fn read_root_observed(root: &Root, each: &mut dyn FnMut(&Package)) -> Option<Database> {
    for dir in DB_DIRS {
        let opener = |name: &str| root.open(&format!("{dir}/{name}"));
        match rpmdb::read_dir_observed(&opener, Detail::Files, each) {
            Ok(listing) => return Some(database(dir, listing)),
            Err(DbError::NoDatabase) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Whether the file system that holds `dir` inside the container is mounted read-only.
pub fn read_only_fs(root: &Root, dir: &str) -> bool {
    root.open_with(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
    )
    .ok()
    .and_then(|d| rustix::fs::fstatvfs(&d).ok())
    .is_some_and(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Whether the container has a database (for `GET /<c>`'s resources), without reading it.
pub fn has_database(root: &Root) -> bool {
    DB_DIRS.iter().any(|dir| has_database_in(root, dir))
}

fn has_database_in(root: &Root, dir: &str) -> bool {
    ["rpmdb.sqlite", "Packages.db", "Packages"]
        .iter()
        .any(|f| verify::look_at(root, &format!("{dir}/{f}")).is_ok_and(|st| is_regular(&st)))
}

fn is_regular(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
}

/// Reads a database directory on this machine (`sidecar rpms --dbpath DIR`). DIR should
/// hold `rpmdb.sqlite`, `Packages.db` or `Packages`; a root file system is accepted too when
/// exactly one of its usual database directories holds a database (as `rpm --root` finds
/// it), and anything else is named for what it is.
pub fn read_dbpath(dir: &Path, detail: Detail) -> Result<Database, Error> {
    let shown = dir.display().to_string();
    let bad = |what: String| Error::BadDbPath {
        dir: shown.clone(),
        what,
    };
    const EXPECTED: &str = "expected a directory holding rpmdb.sqlite, Packages.db or Packages \
                            (or a root file system with one in /usr/lib/sysimage/rpm, \
                            /var/lib/rpm or /usr/share/rpm)";
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(format!("no such directory; {EXPECTED}")))
        }
        Err(e) => return Err(bad(format!("{e}"))),
        Ok(m) if !m.is_dir() => {
            return Err(bad(format!(
                "is a file, not a directory; {EXPECTED} (for a database file, give the \
                 directory it is in)"
            )))
        }
        Ok(_) => {}
    }
    if let Some(db) = with_retries(&shown, || rpmdb::read_path_with(dir, detail))? {
        return Ok(db);
    }
    // A root file system: its database, found inside it as a container's is (the first of
    // DB_DIRS that holds one, symlinks resolved inside DIR).
    let root = Root::of_dir(dir).map_err(|e| bad(e.to_string()))?;
    read_root(&root, detail).map_err(|e| match e {
        Error::NoDatabase { .. } => bad(format!("holds no RPM database; {EXPECTED}")),
        e => e,
    })
}

/// What `GET /<c>` says of the container's database: where, which format, how many
/// packages, and the records skipped as damaged (record number and why); or why it cannot
/// be read.
pub fn database_summary(root: &Root, container: &str) -> Value {
    match read_container(root, container, Detail::Summary) {
        Ok(db) => json!({
            "dir": db.dir,
            "format": format_name(db.format),
            "packages": db.packages.len(),
            "skipped_records": db.skipped.iter()
                .map(|s| json!({"instance": s.instance, "why": s.what}))
                .collect::<Vec<_>>(),
        }),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// The format's name as the API writes it.
pub fn format_name(f: Format) -> &'static str {
    match f {
        Format::Sqlite => "sqlite",
        Format::Ndb => "ndb",
        Format::BerkeleyDb => "bdb",
    }
}

fn time(t: Option<u32>) -> Value {
    t.map_or(Value::Null, |t| Value::from(format_utc(i64::from(t))))
}

/// A package as the listing shows it: `epoch` only when set, times as the prototype wrote
/// them (`YYYY-MM-DDTHH:MM:SS`, UTC), `gpg_pubkey` only on those pseudo-packages.
///
/// Serialized straight from borrowed fields: building a `serde_json::Map` per package was a
/// third of a listing's instructions. Fields are in alphabetical order so the JSON is the
/// same, byte for byte, as that of the (sorted) map it replaces.
#[derive(Serialize)]
pub struct Summary<'a> {
    arch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    gpg_pubkey: bool,
    installdate: Option<Date>,
    name: &'a str,
    release: Option<&'a str>,
    size: Option<u64>,
    summary: Option<&'a str>,
    version: Option<&'a str>,
}

/// A time stamp serialized the way `format_utc` writes it, without allocating.
struct Date(u32);

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 19];
        match format_utc_into(i64::from(self.0), &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&format_utc(i64::from(self.0))),
        }
    }
}

pub fn summary(p: &Package) -> Summary<'_> {
    Summary {
        arch: p.arch.as_deref(),
        epoch: p.epoch,
        gpg_pubkey: p.gpg_pubkey,
        installdate: p.installtime.map(Date),
        name: &p.name,
        release: p.release.as_deref(),
        size: p.size,
        summary: p.summary.as_deref(),
        version: p.version.as_deref(),
    }
}

/// The listing as `serde_json::to_vec_pretty` writes a `Vec` of [`summary`]s, byte for
/// byte (a test holds it to that), without serde: its writer costs a call and a buffer
/// append per token, which made it the largest part of `sidecar rpms --json`. Strings that
/// need escaping (never seen in practice) go through serde_json itself.
pub fn summaries_json_pretty(pkgs: &[Package]) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_summaries_json_pretty(pkgs, &mut out);
    out
}

/// How much of the listing is formatted before it is written out.
const JSON_CHUNK: usize = 32 << 10;

/// [`summaries_json_pretty`] written to `w` a chunk at a time: a buffer for the whole
/// listing took a few dozen fresh pages, and faulting a page in costs more here than a
/// `write`.
pub fn write_summaries_json_pretty(
    pkgs: &[Package],
    w: &mut impl std::io::Write,
) -> std::io::Result<()> {
    if pkgs.is_empty() {
        return w.write_all(b"[]");
    }
    let mut out = Vec::with_capacity(JSON_CHUNK + 1024);
    out.push(b'[');
    // Packages installed by one transaction share their install time: format it once.
    let mut date: Option<(u32, [u8; 19])> = None;
    for (i, p) in pkgs.iter().enumerate() {
        // `arch` is always there, so always first: every key's text is fixed.
        out.extend_from_slice(if i == 0 { b"\n  {" } else { b",\n  {" });
        out.extend_from_slice(b"\n    \"arch\": ");
        json_opt_str(&mut out, p.arch.as_deref());
        if let Some(e) = p.epoch {
            out.extend_from_slice(b",\n    \"epoch\": ");
            json_u64(&mut out, e.into());
        }
        if p.gpg_pubkey {
            out.extend_from_slice(b",\n    \"gpg_pubkey\": true");
        }
        out.extend_from_slice(b",\n    \"installdate\": ");
        match p.installtime {
            Some(t) => {
                if date.is_none_or(|(last, _)| last != t) {
                    let mut buf = [0u8; 19];
                    let ok = format_utc_into(i64::from(t), &mut buf).is_some();
                    date = ok.then_some((t, buf));
                }
                match &date {
                    Some((_, text)) => {
                        out.push(b'"');
                        out.extend_from_slice(text);
                        out.push(b'"');
                    }
                    None => json_str(&mut out, &format_utc(i64::from(t))),
                }
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\n    \"name\": ");
        json_str(&mut out, &p.name);
        out.extend_from_slice(b",\n    \"release\": ");
        json_opt_str(&mut out, p.release.as_deref());
        out.extend_from_slice(b",\n    \"size\": ");
        match p.size {
            Some(n) => json_u64(&mut out, n),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\n    \"summary\": ");
        json_opt_str(&mut out, p.summary.as_deref());
        out.extend_from_slice(b",\n    \"version\": ");
        json_opt_str(&mut out, p.version.as_deref());
        out.extend_from_slice(b"\n  }");
        if out.len() >= JSON_CHUNK {
            w.write_all(&out)?;
            out.clear();
        }
    }
    out.extend_from_slice(b"\n]");
    w.write_all(&out)
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // serde_json's own escaping (quotes included); writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn json_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn deps(list: &[Dependency]) -> Value {
    list.iter()
        .map(
            |d| json!({"name": d.name, "flags": d.flags, "version": d.version, "text": d.render()}),
        )
        .collect()
}

/// One package in depth (`GET /<c>/rpms/<name>`).
pub fn detail(p: &Package) -> Value {
    let mut m = match serde_json::to_value(summary(p)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(), // unreachable: a struct serializes to an object
    };
    let more = p.more();
    for (k, v) in [
        ("description", json!(more.description)),
        ("license", json!(more.license)),
        ("vendor", json!(more.vendor)),
        ("url", json!(more.url)),
        ("packager", json!(more.packager)),
        ("buildtime", time(more.buildtime)),
        ("sourcerpm", json!(more.sourcerpm)),
        ("requires", deps(&more.requires)),
        ("provides", deps(&more.provides)),
        ("conflicts", deps(&more.conflicts)),
        ("obsoletes", deps(&more.obsoletes)),
        ("files", json!(more.files)),
        ("instance", json!(p.instance)),
    ] {
        m.insert(k.into(), v);
    }
    // Only on a package whose file list could not be decoded (it then shows no files).
    if let Some(e) = &more.files_error {
        m.insert("files_error".into(), json!(e));
    }
    Value::Object(m)
}

/// What `rpm -qa` prints for a package (`%{nvr}%{archsuffix}`): `name-version-release.arch`,
/// never an epoch; a missing VERSION or RELEASE is left out with its dash (rpm's
/// `getNEVRA`), a missing ARCH with its dot (gpg-pubkey).
pub fn nevra(p: &Package) -> String {
    let mut s = String::with_capacity(p.name.len() + 32);
    s.push_str(&p.name);
    s.push('-');
    if let Some(v) = &p.version {
        s.push_str(v);
        s.push('-');
    }
    if let Some(r) = &p.release {
        s.push_str(r);
    }
    if let Some(a) = &p.arch {
        s.push('.');
        s.push_str(a);
    }
    s
}

/// The installed packages called `name` (several for multilib or kernels).
pub fn by_name<'a>(db: &'a Database, name: &str) -> Result<Vec<&'a Package>, Error> {
    let found: Vec<&Package> = db.packages.iter().filter(|p| p.name == name).collect();
    if found.is_empty() {
        return Err(Error::NotInstalled {
            name: name.to_string(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_listing_json_is_serde_json_pretty() {
        let p = |name: &str| Package {
            name: name.into(),
            version: Some("1.0".into()),
            release: Some("1.el9".into()),
            arch: Some("x86_64".into()),
            installtime: Some(1_700_000_000),
            size: Some(12345),
            summary: Some("A package".into()),
            instance: 1,
            ..Package::default()
        };
        let mut odd = p("odd \"quoted\" \\ name\t\u{1}\u{7f}");
        odd.summary = Some("résumé ✓ line\nbreak".into());
        odd.epoch = Some(0);
        odd.size = Some(u64::MAX);
        let mut key = p("gpg-pubkey");
        key.gpg_pubkey = true;
        key.arch = None;
        key.size = None;
        key.installtime = None;
        key.summary = None;
        key.epoch = Some(4_294_967_295);
        let mut old = p("ancient");
        old.installtime = Some(u32::MAX);
        old.size = Some(0);
        // The last list is several chunks long.
        let many = (0..500).map(|i| p(&format!("pkg{i}"))).collect();
        let lists = [
            vec![],
            vec![p("one")],
            vec![p("a"), odd, key, old, p("")],
            many,
        ];
        for list in lists {
            let want: Vec<_> = list.iter().map(summary).collect();
            let want = serde_json::to_vec_pretty(&want).unwrap();
            let got = summaries_json_pretty(&list);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
