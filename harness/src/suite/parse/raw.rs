//! The raw, serde-readable shapes of what a suite file holds, before
//! [`Reader`](super::Reader) checks them against the catalog. Each has a
//! hand-written `Deserialize` where serde's derive would word its errors
//! badly (no `untagged`, no `flatten`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use crate::model::{Errno, Link, Outcome, PollEvents, Socket, TcpState};
use crate::suite::action::{self, CATALOG};
use crate::suite::limits::{MAX_DURATION, MAX_DURATION_WORDS, MAX_SEND_BYTES, bytes_in_words};
use crate::suite::{How, SocketOptions, Tolerance, Until};

/// A step as written: one action key plus modifiers. A bare string
/// (`"close"`) is an action without arguments.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepTable {
    pub(super) listen: Option<Spanned<Endpoint>>,
    pub(super) accept: Option<Spanned<Flag>>,
    pub(super) connect: Option<Spanned<Endpoint>>,
    pub(super) send: Option<Spanned<RawPayload>>,
    pub(super) recv: Option<Spanned<Flag>>,
    pub(super) recv_until: Option<Spanned<Until>>,
    pub(super) shutdown: Option<Spanned<HowValue>>,
    pub(super) close: Option<Spanned<Flag>>,
    pub(super) abort: Option<Spanned<Flag>>,
    pub(super) set: Option<Spanned<RawOptions>>,
    pub(super) so_error: Option<Spanned<Flag>>,
    pub(super) poll: Option<Spanned<RawPollEvents>>,
    pub(super) sleep: Option<Spanned<DurationValue>>,
    pub(super) mark: Option<Spanned<String>>,
    pub(super) wait: Option<Spanned<String>>,
    /// Read as steps by `Reader::steps`; serde only takes note of it.
    #[serde(rename = "loop")]
    pub(super) loop_: Option<Spanned<de::IgnoredAny>>,
    pub(super) signal: Option<Spanned<SignalName>>,
    pub(super) released: Option<Spanned<Flag>>,
    pub(super) log: Option<Spanned<RawPattern>>,
    pub(super) syscall: Option<Spanned<SyscallName>>,
    pub(super) state: Option<Spanned<RawStates>>,
    pub(super) accept_queue: Option<Spanned<RawQueues>>,
    pub(super) drop: Option<Spanned<SideName>>,
    pub(super) reject: Option<Spanned<SideName>>,
    pub(super) delay: Option<Spanned<SideName>>,
    pub(super) by: Option<Spanned<DurationValue>>,
    pub(super) jitter: Option<Spanned<DurationValue>>,
    pub(super) lift: Option<Spanned<String>>,
    pub(super) taken: Option<Spanned<String>>,
    pub(super) sent: Option<Spanned<SideName>>,
    pub(super) first: Option<Spanned<SideName>>,
    pub(super) window: Option<Spanned<u16>>,
    pub(super) since: Option<Spanned<String>>,
    pub(super) to: Option<Spanned<SideName>>,
    pub(super) flags: Option<Spanned<FlagsValue>>,
    pub(super) data: Option<Spanned<bool>>,
    pub(super) probability: Option<Spanned<f64>>,
    pub(super) name: Option<Spanned<String>>,
    pub(super) with: Option<Spanned<String>>,
    pub(super) cut: Option<Spanned<SideName>>,
    pub(super) timeout: Option<Spanned<DurationValue>>,
    pub(super) within: Option<Spanned<DurationValue>>,
    pub(super) repeat: Option<Spanned<usize>>,
    pub(super) max: Option<Spanned<usize>>,
    pub(super) backlog: Option<Spanned<u32>>,
    pub(super) from: Option<Spanned<u16>>,
    pub(super) nonblocking: Option<Spanned<bool>>,
    pub(super) again: Option<Spanned<bool>>,
    pub(super) revents: Option<Spanned<RawPollEvents>>,
    pub(super) times: Option<Spanned<u32>>,
    pub(super) until: Option<Spanned<RawExpect>>,
    pub(super) matches: Option<Spanned<RawPattern>>,
    pub(super) count: Option<Spanned<u32>>,
    pub(super) at_most: Option<Spanned<u32>>,
    pub(super) expect: Option<Spanned<RawExpect>>,
    pub(super) bytes: Option<Spanned<u64>>,
    pub(super) after: Option<Spanned<DurationValue>>,
    pub(super) longer_than: Option<Spanned<DurationValue>>,
    pub(super) on: Option<Spanned<OnValue>>,
}

impl RawStepTable {
    /// Every modifier key the step has, with where it is written.
    pub(super) fn modifiers_present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut out = Vec::new();
        macro_rules! present {
            ($($field:ident => $name:literal),*) => {
                $(if let Some(v) = &self.$field {
                    out.push(($name, v.span()));
                })*
            };
        }
        present!(
            timeout => "timeout",
            within => "within",
            repeat => "repeat",
            max => "max",
            backlog => "backlog",
            from => "from",
            nonblocking => "nonblocking",
            again => "again",
            revents => "revents",
            times => "times",
            until => "until",
            matches => "matches",
            count => "count",
            at_most => "at_most",
            on => "on",
            expect => "expect",
            bytes => "bytes",
            after => "after",
            longer_than => "longer_than",
            to => "to",
            window => "window",
            since => "since",
            flags => "flags",
            data => "data",
            probability => "probability",
            by => "by",
            jitter => "jitter",
            name => "name",
            with => "with"
        );
        out
    }

    /// Takes every key `part` has (the parts of a step have one key each).
    pub(super) fn merge(&mut self, part: RawStepTable) {
        macro_rules! merge {
            ($($field:ident),*) => {
                // No `..`: a new field that is not merged does not compile.
                let RawStepTable { $($field),* } = part;
                $(if $field.is_some() {
                    self.$field = $field;
                })*
            };
        }
        merge!(
            listen,
            accept,
            connect,
            send,
            recv,
            recv_until,
            shutdown,
            close,
            abort,
            set,
            so_error,
            poll,
            sleep,
            mark,
            wait,
            loop_,
            signal,
            released,
            log,
            syscall,
            state,
            accept_queue,
            drop,
            reject,
            delay,
            by,
            jitter,
            lift,
            cut,
            taken,
            sent,
            first,
            window,
            since,
            to,
            flags,
            data,
            probability,
            name,
            with,
            timeout,
            within,
            repeat,
            max,
            backlog,
            from,
            nonblocking,
            again,
            revents,
            times,
            until,
            matches,
            count,
            at_most,
            expect,
            bytes,
            after,
            longer_than,
            on
        );
    }
}

/// Accepts `"close"` as well as `{ close = true }`.
struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = RawStepTable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a step: a table like `{{ connect = 8080 }}`, or the name of an action without arguments ({})",
            CATALOG
                .iter()
                .filter(|d| d.bare)
                .map(|d| format!("\"{}\"", d.keyword))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // An empty span: `Reader::step` reports against the whole step.
        let flag = || Some(Spanned::new(0..0, Flag));
        let mut step = RawStepTable::default();
        match action::definition(v).filter(|def| def.bare) {
            Some(def) => match def.keyword {
                "accept" => step.accept = flag(),
                "recv" => step.recv = flag(),
                "close" => step.close = flag(),
                "abort" => step.abort = flag(),
                "so_error" => step.so_error = flag(),
                other => unreachable!("bare action `{other}` has no flag field"),
            },
            None => {
                return Err(E::custom(format!(
                    "expected {} as a bare step, found \"{v}\"{}",
                    bare_actions_in_words(),
                    if action::definition(v).is_some() {
                        " (it takes an argument: write it as a table)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(step)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        RawStepTable::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// `"accept", "recv", "close", "abort" or "so_error"`: the bare actions.
fn bare_actions_in_words() -> String {
    let names: Vec<String> = CATALOG
        .iter()
        .filter(|d| d.bare)
        .map(|d| format!("\"{}\"", d.keyword))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// `poll = "in"` or `poll = ["in", "rdhup"]`; `revents = []` too.
pub(super) struct RawPollEvents(pub(super) PollEvents);

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

/// A step, deserialized through [`StepVisitor`] so a bare string works too.
pub(super) struct RawStep(pub(super) RawStepTable);

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StepVisitor).map(RawStep)
    }
}

/// `true`, for actions that take no argument.
pub(super) struct Flag;

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
pub(super) struct Endpoint(pub(super) SocketAddr);

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

pub(super) enum RawPayload {
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
        impl Visitor<'_> for V {
            type Value = Until;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count to read, or text to read up to")
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
        }
        d.deserialize_any(V)
    }
}

pub(super) struct HowValue(pub(super) How);

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
pub(super) struct DurationValue(pub(super) Duration);

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
pub(super) fn parse_duration(v: &str) -> Result<Duration, String> {
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

pub(super) struct SysctlValue(pub(super) String);

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SysctlValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sysctl value: a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTolerance {
    floor: Option<DurationValue>,
    percent: Option<u32>,
}

impl RawTolerance {
    pub(super) fn apply(self, base: Tolerance) -> Tolerance {
        Tolerance {
            floor: self.floor.map_or(base.floor, |f| f.0),
            percent: self.percent.unwrap_or(base.percent),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOptions {
    linger: Option<LingerValue>,
    nodelay: Option<bool>,
    keepalive: Option<bool>,
    rcvbuf: Option<usize>,
    sndbuf: Option<usize>,
}

impl RawOptions {
    pub(super) fn into_options(self) -> SocketOptions {
        SocketOptions {
            linger: self.linger.map(|l| l.0),
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            rcvbuf: self.rcvbuf,
            sndbuf: self.sndbuf,
        }
    }
}

/// `"off"`, or how long a close may linger ("0s" for an abortive close), in
/// whole seconds: SO_LINGER's `l_linger` counts seconds, so "500ms" could
/// only be rounded to a linger the suite did not ask for.
pub(super) struct LingerValue(Option<Duration>);

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
pub(super) struct RawStates {
    client: Option<StateName>,
    server: Option<StateName>,
    proxy_client: Option<StateName>,
    proxy_server: Option<StateName>,
}

impl RawStates {
    pub(super) fn into_expected(self) -> Vec<(Socket, TcpState)> {
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
pub(super) struct RawQueues {
    server: Option<u32>,
    proxy: Option<u32>,
}

impl RawQueues {
    pub(super) fn into_expected(self) -> Vec<(crate::model::Side, u32)> {
        use crate::model::Side;
        [(Side::Server, self.server), (Side::Proxy, self.proxy)]
            .into_iter()
            .filter_map(|(side, n)| n.map(|n| (side, n)))
            .collect()
    }
}

/// `on = "client"` or `on = "server"`: which of the proxy's connections.
#[derive(Clone)]
pub(super) struct OnValue(pub(super) Link);

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

pub(super) struct StateName(TcpState);

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(StateName).map_err(de::Error::custom)
    }
}

/// `"EPIPE"`, `"ok"`, `"EOF"`, or a list of them (any one passes). The
/// names are checked by [`Reader::outcomes`], not here, so that an unknown
/// name in a list is reported at the name rather than at the whole list.
#[derive(Clone)]
pub(super) enum RawExpect {
    One(String),
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

pub(super) fn parse_outcome(name: &str) -> Result<Outcome, String> {
    match name.to_ascii_lowercase().as_str() {
        "ok" => Ok(Outcome::Ok),
        "eof" => Ok(Outcome::Eof),
        _ => name.parse::<Errno>().map(Outcome::Errno).map_err(|e| {
            format!("expected \"ok\", \"EOF\" or an errno name, found \"{name}\" ({e})")
        }),
    }
}

/// A `[program]` table as written; [`Reader::program`](super::Reader)
/// checks what serde cannot.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgram {
    pub(super) run: Vec<String>,
    pub(super) role: Option<String>,
    pub(super) port: u16,
    pub(super) ready: Option<String>,
    pub(super) within: Option<DurationValue>,
    pub(super) stop: Option<String>,
    pub(super) grace: Option<DurationValue>,
    #[serde(default)]
    pub(super) env: std::collections::BTreeMap<String, String>,
    pub(super) cwd: Option<String>,
    #[serde(default)]
    pub(super) requires: Vec<String>,
    pub(super) install: Option<String>,
    pub(super) scope: Option<String>,
    #[serde(default)]
    pub(super) compare: Vec<RawVersion>,
}

/// One entry of `compare` in a `[program]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVersion {
    pub(super) name: String,
    pub(super) run: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: std::collections::BTreeMap<String, String>,
}

/// A regular expression, compiled as it is read so a bad one is reported
/// at itself.
pub(super) struct RawPattern(pub(super) regex::Regex);

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

/// Traced calls by name, `"write"` (every call that sends) or `"sendmsg"`.
pub(super) struct SyscallName(pub(super) crate::model::syscall::Which);

impl<'de> Deserialize<'de> for SyscallName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        crate::model::syscall::Which::parse(&name)
            .map(SyscallName)
            .map_err(de::Error::custom)
    }
}

/// A side by name, `"client"`, `"proxy"` or `"server"`.
pub(super) struct SideName(pub(super) crate::model::Side);

impl<'de> Deserialize<'de> for SideName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::model::Side;
        let name = String::deserialize(d)?;
        [Side::Client, Side::Proxy, Side::Server]
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

/// TCP flags, `"SYN"` or `"FIN|ACK"`.
pub(super) struct FlagsValue(pub(super) crate::model::TcpFlags);

impl<'de> Deserialize<'de> for FlagsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::model::TcpFlags::parse(&text)
            .map(FlagsValue)
            .map_err(de::Error::custom)
    }
}

/// A signal by name, `"SIGTERM"`.
pub(super) struct SignalName(pub(super) nix::sys::signal::Signal);

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
