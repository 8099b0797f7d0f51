//! The command line's subcommands: their arguments (argh) and what each prints. Tables for
//! people; `--json` prints exactly what the API answers. Errors of the sidecar itself are
//! returned as one line and exit 125 (as `nsenter`'s and `podman exec`'s own errors do).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use serde_json::json;

use crate::api::http::{Limits, Listener, Server, UnixAccess};
use crate::api::App;
use crate::auth::{self, Auth};
use crate::containers::{self, Container};
use crate::{init, processes};

mod transactions;
pub use transactions::{rpm_erase, rpm_install, RpmErase, RpmInstall};

/// What a command ends with: the exit status, or an error that carries its own.
pub type CliResult = Result<i32, CliError>;

/// An error of a command: the words for people, and the exit status (125 for an error of
/// the sidecar itself, as `nsenter` and `podman exec` use; 126/127 when a program could not
/// be run, as a shell reports it).
#[derive(Debug)]
pub struct CliError {
    pub status: i32,
    pub message: String,
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError {
            status: 125,
            message,
        }
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        message.to_string().into()
    }
}

impl From<crate::enter::Error> for CliError {
    fn from(e: crate::enter::Error) -> CliError {
        CliError {
            status: e.exit_status(),
            message: e.to_string(),
        }
    }
}

/// serve the HTTP+JSON API
#[derive(FromArgs)]
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address to listen on: HOST:PORT or unix:/PATH (repeatable; default 0.0.0.0:8889)
    #[argh(option)]
    pub listen: Vec<String>,
    /// file of user:password or htdigest user:realm:HA1 lines
    #[argh(option)]
    pub credentials: Option<String>,
    /// serve without authentication (refused on TCP unless given)
    #[argh(switch)]
    pub no_auth: bool,
    /// refuse every route that changes a container or runs something in it
    #[argh(switch)]
    pub read_only: bool,
    /// digest realm (default support-sidecar)
    #[argh(option, default = "String::from(\"support-sidecar\")")]
    pub realm: String,
    /// largest request body in bytes (default 268435456)
    #[argh(option, default = "256 << 20")]
    pub max_upload: u64,
    /// requests handled at once; more get 503 (default 16)
    #[argh(option, default = "16")]
    pub workers: usize,
    /// largest request head in bytes (default 16384)
    #[argh(option, default = "16384")]
    pub max_head: usize,
    /// seconds a client has to send its request (default 30)
    #[argh(option, default = "30")]
    pub request_timeout: u64,
    /// seconds a client has to send its request head, from its first byte (default 10)
    #[argh(option, default = "10")]
    pub head_timeout: u64,
    /// seconds a reply may take to send, whatever its size (default 600)
    #[argh(option, default = "600")]
    pub send_timeout: u64,
    /// open connections at most (default 8 per worker, at least 64); when all are taken the
    /// oldest one that has not sent a complete request is dropped
    #[argh(option)]
    pub max_connections: Option<usize>,
    /// group (name or gid) allowed on unix sockets: mode 0660 instead of 0600
    #[argh(option)]
    pub unix_group: Option<String>,
    /// serve TCP with TLS: the certificate chain (PEM; a Kubernetes TLS Secret's tls.crt)
    #[argh(option)]
    pub tls_cert: Option<String>,
    /// the TLS private key (PEM; tls.key)
    #[argh(option)]
    pub tls_key: Option<String>,
    /// require TLS client certificates signed by these CAs (PEM) on every route but /healthz
    #[argh(option)]
    pub tls_client_ca: Option<String>,
    /// also accept HTTP Basic authentication
    #[argh(switch)]
    pub allow_basic: bool,
    /// enter containers through /proc/<pid>/ns/* one at a time (kernels before 5.8)
    #[argh(switch)]
    pub setns_files: bool,
    /// toolkit directory (static programs in its bin/) for exec requests with "tools": true
    /// (default /toolkit, where the :toolkit image has it)
    #[argh(option, default = "String::from(\"/toolkit\")")]
    pub toolkit: String,
}

/// list the containers this sidecar can see
#[derive(FromArgs)]
#[argh(subcommand, name = "list")]
pub struct List {
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
}

/// list a container's processes
#[derive(FromArgs)]
#[argh(subcommand, name = "ps")]
pub struct Ps {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
}

/// signal a process of a container
#[derive(FromArgs)]
#[argh(subcommand, name = "kill")]
pub struct Kill {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// the PID, as the sidecar sees it
    #[argh(positional)]
    pub pid: u32,
    /// signal name or number (default TERM)
    #[argh(option, short = 's', default = "String::from(\"TERM\")")]
    pub signal: String,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
}

/// print the version and commit
#[derive(FromArgs)]
#[argh(subcommand, name = "version")]
pub struct Version {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// The container named `name` (as the only element, at index 0).
pub(crate) fn find(name: &str) -> Result<(Vec<Container>, usize), String> {
    let c = containers::find(name).map_err(|e| e.to_string())?;
    Ok((vec![c], 0))
}

pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `s` with control characters escaped (`\n`, `\t`, `\x1b`, `\u{9b}`) and backslashes
/// doubled, for text a container controls (argv, comm, hostnames, package fields): printed
/// raw it could forge a row or send escape sequences to the reader's terminal. JSON output
/// is escaped by serde already.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prints rows as left-aligned columns (the last column is not padded). Every cell is made
/// `printable`: one row per line, whatever the container put in its names.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| printable(c).into_owned()).collect())
        .collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let s: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        s.join("  ")
    };
    let mut out = vec![line(header.iter().map(|s| s.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    println!("{}", out.join("\n")); // one write, not one per row
}

pub fn list(a: List) -> CliResult {
    let all = containers::discover().map_err(|e| format!("cannot list /proc: {e}"))?;
    if a.json {
        print_json(&all);
    } else {
        let rows = all
            .iter()
            .map(|c| {
                vec![
                    c.short_id.clone(),
                    c.runtime.to_string(),
                    c.hostname.clone().unwrap_or_default(),
                    c.pid.to_string(),
                    c.pids.len().to_string(),
                    if c.infra {
                        "infra".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        table(&["ID", "RUNTIME", "HOSTNAME", "PID", "PROCS", ""], rows);
        for n in all
            .iter()
            .flat_map(|c| &c.notes)
            .filter(|n| n.contains("skipped"))
        {
            eprintln!("sidecar: warning: {}", printable(n));
        }
    }
    Ok(0)
}

pub fn ps(a: Ps) -> CliResult {
    let (all, i) = find(&a.container)?;
    let listing = processes::list(&all[i]);
    for n in &listing.notes {
        eprintln!("sidecar: warning: {}", printable(n));
    }
    let procs = listing.processes;
    if a.json {
        print_json(&procs);
    } else {
        let rows = procs
            .iter()
            .map(|p| {
                vec![
                    p.pid.to_string(),
                    p.ns_pid.map(|n| n.to_string()).unwrap_or_default(),
                    p.user
                        .clone()
                        .or(p.uid.map(|u| u.to_string()))
                        .unwrap_or_default(),
                    p.state.clone(),
                    format!("{:.2}", p.cpu_seconds),
                    (p.rss_bytes / 1024).to_string(),
                    if p.cmdline.is_empty() {
                        format!("[{}]", p.comm)
                    } else {
                        p.cmdline.clone()
                    },
                ]
            })
            .collect();
        table(
            &["PID", "NSPID", "USER", "S", "CPU_S", "RSS_KB", "COMMAND"],
            rows,
        );
    }
    Ok(0)
}

pub fn kill(a: Kill) -> CliResult {
    let (all, i) = find(&a.container)?;
    let (num, name) = processes::parse_signal(&a.signal).map_err(|e| e.to_string())?;
    processes::signal(&all[i], a.pid, num).map_err(|e| e.to_string())?;
    if a.json {
        print_json(&json!({"status": "signalled", "pid": a.pid, "signal": name}));
    } else {
        println!("sent SIG{name} to {} in {}", a.pid, all[i].short_id);
    }
    Ok(0)
}

pub fn version(a: Version) -> CliResult {
    let v = crate::api::version_json();
    if a.json {
        print_json(&v);
    } else {
        println!(
            "sidecar {} ({})",
            v["version"].as_str().unwrap_or(""),
            v["commit"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

pub fn serve(a: Serve) -> CliResult {
    if std::process::id() == 1 {
        init::run_as_pid1();
    }
    init::become_subreaper();
    // Read secrets while single-threaded, then wipe them from our environment and make
    // ourselves non-dumpable: a root process of a target sharing our PID namespace must not
    // read them from /proc/<sidecar>/environ or /proc/<sidecar>/mem.
    let one_thread = crate::sys::single_threaded().ok_or(
        "sidecar serve must start single-threaded (to wipe its secrets from its environment)",
    )?;
    let env_user = auth::from_env(one_thread);
    crate::sys::set_non_dumpable().map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    let mut users = Vec::new();
    if let Some(path) = &a.credentials {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("--credentials {path}: {e}"))?;
        users = auth::parse_credentials(&text).map_err(|e| format!("--credentials {path}: {e}"))?;
        if users.is_empty() {
            return Err(format!("--credentials {path}: no users in the file").into());
        }
    }
    users.extend(env_user);
    let listen = if a.listen.is_empty() {
        vec!["0.0.0.0:8889".to_string()]
    } else {
        a.listen.clone()
    };
    let access = UnixAccess {
        group: a.unix_group.as_deref().map(group_id).transpose()?,
    };
    let tls = crate::api::tls::config(
        a.tls_cert.as_deref(),
        a.tls_key.as_deref(),
        a.tls_client_ca.as_deref(),
    )?;
    let listeners = listen
        .iter()
        .map(|l| Listener::bind(l, access).map_err(|e| format!("cannot listen on {l}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if users.is_empty() && !a.no_auth && listeners.iter().any(Listener::is_tcp) {
        return Err("no credentials: give --credentials FILE or SIDECAR_USER/SIDECAR_PASSWORD, or --no-auth to serve TCP without authentication".into());
    }
    let auth = if users.is_empty() {
        None
    } else {
        Some(Auth::new(&a.realm, users, a.allow_basic).map_err(|e| format!("getrandom: {e}"))?)
    };
    let auth_on = auth.is_some();
    let app = Arc::new(App {
        auth,
        read_only: a.read_only,
        max_upload: a.max_upload,
        setns_files: a.setns_files,
        toolkit: a.toolkit.clone(),
    });
    let limits = Limits {
        max_head: a.max_head,
        max_body: a.max_upload,
        request_timeout: Duration::from_secs(a.request_timeout.max(1)),
        head_timeout: Duration::from_secs(a.head_timeout.clamp(1, a.request_timeout.max(1))),
        send_timeout: Duration::from_secs(a.send_timeout.max(1)),
        keep_alive: Duration::from_secs(15),
        workers: a.workers.max(1),
        max_connections: a
            .max_connections
            .unwrap_or((a.workers.max(1) * 8).max(64))
            .max(2),
    };
    let tls_on = tls.is_some();
    let server = Server::new(limits, Box::new(move |req| app.handle(req)), tls);
    let mut threads = Vec::new();
    for l in listeners {
        let tls_here = tls_on && l.is_tcp();
        eprintln!(
            "{}",
            json!({"event": "listening", "address": l.describe(), "auth": auth_on, "tls": tls_here, "read_only": a.read_only})
        );
        if auth_on && !tls_here && !l.is_loopback() {
            eprintln!(
                "{}",
                json!({"event": "warning", "address": l.describe(), "message": "plain HTTP with authentication on a non-loopback address: Digest protects the password, not the requests and replies; give --tls-cert and --tls-key"})
            );
        }
        let s = Arc::clone(&server);
        threads.push(std::thread::spawn(move || s.serve(l)));
    }
    let sig = init::wait_for_stop(init::reap_orphans);
    server.stopping.store(true, Ordering::SeqCst);
    let start = Instant::now();
    for t in threads {
        let _ = t.join();
    }
    // Package transactions are never cut: they are waited for however long they take.
    while server.in_flight() > 0
        && (start.elapsed() < init::STOP_GRACE || crate::packages::transaction::active() > 0)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "{}",
        json!({"event": "stopped", "signal": sig, "in_flight": server.in_flight()})
    );
    Ok(0)
}

/// A group name (from this machine's /etc/group) or number.
fn group_id(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.parse() {
        return Ok(gid);
    }
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.nth(1)?))
        })
        .find(|(n, _)| *n == name)
        .and_then(|(_, gid)| gid.parse().ok())
        .ok_or_else(|| format!("--unix-group {name}: no such group in /etc/group"))
}

/// list a container's RPM packages (read natively, without rpm), find which package owns a
/// file (rpm -qf), or what changed since they were installed (rpm -V)
#[derive(FromArgs)]
#[argh(subcommand, name = "rpms")]
pub struct Rpms {
    /// the container and optionally a package name; with --dbpath or --root only the name
    #[argh(positional)]
    pub args: Vec<String>,
    /// read this database directory on this machine instead of a container's (a root file
    /// system is accepted too when its database is where rpm looks)
    #[argh(option)]
    pub dbpath: Option<String>,
    /// a root file system on this machine: its database, and its files for --file and
    /// --verify, as rpm --root sees them
    #[argh(option)]
    pub root: Option<String>,
    /// print the packages that own this file, as rpm -qf (the path resolves inside the root)
    #[argh(option)]
    pub file: Option<String>,
    /// print what changed against the database, as rpm -V --nodeps --noscripts (rpm -Va
    /// without a NAME); exits 1 when something differs
    #[argh(switch)]
    pub verify: bool,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
}

const RPMS_USAGE: &str = "usage: sidecar rpms <container> [NAME] [--file PATH | --verify], \
                          sidecar rpms --root DIR [NAME] [--file PATH | --verify] or \
                          sidecar rpms --dbpath DIR [NAME]";

pub fn rpms(a: Rpms) -> CliResult {
    use crate::packages;
    use crate::rpmdb::Detail;
    // Where the database is, and the root that files are looked up in (none for --dbpath).
    let (source, name): (Source, Option<&String>) = match (&a.dbpath, &a.root, a.args.as_slice()) {
        (Some(dir), None, [] | [_]) => (Source::DbPath(dir), a.args.first()),
        (None, Some(dir), [] | [_]) => {
            let root = crate::rootfs::Root::of_dir(std::path::Path::new(dir))
                .map_err(|e| format!("--root {dir}: {e}"))?;
            (Source::Root(root, dir.clone()), a.args.first())
        }
        (None, None, [c] | [c, _]) => {
            let (all, i) = find(c)?;
            let root = all[i]
                .root()
                .map_err(|e| format!("container {}: {e}", all[i].id))?;
            (Source::Root(root, all[i].id.clone()), a.args.get(1))
        }
        _ => return Err(RPMS_USAGE.into()),
    };
    if (a.file.is_some() || a.verify) && matches!(source, Source::DbPath(_)) {
        return Err(
            "--file and --verify look at files inside a root: name a container or \
                    --root DIR (--dbpath reads only a database)"
                .into(),
        );
    }
    if a.file.is_some() && (a.verify || name.is_some()) {
        return Err(RPMS_USAGE.into());
    }
    let detail = match (&a.file, a.verify, name) {
        (Some(_), _, _) | (None, true, _) => Detail::Files,
        (None, false, Some(n)) => Detail::Named(n),
        (None, false, None) => Detail::Summary,
    };
    if let (true, Source::Root(root, label)) = (a.verify, &source) {
        let (db, found) = packages::verify_root(root, label, name.map(String::as_str))
            .map_err(|e| e.to_string())?;
        // rpm warns about each damaged header it skips, and verifies the rest.
        for w in db.warnings() {
            eprintln!("{w}");
        }
        if a.json {
            print_json(&packages::verify_json(&found));
        } else {
            let mut out = std::io::stdout().lock();
            for f in &found {
                if let Some(line) = f.line() {
                    let _ = writeln!(out, "{line}");
                } else if let (None, Some(e)) = (&f.path, &f.error) {
                    // rpm says nothing here (and exits 1): we say why.
                    eprintln!("warning: {}: {e}", f.package);
                }
            }
        }
        finish(i32::from(packages::differs(&found)));
    }
    let db = match &source {
        Source::DbPath(dir) => packages::read_dbpath(std::path::Path::new(dir), detail),
        Source::Root(root, label) => packages::read_container(root, label, detail),
    }
    .map_err(|e| e.to_string())?;
    // rpm warns about each damaged header it skips, and lists the rest.
    for w in db.warnings() {
        eprintln!("{w}");
    }
    if let (Some(path), Source::Root(root, _)) = (&a.file, &source) {
        let owned = packages::owners(root, &db, path).map_err(|e| e.to_string())?;
        if a.json {
            print_json(&packages::owners_json(path, &owned));
            finish(0);
        }
        finish(match owned {
            packages::Owners::Owned(list) => {
                for p in list {
                    println!("{}", packages::nevra(p));
                }
                0
            }
            packages::Owners::NotOwned => {
                println!("file {path} is not owned by any package");
                1
            }
            packages::Owners::Missing(e) => {
                eprintln!("error: file {path}: {}", packages::strerror(&e));
                1
            }
        });
    }
    match name {
        None if a.json => {
            let mut out = std::io::stdout().lock();
            let _ = packages::write_summaries_json_pretty(&db.packages, &mut out)
                .and_then(|()| out.write_all(b"\n"));
        }
        None => {
            // rpm -qa's lines, %{nvr}%{archsuffix}, written out in one go (control
            // characters escaped: a name is the container's to choose).
            let mut text = String::with_capacity(db.packages.len() * 40);
            for p in &db.packages {
                text.push_str(&printable(&packages::nevra(p)));
                text.push('\n');
            }
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
        Some(n) => {
            let found = packages::by_name(&db, n).map_err(|e| e.to_string())?;
            let list: Vec<_> = found.into_iter().map(packages::detail).collect();
            if a.json {
                print_json(&list);
            } else {
                for p in &list {
                    print_package(p);
                }
            }
        }
    }
    finish(0)
}

/// Ends the command now with `code`, its answer written: stdout and stderr flushed, then
/// `_exit`. What it read (every header of a database, thousands of file entries) is not
/// freed piece by piece, nor the allocator's memory handed back page by page, only for the
/// process to end: that took 1.5 to 2 ms of a 25 ms `rpms --verify` (strace).
pub fn finish(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    crate::sys::exit_now(code)
}

/// Where `sidecar rpms` reads: a database directory alone, or a root (a container's, or
/// `--root DIR`) with its name for messages.
enum Source<'a> {
    DbPath(&'a String),
    Root(crate::rootfs::Root, String),
}

/// `rpm -qi`-style text for one package.
fn print_package(p: &serde_json::Value) {
    let s = |k: &str| match &p[k] {
        serde_json::Value::Null => "(none)".to_string(),
        serde_json::Value::String(s) => printable(s).into_owned(),
        v => v.to_string(),
    };
    for (label, key) in [
        ("Name", "name"),
        ("Epoch", "epoch"),
        ("Version", "version"),
        ("Release", "release"),
        ("Architecture", "arch"),
        ("Install Date", "installdate"),
        ("Size", "size"),
        ("License", "license"),
        ("Vendor", "vendor"),
        ("Build Date", "buildtime"),
        ("Source RPM", "sourcerpm"),
        ("URL", "url"),
        ("Summary", "summary"),
    ] {
        println!("{label:<13}: {}", s(key));
    }
    // A description's own line breaks are kept; other control characters are not.
    let description = match &p["description"] {
        serde_json::Value::String(d) => d
            .split('\n')
            .map(|l| printable(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "(none)".to_string(),
    };
    println!("Description  :\n{description}");
    for key in ["requires", "provides", "conflicts", "obsoletes"] {
        let list = p[key].as_array().cloned().unwrap_or_default();
        if !list.is_empty() {
            println!("{}:", key[..1].to_uppercase() + &key[1..]);
            for d in list {
                println!("  {}", printable(d["text"].as_str().unwrap_or("")));
            }
        }
    }
    let files = p["files"].as_array().cloned().unwrap_or_default();
    println!("Files ({}):", files.len());
    for f in files {
        println!("  {}", printable(f.as_str().unwrap_or("")));
    }
    println!();
}

/// list a container's sockets, like ss -tuanp
#[derive(FromArgs)]
#[argh(subcommand, name = "sockets")]
pub struct Sockets {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// print the API's JSON
    #[argh(switch)]
    pub json: bool,
}

pub fn sockets(a: Sockets) -> CliResult {
    let (all, i) = find(&a.container)?;
    let list = crate::sockets::list(&all[i])
        .map_err(|e| format!("cannot read the sockets of {}: {e}", all[i].id))?;
    if a.json {
        print_json(&list);
        return Ok(0);
    }
    let rows = list
        .iter()
        .map(|s| {
            let owners: Vec<String> = s
                .processes
                .iter()
                .map(|o| format!("{}/{}", o.pid, o.comm))
                .collect();
            vec![
                s.protocol.to_string(),
                s.kind.unwrap_or("").to_string(),
                s.state.to_string(),
                s.local.as_deref().map_or_else(|| "*".into(), visible),
                s.remote.as_deref().map_or_else(|| "*".into(), visible),
                owners.join(","),
            ]
        })
        .collect();
    table(
        &["PROTO", "TYPE", "STATE", "LOCAL", "PEER", "PROCESSES"],
        rows,
    );
    Ok(0)
}

/// A name for a table: control characters (a newline in a socket's path) as `\n`, `\u{1}`, so
/// that one entry stays one row. `--json` has the exact name.
fn visible(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// copy a file out of or into a container: cp <c>:<path> <local>, cp <local> <c>:<path>
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "cp",
    example = "sidecar cp web:/etc/app.conf ./app.conf\nsidecar cp ./app.conf web:/etc/\ngen-config | sidecar cp --expect-size 1234 - web:/etc/app.conf\nsidecar cp web:/var/backup/db.sql ./backup-22:34.sql",
    note = "<container>:<path> names a container's file only when a container of that name exists (or pid:N:<path>); a path starting with / or ./ is always local. - is stdin or stdout. The destination is replaced only by a complete copy: ^C, SIGTERM or an error leave it as it was. From stdin, the end of the stream is the end of the file: give --expect-size when a sender that dies must not replace the file. Exit status: 0, 128+N when stopped by signal N, 125 for any error."
)]
pub struct Cp {
    /// source: <container>:<path> (pid:N:<path>), a local file, or - for stdin
    #[argh(positional)]
    pub from: String,
    /// destination: <container>:<path> (pid:N:<path>), a local file or directory, or - for stdout
    #[argh(positional)]
    pub to: String,
    /// mode, octal (default: copies out keep the source's; copies in keep the replaced file's, else the local file's, else 0644)
    #[argh(option)]
    pub mode: Option<String>,
    /// owner uid of a file written into a container (default: the replaced file's, else 0)
    #[argh(option)]
    pub uid: Option<u32>,
    /// owner gid of a file written into a container (default: the replaced file's, else 0)
    #[argh(option)]
    pub gid: Option<u32>,
    /// create missing parent directories in the container
    #[argh(switch)]
    pub parents: bool,
    /// the source's length in bytes: a source that ends shorter (a sender that died) replaces nothing
    #[argh(option)]
    pub expect_size: Option<u64>,
}

/// Arguments that are not UTF-8 reach argh as a placeholder: a NUL (which no argument can
/// hold) and the argument's index. `main` keeps the real bytes here. So does `cp`'s `-`
/// (stdin or stdout), which argh would take for an option.
static RAW_ARGS: std::sync::OnceLock<Vec<std::ffi::OsString>> = std::sync::OnceLock::new();

/// Keeps the process's arguments as bytes and returns them as strings for argh, each one
/// that is not UTF-8 replaced by its placeholder (see `raw_arg`).
pub fn args_for_argh(raw: Vec<std::ffi::OsString>) -> Vec<String> {
    let cp = raw.get(1).is_some_and(|a| a == "cp");
    let strings = raw
        .iter()
        .enumerate()
        .map(|(i, a)| match a.to_str() {
            Some("-") if cp => format!("\0{i}"),
            Some(s) => s.to_string(),
            None => format!("\0{i}"),
        })
        .collect();
    let _ = RAW_ARGS.set(raw);
    strings
}

/// The argument that was not UTF-8, if `s` is a placeholder for it.
pub fn is_placeholder(s: &str) -> bool {
    s.starts_with('\0')
}

/// The bytes of an argument as given (a placeholder back to its real bytes).
fn raw_arg(s: &str) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    s.strip_prefix('\0')
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| RAW_ARGS.get()?.get(i))
        .map_or_else(|| s.as_bytes().to_vec(), |a| a.as_bytes().to_vec())
}

pub fn cp(a: Cp) -> CliResult {
    let mode = match &a.mode {
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|&m| m <= 0o7777)
                .ok_or_else(|| format!("--mode {m}: not an octal mode"))?,
        ),
        None => None,
    };
    let opts = crate::cp::Options {
        mode,
        uid: a.uid,
        gid: a.gid,
        parents: a.parents,
        expect_size: a.expect_size,
    };
    crate::cp::run(&raw_arg(&a.from), &raw_arg(&a.to), &opts)?;
    Ok(0)
}

/// run a program inside a container, like nsenter --all --root
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "exec",
    example = "sidecar exec 3f2a -- cat /etc/os-release\nsidecar exec pid:4242 --user nobody --env LANG=C -- sh -c 'id; ls /'\nsidecar exec -t --tools /toolkit 3f2a -- sh",
    note = "The program gets the environment of the container's init, runs as its user, joins its cgroups and is limited to its capabilities, as podman exec does. With --tools DIR, DIR (static programs in DIR/bin) appears at /.sidecar/toolkit, first on PATH, in a private copy of the container's mounts: the container is not changed. Exit status: the program's (128+N for signal N), 126 not executable, 127 not found, 125 an error of the sidecar."
)]
pub struct Exec {
    /// container: ID, unique prefix, hostname, pid:N or host
    #[argh(positional)]
    pub container: String,
    /// the program and its arguments (after --)
    #[argh(positional, greedy)]
    pub argv: Vec<String>,
    /// user: name, uid, name:group or uid:gid (default: the user of the container's init, as
    /// podman exec does; 0 or root for root)
    #[argh(option, short = 'u')]
    pub user: Option<String>,
    /// give the program a pseudo-terminal of its own (job control, vi, top), as podman exec
    /// -it does; the window size follows ours
    #[argh(switch, short = 't')]
    pub tty: bool,
    /// working directory in the container (default: the container process's)
    #[argh(option, short = 'w')]
    pub cwd: Option<String>,
    /// KEY=VALUE set on top of the container's environment (repeatable)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// namespaces to join, comma-separated: mnt,uts,ipc,net,pid,cgroup,user (default: every one that differs from ours)
    #[argh(option)]
    pub ns: Option<String>,
    /// seconds before the program is killed (default: none)
    #[argh(option)]
    pub timeout: Option<f64>,
    /// keep the sidecar's capabilities instead of the container's
    #[argh(switch)]
    pub privileged: bool,
    /// join through /proc/<pid>/ns/* one at a time (kernels before 5.8)
    #[argh(switch)]
    pub setns_files: bool,
    /// run with the toolkit DIR (static programs in DIR/bin, e.g. /toolkit in the :toolkit
    /// image) at /.sidecar/toolkit, first on PATH, in a private copy of the container's
    /// mounts: for containers without a shell; the container is not changed
    #[argh(option)]
    pub tools: Option<String>,
}

/// The container's ID and the process to enter. `pid:N` names the process itself, as
/// `nsenter -t N` does, and needs no walk of every process (a third of an exec's time).
fn exec_target(name: &str) -> Result<crate::enter::Request, String> {
    if let Some(pid) = name
        .strip_prefix("pid:")
        .and_then(|n| n.parse::<u32>().ok())
    {
        let stat = crate::procfs::stat(pid)
            .map_err(|_| format!("no process {pid}: give a PID as this machine sees it"))?;
        let id = crate::procfs::with_text(pid, "cgroup", containers::cgroup::container_id)
            .ok()
            .flatten()
            .map_or_else(|| name.to_string(), |c| c.id);
        return Ok(crate::enter::Request {
            container: id,
            pid,
            starttime: stat.starttime,
            ..Default::default()
        });
    }
    let (id, stand_ins) = containers::find_to_enter(name).map_err(|e| e.to_string())?;
    // With none left (a zombie init) the helper says the container has exited.
    let (pid, starttime) = stand_ins.first().copied().unwrap_or((0, 0));
    Ok(crate::enter::Request {
        container: id,
        pid,
        starttime,
        stand_ins,
        ..Default::default()
    })
}

pub fn exec(a: Exec) -> CliResult {
    if a.argv.is_empty() {
        return Err("no program given: sidecar exec <container> -- PROGRAM [ARGS...]".into());
    }
    let mut env = std::collections::BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--env {kv}: expected KEY=VALUE"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let req = crate::enter::Request {
        argv: a.argv,
        env,
        cwd: a.cwd,
        user: a.user,
        ns: a.ns.as_deref().map(crate::enter::ns_list),
        timeout_s: a.timeout,
        privileged: a.privileged,
        setns_files: a.setns_files,
        stdin: None,
        stdin_from_fd3: false,
        tools: a.tools,
        ..exec_target(&a.container)?
    };
    let stdio = if a.tty {
        crate::enter::Stdio::Pty
    } else {
        crate::enter::Stdio::Inherit
    };
    match crate::enter::run(&req, stdio) {
        Ok(done) => {
            for n in &done.notes {
                eprintln!("sidecar: note: {}", printable(n));
            }
            if done.timed_out {
                eprintln!(
                    "sidecar: timed out after {} s: the program was killed",
                    req.timeout_s.unwrap_or(0.0)
                );
            }
            Ok(done.status)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_for_tables() {
        assert_eq!(printable("sleep 100"), "sleep 100");
        assert_eq!(printable("é ü 中"), "é ü 中");
        // A forged row, a terminal title sequence, a C1 CSI, a bell, a backslash.
        assert_eq!(printable("x\n1  0  root  R  sh"), "x\\n1  0  root  R  sh");
        assert_eq!(printable("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(printable("tab\there\r"), "tab\\there\\r");
        assert_eq!(printable("c:\\x1b"), "c:\\\\x1b");
        assert_eq!(printable("del\x7f"), "del\\x7f");
    }
}
