//! The part of a native transaction that changes the container. It runs in the forked
//! child of an enter helper (`enter::Request::native_job`), once that child is inside the
//! container's namespaces, cgroups and root (chrooted), as uid 0 with the container's
//! capability set, the uploaded package on stdin: no copy of the sidecar exists in the
//! container to `exec`, and the helper is single-threaded, so its fork may run any of our
//! code. It takes rpm's own lock (an exclusive `fcntl` lock on `.rpm.lock` in the database
//! directory, which rpm's `rpmlock.c` takes too), reads the database natively, installs
//! (`install`) or erases (`erase`), and prints one JSON reply on stdout: `{"ok": Applied}`
//! or `{"error": "why"}` (exit status 0 or 1).
//!
//! Invariant: every file it writes, the database and its `-wal`/`-journal` included,
//! resolves inside the container's root: the process is chrooted there, and the native
//! path's own lookups are confined a second time (`place`).

use std::collections::HashSet;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::packages::{self, Database};
use crate::rootfs::Root;
use crate::rpmdb::header::RawEntry;
use crate::rpmdb::{Detail, Format};

/// What to do, decided and checked by the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Install the package on stdin; with `replace`, as an update of that instance.
    Install {
        dbdir: String,
        time: u32,
        replace: Option<u32>,
        /// The installed instances the server's checks saw (sorted).
        checked: Vec<u32>,
    },
    /// Erase installed instance `instance`.
    Erase {
        dbdir: String,
        instance: u32,
        checked: Vec<u32>,
    },
}

/// What was done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    /// The header number (rpmdb instance) of the installed or erased package.
    pub instance: u32,
    /// rpm's warnings: `.rpmnew`/`.rpmsave`/`.rpmorig`, unknown owners, files left.
    pub warnings: Vec<String>,
    /// The package's scriptlets that would have run and did not (`%post`, `%preun`…).
    pub skipped_scriptlets: Vec<String>,
}

/// The reply on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(Applied),
    Error(String),
}

/// The installed packages as the program reads them, with their file lists.
pub struct Installed {
    pub db: Database,
}

impl std::ops::Deref for Installed {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl Installed {
    /// The SQLite file of the database.
    pub fn sqlite_path(&self) -> String {
        format!("{}/rpmdb.sqlite", self.db.dir)
    }

    /// Every path that a package other than `instance` owns.
    pub fn owned_by_others(&self, instance: u32) -> HashSet<&str> {
        self.db
            .packages
            .iter()
            .filter(|p| p.instance != instance)
            .flat_map(|p| p.more().entries.iter().map(|f| f.path.as_str()))
            .collect()
    }

    /// The stored header blob of `instance` (SQLite: through SQLite; ndb: the native reader).
    ///
    /// # Errors
    /// The database's message, or that no such header is stored.
    pub fn blob(&self, instance: u32) -> Result<Vec<u8>, String> {
        if self.db.format == Format::Ndb {
            let path = std::path::PathBuf::from(format!("{}/Packages.db", self.db.dir));
            let f = crate::rootfs::open_host_file(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let src = crate::rpmdb::FileSource::new("Packages.db", f).map_err(|e| e.to_string())?;
            let mut found = None;
            crate::rpmdb::ndb::for_each_blob(&src, &mut |i, b| {
                if i == instance {
                    found = Some(b.to_vec());
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            return found.ok_or_else(|| format!("header {instance} is not in Packages.db"));
        }
        let c = rusqlite::Connection::open_with_flags(
            self.sqlite_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(|e| e.to_string())?;
        c.query_row(
            "SELECT blob FROM Packages WHERE hnum = ?",
            [instance],
            |r| r.get(0),
        )
        .map_err(|e| format!("header {instance}: {e}"))
    }
}

/// The child's entry point: `job` is the JSON of a [`Job`]; returns the exit status.
pub fn main(job: &str) -> i32 {
    let reply = match serde_json::from_str::<Job>(job) {
        Err(e) => Reply::Error(format!("invalid job: {e}")),
        Ok(job) => match run(&job) {
            Ok(a) => Reply::Ok(a),
            Err(e) => Reply::Error(e),
        },
    };
    let ok = matches!(reply, Reply::Ok(_));
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &reply);
    let _ = out.flush();
    i32::from(!ok)
}

fn run(job: &Job) -> Result<Applied, String> {
    let root = Root::of_dir(std::path::Path::new("/")).map_err(|e| format!("/: {e}"))?;
    let (dbdir, checked) = match job {
        Job::Install { dbdir, checked, .. } | Job::Erase { dbdir, checked, .. } => (dbdir, checked),
    };
    let _lock = lock(&root, dbdir)?;
    let db = packages::read_root(&root, Detail::Files).map_err(|e| e.to_string())?;
    if &db.dir != dbdir {
        return Err(format!("the database is in {}, not {dbdir}", db.dir));
    }
    if db.format == Format::BerkeleyDb {
        return Err(format!(
            "the database in {dbdir} is BerkeleyDB; the native path writes SQLite and ndb only"
        ));
    }
    // The checks ran on the server before this lock was taken: what they saw must still be
    // what is installed (another sidecar's transaction may have run in between).
    let mut now: Vec<u32> = db.packages.iter().map(|p| p.instance).collect();
    now.sort_unstable();
    if &now != checked {
        return Err(format!(
            "the RPM database in {dbdir} changed between the checks and rpm's lock (another transaction ran): nothing was changed; retry"
        ));
    }
    let db = Installed { db };
    match job {
        Job::Install { time, replace, .. } => {
            let pkg = crate::sys::take_inherited_fd(0).map_err(|e| format!("stdin: {e}"))?;
            super::install::install(&root, &db, std::fs::File::from(pkg), *time, *replace)
        }
        Job::Erase { instance, .. } => super::erase::erase(&root, &db, *instance),
    }
}

/// rpm's transaction lock: an exclusive `fcntl` lock on `<dbdir>/.rpm.lock`, waited for.
fn lock(root: &Root, dbdir: &str) -> Result<std::os::fd::OwnedFd, String> {
    use rustix::fs::{Mode, OFlags};
    let dir = root
        .resolve(dbdir.as_bytes(), OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| format!("{dbdir}: {e}"))?;
    let fd = rustix::fs::openat(
        &dir,
        ".rpm.lock",
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| format!("{dbdir}/.rpm.lock: {e}"))?;
    rustix::fs::fcntl_lock(&fd, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("{dbdir}/.rpm.lock: cannot lock: {e}"))?;
    Ok(fd)
}

/// The scriptlets of a header that an install (or update) or an erase would run, by rpm's
/// names; the native path runs none.
pub fn scriptlets(raw: &[RawEntry<'_>], install: bool) -> Vec<String> {
    let wanted: &[(u32, &str)] = if install {
        &[
            (1151, "%pretrans"),
            (1023, "%pre"),
            (1024, "%post"),
            (1152, "%posttrans"),
            (1065, "%trigger"),
            (5066, "%filetrigger"),
            (5076, "%transfiletrigger"),
        ]
    } else {
        &[
            (1025, "%preun"),
            (1026, "%postun"),
            (1065, "%trigger"),
            (5066, "%filetrigger"),
            (5076, "%transfiletrigger"),
        ]
    };
    wanted
        .iter()
        .filter(|(tag, _)| raw.iter().any(|e| e.tag == *tag))
        .map(|(_, n)| n.to_string())
        .collect()
}
