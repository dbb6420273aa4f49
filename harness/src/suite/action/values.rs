//! The values a step's keys take, as a suite writes them: each with its
//! reading from TOML (a hand-written `Deserialize` where serde's derive
//! would word its errors badly: no `untagged`, no `flatten`) and, in
//! `schema`, the JSON Schema fragment an editor checks it with. An
//! action's or a modifier's definition names the value it takes; several
//! share one (a port or an address, a duration, a side).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::model::{Errno, Link, Outcome, PollEvents, Socket, TcpState};
use crate::suite::limits::{
    MAX_CONGESTION_NAME, MAX_DURATION, MAX_DURATION_WORDS, MAX_NOTSENT_LOWAT, MAX_SEND_BYTES,
    bytes_in_words,
};
use crate::suite::{How, SocketOptions, Until};

/// `poll = "in"` or `poll = ["in", "rdhup"]`; `revents = []` too.
pub(crate) struct RawPollEvents(pub(crate) PollEvents);

impl<'de> Deserialize<'de> for RawPollEvents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPollEvents;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a poll event (\"in\", \"out\", \"pri\", \"rdhup\", \"err\", \"hup\") or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPollEvents, E> {
                self.names(vec![v.to_string()])
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawPollEvents, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                self.names(names)
            }
        }
        impl V {
            fn names<E: de::Error>(self, names: Vec<String>) -> Result<RawPollEvents, E> {
                PollEvents::from_names(names.iter().map(String::as_str))
                    .map(RawPollEvents)
                    .map_err(|bad| {
                        let known: Vec<&str> = PollEvents::NAMES.iter().map(|(n, _)| *n).collect();
                        E::custom(format!(
                            "expected a poll event among {}, found \"{bad}\"",
                            known.join(", ")
                        ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// `true`, for actions that take no argument.
pub(crate) struct Flag;

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            true => Ok(Flag),
            false => Err(de::Error::custom(
                "expected `true` (or drop the step), found `false`",
            )),
        }
    }
}

/// A loopback address: a bare port means 127.0.0.1.
pub(crate) struct Endpoint(pub(crate) SocketAddr);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Endpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a port number or a loopback address like \"127.0.0.1:8080\" or \"[::1]:8080\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Endpoint, E> {
                match u16::try_from(v) {
                    Ok(port) if port > 0 => Ok(Endpoint(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        port,
                    ))),
                    _ => Err(E::custom(format!(
                        "expected a port from 1 to 65535, found {v}"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Endpoint, E> {
                let addr: SocketAddr = v.parse().map_err(|_| {
                    E::custom(format!(
                        "expected a port or an address like \"127.0.0.1:8080\", found \"{v}\""
                    ))
                })?;
                // The network rule: traffic stays on loopback inside the case's namespace.
                if !addr.ip().is_loopback() {
                    return Err(E::custom(format!(
                        "expected a loopback address (127.0.0.0/8 or ::1), found \"{v}\": hangup sends traffic only inside its own namespaces"
                    )));
                }
                // As for a bare port: 0 would listen on, or dial, whatever
                // port the kernel picks, which the other side cannot know.
                if addr.port() == 0 {
                    return Err(E::custom(format!(
                        "expected a port from 1 to 65535, found 0 in \"{v}\""
                    )));
                }
                Ok(Endpoint(addr))
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) enum RawPayload {
    Text(String),
    Size(usize),
}

impl<'de> Deserialize<'de> for RawPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawPayload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text to send, or a number of filler bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPayload, E> {
                let n = usize::try_from(v).ok().filter(|n| *n > 0).ok_or_else(|| {
                    E::custom(format!("expected a positive number of bytes, found {v}"))
                })?;
                if n > MAX_SEND_BYTES {
                    return Err(E::custom(format!(
                        "expected at most {} to send, found {v}",
                        bytes_in_words(MAX_SEND_BYTES)
                    )));
                }
                Ok(RawPayload::Size(n))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPayload, E> {
                Ok(RawPayload::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Until {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Until;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count to read, text to read up to, or a mark of an HTTP response (`{ chunks = 3 }`, `{ body = 1000 }`)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Until, E> {
                u64::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Until::Bytes)
                    .ok_or_else(|| E::custom(format!("expected a positive byte count, found {v}")))
            }
            // JSON's unsigned numbers (a report read back), as TOML's.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Until, E> {
                match v {
                    0 => Err(E::custom("expected a positive byte count, found 0")),
                    n => Ok(Until::Bytes(n)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Until, E> {
                if v.is_empty() {
                    return Err(E::custom(
                        "expected text to read up to, found an empty string",
                    ));
                }
                Ok(Until::Pattern(v.to_string()))
            }
            // `{ chunks = 3 }` or `{ body = 1000 }`: a mark of an HTTP
            // response's framing.
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Until, A::Error> {
                let expected = "expected `{ chunks = N }` (through the end of an HTTP response's Nth chunk) or `{ body = N }` (through its headers and N bytes of body)";
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(format!(
                        "{expected}, found an empty table"
                    )));
                };
                let n: u64 = map.next_value()?;
                let until = match key.as_str() {
                    "chunks" if n == 0 => {
                        return Err(de::Error::custom(
                            "expected `chunks` of at least 1 (the first chunk's end), found 0",
                        ));
                    }
                    "chunks" => Until::Chunks { chunks: n },
                    "body" => Until::Body { body: n },
                    other => return Err(de::Error::custom(format!("{expected}, found `{other}`"))),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom(format!(
                        "{expected}, found a table of more than one key"
                    )));
                }
                Ok(until)
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) struct HowValue(pub(crate) How);

impl<'de> Deserialize<'de> for HowValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "read" => Ok(HowValue(How::Read)),
            "write" => Ok(HowValue(How::Write)),
            "both" => Ok(HowValue(How::Both)),
            other => Err(de::Error::custom(format!(
                "expected \"read\", \"write\" or \"both\", found \"{other}\""
            ))),
        }
    }
}

/// A duration written like "200ms", "1.5s" or "2m".
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"200ms\", \"1.5s\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// "200ms", "1.5s", "1.5ms", "1s 500ms", "2m": humantime's grammar, which
/// takes a fraction on any unit (when it is a whole number of nanoseconds).
///
/// Spaces around the whole value are refused: humantime skips them around
/// a span ("1s ") but not around a bare "0" (" 0"), so refusing them is
/// the one rule that reads the same for every value.
pub(crate) fn parse_duration(v: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration like \"200ms\", \"1.5s\" or \"2m\"";
    if v.trim() != v {
        return Err(format!(
            "{EXPECTED} without spaces around it, found \"{v}\""
        ));
    }
    let duration =
        humantime::parse_duration(v).map_err(|_| format!("{EXPECTED}, found \"{v}\""))?;
    if duration > MAX_DURATION {
        return Err(format!(
            "expected a duration of at most \"{MAX_DURATION_WORDS}\", found \"{v}\""
        ));
    }
    Ok(duration)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOptions {
    linger: Option<LingerValue>,
    nodelay: Option<bool>,
    keepalive: Option<bool>,
    rcvbuf: Option<usize>,
    sndbuf: Option<usize>,
    user_timeout: Option<UserTimeoutValue>,
    notsent_lowat: Option<LowatValue>,
    congestion: Option<CongestionName>,
    nonblocking: Option<bool>,
}

impl RawOptions {
    pub(crate) fn into_options(self) -> SocketOptions {
        SocketOptions {
            linger: self.linger.map(|l| l.0),
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            rcvbuf: self.rcvbuf,
            sndbuf: self.sndbuf,
            user_timeout: self.user_timeout.map(|t| t.0),
            notsent_lowat: self.notsent_lowat.map(|l| l.0),
            congestion: self.congestion.map(|c| c.0),
            nonblocking: self.nonblocking,
        }
    }
}

/// How long sent data may go unacknowledged (`TCP_USER_TIMEOUT`), in
/// whole milliseconds: the kernel counts milliseconds, so "1.5ms" could
/// only be rounded to a timeout the suite did not ask for. "0s" hands the
/// kernel 0, its default.
pub(crate) struct UserTimeoutValue(Duration);

impl<'de> Deserialize<'de> for UserTimeoutValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = String::deserialize(d)?;
        let duration = parse_duration(&written).map_err(de::Error::custom)?;
        if duration.subsec_nanos() % 1_000_000 != 0 {
            return Err(de::Error::custom(format!(
                "expected whole milliseconds like \"500ms\" or \"2s\" (TCP_USER_TIMEOUT counts milliseconds), found \"{written}\""
            )));
        }
        Ok(UserTimeoutValue(duration))
    }
}

/// `TCP_NOTSENT_LOWAT` in bytes, at most what the kernel's `int` holds.
pub(crate) struct LowatValue(u32);

impl<'de> Deserialize<'de> for LowatValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_NOTSENT_LOWAT)
            .map(LowatValue)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "expected a byte count from 0 (the namespace's default) to {MAX_NOTSENT_LOWAT} (the kernel reads an int), found {n}"
                ))
            })
    }
}

/// A congestion control algorithm's name as the kernel is handed it:
/// ASCII letters, digits, `_` and `-` (the names of the kernel's modules,
/// `tcp_<name>`), at most [`MAX_CONGESTION_NAME`] of them. Whether the
/// kernel has it, and lets the side use it, is the kernel's answer.
pub(crate) struct CongestionName(String);

impl<'de> Deserialize<'de> for CongestionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let fits = (1..=MAX_CONGESTION_NAME).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !fits {
            return Err(de::Error::custom(format!(
                "expected a congestion control algorithm's name like \"reno\" or \"cubic\": 1 to {MAX_CONGESTION_NAME} ASCII letters, digits, `_` or `-` (the kernel reads 15 bytes at most), found \"{}\"",
                crate::model::Escaped(&name)
            )));
        }
        Ok(CongestionName(name))
    }
}

/// `"off"`, or how long a close may linger ("0s" for an abortive close), in
/// whole seconds: SO_LINGER's `l_linger` counts seconds, so "500ms" could
/// only be rounded to a linger the suite did not ask for.
pub(crate) struct LingerValue(Option<Duration>);

impl<'de> Deserialize<'de> for LingerValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(LingerValue(None));
        }
        match parse_duration(&s) {
            Ok(d) if d.subsec_nanos() == 0 => Ok(LingerValue(Some(d))),
            _ => Err(de::Error::custom(format!(
                "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"{s}\""
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStates {
    client: Option<StateName>,
    server: Option<StateName>,
    proxy_client: Option<StateName>,
    proxy_server: Option<StateName>,
}

impl RawStates {
    pub(crate) fn into_expected(self) -> Vec<(Socket, TcpState)> {
        [
            (Socket::Client, self.client),
            (Socket::ProxyClient, self.proxy_client),
            (Socket::ProxyServer, self.proxy_server),
            (Socket::Server, self.server),
        ]
        .into_iter()
        .filter_map(|(socket, state)| state.map(|s| (socket, s.0)))
        .collect()
    }
}

/// `accept_queue = { server = 80 }`: per listening side, a count.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueues {
    server: Option<u32>,
    proxy: Option<u32>,
}

impl RawQueues {
    pub(crate) fn into_expected(self) -> Vec<(crate::model::Side, u32)> {
        use crate::model::Side;
        [(Side::Server, self.server), (Side::Proxy, self.proxy)]
            .into_iter()
            .filter_map(|(side, n)| n.map(|n| (side, n)))
            .collect()
    }
}

/// `on = "client"` or `on = "server"`: which of the proxy's connections.
#[derive(Clone)]
pub(crate) struct OnValue(pub(crate) Link);

impl<'de> Deserialize<'de> for OnValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "client" => Ok(OnValue(Link::Accepted)),
            "server" => Ok(OnValue(Link::Connected)),
            other => Err(de::Error::custom(format!(
                "expected \"client\" (the connection the proxy accepted) or \"server\" (the one it made), found \"{other}\""
            ))),
        }
    }
}

pub(crate) struct StateName(TcpState);

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(StateName).map_err(de::Error::custom)
    }
}

/// `"EPIPE"`, `"ok"`, `"EOF"`, or a list of them (any one passes). The
/// names are checked where they are used (`expect`, `until`), not here,
/// so that an unknown name in a list is reported at the name rather than
/// at the whole list.
#[derive(Debug, Clone)]
pub enum RawExpect {
    /// One outcome.
    One(String),
    /// Any of these.
    Any(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"ok\", \"EOF\", an errno name like \"EPIPE\", or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawExpect, E> {
                Ok(RawExpect::One(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawExpect, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element()? {
                    out.push(name);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "expected at least one outcome, found an empty list",
                    ));
                }
                Ok(RawExpect::Any(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The outcomes `expect` names (written at `span`), each read by
/// [`parse_outcome`], each unknown name reported at itself through
/// `problem`.
pub(crate) fn outcomes(
    expect: RawExpect,
    span: std::ops::Range<usize>,
    mut problem: impl FnMut(std::ops::Range<usize>, String),
) -> Vec<Outcome> {
    let names = match expect {
        RawExpect::One(name) => vec![Spanned::new(span, name)],
        RawExpect::Any(names) => names,
    };
    let mut out = Vec::new();
    for name in names {
        match parse_outcome(name.get_ref()) {
            Ok(outcome) => out.push(outcome),
            Err(why) => problem(name.span(), why),
        }
    }
    out
}

pub(crate) fn parse_outcome(name: &str) -> Result<Outcome, String> {
    match name.to_ascii_lowercase().as_str() {
        "ok" => Ok(Outcome::Ok),
        "eof" => Ok(Outcome::Eof),
        _ => name.parse::<Errno>().map(Outcome::Errno).map_err(|e| {
            format!("expected \"ok\", \"EOF\" or an errno name, found \"{name}\" ({e})")
        }),
    }
}

/// A regular expression, compiled as it is read so a bad one is reported
/// at itself.
pub(crate) struct RawPattern(pub(crate) regex::Regex);

impl<'de> Deserialize<'de> for RawPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::suite::limits::pattern(&text)
            .map(RawPattern)
            .map_err(|e| {
                de::Error::custom(format!(
                    "expected a regular expression, found `{text}`: {e}"
                ))
            })
    }
}

/// The errnos an `errnos` invariant allows, `["EPIPE", "ECONNRESET"]`,
/// each name read by [`Errno`]'s own parser (a typo is reported at
/// itself) through `problem`; `None` when the value is not a list of
/// names. An empty list allows no errno but the routine ones.
pub(crate) fn errno_list(
    value: &Spanned<toml::de::DeValue<'_>>,
    mut problem: impl FnMut(std::ops::Range<usize>, String),
) -> Option<Vec<Errno>> {
    let Some(items) = value.get_ref().as_array() else {
        problem(
            value.span(),
            format!(
                "expected a list of errno names like [\"EPIPE\", \"ECONNRESET\"], found {}",
                value.get_ref().type_str()
            ),
        );
        return None;
    };
    let mut out: Vec<Errno> = Vec::new();
    for item in items {
        let Some(name) = item.get_ref().as_str() else {
            problem(
                item.span(),
                format!(
                    "expected an errno name like \"EPIPE\", found {}",
                    item.get_ref().type_str()
                ),
            );
            continue;
        };
        match name.parse::<Errno>() {
            Ok(errno) if out.contains(&errno) => {
                problem(
                    item.span(),
                    format!("expected each errno once, found {name} again"),
                );
            }
            Ok(errno) => out.push(errno),
            Err(e) => problem(
                item.span(),
                format!("expected an errno name, found \"{name}\" ({e})"),
            ),
        }
    }
    Some(out)
}

/// Traced calls by name, `"write"` (every call that sends) or `"sendmsg"`.
pub(crate) struct SyscallName(pub(crate) crate::model::syscall::Which);

impl<'de> Deserialize<'de> for SyscallName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        crate::model::syscall::Which::parse(&name)
            .map(SyscallName)
            .map_err(de::Error::custom)
    }
}

/// A side by name, `"client"`, `"proxy"` or `"server"`.
pub(crate) struct SideName(pub(crate) crate::model::Side);

impl<'de> Deserialize<'de> for SideName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::model::Side;
        let name = String::deserialize(d)?;
        Side::ALL
            .into_iter()
            .find(|side| side.name() == name)
            .map(SideName)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "expected a side, \"client\", \"proxy\" or \"server\", found \"{name}\""
                ))
            })
    }
}

/// TCP flags, `"SYN"`, `"FIN|ACK"` or `"RST|!ACK"`.
pub(crate) struct FlagsValue(pub(crate) crate::model::FlagMatch);

impl<'de> Deserialize<'de> for FlagsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::model::FlagMatch::parse(&text)
            .map(FlagsValue)
            .map_err(de::Error::custom)
    }
}

/// A signal by name, `"SIGTERM"`.
pub(crate) struct SignalName(pub(crate) nix::sys::signal::Signal);

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map(SignalName).map_err(|_| {
            de::Error::custom(format!(
                "expected a signal name like \"SIGTERM\" or \"SIGINT\", found \"{name}\""
            ))
        })
    }
}

/// The JSON Schema fragments of the values above, for the suite's schema
/// (`suite::schema`): each value's shape next to how it is read.
pub(crate) mod schema {
    use serde_json::{Value, json};

    use crate::model::{Errno, PollEvents, TcpState};

    /// A port on 127.0.0.1, or a loopback address with a port.
    pub(crate) fn endpoint() -> Value {
        json!({
            "type": ["integer", "string"],
            "minimum": 1,
            "maximum": 65535,
            "pattern": loopback_pattern(),
            "description": "A port (1 to 65535) on 127.0.0.1, or a loopback address with a port like \"127.0.0.1:8080\" or \"[::1]:8080\": traffic stays inside the case's namespace.",
        })
    }

    /// `true`, for an action without arguments.
    pub(crate) fn flag() -> Value {
        json!({
            "const": true,
            "description": "Written `true` (the bare string step means the same).",
        })
    }

    /// A side by name.
    pub(crate) fn side() -> Value {
        json!({ "enum": ["client", "proxy", "server"] })
    }

    /// A fault's name, or what `lift` or `taken` names.
    pub(crate) fn label() -> Value {
        json!({ "type": "string", "minLength": 1, "maxLength": 64 })
    }

    /// `ok`, `EOF`, an errno name, or a list of them.
    pub(crate) fn outcomes() -> Value {
        let mut outcomes = vec!["ok".to_string(), "EOF".to_string()];
        outcomes.extend(Errno::known_names().map(String::from));
        json!({
            "type": ["string", "array"],
            "pattern": words_pattern(&outcomes),
            "items": {
                "enum": outcomes,
                "description": "\"ok\", \"EOF\" or an errno name.",
            },
            "minItems": 1,
        })
    }

    /// A list of errno names, each once.
    pub(crate) fn errnos() -> Value {
        let names: Vec<&str> = Errno::known_names().collect();
        json!({
            "type": "array",
            "uniqueItems": true,
            "items": { "enum": names, "description": "An errno name." },
        })
    }

    /// The events a poll reported.
    pub(crate) fn poll_events_reported() -> Value {
        let names: Vec<&str> = PollEvents::NAMES.iter().map(|(n, _)| *n).collect();
        json!({ "type": "array", "items": { "enum": names, "description": "An event poll reported." } })
    }

    /// The events a poll asks for.
    pub(crate) fn poll_events_asked() -> Value {
        json!({
            "type": ["string", "array"],
            "pattern": words_pattern(PollEvents::REQUESTABLE),
            "items": { "enum": PollEvents::REQUESTABLE, "description": "An event to wait for." },
        })
    }

    /// How a fault rejects, or how a host is cut off.
    pub(crate) fn with() -> Value {
        let mut kinds: Vec<&str> = crate::model::Reject::ALL.iter().map(|(_, n)| *n).collect();
        kinds.extend(["link_down", "blackhole"]);
        json!({ "enum": kinds })
    }

    /// A duration, as `parse_duration` in `parse.rs` reads it.
    pub(crate) fn duration() -> Value {
        json!({
            "type": "string",
            "pattern": duration_pattern(),
            "description": "A duration like \"200ms\", \"1.5s\" or \"1m 30s\", with no spaces around it (units ns, us, ms, s, m or min, h, d, w, M for months, y, and their longer spellings).",
        })
    }

    /// A TCP state a `state` check names.
    pub(crate) fn state(description: &str) -> Value {
        let states: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        json!({
            "enum": states,
            "description": format!("{description} A TCP state by the name `ss` prints, or \"gone\": the kernel holds no socket for the connection any more."),
        })
    }

    /// The socket options of a `set` step.
    pub(crate) fn options() -> Value {
        json!({
            "type": "object",
            "properties": {
                "linger": {
                    "type": "string",
                    "pattern": linger_pattern(),
                    "description": "SO_LINGER: \"off\", or how long close may linger in whole seconds, which the kernel counts (\"0s\" makes close abortive: RST, no TIME_WAIT).",
                },
                "nodelay": {
                    "type": "boolean",
                    "description": "TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).",
                },
                "keepalive": {
                    "type": "boolean",
                    "description": "SO_KEEPALIVE: probe an idle connection so a vanished peer is noticed.",
                },
                "rcvbuf": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "SO_RCVBUF in bytes (the kernel doubles it); small buffers make transfers slow enough to observe.",
                },
                "sndbuf": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "SO_SNDBUF in bytes (the kernel doubles it).",
                },
                "user_timeout": {
                    "type": "string",
                    "pattern": user_timeout_pattern(),
                    "description": "TCP_USER_TIMEOUT in whole milliseconds: how long sent data may go unacknowledged before the kernel gives the connection up with ETIMEDOUT (a server's answer to a client that vanished mid-write), long before tcp_retries2 would; \"0s\" restores the kernel's default.",
                },
                "notsent_lowat": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": crate::suite::limits::MAX_NOTSENT_LOWAT,
                    "description": "TCP_NOTSENT_LOWAT in bytes: the socket is writable (poll's `out`, a blocking send goes on) only while less than this is queued unsent; 0 restores the namespace's tcp_notsent_lowat (no limit).",
                },
                "congestion": {
                    "type": "string",
                    "pattern": format!("^[A-Za-z0-9_-]{{1,{}}}$", crate::suite::limits::MAX_CONGESTION_NAME),
                    "description": "TCP_CONGESTION: the congestion control algorithm by name (\"reno\" is always built in); one the kernel does not have is its errno (ENOENT), one it does not let the side use EPERM.",
                },
                "nonblocking": {
                    "type": "boolean",
                    "description": "O_NONBLOCK on the side's socket (fcntl): its calls return EAGAIN (a connect EINPROGRESS) instead of waiting, whatever their timeout; on a listener, accept does, and the connections it accepts block.",
                },
            },
            "additionalProperties": false,
        })
    }

    /// A pattern matching exactly one of `words`: an `enum` for strings only.
    pub(crate) fn words_pattern(words: &[impl AsRef<str>]) -> String {
        let escaped: Vec<String> = words
            .iter()
            .map(|word| {
                word.as_ref()
                    .chars()
                    .flat_map(|c| {
                        let special = !(c.is_ascii_alphanumeric() || c == '_');
                        special.then_some('\\').into_iter().chain([c])
                    })
                    .collect()
            })
            .collect();
        format!("^(?:{})$", escaped.join("|"))
    }

    /// humantime's unit names by unit, each with the most fraction digits it
    /// converts exactly and without overflow (humantime rejects a fraction that
    /// is not a whole nanosecond, or a whole second from hours up).
    const UNITS: &[(&[&str], usize)] = &[
        (&["nanos", "nsec", "ns"], 0),
        (&["usec", "us", "µs"], 3),
        (&["millis", "msec", "ms"], 6),
        (&["seconds", "second", "secs", "sec", "s"], 9),
        // 60e9 ns a minute holds 10 digits exactly, but humantime multiplies
        // the fraction by it in a u64, which overflows past 8 digits.
        (&["minutes", "minute", "mins", "min", "m"], 8),
        (&["hours", "hour", "hrs", "hr", "h"], 2),
        (&["days", "day", "d"], 2),
        (&["weeks", "week", "wks", "wk", "w"], 2),
        // 2_630_016 s a month: no number of fraction digits is always whole.
        (&["months", "month", "M"], 0),
        (&["years", "year", "yrs", "yr", "y"], 2),
    ];

    /// What `parse_duration` in `parse.rs` accepts: `humantime::parse_duration`
    /// (spans like `1h 30m`, a fraction on any unit, `"0"` alone), with no
    /// whitespace around the value.
    pub(crate) fn duration_pattern() -> String {
        let span = |(names, digits): &(&[&str], usize)| {
            let fraction = match digits {
                0 => String::new(),
                n => format!("(?:\\.[0-9]{{1,{n}}})?"),
            };
            format!("[0-9]+{fraction}\\s*(?:{})", names.join("|"))
        };
        let any_span = UNITS.iter().map(span).collect::<Vec<_>>().join("|");
        format!("^(?:0|(?:{any_span})(?:\\s*(?:{any_span}))*)$")
    }

    /// What `LingerValue` in `parse.rs` accepts: "off", or a duration of whole
    /// seconds. The schema cannot add spans up, so it takes whole numbers of
    /// seconds and longer units only (and `"0"`).
    pub(crate) fn linger_pattern() -> String {
        let names: Vec<&str> = UNITS
            .iter()
            .skip_while(|(names, _)| !names.contains(&"s"))
            .flat_map(|(names, _)| names.iter().copied())
            .collect();
        let span = format!("[0-9]+\\s*(?:{})", names.join("|"));
        format!("^(?:off|0|{span}(?:\\s*{span})*)$")
    }

    /// What `UserTimeoutValue` accepts: a duration of whole milliseconds.
    /// The schema cannot add spans up, so it takes whole numbers of
    /// milliseconds and longer units, and a fraction of a second to the
    /// millisecond (`1.5s`, `2.125s`), and `"0"`.
    pub(crate) fn user_timeout_pattern() -> String {
        let span = |(names, _): &(&[&str], usize)| {
            let fraction = if names.contains(&"s") {
                "(?:\\.[0-9]{1,3})?"
            } else {
                ""
            };
            format!("[0-9]+{fraction}\\s*(?:{})", names.join("|"))
        };
        let spans: Vec<String> = UNITS
            .iter()
            .skip_while(|(names, _)| !names.contains(&"ms"))
            .map(span)
            .collect();
        let span = spans.join("|");
        format!("^(?:0|(?:{span})(?:\\s*(?:{span}))*)$")
    }

    /// A loopback socket address as `SocketAddr` parses it: 127.0.0.0/8, or
    /// `::1` (a zero group is 1-4 zeros, `::` anywhere), then a port from 1 to
    /// 65535 (leading zeros allowed, as `SocketAddr` allows them).
    pub(crate) fn loopback_pattern() -> String {
        let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
        let zero = "0{1,4}";
        let one = "0{0,3}1";
        let v6 = format!(
            "(?:(?:{zero}:){{7}}{one}|(?:{zero}(?::{zero}){{0,5}})?::(?:{zero}:){{0,5}}{one})"
        );
        let port = "0*(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";
        format!("^(?:127(?:\\.{octet}){{3}}|\\[{v6}\\]):{port}$")
    }
}
