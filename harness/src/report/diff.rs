//! What changed between two runs: the upgrade diff.
//!
//! `hangup run ... --json base.json` against one version of a program,
//! again with `--json new.json` against the next, then `hangup diff
//! base.json new.json`: every observation that changed, per case, not just
//! pass or fail. Both reports are read as their types
//! ([`crate::report::format`]), at most [`MAX_REPORT_BYTES`] each and a
//! case at a time, each case kept only as what is compared of it
//! ([`LastRound`], [`ComparedCase`]); a round that holds a case twice is
//! refused. A case's observations come from its events, each keyed by
//! what it is an observation of ([`Observation`]: whose, which step, which
//! action or check), never by how a writer words it:
//!
//! - each call, by side, step and action: its outcome (ok, EOF, the
//!   errno), the bytes it moved, the events a poll saw ready, and how
//!   long it took when that changed beyond the timing tolerance; a call
//!   still in flight when the case ended;
//! - each state the kernel reported, by socket and the side and step that
//!   checked it;
//! - in a loop, each step of its body once: the set of what its rounds
//!   saw (how many rounds ran, and in which order they met an outcome, is
//!   timing);
//! - what each check counted (`log`, `syscall`, `taken`, `sent`), who sent
//!   the first segment (`first`), the accept queues, and what the program
//!   held at each `released` (the states of its connections, and those
//!   waiting to be accepted);
//! - how the program under test ended;
//! - what the program printed that no step asked about: each line, its
//!   numbers masked (ports, pids, times, ids), printed in one run and not
//!   the other (a new `ERROR` line, a stack trace, a `clientError`);
//! - the errnos the program's traced socket calls returned (EAGAIN and
//!   EINTR aside: a non-blocking runtime's routine);
//! - on the wire, when both runs captured packets: whether each side sent
//!   a FIN and whether it sent an RST, and whose FIN came first (a close
//!   that became a reset, or a server that now closes first); not how many
//!   segments, which delayed ACKs, coalescing and retransmission timers
//!   change from run to run;
//! - the case's verdict.
//!
//! What differs between any two runs by design is left out: pids, ports,
//! fd numbers, when things happened, and the command the program was
//! started with. An observation met again (a state checked twice by one
//! step) is told apart by its count.
//!
//! A difference can be accepted: an accept file lists differences exactly
//! as [`Difference`]'s display writes them, one a line (`#` starts a
//! comment), and the diff then fails only on the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::{CallResult, Errno, Outcome, Side, TcpFlags};
use crate::record::{Event, EventKind, StepId};
use crate::report::CaseReport;
use crate::suite::{LineCount, Tolerance};

pub use super::difference::{Change, Difference, Observation, Observed, Run};
pub use input::{InputError, LastRound, MAX_REPORT_BYTES, read_and_compare};

mod input;

/// What `hangup diff` found between two reports' last rounds.
#[derive(Debug)]
#[non_exhaustive]
pub struct Comparison {
    /// Every difference, case by case in the order of their names.
    pub differences: Vec<Difference>,
    /// The names of the cases compared: those in either report's last
    /// round, in order.
    pub cases: Vec<String>,
}

impl Comparison {
    /// Compares the last rounds of two reports (see [`diff`]).
    pub fn of(base: &LastRound, new: &LastRound, tolerance: Tolerance) -> Comparison {
        let cases: BTreeSet<&str> = base.names().chain(new.names()).collect();
        Comparison {
            differences: differences(base.cases(), new.cases(), tolerance),
            cases: cases.into_iter().map(str::to_string).collect(),
        }
    }

    /// How many of the differences `accepted` does not list.
    pub fn open(&self, accepted: &BTreeSet<String>) -> usize {
        listed(&self.differences, accepted).1
    }

    /// What `hangup diff` prints: each difference on a line of its own as
    /// an accept file lists it (`  (accepted)` after one that `accepted`
    /// lists), a blank line, and the count, `6 differences in 1 case of 1
    /// case, 0 accepted`. Every string a report gave is shown
    /// [`Escaped`](crate::model::Escaped), so each difference is one line
    /// and the count is the last, whatever the reports hold.
    pub fn render(&self, accepted: &BTreeSet<String>) -> String {
        let (lines, open) = listed(&self.differences, accepted);
        let changed: BTreeSet<&str> = self.differences.iter().map(|d| d.case.as_str()).collect();
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!(
            "\n{} differences in {} of {}, {} accepted",
            self.differences.len(),
            cases(changed.len()),
            cases(self.cases.len()),
            self.differences.len() - open
        ));
        out
    }
}

/// `1 case`, `2 cases`.
fn cases(n: usize) -> String {
    if n == 1 {
        "1 case".into()
    } else {
        format!("{n} cases")
    }
}

/// Each difference as it is shown, one a line as an accept file lists it,
/// `  (accepted)` after those `accepted` lists; and how many it does not.
pub fn listed(differences: &[Difference], accepted: &BTreeSet<String>) -> (Vec<String>, usize) {
    let mut open = 0;
    let lines = differences
        .iter()
        .map(|difference| {
            let line = difference.to_string();
            if accepted.contains(&line) {
                format!("{line}  (accepted)")
            } else {
                open += 1;
                line
            }
        })
        .collect();
    (lines, open)
}

/// Compares the last round of two reports; a call's duration counts as
/// changed when the two differ by more than `tolerance` allows for the
/// longer of them. Cases are paired by name: a report holds each name
/// once a round ([`LastRound::read`] refuses one that does not; here the
/// last of a name is the one compared).
pub fn diff(base: &[CaseReport], new: &[CaseReport], tolerance: Tolerance) -> Vec<Difference> {
    let reduced = |cases: &[CaseReport]| cases.iter().map(ComparedCase::of).collect::<Vec<_>>();
    differences(&reduced(base), &reduced(new), tolerance)
}

/// The differences between two runs' cases, paired by name.
fn differences(
    base: &[ComparedCase],
    new: &[ComparedCase],
    tolerance: Tolerance,
) -> Vec<Difference> {
    let in_base: BTreeMap<&str, &ComparedCase> = base.iter().map(|c| (c.name(), c)).collect();
    let in_new: BTreeMap<&str, &ComparedCase> = new.iter().map(|c| (c.name(), c)).collect();
    let names: BTreeSet<&str> = in_base.keys().chain(in_new.keys()).copied().collect();
    let mut out = Vec::new();
    for name in names {
        match (in_base.get(name), in_new.get(name)) {
            (Some(_), None) => out.push(Difference {
                case: name.to_string(),
                change: Change::OnlyIn { run: Run::Base },
            }),
            (None, Some(_)) => out.push(Difference {
                case: name.to_string(),
                change: Change::OnlyIn { run: Run::New },
            }),
            (Some(a), Some(b)) => {
                out.extend(
                    changes(a, b, tolerance)
                        .into_iter()
                        .map(|change| Difference {
                            case: name.to_string(),
                            change,
                        }),
                );
            }
            (None, None) => {}
        }
    }
    out
}

/// The differences between two runs of one case.
pub fn compare(a: &CaseReport, b: &CaseReport, tolerance: Tolerance) -> Vec<Change> {
    changes(&ComparedCase::of(a), &ComparedCase::of(b), tolerance)
}

/// A case as the diff compares it: its name, its verdict and its
/// observations, and nothing else. A report's reader keeps this of each
/// case and drops the case's events as soon as they are read
/// ([`LastRound`]): what two runs' differences are computed from.
#[derive(Debug)]
pub struct ComparedCase {
    name: String,
    verdict: String,
    observations: Vec<(Key, Seen)>,
}

impl ComparedCase {
    /// What the diff compares of `case`.
    pub fn of(case: &CaseReport) -> ComparedCase {
        ComparedCase {
            name: case.name.clone(),
            verdict: verdict(case),
            observations: observations(&case.timeline.events),
        }
    }

    /// The case's test name (`<suite>::<case>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The differences between two runs of one case, from what the diff
/// keeps of each.
fn changes(a: &ComparedCase, b: &ComparedCase, tolerance: Tolerance) -> Vec<Change> {
    let mut out = Vec::new();
    if a.verdict != b.verdict {
        out.push(Change::Verdict {
            base: a.verdict.clone(),
            new: b.verdict.clone(),
        });
    }
    // What both runs could see, only: packets when both captured (and
    // showed all), traced calls when both traced.
    let both = |only_if_both: fn(&Observed) -> bool| {
        let has =
            |case: &ComparedCase| case.observations.iter().any(|(k, _)| only_if_both(&k.0.of));
        has(a) && has(b)
    };
    let (wire_in_both, traced_in_both) = (both(is_wire), both(is_traced));
    let compared = |(key, _): &&(Key, Seen)| {
        (wire_in_both || !is_wire(&key.0.of)) && (traced_in_both || !is_traced(&key.0.of))
    };
    let obs_a: Vec<&(Key, Seen)> = a.observations.iter().filter(compared).collect();
    let obs_b: Vec<&(Key, Seen)> = b.observations.iter().filter(compared).collect();
    let in_b: BTreeMap<&Key, &Seen> = obs_b.iter().map(|(k, v)| (k, v)).collect();
    let in_a: BTreeMap<&Key, &Seen> = obs_a.iter().map(|(k, v)| (k, v)).collect();
    let mut unseen = [Vec::new(), Vec::new()];
    for (key, x) in obs_a.iter().copied() {
        match in_b.get(key) {
            Some(y) if x.value != y.value => out.push(Change::Observed {
                observation: key.0.clone(),
                base: Some(x.value.clone()),
                new: Some(y.value.clone()),
            }),
            Some(y) => {
                if let (Some(ta), Some(tb)) = (x.took, y.took) {
                    if ta.abs_diff(tb) > tolerance.slack(ta.max(tb)) {
                        out.push(Change::Took {
                            observation: key.0.clone(),
                            base: ta,
                            new: tb,
                        });
                    }
                }
            }
            None => unseen[1].push(Change::Observed {
                observation: key.0.clone(),
                base: Some(x.value.clone()),
                new: None,
            }),
        }
    }
    for (key, y) in obs_b.iter().copied() {
        if !in_a.contains_key(key) {
            unseen[0].push(Change::Observed {
                observation: key.0.clone(),
                base: None,
                new: Some(y.value.clone()),
            });
        }
    }
    // Observations one run made and the other did not: named one by one
    // when few, else the first and a count. What a program printed is
    // folded apart from the rest, so a new stack trace does not hide a
    // call that went missing.
    let [only_in_new, only_in_base] = unseen;
    for (changes, missing_in) in [(only_in_base, Run::New), (only_in_new, Run::Base)] {
        let (printed, rest): (Vec<Change>, Vec<Change>) = changes
            .into_iter()
            .partition(|c| matches!(c, Change::Observed { observation, .. } if matches!(observation.of, Observed::Printed { .. })));
        for group in [rest, printed] {
            if group.len() <= FOLD_AFTER {
                out.extend(group);
            } else {
                let count = group.len() - 1;
                out.extend(group.into_iter().next());
                out.push(Change::More { count, missing_in });
            }
        }
    }
    out
}

/// `passed`, `ignored`, or `failed (expectation)` and the like.
fn verdict(case: &CaseReport) -> String {
    match case.failure() {
        Some(failure) => format!("failed ({})", failure.kind.name()),
        None if case.skipped() => "ignored".into(),
        None => "passed".into(),
    }
}

/// An observation's key: what it is of, and the how-many-th such it is
/// in its run (an observation met again is told apart by its count).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key(Observation, usize);

/// One observation: what was seen, and for a call how long it took.
#[derive(Debug)]
struct Seen {
    value: String,
    took: Option<Duration>,
}

impl Seen {
    fn value(value: String) -> Seen {
        Seen { value, took: None }
    }
}

/// How many observations seen in one run only are listed one by one.
const FOLD_AFTER: usize = 3;

fn is_wire(of: &Observed) -> bool {
    matches!(of, Observed::SentFlag { .. } | Observed::FirstFin)
}

fn is_traced(of: &Observed) -> bool {
    matches!(of, Observed::TracedErrno { .. } | Observed::Traced)
}

/// A call's result as a difference shows it: `EAGAIN`, `ok, 5 B`,
/// `ok, ready: in rdhup`.
fn result(result: &CallResult) -> String {
    let mut value = match result.outcome {
        Outcome::Ok => "ok".to_string(),
        Outcome::Eof => "eof".to_string(),
        Outcome::Errno(errno) => errno.name(),
    };
    if result.bytes > 0 {
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

/// A line with what differs between any two runs of the same program
/// masked as `#`: every run of digits (ports, pids, times, counts), and
/// whole any id or address whose letters would otherwise show through in
/// a pattern of their own: a `0x` address (`0x#`), a word of six or more
/// hex digits with a digit in it (`7f3a2b`), and hex groups joined by
/// dashes with eight or more hex digits in all (a UUID, a date).
///
/// Small numbers are masked too, though a status code may be what
/// changed: how many chunks or retries a line counts is timing as often
/// as not, and a line printed in one run only is still found.
fn masked(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let word_start = i == 0 || !is_word(chars[i - 1]);
        if word_start && is_word(chars[i]) {
            // Hex groups joined by dashes (a UUID, a date), ending at a word's end.
            let dashed = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || **c == '-')
                .count();
            let group = &chars[i..i + dashed];
            let ends_word = chars.get(i + dashed).is_none_or(|c| !is_word(*c));
            let hex_digits = group.iter().filter(|c| c.is_ascii_hexdigit()).count();
            let has_digit = group.iter().any(char::is_ascii_digit);
            if ends_word && group.contains(&'-') && hex_digits >= 8 && has_digit {
                out.push('#');
                i += dashed;
                continue;
            }
            let word = chars[i..].iter().take_while(|c| is_word(**c)).count();
            let text = &chars[i..i + word];
            let hex_after_0x = text.len() > 2
                && text[0] == '0'
                && matches!(text[1], 'x' | 'X')
                && text[2..].iter().all(char::is_ascii_hexdigit);
            if hex_after_0x {
                out.push_str("0x#");
                i += word;
                continue;
            }
            if word >= 6
                && text.iter().all(char::is_ascii_hexdigit)
                && text.iter().any(char::is_ascii_digit)
            {
                out.push('#');
                i += word;
                continue;
            }
        }
        if chars[i].is_ascii_digit() {
            out.push('#');
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// A case's observations in the order they happened, each keyed by what
/// it is of (see the module docs).
fn observations(events: &[Event]) -> Vec<(Key, Seen)> {
    let mut out: Vec<(Observation, Seen)> = Vec::new();
    let mut printed: BTreeSet<(Option<Side>, String)> = BTreeSet::new();
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
                    value: result(r),
                    took: Some(*took),
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
                Some((at(Some(*step), Observed::Held), Seen::value(value)))
            }
            EventKind::ProgramExited { exit } => {
                Some((at(None, Observed::Exit), Seen::value(exit.to_string())))
            }
            EventKind::Output { line, .. } => {
                printed.insert((side, masked(line)));
                None
            }
            EventKind::Traced { call } => {
                if let Outcome::Errno(errno) = call.result.outcome {
                    let routine = [nix::libc::EAGAIN, nix::libc::EINTR].contains(&errno.raw());
                    if !routine {
                        let kind = crate::model::syscall::TRACED
                            .iter()
                            .find(|s| s.name == call.syscall)
                            .and_then(|s| s.class)
                            .map_or(call.syscall.clone(), |c| c.name().to_string());
                        errnos.insert((side, kind, errno));
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
    by_loop_body(out)
        .into_iter()
        .map(|(observation, seen)| {
            let count = met.entry(observation.clone()).or_insert(0);
            *count += 1;
            (Key(observation, *count), seen)
        })
        .collect()
}

/// A loop's rounds folded into its body's steps: each step of the body is
/// one observation, whose value is every different thing its rounds saw
/// (`eof`, or `EAGAIN, eof`), in a stable order. How many rounds a loop
/// ran is timing when it has an `until`, and the order in which rounds
/// met an outcome is scheduling; which outcomes they met is the
/// program's. Durations of calls in a loop are not compared.
fn by_loop_body(observations: Vec<(Observation, Seen)>) -> Vec<(Observation, Seen)> {
    let mut out: Vec<(Observation, Seen)> = Vec::with_capacity(observations.len());
    // For each folded observation: where it is in `out`, and its values.
    let mut folded: BTreeMap<Observation, (usize, BTreeSet<String>)> = BTreeMap::new();
    for (mut observation, seen) in observations {
        let Some(step) = observation.step.filter(|s| s.round.is_some()) else {
            out.push((observation, seen));
            continue;
        };
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

/// The differences an accept file lists: one a line, exactly as
/// [`Difference`] displays them; blank lines and `#` comments are skipped.
pub fn accepted(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The names of the case pairs that suites run against two versions of
/// their program (`compare`), as [`between_versions`] names them.
pub fn version_pairs(suites: &[crate::suite::Suite]) -> Vec<String> {
    let mut out = Vec::new();
    for suite in suites {
        for case in &suite.cases {
            let Some(version) = case.version.as_ref().filter(|v| v.base && v.run == 1) else {
                continue;
            };
            let new = suite.cases.iter().find_map(|other| {
                other
                    .version
                    .as_ref()
                    .filter(|v| !v.base && v.case == version.case)
            });
            if let Some(new) = new {
                out.push(format!(
                    "{}::{} ({} -> {})",
                    suite.name, version.case, version.name, new.name
                ));
            }
        }
    }
    out
}

/// The differences between the two versions of each case that a suite
/// runs against two versions of its program (`compare`), from one run's
/// `reports`: each pair compared as `hangup diff` compares two runs, named
/// `<suite>::<case> (<base> -> <new>)`.
pub fn between_versions(
    suites: &[crate::suite::Suite],
    reports: &[CaseReport],
    tolerance: Tolerance,
) -> Vec<Difference> {
    let mut out = Vec::new();
    for suite in suites {
        let pairs = suite.cases.iter().filter_map(|case| {
            let version = case.version.as_ref().filter(|v| v.base && v.run == 1)?;
            let new = suite.cases.iter().find(|other| {
                other
                    .version
                    .as_ref()
                    .is_some_and(|v| !v.base && v.case == version.case)
            })?;
            Some((case, version, new))
        });
        for (base, version, new) in pairs {
            let found = |case: &crate::suite::Case| {
                let name = case.test_name(suite);
                reports.iter().find(|r| r.name == name)
            };
            let (Some(a), Some(b)) = (found(base), found(new)) else {
                continue;
            };
            let new_name = new.version.as_ref().map_or("", |v| v.name.as_str());
            let label = format!(
                "{}::{} ({} -> {new_name})",
                suite.name, version.case, version.name
            );
            out.extend(
                compare(a, b, tolerance)
                    .into_iter()
                    .map(|change| Difference {
                        case: label.clone(),
                        change,
                    }),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
