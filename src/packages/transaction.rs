//! Package transactions through the container's own `rpm`: install or update an uploaded
//! package (`rpm -U`), erase an installed one (`rpm -e`), with `--test` for a dry run. rpm
//! runs inside the container (the enter helper: its namespaces, root, cgroups and capability
//! set, as uid 0, with its own database and macros), so scriptlets, triggers, file conflicts
//! and `%config` files behave exactly as rpm makes them. What rpm printed is split into
//! problems (rpm's `rpmProblem`s, each `[message, [type, str1, num1]]` as librpm holds it;
//! `rpmprob.c` gives the messages, `rpmprob.h` the type numbers) and the rest (`output`).
//!
//! Invariants: a transaction is never started twice on one container at once (rpm's own
//! lock is respected besides: rpm waits for it); once started it is never killed (no
//! time-out, not by a client that hangs up, not by SIGTERM: the server waits for
//! `active()` to drop to zero); and a problem line is never dropped nor noise taken for one.

use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;
use std::sync::{Condvar, Mutex};

use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::{json, Value};

use super::upload::Upload;
use super::Database;
use crate::enter::Finished;
use crate::rpmdb::Package;

/// `rpmProblemType` from rpm's `rpmprob.h`, in its order.
pub mod problem_type {
    pub const BADARCH: u32 = 0;
    pub const BADOS: u32 = 1;
    pub const PKG_INSTALLED: u32 = 2;
    pub const BADRELOCATE: u32 = 3;
    pub const REQUIRES: u32 = 4;
    pub const CONFLICT: u32 = 5;
    pub const NEW_FILE_CONFLICT: u32 = 6;
    pub const FILE_CONFLICT: u32 = 7;
    pub const OLDPACKAGE: u32 = 8;
    pub const DISKSPACE: u32 = 9;
    pub const DISKNODES: u32 = 10;
    pub const OBSOLETES: u32 = 11;
    pub const VERIFY: u32 = 12;
}

/// One problem of a transaction, as librpm's `rpmProblem` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// rpm's own words (`rpmProblemString`).
    pub message: String,
    /// `rpmProblemType`.
    pub kind: u32,
    /// The dependency (`ca-certificates`, `foo >= 2`), the path of a file conflict, the
    /// architecture or file system; `None` where rpm has none.
    pub str1: Option<String>,
    /// The rpmdb instance of the installed package the problem names ("(installed) …", the
    /// owner of a conflicting file, the newer installed package); 0 when none.
    pub num1: u64,
}

impl Serialize for Problem {
    /// `[message, [type, str1, num1]]`, the prototype's shape.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.message)?;
        t.serialize_element(&(self.kind, &self.str1, self.num1))?;
        t.end()
    }
}

/// `name-[epoch:]version-release[.arch]`, as rpm prints `%{NEVRA}` in its messages.
pub fn format_nevra(
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    arch: Option<&str>,
) -> String {
    let mut s = String::with_capacity(name.len() + version.len() + release.len() + 16);
    s.push_str(name);
    s.push('-');
    if let Some(e) = epoch {
        s.push_str(&format!("{e}:"));
    }
    s.push_str(version);
    s.push('-');
    s.push_str(release);
    if let Some(a) = arch {
        s.push('.');
        s.push_str(a);
    }
    s
}

/// A package's VERSION and RELEASE (empty when its header has none, which rpm accepts).
pub fn version_of(p: &Package) -> &str {
    p.version.as_deref().unwrap_or("")
}

pub fn release_of(p: &Package) -> &str {
    p.release.as_deref().unwrap_or("")
}

/// An installed package's NEVRA.
pub fn nevra(p: &Package) -> String {
    format_nevra(
        &p.name,
        p.epoch,
        version_of(p),
        release_of(p),
        p.arch.as_deref(),
    )
}

/// What names `nevra` the way rpm's messages and arguments may: with and without the epoch,
/// and with `0:` where it has none (rpm takes a missing epoch for 0).
fn names_of(p: &Package) -> [String; 3] {
    [
        nevra(p),
        format_nevra(
            &p.name,
            None,
            version_of(p),
            release_of(p),
            p.arch.as_deref(),
        ),
        format_nevra(
            &p.name,
            Some(p.epoch.unwrap_or(0)),
            version_of(p),
            release_of(p),
            p.arch.as_deref(),
        ),
    ]
}

/// The rpmdb instance of the installed package that rpm's message calls `nevra` (0 if none).
pub fn instance_of(db: &Database, nevra: &str) -> u64 {
    db.packages
        .iter()
        .find(|p| names_of(p).iter().any(|n| n == nevra))
        .map_or(0, |p| p.instance as u64)
}

/// Splits what rpm printed into its problems and everything else. A problem is a line that
/// rpm's `rpmpsPrint` wrote (a tab, then one of `rpmProblemString`'s messages); `instance`
/// gives the rpmdb instance of an installed package named in it.
pub fn parse_output(text: &str, instance: &dyn Fn(&str) -> u64) -> (Vec<Problem>, String) {
    let mut problems = Vec::new();
    let mut rest = String::new();
    for line in text.lines() {
        let p = line
            .strip_prefix('\t')
            .and_then(|m| parse_problem(m, instance));
        match p {
            Some(p) => problems.push(p),
            None => {
                // The headline of a dependency failure belongs to the problems after it.
                if line != "error: Failed dependencies:" {
                    rest.push_str(line);
                    rest.push('\n');
                }
            }
        }
    }
    (problems, rest)
}

/// One of `rpmProblemString`'s messages (rpm's `lib/rpmprob.c`), or `None`.
pub fn parse_problem(m: &str, instance: &dyn Fn(&str) -> u64) -> Option<Problem> {
    use problem_type as t;
    let one_word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    let problem = |kind, str1: Option<&str>, num1| Problem {
        message: m.to_string(),
        kind,
        str1: str1.map(str::to_string),
        num1,
    };
    // File conflicts first: their messages are the specific ones (a dependency on a
    // package named `file` also starts with "file ").
    if let Some(rest) = m.strip_prefix("file ") {
        // "file %s from install of %s conflicts with file from package %s"
        if let Some((head, owner)) = rest.rsplit_once(" conflicts with file from package ") {
            if let Some((path, new)) = head.rsplit_once(" from install of ") {
                if one_word(owner) && one_word(new) {
                    return Some(problem(t::FILE_CONFLICT, Some(path), instance(owner)));
                }
            }
        }
        // "file %s conflicts between attempted installs of %s and %s"
        if let Some((path, pair)) = rest.rsplit_once(" conflicts between attempted installs of ") {
            if pair.split_once(" and ").is_some() {
                return Some(problem(t::NEW_FILE_CONFLICT, Some(path), 0));
            }
        }
    }
    // "%s is needed by %s%s", "%s conflicts with %s%s", "%s is obsoleted by %s%s": the
    // dependency, then "(installed) " when an installed package holds it, then its NEVRA.
    for (sep, kind) in [
        (" is needed by ", t::REQUIRES),
        (" conflicts with ", t::CONFLICT),
        (" is obsoleted by ", t::OBSOLETES),
    ] {
        if let Some((dep, who)) = m.rsplit_once(sep) {
            let (installed, who) = match who.strip_prefix("(installed) ") {
                Some(w) => (true, w),
                None => (false, who),
            };
            if !dep.is_empty() && one_word(who) {
                let num1 = if installed { instance(who) } else { 0 };
                return Some(problem(kind, Some(dep), num1));
            }
        }
    }
    if let Some(rest) = m.strip_prefix("package ") {
        // "package %s (which is newer than %s) is already installed"
        if let Some(head) = rest.strip_suffix(") is already installed") {
            if let Some((newer, _)) = head.split_once(" (which is newer than ") {
                return Some(problem(t::OLDPACKAGE, None, instance(newer)));
            }
        }
        if let Some(who) = rest.strip_suffix(" is already installed") {
            if one_word(who) {
                return Some(problem(t::PKG_INSTALLED, None, instance(who)));
            }
        }
        if let Some(head) = rest.strip_suffix(" architecture") {
            if let Some((_, arch)) = head.split_once(" is intended for a ") {
                return Some(problem(t::BADARCH, Some(arch), 0));
            }
        }
        if let Some(head) = rest.strip_suffix(" operating system") {
            if let Some((_, os)) = head.split_once(" is intended for a ") {
                return Some(problem(t::BADOS, Some(os), 0));
            }
        }
        if let Some((_, why)) = rest.split_once(" does not verify: ") {
            return Some(problem(t::VERIFY, Some(why), 0));
        }
    }
    if let Some(rest) = m.strip_prefix("installing package ") {
        // "... needs %d%cB more space on the %s filesystem" / "... more inodes on the %s filesystem"
        if let Some(head) = rest.strip_suffix(" filesystem") {
            if let Some((need, fs)) = head.rsplit_once(" on the ") {
                let kind = if need.ends_with("more inodes") {
                    t::DISKNODES
                } else {
                    t::DISKSPACE
                };
                return Some(problem(kind, Some(fs), 0));
            }
        }
    }
    if let Some(rest) = m.strip_prefix("path ") {
        if let Some((path, _)) = rest.split_once(" in package ") {
            if rest.ends_with(" is not relocatable") {
                return Some(problem(t::BADRELOCATE, Some(path), 0));
            }
        }
    }
    None
}

/// Whether `rpm --version` printed what a real librpm rpm prints (`RPM version 4.…`), not
/// busybox's applet or another tool of that name.
pub fn is_librpm(version_output: &str) -> bool {
    let v = version_output.trim();
    v.starts_with("RPM version 4.")
        || v.starts_with("RPM version 5.")
        || v.starts_with("RPM version 6.")
}

/// What `DELETE /<c>/rpms/<spec>` erases.
#[derive(Debug)]
pub enum Target<'a> {
    One(&'a Package),
    /// No installed package has that name, NEVRA or (unique) Provides.
    NotInstalled,
    /// Several do: nothing is erased; the caller must name one by NEVRA.
    Ambiguous(Vec<&'a Package>),
}

/// Chooses the package `spec` names: by name (a name several installed packages share, as
/// multilib and kernels do, is ambiguous), by `name-version-release[.arch]` (with or without
/// epoch), or by a Provides that one installed package alone has (the prototype erased
/// `mozilla-ca-certificates`, which `ca-certificates-mozilla` provides).
pub fn choose<'a>(db: &'a Database, spec: &str) -> Target<'a> {
    let real = || {
        db.packages
            .iter()
            .filter(|p| !p.gpg_pubkey || spec.starts_with("gpg-pubkey"))
    };
    let by_name: Vec<&Package> = real().filter(|p| p.name == spec).collect();
    match by_name.len() {
        1 => return Target::One(by_name[0]),
        0 => {}
        _ => return Target::Ambiguous(by_name),
    }
    let by_nevra: Vec<&Package> = real()
        .filter(|p| {
            let nvr = format_nevra(&p.name, None, version_of(p), release_of(p), None);
            let envr = format_nevra(&p.name, p.epoch, version_of(p), release_of(p), None);
            names_of(p).iter().any(|n| n == spec) || nvr == spec || envr == spec
        })
        .collect();
    match by_nevra.len() {
        1 => return Target::One(by_nevra[0]),
        0 => {}
        _ => return Target::Ambiguous(by_nevra),
    }
    let providers: Vec<&Package> = real()
        .filter(|p| p.more().provides.iter().any(|d| d.name == spec))
        .collect();
    match providers.len() {
        0 => Target::NotInstalled,
        1 => Target::One(providers[0]),
        _ => Target::Ambiguous(providers),
    }
}

/// The `package` object of a reply: as the prototype gave it (`name`, `version`,
/// `release`, `installdate`; `epoch` when set), plus `arch`.
pub fn package_json(p: &Package) -> Value {
    let mut v = json!({
        "name": p.name,
        "version": p.version,
        "release": p.release,
        "arch": p.arch,
        "installdate": p.installtime.map(|t| crate::procfs::format_utc(t as i64)),
    });
    if let Some(e) = p.epoch {
        v["epoch"] = json!(e);
    }
    v
}

/// Why a transaction did not run.
#[derive(Debug)]
pub enum TxError<E> {
    /// Running something in the container failed (the helper's own error).
    Run(E),
    /// The database cannot be read natively.
    Db(super::Error),
    /// Several installed packages answer to the name (409 `ambiguous_package`).
    Ambiguous {
        spec: String,
        candidates: Vec<String>,
    },
    /// The database's file system is mounted read-only (409 `read_only_filesystem`).
    ReadOnly(String),
    /// No usable rpm, and the native path cannot do it either (422 `native_unsupported`):
    /// a BerkeleyDB database, a package it does not handle.
    NativeUnsupported(String),
    /// Another transaction runs on this container and the caller would not wait (409).
    InProgress(String),
}

/// How a transaction ended: the HTTP status and the reply (the prototype's shapes).
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub reply: Value,
    /// Whether it did what was asked (the command line's exit status).
    pub ok: bool,
    /// The NEVRA it was about, for the audit line.
    pub nevra: Option<String>,
}

impl Outcome {
    /// A transaction that did what was asked (200), with its reply, about `nevra`.
    pub(crate) fn done(reply: Value, nevra: String) -> Outcome {
        Outcome {
            status: 200,
            reply,
            ok: true,
            nevra: Some(nevra),
        }
    }
}

/// Runs argv in a container (see `Context::run`).
pub type RunInContainer<'a, E> =
    dyn Fn(&[&str], Option<BorrowedFd<'_>>) -> Result<Finished, E> + 'a;

/// Runs a native job (JSON of `native::apply::Job`) in a container (see `Context::run_native`).
pub type RunNativeJob<'a, E> = dyn Fn(&str, Option<BorrowedFd<'_>>) -> Result<Finished, E> + 'a;

/// What a transaction needs from its surroundings, as closures (tested without mocks of
/// the kernel: the tests run the real rpm in real containers).
pub struct Context<'a, E> {
    pub container: &'a str,
    /// Runs argv in the container as uid 0, no time-out; `fd` becomes the program's stdin.
    pub run: &'a RunInContainer<'a, E>,
    /// Reads the container's database natively.
    pub read_db: &'a dyn Fn() -> Result<Database, super::Error>,
    /// Whether the file system holding the database directory is read-only.
    pub read_only_fs: &'a dyn Fn(&str) -> bool,
    /// Wait for another transaction on this container (`false`: 409 at once).
    pub wait: bool,
    /// Runs a native job in the container: the enter helper's child, inside it as uid 0,
    /// runs `native::apply` itself, no time-out; `fd` becomes its stdin, its reply its stdout.
    pub run_native: &'a RunNativeJob<'a, E>,
    /// Reads the container's database natively with every package's files (`Detail::Files`).
    pub read_files: &'a dyn Fn() -> Result<Database, super::Error>,
    /// Whether a file named `rpm` is in one of the container's `PATH` directories (looked
    /// up natively: no helper runs when there is none).
    pub rpm_on_path: &'a dyn Fn() -> bool,
}

/// The containers with a transaction in progress in this process (one each at most).
static BUSY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static FREED: Condvar = Condvar::new();

/// Transactions running now in this process (a stopping server waits for them all).
pub fn active() -> usize {
    BUSY.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// One container's transaction slot, held while rpm runs.
struct Slot(String);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.0);
        FREED.notify_all();
    }
}

fn take_slot<E>(container: &str, wait: bool) -> Result<Slot, TxError<E>> {
    let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    while busy.contains(container) {
        if !wait {
            return Err(TxError::InProgress(format!(
                "a package transaction is running in container {container}; retry, or leave out wait=0 to queue behind it"
            )));
        }
        busy = FREED.wait(busy).unwrap_or_else(|e| e.into_inner());
    }
    busy.insert(container.to_string());
    Ok(Slot(container.to_string()))
}

impl<E> Context<'_, E> {
    /// Checks that the container has an rpm of librpm that reads its database: one query
    /// (`rpm -q --qf MARK NAME`) answers both, as only librpm's rpm prints the mark or "is
    /// not installed"; `rpm --version` is asked only to explain a refusal, which is why
    /// there is none (the native path then takes over and says it).
    fn usable_rpm(&self, probe_name: &str) -> Result<(), String> {
        const MARK: &str = "sidecar-librpm-probe";
        if !(self.rpm_on_path)() {
            return Err("no `rpm` on its PATH".to_string());
        }
        let q = (self.run)(&["rpm", "-q", "--qf", MARK, probe_name], None);
        let readable = matches!(&q, Ok(f) if (f.exit_code == Some(0) && f.stdout.starts_with(MARK))
            || (f.exit_code == Some(1) && f.stdout.contains("is not installed")));
        if readable {
            return Ok(());
        }
        let v = (self.run)(&["rpm", "--version"], None);
        let why = match (&v, &q) {
            (Err(_), _) => "no `rpm` on its PATH".to_string(),
            (Ok(f), _) if f.exit_code != Some(0) || !is_librpm(&f.stdout) => format!(
                "its `rpm` is not librpm's ({})",
                format!("{}{}", f.stdout, f.stderr)
                    .trim()
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
            (Ok(_), Ok(f)) => format!("its rpm cannot read its database: {}", f.stderr.trim()),
            (Ok(_), Err(_)) => "its rpm could not be run".to_string(),
        };
        Err(why)
    }

    /// The path a transaction would take, for replies that run nothing: `native` when no
    /// `rpm` is on the container's PATH (a probe decides the rest when it runs).
    fn method(&self) -> &'static str {
        if (self.rpm_on_path)() {
            "rpm"
        } else {
            "native"
        }
    }

    pub(crate) fn writable(&self, db: &Database) -> Result<(), TxError<E>> {
        if (self.read_only_fs)(&db.dir) {
            return Err(TxError::ReadOnly(format!(
                "the RPM database of container {} ({}) is on a read-only file system: nothing was changed",
                self.container, db.dir
            )));
        }
        Ok(())
    }

    /// Erases what `spec` names (`rpm -e`), or with `test` checks that it could.
    pub fn erase(&self, spec: &str, test: bool) -> Result<Outcome, TxError<E>> {
        // The queue comes first: what is installed is read when our turn has come.
        let _slot = take_slot(self.container, self.wait)?;
        let db = (self.read_db)().map_err(TxError::Db)?;
        let pkg = match choose(&db, spec) {
            Target::NotInstalled => {
                let mut reply = json!({"status": "not-installed", "method": self.method()});
                if test {
                    reply["test"] = json!(true);
                }
                return Ok(Outcome {
                    status: 404,
                    reply,
                    ok: false,
                    nevra: None,
                });
            }
            Target::Ambiguous(ps) => {
                return Err(TxError::Ambiguous {
                    spec: spec.to_string(),
                    candidates: ps.iter().map(|p| nevra(p)).collect(),
                })
            }
            Target::One(p) => p,
        };
        let target = nevra(pkg);
        let arg = format_nevra(
            &pkg.name,
            None,
            version_of(pkg),
            release_of(pkg),
            pkg.arch.as_deref(),
        );
        if let Err(why) = self.usable_rpm(&arg) {
            return self.native_erase(pkg, &db, test, &why);
        }
        self.writable(&db)?;
        let mut argv = vec!["rpm", "-e"];
        if test {
            argv.push("--test");
        }
        argv.push(&arg);
        let done = (self.run)(&argv, None).map_err(TxError::Run)?;
        let after = (self.read_db)().map_err(TxError::Db)?;
        let still = after
            .packages
            .iter()
            .find(|p| p.instance == pkg.instance && nevra(p) == target);
        let mut out = self.outcome(&done, &db, test);
        if out.ok && (test || still.is_none()) {
            out.reply["status"] = json!("erased");
            out.reply["package"] = package_json(pkg);
        } else {
            out.ok = false;
            out.status = 409;
            out.reply["status"] = json!("failed");
            out.reply["package"] = still.map_or(Value::Null, package_json);
        }
        out.nevra = Some(target);
        Ok(out)
    }

    /// Installs or updates the uploaded package (`rpm -U`), or with `test` checks that it
    /// could. The same NEVRA already installed answers `already-installed` without rpm.
    pub fn install(&self, upload: &Upload, test: bool) -> Result<Outcome, TxError<E>> {
        use std::os::fd::AsFd;
        // The queue comes first: what is installed is read when our turn has come.
        let _slot = take_slot(self.container, self.wait)?;
        let db = (self.read_db)().map_err(TxError::Db)?;
        let want = upload.nevra();
        let same_name: Vec<&Package> = db
            .packages
            .iter()
            .filter(|p| p.name == upload.name)
            .collect();
        if let Some(p) = same_name.iter().find(|p| names_of(p).contains(&want)) {
            let mut reply = json!({"status": "already-installed", "package": package_json(p), "method": self.method()});
            if test {
                reply["test"] = json!(true);
            }
            return Ok(Outcome::done(reply, want));
        }
        if let Err(why) = self.usable_rpm(&upload.name) {
            return self.native_install(upload, &db, test, &why);
        }
        self.writable(&db)?;
        let mut argv = vec!["rpm", "-U"];
        if test {
            argv.push("--test");
        }
        argv.push("/proc/self/fd/0");
        let done = (self.run)(&argv, Some(upload.file.as_fd())).map_err(TxError::Run)?;
        let after = (self.read_db)().map_err(TxError::Db)?;
        let now = after.packages.iter().find(|p| names_of(p).contains(&want));
        let mut out = self.outcome(&done, &db, test);
        let verb = if same_name.is_empty() {
            "installed"
        } else {
            "updated"
        };
        match now {
            Some(p) if out.ok && !test => {
                out.reply["status"] = json!(verb);
                out.reply["package"] = package_json(p);
            }
            _ if out.ok && test => {
                out.reply["status"] = json!(verb);
                out.reply["package"] = json!({
                    "name": upload.name, "version": upload.version, "release": upload.release,
                    "arch": upload.arch, "installdate": null,
                });
                if let Some(e) = upload.epoch {
                    out.reply["package"]["epoch"] = json!(e);
                }
            }
            _ => {
                // What rpm left installed: a failing %post leaves the package in place.
                out.ok = false;
                out.status = 409;
                out.reply["status"] = json!("failed");
                out.reply["package"] = now.map_or(Value::Null, package_json);
            }
        }
        out.nevra = Some(want);
        Ok(out)
    }

    /// The common part of a reply: problems, the rest of rpm's output, method, test.
    fn outcome(&self, done: &Finished, before: &Database, test: bool) -> Outcome {
        // rpm prints its problems (rpmpsPrint) on stderr, and only when it fails: what a
        // scriptlet wrote, on stdout or in a transaction rpm completed, is never one.
        let (problems, rest) = if done.exit_code == Some(0) {
            (Vec::new(), format!("{}{}", done.stdout, done.stderr))
        } else {
            let (p, rest) = parse_output(&done.stderr, &|n| instance_of(before, n));
            (p, format!("{}{rest}", done.stdout))
        };
        let ok = done.exit_code == Some(0);
        let mut reply = json!({"status": null, "method": "rpm"});
        if !problems.is_empty() {
            reply["problems"] = json!(problems);
        } else if !ok {
            reply["problems"] = json!([]);
        }
        let rest = rest.trim_end();
        if !rest.is_empty() {
            reply["output"] = json!(rest);
        }
        if let Some(sig) = &done.signal {
            reply["signal"] = json!(sig);
        }
        if test {
            reply["test"] = json!(true);
        }
        Outcome {
            status: if ok { 200 } else { 409 },
            reply,
            ok,
            nevra: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_in_rpms_own_words() {
        // What Debian's rpm 4.18 printed in the tests' containers.
        let text = "rpm: RPM should not be used directly install RPM packages, use Alien instead!\n\
rpm: However assuming you know what you are doing...\n\
error: Failed dependencies:\n\
\tca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch\n\
\tfoo >= 2 is needed by ltrace-0.7.3-1.x86_64\n\
\tca-certificates conflicts with conflicter-2-1.noarch\n\
\tfile /etc/pki/base.pem from install of fileclash-3-1.noarch conflicts with file from package ca-certificates-2-1.noarch\n\
\tpackage ca-certificates-2-1.noarch is already installed\n\
\tpackage a-2-1.noarch (which is newer than a-1-1.noarch) is already installed\n\
\tfile /x conflicts between attempted installs of a-1-1.noarch and b-1-1.noarch\n\
\told is obsoleted by (installed) new-1-1.noarch\n\
\tsome scriptlet output that merely starts with a tab\n";
        let inst = |n: &str| match n {
            "ca-certificates-mozilla-2.34-lp151.2.3.1.noarch" => 121,
            "ca-certificates-2-1.noarch" => 7,
            "a-2-1.noarch" => 9,
            "new-1-1.noarch" => 3,
            _ => 0,
        };
        let (p, rest) = parse_output(text, &inst);
        let got: Vec<(u32, Option<&str>, u64)> = p
            .iter()
            .map(|p| (p.kind, p.str1.as_deref(), p.num1))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, Some("ca-certificates"), 121),
                (4, Some("foo >= 2"), 0),
                (5, Some("ca-certificates"), 0),
                (7, Some("/etc/pki/base.pem"), 7),
                (2, None, 7),
                (8, None, 9),
                (6, Some("/x"), 0),
                (11, Some("old"), 3),
            ]
        );
        assert_eq!(
            p[0].message,
            "ca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch"
        );
        assert!(rest.contains("use Alien instead"));
        assert!(rest.contains("\tsome scriptlet output"));
        assert!(!rest.contains("Failed dependencies"));
        assert_eq!(
            serde_json::to_string(&p[0]).unwrap(),
            r#"["ca-certificates is needed by (installed) ca-certificates-mozilla-2.34-lp151.2.3.1.noarch",[4,"ca-certificates",121]]"#
        );
    }

    #[test]
    fn librpm_or_not() {
        assert!(is_librpm("RPM version 4.18.0\n"));
        assert!(!is_librpm(
            "BusyBox v1.35.0 (Debian 1:1.35.0-4+b3) multi-call binary.\n"
        ));
        assert!(!is_librpm(""));
    }

    #[test]
    fn nevra_as_rpm_prints_it() {
        assert_eq!(
            format_nevra("a", Some(2), "1", "3", Some("noarch")),
            "a-2:1-3.noarch"
        );
        assert_eq!(
            format_nevra("gpg-pubkey", None, "1", "3", None),
            "gpg-pubkey-1-3"
        );
    }
}
