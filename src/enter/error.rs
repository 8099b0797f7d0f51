//! Why a program could not be run in a container: one enum, each variant carrying the step
//! or the program it failed on, with the API's status and code and the command line's exit
//! status for each.
//!
//! Invariant: EPERM and EACCES from a step become `Denied` naming the capability that step
//! takes, so that the operator knows what to add.

use std::fmt;
use std::io;

/// Why a program could not be run. Each variant maps to one API code (see `code`).
#[derive(Debug)]
pub enum Error {
    /// The target process is gone, or was replaced by another with its PID.
    Gone { container: String, what: String },
    /// The kernel refused a step; `needs` names the capability that step takes.
    Denied {
        step: &'static str,
        needs: &'static str,
        source: io::Error,
    },
    /// The request itself is wrong: unknown user, namespace, directory.
    Bad(String),
    /// The program is not in the container (exit status 127 on the command line).
    NotFound { program: String, searched: String },
    /// The program is there but cannot be executed (126).
    NotExecutable { program: String, source: io::Error },
    /// Any other failure, with the step it happened in.
    Io {
        step: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Gone { container, what } => write!(f, "container {container} {what}"),
            Error::Denied { step, needs, source } => write!(
                f,
                "not allowed to {step} ({source}): the sidecar needs {needs} (podman run --cap-add, or securityContext.capabilities in Kubernetes)"
            ),
            Error::Bad(m) => f.write_str(m),
            Error::NotFound { program, searched } => {
                write!(f, "{program}: not found in the container (PATH searched: {searched})")
            }
            Error::NotExecutable { program, source } => {
                write!(f, "{program}: cannot be executed in the container ({source})")
            }
            Error::Io { step, source } => write!(f, "cannot {step}: {source}"),
        }
    }
}

/// What kind of failure an `Error` is, as the helper reports it to the server (which maps
/// kinds to HTTP statuses and codes in `api`, the one place that does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Gone,
    Denied,
    Bad,
    NotFound,
    NotExecutable,
    Io,
}

/// A failure as it crosses from the helper to the server: its kind and the words for people.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

/// The helper's reply on stdout: `{"ok": Finished}` or `{"error": Failure}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(super::Finished),
    Error(Failure),
}

impl Error {
    /// The kind of this failure.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Gone { .. } => Kind::Gone,
            Error::Denied { .. } => Kind::Denied,
            Error::Bad(_) => Kind::Bad,
            Error::NotFound { .. } => Kind::NotFound,
            Error::NotExecutable { .. } => Kind::NotExecutable,
            Error::Io { .. } => Kind::Io,
        }
    }

    /// This failure as the helper reports it.
    pub fn failure(&self) -> Failure {
        Failure {
            kind: self.kind(),
            message: self.to_string(),
        }
    }

    /// The exit status the command line reports, as a shell would.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::NotFound { .. } => 127,
            Error::NotExecutable { .. } => 126,
            _ => 125,
        }
    }

    pub(super) fn io(step: &'static str, needs: &'static str) -> impl Fn(io::Error) -> Error {
        move |source| match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::Denied {
                step,
                needs,
                source,
            },
            _ => Error::Io { step, source },
        }
    }
}
