//! What a step does, and the one definition of every action.
//!
//! A step's [`Action`] is one of three kinds, each executed by a different
//! part of the harness: a [`SocketCall`] is a syscall the side's peer makes
//! and whose result is judged; a [`Control`] paces or coordinates the
//! script (`sleep`, `mark`, `wait`, `loop`); a [`Check`] asks the kernel
//! what it holds (`state`; later packets and logs).
//!
//! [`CATALOG`] defines each action once: its keyword, how it is written,
//! which sides may use it, whether it acts on a connection (so the proxy
//! must say which with `on`), whether it has a result to judge, and its
//! modifiers. The parser's checks and hints, the JSON Schema, `hangup
//! check`'s messages and the README's step table all come from it, so a
//! new action is one entry here plus its execution.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::Step;
use crate::model::syscall::Which;
use crate::model::{Outcome, PollEvents, Side, Socket, TcpState};
use crate::model::{TcpFlags, Verdict};

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

/// Packets one side sends that the network of the case drops or rejects
/// (see [`crate::fault`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Fault {
    /// The side whose packets it takes.
    pub from: Side,
    /// Only those on its connections with this side (the proxy talks to
    /// two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Side>,
    /// Only segments with these flags (see [`TcpFlags::matches`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<TcpFlags>,
    /// Only segments without data (`false`: a bare ACK), or only with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<bool>,
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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Segments {
    /// Sent by this side.
    pub from: Side,
    /// To this side, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Side>,
    /// With these flags (see [`TcpFlags::matches`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<TcpFlags>,
    /// With data (`true`) or without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<bool>,
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
        flags: TcpFlags,
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
}

/// How many matching lines a `log` check wants, or matching calls a
/// `syscall` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
            Some(text) if !text.is_empty() => Payload::Text { text, repeat: 1 },
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

/// Which kind of step an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A socket call.
    Socket,
    /// Pacing and coordination.
    Control,
    /// A look at the kernel's state.
    Check,
}

/// The one definition of an action (see the [module docs](self)).
#[derive(Debug)]
pub struct ActionDef {
    /// The key it is written with.
    pub keyword: &'static str,
    /// Which kind of step it is.
    pub kind: StepKind,
    /// How it is written, for the README's step table.
    pub written: &'static str,
    /// What it does, in a line (README and schema).
    pub summary: &'static str,
    /// Which sides may use it.
    pub sides: &'static [Side],
    /// Whether it acts on one of the side's connections: in the proxy's
    /// script it must then say which, with `on`.
    pub on_connection: bool,
    /// Whether it has a result to judge (`expect`, `bytes`, `after`,
    /// `longer_than`).
    pub judged: bool,
    /// Whether it may be written as a bare string (`"close"`).
    pub bare: bool,
    /// The modifiers it takes besides the judging ones and `on`.
    pub modifiers: &'static [&'static str],
}

/// A key a step may hold besides its action.
#[derive(Debug)]
pub struct ModifierDef {
    /// The key.
    pub keyword: &'static str,
    /// What it means, in a line (README and schema).
    pub summary: &'static str,
}

const ANY: &[Side] = &[Side::Client, Side::Proxy, Side::Server];
const LISTENING: &[Side] = &[Side::Server, Side::Proxy];
const CONNECTING: &[Side] = &[Side::Client, Side::Proxy];

/// The modifiers of every action with a result to judge.
pub const JUDGING: &[&str] = &["expect", "bytes", "after", "longer_than"];

/// Every action, in the order the README lists them.
pub const CATALOG: &[ActionDef] = &[
    ActionDef {
        keyword: "listen",
        kind: StepKind::Socket,
        written: "listen = 8080",
        summary: "bind and listen (a port means 127.0.0.1; or `\"[::1]:8080\"`)",
        sides: LISTENING,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &["backlog"],
    },
    ActionDef {
        keyword: "accept",
        kind: StepKind::Socket,
        written: "accept = true",
        summary: "accept one connection",
        sides: LISTENING,
        on_connection: false,
        judged: true,
        bare: true,
        modifiers: &["timeout"],
    },
    ActionDef {
        keyword: "connect",
        kind: StepKind::Socket,
        written: "connect = 8080",
        summary: "connect (a failed connect keeps its socket, in CLOSE, as a program's would)",
        sides: CONNECTING,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &["timeout", "from", "nonblocking", "again"],
    },
    ActionDef {
        keyword: "send",
        kind: StepKind::Socket,
        written: "send = \"text\"` / `send = 5_000_000",
        summary: "write all of it: literal text, or that many filler bytes",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &["timeout", "repeat"],
    },
    ActionDef {
        keyword: "recv",
        kind: StepKind::Socket,
        written: "recv = true",
        summary: "one read call",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &["timeout", "max", "matches"],
    },
    ActionDef {
        keyword: "recv_until",
        kind: StepKind::Socket,
        written: "recv_until = 1000` / `recv_until = \"\\r\\n\\r\\n\"",
        summary: "read until that many bytes, or that text",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &["timeout", "matches"],
    },
    ActionDef {
        keyword: "shutdown",
        kind: StepKind::Socket,
        written: "shutdown = \"write\"",
        summary: "`shutdown(2)`: `\"read\"`, `\"write\"` (FIN, keep reading) or `\"both\"`",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "close",
        kind: StepKind::Socket,
        written: "close = true",
        summary: "`close(2)`: FIN, or RST with unread data; with no connection, closes the listener",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
    },
    ActionDef {
        keyword: "abort",
        kind: StepKind::Socket,
        written: "abort = true",
        summary: "close with `SO_LINGER {on, 0}`: RST, no TIME_WAIT",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
    },
    ActionDef {
        keyword: "set",
        kind: StepKind::Socket,
        written: "set = { linger = \"0s\" }",
        summary: "socket options: `linger` (`\"off\"` or whole seconds: SO_LINGER counts seconds), `nodelay`, `keepalive`, `rcvbuf`, `sndbuf`; before a socket exists, they apply to the next one",
        sides: ANY,
        on_connection: true,
        judged: false,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "so_error",
        kind: StepKind::Socket,
        written: "so_error = true",
        summary: "`getsockopt(SO_ERROR)`: the pending error as the outcome (`ok` when none); reading it clears it",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: true,
        modifiers: &[],
    },
    ActionDef {
        keyword: "poll",
        kind: StepKind::Socket,
        written: "poll = [\"in\", \"rdhup\"]",
        summary: "`poll(2)` for `in`, `out`, `pri`, `rdhup` on the connection (with none, the listener); `err` and `hup` are always reported",
        sides: ANY,
        on_connection: true,
        judged: true,
        bare: false,
        modifiers: &["timeout", "revents"],
    },
    ActionDef {
        keyword: "sleep",
        kind: StepKind::Control,
        written: "sleep = \"100ms\"",
        summary: "wait",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "mark",
        kind: StepKind::Control,
        written: "mark = \"label\"",
        summary: "let another side's `wait` for the label go on",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "wait",
        kind: StepKind::Control,
        written: "wait = \"label\"",
        summary: "wait until another side marks the label",
        sides: ANY,
        on_connection: false,
        judged: true,
        bare: false,
        modifiers: &["timeout"],
    },
    ActionDef {
        keyword: "signal",
        kind: StepKind::Control,
        written: "signal = \"SIGTERM\"",
        summary: "send the program under test (its process group) a signal, e.g. to shut it down mid-case (S14); an exit that follows is its answer, not a crash; `SIGSTOP` and `SIGCONT` pause and resume it (its accept queue fills meanwhile)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "drop",
        kind: StepKind::Control,
        written: "drop = \"server\"",
        summary: "from now on the network loses what this side sends (a paused or vanished host, a silent firewall): the sender's kernel believes it went out and retransmits; narrowed by `to`, `flags`, `data`, `probability`; until `lift` or the case's end",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["to", "flags", "data", "probability", "name"],
    },
    ActionDef {
        keyword: "reject",
        kind: StepKind::Control,
        written: "reject = \"client\", with = \"tcp-reset\"",
        summary: "as `drop`, and the sender is told: `with` a TCP reset (the default) or ICMP `port-unreachable`, `host-unreachable`, `admin-prohibited`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["to", "flags", "data", "probability", "name", "with"],
    },
    ActionDef {
        keyword: "delay",
        kind: StepKind::Control,
        written: "delay = \"server\", by = \"200ms\", jitter = \"50ms\"",
        summary: "from now on what this side sends arrives late: each packet is held in the receiver's kernel `by` this long (give or take up to `jitter`, which may reorder them) before it goes on; narrowed by `to`, `flags`, `data`, `probability`; until `lift` or the case's end",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["by", "jitter", "to", "flags", "data", "probability", "name"],
    },
    ActionDef {
        keyword: "cut",
        kind: StepKind::Control,
        written: "cut = \"client\", with = \"blackhole\"",
        summary: "in a `two_hosts` case, cut this side's host off from the other until `lift`: `with` its link down (the default: a new connect fails with ENETUNREACH) or `blackhole`, a route that discards what it sends there (a new connect fails with EINVAL); what was sent before is queued and retransmitted into the void",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["with", "name"],
    },
    ActionDef {
        keyword: "lift",
        kind: StepKind::Control,
        written: "lift = \"pause\"",
        summary: "take away the fault with this `name`, or `\"all\"`; the timeline says how many packets each took",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[],
    },
    ActionDef {
        keyword: "loop",
        kind: StepKind::Control,
        written: "loop = [{ send = 100 }, { sleep = \"100ms\" }]",
        summary: "run these steps up to `times` rounds; a call whose outcome is one of `until` ends the loop (and is expected)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["times", "until"],
    },
    ActionDef {
        keyword: "released",
        kind: StepKind::Check,
        written: "released = true",
        summary: "the program under test (or a process it started) holds none of the case's connections in its fd table, no socket left in CLOSE_WAIT or reset into CLOSE, and none waiting in its listeners' accept queues; a failure names each socket; the fds it opened since it became ready are said beside, not judged (a runtime opens some lazily)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["within"],
    },
    ActionDef {
        keyword: "accept_queue",
        kind: StepKind::Check,
        written: "accept_queue = { server = 80 }",
        summary: "how many connections wait in the accept queue of the `server`'s (the program's) or the `proxy`'s listener, as the kernel counts them: handshakes done, not yet accepted",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["within"],
    },
    ActionDef {
        keyword: "log",
        kind: StepKind::Check,
        written: "log = \"Broken pipe\"",
        summary: "count the program under test's output lines matching a regular expression: one or more (waiting up to `within`), or `count`/`at_most` of them over `within`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["within", "count", "at_most"],
    },
    ActionDef {
        keyword: "syscall",
        kind: StepKind::Check,
        written: "syscall = \"write\", expect = \"EPIPE\"",
        summary: "the program under test's own socket calls on its end of the connection that returned after this side's latest socket call began, or are still in flight (the program is traced: seccomp and ptrace): one or more with `expect`'s outcome (waiting up to `within`), or `count`/`at_most` of them over `within`; `write`, `read`, `close`, `shutdown` and `accept` name every call of their kind (writev, sendmsg, sendfile, accept4, ...), or name one call (`sendmsg`)",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["expect", "within", "count", "at_most"],
    },
    ActionDef {
        keyword: "taken",
        kind: StepKind::Check,
        written: "taken = \"pause\"",
        summary: "count the packets the fault with this `name` took (dropped, rejected, or held by a `delay`), by the kernel's counter of its rules (lifted or not): one or more (waiting up to `within`), or `count`/`at_most` of them over `within`; e.g. wait until a paused side's ACK was really lost before lifting the fault",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["within", "count", "at_most"],
    },
    ActionDef {
        keyword: "sent",
        kind: StepKind::Check,
        written: "sent = \"server\", flags = \"RST\", count = 0",
        summary: "count the TCP segments a side sent, as the case's packet capture saw them arrive (from its start), narrowed by `to`, `flags`, `data`, `window` (`0`: a zero window, the slow reader's): one or more (waiting up to `within`), or `count`/`at_most` of them over `within`; `count = 0` says none was sent",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &[
            "to", "flags", "data", "window", "since", "within", "count", "at_most",
        ],
    },
    ActionDef {
        keyword: "first",
        kind: StepKind::Check,
        written: "first = \"client\", flags = \"FIN\"",
        summary: "the first TCP segment with these `flags` (required) came from this side (the first FIN: who closed first), waiting up to `within` for one",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["flags", "within"],
    },
    ActionDef {
        keyword: "state",
        kind: StepKind::Check,
        written: "state = { client = \"FIN_WAIT2\", server = \"CLOSE_WAIT\" }",
        summary: "assert kernel TCP states of `client`, `server`, `proxy_client` (the proxy's socket facing the client) and `proxy_server`",
        sides: ANY,
        on_connection: false,
        judged: false,
        bare: false,
        modifiers: &["within"],
    },
];

/// Every modifier, with its meaning.
pub const MODIFIERS: &[ModifierDef] = &[
    ModifierDef {
        keyword: "timeout",
        summary: "give up after this long: the kernel's `SO_RCVTIMEO` (accept, recv, each read of recv_until: EAGAIN) or `SO_SNDTIMEO` (connect: EINPROGRESS, its SYN keeps going; send: for the whole step, EAGAIN with the bytes written so far); poll's own timeout; for wait, fail after it",
    },
    ModifierDef {
        keyword: "within",
        summary: "for `state` and `released`: poll until it holds, failing after this long; without it, sample once; for `log`, `syscall`, `taken`, `sent` and `first`, see there",
    },
    ModifierDef {
        keyword: "repeat",
        summary: "for `send` with text: send this many copies (1 by default)",
    },
    ModifierDef {
        keyword: "max",
        summary: "for `recv`: read at most this many bytes (65536 by default)",
    },
    ModifierDef {
        keyword: "backlog",
        summary: "for `listen`: the accept queue length (128 by default)",
    },
    ModifierDef {
        keyword: "from",
        summary: "for `connect`: bind this local port first (a 4-tuple in TIME_WAIT cannot be reused); an ephemeral port otherwise",
    },
    ModifierDef {
        keyword: "nonblocking",
        summary: "for `connect`: make the call with O_NONBLOCK, so it returns EINPROGRESS at once",
    },
    ModifierDef {
        keyword: "again",
        summary: "for `connect`: call connect(2) again on the socket the side has (EALREADY while pending, the attempt's error once it failed, EISCONN once connected)",
    },
    ModifierDef {
        keyword: "revents",
        summary: "for `poll`: exactly the events that must be reported ready (`[]`: none, the poll timed out)",
    },
    ModifierDef {
        keyword: "times",
        summary: "for `loop`: the most rounds (required: every loop is bounded)",
    },
    ModifierDef {
        keyword: "until",
        summary: "for `loop`: an outcome (or a list) that ends the loop when a call in it returns one; the loop fails if none came",
    },
    ModifierDef {
        keyword: "matches",
        summary: "for `recv` and `recv_until`: a regular expression what was received must match (as text; the first 64 KiB), e.g. `^HTTP/1\\.1 502` to tell a 502 from a 200",
    },
    ModifierDef {
        keyword: "count",
        summary: "for `log`, `syscall`, `taken` and `sent`: exactly this many matching lines, calls or packets (`0`: never logged, never called), counted once `within` has passed",
    },
    ModifierDef {
        keyword: "at_most",
        summary: "for `log`, `syscall`, `taken` and `sent`: no more than this many matching lines, calls or packets (`1`: logged at most once), counted once `within` has passed",
    },
    ModifierDef {
        keyword: "to",
        summary: "for `drop`, `reject`, `delay` and `sent`: only what the side sends to this side (`client`, `proxy`, `server`)",
    },
    ModifierDef {
        keyword: "flags",
        summary: "for `drop`, `reject`, `delay`, `sent` and `first`: only TCP segments with exactly these of SYN, FIN and RST set, and ACK when named: unnamed, ACK may be set or not (`\"SYN\"` is a SYN or a SYN|ACK, `\"RST\"` a reset with or without ACK, `\"FIN\"` the FIN|ACK Linux sends); `\"ACK\"` alone is a bare ACK; PSH is not looked at",
    },
    ModifierDef {
        keyword: "data",
        summary: "for `drop`, `reject`, `delay` and `sent`: `false`, only segments without data (with `flags = \"ACK\"`: a bare ACK, such as a handshake's last); `true`, only segments with data",
    },
    ModifierDef {
        keyword: "probability",
        summary: "for `drop`, `reject` and `delay`: the chance, above 0 and at most 1, that each matching packet is taken",
    },
    ModifierDef {
        keyword: "by",
        summary: "for `delay` (required): how long each packet is held, above 0 and at most 60s",
    },
    ModifierDef {
        keyword: "jitter",
        summary: "for `delay`: each packet's delay is drawn uniformly from `by` ± this (at most `by`); packets may overtake each other, as on a real path",
    },
    ModifierDef {
        keyword: "since",
        summary: "for `sent`: only segments that arrived after a side reached `mark = \"label\"` (between two steps: mark, then count)",
    },
    ModifierDef {
        keyword: "window",
        summary: "for `sent`: only segments advertising this window, unscaled as in the header (`0`: a zero window), resets aside",
    },
    ModifierDef {
        keyword: "name",
        summary: "for `drop`, `reject`, `delay` and `cut`: what `lift` calls the fault",
    },
    ModifierDef {
        keyword: "with",
        summary: "for `reject`: `\"tcp-reset\"` (the default), `\"port-unreachable\"`, `\"host-unreachable\"` or `\"admin-prohibited\"` (ICMP); for `cut`: `\"link_down\"` (the default) or `\"blackhole\"`",
    },
    ModifierDef {
        keyword: "on",
        summary: "in the proxy's script: which connection a step acts on, `\"client\"` (the one it accepted) or `\"server\"` (the one it made)",
    },
    ModifierDef {
        keyword: "expect",
        summary: "the outcome: `\"ok\"`, `\"EOF\"` (a read returned 0) or an errno name; a list means any one of them; for `syscall`, the outcome of the program's call",
    },
    ModifierDef {
        keyword: "bytes",
        summary: "the bytes the call moved",
    },
    ModifierDef {
        keyword: "after",
        summary: "how long the call took, within the tolerance",
    },
    ModifierDef {
        keyword: "longer_than",
        summary: "a lower bound on how long the call took, no tolerance",
    },
];

/// The definition of the action written `keyword`.
pub fn definition(keyword: &str) -> Option<&'static ActionDef> {
    CATALOG.iter().find(|def| def.keyword == keyword)
}

/// The definition of the modifier written `keyword`.
pub fn modifier(keyword: &str) -> Option<&'static ModifierDef> {
    MODIFIERS.iter().find(|def| def.keyword == keyword)
}

impl ActionDef {
    /// Every key a step with this action may hold besides the action: its
    /// own modifiers, the judging ones if it is judged, and `on` if it acts
    /// on a connection.
    pub fn all_modifiers(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = self.modifiers.to_vec();
        if self.judged {
            all.extend(JUDGING);
        }
        if self.on_connection {
            all.push("on");
        }
        all
    }

    /// "the server or proxy side", for messages.
    pub fn sides_in_words(&self) -> String {
        match self.sides {
            [one] => format!("the {one} side"),
            [a, b] => format!("the {a} or {b} side"),
            _ => "any side".to_string(),
        }
    }
}

/// The README's step and modifier tables, from [`CATALOG`] and
/// [`MODIFIERS`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| action | side | what it does | modifiers |\n|--------|------|--------------|-----------|\n",
    );
    for def in CATALOG {
        let sides = if def.sides.len() == 3 {
            "any".to_string()
        } else {
            def.sides
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let modifiers: Vec<String> = def.modifiers.iter().map(|m| format!("`{m}`")).collect();
        out.push_str(&format!(
            "| `{}` | {sides} | {} | {} |\n",
            def.written,
            def.summary,
            modifiers.join(", ")
        ));
    }
    out.push_str("\n| modifier | meaning |\n|----------|---------|\n");
    for def in MODIFIERS {
        out.push_str(&format!("| `{}` | {} |\n", def.keyword, def.summary));
    }
    out
}

impl Action {
    /// The action's definition.
    pub fn definition(&self) -> &'static ActionDef {
        definition(self.keyword())
            .unwrap_or_else(|| unreachable!("every action has a catalog entry (a test checks)"))
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
        f.write_str(&parts.join(" "))
    }
}

/// The action as the timeline shows it, e.g. `recv_until 5000000 B (timeout 25 ms)`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Socket(call) => call.fmt(f),
            Action::Control(control) => control.fmt(f),
            Action::Check(check) => check.fmt(f),
        }
    }
}

fn ms(d: &Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn timeout(t: &Option<Duration>) -> String {
    t.as_ref()
        .map(|d| format!(" (timeout {})", ms(d)))
        .unwrap_or_default()
}

impl fmt::Display for SocketCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketCall::Listen { addr, .. } => write!(f, "listen {addr}"),
            SocketCall::Accept { timeout: t } => write!(f, "accept{}", timeout(t)),
            SocketCall::Connect {
                addr,
                timeout: t,
                from,
                nonblocking,
                again,
            } => {
                f.write_str(if *again { "connect again " } else { "connect " })?;
                write!(f, "{addr}")?;
                if let Some(port) = from {
                    write!(f, " from port {port}")?;
                }
                if *nonblocking {
                    f.write_str(" (O_NONBLOCK)")?;
                }
                f.write_str(&timeout(t))
            }
            SocketCall::Send {
                payload: Payload::Text { text, repeat: 1 },
                timeout: t,
            } if text.len() <= 24 => write!(f, "send {text:?}{}", timeout(t)),
            SocketCall::Send {
                payload,
                timeout: t,
            } => write!(f, "send {} B{}", payload.len(), timeout(t)),
            SocketCall::Recv { timeout: t, .. } => write!(f, "recv{}", timeout(t)),
            SocketCall::RecvUntil {
                until: Until::Bytes(n),
                timeout: t,
            } => write!(f, "recv_until {n} B{}", timeout(t)),
            SocketCall::RecvUntil {
                until: Until::Pattern(p),
                timeout: t,
            } => write!(f, "recv_until {p:?}{}", timeout(t)),
            SocketCall::Shutdown { how } => {
                write!(f, "shutdown {}", format!("{how:?}").to_lowercase())
            }
            SocketCall::Close => f.write_str("close"),
            SocketCall::Abort => f.write_str("abort (SO_LINGER 0)"),
            SocketCall::Set(options) => write!(f, "set {options}"),
            SocketCall::SoError => f.write_str("getsockopt SO_ERROR"),
            SocketCall::Poll { events, timeout: t } => write!(f, "poll {events}{}", timeout(t)),
        }
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Control::Sleep(d) => write!(f, "sleep {}", ms(d)),
            Control::Mark(label) => write!(f, "mark {label:?}"),
            Control::Wait { label, .. } => write!(f, "wait {label:?}"),
            Control::Loop(Loop { body, times, .. }) => {
                write!(f, "loop of {} steps, {times} rounds at most", body.len())
            }
            Control::Signal(signal) => write!(f, "signal {signal} to the program"),
            Control::Fault(fault) => write!(f, "{fault}"),
            Control::Cut(cut) => write!(f, "{cut}"),
            Control::Lift(Lift::Named(name)) => write!(f, "lift {name:?}"),
            Control::Lift(Lift::All) => f.write_str("lift all"),
        }
    }
}

impl fmt::Display for Fault {
    /// `drop what client sends to server: SYN, without data, 50%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} what {} sends", self.verdict, self.from)?;
        if let Some(to) = self.to {
            write!(f, " to {to}")?;
        }
        let mut only = Vec::new();
        if let Some(flags) = self.flags {
            only.push(format!("{flags} segments"));
        }
        match self.data {
            Some(false) => only.push("without data".to_string()),
            Some(true) => only.push("with data".to_string()),
            None => {}
        }
        if let Some(p) = self.probability {
            only.push(format!("{}%", p * 100.0));
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
        match self.flags {
            Some(flags) => write!(f, "{flags} segments")?,
            None => f.write_str("segments")?,
        }
        match self.data {
            Some(true) => f.write_str(" with data")?,
            Some(false) => f.write_str(" without data")?,
            None => {}
        }
        if let Some(window) = self.window {
            write!(f, " advertising window {window}")?;
        }
        write!(f, " the {} sent", self.from)?;
        if let Some(to) = self.to {
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

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::AcceptQueue { expected, within } => {
                f.write_str("accept_queue")?;
                for (side, n) in expected {
                    write!(f, " {side} {n}")?;
                }
                f.write_str(&within_suffix(*within))
            }
            Check::Taken {
                name,
                packets,
                within,
            } => {
                write!(f, "taken by {name:?}")?;
                write!(f, "{}", packets.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            Check::Sent {
                segments,
                packets,
                within,
            } => {
                write!(f, "sent {segments}")?;
                write!(f, "{}", packets.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            Check::First {
                from,
                flags,
                within,
            } => {
                write!(f, "first {flags} from {from}")?;
                f.write_str(&within_suffix(*within))
            }
            Check::Released { within } => {
                f.write_str("released")?;
                f.write_str(&within_suffix(*within))
            }
            Check::Log {
                pattern,
                lines,
                within,
            } => {
                write!(f, "log {:?}", pattern.0.as_str())?;
                write!(f, "{}", lines.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            Check::Syscall {
                which,
                results,
                calls,
                within,
            } => {
                write!(f, "syscall {which}")?;
                if !results.is_empty() {
                    let names: Vec<String> = results.iter().map(ToString::to_string).collect();
                    write!(f, " expect {}", names.join(" or "))?;
                }
                write!(f, "{}", calls.suffix())?;
                f.write_str(&within_suffix(*within))
            }
            Check::State { expected, within } => {
                let states: Vec<String> = expected
                    .iter()
                    .map(|(socket, state)| format!("{socket} {}", state.name()))
                    .collect();
                write!(f, "state {}", states.join(", "))?;
                f.write_str(&within_suffix(*within))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_and_modifier_is_defined_once() {
        let mut keywords: Vec<&str> = CATALOG.iter().map(|d| d.keyword).collect();
        keywords.extend(MODIFIERS.iter().map(|m| m.keyword));
        let count = keywords.len();
        keywords.sort_unstable();
        keywords.dedup();
        assert_eq!(keywords.len(), count, "a keyword is defined twice");
        for def in CATALOG {
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
