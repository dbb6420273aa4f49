//! The timeline of one case: calls and kernel states on both sides, in
//! time order, rendered as two columns (client left, server right).
//!
//! Each event is one line of the ladder, and several quote text from
//! outside (what the program printed, its command, a step as written, a
//! path): every event's text is written [`Escaped`], so none can break
//! the ladder or reach the terminal raw.

use std::fmt::Write as _;
use std::time::Duration;

use crate::fault::DelayTrouble;
use crate::model::{CallResult, Escaped, Link, Outcome, Side, Socket, TcpFlags};
use crate::record::{
    Event, EventKind, FaultSpec, Flood, HeldSocket, QueuedAt, SegmentSeen, Shortfall, StateSource,
    StepId, StopReason, Timeline, TracedSyscall, Unsettled,
};
use crate::suite::SocketCall;
use crate::verdict::millis;

impl Timeline {
    /// Renders the timeline in two columns, client left, server right.
    ///
    /// A proxy, when the case has one, gets the middle column.
    pub fn render(&self) -> String {
        const WIDTH: usize = 46;
        let columns: Vec<Side> = Side::ALL
            .into_iter()
            .filter(|side| {
                *side != Side::Proxy || self.events.iter().any(|e| e.side == Some(Side::Proxy))
            })
            .collect();
        let mut out = format!("{:>9}", "ms");
        for side in &columns {
            out.push_str(&format!("  {:<WIDTH$}", side.name()));
        }
        let mut out = out.trim_end().to_string();
        out.push('\n');
        let column_of =
            |side: Option<Side>| side.and_then(|s| columns.iter().position(|c| *c == s));
        let folded = fold_plain_segments(&self.events);
        for (i, event) in self.events.iter().enumerate() {
            match folded.get(&i) {
                Some(Fold::Hidden) => continue,
                Some(Fold::Summary { segments, bytes }) => {
                    let ms = format!("{:.1}", event.at.as_secs_f64() * 1000.0);
                    out.push_str(&format!(
                        "{ms:>9}  -- ... {segments} more segments without SYN, FIN, RST or a zero window ({bytes} B of data; each is in the JSON report and capture.pcap)\n"
                    ));
                    continue;
                }
                None => {}
            }
            let Some(text) = event.describe() else {
                continue;
            };
            let text = Escaped(&text).to_string();
            let ms = format!("{:.1}", event.at.as_secs_f64() * 1000.0);
            if let EventKind::Packet {
                to_side,
                from,
                to,
                lost_to,
                held,
                ..
            } = &event.kind
            {
                let mut line = match (column_of(event.side), column_of(*to_side)) {
                    (Some(a), Some(b)) if a != b => {
                        let lost = lost_to.is_some();
                        format!("{ms:>9}  {}", arrow(a, b, &text, WIDTH + 2, lost))
                    }
                    _ => format!("{ms:>9}  -- {text} {from} > {to}"),
                };
                if let Some(fault) = lost_to {
                    line.push_str(&format!("  lost: {fault}"));
                }
                if let Some(held) = held {
                    let ms = held.held.as_secs_f64() * 1000.0;
                    line.push_str(&format!("  held {ms:.1} ms: {}", held.fault));
                }
                out.push_str(line.trim_end());
                out.push('\n');
                continue;
            }
            let line = match event
                .side
                .and_then(|side| columns.iter().position(|c| *c == side))
            {
                Some(column) => format!(
                    "{ms:>9}  {:<indent$}{text}",
                    "",
                    indent = column * (WIDTH + 2)
                ),
                None => format!("{ms:>9}  -- {text}"),
            };
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// How many plain segments in a row (no SYN, FIN or RST, no zero window,
/// none lost or held, no other event between them) the ladder draws before it folds
/// the rest: a bulk transfer is thousands of them, and the field's ladders
/// show the few around what matters.
const FOLD_AFTER: usize = 8;
/// How many of a folded run's first and last segments are still drawn.
const FOLD_KEEP: (usize, usize) = (4, 2);

/// What the ladder does with an event of a long run of plain segments.
pub(super) enum Fold {
    /// Not drawn.
    Hidden,
    /// Drawn as one line for the run's hidden middle.
    Summary { segments: usize, bytes: u64 },
}

/// The events of long runs of plain segments, by index, that the ladder
/// folds: each run past [`FOLD_AFTER`] keeps its first and last few.
pub(super) fn fold_plain_segments(
    events: &[crate::record::Event],
) -> std::collections::HashMap<usize, Fold> {
    let plain = |kind: &EventKind| match kind {
        EventKind::Packet {
            flags,
            lost_to,
            held,
            window,
            ..
        } => {
            *window != 0
                && !(flags.contains(TcpFlags::SYN)
                    || flags.contains(TcpFlags::FIN)
                    || flags.contains(TcpFlags::RST))
                && lost_to.is_none()
                && held.is_none()
        }
        _ => false,
    };
    let mut folds = std::collections::HashMap::new();
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        while end < events.len() && plain(&events[end].kind) {
            end += 1;
        }
        if end - start > FOLD_AFTER {
            let (first, last) = FOLD_KEEP;
            let hidden = (start + first)..(end - last);
            let bytes = events[hidden.clone()]
                .iter()
                .map(|e| match e.kind {
                    EventKind::Packet { len, .. } => u64::from(len),
                    _ => 0,
                })
                .sum();
            folds.insert(
                hidden.start,
                Fold::Summary {
                    segments: hidden.len(),
                    bytes,
                },
            );
            for i in hidden.skip(1) {
                folds.insert(i, Fold::Hidden);
            }
        }
        start = end.max(start + 1);
    }
    folds
}

/// A packet from column `from` to column `to` (each `step` characters
/// wide), as the field's ladder diagrams draw it: the label at the
/// sender's end, the arrow's head at the receiver's column. A `lost`
/// packet stops half way, at an `X`.
fn arrow(from: usize, to: usize, label: &str, step: usize, lost: bool) -> String {
    let (left, right) = (from.min(to), from.max(to));
    // From the left column's start to just before the right column's.
    let span = (right - left) * step;
    let reach = if lost {
        span / 2 + label.chars().count() / 2
    } else {
        span
    };
    let dashes = reach.saturating_sub(label.chars().count() + 3).max(3);
    let (head_right, head_left) = if lost { ("X", "X") } else { (">", "<") };
    if from < to {
        let drawn = format!("{label} {}{head_right}", "-".repeat(dashes));
        format!("{:indent$}{drawn}", "", indent = left * step)
    } else {
        let drawn = format!("{head_left}{} {label}", "-".repeat(dashes));
        // A lost one ends where an arrow that arrives would: at the sender.
        let indent = if lost {
            left * step + span.saturating_sub(drawn.chars().count() + 1)
        } else {
            left * step
        };
        format!("{:indent$}{drawn}", "")
    }
}

/// A call as the timeline shows it: `recv (timeout 200 ms)`, the proxy's
/// with the connection it is on (` (on client)`), a loop's with its round.
pub fn describe_call(call: &SocketCall, on: Option<Link>, step: StepId) -> String {
    let on = match on {
        Some(Link::Accepted) => " (on client)",
        Some(Link::Connected) => " (on server)",
        None => "",
    };
    match step.round {
        Some(round) => format!("{call}{on} [round {round}]"),
        None => format!("{call}{on}"),
    }
}

/// How a call ended, in a timeline line: `5 B`, `EOF`, `EPIPE after 3 B`.
fn outcome(result: &CallResult) -> String {
    match result.outcome {
        Outcome::Ok if result.ready.is_some() => {
            format!("ready: {}", result.ready.unwrap_or_default())
        }
        Outcome::Ok if result.bytes > 0 => format!("{} B", result.bytes),
        Outcome::Ok => "ok".to_string(),
        Outcome::Eof if result.bytes > 0 => format!("EOF after {} B", result.bytes),
        Outcome::Eof => "EOF".to_string(),
        Outcome::Errno(errno) if result.bytes > 0 => {
            format!("{} after {} B", errno.name(), result.bytes)
        }
        Outcome::Errno(errno) => errno.name(),
    }
}

/// What a program had not done when hangup gave up waiting for it to
/// settle: `its end of 127.0.0.1:8080 <- 127.0.0.1:41234 still
/// ESTABLISHED`, `thread 4242 still running (R)`.
fn unsettled(on: &Unsettled) -> String {
    match on {
        Unsettled::Connection { local, remote } => {
            format!("its end of {local} <- {remote} still ESTABLISHED")
        }
        Unsettled::Thread { tid, state } => format!("thread {tid} still running ({state})"),
        Unsettled::Output => "its output not all read yet".into(),
    }
}

/// A program's command on one line: control characters escaped, each
/// long argument cut short (after the escape, so the cut is of what is
/// shown).
fn command_line(argv: &[String]) -> String {
    const LONGEST: usize = 48;
    argv.iter()
        .map(|arg| {
            let escaped = Escaped(arg).to_string();
            if escaped.chars().count() > LONGEST {
                let cut: String = escaped.chars().take(LONGEST).collect();
                format!("{cut}...")
            } else {
                escaped
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "it took 3 packets".
fn took_packets(n: u64) -> String {
    format!("it took {n} packet{}", if n == 1 { "" } else { "s" })
}

/// A segment a check saw: `RST (0 B, win 0) at 12 ms`.
fn segment(seen: &SegmentSeen) -> String {
    format!(
        "{} ({} B, win {}) at {}",
        seen.flags,
        seen.len,
        seen.window,
        millis(seen.at)
    )
}

/// What a delay's trouble was, in words.
fn delay_trouble(trouble: &DelayTrouble) -> String {
    match trouble {
        DelayTrouble::NotLetGo { error } => format!("a delayed packet could not be let go: {error}"),
        DelayTrouble::WaitFailed { error } => {
            format!("waiting for queued packets failed: {error}; what was held was let go")
        }
        DelayTrouble::KernelDropped => "the kernel could not hand hangup some packets a delay caught (its socket buffer was full): those were dropped, not delayed".into(),
        DelayTrouble::ReadFailed { error } => format!("reading queued packets failed: {error}"),
        DelayTrouble::Unreadable { error } => {
            format!("an unreadable message from the queue: {error}")
        }
        DelayTrouble::VerdictRefused { errno } => {
            format!("the kernel refused a verdict: {errno}")
        }
    }
}

/// What a program held, as a `released` check read it: a socket that is
/// neither one of the case's connections nor left behind is marked as its
/// own.
fn held(sockets: &[HeldSocket], queued: &[QueuedAt]) -> String {
    let parts: Vec<String> = queued
        .iter()
        .map(ToString::to_string)
        .chain(sockets.iter().map(|socket| {
            if socket.is_held_against() {
                socket.to_string()
            } else {
                format!("{socket} (its own, not the case's)")
            }
        }))
        .collect();
    if parts.is_empty() {
        "no connection".into()
    } else {
        parts.join("; ")
    }
}

/// A fault as the timeline names it: `drop what client sends`, `cut the
/// client's host off (link down)`.
impl std::fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultSpec::Packets(fault) => fault.fmt(f),
            FaultSpec::Host(cut) => cut.fmt(f),
        }
    }
}

/// A traced call: `writev(fd 7) = EPIPE`, `accept4() = fd 9`, with how
/// long it took when that was a millisecond or more (it blocked).
fn traced(call: &TracedSyscall) -> String {
    let text = match call.accepted {
        Some(fd) => format!("{}() = fd {fd}", call.syscall),
        None => {
            let result = match call.result.outcome {
                Outcome::Ok if call.result.bytes > 0 => format!("{} B", call.result.bytes),
                outcome => outcome.to_string(),
            };
            format!("{}(fd {}) = {result}", call.syscall, call.fd)
        }
    };
    if call.took >= Duration::from_millis(1) {
        format!("traced {text} (after {})", millis(call.took))
    } else {
        format!("traced {text}")
    }
}

/// Where a side was when its case stopped: `client was at step 3 `recv`
/// (file:3:4), a call in flight for 120 ms`; none for another event. The
/// timeline and a deadline's summary both say it so.
pub fn whereabouts(side: Option<Side>, kind: &EventKind) -> Option<String> {
    let EventKind::Whereabouts {
        step,
        source,
        location,
        in_flight,
    } = kind
    else {
        return None;
    };
    let in_flight = in_flight
        .map(|d| format!(", a call in flight for {}", millis(d)))
        .unwrap_or_default();
    let side = side.map_or("", Side::name);
    Some(format!(
        "{side} was at step {step} `{source}` ({location}){in_flight}"
    ))
}

impl Event {
    /// One line for the timeline; none for an event of a kind this version
    /// does not know (read from a later hangup's report).
    pub fn describe(&self) -> Option<String> {
        Some(match &self.kind {
            EventKind::Call {
                step,
                call,
                on,
                took,
                result,
                ..
            } => format!(
                "#{} {} -> {} ({})",
                step.index,
                describe_call(call, *on, *step),
                outcome(result),
                millis(*took)
            ),
            EventKind::InFlight {
                step,
                call,
                on,
                took,
            } => format!(
                "#{} {}: still in flight when the case ended ({})",
                step.index,
                describe_call(call, *on, *step),
                millis(*took)
            ),
            EventKind::State {
                socket,
                state,
                source,
                on_the_way,
                ..
            } => {
                let way = if *on_the_way { " (on the way)" } else { "" };
                // The proxy has two sockets: name which; the others have one.
                let whose = match socket {
                    Socket::ProxyClient => "to client ",
                    Socket::ProxyServer => "to server ",
                    Socket::Client | Socket::Server => "",
                };
                match source {
                    StateSource::SockDiag => format!("[{whose}{}]{way}", state.name()),
                    StateSource::TcpInfo => {
                        format!("[{whose}{}] via TCP_INFO{way}", state.name())
                    }
                    StateSource::NoConnectionYet => {
                        format!("[{whose}{}]: no connection yet{way}", state.name())
                    }
                }
            }
            EventKind::Output { stream, line, cut } => {
                let mut text = String::new();
                let _ = crate::record::write_output(&mut text, *stream, line, *cut);
                text
            }
            EventKind::LeftOut { of, events, bytes } => match of {
                Flood::Output => format!(
                    "... {events} lines of output ({bytes} bytes) left out here; program.log has them"
                ),
                Flood::Traced => format!("... {events} traced calls left out here"),
                Flood::Rounds => format!("... {events} events of the loop's rounds left out here"),
            },
            EventKind::Packet {
                flags,
                seq,
                ack,
                window,
                len,
                ..
            } => {
                // One String, written into (a page describes every
                // segment of every case).
                let mut text = String::with_capacity(64);
                let _ = write!(text, "{flags} seq {seq}");
                if *len > 0 {
                    let _ = write!(text, ":{}", seq.wrapping_add(*len));
                }
                if flags.contains(TcpFlags::ACK) {
                    let _ = write!(text, " ack {ack}");
                }
                let _ = write!(text, " win {window}");
                if *len > 0 {
                    let _ = write!(text, " ({len} B)");
                }
                text
            }
            EventKind::ProgramStarted { argv, pid } => {
                format!("program started: {} (pid {pid})", command_line(argv))
            }
            EventKind::ProgramReady {
                port,
                role: Side::Client,
                ..
            } => format!("program ready, to connect to port {port}"),
            EventKind::ProgramReady {
                port,
                for_suite: true,
                ..
            } => format!("program ready on port {port}, for every case of the suite"),
            EventKind::ProgramReady { port, .. } => format!("program ready on port {port}"),
            EventKind::ProgramServes { pid, port } => {
                format!("the suite's program (pid {pid}) serves this case on port {port}")
            }
            EventKind::ProgramBusy { busy } => format!(
                "program busy {} since ready (on a CPU, or waiting for one)",
                millis(*busy)
            ),
            EventKind::ProgramSettle {
                waited,
                gave_up_on: None,
            } => format!(
                "program settled after {}, before its stop",
                millis(*waited)
            ),
            EventKind::ProgramSettle {
                waited,
                gave_up_on: Some(on),
            } => format!(
                "gave up after {} waiting for the program to settle before its stop: {}",
                millis(*waited),
                unsettled(on)
            ),
            EventKind::ProgramExited { exit } => format!("program {exit}"),
            EventKind::Signal { signal, .. } => format!("signal {signal} to the program"),
            EventKind::ProgramPaused {
                waited,
                stopped: true,
                ..
            } => format!("the program stopped after {}", millis(*waited)),
            EventKind::ProgramPaused { waited, .. } => format!(
                "not every thread of the program stopped within {}",
                millis(*waited)
            ),
            EventKind::Mark { label, .. } => format!("mark {label:?}"),
            EventKind::LoopEnded { step, round } => {
                format!("#{} loop ended in round {round}", step.index)
            }
            EventKind::LogCount { pattern, count, .. } => {
                format!("log {pattern:?}: {count} matching")
            }
            EventKind::SyscallCount {
                which,
                results,
                count,
                ..
            } => {
                let mut text = format!("syscall {which}");
                if !results.is_empty() {
                    let names: Vec<String> = results.iter().map(ToString::to_string).collect();
                    text.push_str(&format!(" expect {}", names.join(" or ")));
                }
                format!("{text}: {count} matching")
            }
            EventKind::Errnos {
                allowed,
                calls,
                outside,
                ..
            } => {
                let names: Vec<String> = allowed.iter().map(|e| e.name()).collect();
                let mut text = format!("errnos only [{}]: {calls} calls", names.join(", "));
                if outside.is_empty() {
                    text.push_str(", none failed otherwise");
                } else {
                    let failed: Vec<String> = outside
                        .iter()
                        .map(|c| format!("{}(fd {}) = {}", c.syscall, c.fd, c.outcome))
                        .collect();
                    text.push_str(&format!(", failed otherwise: {}", failed.join(", ")));
                }
                text
            }
            EventKind::TakenCount { fault, count, .. } => {
                format!("fault {fault:?}: {}", took_packets(*count))
            }
            EventKind::SentCount {
                segments, count, ..
            } => format!("sent: {count} {segments}"),
            EventKind::FirstSegment { flags, first, .. } => {
                let observed = match first {
                    None => format!("no {flags} segment"),
                    Some(seen) => match seen.side {
                        Some(sender) => format!("the {sender}'s: {}", segment(seen)),
                        None => format!("one from {}: {}", seen.from, segment(seen)),
                    },
                };
                format!("first {flags}: {observed}")
            }
            EventKind::AcceptQueue { of, waiting, .. } => {
                format!("accept queue of the {of}: {}", crate::verdict::waiting(*waiting))
            }
            EventKind::Held {
                sockets,
                queued,
                fds,
                fds_at_ready,
                new_fds,
                ..
            } => format!(
                "the program holds {}; {}",
                held(sockets, queued),
                crate::verdict::fds_in_words(*fds, *fds_at_ready, new_fds)
            ),
            EventKind::FaultPut {
                fault: fault @ FaultSpec::Packets(_),
                ports,
                rules,
                ..
            } => {
                let which: Vec<String> = ports.iter().map(ToString::to_string).collect();
                format!(
                    "{fault}: TCP {} ({rules} rule{})",
                    which.join(" or "),
                    if *rules == 1 { "" } else { "s" }
                )
            }
            EventKind::FaultPut { fault, .. } => fault.to_string(),
            EventKind::FaultLifted {
                fault,
                took: Some(took),
                ..
            } => format!("lifted {fault}: {}", took_packets(*took)),
            EventKind::FaultLifted { fault, .. } => format!("lifted {fault}"),
            EventKind::FaultAtEnd { fault, took, error } => {
                let what = match (fault, took, error) {
                    (FaultSpec::Host(_), _, Some(error)) => {
                        format!("it could not be undone: {error}")
                    }
                    (FaultSpec::Host(_), _, None) => "undone".to_string(),
                    (_, _, Some(error)) => format!("its count is unknown: {error}"),
                    (_, Some(took), None) => took_packets(*took),
                    (_, None, None) => "its count is unknown".to_string(),
                };
                format!("{fault} was in place to the end: {what}")
            }
            EventKind::Delays { trouble } => format!("delays: {}", delay_trouble(trouble)),
            EventKind::Stopped {
                why: StopReason::Deadline,
            } => "case deadline passed".into(),
            EventKind::Stopped { .. } => "the run was interrupted".into(),
            EventKind::Whereabouts { .. } => format!(
                "{} when the case stopped",
                whereabouts(self.side, &self.kind).unwrap_or_default()
            ),
            EventKind::PacketsCut { shown, captured } => format!(
                "the timeline shows the first {shown} packets; capture.pcap has all {captured} (with --keep-artifacts, or when the case fails)"
            ),
            EventKind::CaptureFull { kept, dropped } => format!(
                "the capture kept the first {kept} packets and counted {dropped} more"
            ),
            EventKind::LossesUntold => "the kernel's log of the packets the faults took overflowed: some lost packets are not marked as lost".into(),
            EventKind::Shortfall { what, error } => match what {
                Shortfall::CaptureNotStarted => format!("no packet capture: {error}"),
                Shortfall::CaptureFailed => format!("the packet capture failed: {error}"),
                Shortfall::PcapNotWritten => format!("capture.pcap could not be written: {error}"),
            },
            EventKind::Traced { call } => traced(call),
            EventKind::Unknown => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(at_ms: u64, from: Side, flags: TcpFlags, window: u16) -> Event {
        let (a, b) = ("127.0.0.1:40000", "127.0.0.1:8080");
        let (src, dst, to) = if from == Side::Client {
            (a, b, Side::Server)
        } else {
            (b, a, Side::Client)
        };
        Event {
            at: Duration::from_millis(at_ms),
            side: Some(from),
            kind: EventKind::Packet {
                from: src.parse().expect("addr"),
                to: dst.parse().expect("addr"),
                to_side: Some(to),
                flags,
                seq: 1,
                ack: 1,
                window,
                len: 100,
                lost_to: None,
                held: None,
            },
        }
    }

    #[test]
    fn a_long_run_of_plain_segments_is_folded_and_what_matters_is_not() {
        let ack = TcpFlags::ACK;
        let mut events: Vec<Event> = (0..30).map(|i| packet(i, Side::Server, ack, 64)).collect();
        // A zero window in the middle of the run is drawn, and splits it.
        events.insert(20, packet(20, Side::Client, ack, 0));
        events.push(packet(40, Side::Server, TcpFlags(0x11), 64));
        let text = Timeline { events }.render();
        let drawn = text.lines().filter(|l| l.contains("seq 1")).count();
        // 20 before the zero window: 4 + 2 drawn, 14 folded; the zero
        // window; 10 after it: 4 + 2 drawn, 4 folded; the FIN.
        assert_eq!(drawn, 6 + 1 + 6 + 1, "{text}");
        assert!(
            text.contains(
                "... 14 more segments without SYN, FIN, RST or a zero window (1400 B of data;"
            ),
            "{text}"
        );
        assert!(text.contains("... 4 more segments"), "{text}");
        assert!(text.contains("win 0"), "{text}");
        assert!(text.contains("FIN|ACK"), "{text}");
    }
}
