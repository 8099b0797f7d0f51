//! The native path of a transaction, on the server's side: when the container has no usable
//! rpm, `Context::install` and `Context::erase` come here. The checks rpm would make run
//! first, over the database read natively (`check`), with rpm's problems in rpm's shape;
//! only when there are none (and not for `test`) does the container change, through
//! `sidecar native-apply` run in it by an enter helper (`apply`). Replies are the rpm
//! path's, with `"method": "native"`, `"signature": "not checked"` for an install (the
//! header and payload digests were checked on upload; OpenPGP signatures are not), and
//! `"skipped_scriptlets"`.
//!
//! Invariant: the per-container transaction slot is held by the caller; the database is
//! written only by the program in the container, under rpm's lock.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use serde_json::{json, Value};

use super::apply::{Job, Reply};
use crate::packages::transaction::{nevra, package_json, Context, Outcome, Problem, TxError};
use crate::packages::upload::Upload;
use crate::packages::Database;
use crate::rpmdb::{FileEntry, Format, Package};

impl<E> Context<'_, E> {
    /// Refuses what the native path cannot write.
    fn native_supported(&self, db: &Database, why: &str) -> Result<(), TxError<E>> {
        let refuse = |what: &str| {
            Err(TxError::NativeUnsupported(format!(
                "container {} has no usable rpm ({why}), and its RPM database ({}) is {what}, which the sidecar does not write natively: nothing was changed",
                self.container, db.dir
            )))
        };
        match db.format {
            Format::Sqlite | Format::Ndb => Ok(()),
            Format::BerkeleyDb => refuse("BerkeleyDB (rpm itself only reads it now)"),
        }
    }

    /// A transaction that did not happen: rpm's `problems` found by the checks, or the
    /// job's `error` (then in `output`, with no problems), about `package`.
    fn failed(
        &self,
        problems: Vec<Problem>,
        error: Option<String>,
        test: bool,
        package: Value,
        nevra: String,
    ) -> Outcome {
        let mut reply = json!({"status": "failed", "method": "native", "problems": problems, "package": package});
        if let Some(e) = error {
            reply["output"] = json!(e);
        }
        if test {
            reply["test"] = json!(true);
        }
        Outcome {
            status: 409,
            reply,
            ok: false,
            nevra: Some(nevra),
        }
    }

    /// Runs the job in the container and reads its reply.
    fn apply(
        &self,
        job: &Job,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<Result<super::apply::Applied, String>, TxError<E>> {
        let job = serde_json::to_string(job).unwrap_or_default();
        let done = (self.run_native)(&job, fd).map_err(TxError::Run)?;
        Ok(match serde_json::from_str::<Reply>(done.stdout.trim()) {
            Ok(Reply::Ok(a)) => Ok(a),
            Ok(Reply::Error(e)) => Err(e),
            Err(_) => Err(format!(
                "the native transaction ended without a reply (exit {:?}, signal {:?}): {}",
                done.exit_code,
                done.signal,
                done.stderr.trim()
            )),
        })
    }

    /// `erase` without rpm.
    pub(crate) fn native_erase(
        &self,
        pkg: &Package,
        db: &Database,
        test: bool,
        why: &str,
    ) -> Result<Outcome, TxError<E>> {
        self.native_supported(db, why)?;
        self.writable(db)?;
        let target = nevra(pkg);
        let problems = super::check::check_erase(&db.packages, pkg);
        if !problems.is_empty() {
            return Ok(self.failed(problems, None, test, package_json(pkg), target));
        }
        let mut reply =
            json!({"status": "erased", "package": package_json(pkg), "method": "native"});
        if test {
            reply["test"] = json!(true);
            return Ok(Outcome::done(reply, target));
        }
        let job = Job::Erase {
            dbdir: db.dir.clone(),
            instance: pkg.instance,
            checked: instances(db),
        };
        match self.apply(&job, None)? {
            Ok(a) => Ok(Outcome::done(with_applied(reply, &a), target)),
            Err(e) => Ok(self.failed(Vec::new(), Some(e), false, package_json(pkg), target)),
        }
    }

    /// `install` without rpm: an install, or an update of the installed package of the same
    /// name (and architecture).
    pub(crate) fn native_install(
        &self,
        upload: &Upload,
        db: &Database,
        test: bool,
        why: &str,
    ) -> Result<Outcome, TxError<E>> {
        self.native_supported(db, why)?;
        self.writable(db)?;
        let want = upload.nevra();
        let head = read_head(upload)
            .map_err(|e| TxError::NativeUnsupported(format!("cannot read the package: {e}")))?;
        let (new, new_files) =
            super::parse_package_file(&head).map_err(TxError::NativeUnsupported)?;
        let with_files = (self.read_files)().map_err(TxError::Db)?;
        let entries: HashMap<u32, Vec<FileEntry>> = with_files
            .packages
            .into_iter()
            .map(|p| (p.instance, p.more().entries.clone()))
            .collect();
        let files_of = |p: &Package| {
            if p.instance == 0 {
                new_files.clone()
            } else {
                entries.get(&p.instance).cloned().unwrap_or_default()
            }
        };
        let problems = super::check::check_install(&db.packages, &new, &files_of);
        if !problems.is_empty() {
            return Ok(self.failed(problems, None, test, Value::Null, want));
        }
        // rpm erases what the package obsoletes in the same transaction (and so reports no
        // file conflict with it); the native path replaces only the package of the same
        // name, and would install this one beside it, over its files, both registered.
        if let Some(p) = db
            .packages
            .iter()
            .find(|p| p.name != new.name && super::check::obsoletes(&new, p))
        {
            return Err(TxError::NativeUnsupported(format!(
                "{} obsoletes the installed {}, which rpm would erase in the same transaction and the native path does not: erase it first (nothing was changed)",
                nevra(&new),
                nevra(p)
            )));
        }
        let replaced = db.packages.iter().find(|p| {
            p.name == new.name
                && (p.arch == new.arch
                    || p.arch.as_deref() == Some("noarch")
                    || new.arch.as_deref() == Some("noarch"))
        });
        let verb = if replaced.is_some() {
            "updated"
        } else {
            "installed"
        };
        let mut reply = json!({"status": verb, "method": "native", "signature": "not checked",
            "package": package_json(&new)});
        if test {
            reply["test"] = json!(true);
            return Ok(Outcome::done(reply, want));
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let job = Job::Install {
            dbdir: db.dir.clone(),
            time,
            replace: replaced.map(|p| p.instance),
            checked: instances(db),
        };
        match self.apply(&job, Some(upload.file.as_fd()))? {
            Ok(a) => {
                // What is now stored is this header, with the install time the job was given.
                let mut installed = new;
                installed.installtime = Some(time);
                reply["package"] = package_json(&installed);
                Ok(Outcome::done(with_applied(reply, &a), want))
            }
            Err(e) => Ok(self.failed(Vec::new(), Some(e), false, Value::Null, want)),
        }
    }
}

/// A reply with what the job reports: the scriptlets it did not run, its warnings as `output`.
fn with_applied(mut reply: Value, a: &super::apply::Applied) -> Value {
    reply["skipped_scriptlets"] = json!(a.skipped_scriptlets);
    if !a.warnings.is_empty() {
        reply["output"] = json!(a.warnings.join("\n"));
    }
    reply
}

/// The installed instances, sorted: what the checks saw, for the job to compare under the lock.
fn instances(db: &Database) -> Vec<u32> {
    let mut v: Vec<u32> = db.packages.iter().map(|p| p.instance).collect();
    v.sort_unstable();
    v
}

/// The front of the upload: lead, signature header and header.
fn read_head(upload: &Upload) -> std::io::Result<Vec<u8>> {
    let l = crate::packages::upload::layout(|at| {
        let mut b = [0u8; 16];
        upload.file.read_exact_at(&mut b, at).ok().map(|_| b)
    })
    .map_err(std::io::Error::other)?;
    let mut head = vec![0u8; (l.header_at + l.header_len) as usize];
    upload.file.read_exact_at(&mut head, 0)?;
    Ok(head)
}
