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

impl Error {
    /// The API's status and stable code for this error.
    pub fn code(&self) -> (u16, &'static str) {
        match self {
            Error::Gone { .. } => (404, "container_not_found"),
            Error::Denied { .. } => (403, "permission_denied"),
            Error::Bad(_) => (400, "bad_request"),
            Error::NotFound { .. } => (422, "program_not_found"),
            Error::NotExecutable { .. } => (422, "not_executable"),
            Error::Io { .. } => (500, "io_error"),
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
