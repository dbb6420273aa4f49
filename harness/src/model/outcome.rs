//! How a call ended: the outcome a suite expects and a step reports.

use std::fmt;
use std::io;

use super::Errno;

/// How a socket call ended. Reports write it as a suite's `expect` does:
/// `"ok"`, `"EOF"`, or the errno's name (`"EPIPE"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Outcome {
    /// The word a suite writes for it in `expect`: `ok`, `EOF`, `EPIPE`.
    pub fn word(self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Eof => "EOF".into(),
            Outcome::Errno(errno) => errno.name(),
        }
    }
}

impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.word())
    }
}

impl<'de> serde::Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = <String as serde::Deserialize>::deserialize(deserializer)?;
        match word.as_str() {
            "ok" => Ok(Outcome::Ok),
            "EOF" => Ok(Outcome::Eof),
            name => Errno::from_name(name).map(Outcome::Errno).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected \"ok\", \"EOF\" or an errno name, found \"{word}\""
                ))
            }),
        }
    }
}

impl schemars::JsonSchema for Outcome {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Outcome".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::units::string_schema(
            "How a call ended, as a suite's `expect` writes it: `ok`, `EOF` (a read returned 0: the peer's FIN), or the errno's name (`EPIPE`; `errno N` for a value the C library does not name).",
        )
    }
}

/// How one call ended and how many bytes it moved.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct CallResult {
    /// Ok, EOF, or the errno.
    pub outcome: Outcome,
    /// Bytes written or read by this call (for `recv_until`, in total).
    pub bytes: u64,
    /// For `poll`: the events the kernel reported ready (none when it
    /// timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<PollEvents>,
    /// For a `recv_until` that reads an HTTP response to a mark of its
    /// framing (a chunk's end, a body offset): why it stopped short of the
    /// mark although every read succeeded. The step then fails: hangup
    /// reads no further than the response goes, and invents no errno.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<Short>,
}

/// Why a read to a mark of an HTTP response's framing stopped short of it
/// with every read a success: what the bytes said, not the kernel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Short {
    /// The body's last chunk (size 0) came after this many chunks.
    BodyEnded {
        /// The chunks before it.
        chunks: u64,
    },
    /// What came where a chunk's size line (or the CRLF after its data)
    /// belonged was something else: the body is not chunked, or its
    /// framing is broken.
    NotAChunk {
        /// Where, in bytes from the response's start.
        at: u64,
    },
    /// No blank line ended the headers within this many bytes.
    NoHeaders {
        /// How far it read.
        read: u64,
    },
}

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Short::BodyEnded { chunks: 1 } => {
                f.write_str("the body ended (its last chunk, of size 0) after 1 chunk")
            }
            Short::BodyEnded { chunks } => write!(
                f,
                "the body ended (its last chunk, of size 0) after {chunks} chunks"
            ),
            Short::NotAChunk { at } => write!(
                f,
                "byte {at} of the response is not where a chunk's size line or its closing CRLF belongs: the body is not chunked, or its framing is broken"
            ),
            Short::NoHeaders { read } => {
                write!(
                    f,
                    "no blank line ended the headers in its first {read} bytes"
                )
            }
        }
    }
}

impl CallResult {
    pub(crate) fn ok(bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Ok,
            bytes,
            ready: None,
            short: None,
        }
    }

    pub(crate) fn eof(bytes: u64) -> CallResult {
        CallResult {
            outcome: Outcome::Eof,
            bytes,
            ready: None,
            short: None,
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
            ready: None,
            short: None,
        }
    }

    /// Whether the call was interrupted by a signal (EINTR): how the runner
    /// stops a side blocked in a call when the case ends.
    pub fn interrupted(&self) -> bool {
        matches!(self.outcome, Outcome::Errno(e) if e.raw() == nix::libc::EINTR)
    }
}

/// `poll(2)` events, by the names suites write (`in`, `out`, `rdhup`, ...):
/// what a `poll` step asks for and what the kernel said was ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollEvents(i16);

impl PollEvents {
    /// Each name and its `POLL*` bit, in the order reports list them.
    pub const NAMES: &[(&'static str, i16)] = &[
        ("in", nix::libc::POLLIN),
        ("pri", nix::libc::POLLPRI),
        ("out", nix::libc::POLLOUT),
        ("rdhup", nix::libc::POLLRDHUP),
        ("err", nix::libc::POLLERR),
        ("hup", nix::libc::POLLHUP),
        ("nval", nix::libc::POLLNVAL),
    ];

    /// The names a `poll` step may ask for; `err`, `hup` and `nval` are
    /// always reported and never asked for.
    pub const REQUESTABLE: &[&'static str] = &["in", "pri", "out", "rdhup"];

    /// The events of a raw `events`/`revents` value.
    pub fn from_raw(raw: i16) -> PollEvents {
        PollEvents(raw)
    }

    /// The raw value for `poll(2)`.
    pub fn raw(self) -> i16 {
        self.0
    }

    /// The events named, or the first name that is not one.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<PollEvents, String> {
        let mut raw = 0;
        for name in names {
            match Self::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, bit)) => raw |= bit,
                None => return Err(name.to_string()),
            }
        }
        Ok(PollEvents(raw))
    }

    /// The names of the events set, in [`PollEvents::NAMES`] order; bits
    /// without a name are shown by value.
    pub fn names(self) -> Vec<String> {
        let mut left = self.0;
        let mut out: Vec<String> = Self::NAMES
            .iter()
            .filter(|(_, bit)| self.0 & bit != 0)
            .map(|(name, bit)| {
                left &= !bit;
                name.to_string()
            })
            .collect();
        if left != 0 {
            out.push(format!("{left:#x}"));
        }
        out
    }
}

/// `in rdhup`, or `nothing` (a poll that timed out).
impl fmt::Display for PollEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&names.join(" "))
        }
    }
}

/// Written as the list of its [`PollEvents::names`].
impl serde::Serialize for PollEvents {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// Read from its names; a bit without one is written by value (`0x400`).
impl<'de> serde::Deserialize<'de> for PollEvents {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = <Vec<String> as serde::Deserialize>::deserialize(deserializer)?;
        let mut raw = 0;
        for name in &names {
            let bit = match PollEvents::NAMES.iter().find(|(n, _)| n == name) {
                Some((_, bit)) => *bit,
                None => name
                    .strip_prefix("0x")
                    .and_then(|hex| i16::from_str_radix(hex, 16).ok())
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "expected a poll event name, found \"{name}\""
                        ))
                    })?,
            };
            raw |= bit;
        }
        Ok(PollEvents(raw))
    }
}

impl schemars::JsonSchema for PollEvents {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PollEvents".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "items": { "type": "string" },
            "description": "poll(2) events by name: in, pri, out, rdhup, err, hup, nval (a bit without a name by value, `0x400`).",
        })
    }
}
