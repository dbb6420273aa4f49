//! The one event record of a case: everything that happened, each fact a
//! typed event, stamped on the case's clock.
//!
//! A [`Recorder`] is a cheap, clonable handle: every thread of a case (each
//! side, the case's supervisor, a program's output readers and tracer, the
//! packet capture) writes through its own clone, stamping events with the
//! `Instant` they happened at; the record turns that into time since the
//! case started. When the case ends, [`Recorder::finish`] hands back the
//! [`Timeline`], oldest event first.
//!
//! # Facts, not sentences
//!
//! An event carries what was observed as data: a call's action and
//! arguments and its outcome, a socket's state, a count, a packet's flags.
//! Nothing here is text meant for people, but for what came from outside
//! as text (a program's output line, an error the kernel's `strerror`
//! words). Text is made only by the writers in [`crate::report`] (the
//! terminal timeline, JUnit, JSON), and what reads a report back
//! ([`crate::report::diff`]) reads these types, never a sentence. The JSON
//! report writes these types as they are (see `docs/report-format.md`);
//! that is why every type here is `Deserialize` and `JsonSchema` too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod kept;
pub mod leftovers;

use kept::Events;
pub use kept::{Flood, Kept};

use crate::fault::DelayTrouble;
use crate::model::syscall::Which;
use crate::model::units::{millis, millis_option};
use crate::model::{
    CallResult, Errno, Exit, FlagMatch, Link, Outcome, Port, Side, Socket, TcpFlags, TcpState,
};
use crate::suite::{Fault, HostCut, LineCount, Segments, SocketCall};

/// Everything that happened in a case, in the order it happened.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Timeline {
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// One thing that happened, and when (from the start of the case).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Time since the case's scripts started.
    #[serde(rename = "at_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub at: Duration,
    /// Whose event; none for the case as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which step of a side's script an event belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct StepId {
    /// 1-based position in the side's script (of the loop, for a step in
    /// a loop's body).
    pub index: usize,
    /// For a step in a loop's body: its 1-based position in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<usize>,
    /// For a step in a loop's body: the round (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

/// How reports name a step: `5`, or in a loop `1.6, round 2` (the loop's
/// step 1, its body's step 6, its second round).
impl std::fmt::Display for StepId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.index)?;
        if let Some(body) = self.body {
            write!(f, ".{body}")?;
        }
        if let Some(round) = self.round {
            write!(f, ", round {round}")?;
        }
        Ok(())
    }
}

impl StepId {
    /// The step at 1-based `index` of a script.
    pub fn at(index: usize) -> StepId {
        StepId {
            index,
            body: None,
            round: None,
        }
    }
}

/// Where a state reading came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StateSource {
    /// The kernel's socket table, by 4-tuple (listed, or gone).
    SockDiag,
    /// `TCP_INFO` on a socket the kernel no longer lists but the side still
    /// holds (reset into CLOSE).
    TcpInfo,
    /// The side had made no connection there yet, so there was nothing to
    /// ask the kernel about.
    NoConnectionYet,
}

/// Which of a program's output streams a line came from.
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
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

impl Stream {
    /// `out` or `err`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}

/// A line a program printed, without its newline (invalid UTF-8
/// replaced).
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct OutputLine {
    /// Which stream.
    pub stream: Stream,
    /// The line, up to `sut::LINE_CAP` bytes of it.
    pub line: String,
    /// How many bytes of the line were left out past the cap (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut: u64,
}

/// `out| the line`, and for a line cut at the cap `out| the line… (1234
/// more bytes left out)`: how a program's line reads in every text
/// report (`program.log`, the timeline, a failure's last output).
impl std::fmt::Display for OutputLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_output(f, self.stream, &self.line, self.cut)
    }
}

/// Writes a program's line as [`OutputLine`]'s Display does.
pub fn write_output(
    f: &mut impl std::fmt::Write,
    stream: Stream,
    line: &str,
    cut: u64,
) -> std::fmt::Result {
    write!(f, "{}| {line}", stream.name())?;
    if cut > 0 {
        write!(f, "… ({cut} more bytes left out)")?;
    }
    Ok(())
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A fault a step put on the network: packets dropped, rejected or
/// delayed by rules, or a host cut off.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum FaultSpec {
    /// Rules on the packets a side sends.
    Packets(Fault),
    /// A host cut off from the other.
    Host(HostCut),
}

impl FaultSpec {
    /// The name `lift` and `taken` know it by, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            FaultSpec::Packets(fault) => fault.name.as_deref(),
            FaultSpec::Host(cut) => cut.name.as_deref(),
        }
    }
}

/// A delay that held a packet, and for how long.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct HeldBy {
    /// The delay.
    pub fault: FaultSpec,
    /// How long it held the packet.
    #[serde(rename = "for_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub held: Duration,
}

/// A TCP segment, as a check names one in what it saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SegmentSeen {
    /// When it arrived, from the start of the case.
    #[serde(rename = "at_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub at: Duration,
    /// Its sender's side, when the case tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// Its sender's address.
    pub from: SocketAddr,
    /// Its flags.
    pub flags: TcpFlags,
    /// The bytes of data it carries.
    pub len: u32,
    /// The window it advertises, unscaled.
    pub window: u16,
}

/// A TCP socket a program holds, as its fd table and the kernel's socket
/// table say.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct HeldSocket {
    /// The process that holds it, when not the program itself but a
    /// process it started (a worker), as the host numbers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its fd number in that process.
    pub fd: i32,
    /// Its state.
    pub state: TcpState,
    /// Its local address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    /// Its peer's (none once it is closed or reset: the kernel forgets
    /// it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<SocketAddr>,
    /// For a socket reset into CLOSE: the connection it was (its local
    /// and peer addresses), from the program's traced calls or the cookie
    /// hangup noted when the connection was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<(SocketAddr, SocketAddr)>,
    /// Whether it is one of the case's connections: its peer (or the peer
    /// it was) is an address of a script's socket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub of_the_case: bool,
}

impl HeldSocket {
    /// Whether a `released` check counts it against the program: one of
    /// the case's connections, in any state; or any socket left in
    /// CLOSE_WAIT (its peer closed, the program did not) or reset into
    /// CLOSE (the kernel forgot it, the program did not). A connection the
    /// program keeps open to something else (a database, an upstream) is
    /// its own business.
    pub fn is_held_against(&self) -> bool {
        self.of_the_case || matches!(self.state, TcpState::CloseWait | TcpState::Close)
    }
}

/// An fd a program has open, and what it is.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct OpenFd {
    /// The process that holds it, when not the program itself but a
    /// process it started, as the host numbers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its number.
    pub fd: i32,
    /// What it is, as /proc links it (`/usr/lib/jvm/.../modules`,
    /// `pipe:[4242]`, `anon_inode:[eventpoll]`), a socket by its protocol
    /// (`socket TCP`, `socket UNIX-STREAM`); cut at 256 characters.
    pub target: String,
}

impl OpenFd {
    /// The most characters of a target kept.
    pub const TARGET_KEPT: usize = 256;
}

/// Connections waiting in one of a program's listeners' accept queue:
/// the kernel holds them for the program until it accepts them.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct QueuedAt {
    /// The listener's fd.
    pub fd: i32,
    /// Its address.
    pub local: SocketAddr,
    /// How many connections wait.
    pub waiting: u32,
}

/// A socket call a program under test made, as its tracer saw it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TracedSyscall {
    /// The call, as strace names it (`writev`, `accept4`).
    pub syscall: String,
    /// The thread that made it, as the program's PID namespace numbers it.
    pub tid: i32,
    /// The socket's fd (for an accept, the listener's).
    pub fd: i64,
    /// For an accept that succeeded: the connection's fd it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<i64>,
    /// How it ended: bytes, EOF, or the errno the kernel returned.
    pub result: CallResult,
    /// How long it took from its entry to its return (a blocking read or
    /// accept, long).
    #[serde(rename = "took_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub took: Duration,
    /// The socket's own address (for an accept, the connection's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    /// Its peer's, while the kernel knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<SocketAddr>,
}

/// A program's traced socket call that failed, as a check names it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FailedSyscall {
    /// The call, as strace names it (`writev`).
    pub syscall: String,
    /// The socket's fd in the program.
    pub fd: i64,
    /// The errno it returned.
    pub outcome: Outcome,
}

/// What a program under test had not done yet when hangup gave up
/// waiting for it to settle before stopping it (see
/// [`EventKind::ProgramSettle`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum Unsettled {
    /// Its end of a connection a script closed was still ESTABLISHED,
    /// the script's end still in the kernel: the script's FIN had not
    /// reached it yet (a fault took it, and it waits for a
    /// retransmission).
    Connection {
        /// The program's end.
        local: SocketAddr,
        /// The script's end.
        remote: SocketAddr,
    },
    /// A thread of it (or of a process it started) was not asleep.
    Thread {
        /// Its id, as the host numbers it.
        tid: i32,
        /// Its state, as `/proc/<pid>/task/<tid>/stat` gives it (`R`,
        /// `D`, ...).
        state: String,
    },
    /// What it wrote to its stdout or stderr was not yet all read.
    Output,
}

/// Why a case stopped before its scripts were done, other than a failed
/// expectation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It overran its deadline.
    Deadline,
    /// The run was interrupted (SIGINT, SIGTERM).
    Interrupted,
}

/// What hangup could not do for a case, beside its verdict: its report
/// lacks something, and says so.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    /// The packet capture could not be started: no packets in the report.
    CaptureNotStarted,
    /// The packet capture failed at the end: no packets in the report.
    CaptureFailed,
    /// `capture.pcap` could not be written.
    PcapNotWritten,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A socket call a script made, with the kernel's result; stamped when
    /// it began.
    Call {
        /// Its step.
        step: StepId,
        /// The call, its action and arguments.
        call: SocketCall,
        /// For the proxy's calls on a connection: which one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<Link>,
        /// How long the call took.
        #[serde(rename = "took_ms", with = "millis")]
        #[schemars(with = "f64")]
        took: Duration,
        /// How long, in all, the threads of the scripts' sides ran on a
        /// CPU or waited on a run queue for one while it ran, as the kernel
        /// counts it (`/proc/<tid>/schedstat`): the part of `took` that was
        /// work and the machine's load, which `hangup diff` allows when it
        /// compares durations (with the program's, `program_busy`).
        /// Measured for the calls whose durations are judged or compared:
        /// those outside a loop, and those with a timing check (for which
        /// the program's threads count too).
        #[serde(
            rename = "busy_ms",
            with = "millis",
            default,
            skip_serializing_if = "Duration::is_zero"
        )]
        #[schemars(with = "f64")]
        busy: Duration,
        /// How it ended.
        result: CallResult,
    },
    /// A socket call still blocked when the case ended (another side
    /// failed, or the deadline passed): hangup interrupted it, so it has no
    /// result of the kernel's; stamped when it began.
    InFlight {
        /// Its step.
        step: StepId,
        /// The call.
        call: SocketCall,
        /// For the proxy's calls on a connection: which one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<Link>,
        /// How long it had been blocked.
        #[serde(rename = "took_ms", with = "millis")]
        #[schemars(with = "f64")]
        took: Duration,
    },
    /// A kernel state read for one of the case's connections.
    State {
        /// Which socket (the proxy has two).
        socket: Socket,
        /// The state.
        state: TcpState,
        /// Where it came from.
        source: StateSource,
        /// The step that checked it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<StepId>,
        /// The side whose step checked it (any side may check any
        /// socket's state).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Side>,
        /// How many times a `within` check sampled the kernel before this
        /// reading (1 for a check without `within`).
        samples: u32,
        /// A reading a `within` check saw on the way, when the state changed
        /// between samples; not the check's evidence (its last reading is),
        /// and left out of `hangup diff`, since how many a run sees is
        /// timing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        on_the_way: bool,
    },
    /// A line a program under test printed.
    Output {
        /// Which stream.
        stream: Stream,
        /// The line, without its newline (invalid UTF-8 replaced), up to
        /// `sut::LINE_CAP` bytes of it.
        line: String,
        /// How many bytes of the line were left out past the cap (0:
        /// none).
        #[serde(default, skip_serializing_if = "is_zero")]
        cut: u64,
    },
    /// Events of a kind a case records without bound (a program's output
    /// lines, its traced calls, a loop's rounds) that the record left out
    /// here, past the first and the last it keeps of them (see
    /// [`Flood`]); a program's lines are in `program.log`, up to its cap.
    /// Stamped at the first of them.
    LeftOut {
        /// Which kind.
        of: Flood,
        /// How many events (for output, lines).
        events: u64,
        /// For output, how many bytes the lines held, newlines aside.
        #[serde(default, skip_serializing_if = "is_zero")]
        bytes: u64,
    },
    /// A TCP segment the case's capture saw arrive (the event's side is
    /// its sender's, when the case tells).
    Packet {
        /// Its sender's address.
        from: SocketAddr,
        /// Its receiver's address.
        to: SocketAddr,
        /// Its receiver's side, when the case tells.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_side: Option<Side>,
        /// Its flags, `SYN|ACK`.
        flags: TcpFlags,
        /// Its sequence number, from the sender's first (its SYN's) as 0.
        seq: u32,
        /// Its acknowledgement number on the same scale of the other
        /// direction (with ACK).
        ack: u32,
        /// The window it advertises, unscaled.
        window: u16,
        /// The bytes of data it carries.
        len: u32,
        /// The fault that took it (dropped or rejected it), as the kernel
        /// logged it, when one did: it never reached its receiver.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lost_to: Option<FaultSpec>,
        /// The delay that held it, and for how long, as hangup let it go:
        /// it reached its receiver that much later than the capture saw it
        /// (the capture sees a packet before the input hook).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held: Option<HeldBy>,
    },
    /// The program under test was started.
    ProgramStarted {
        /// Its command, as it was run (each argument cut at 1 KiB).
        argv: Vec<String>,
        /// Its pid, as the host numbers it.
        pid: i32,
    },
    /// The program under test became ready: its `ready` line printed, or
    /// its listener listed by the kernel.
    ProgramReady {
        /// The port it serves or connects to.
        port: u16,
        /// The side it plays.
        role: Side,
        /// Whether it serves every case of its suite (`scope = "suite"`).
        for_suite: bool,
    },
    /// A program that serves every case of its suite began serving this
    /// one.
    ProgramServes {
        /// Its pid.
        pid: i32,
        /// Its port.
        port: u16,
    },
    /// How long, in all, the threads of every process in the program's
    /// PID namespace ran on a CPU or waited on a run queue for one, from
    /// its being ready (a client's from its start, which the scripts wait
    /// for; serving the whole suite, from this case's turn) to the
    /// scripts' end, as `/proc/<tid>/schedstat` counts it:
    /// its work and the machine's load, which `hangup diff` allows when it
    /// compares a call's duration (a call of the scripts waits on it). Read
    /// twice a case, not per call: a runtime's threads are many (a JVM's,
    /// fifty), and reading them all around each call delayed the scripts
    /// by tens of milliseconds a step under load.
    ProgramBusy {
        /// That time.
        #[serde(rename = "busy_ms", with = "millis")]
        #[schemars(with = "f64")]
        busy: Duration,
    },
    /// Before the case stopped the program under test: how long hangup
    /// waited for it to settle (the kernel had shown it the end of every
    /// connection the scripts closed, and every thread of it was asleep,
    /// so what it does about those ends it has done and printed), or
    /// that it gave up waiting, and on what. Judges nothing: it says why
    /// a line the program prints about a hang-up is on the record.
    ProgramSettle {
        /// How long hangup waited.
        #[serde(rename = "waited_ms", with = "millis")]
        #[schemars(with = "f64")]
        waited: Duration,
        /// What it still waited on when its limit passed; absent when the
        /// program settled.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gave_up_on: Option<Unsettled>,
    },
    /// The program under test ended.
    ProgramExited {
        /// How.
        exit: Exit,
    },
    /// A `signal` step sent the program a signal.
    Signal {
        /// Its step.
        step: StepId,
        /// The signal's name, `SIGTERM`.
        signal: String,
    },
    /// After a `SIGSTOP`: how long until every thread of the program was
    /// stopped, or that not all were within the wait.
    ProgramPaused {
        /// Its step.
        step: StepId,
        /// How long hangup waited.
        #[serde(rename = "waited_ms", with = "millis")]
        #[schemars(with = "f64")]
        waited: Duration,
        /// Whether every thread was stopped by then.
        stopped: bool,
    },
    /// A side reached a `mark`.
    Mark {
        /// Its step.
        step: StepId,
        /// The label.
        label: String,
    },
    /// A loop ended early: a call's outcome was one of its `until`.
    LoopEnded {
        /// The loop's step.
        step: StepId,
        /// The round it ended in.
        round: u32,
    },
    /// A `log` check's count of the program's output lines.
    LogCount {
        /// Its step.
        step: StepId,
        /// The regular expression.
        pattern: String,
        /// How many lines matched.
        count: u64,
        /// How many the check asked for.
        wanted: LineCount,
    },
    /// A `syscall` check's count of the program's traced calls on its end
    /// of the connection.
    SyscallCount {
        /// Its step.
        step: StepId,
        /// Which calls.
        which: Which,
        /// The outcomes counted; none: any.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        results: Vec<Outcome>,
        /// How many matched.
        count: u64,
        /// How many the check asked for.
        wanted: LineCount,
    },
    /// An `errnos` check's reading of the program's traced calls on its
    /// end of the connection: the calls that failed with an errno outside
    /// the allowed set (none: the invariant held).
    Errnos {
        /// Its step.
        step: StepId,
        /// The errnos the check allowed (EAGAIN and EINTR always are).
        allowed: Vec<Errno>,
        /// How many of the program's calls on the connection had returned.
        calls: u64,
        /// Those that failed with another errno, in the order they returned.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        outside: Vec<FailedSyscall>,
    },
    /// A `taken` check's count of the packets a fault took.
    TakenCount {
        /// Its step.
        step: StepId,
        /// The fault's name.
        fault: String,
        /// How many packets, by the kernel's counter.
        count: u64,
        /// How many the check asked for.
        wanted: LineCount,
    },
    /// A `sent` check's count of the segments a side sent.
    SentCount {
        /// Its step.
        step: StepId,
        /// Which segments.
        segments: Segments,
        /// How many, as the capture saw them arrive.
        count: u64,
        /// How many the check asked for.
        wanted: LineCount,
    },
    /// A `first` check: the first segment with these flags.
    FirstSegment {
        /// Its step.
        step: StepId,
        /// The flags it looked for.
        flags: FlagMatch,
        /// The first such segment, if one came.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first: Option<SegmentSeen>,
    },
    /// An `accept_queue` check: connections waiting in a side's listener.
    AcceptQueue {
        /// Its step.
        step: StepId,
        /// Whose listener.
        of: Side,
        /// How many wait, as the kernel counts them.
        waiting: u32,
    },
    /// What the program under test held, as a `released` check read its
    /// fd table: every TCP socket but its listeners, the connections
    /// waiting in its listeners, and its fds.
    Held {
        /// Its step.
        step: StepId,
        /// The TCP sockets it holds, listeners aside.
        sockets: Vec<HeldSocket>,
        /// Connections its listeners hold for it, not yet accepted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        queued: Vec<QueuedAt>,
        /// How many fds it and the processes it started have open.
        fds: usize,
        /// How many it had when it became ready, when that could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fds_at_ready: Option<usize>,
        /// The fds it has now that it did not have when it became ready
        /// (at most 16): what grew, reported beside the verdict, not
        /// judged (a runtime opens some lazily: a JVM's NIO opens a
        /// socketpair on its first request).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        new_fds: Vec<OpenFd>,
    },
    /// A fault was put in place.
    FaultPut {
        /// Its step.
        step: StepId,
        /// The fault.
        fault: FaultSpec,
        /// The TCP ports its rules match (none for a cut host).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ports: Vec<Port>,
        /// How many rules it took in the kernel.
        rules: usize,
    },
    /// A `lift` took a fault away.
    FaultLifted {
        /// Its step.
        step: StepId,
        /// The fault.
        fault: FaultSpec,
        /// The packets it took, by the kernel's counter (none for a cut).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took: Option<u64>,
    },
    /// A fault was still in place when the scripts ended; it was taken
    /// away then.
    FaultAtEnd {
        /// The fault.
        fault: FaultSpec,
        /// The packets it took, by the kernel's counter (none for a cut,
        /// or when it could not be read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took: Option<u64>,
        /// Why its count could not be read, or a cut host could not be
        /// restored, as the system worded it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Something went wrong while delays held packets.
    Delays {
        /// What.
        trouble: DelayTrouble,
    },
    /// The case stopped before its scripts were done: its deadline, or
    /// the run's interruption.
    Stopped {
        /// Why.
        why: StopReason,
    },
    /// Where a side was when the case stopped.
    Whereabouts {
        /// The step it was on.
        step: StepId,
        /// The step as written.
        source: String,
        /// Where it is written (`file:line:col`).
        location: String,
        /// How long its call had been in flight, if it was in one.
        #[serde(
            default,
            rename = "in_flight_ms",
            with = "millis_option",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<f64>")]
        in_flight: Option<Duration>,
    },
    /// The timeline shows only the first packets the capture saw.
    PacketsCut {
        /// How many it shows.
        shown: usize,
        /// How many the capture kept (all in `capture.pcap`).
        captured: usize,
    },
    /// The capture kept only so many packets and counted the rest.
    CaptureFull {
        /// How many it kept.
        kept: usize,
        /// How many more it counted.
        dropped: u64,
    },
    /// The kernel's log of the packets the faults took overflowed: some
    /// lost packets are not marked as lost.
    LossesUntold,
    /// Something hangup could not do for the case's report.
    Shortfall {
        /// What.
        what: Shortfall,
        /// The error, as the system worded it.
        error: String,
    },
    /// A socket call of the program under test, as its tracer saw it;
    /// stamped when it returned.
    Traced {
        /// The call.
        call: TracedSyscall,
    },
    /// An event of a kind this version of hangup does not know, read from
    /// a report a later one wrote: every writer and `hangup diff` skip it
    /// (a new kind of event is not a new format; see `report::format`).
    /// Never recorded.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl EventKind {
    /// The step the event belongs to, if it belongs to one.
    pub fn step(&self) -> Option<StepId> {
        match self {
            EventKind::Call { step, .. }
            | EventKind::InFlight { step, .. }
            | EventKind::Signal { step, .. }
            | EventKind::ProgramPaused { step, .. }
            | EventKind::Mark { step, .. }
            | EventKind::LoopEnded { step, .. }
            | EventKind::LogCount { step, .. }
            | EventKind::SyscallCount { step, .. }
            | EventKind::Errnos { step, .. }
            | EventKind::TakenCount { step, .. }
            | EventKind::SentCount { step, .. }
            | EventKind::FirstSegment { step, .. }
            | EventKind::AcceptQueue { step, .. }
            | EventKind::Held { step, .. }
            | EventKind::FaultPut { step, .. }
            | EventKind::FaultLifted { step, .. }
            | EventKind::Whereabouts { step, .. } => Some(*step),
            EventKind::State { step, .. } => *step,
            _ => None,
        }
    }
}

/// A handle on a case's record; clones write to the same record.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Arc<OnceLock<Instant>>,
    events: Arc<Mutex<Events>>,
    artifacts: Arc<Artifacts>,
}

/// Where a case's artifact folder goes, and the folder once it is made.
#[derive(Debug)]
struct Artifacts {
    /// The folder it is made in.
    root: PathBuf,
    /// The start of its name (`hangup-<suite>-<case>-`).
    prefix: String,
    folder: OnceLock<Result<PathBuf, String>>,
}

impl Recorder {
    /// A record whose artifact folder, when something asks for it, is made
    /// in `root` with a name starting with `prefix`; its clock starts at
    /// [`start_clock`](Self::start_clock).
    pub fn new(root: PathBuf, prefix: String) -> Recorder {
        Recorder {
            start: Arc::default(),
            events: Arc::default(),
            artifacts: Arc::new(Artifacts {
                root,
                prefix,
                folder: OnceLock::new(),
            }),
        }
    }

    /// Starts the case's clock (once: later calls change nothing), when the
    /// case is ready to run: its namespace made, its sysctls set.
    pub fn start_clock(&self, at: Instant) {
        let _ = self.start.set(at);
    }

    /// The case's artifact folder, made on first use: whatever a case
    /// writes beside its events (a capture, a program's log) asks for it
    /// when it starts and streams into it; the runner asks at the end when
    /// it keeps the case's files. A case that never asks makes no folder:
    /// on this project's CI machine a `mkdir` and `rmdir` in the temp
    /// folder cost ~3 ms under load, four times a whole no-wait case.
    /// The same error (as text) every time once making it failed.
    pub fn artifacts(&self) -> Result<&Path, String> {
        let made = self.artifacts.folder.get_or_init(|| {
            std::fs::create_dir_all(&self.artifacts.root)
                .and_then(|()| {
                    tempfile::Builder::new()
                        .prefix(&self.artifacts.prefix)
                        .tempdir_in(&self.artifacts.root)
                })
                .map(tempfile::TempDir::keep)
                .inspect(|dir| {
                    // Unmarked, a folder a killed run left stays for good;
                    // the case goes on either way.
                    let _ = leftovers::mark(&self.artifacts.root, dir);
                })
                .map_err(|e| {
                    format!(
                        "failed to make an artifact folder in {}: {e}",
                        self.artifacts.root.display()
                    )
                })
        });
        made.as_deref().map_err(Clone::clone)
    }

    /// The artifact folder if something made it.
    pub fn artifacts_made(&self) -> Option<&Path> {
        self.artifacts.folder.get()?.as_deref().ok()
    }

    /// When the case's clock started, once it has.
    pub fn start(&self) -> Option<Instant> {
        self.start.get().copied()
    }

    /// Time on the case's clock at `instant` (zero before the start).
    pub fn at(&self, instant: Instant) -> Duration {
        self.start().map_or(Duration::ZERO, |start| {
            instant.saturating_duration_since(start)
        })
    }

    /// Records what happened at `when`, on `side` (or the case as a whole).
    pub fn push(&self, when: Instant, side: Option<Side>, kind: EventKind) {
        let event = Event {
            at: self.at(when),
            side,
            kind,
        };
        // A panic while holding the lock leaves a whole Vec behind.
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    /// The record so far, oldest first (calls are recorded when they end
    /// but stamped when they began, so the order is by stamp).
    pub fn finish(&self) -> Timeline {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner()).all();
        events.sort_by_key(|e| e.at);
        Timeline { events }
    }
}

/// Where a program's events (its output lines, its traced calls, its exit)
/// go: the record of the case it serves now. A program started for one
/// case routes to that case alone; one that serves a whole suite is
/// switched to each case in turn, and back to its own record between
/// them, so every event lands in exactly one record.
#[derive(Debug, Clone)]
pub struct Route(Arc<Mutex<Recorder>>);

impl Route {
    /// A route to `to`.
    pub fn new(to: Recorder) -> Route {
        Route(Arc::new(Mutex::new(to)))
    }

    /// From now on, events go to `to`.
    pub fn switch(&self, to: Recorder) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// The record the route leads to now.
    pub fn current(&self) -> Recorder {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records an event in the record the route leads to now, stamped on
    /// that record's clock.
    pub fn push(&self, when: Instant, side: Option<Side>, kind: EventKind) {
        self.current().push(when, side, kind);
    }
}

impl Timeline {
    /// Adds an event at `at` on the case's clock (for timelines built by
    /// hand, as tests do; a case records through a [`Recorder`]).
    pub fn push(&mut self, at: Duration, side: Option<Side>, kind: EventKind) {
        self.events.push(Event { at, side, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Errno;

    /// Every event kind reads back as it was written: the JSON report is
    /// these types, and `hangup diff` reads them.
    #[test]
    fn events_read_back_as_they_were_written() {
        let mut timeline = Timeline::default();
        timeline.push(
            Duration::from_micros(1500),
            Some(Side::Client),
            EventKind::Call {
                step: StepId {
                    index: 3,
                    body: Some(2),
                    round: Some(7),
                },
                call: SocketCall::Recv {
                    max: 65536,
                    timeout: Some(Duration::from_millis(200)),
                },
                on: None,
                took: Duration::from_micros(200_412),
                busy: Duration::ZERO,
                result: CallResult {
                    outcome: Outcome::Errno(Errno::from_raw(nix::libc::EAGAIN)),
                    bytes: 0,
                    ready: None,
                    short: None,
                },
            },
        );
        timeline.push(
            Duration::from_millis(2),
            Some(Side::Server),
            EventKind::Output {
                stream: Stream::Err,
                line: "client gone".into(),
                cut: 0,
            },
        );
        timeline.push(
            Duration::from_millis(3),
            None,
            EventKind::ProgramExited {
                exit: Exit::Signal(15),
            },
        );
        let json = serde_json::to_string(&timeline).expect("json");
        assert!(
            json.contains(r#""event":"call","step":{"index":3,"body":2,"round":7},"call":{"action":"recv","max":65536,"timeout_ms":200.0},"took_ms":200.412,"result":{"outcome":"EAGAIN","bytes":0}"#),
            "{json}"
        );
        let back: Timeline = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, timeline);
    }
}
