//! `POST /<c>/exec`: the request body, and the run through the `enter` helper.
//!
//! The server is multi-threaded and so never calls `setns` itself: each exec starts this
//! binary again in its `enter` role (`/proc/self/exe enter`), writes the `enter::Request` as
//! JSON to its stdin and reads one JSON reply from its stdout. The helper enforces the
//! program's time-out; the server only guards against a helper that outlives it by far.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::ApiError;
use crate::containers::Container;
use crate::enter::{self, Finished};

/// The largest exec request body (its `stdin` included).
pub const MAX_BODY: u64 = 16 << 20;
/// The time-out when the request names none, and the longest one it may name.
pub const DEFAULT_TIMEOUT_S: f64 = 30.0;
pub const MAX_TIMEOUT_S: f64 = 24.0 * 3600.0;

/// The JSON body of `POST /<c>/exec`. Unknown fields are refused: a misspelt `timeout`
/// silently ignored would run a program with no limit the caller meant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// A name, a uid, or `uid:gid` (a number is accepted as a uid).
    #[serde(default)]
    pub user: Option<UserSpec>,
    #[serde(default)]
    pub timeout_s: Option<f64>,
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    /// A list, or a comma-separated string, of namespace kinds.
    #[serde(default)]
    pub ns: Option<NsSpec>,
    /// Run with the server's toolkit (`serve --toolkit`) at `/.sidecar/toolkit`, first on
    /// `PATH`: for containers without a shell.
    #[serde(default)]
    pub tools: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum UserSpec {
    Name(String),
    Id(u32),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NsSpec {
    List(Vec<String>),
    Text(String),
}

/// Reads and checks the body; 400 with what is wrong, 413 over `MAX_BODY`.
pub fn parse_body(body: &mut dyn Read, limit: u64) -> Result<Body, ApiError> {
    let limit = limit.min(MAX_BODY);
    let mut bytes = Vec::new();
    body.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::new(400, "bad_request", format!("cannot read the body: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("an exec request (its stdin included) may be at most {limit} bytes"),
        ));
    }
    let b: Body = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            400,
            "bad_request",
            format!("invalid exec request: {e} (expected {{\"argv\": [\"program\", \"arg\"...], \"env\", \"cwd\", \"user\", \"timeout_s\", \"stdin\", \"privileged\", \"ns\", \"tools\"}})"),
        )
    })?;
    if b.argv.first().is_none_or(|a| a.is_empty()) {
        return Err(ApiError::new(
            400,
            "bad_request",
            "argv must name a program: {\"argv\": [\"cat\", \"/etc/os-release\"]}",
        ));
    }
    if let Some(t) = b.timeout_s {
        if !(t > 0.0 && t <= MAX_TIMEOUT_S) {
            return Err(ApiError::new(
                400,
                "bad_request",
                format!("timeout_s must be above 0 and at most {MAX_TIMEOUT_S}"),
            ));
        }
    }
    let nul = |s: &str| s.contains('\0');
    if b.argv.iter().any(|a| nul(a))
        || b.env
            .iter()
            .any(|(k, v)| nul(k) || nul(v) || k.is_empty() || k.contains('='))
        || b.cwd.as_deref().is_some_and(nul)
    {
        return Err(ApiError::new(
            400,
            "bad_request",
            "argv, env and cwd may not hold NUL bytes, and env names may not be empty or hold '='",
        ));
    }
    Ok(b)
}

/// Builds the helper's request for container `c`; `toolkit` is the server's toolkit directory,
/// used when the body asks for tools.
pub fn request(c: &Container, b: Body, setns_files: bool, toolkit: &str) -> enter::Request {
    let (pid, starttime) = c.entry_point();
    enter::Request {
        container: c.id.clone(),
        pid,
        starttime,
        stand_ins: c.stand_ins.clone(),
        argv: b.argv,
        env: b.env,
        cwd: b.cwd,
        user: b.user.map(|u| match u {
            UserSpec::Name(s) => s,
            UserSpec::Id(n) => n.to_string(),
        }),
        ns: b.ns.map(|n| match n {
            NsSpec::List(l) => l,
            NsSpec::Text(t) => enter::ns_list(&t),
        }),
        timeout_s: Some(b.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S)),
        privileged: b.privileged,
        setns_files,
        stdin: b.stdin,
        stdin_from_fd3: false,
        native_job: None,
        tools: b.tools.then(|| toolkit.to_string()),
    }
}

/// Runs `req` through a fresh `sidecar enter` helper and returns its result. The helper is
/// killed when it is still running 15 s past the program's time-out.
pub fn run(req: &enter::Request) -> Result<Finished, ApiError> {
    let limit = Duration::from_secs_f64(req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S))
        + Duration::from_secs(15);
    run_helper(req, None, Some(limit))
}

/// Runs `req` through a fresh `sidecar enter` helper: `fd3` becomes the helper's descriptor
/// 3 (for `stdin_from_fd3`); `kill_after` bounds how long the helper may take (`None`: it
/// is waited for however long it takes, as package transactions are).
pub fn run_helper(
    req: &enter::Request,
    fd3: Option<std::os::fd::BorrowedFd<'_>>,
    kill_after: Option<Duration>,
) -> Result<Finished, ApiError> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::new(500, "internal", format!("exec helper: {what}: {e}"))
    };
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("enter")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(fd) = fd3 {
        crate::sys::give_fd_to_child(&mut cmd, fd, 3);
    }
    let mut child = crate::init::spawn(&mut cmd).map_err(|e| internal("cannot start", &e))?;
    let input = serde_json::to_vec(req).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        // The helper reads its whole request before anything else; a failure shows below.
        let _ = stdin.write_all(&input);
    }
    // The helper kills the program at its time-out; it may take a few seconds more to
    // collect what is left. Past that, it is stuck: kill it rather than hold a worker.
    let limit = kill_after.unwrap_or(Duration::from_secs(u32::MAX as u64));
    let deadline = Instant::now() + limit;
    let mut reply = Vec::new();
    let mut killed = false;
    if let Some(mut out) = child.stdout.take() {
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = child.kill();
                killed = true;
                break;
            }
            let ms = left.as_millis().min(1000) as i32;
            if !crate::sys::wait_readable(out.as_fd(), ms).unwrap_or(false) {
                continue;
            }
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(internal("cannot read its reply", &e)),
            }
        }
    }
    let status = crate::init::wait(&mut child);
    if killed {
        return Err(ApiError::new(
            504,
            "helper_timeout",
            format!(
                "the exec helper did not finish within {} s and was killed",
                limit.as_secs()
            ),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&reply).map_err(|_| {
        let how = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        internal("it ended without a reply", &how)
    })?;
    match serde_json::from_value::<enter::Reply>(v).map_err(|e| internal("bad reply", &e))? {
        enter::Reply::Ok(done) => Ok(done),
        enter::Reply::Error(f) => Err(f.into()),
    }
}
