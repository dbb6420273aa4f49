//! Sweeps: one request, hung up at every phase in every way.
//!
//! A `[[sweep]]` names a request, the **phases** of its exchange at which
//! the client hangs up, the **kinds** of hang-up, and the checks every cell
//! must keep. The parser expands it into one ordinary [`Case`](super::Case)
//! per (phase, kind) cell, named `<sweep>::<phase>::<kind>`, so everything
//! downstream (the runner, filters, nextest, JUnit, `diff`) treats a cell as
//! a case; [`Cell`] on the case says which cell it is, for the matrix.
//!
//! Each phase and kind here is the script a person would write by hand for
//! that moment: the steps are written out as suite text
//! ([`Phase::prefix`], [`Kind::steps`]) and read by the same parser as any
//! step, so a cell can do nothing a hand-written case could not, and its
//! report shows each generated step as text a user could copy.

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::Errno;

/// Where in the exchange the client hangs up.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The client's SYN reached the program, its SYN|ACK is lost: the
    /// client sits in SYN_SENT, the program's kernel in SYN_RECV, and the
    /// program has seen nothing.
    SynSent,
    /// The program is paused (SIGSTOP): the connection is complete and the
    /// request sent, waiting in its accept queue, so the hang-up is already
    /// queued behind the request when the program resumes and accepts.
    Queued,
    /// Connected, nothing sent.
    Connected,
    /// After this many bytes of the request.
    RequestBytes(u64),
    /// The whole request sent, nothing of the response read.
    RequestSent,
    /// The first byte of the response read.
    FirstByte,
    /// The response read up to its blank line (`\r\n\r\n`): an HTTP
    /// response's headers.
    Headers,
    /// This many bytes of the response read.
    ResponseBytes(u64),
    /// An HTTP response read exactly through the end of its k-th chunk
    /// (`Transfer-Encoding: chunked`; its data's closing CRLF), from 1:
    /// a client that leaves between two chunks of a stream.
    Chunk(u64),
    /// An HTTP response read exactly through its headers' blank line and
    /// this many bytes after it (as they come on the wire: a chunked
    /// body's framing counts).
    BodyBytes(u64),
    /// Connected, nothing sent, when the program is told to stop
    /// (SIGTERM): an idle keep-alive connection during its graceful
    /// shutdown.
    ShutdownIdle,
    /// The first byte of the response read when the program is told to
    /// stop (SIGTERM): a response under way during its graceful shutdown.
    ShutdownStreaming,
}

impl Phase {
    /// Its name in test names: `request_bytes_5`, `first_byte`.
    pub fn name(&self) -> String {
        match self {
            Phase::SynSent => "syn_sent".into(),
            Phase::Queued => "queued".into(),
            Phase::Connected => "connected".into(),
            Phase::RequestBytes(n) => format!("request_bytes_{n}"),
            Phase::RequestSent => "request_sent".into(),
            Phase::FirstByte => "first_byte".into(),
            Phase::Headers => "headers".into(),
            Phase::ResponseBytes(n) => format!("response_bytes_{n}"),
            Phase::Chunk(n) => format!("chunk_{n}"),
            Phase::BodyBytes(n) => format!("body_bytes_{n}"),
            Phase::ShutdownIdle => "shutdown_idle".into(),
            Phase::ShutdownStreaming => "shutdown_streaming".into(),
        }
    }

    /// The phases written as a bare name in a sweep's `phases`.
    pub const NAMED: [(&'static str, Phase); 8] = [
        ("syn_sent", Phase::SynSent),
        ("queued", Phase::Queued),
        ("connected", Phase::Connected),
        ("request_sent", Phase::RequestSent),
        ("first_byte", Phase::FirstByte),
        ("headers", Phase::Headers),
        ("shutdown_idle", Phase::ShutdownIdle),
        ("shutdown_streaming", Phase::ShutdownStreaming),
    ];

    /// Whether the phase puts a fault on the network or signals the
    /// program: its cells then start a program of their own, in a
    /// namespace of their own, whatever the suite's program's scope.
    pub fn needs_own_program(&self) -> bool {
        matches!(
            self,
            Phase::SynSent | Phase::Queued | Phase::ShutdownIdle | Phase::ShutdownStreaming
        )
    }

    /// Whether the program is told to stop in this phase: it then serves
    /// no fresh request after the cell (`serving` does not apply), and
    /// its exit is its answer to the signal, not a crash.
    pub fn stops_the_program(&self) -> bool {
        matches!(self, Phase::ShutdownIdle | Phase::ShutdownStreaming)
    }

    /// Whether `kind` can hang up at this phase: a socket in SYN_SENT
    /// cannot be read from or half-closed, so only the ways of leaving
    /// that need no connection apply there.
    pub fn takes(&self, kind: Kind) -> bool {
        match self {
            Phase::SynSent => matches!(
                kind,
                Kind::Close | Kind::Abort | Kind::VanishThenReset | Kind::Reject
            ),
            _ => true,
        }
    }

    /// The client's steps up to the moment of the hang-up, as suite text.
    pub fn prefix(&self, sweep: &SweepPlan, kind: Kind, out: &mut String) {
        let port = sweep.port;
        let wait = words(sweep.wait);
        if kind == Kind::StopReading {
            // A small receive buffer, so the window closes after a few
            // kilobytes rather than megabytes.
            out.push_str("{ set = { rcvbuf = 4096 } },\n");
        }
        match self {
            Phase::SynSent => {
                out.push_str("{ drop = \"server\", flags = \"SYN|ACK\", name = \"handshake\" },\n");
                let _ = writeln!(
                    out,
                    "{{ connect = {port}, nonblocking = true, expect = \"EINPROGRESS\" }},"
                );
                // The SYN|ACK really lost: the client is still connecting.
                out.push_str("{ taken = \"handshake\", within = \"5s\" },\n");
                return;
            }
            Phase::Queued => {
                out.push_str("{ signal = \"SIGSTOP\" },\n");
                let _ = writeln!(out, "{{ connect = {port} }},");
                send(out, &sweep.request);
                out.push_str("{ accept_queue = { server = 1 }, within = \"5s\" },\n");
                return;
            }
            _ => {}
        }
        let _ = writeln!(out, "{{ connect = {port} }},");
        match self {
            Phase::Connected => {}
            Phase::RequestBytes(n) => {
                let cut = usize::try_from(*n).unwrap_or(usize::MAX);
                send(out, sweep.request.get(..cut).unwrap_or(&sweep.request));
            }
            Phase::RequestSent => send(out, &sweep.request),
            Phase::FirstByte => {
                send(out, &sweep.request);
                let _ = writeln!(out, "{{ recv_until = 1, timeout = \"{wait}\" }},");
            }
            Phase::Headers => {
                send(out, &sweep.request);
                let _ = writeln!(
                    out,
                    "{{ recv_until = \"\\r\\n\\r\\n\", timeout = \"{wait}\" }},"
                );
            }
            Phase::ResponseBytes(n) => {
                send(out, &sweep.request);
                let _ = writeln!(out, "{{ recv_until = {n}, timeout = \"{wait}\" }},");
            }
            Phase::Chunk(n) => {
                send(out, &sweep.request);
                let _ = writeln!(
                    out,
                    "{{ recv_until = {{ chunks = {n} }}, timeout = \"{wait}\" }},"
                );
            }
            Phase::BodyBytes(n) => {
                send(out, &sweep.request);
                let _ = writeln!(
                    out,
                    "{{ recv_until = {{ body = {n} }}, timeout = \"{wait}\" }},"
                );
            }
            Phase::ShutdownIdle => out.push_str("{ signal = \"SIGTERM\" },\n"),
            Phase::ShutdownStreaming => {
                send(out, &sweep.request);
                let _ = writeln!(out, "{{ recv_until = 1, timeout = \"{wait}\" }},");
                out.push_str("{ signal = \"SIGTERM\" },\n");
            }
            Phase::SynSent | Phase::Queued => {}
        }
    }

    /// The client's steps right after the hang-up that belong to the
    /// phase: a paused program resumes.
    pub fn suffix(&self, out: &mut String) {
        if let Phase::Queued = self {
            out.push_str("{ signal = \"SIGCONT\" },\n");
        }
    }
}

/// How the client hangs up.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `close(2)`: a FIN, or a reset when unread data is queued (the
    /// kernel's choice).
    Close,
    /// Close with `SO_LINGER {on, 0}`: a reset.
    Abort,
    /// Reads with a per-read timeout (the sweep's `hold`) until one
    /// expires (or the response ends), then closes: a client that gave up.
    Timeout,
    /// `shutdown(SHUT_WR)`, then goes on reading for `hold`, then closes.
    HalfClose,
    /// Stops reading for `hold` (its window fills), then closes.
    StopReading,
    /// From now on everything the client sends is lost, and it never
    /// comes back: the program's retransmissions go unanswered.
    Vanish,
    /// As [`Kind::Vanish`], and the client's host forgets the connection
    /// (it resets into a void); after `hold` the network comes back and
    /// its kernel answers the program's next segment with a reset.
    VanishThenReset,
    /// From now on the network answers what the program sends with a TCP
    /// reset (a firewall's reject).
    Reject,
}

impl Kind {
    /// Every kind, in the order a matrix shows them.
    pub const ALL: [Kind; 8] = [
        Kind::Close,
        Kind::Abort,
        Kind::Timeout,
        Kind::HalfClose,
        Kind::StopReading,
        Kind::Vanish,
        Kind::VanishThenReset,
        Kind::Reject,
    ];

    /// Its name, as a sweep writes it and test names show it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Close => "close",
            Kind::Abort => "abort",
            Kind::Timeout => "timeout",
            Kind::HalfClose => "half_close",
            Kind::StopReading => "stop_reading",
            Kind::Vanish => "vanish",
            Kind::VanishThenReset => "vanish_then_reset",
            Kind::Reject => "reject",
        }
    }

    /// The kind a sweep names `name`.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether it puts a fault on the network: its cells then start a
    /// program of their own (a fault is a rule of the whole namespace).
    pub fn needs_own_program(self) -> bool {
        matches!(self, Kind::Vanish | Kind::VanishThenReset | Kind::Reject)
    }

    /// Whether a fault is still in place after the hang-up at `phase`: a
    /// fresh connection then needs it lifted first.
    pub fn leaves_a_fault(self, phase: &Phase) -> bool {
        match self {
            Kind::VanishThenReset => false,
            Kind::Vanish | Kind::Reject => true,
            _ => *phase == Phase::SynSent,
        }
    }

    /// The client's steps of the hang-up itself, as suite text.
    pub fn steps(self, sweep: &SweepPlan, phase: &Phase, out: &mut String) {
        let hold = words(sweep.hold);
        let any = "expect = [\"ok\", \"EAGAIN\", \"EOF\", \"ECONNRESET\"]";
        match self {
            Kind::Close => out.push_str("\"close\",\n"),
            Kind::Abort => out.push_str("\"abort\",\n"),
            Kind::Timeout => {
                // Rounds enough to read a long response chunk by chunk;
                // the case's deadline bounds them too.
                let _ = writeln!(
                    out,
                    "{{ loop = [{{ recv = true, timeout = \"{hold}\", {any} }}], times = 1000, until = [\"EAGAIN\", \"EOF\", \"ECONNRESET\"] }},"
                );
                out.push_str("\"close\",\n");
            }
            Kind::HalfClose => {
                out.push_str("{ shutdown = \"write\" },\n");
                let _ = writeln!(
                    out,
                    "{{ loop = [{{ recv = true, timeout = \"{hold}\", {any} }}], times = 1000, until = [\"EAGAIN\", \"EOF\", \"ECONNRESET\"] }},"
                );
                out.push_str("\"close\",\n");
            }
            Kind::StopReading => {
                let _ = writeln!(out, "{{ sleep = \"{hold}\" }},");
                out.push_str("\"close\",\n");
            }
            Kind::Vanish => out.push_str("{ drop = \"client\", name = \"vanish\" },\n"),
            Kind::VanishThenReset => {
                out.push_str("{ drop = \"client\", name = \"vanish\" },\n");
                out.push_str("\"abort\",\n");
                let _ = writeln!(out, "{{ sleep = \"{hold}\" }},");
                out.push_str("{ lift = \"all\" },\n");
            }
            Kind::Reject => {
                out.push_str("{ reject = \"server\", with = \"tcp-reset\", name = \"reject\" },\n");
                if *phase == Phase::SynSent {
                    // The SYN|ACK's next retransmission meets the reject,
                    // not the drop that kept the handshake from ending.
                    out.push_str("{ lift = \"handshake\" },\n");
                }
            }
        }
    }
}

/// Which cell of which sweep a case is.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Cell {
    /// The sweep's name.
    pub sweep: String,
    /// Where the client hung up.
    pub phase: Phase,
    /// How.
    pub kind: Kind,
}

impl Cell {
    /// The case's name: `<sweep>::<phase>::<kind>`.
    pub fn case_name(&self) -> String {
        format!(
            "{}::{}::{}",
            self.sweep,
            self.phase.name(),
            self.kind.name()
        )
    }
}

/// What a sweep's cells are made of, read from its `[[sweep]]` table.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// The port the program listens on.
    pub port: u16,
    /// The request, as text.
    pub request: String,
    /// How long a kind waits (`timeout`'s per-read timeout, how long
    /// `half_close` reads, `stop_reading` stops, `vanish_then_reset` stays
    /// away).
    pub hold: Duration,
    /// How long a phase's read may wait for the response to reach it.
    pub wait: Duration,
    /// A fresh request after every cell, when the sweep asks whether the
    /// program still serves.
    pub serving: Option<Serving>,
    /// The errnos the program's calls on the cell's connection may fail
    /// with (`errnos`), when the sweep declares that invariant.
    pub errnos: Option<Vec<Errno>>,
}

/// "It keeps serving": after the cell, a fresh connection sends the
/// request and reads the response up to `until`.
#[derive(Debug, Clone)]
pub struct Serving {
    /// A byte count, or text, as `recv_until` takes it (suite text).
    pub until: String,
    /// A pattern the response must match, as suite text, if any.
    pub matches: Option<String>,
    /// How long each read may wait.
    pub within: Duration,
}

impl SweepPlan {
    /// The sweep's `errnos` invariant as a step, after the user's checks
    /// (`keep`, whose `released` lets the program's calls on the
    /// connection end first) and before any fresh connection: an
    /// `errnos` check judges every call the program made on the cell's
    /// connection, from its accept on.
    pub fn errnos_step(&self, out: &mut String) {
        let Some(errnos) = &self.errnos else {
            return;
        };
        let names: Vec<String> = errnos.iter().map(|e| format!("\"{}\"", e.name())).collect();
        let _ = writeln!(out, "{{ errnos = [{}] }},", names.join(", "));
    }

    /// The steps after the user's checks: every fault lifted (a fresh
    /// connection must reach the program), then the fresh request.
    pub fn serving_steps(&self, faulted: bool, out: &mut String) {
        let Some(serving) = &self.serving else {
            return;
        };
        if faulted {
            out.push_str("{ lift = \"all\" },\n");
        }
        let _ = writeln!(out, "{{ connect = {} }},", self.port);
        send(out, &self.request);
        let matches = serving
            .matches
            .as_ref()
            .map_or_else(String::new, |m| format!(", matches = {m}"));
        let _ = writeln!(
            out,
            "{{ recv_until = {}, timeout = \"{}\"{matches} }},",
            serving.until,
            words(serving.within)
        );
        out.push_str("\"close\",\n");
    }
}

/// `{ send = "..." }` with `text` quoted as TOML quotes it.
fn send(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    let _ = writeln!(out, "{{ send = {} }},", quoted(text));
}

/// `text` as a TOML basic string on one line: `\\`, `\"` and control
/// characters escaped (TOML's own escapes, `\uXXXX` for the rest).
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration as a suite writes it, in milliseconds (`"300ms"`).
fn words(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_test_names_show() {
        let cell = Cell {
            sweep: "get".into(),
            phase: Phase::RequestBytes(5),
            kind: Kind::VanishThenReset,
        };
        assert_eq!(cell.case_name(), "get::request_bytes_5::vanish_then_reset");
        assert_eq!(Phase::Chunk(2).name(), "chunk_2");
        assert_eq!(Phase::BodyBytes(1000).name(), "body_bytes_1000");
        for kind in Kind::ALL {
            assert_eq!(Kind::named(kind.name()), Some(kind));
        }
    }

    #[test]
    fn text_is_quoted_as_toml_quotes_it() {
        assert_eq!(quoted("GET /\r\n\"x\"\\"), r#""GET /\r\n\"x\"\\""#);
        assert_eq!(quoted("\u{1b}[2J\u{7f}"), r#""\u001B[2J\u007F""#);
        // What it writes, TOML reads back as it was.
        let text = "a\u{0}b\"\\\n\u{85}";
        let read: toml::Value = toml::from_str(&format!("v = {}", quoted(text))).expect("toml");
        assert_eq!(read["v"].as_str(), Some(text));
    }
}
