//! The HTTP+JSON API: authentication, routing, and the one place where domain errors become
//! HTTP statuses and stable `code` words (listed in the README).
//!
//! Invariant: every route but `GET /healthz` is authenticated before anything is looked up,
//! and every route that changes a container answers 403 `read_only` under `--read-only`
//! before doing anything.

pub mod exec;
pub mod http;
pub mod tls;

use serde_json::{json, Value};

use crate::auth::{Auth, Verdict};
use crate::containers::{self, Container, LookupError};
use crate::rootfs::Root;
use crate::rpmdb::Detail;
use crate::{files, packages, processes};
use http::{Request, Response};

/// A failed request: status, stable code, message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// For a 405: the methods the route takes (the `Allow` header).
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }
}

impl From<LookupError> for ApiError {
    fn from(e: LookupError) -> ApiError {
        match e {
            LookupError::NotFound(_) => ApiError::new(404, "container_not_found", e.to_string()),
            LookupError::Ambiguous(..) => ApiError::new(409, "ambiguous_container", e.to_string()),
        }
    }
}

/// A failure of the enter helper (exec, transactions): its kind is the status and code.
impl From<crate::enter::Failure> for ApiError {
    fn from(f: crate::enter::Failure) -> ApiError {
        use crate::enter::Kind;
        let (status, code) = match f.kind {
            Kind::Gone => (404, "container_not_found"),
            Kind::Denied => (403, "permission_denied"),
            Kind::Bad => (400, "bad_request"),
            Kind::NotFound => (422, "program_not_found"),
            Kind::NotExecutable => (422, "not_executable"),
            Kind::Io => (500, "io_error"),
        };
        ApiError::new(status, code, f.message)
    }
}

impl From<crate::enter::Error> for ApiError {
    fn from(e: crate::enter::Error) -> ApiError {
        e.failure().into()
    }
}

impl From<packages::Error> for ApiError {
    fn from(e: packages::Error) -> ApiError {
        let (status, code) = match &e {
            packages::Error::NoDatabase { .. } | packages::Error::BadDbPath { .. } => {
                (404, "no_rpm_database")
            }
            packages::Error::NotInstalled { .. } => (404, "package_not_found"),
            packages::Error::BadPath { .. } => (400, "bad_path"),
            packages::Error::Busy(_) => (503, "database_busy"),
            packages::Error::Db { .. } => (422, "database_unreadable"),
            packages::Error::Io(_) => (500, "io_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<files::Error> for ApiError {
    fn from(e: files::Error) -> ApiError {
        use files::Error as E;
        let (status, code) = match &e {
            E::NotFound(_) => (404, "file_not_found"),
            E::Refused(..) => (403, "path_refused"),
            E::BadPath(..) => (400, "bad_path"),
            E::NotRegular(..) => (422, "not_a_regular_file"),
            E::Upload(_, io) if io.kind() == std::io::ErrorKind::InvalidData => {
                (413, "payload_too_large")
            }
            E::Upload(..) => (400, "upload_failed"),
            E::Io(_, io) => match io.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) => (403, "permission_denied"),
                Some(libc::EROFS) => (409, "read_only_filesystem"),
                Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => {
                    (409, "conflict")
                }
                _ => (500, "io_error"),
            },
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<processes::Error> for ApiError {
    fn from(e: processes::Error) -> ApiError {
        let (status, code) = match &e {
            processes::Error::NotFound { .. } => (404, "process_not_found"),
            processes::Error::BadSignal(_) => (400, "bad_signal"),
            processes::Error::Denied { .. } => (403, "permission_denied"),
            processes::Error::Io { .. } => (500, "io_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// What the server was started with.
pub struct App {
    pub auth: Option<Auth>,
    pub read_only: bool,
    /// The largest body a route may store (`--max-upload`).
    pub max_upload: u64,
    /// Enter containers through `/proc/<pid>/ns/*` (`--setns-files`, for kernels before 5.8).
    pub setns_files: bool,
    /// The toolkit directory for exec requests with `"tools": true` (`--toolkit`).
    pub toolkit: String,
}

type Result<T> = std::result::Result<T, ApiError>;

impl App {
    /// Answers one request (the `http::Handler`).
    pub fn handle(&self, req: &mut Request) -> Response {
        if req.path == "/healthz" {
            return match req.method.as_str() {
                "GET" | "HEAD" => Response::json(200, &json!({"status": "ok"})),
                _ => error_response(method_not_allowed("GET")),
            };
        }
        let user = match &self.auth {
            None => None,
            Some(auth) => match auth.check(
                &req.method,
                &req.target,
                req.header("authorization"),
                req.peer
                    .map(crate::auth::Peer::Ip)
                    .or(req.peer_uid.map(crate::auth::Peer::Uid)),
            ) {
                Verdict::User(u) => Some(u),
                Verdict::Throttled => {
                    return error_response(ApiError::new(
                        429,
                        "too_many_attempts",
                        "too many failed logins from this address; wait a minute",
                    ))
                }
                Verdict::Challenge { stale, failed } => {
                    let msg = if failed {
                        "wrong user name or password"
                    } else {
                        "authentication required (curl --digest --user USER:PASSWORD)"
                    };
                    let mut r = error_response(ApiError::new(401, "unauthorized", msg));
                    for c in auth.challenges(stale) {
                        r.headers.push(("WWW-Authenticate".into(), c));
                    }
                    return r;
                }
            },
        };
        let mut resp = match self.route(req) {
            Ok(r) => r,
            Err(e) => error_response(e),
        };
        resp.user = user;
        resp
    }

    fn route(&self, req: &mut Request) -> Result<Response> {
        let path = req.path.clone();
        let mut segs: Vec<&str> = path.split('/').skip(1).collect();
        if segs.len() > 1 && segs.last() == Some(&"") {
            segs.pop(); // a trailing slash
        }
        let method = req.method.clone();
        match segs.as_slice() {
            [""] => {
                only(&method, "GET")?;
                let all = discover()?;
                Ok(Response::json(
                    200,
                    &serde_json::to_value(all).unwrap_or_default(),
                ))
            }
            ["version"] => {
                only(&method, "GET")?;
                Ok(Response::json(200, &version_json()))
            }
            [name, rest @ ..] => {
                let c = containers::find(name).map_err(|e| match e {
                    containers::FindError::Lookup(l) => ApiError::from(l),
                    containers::FindError::Proc(e) => {
                        ApiError::new(500, "io_error", format!("cannot list /proc: {e}"))
                    }
                })?;
                self.container_route(req, &method, &c, rest)
            }
            [] => Err(not_found(&path)),
        }
    }

    /// Routes under `/<container>/`.
    fn container_route(
        &self,
        req: &mut Request,
        method: &str,
        c: &Container,
        rest: &[&str],
    ) -> Result<Response> {
        match rest {
            [] => {
                only(method, "GET")?;
                let mut v = serde_json::to_value(c).unwrap_or_default();
                let mut resources = vec!["process", "exec", "files", "sockets"];
                if let Ok(r) = root(c) {
                    if packages::has_database(&r) {
                        resources.push("rpms");
                        v["rpm_database"] = packages::database_summary(&r, &c.id);
                    }
                }
                v["resources"] = json!(resources);
                Ok(Response::json(200, &v))
            }
            ["process" | "processes"] => {
                only(method, "GET")?;
                let listing = processes::list(c);
                let mut r = Response::json(200, &json!(listing.processes));
                add_notes(&mut r, &listing.notes);
                Ok(r)
            }
            ["process" | "processes", pid] => {
                let pid = parse_pid(pid, c)?;
                match method {
                    "GET" | "HEAD" => Ok(Response::json(200, &json!(processes::detail(c, pid)?))),
                    "DELETE" => {
                        self.writable()?;
                        let (num, name) =
                            processes::parse_signal(req.query("signal").unwrap_or("TERM"))?;
                        processes::signal(c, pid, num)?;
                        let mut r = Response::json(
                            200,
                            &json!({"status": "signalled", "pid": pid, "signal": name}),
                        );
                        r.change =
                            Some(json!({"container": c.id, "signalled": pid, "signal": name}));
                        Ok(r)
                    }
                    _ => Err(method_not_allowed("GET, DELETE")),
                }
            }
            ["rpms"] if method == "PUT" => self.transaction(req, c, None),
            ["rpms"] => {
                only(method, "GET")?;
                let root = root(c)?;
                if let Some(path) = req.query("file") {
                    // rpm -qf: the owners among the listing's packages.
                    let db = packages::read_container(&root, &c.id, Detail::Files)?;
                    let owned = packages::owners(&root, &db, path)?;
                    let v = packages::owners_json(path, &owned);
                    return Ok(with_skipped(Response::json(200, &v), &db, c));
                }
                let db = packages::read_container(&root, &c.id, Detail::Summary)?;
                let list: Vec<_> = db.packages.iter().map(packages::summary).collect();
                Ok(with_skipped(Response::json(200, &list), &db, c))
            }
            ["verify"] | ["rpms", _, "verify"] => {
                only(method, "GET")?;
                let name = match rest {
                    ["rpms", name, "verify"] => Some(*name),
                    _ => None,
                };
                let root = root(c)?;
                let (db, found) = packages::verify_root(&root, &c.id, name)?;
                let v = packages::verify_json(&found);
                Ok(with_skipped(Response::json(200, &v), &db, c))
            }
            ["rpms", name] if method == "DELETE" => self.transaction(req, c, Some(name)),
            ["rpms", name] => {
                if method != "GET" && method != "HEAD" {
                    return Err(method_not_allowed("GET, DELETE"));
                }
                let db = packages::read_container(&root(c)?, &c.id, Detail::Named(name))?;
                let list: Vec<Value> = packages::by_name(&db, name)?
                    .into_iter()
                    .map(packages::detail)
                    .collect();
                Ok(with_skipped(
                    Response::json(200, &Value::Array(list)),
                    &db,
                    c,
                ))
            }
            ["exec"] => {
                only(method, "POST")?;
                self.writable()?;
                let body = exec::parse_body(req.body, self.max_upload)?;
                let er = exec::request(c, body, self.setns_files, &self.toolkit);
                let done = exec::run(&er)?;
                let mut r = Response::json(200, &done);
                r.change = Some(json!({
                    "container": c.id, "exec": er.argv, "user": er.user,
                    "exit_code": done.exit_code, "signal": done.signal, "timed_out": done.timed_out,
                }));
                Ok(r)
            }
            ["files", ..] => {
                let path = files_path(&req.target)?;
                self.files(req, method, c, &path)
            }
            ["sockets"] => {
                only(method, "GET")?;
                let list = crate::sockets::list(c).map_err(|e| sockets_error(c, &e))?;
                Ok(Response::json(200, &json!(list)))
            }
            _ => Err(not_found(&req.path)),
        }
    }

    fn files(
        &self,
        req: &mut Request,
        method: &str,
        c: &Container,
        path: &[u8],
    ) -> Result<Response> {
        let shown = String::from_utf8_lossy(path).into_owned();
        let root = root(c)?;
        match method {
            "GET" | "HEAD" => match files::read(&root, path)? {
                files::Found::File(f, len) => Ok(Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                    body: http::Body::Stream(Box::new(f), len),
                    user: None,
                    change: None,
                }),
                files::Found::Dir(listing) => Ok(Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: http::Body::Writer(Box::new(move |out| listing.write_json(out))),
                    user: None,
                    change: None,
                }),
            },
            "PUT" => {
                self.writable()?;
                let opts = write_options(req)?;
                let written = files::write(&root, path, req.body, self.max_upload, &opts)?;
                let mut r = Response::json(200, &json!({"status": "written", "file": written}));
                r.change = Some(
                    json!({"container": c.id, "wrote": shown, "size": written.size, "in_place": written.in_place}),
                );
                Ok(r)
            }
            "DELETE" => {
                self.writable()?;
                files::remove(&root, path)?;
                let mut r = Response::json(200, &json!({"status": "removed", "path": shown}));
                r.change = Some(json!({"container": c.id, "removed": shown}));
                Ok(r)
            }
            _ => Err(method_not_allowed("GET, PUT, DELETE")),
        }
    }

    /// `PUT /<c>/rpms` (install or update the uploaded package) and `DELETE /<c>/rpms/<name>`
    /// (`erase`), through the container's own rpm; `?test=1` checks only, `?wait=0` answers
    /// 409 instead of queueing behind another transaction on the container.
    fn transaction(
        &self,
        req: &mut Request,
        c: &Container,
        erase: Option<&str>,
    ) -> Result<Response> {
        self.writable()?;
        let flag = |name: &str| matches!(req.query(name), Some("1" | "true" | "yes"));
        let test = flag("test");
        let wait = !matches!(req.query("wait"), Some("0" | "false" | "no"));
        let (out, verb) = transact(c, self.setns_files, wait, |ctx| match erase {
            Some(spec) => Ok((ctx.erase(spec, test)?, "erase")),
            None => {
                let upload = packages::upload::receive(req.body, self.max_upload)?;
                Ok((ctx.install(&upload, test)?, "install"))
            }
        })?;
        let mut r = Response::json(out.status, &out.reply);
        r.change = Some(json!({
            "container": c.id, verb: out.nevra, "method": out.reply["method"], "test": test,
            "status": out.reply["status"], "problems": out.reply.get("problems"),
        }));
        Ok(r)
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(ApiError::new(
                403,
                "read_only",
                "the sidecar runs with --read-only: it changes nothing",
            ));
        }
        Ok(())
    }
}

/// Runs `act` with the context of a package transaction in container `c`: rpm run through a
/// fresh enter helper (no time-out), the database read natively through the container's
/// root. The API's routes and the command line's `rpm-install`/`rpm-erase` both come here.
pub fn transact<R>(
    c: &Container,
    setns_files: bool,
    wait: bool,
    act: impl FnOnce(&packages::transaction::Context<ApiError>) -> Result<R>,
) -> Result<R> {
    let root = root(c)?;
    let run = |argv: &[&str], fd: Option<std::os::fd::BorrowedFd<'_>>| {
        exec::run_helper(
            &transaction_request(c, argv, fd.is_some(), setns_files),
            fd,
            None,
        )
    };
    let run_native = |job: &str, fd: Option<std::os::fd::BorrowedFd<'_>>| {
        // No program runs (argv only names the job in messages): the helper's child does.
        let mut req = transaction_request(c, &["native"], fd.is_some(), setns_files);
        req.native_job = Some(job.to_string());
        exec::run_helper(&req, fd, None)
    };
    let read_db = || packages::read_container(&root, &c.id, Detail::Full);
    let read_files = || packages::read_container(&root, &c.id, Detail::Files);
    let read_only_fs = |dir: &str| packages::read_only_fs(&root, dir);
    let rpm_on_path = || {
        let path = crate::procfs::environ(c.entry_point().0)
            .ok()
            .and_then(|env| {
                env.iter()
                    .find_map(|kv| kv.strip_prefix("PATH=").map(str::to_string))
            })
            .unwrap_or_else(|| crate::enter::DEFAULT_PATH.to_string());
        // A relative entry (the working directory) is left to the probe in the container.
        path.split(':').any(|d| {
            !d.starts_with('/')
                || root
                    .resolve(format!("{d}/rpm").as_bytes(), rustix::fs::OFlags::PATH)
                    .is_ok()
        })
    };
    act(&packages::transaction::Context {
        container: &c.id,
        run: &run,
        read_db: &read_db,
        read_only_fs: &read_only_fs,
        wait,
        run_native: &run_native,
        read_files: &read_files,
        rpm_on_path: &rpm_on_path,
    })
}

/// The helper's request for one rpm run of a transaction: as uid 0 with the container's
/// capability set (as `podman exec --user 0`), no time-out, messages in rpm's own (C locale)
/// words; with `stdin_from_fd3`, the uploaded package is the program's stdin.
pub fn transaction_request(
    c: &Container,
    argv: &[&str],
    stdin_from_fd3: bool,
    setns_files: bool,
) -> crate::enter::Request {
    let (pid, starttime) = c.entry_point();
    crate::enter::Request {
        container: c.id.clone(),
        pid,
        starttime,
        stand_ins: c.stand_ins.clone(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: [("LC_ALL".to_string(), "C".to_string())]
            .into_iter()
            .collect(),
        cwd: Some("/".into()),
        user: Some("0".into()),
        setns_files,
        stdin_from_fd3,
        ..Default::default()
    }
}

impl From<packages::transaction::TxError<ApiError>> for ApiError {
    fn from(e: packages::transaction::TxError<ApiError>) -> ApiError {
        use packages::transaction::TxError as T;
        match e {
            T::Run(e) => e,
            T::Db(e) => e.into(),
            T::NativeUnsupported(m) => ApiError::new(422, "native_unsupported", m),
            T::ReadOnly(m) => ApiError::new(409, "read_only_filesystem", m),
            T::InProgress(m) => ApiError::new(409, "transaction_in_progress", m),
            T::Ambiguous { spec, candidates } => ApiError::new(
                409,
                "ambiguous_package",
                format!(
                    "several installed packages answer to '{spec}': {}; nothing was erased: name one of them",
                    candidates.join(", ")
                ),
            ),
        }
    }
}

impl From<packages::upload::UploadError> for ApiError {
    fn from(e: packages::upload::UploadError) -> ApiError {
        match &e {
            packages::upload::UploadError::Bad(_) => {
                ApiError::new(422, "bad_package", e.to_string())
            }
            packages::upload::UploadError::Io(io)
                if io.kind() == std::io::ErrorKind::InvalidData =>
            {
                ApiError::new(413, "payload_too_large", e.to_string())
            }
            packages::upload::UploadError::Io(_) => {
                ApiError::new(400, "upload_failed", e.to_string())
            }
        }
    }
}

/// A package answer read from a database with damaged records: their count in a response
/// header (and so in the audit line), each one logged with its record number and why.
fn with_skipped(mut r: Response, db: &packages::Database, c: &Container) -> Response {
    if db.skipped.is_empty() {
        return r;
    }
    r.headers.push((
        packages::SKIPPED_HEADER.into(),
        db.skipped.len().to_string(),
    ));
    for s in &db.skipped {
        eprintln!(
            "{}",
            json!({"event": "rpmdb_record_skipped", "container": c.id, "dir": db.dir,
                   "instance": s.instance, "why": s.what})
        );
    }
    r
}

/// Why the sockets of a container could not be read, by errno, as files' errors are.
fn sockets_error(c: &Container, e: &std::io::Error) -> ApiError {
    let msg = |what: &str| format!("cannot read the sockets of {}: {e}{what}", c.id);
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => {
            ApiError::new(404, "container_not_found", msg(" (it has exited)"))
        }
        Some(libc::EACCES) | Some(libc::EPERM) => ApiError::new(
            403,
            "permission_denied",
            msg(": the sidecar needs CAP_SYS_PTRACE to read other processes' /proc/<pid>/net and fds"),
        ),
        _ => ApiError::new(500, "io_error", msg("")),
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(
        404,
        "not_found",
        format!("no such route: {path} (see the README's API table)"),
    )
}

fn discover() -> Result<Vec<Container>> {
    containers::discover()
        .map_err(|e| ApiError::new(500, "io_error", format!("cannot list /proc: {e}")))
}

/// The path of a files route as bytes: the request target after `/<container>/files`,
/// percent-decoded without requiring UTF-8 (`caf%E9.txt` names the file `caf\xe9.txt`), a
/// trailing `/` kept (it names a directory).
fn files_path(target: &str) -> Result<Vec<u8>> {
    let raw = target.split_once('?').map_or(target, |(p, _)| p);
    let bad = || ApiError::new(400, "bad_path", "the path holds a malformed %-escape");
    // `/<container>/files/<path>`: the first two components are ASCII words.
    let mut slashes = raw.match_indices('/').map(|(i, _)| i);
    let start = slashes.nth(2).unwrap_or(raw.len());
    let path = http::percent_decode_bytes(&raw[start..], false).ok_or_else(bad)?;
    Ok(if path.is_empty() { b"/".to_vec() } else { path })
}

/// `?mode=0644&uid=0&gid=0&parents=1` of a file upload. Without `mode`, `uid` or `gid`, a
/// replaced file keeps its own, and a new one is 0644, owned by root.
fn write_options(req: &Request) -> Result<files::WriteOptions> {
    let bad =
        |what: &str, v: &str| ApiError::new(400, "bad_request", format!("invalid {what} '{v}'"));
    let num = |name: &str, radix: u32| -> Result<Option<u32>> {
        match req.query(name) {
            None | Some("") => Ok(None),
            // (uid_t)-1 means "no change" to chown: refused rather than misreported.
            Some(v) => u32::from_str_radix(v, radix)
                .ok()
                .filter(|&n| n != u32::MAX)
                .map(Some)
                .ok_or_else(|| bad(name, v)),
        }
    };
    let mode = num("mode", 8)?;
    if mode.is_some_and(|m| m > 0o7777) {
        return Err(bad("mode", req.query("mode").unwrap_or("")));
    }
    Ok(files::WriteOptions {
        mode,
        new_mode: 0o644,
        uid: num("uid", 10)?,
        gid: num("gid", 10)?,
        parents: matches!(req.query("parents"), Some("1" | "true" | "yes")),
    })
}

/// The container's root, or why it cannot be opened.
pub(crate) fn root(c: &Container) -> Result<Root> {
    c.root().map_err(|e| match e.raw_os_error() {
        _ if e.kind() == std::io::ErrorKind::NotFound => ApiError::new(404, "container_not_found", e.to_string()),
        Some(libc::ENOENT) | Some(libc::ESRCH) => ApiError::new(404, "container_not_found", format!("container {} has exited", c.id)),
        Some(libc::EACCES) | Some(libc::EPERM) => ApiError::new(
            403,
            "permission_denied",
            format!("cannot open the root of container {} ({e}): the sidecar needs CAP_SYS_PTRACE and root over the container", c.id),
        ),
        _ => ApiError::new(500, "io_error", format!("/proc/{}/root: {e}", c.pid)),
    })
}

fn parse_pid(s: &str, c: &Container) -> Result<u32> {
    s.parse::<u32>().map_err(|_| {
        ApiError::new(
            404,
            "process_not_found",
            format!("'{s}' is not a PID of container {}", c.id),
        )
    })
}

fn only(method: &str, allowed: &'static str) -> Result<()> {
    if method == allowed || (method == "HEAD" && allowed == "GET") {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}

fn method_not_allowed(allowed: &'static str) -> ApiError {
    ApiError {
        allow: Some(allowed),
        ..ApiError::new(
            405,
            "method_not_allowed",
            format!("this route takes {allowed}"),
        )
    }
}

/// Notes about what a reply left out (a planted FIFO skipped), one `X-Sidecar-Note` header
/// each (documented in the README), printable ASCII only.
fn add_notes(r: &mut Response, notes: &[String]) {
    for n in notes {
        let clean: String = n
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(512)
            .collect();
        r.headers.push(("X-Sidecar-Note".into(), clean));
    }
}

pub fn error_response(e: ApiError) -> Response {
    let mut r = Response::error(e.status, e.code, &e.message);
    if let Some(allowed) = e.allow {
        r.headers.push(("Allow".into(), allowed.to_string()));
    }
    r
}

/// The build's version and commit (`GET /version`, `sidecar version --json`).
pub fn version_json() -> Value {
    json!({"version": env!("CARGO_PKG_VERSION"), "commit": env!("SIDECAR_COMMIT")})
}
