//! What a step does, and the one definition of every action.
//!
//! A step's [`Action`] is one of three kinds, each executed by a different
//! part of the harness: a [`SocketCall`] is a syscall the side's peer makes
//! and whose result is judged; a [`Control`] paces or coordinates the
//! script (`sleep`, `mark`, `wait`, `loop`, a signal, faults); a [`Check`]
//! asks the kernel, the program or the capture what it holds.
//!
//! Each action is defined once, as ripgrep defines a flag once: an
//! [`ActionDef`] in `calls`, `control` or `checks` holds its keyword, how
//! it is written and what it does, which sides may take it, whether it
//! acts on a connection (so the proxy must say which with `on`), whether it
//! has a result to judge, the modifiers it takes with their defaults, the
//! JSON Schema of its value, how it is built from TOML, and how the
//! timeline names it. Each modifier is defined once in `modifiers`, each
//! kind of value once in [`values`]. The parser, `hangup check`'s messages,
//! the JSON Schema and the README's tables all read them ([`catalog`],
//! [`MODIFIERS`]), so a new action is one definition here (and its variant
//! below) plus its execution in the runner.

mod calls;
mod checks;
mod control;
mod def;
mod modifiers;
pub mod values;

pub use def::{
    ANY, ActionDef, Build, CONNECTING, Described, JUDGING, LISTENING, Modifiers, StepKind,
    StepReader, Uses,
};
pub use modifiers::{MODIFIERS, ModValue, ModifierDef, modifier};

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::Step;
use crate::model::syscall::Which;
use crate::model::{Errno, Escaped, Outcome, PollEvents, Side, Socket, TcpState};
use crate::model::{FlagMatch, Verdict};

/// What a side does in one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A socket call, made by the side's peer.
    Socket(SocketCall),
    /// Pacing and coordination.
    Control(Control),
    /// A look at what the kernel holds.
    Check(Check),
}

/// A syscall on one of the side's sockets. Reports write it as the
/// action's keyword and its arguments: `{"action": "recv", "max": 65536,
/// "timeout_ms": 200.0}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SocketCall {
    /// Bind and listen.
    Listen {
        /// A loopback address; a bare port means 127.0.0.1.
        addr: SocketAddr,
        /// The accept queue length.
        backlog: u32,
    },
    /// Accept one connection from the listener.
    Accept {
        /// `SO_RCVTIMEO` for the call (EAGAIN when it passes).
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
    },
    /// Connect to an address.
    Connect {
        /// A loopback address; a bare port means 127.0.0.1.
        addr: SocketAddr,
        /// `SO_SNDTIMEO` for the call (EINPROGRESS when it passes; the SYN
        /// keeps going).
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
        /// Bind this local port first (to show a 4-tuple in TIME_WAIT
        /// cannot be reused); an ephemeral port otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u16>,
        /// Make the call with `O_NONBLOCK`: it returns EINPROGRESS at once.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        nonblocking: bool,
        /// Call `connect(2)` again on the socket the side already has
        /// (EALREADY while the first attempt is pending, the attempt's
        /// error once it failed, success or EISCONN once it connected).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        again: bool,
    },
    /// Write a payload in full.
    Send {
        /// What to write.
        payload: Payload,
        /// For the whole step: each `send(2)` gets what is left as
        /// `SO_SNDTIMEO`.
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
    },
    /// One read call.
    Recv {
        /// Read at most this many bytes.
        max: usize,
        /// `SO_RCVTIMEO` for the call (EAGAIN when it passes).
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
    },
    /// Read until a byte count or a pattern.
    RecvUntil {
        /// When to stop.
        until: Until,
        /// `SO_RCVTIMEO` for each read: the idle time allowed.
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
    },
    /// `shutdown(2)` one or both directions.
    Shutdown {
        /// Which.
        how: How,
    },
    /// `close(2)`: FIN, or RST when unread data is pending.
    Close,
    /// Close with `SO_LINGER {on, 0}`: RST, no TIME_WAIT.
    Abort,
    /// Set socket options, on the current socket or the next one made.
    Set(SocketOptions),
    /// `getsockopt(SO_ERROR)`: the pending error, which reading clears.
    SoError,
    /// `poll(2)` on the connection (or, with none, the listener).
    Poll {
        /// The events asked for.
        events: PollEvents,
        /// How long to wait; `None` waits for an event.
        #[serde(
            default,
            rename = "timeout_ms",
            with = "crate::model::units::millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        timeout: Option<Duration>,
    },
}

/// Pacing and coordination between the sides.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Do nothing for a while.
    Sleep(Duration),
    /// Let the other sides' `wait` for this label go on.
    Mark(String),
    /// Wait until another side reaches `mark` with this label.
    Wait {
        /// The label to wait for.
        label: String,
        /// How long to wait before failing the case.
        timeout: Option<Duration>,
    },
    /// Run some steps again and again.
    Loop(Loop),
    /// Send the program under test (its process group) a signal; its exit
    /// after that is its answer, not a crash.
    Signal(nix::sys::signal::Signal),
    /// Put a fault on the network of the case: from now on, packets that
    /// match it are dropped or rejected.
    Fault(Fault),
    /// Cut a side's host off from the other (two hosts only).
    Cut(HostCut),
    /// Take faults away.
    Lift(Lift),
}

/// A side's host cut off from the other, in a two-host case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct HostCut {
    /// Whose host.
    pub side: Side,
    /// Its link down, or a blackhole route.
    pub how: crate::sandbox::topology::Cut,
    /// What `lift` calls it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The TCP segments one side sends, narrowed by whom to, their flags and
/// whether they carry data: what a fault takes and a `sent` check counts
/// (the modifiers `to`, `flags` and `data` of both).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Outgoing {
    /// The side that sends them.
    pub from: Side,
    /// Only those on its connections with this side (the proxy talks to
    /// two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Side>,
    /// Only segments with these flags (see [`FlagMatch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<FlagMatch>,
    /// Only segments with data (`true`), or only without (`false`: a bare
    /// ACK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<bool>,
}

/// Packets one side sends that the network of the case drops or rejects
/// (see [`crate::fault`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Fault {
    /// The packets it takes.
    #[serde(flatten)]
    pub outgoing: Outgoing,
    /// The chance each matching packet is taken (1 when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Drop, reject or delay.
    pub verdict: Verdict,
    /// What `lift` calls it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The segments a `sent` check counts.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Segments {
    /// Whose, to whom, which.
    #[serde(flatten)]
    pub outgoing: Outgoing,
    /// Advertising this window (unscaled), resets aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u16>,
    /// Only those that arrived once a side marked this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// Which faults a `lift` takes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lift {
    /// The one with this name.
    Named(String),
    /// Every fault in place.
    All,
}

/// A bounded loop: `body` up to `times` rounds, ended early by a call
/// whose outcome is one of `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Loop {
    /// The steps of one round.
    pub body: Vec<Step>,
    /// The most rounds.
    pub times: u32,
    /// Outcomes that end the loop; with any, the loop fails if none came
    /// within `times` rounds.
    pub until: Vec<Outcome>,
}

/// A look at what the kernel holds, or at what the program under test
/// printed.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Assert kernel TCP states: now, or `within` a deadline (polling).
    State {
        /// The expected state per socket.
        expected: Vec<(Socket, TcpState)>,
        /// Poll until this passes; `None` samples once.
        within: Option<Duration>,
    },
    /// The program under test holds none of the case's connections, no
    /// socket left in CLOSE_WAIT or reset into CLOSE, and none waiting to
    /// be accepted: it released what it was given, not only in the
    /// kernel's table but in its own fd table.
    Released {
        /// Poll until it holds; `None` samples once.
        within: Option<Duration>,
    },
    /// How many connections wait in a side's accept queue: the kernel's
    /// count for its listener (the program's, when it plays that side).
    AcceptQueue {
        /// Per listening side (`server`, `proxy`), the count it must be.
        expected: Vec<(crate::model::Side, u32)>,
        /// Poll until it holds; `None` samples once.
        within: Option<Duration>,
    },
    /// Count the lines of the program's output that match a pattern.
    Log {
        /// The regular expression.
        pattern: Pattern,
        /// How many matching lines may there be.
        lines: LineCount,
        /// With [`LineCount::AtLeastOne`], wait up to this long for one;
        /// with a count, watch for this long before counting.
        within: Option<Duration>,
    },
    /// Count the packets a fault took (dropped or rejected), by the
    /// kernel's counter of its rules.
    Taken {
        /// The fault's `name`.
        name: String,
        /// How many packets there may be.
        packets: LineCount,
        /// With [`LineCount::AtLeastOne`], wait up to this long for one;
        /// with a count, watch for this long before counting.
        within: Option<Duration>,
    },
    /// Count the TCP segments a side sent, as the case's capture saw them
    /// arrive.
    Sent {
        /// Which segments.
        segments: Segments,
        /// How many there may be.
        packets: LineCount,
        /// With [`LineCount::AtLeastOne`], wait up to this long for one;
        /// with a count, watch for this long before counting.
        within: Option<Duration>,
    },
    /// Which side sent the first segment with these flags (the first FIN:
    /// who closed first).
    First {
        /// The side that must have sent it.
        from: Side,
        /// Its flags.
        flags: FlagMatch,
        /// Wait up to this long for one.
        within: Option<Duration>,
    },
    /// Count the program under test's traced socket calls on its end of
    /// the connection that had not returned when this side's latest socket
    /// call began (the `close` that sent the FIN, say): a read blocked
    /// until the FIN counts. A case with one traces the program.
    Syscall {
        /// Which calls.
        which: Which,
        /// The outcomes that count; none: any, finished or in flight.
        results: Vec<Outcome>,
        /// How many there may be.
        calls: LineCount,
        /// With [`LineCount::AtLeastOne`], wait up to this long for one;
        /// with a count, watch for this long before counting.
        within: Option<Duration>,
    },
    /// An invariant of the program under test's traced socket calls on
    /// its end of the connection, over the connection's whole life (from
    /// its accept): each that failed, failed with one of these errnos.
    /// EAGAIN and EINTR are always allowed ([`Errno::is_routine`]): they
    /// say "not yet", not what became of the connection. A case with one
    /// traces the program.
    Errnos {
        /// The errnos a call may fail with.
        allowed: Vec<Errno>,
        /// Watch this long (failing at the first call outside the set);
        /// without it, judge the calls made so far.
        within: Option<Duration>,
    },
}

/// How many matching lines a `log` check wants, or matching calls a
/// `syscall` check.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LineCount {
    /// One or more (the default: "it is logged").
    AtLeastOne,
    /// Exactly this many (`count = 0`: "never logged").
    Exactly(u32),
    /// No more than this many (`at_most = 1`: "logged at most once").
    AtMost(u32),
}

/// A regular expression a suite wrote; two are equal when their text is.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// What to write. Reports write its size, and its text when it is short
/// (see [`WrittenPayload`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(into = "WrittenPayload", from = "WrittenPayload")]
#[schemars(with = "WrittenPayload")]
pub enum Payload {
    /// These bytes, `repeat` times.
    Text {
        /// The literal text.
        text: String,
        /// How many copies, 1 by default.
        repeat: usize,
    },
    /// This many filler bytes (a repeating alphabet, so captures are legible).
    Size(usize),
}

impl Payload {
    /// The total number of bytes the payload writes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text { text, repeat } => text.len() * repeat,
            Payload::Size(n) => *n,
        }
    }

    /// Whether the payload writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A payload as reports write it: its size in bytes, and its text when
/// the step wrote text of at most [`WrittenPayload::TEXT_SHOWN`] bytes in
/// all. A report thus stays small however large a step's text (and a loop
/// repeats it), and reads back as what reports show of it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Payload")]
pub struct WrittenPayload {
    /// How many bytes the step writes.
    pub bytes: u64,
    /// The text, when the step wrote one copy of at most 64 bytes (else
    /// left out: filler bytes, or text too long to repeat here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl WrittenPayload {
    /// The longest text a report keeps.
    pub const TEXT_SHOWN: usize = 64;
}

impl From<Payload> for WrittenPayload {
    fn from(payload: Payload) -> WrittenPayload {
        let bytes = payload.len() as u64;
        let text = match payload {
            Payload::Text { text, repeat: 1 } if text.len() <= WrittenPayload::TEXT_SHOWN => {
                Some(text)
            }
            _ => None,
        };
        WrittenPayload { bytes, text }
    }
}

impl From<WrittenPayload> for Payload {
    fn from(written: WrittenPayload) -> Payload {
        match written.text {
            Some(text) => Payload::Text { text, repeat: 1 },
            _ => Payload::Size(usize::try_from(written.bytes).unwrap_or(usize::MAX)),
        }
    }
}

/// When `recv_until` stops; reports write the byte count or the text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Until {
    /// Once this many bytes have arrived in total.
    Bytes(u64),
    /// Once this text has arrived.
    Pattern(String),
    /// An HTTP response read from its first byte exactly through the end
    /// of this chunk of its `Transfer-Encoding: chunked` body (its data's
    /// closing CRLF): `{ chunks = 3 }`.
    Chunks {
        /// Which chunk, from 1.
        chunks: u64,
    },
    /// An HTTP response read from its first byte exactly through its
    /// headers' blank line and this many bytes after it, as they come
    /// on the wire (a chunked body's framing counts): `{ body = 1000 }`.
    Body {
        /// Bytes of body.
        body: u64,
    },
}

/// Which direction `shutdown` closes, as a suite writes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`: sends FIN, keeps reading.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

/// Socket options a `set` step names; unnamed ones are left alone.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SocketOptions {
    /// `SO_LINGER`: `Some(None)` turns it off, `Some(Some(d))` on with `d`,
    /// a whole number of seconds (the parser refuses any other: `l_linger`
    /// counts seconds). Reports write `"linger": "off"` or the seconds.
    #[serde(default, with = "linger", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<linger::Written>")]
    pub linger: Option<Option<Duration>>,
    /// `TCP_NODELAY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodelay: Option<bool>,
    /// `SO_KEEPALIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<bool>,
    /// `SO_RCVBUF`, in bytes (the kernel doubles it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcvbuf: Option<usize>,
    /// `SO_SNDBUF`, in bytes (the kernel doubles it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sndbuf: Option<usize>,
    /// `TCP_USER_TIMEOUT`: how long sent data may go unacknowledged
    /// before the kernel gives the connection up (ETIMEDOUT), in whole
    /// milliseconds (the parser refuses any other: the kernel counts
    /// them); zero restores the kernel's default (`tcp_retries2`).
    #[serde(
        default,
        rename = "user_timeout_ms",
        with = "crate::model::units::millis_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<f64>")]
    pub user_timeout: Option<Duration>,
    /// `TCP_NOTSENT_LOWAT`, in bytes: the most data not yet sent that the
    /// socket still counts as writable (poll's `out`, a blocking send's
    /// wait); zero restores the namespace's `tcp_notsent_lowat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notsent_lowat: Option<u32>,
    /// `TCP_CONGESTION`: the congestion control algorithm by name, as the
    /// kernel is handed it (the kernel says whether it has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub congestion: Option<String>,
    /// `O_NONBLOCK` on the side's socket (`fcntl(2)`): its calls then
    /// return EAGAIN (EINPROGRESS for a connect) instead of waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonblocking: Option<bool>,
}

/// `SO_LINGER` as reports write it: `"off"`, or whole seconds.
mod linger {
    use std::time::Duration;

    /// `"off"`, or the seconds a close may linger.
    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(untagged)]
    pub enum Written {
        /// `"off"`.
        Off(Off),
        /// Whole seconds (0: an abortive close).
        Seconds(u64),
    }

    /// The word `off`.
    #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Off {
        /// Lingering turned off.
        Off,
    }

    pub fn serialize<S: serde::Serializer>(
        linger: &Option<Option<Duration>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::Serialize;
        match linger {
            None => s.serialize_none(),
            Some(None) => Some(Written::Off(Off::Off)).serialize(s),
            Some(Some(d)) => Some(Written::Seconds(d.as_secs())).serialize(s),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<Duration>>, D::Error> {
        use serde::Deserialize;
        Ok(
            Option::<Written>::deserialize(d)?.map(|written| match written {
                Written::Off(_) => None,
                Written::Seconds(s) => Some(Duration::from_secs(s)),
            }),
        )
    }
}

/// Every action's definition, in the order the README lists them: the
/// socket calls, the control steps, the checks.
pub fn catalog() -> impl DoubleEndedIterator<Item = &'static ActionDef> + Clone {
    calls::DEFS.iter().chain(control::DEFS).chain(checks::DEFS)
}

/// The definition of the action written `keyword`.
pub fn definition(keyword: &str) -> Option<&'static ActionDef> {
    catalog().find(|def| def.keyword == keyword)
}

/// The README's step and modifier tables, from [`catalog`] and
/// [`MODIFIERS`]: which sides may take each action, its modifiers, and each
/// modifier's defaults, as the definitions give them.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| action | side | what it does | modifiers |\n|--------|------|--------------|-----------|\n",
    );
    for def in catalog() {
        let sides = if def.sides.len() == 3 {
            "any".to_string()
        } else {
            def.sides
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let modifiers: Vec<String> = def
            .modifiers
            .iter()
            .map(|m| match (m.default, m.required) {
                (Some(default), _) => format!("`{}` (`{default}`)", m.keyword),
                (None, Some(_)) => format!("`{}` (required)", m.keyword),
                (None, None) => format!("`{}`", m.keyword),
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {sides} | {} | {} |\n",
            def.written,
            def.summary,
            modifiers.join(", ")
        ));
    }
    out.push_str("\n| modifier | meaning |\n|----------|---------|\n");
    for def in MODIFIERS {
        out.push_str(&format!(
            "| `{}` | {}{} |\n",
            def.keyword,
            def.summary,
            defaults_of(def.keyword)
        ));
    }
    out
}

/// `; by default \`65536\` for \`recv\``, `; required with \`loop\``: what
/// the actions that take a modifier say of it when it is left out, for its
/// line in the README's table.
fn defaults_of(keyword: &str) -> String {
    let mut defaults = Vec::new();
    let mut required = Vec::new();
    for def in catalog() {
        let Some(uses) = def.modifiers.iter().find(|m| m.keyword == keyword) else {
            continue;
        };
        if let Some(default) = uses.default {
            defaults.push(format!("`{default}` for `{}`", def.keyword));
        }
        if uses.required.is_some() {
            required.push(format!("`{}`", def.keyword));
        }
    }
    let mut out = String::new();
    if !defaults.is_empty() {
        out.push_str(&format!("; by default {}", defaults.join(", ")));
    }
    if !required.is_empty() {
        out.push_str(&format!("; required with {}", required.join(", ")));
    }
    out
}

impl Action {
    /// The action's definition.
    pub fn definition(&self) -> &'static ActionDef {
        definition(self.keyword())
            .unwrap_or_else(|| unreachable!("every action has a definition (a test checks)"))
    }

    /// The action to describe, by its kind's value.
    fn described(&self) -> Described<'_> {
        match self {
            Action::Socket(call) => Described::Socket(call),
            Action::Control(control) => Described::Control(control),
            Action::Check(check) => Described::Check(check),
        }
    }

    /// The name the step is written with, e.g. `recv_until`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Socket(call) => call.keyword(),
            Action::Control(control) => match control {
                Control::Sleep(_) => "sleep",
                Control::Mark(_) => "mark",
                Control::Wait { .. } => "wait",
                Control::Loop(_) => "loop",
                Control::Signal(_) => "signal",
                Control::Fault(Fault {
                    verdict: Verdict::Drop,
                    ..
                }) => "drop",
                Control::Fault(Fault {
                    verdict: Verdict::Delay { .. },
                    ..
                }) => "delay",
                Control::Fault(_) => "reject",
                Control::Cut(_) => "cut",
                Control::Lift(_) => "lift",
            },
            Action::Check(Check::State { .. }) => "state",
            Action::Check(Check::Log { .. }) => "log",
            Action::Check(Check::Released { .. }) => "released",
            Action::Check(Check::AcceptQueue { .. }) => "accept_queue",
            Action::Check(Check::Syscall { .. }) => "syscall",
            Action::Check(Check::Errnos { .. }) => "errnos",
            Action::Check(Check::Taken { .. }) => "taken",
            Action::Check(Check::Sent { .. }) => "sent",
            Action::Check(Check::First { .. }) => "first",
        }
    }

    /// Whether the step has a result to judge (see [`ActionDef::judged`]).
    pub fn is_judged(&self) -> bool {
        self.definition().judged
    }

    /// What an unstated expectation means: no errno; for `recv`, EOF is
    /// fine too (only a read can return it), and `recv_until` must reach
    /// its target.
    pub fn default_expectation(&self) -> super::Expect {
        let result = match self {
            Action::Socket(SocketCall::Recv { .. }) => vec![Outcome::Ok, Outcome::Eof],
            _ => vec![Outcome::Ok],
        };
        super::Expect {
            result,
            bytes: None,
            after: None,
            longer_than: None,
            revents: None,
            matches: None,
        }
    }
}

impl SocketCall {
    /// The name the step is written with, e.g. `recv_until`.
    pub fn keyword(&self) -> &'static str {
        match self {
            SocketCall::Listen { .. } => "listen",
            SocketCall::Accept { .. } => "accept",
            SocketCall::Connect { .. } => "connect",
            SocketCall::Send { .. } => "send",
            SocketCall::Recv { .. } => "recv",
            SocketCall::RecvUntil { .. } => "recv_until",
            SocketCall::Shutdown { .. } => "shutdown",
            SocketCall::Close => "close",
            SocketCall::Abort => "abort",
            SocketCall::Set(_) => "set",
            SocketCall::SoError => "so_error",
            SocketCall::Poll { .. } => "poll",
        }
    }
}

/// `linger=0s nodelay=true`: only what the step sets.
impl fmt::Display for SocketOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.linger {
            Some(None) => parts.push("linger=off".to_string()),
            // Whole seconds, as the parser allows and the kernel counts.
            Some(Some(d)) => parts.push(format!("linger={}s", d.as_secs())),
            None => {}
        }
        if let Some(on) = self.nodelay {
            parts.push(format!("nodelay={on}"));
        }
        if let Some(on) = self.keepalive {
            parts.push(format!("keepalive={on}"));
        }
        if let Some(n) = self.rcvbuf {
            parts.push(format!("rcvbuf={n}"));
        }
        if let Some(n) = self.sndbuf {
            parts.push(format!("sndbuf={n}"));
        }
        if let Some(d) = self.user_timeout {
            // Whole milliseconds, as the parser allows and the kernel counts.
            parts.push(format!("user_timeout={}ms", d.as_millis()));
        }
        if let Some(n) = self.notsent_lowat {
            parts.push(format!("notsent_lowat={n}"));
        }
        if let Some(name) = &self.congestion {
            parts.push(format!("congestion={}", Escaped(name)));
        }
        if let Some(on) = self.nonblocking {
            parts.push(format!("nonblocking={on}"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// The action as the timeline shows it, e.g. `recv_until 5000000 B
/// (timeout 25 ms)`: as its definition describes it.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.definition().describe)(self.described(), f)
    }
}

/// A socket call as the timeline shows it, as its definition describes it.
impl fmt::Display for SocketCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let def = definition(self.keyword())
            .unwrap_or_else(|| unreachable!("every call has a definition (a test checks)"));
        (def.describe)(Described::Socket(self), f)
    }
}

/// `200 ms`, as descriptions write a duration.
fn ms(d: &Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// ` (timeout 200 ms)`, or nothing.
fn timeout_words(t: &Option<Duration>) -> String {
    t.as_ref()
        .map(|d| format!(" (timeout {})", ms(d)))
        .unwrap_or_default()
}

impl fmt::Display for Fault {
    /// `drop what client sends to server: SYN, without data, 50%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Outgoing {
            from,
            to,
            flags,
            data,
        } = self.outgoing;
        write!(f, "{} what {from} sends", self.verdict)?;
        if let Some(to) = to {
            write!(f, " to {to}")?;
        }
        let mut only = Vec::new();
        if let Some(flags) = flags {
            only.push(format!("{flags} segments"));
        }
        match data {
            Some(false) => only.push("without data".to_string()),
            Some(true) => only.push("with data".to_string()),
            None => {}
        }
        if let Some(p) = self.probability {
            only.push(crate::model::units::percent(p));
        }
        if !only.is_empty() {
            write!(f, " ({})", only.join(", "))?;
        }
        if let Some(name) = &self.name {
            write!(f, " as {name:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for HostCut {
    /// `cut the client's host off (link down) as "sleep"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.how {
            crate::sandbox::topology::Cut::LinkDown => "link down",
            crate::sandbox::topology::Cut::Blackhole => "blackhole route",
        };
        write!(f, "cut the {}'s host off ({how})", self.side)?;
        if let Some(name) = &self.name {
            write!(f, " as {name:?}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Segments {
    /// `RST segments the server sent to the client`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Outgoing {
            from,
            to,
            flags,
            data,
        } = self.outgoing;
        match flags {
            Some(flags) => write!(f, "{flags} segments")?,
            None => f.write_str("segments")?,
        }
        match data {
            Some(true) => f.write_str(" with data")?,
            Some(false) => f.write_str(" without data")?,
            None => {}
        }
        if let Some(window) = self.window {
            write!(f, " advertising window {window}")?;
        }
        write!(f, " the {from} sent")?;
        if let Some(to) = to {
            write!(f, " to the {to}")?;
        }
        if let Some(label) = &self.since {
            write!(f, " since mark {label:?}")?;
        }
        Ok(())
    }
}

/// ` within 300 ms`, or nothing.
fn within_suffix(within: Option<Duration>) -> String {
    within
        .map(|d| format!(" within {}", ms(&d)))
        .unwrap_or_default()
}

impl LineCount {
    /// ` count 2`, ` at most 1`, or nothing (one or more), as a step's
    /// description ends.
    fn suffix(self) -> String {
        match self {
            LineCount::AtLeastOne => String::new(),
            LineCount::Exactly(n) => format!(" count {n}"),
            LineCount::AtMost(n) => format!(" at most {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_and_modifier_is_defined_once() {
        let mut keywords: Vec<&str> = catalog().map(|d| d.keyword).collect();
        keywords.extend(MODIFIERS.iter().map(|m| m.keyword));
        let count = keywords.len();
        keywords.sort_unstable();
        keywords.dedup();
        assert_eq!(keywords.len(), count, "a keyword is defined twice");
        for def in catalog() {
            for m in def.all_modifiers() {
                assert!(
                    modifier(m).is_some(),
                    "{m} of {} has no definition",
                    def.keyword
                );
            }
            assert!(!def.sides.is_empty(), "{}", def.keyword);
        }
    }

    /// What a report keeps of a payload reads back as it was: short text
    /// (the empty text too, which is not zero filler bytes), and the size
    /// of filler or of text too long to keep.
    #[test]
    fn a_payload_reads_back_from_a_report_as_it_was_written() {
        let text = |t: &str| Payload::Text {
            text: t.into(),
            repeat: 1,
        };
        for payload in [text(""), text("GET /\n"), Payload::Size(5_000_000)] {
            let json = serde_json::to_string(&payload).expect("json");
            let back: Payload = serde_json::from_str(&json).expect("reads");
            assert_eq!(back, payload, "{json}");
        }
        // Text too long to keep reads back as its size.
        let long = Payload::Text {
            text: "x".repeat(100),
            repeat: 2,
        };
        let back: Payload =
            serde_json::from_str(&serde_json::to_string(&long).expect("json")).expect("reads");
        assert_eq!(back, Payload::Size(200));
    }

    #[test]
    fn the_readme_step_table_is_the_catalog_s() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's step table differs from suite::action::markdown_table(); replace it with:\n\n{table}"
        );
    }
}
