//! The errno names a socket call can end with, and what they mean.
//!
//! Suites name errnos the way the kernel headers and `strace` do (`EPIPE`,
//! `ECONNRESET`), and reports print both the name and its meaning, because
//! the people reading them know the same errors by other words: Java's
//! "Broken pipe" is EPIPE, "Connection reset by peer" is ECONNRESET, and a
//! `SocketTimeoutException: Read timed out` is EAGAIN from `SO_RCVTIMEO`.
//!
//! A suite may name only errnos a TCP socket call can plausibly return, so a
//! typo (`ECONRESET`) is caught when the suite is read instead of silently
//! never matching. What a call *returned* is kept whatever it is: an errno
//! outside that list is reported by its real name and number (`ENOEXEC`,
//! `errno 531`), never folded into another.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno as Raw;

/// An errno a socket call returned: any raw value, named where the C
/// library names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(i32);

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
    // TCP_CONGESTION's answer for an algorithm the kernel does not have.
    Raw::ENOENT,
];

impl Errno {
    /// The errno of a raw `errno` value, whatever it is.
    pub fn from_raw(code: i32) -> Errno {
        Errno(code)
    }

    /// The errno of an I/O error from a socket call, when it carries one.
    pub fn from_io(err: &std::io::Error) -> Option<Errno> {
        err.raw_os_error().map(Errno::from_raw)
    }

    /// Whether a suite may name this errno (see [`Errno::known_names`]).
    pub fn is_known(self) -> bool {
        KNOWN.contains(&Raw::from_raw(self.0))
    }

    /// The symbolic name, e.g. `EPIPE`; `EWOULDBLOCK` is `EAGAIN` on Linux.
    /// An errno the C library does not name reads `errno N`.
    pub fn name(self) -> String {
        match self.known_name() {
            Some(name) => name.to_string(),
            // nix's Debug output is exactly the C name, and
            // `UnknownErrno` for a value it does not know.
            None => match Raw::from_raw(self.0) {
                Raw::UnknownErrno => format!("errno {}", self.0),
                raw => format!("{raw:?}"),
            },
        }
    }

    fn known_name(self) -> Option<&'static str> {
        Some(match Raw::from_raw(self.0) {
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
            Raw::ENOENT => "ENOENT",
            _ => return None,
        })
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
        KNOWN
            .iter()
            .filter_map(|raw| Errno(*raw as i32).known_name())
    }

    /// Whether the errno is routine for a socket call rather than news of
    /// its connection: EAGAIN (a non-blocking call, or a timeout, with
    /// nothing to do yet) and EINTR (a signal came first). Event loops see
    /// them on every connection, so what hangup says of a program's failed
    /// calls (a sweep's evidence, an `errnos` check, `diff`) leaves them
    /// aside.
    pub fn is_routine(self) -> bool {
        matches!(Raw::from_raw(self.0), Raw::EAGAIN | Raw::EINTR)
    }

    /// The raw value, for comparing with what a syscall returned.
    pub fn raw(self) -> i32 {
        self.0
    }
}

/// `EPIPE (Broken pipe)`: name first, for grep; meaning for people.
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_name() {
            Some(_) => write!(f, "{} ({})", self.name(), self.meaning()),
            // Not a socket errno: the number too, to look it up.
            None => write!(f, "{} ({}, errno {})", self.name(), self.meaning(), self.0),
        }
    }
}

/// A name that is not an errno a socket call returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrno(pub String);

/// The name meant when it is near one (`ECONRESET`), else every name.
impl fmt::Display for UnknownErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match super::nearest::nearest(&self.0, Errno::known_names()) {
            Some(meant) => write!(f, "unknown errno `{}`: did you mean {meant}?", self.0),
            None => write!(
                f,
                "unknown errno `{}`, expected one of {}",
                self.0,
                Errno::known_names().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

impl std::error::Error for UnknownErrno {}

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
            .map(|raw| Errno(*raw as i32))
            .find(|errno| errno.known_name() == Some(wanted))
            .ok_or_else(|| UnknownErrno(s.to_string()))
    }
}

impl Errno {
    /// The errno [`Errno::name`] gave this name, whatever it is: a name the
    /// C library has (`ENOEXEC` too, which a suite may not name), or
    /// `errno 531`. What reads a report back uses it.
    pub fn from_name(name: &str) -> Option<Errno> {
        if let Some(number) = name.strip_prefix("errno ") {
            return number.parse().ok().map(Errno);
        }
        if let Ok(known) = name.parse::<Errno>() {
            return Some(known);
        }
        // nix's Debug output is the C name (see `name`); errno values are
        // small.
        (1..4096)
            .map(Errno)
            .find(|errno| errno.known_name().is_none() && errno.name() == name)
    }
}

/// Written as its [`Errno::name`].
impl serde::Serialize for Errno {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// Read from its [`Errno::name`] (see [`Errno::from_name`]).
impl<'de> serde::Deserialize<'de> for Errno {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Errno::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected an errno name like \"EPIPE\" or \"errno 531\", found \"{name}\""
            ))
        })
    }
}

impl schemars::JsonSchema for Errno {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Errno".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::units::string_schema(
            "An errno a syscall returned, by its C name (`EPIPE`, `ECONNRESET`), or `errno N` for a value the C library does not name.",
        )
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
            assert_eq!(name.parse::<Errno>().map(Errno::name), Ok(name.to_string()));
        }
    }

    #[test]
    fn a_typo_is_told_the_name_it_meant() {
        let err = "ECONRESET".parse::<Errno>().unwrap_err().to_string();
        assert_eq!(err, "unknown errno `ECONRESET`: did you mean ECONNRESET?");
    }

    #[test]
    fn a_name_near_none_lists_the_names_it_could_be() {
        let err = "EFOO".parse::<Errno>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown errno `EFOO`, expected one of EPIPE, ECONNRESET"),
            "{err}"
        );
    }

    #[test]
    fn raw_values_outside_the_socket_set_keep_their_real_name_and_number() {
        assert_eq!(Errno::from_raw(nix::libc::EPIPE).name(), "EPIPE");
        let enoexec = Errno::from_raw(nix::libc::ENOEXEC);
        assert!(!enoexec.is_known());
        assert_eq!(enoexec.name(), "ENOEXEC");
        assert_eq!(enoexec.to_string(), "ENOEXEC (Exec format error, errno 8)");
        assert_eq!(Errno::from_raw(4242).name(), "errno 4242");
        // A suite still may not name it: a typo is caught, not never matched.
        assert!("ENOEXEC".parse::<Errno>().is_err());
    }

    #[test]
    fn a_report_reads_back_every_name_it_writes() {
        for raw in [nix::libc::EPIPE, nix::libc::ENOEXEC, 4242] {
            let errno = Errno::from_raw(raw);
            let json = serde_json::to_string(&errno).expect("json");
            assert_eq!(serde_json::from_str::<Errno>(&json).expect("back"), errno);
        }
        assert!(serde_json::from_str::<Errno>("\"EPIPES\"").is_err());
    }
}
