//! A case's observations, read from its events: what two runs of it
//! are compared by. Each is keyed by what it is of ([`Observation`]), and
//! valued as a difference shows it; see [`super`] for what is observed
//! and what is left out.

use std::collections::{BTreeMap, BTreeSet};

use super::masks::Masks;
use super::{Key, Seen, Took};
use crate::model::{CallResult, Errno, Outcome, Side, TcpFlags};
use crate::record::{Event, EventKind, StepId};
use crate::report::difference::{Observation, Observed};
use crate::suite::{LineCount, SocketCall};

/// A case's observations in the order they happened, each keyed by what
/// it is of (see the module docs of [`super`]); what the program printed
/// through `masks`.
pub(super) fn observations(events: &[Event], masks: &Masks) -> Vec<(Key, Seen)> {
    // A program that serves the whole suite held fds before this case:
    // what it gained since it was ready is not this case's alone.
    let shared_program = events
        .iter()
        .any(|e| matches!(e.kind, EventKind::ProgramServes { .. }));
    let mut out: Vec<(Observation, Seen)> = Vec::new();
    // Each line once, in the order first printed: a stack trace reads as
    // printed, its first line first.
    let mut printed: Vec<(Option<Side>, String)> = Vec::new();
    let mut printed_before: BTreeSet<(Option<Side>, String)> = BTreeSet::new();
    let mut errnos: BTreeSet<(Option<Side>, String, Errno)> = BTreeSet::new();
    let mut traced: BTreeSet<Option<Side>> = BTreeSet::new();
    for event in events {
        let side = event.side;
        let at = |step: Option<StepId>, of: Observed| Observation { side, step, of };
        let seen = match &event.kind {
            EventKind::Call {
                step,
                call,
                on,
                took,
                busy,
                result: r,
            } => Some((
                at(
                    Some(*step),
                    Observed::Call {
                        action: call.keyword().to_string(),
                        on: *on,
                    },
                ),
                Seen {
                    value: result(call, r),
                    took: Some(Took {
                        took: *took,
                        busy: *busy,
                    }),
                },
            )),
            EventKind::InFlight { step, call, on, .. } => Some((
                at(
                    Some(*step),
                    Observed::Call {
                        action: call.keyword().to_string(),
                        on: *on,
                    },
                ),
                Seen::value("in flight when the case ended".into()),
            )),
            // A reading on the way depends on timing, not on the program.
            EventKind::State {
                on_the_way: true, ..
            } => None,
            EventKind::State {
                socket,
                state,
                step,
                by,
                ..
            } => Some((
                Observation {
                    side: *by,
                    step: *step,
                    of: Observed::State { socket: *socket },
                },
                Seen::value(state.name().to_string()),
            )),
            EventKind::LogCount {
                step,
                pattern,
                count,
                wanted,
            } => Some((
                at(
                    Some(*step),
                    Observed::Log {
                        pattern: pattern.clone(),
                    },
                ),
                Seen::value(counted(*count, *wanted, "matching")),
            )),
            EventKind::SyscallCount {
                step,
                which,
                results,
                count,
                wanted,
            } => Some((
                at(
                    Some(*step),
                    Observed::Syscall {
                        which: *which,
                        results: results.clone(),
                    },
                ),
                Seen::value(counted(*count, *wanted, "matching")),
            )),
            EventKind::TakenCount {
                step,
                fault,
                count,
                wanted,
            } => Some((
                at(
                    Some(*step),
                    Observed::Taken {
                        fault: fault.clone(),
                    },
                ),
                Seen::value(counted(*count, *wanted, "taken")),
            )),
            EventKind::SentCount {
                step,
                segments,
                count,
                wanted,
            } => Some((
                at(
                    Some(*step),
                    Observed::Sent {
                        segments: segments.clone(),
                    },
                ),
                Seen::value(counted(*count, *wanted, "sent")),
            )),
            EventKind::FirstSegment {
                step, flags, first, ..
            } => Some((
                at(Some(*step), Observed::First { flags: *flags }),
                Seen::value(match first {
                    None => "none".into(),
                    Some(seen) => seen.side.map_or("?", Side::name).to_string(),
                }),
            )),
            EventKind::AcceptQueue { step, of, waiting } => Some((
                at(Some(*step), Observed::AcceptQueue { of: *of }),
                Seen::value(format!("{waiting} waiting")),
            )),
            EventKind::Held {
                step,
                sockets,
                queued,
                fds,
                ..
            } => {
                let mut states: Vec<&str> = sockets.iter().map(|s| s.state.name()).collect();
                states.sort_unstable();
                // u64: a report read from outside may hold any counts.
                let waiting: u64 = queued.iter().map(|q| u64::from(q.waiting)).sum();
                let mut value = if states.is_empty() {
                    "no connection".to_string()
                } else {
                    states.join(", ")
                };
                if waiting > 0 {
                    value.push_str(&format!("; {waiting} waiting to be accepted"));
                }
                // How many fds it holds (files, pipes, sockets of any
                // kind: a leak that is no TCP socket), once the case's
                // work is done. Not how many more than when it was ready:
                // a runtime still starting then (a JVM opening a socketpair
                // on a thread of its own) had one more or less by timing.
                // Not for a program that served the suite's earlier cases,
                // whose count is theirs too.
                if !shared_program {
                    value.push_str(&format!("; {fds} fd{}", if *fds == 1 { "" } else { "s" }));
                }
                Some((at(Some(*step), Observed::Held), Seen::value(value)))
            }
            EventKind::ProgramExited { exit } => {
                Some((at(None, Observed::Exit), Seen::value(exit.to_string())))
            }
            EventKind::Output { line, .. } => {
                if let Some(line) = masks.apply(line) {
                    if printed_before.insert((side, line.clone())) {
                        printed.push((side, line));
                    }
                }
                None
            }
            EventKind::Traced { call } => {
                if let Outcome::Errno(errno) = call.result.outcome {
                    if !errno.is_routine() {
                        errnos.insert((side, traced_kind(&call.syscall), errno));
                    }
                }
                traced.insert(side);
                None
            }
            _ => None,
        };
        out.extend(seen);
    }
    for (side, line) in printed {
        out.push((
            Observation {
                side,
                step: None,
                of: Observed::Printed { line },
            },
            Seen::value("printed".into()),
        ));
    }
    for (side, call, errno) in errnos {
        out.push((
            Observation {
                side,
                step: None,
                of: Observed::TracedErrno { call, errno },
            },
            Seen::value("yes".into()),
        ));
    }
    // A traced side, errors or not: so its errnos compare only with a
    // run that traced it too.
    for side in traced {
        out.push((
            Observation {
                side,
                step: None,
                of: Observed::Traced,
            },
            Seen::value("yes".into()),
        ));
    }
    out.extend(wire(events));
    let mut met: BTreeMap<Observation, usize> = BTreeMap::new();
    by_loop_body(out, &ended_loops(events))
        .into_iter()
        .map(|(observation, seen)| {
            let count = met.entry(observation.clone()).or_insert(0);
            *count += 1;
            (Key(observation, *count), seen)
        })
        .collect()
}

/// The loops that ended on their `until`: by side and the loop's step
/// index, the round that met it.
fn ended_loops(events: &[Event]) -> BTreeMap<(Option<Side>, usize), u32> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::LoopEnded { step, round } => Some(((e.side, step.index), round)),
            _ => None,
        })
        .collect()
}

/// A loop's rounds folded into its body's steps: each step of the body is
/// one observation, whose value is every different thing its rounds saw
/// (`eof`, or `EAGAIN; eof`), in a stable order: the order in which rounds
/// met an outcome is scheduling, which outcomes they met the program's.
/// A loop that ended on its `until` (`ended`) is compared by the round
/// that ended it: its earlier rounds were its waiting for that, and how
/// many there were, and what they read meanwhile (a chunk a late thread
/// found before its timeout), is timing. Durations of calls in a loop are
/// not compared.
fn by_loop_body(
    observations: Vec<(Observation, Seen)>,
    ended: &BTreeMap<(Option<Side>, usize), u32>,
) -> Vec<(Observation, Seen)> {
    let mut out: Vec<(Observation, Seen)> = Vec::with_capacity(observations.len());
    // For each folded observation: where it is in `out`, and its values.
    let mut folded: BTreeMap<Observation, (usize, BTreeSet<String>)> = BTreeMap::new();
    for (mut observation, seen) in observations {
        let Some((step, round)) = observation.step.and_then(|s| Some((s, s.round?))) else {
            out.push((observation, seen));
            continue;
        };
        if ended
            .get(&(observation.side, step.index))
            .is_some_and(|last| *last != round)
        {
            continue;
        }
        observation.step = Some(StepId {
            round: None,
            ..step
        });
        let at = out.len();
        let (_, values) = folded.entry(observation.clone()).or_insert_with(|| {
            out.push((observation, Seen::value(String::new())));
            (at, BTreeSet::new())
        });
        values.insert(seen.value);
    }
    for (at, values) in folded.into_values() {
        out[at].1 = Seen::value(values.into_iter().collect::<Vec<_>>().join("; "));
    }
    out
}

/// Whether each side that sent or received a segment sent a FIN, and an
/// RST, and whose FIN came first; nothing when no packet was captured, or
/// when the timeline shows only the first packets (it cannot say a side
/// sent no FIN).
fn wire(events: &[Event]) -> Vec<(Observation, Seen)> {
    let cut_short = events
        .iter()
        .any(|e| matches!(e.kind, EventKind::PacketsCut { .. }));
    let packets: Vec<(Option<Side>, Option<Side>, TcpFlags)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Packet { to_side, flags, .. } => Some((e.side, *to_side, *flags)),
            _ => None,
        })
        .collect();
    if packets.is_empty() || cut_short {
        return Vec::new();
    }
    let sides: BTreeSet<Side> = packets
        .iter()
        .flat_map(|(from, to, _)| [*from, *to])
        .flatten()
        .collect();
    let mut out = Vec::new();
    for side in sides {
        for flag in [TcpFlags::FIN, TcpFlags::RST] {
            let sent = packets
                .iter()
                .any(|(from, _, flags)| *from == Some(side) && flags.contains(flag));
            out.push((
                Observation {
                    side: Some(side),
                    step: None,
                    of: Observed::SentFlag { flag },
                },
                Seen::value(if sent { "yes" } else { "no" }.into()),
            ));
        }
    }
    let first = packets
        .iter()
        .find(|(_, _, flags)| flags.contains(TcpFlags::FIN))
        .map_or("none", |(from, ..)| from.map_or("?", Side::name));
    out.push((
        Observation {
            side: None,
            step: None,
            of: Observed::FirstFin,
        },
        Seen::value(first.into()),
    ));
    out
}

/// A call's result as a difference shows it: `EAGAIN`, `ok, 5 B`,
/// `ok, ready: in rdhup`. A `recv_until` that found what it read for
/// shows no count: it read in pieces as they came, so how far past its
/// mark it read is timing.
fn result(call: &SocketCall, result: &CallResult) -> String {
    let mut value = match result.outcome {
        Outcome::Ok => "ok".to_string(),
        Outcome::Eof => "eof".to_string(),
        Outcome::Errno(errno) => errno.name(),
    };
    let read_past = matches!(call, SocketCall::RecvUntil { .. }) && result.outcome == Outcome::Ok;
    if result.bytes > 0 && !read_past {
        value.push_str(&format!(", {} B", result.bytes));
    }
    if let Some(ready) = result.ready {
        value.push_str(&format!(", ready: {}", ready.names().join(" ")));
    }
    value
}

/// A check's count as a difference shows it. A check that asked for one
/// or more stopped counting at the first, or at a burst that came at
/// once: how many it saw beyond one is timing, so only whether there were
/// any compares (`1 or more taken`, `none taken`). A check that asked for
/// a count counted for its whole window: the number compares.
fn counted(count: u64, wanted: LineCount, what: &str) -> String {
    match wanted {
        LineCount::AtLeastOne if count > 0 => format!("1 or more {what}"),
        LineCount::AtLeastOne => format!("none {what}"),
        LineCount::Exactly(_) | LineCount::AtMost(_) => format!("{count} {what}"),
    }
}

/// The kind of a traced call, as the diff keys the errnos it met: its
/// class (`close`, `accept`...), or its name when it has none; reads and
/// writes are one kind, `read or write`: which of them first meets a
/// peer's reset (ECONNRESET) is the program's scheduling (its event loop
/// was reading, or had a chunk to write), and the errno is what it met.
fn traced_kind(syscall: &str) -> String {
    use crate::model::syscall::{Class, TRACED};
    match TRACED.iter().find(|s| s.name == syscall).map(|s| s.class) {
        // `splice`, of no class, moves bytes either way.
        Some(Some(Class::Read | Class::Write) | None) => "read or write".to_string(),
        Some(Some(class)) => class.name().to_string(),
        None => syscall.to_string(),
    }
}
