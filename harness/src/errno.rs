//! The errno names a socket call can end with, and what they mean.
//!
//! Suites name errnos the way the kernel headers and `strace` do (`EPIPE`,
//! `ECONNRESET`), and reports print both the name and its meaning, because
//! the people reading them know the same errors by other words: Java's
//! "Broken pipe" is EPIPE, "Connection reset by peer" is ECONNRESET, and a
//! `SocketTimeoutException: Read timed out` is EAGAIN from `SO_RCVTIMEO`.
//!
//! Only errnos a TCP socket call can plausibly return are named here, so a
//! typo in a suite (`ECONRESET`) is caught when the suite is read instead of
//! silently never matching.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno as Raw;

/// An errno a socket call returned, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(Raw);

/// The errnos a suite may name, in the order error messages list them.
const KNOWN: &[Raw] = &[
    Raw::EPIPE,
    Raw::ECONNRESET,
    Raw::EAGAIN,
    Raw::ETIMEDOUT,
    Raw::ECONNREFUSED,
    Raw::ECONNABORTED,
    Raw::EADDRINUSE,
    Raw::EADDRNOTAVAIL,
    Raw::EINPROGRESS,
    Raw::EALREADY,
    Raw::EISCONN,
    Raw::ENOTCONN,
    Raw::EHOSTUNREACH,
    Raw::ENETUNREACH,
    Raw::ENETDOWN,
    Raw::EINVAL,
    Raw::EBADF,
    Raw::EINTR,
    Raw::ENOBUFS,
    Raw::EMFILE,
    Raw::EPERM,
    Raw::EACCES,
];

impl Errno {
    /// The errno of a raw `errno` value, when it is one a suite can name.
    pub fn from_raw(code: i32) -> Option<Errno> {
        let raw = Raw::from_raw(code);
        KNOWN.contains(&raw).then_some(Errno(raw))
    }

    /// The errno of an I/O error from a socket call, when it carries one.
    pub fn from_io(err: &std::io::Error) -> Option<Errno> {
        err.raw_os_error().and_then(Errno::from_raw)
    }

    /// The symbolic name, e.g. `EPIPE`. `EWOULDBLOCK` is `EAGAIN` on Linux.
    pub fn name(self) -> &'static str {
        // nix's Debug output is exactly the C name.
        match self.0 {
            Raw::EPIPE => "EPIPE",
            Raw::ECONNRESET => "ECONNRESET",
            Raw::EAGAIN => "EAGAIN",
            Raw::ETIMEDOUT => "ETIMEDOUT",
            Raw::ECONNREFUSED => "ECONNREFUSED",
            Raw::ECONNABORTED => "ECONNABORTED",
            Raw::EADDRINUSE => "EADDRINUSE",
            Raw::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Raw::EINPROGRESS => "EINPROGRESS",
            Raw::EALREADY => "EALREADY",
            Raw::EISCONN => "EISCONN",
            Raw::ENOTCONN => "ENOTCONN",
            Raw::EHOSTUNREACH => "EHOSTUNREACH",
            Raw::ENETUNREACH => "ENETUNREACH",
            Raw::ENETDOWN => "ENETDOWN",
            Raw::EINVAL => "EINVAL",
            Raw::EBADF => "EBADF",
            Raw::EINTR => "EINTR",
            Raw::ENOBUFS => "ENOBUFS",
            Raw::EMFILE => "EMFILE",
            Raw::EPERM => "EPERM",
            Raw::EACCES => "EACCES",
            _ => "E?",
        }
    }

    /// What the errno means, as the C library's `strerror` says it
    /// ("Broken pipe", "Resource temporarily unavailable").
    pub fn meaning(self) -> String {
        let text = std::io::Error::from_raw_os_error(self.raw()).to_string();
        match text.rfind(" (os error") {
            Some(end) => text[..end].to_string(),
            None => text,
        }
    }

    /// The names a suite may use, for error messages.
    pub fn known_names() -> impl Iterator<Item = &'static str> {
        KNOWN.iter().map(|raw| Errno(*raw).name())
    }

    /// The raw value, for comparing with what a syscall returned.
    pub fn raw(self) -> i32 {
        self.0 as i32
    }
}

/// `EPIPE (Broken pipe)`: name first, for grep; meaning for people.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.meaning())
    }
}

/// A name that is not an errno a socket call returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown errno `{0}`, expected one of {names}", names = Errno::known_names().collect::<Vec<_>>().join(", "))]
pub struct UnknownErrno(pub String);

impl FromStr for Errno {
    type Err = UnknownErrno;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let wanted = if upper == "EWOULDBLOCK" {
            "EAGAIN"
        } else {
            upper.as_str()
        };
        KNOWN
            .iter()
            .map(|raw| Errno(*raw))
            .find(|errno| errno.name() == wanted)
            .ok_or_else(|| UnknownErrno(s.to_string()))
    }
}

impl serde::Serialize for Errno {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("EPIPE", "EPIPE (Broken pipe)")]
    #[case("econnreset", "ECONNRESET (Connection reset by peer)")]
    #[case("EWOULDBLOCK", "EAGAIN (Resource temporarily unavailable)")]
    fn names_parse_and_display_with_meaning(#[case] name: &str, #[case] shown: &str) {
        let errno: Errno = name.parse().expect("known errno");
        assert_eq!(errno.to_string(), shown);
    }

    #[test]
    fn every_known_errno_round_trips_by_name() {
        for name in Errno::known_names() {
            assert_ne!(name, "E?");
            assert_eq!(name.parse::<Errno>().map(Errno::name), Ok(name));
        }
    }

    #[test]
    fn a_typo_lists_the_names_it_could_be() {
        let err = "ECONRESET".parse::<Errno>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown errno `ECONRESET`, expected one of EPIPE, ECONNRESET"),
            "{err}"
        );
    }

    #[test]
    fn raw_values_outside_the_socket_set_are_not_named() {
        assert_eq!(
            Errno::from_raw(nix::libc::EPIPE).map(Errno::name),
            Some("EPIPE")
        );
        assert_eq!(Errno::from_raw(nix::libc::ENOENT), None);
    }
}
