//! How a call ended: the outcome a suite expects and a step reports.

use std::fmt;
use std::io;

use super::Errno;

/// How a socket call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// It succeeded (for reads: with data).
    Ok,
    /// A read returned 0: the peer's FIN.
    Eof,
    /// It failed with this errno.
    Errno(Errno),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Eof => f.write_str("EOF (read returned 0)"),
            Outcome::Errno(errno) => errno.fmt(f),
        }
    }
}

/// How one call ended and how many bytes it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CallResult {
    /// Ok, EOF, or the errno.
    pub outcome: Outcome,
    /// Bytes written or read by this call (for `recv_until`, in total).
    pub bytes: u64,
}

impl CallResult {
    pub(crate) fn ok(bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Ok,
            bytes,
        }
    }

    pub(crate) fn eof(bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Eof,
            bytes,
        }
    }

    pub(crate) fn from_io(err: &io::Error, bytes: u64) -> CallResult {
        // Every error here comes from a syscall, so it carries its errno; an
        // error without one would be a bug in this module, and is said so by
        // its real (absent) number rather than a plausible-looking errno.
        let errno = Errno::from_raw(err.raw_os_error().unwrap_or(0));
        CallResult {
            outcome: Outcome::Errno(errno),
            bytes,
        }
    }

    /// Whether the call was interrupted by a signal (EINTR): how the runner
    /// stops a side blocked in a call when the case ends.
    pub fn interrupted(&self) -> bool {
        matches!(self.outcome, Outcome::Errno(e) if e.raw() == nix::libc::EINTR)
    }
}
