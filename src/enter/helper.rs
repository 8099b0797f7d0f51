//! The API's helper role (`sidecar enter`): the server re-executes this binary with a
//! `Request` as JSON on stdin and reads one JSON reply on stdout.
//!
//! Invariant: the helper is single-threaded and dies with the server (PDEATHSIG).

use std::io::{self, Read, Write};

use super::error::{Failure, Kind, Reply};
use super::{run, Request, Stdio};
use crate::sys;

/// The API's helper (`sidecar enter`, run by the server): a `Request` as JSON on stdin, a
/// `Reply` as JSON on stdout (`{"ok": Finished}` or `{"error": {"kind", "message"}}`).
pub fn helper_main() -> i32 {
    // If the server dies, so do we (the program, in its own group, is left to the container).
    let _ = sys::die_with_parent(libc::SIGKILL);
    let mut input = Vec::new();
    if io::IsTerminal::is_terminal(&io::stdin()) {
        eprintln!("sidecar enter is the server's internal helper: use `sidecar exec`");
        return 125;
    }
    let bad = |message: String| {
        Reply::Error(Failure {
            kind: Kind::Bad,
            message,
        })
    };
    let reply = match io::stdin().read_to_end(&mut input) {
        Err(e) => bad(format!("cannot read the request: {e}")),
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Err(e) => bad(format!("invalid request: {e}")),
            Ok(req) => match run(&req, Stdio::Capture) {
                Ok(done) => Reply::Ok(done),
                Err(e) => Reply::Error(e.failure()),
            },
        },
    };
    let mut out = io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &reply);
    let _ = out.flush();
    0
}
