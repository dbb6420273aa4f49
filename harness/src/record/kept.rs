//! What a case's record keeps of the events it may see without bound: a
//! program's output lines, its traced socket calls, and the rounds of a
//! loop. Of each (per side, and per loop), the first and the last events,
//! each part bounded in number and, for output, in bytes; what lies
//! between is counted in one [`EventKind::LeftOut`] where it began.
//!
//! This bounds what a case holds in memory and writes to every report
//! (the timeline, JUnit, JSON), whatever a program prints or a loop of a
//! million rounds does; `program.log` keeps more of the output.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Event, EventKind};
use crate::model::Side;

/// The kinds of events a case may record without bound.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Flood {
    /// A program's output lines.
    Output,
    /// A program's traced socket calls.
    Traced,
    /// The events of a loop's rounds (one loop's).
    Rounds,
}

impl Flood {
    /// How much of it each part (the first, the last) keeps.
    pub fn kept(self) -> Kept {
        match self {
            // 2 x 256 KiB of text per side at most, whatever the lines.
            Flood::Output => Kept {
                events: 100,
                bytes: 256 << 10,
            },
            // A traced call is about 200 bytes in JSON.
            Flood::Traced => Kept {
                events: 500,
                bytes: usize::MAX,
            },
            // A call is about 250 bytes in JSON: 2 x 250 KB per loop.
            Flood::Rounds => Kept {
                events: 1000,
                bytes: usize::MAX,
            },
        }
    }

    /// What kind `kind` is, and where it is counted apart (a loop's step
    /// index); `None` for an event always kept.
    fn of(kind: &EventKind) -> Option<(Flood, usize)> {
        match kind {
            EventKind::Output { .. } => Some((Flood::Output, 0)),
            EventKind::Traced { .. } => Some((Flood::Traced, 0)),
            _ => {
                let step = kind.step()?;
                step.round.map(|_| (Flood::Rounds, step.index))
            }
        }
    }
}

/// How much of a [`Flood`] each part of a record keeps.
#[derive(Debug, Clone, Copy)]
pub struct Kept {
    /// At most this many events.
    pub events: usize,
    /// Holding at most this many bytes of text (output lines).
    pub bytes: usize,
}

/// The bytes of text an event holds, as its flood's bound counts them, and
/// as a count of what was left out says (a cut line's whole length).
fn size(kind: &EventKind) -> (usize, u64) {
    match kind {
        EventKind::Output { line, cut, .. } => (line.len(), line.len() as u64 + cut),
        _ => (0, 0),
    }
}

/// What a record holds: its events, and the last events of each flood
/// past its first ones, which join the events when the record is read.
#[derive(Debug, Default)]
pub(super) struct Events {
    list: Vec<Event>,
    floods: Vec<(FloodKey, Share)>,
}

/// Whose flood a share holds: a side's, of a kind, apart per loop (its
/// step index; 0 for the other kinds).
type FloodKey = (Option<Side>, Flood, usize);

impl Events {
    /// Takes an event: among the list, or into its flood's share.
    pub(super) fn push(&mut self, event: Event) {
        let Some((flood, apart)) = Flood::of(&event.kind) else {
            self.list.push(event);
            return;
        };
        let key = (event.side, flood, apart);
        let share = match self.floods.iter().position(|(k, _)| *k == key) {
            Some(at) => &mut self.floods[at].1,
            None => {
                self.floods.push((key, Share::default()));
                let last = self.floods.len() - 1;
                &mut self.floods[last].1
            }
        };
        if let Some(event) = share.take(event, flood.kept()) {
            self.list.push(event);
        }
    }

    /// Every event held, in no particular order.
    pub(super) fn all(&self) -> Vec<Event> {
        let mut all = self.list.clone();
        for ((side, flood, _), share) in &self.floods {
            all.extend(share.events(*side, *flood));
        }
        all
    }
}

/// One flood as a record keeps it.
#[derive(Debug, Default)]
struct Share {
    /// Events and bytes kept among the list from the first.
    first: (usize, usize),
    /// Whether the first part is full: every later event goes to `last`.
    first_full: bool,
    /// The latest events past the first part, and the bytes they hold.
    last: VecDeque<Event>,
    last_bytes: usize,
    /// Events pushed out of `last`: when the first was, how many, how many
    /// bytes.
    left_out: Option<(Duration, u64, u64)>,
}

impl Share {
    /// Takes an event; `Some` when it belongs in the list (the first
    /// part), `None` when the share keeps it.
    fn take(&mut self, event: Event, kept: Kept) -> Option<Event> {
        let (len, _) = size(&event.kind);
        let (events, bytes) = &mut self.first;
        if !self.first_full && *events < kept.events && bytes.saturating_add(len) <= kept.bytes {
            *events += 1;
            *bytes += len;
            return Some(event);
        }
        self.first_full = true;
        self.last.push_back(event);
        self.last_bytes += len;
        while self.last.len() > kept.events || self.last_bytes > kept.bytes {
            let Some(gone) = self.last.pop_front() else {
                break;
            };
            let (len, whole) = size(&gone.kind);
            self.last_bytes -= len;
            let left = self.left_out.get_or_insert((gone.at, 0, 0));
            left.1 += 1;
            left.2 += whole;
        }
        None
    }

    /// The events the share holds: the last ones, and the count of those
    /// left out before them.
    fn events(&self, side: Option<Side>, of: Flood) -> impl Iterator<Item = Event> + '_ {
        let left_out = self.left_out.map(|(at, events, bytes)| Event {
            at,
            side,
            kind: EventKind::LeftOut { of, events, bytes },
        });
        left_out.into_iter().chain(self.last.iter().cloned())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::record::{Recorder, Stream};

    fn left_out(events: &[Event]) -> Vec<&Event> {
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::LeftOut { .. }))
            .collect()
    }

    /// A record given 10,000 lines of one side keeps the first and the
    /// last 100 lines and counts the rest in one event, where the first of
    /// them was printed; another side's lines keep their own share.
    #[test]
    fn a_flood_of_output_keeps_its_first_and_last_lines_and_counts_the_rest() {
        let record = Recorder::new(std::env::temp_dir(), "unused-".into());
        let start = Instant::now();
        record.start_clock(start);
        let line = |n: u64| EventKind::Output {
            stream: Stream::Out,
            line: format!("line {n:05}"),
            cut: 0,
        };
        for n in 0..10_000u64 {
            record.push(
                start + Duration::from_millis(n),
                Some(Side::Server),
                line(n),
            );
        }
        record.push(start, Some(Side::Client), line(7));
        let events = record.finish().events;
        let lines: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Output { line, .. } if e.side == Some(Side::Server) => {
                    Some(line.clone())
                }
                _ => None,
            })
            .collect();
        let kept = Flood::Output.kept().events;
        assert_eq!(lines.len(), 2 * kept);
        assert_eq!(lines[kept - 1], "line 00099");
        assert_eq!(lines[kept], "line 09900");
        let left = left_out(&events);
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].at, Duration::from_millis(100));
        assert_eq!(
            left[0].kind,
            EventKind::LeftOut {
                of: Flood::Output,
                events: 9_800,
                bytes: 9_800 * 10
            }
        );
        assert!(events.iter().any(|e| e.side == Some(Side::Client)));
    }

    /// Lines of the cap's length fill each part by bytes long before its
    /// line count: what the record holds of a side's output stays under
    /// twice the part's bytes, and a cut line counts what it left out.
    #[test]
    fn long_lines_are_kept_by_bytes() {
        let record = Recorder::new(std::env::temp_dir(), "unused-".into());
        let start = Instant::now();
        record.start_clock(start);
        for n in 0..50u64 {
            record.push(
                start + Duration::from_millis(n),
                Some(Side::Server),
                EventKind::Output {
                    stream: Stream::Err,
                    line: "x".repeat(64 << 10),
                    cut: 1000,
                },
            );
        }
        let events = record.finish().events;
        let held: usize = events.iter().map(|e| size(&e.kind).0).sum();
        assert_eq!(held, 8 * (64 << 10));
        let left = left_out(&events);
        assert_eq!(
            left[0].kind,
            EventKind::LeftOut {
                of: Flood::Output,
                events: 42,
                bytes: 42 * ((64 << 10) + 1000)
            }
        );
    }

    /// Two loops of 5,000 rounds each keep the first and last rounds of
    /// each, counted apart; steps outside loops are all kept.
    #[test]
    fn each_loop_keeps_its_first_and_last_rounds() {
        use crate::model::{CallResult, Outcome};
        use crate::record::StepId;
        use crate::suite::SocketCall;
        let record = Recorder::new(std::env::temp_dir(), "unused-".into());
        let start = Instant::now();
        record.start_clock(start);
        let call = |index, round: Option<u32>| EventKind::Call {
            step: StepId {
                index,
                body: round.map(|_| 0),
                round,
            },
            call: SocketCall::Close,
            on: None,
            took: Duration::ZERO,
            busy: Duration::ZERO,
            result: CallResult {
                outcome: Outcome::Ok,
                bytes: 0,
                ready: None,
                short: None,
            },
        };
        for index in [1, 3] {
            for round in 1..=5_000 {
                record.push(start, Some(Side::Client), call(index, Some(round)));
            }
        }
        for index in [0, 2, 4] {
            record.push(start, Some(Side::Client), call(index, None));
        }
        let events = record.finish().events;
        let kept = Flood::Rounds.kept().events;
        assert_eq!(events.len(), 2 * (2 * kept + 1) + 3);
        let left = left_out(&events);
        assert_eq!(left.len(), 2);
        for event in left {
            assert_eq!(
                event.kind,
                EventKind::LeftOut {
                    of: Flood::Rounds,
                    events: 5_000 - 2 * kept as u64,
                    bytes: 0
                }
            );
        }
    }
}
