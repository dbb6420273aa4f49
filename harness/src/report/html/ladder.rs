//! One case's ladder: a column per side, time running down, each
//! captured segment an arrow from its sender to its receiver, and each
//! side's calls, states, traced syscalls and lines in its margin.
//!
//! The same events and the same folding as the terminal's ladder
//! (`report::timeline`), drawn for a browser: every segment is an arrow
//! element (`g.segment`), the ones a long run of plain segments folds
//! included (drawn hidden, so that the page holds every one the JSON
//! report does); a lost one stops half way at an X naming its fault; a
//! gap in time longer than [`GAP`] is folded into one marked row.
//!
//! Laid out here, drawn by the page's script: a page of 1,000 cases
//! holds 1,000 ladders nobody opens, and their SVG was most of the page
//! and of the time it took to write. So a ladder is written as rows, one
//! line each, in a `div.ladder-box.rows` that the script (`page.js`,
//! `draw`) turns into the SVG when its case opens, every position
//! computed here. A row is a letter and numbers, then its texts, each on
//! a line of its own starting with `|` (so no text reads as a row: texts
//! went through [`Escaped`], which holds no line break):
//!
//! - `L width height top time row middle chars`: the picture, where its
//!   header ends, the time column's right edge, a row's height, the
//!   middle of the first span (where gap and fold notes are centred),
//!   the characters of a margin's text drawn (the rest in its tooltip);
//! - `C x side`: a side's name and lifeline; `H x` + text: its host;
//! - `G y` + text: a folded gap in time; `N y` + text: a fold's note;
//! - `S y x1 x2 ms` + label: a segment; `X y x1 x2 ms` + label + fault:
//!   a lost one, ending half way at `x2`; `F y x1 x2 ms` + label: a
//!   folded one (`g.segment.folded`, hidden);
//! - `T y x anchor classes ms` + text: an event in a margin, its classes
//!   joined by `.` (`event.call.errno.failing`); the failed step's
//!   expected and observed are two such rows under its last event, of
//!   class `verdict`, drawn without their time.
//!
//! The texts are escaped for HTML as any other text of the page, and
//! the script puts them in text nodes: a suite's text never becomes
//! markup.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use maud::{Escaper, Markup, PreEscaped};

use crate::model::{Escaped, Outcome, Side};
use crate::record::{Event, EventKind, StepId, Timeline};
use crate::report::StepRef;
use crate::report::timeline::{Fold, fold_plain_segments};
use crate::verdict::Mismatch;

/// A pause between two events longer than this is drawn as one folded row
/// saying how long it was, not to scale.
const GAP: Duration = Duration::from_millis(150);
/// Height of one row, px.
const ROW: u32 = 20;
/// Width of the time column, px.
const TIME: u32 = 64;
/// Characters of an event's text drawn; the rest is in its tooltip.
const TEXT_CHARS: usize = 52;
/// Width of a side's margin (its calls' text), px: [`TEXT_CHARS`] of the
/// 12 px monospace font (0.6 em a character, 7.2 px; 7.5 leaves room for
/// fonts a little wider) and the 8 px between the text and its lifeline,
/// so that no text runs into the time column or off the picture.
const MARGIN: u32 = 8 + TEXT_CHARS as u32 * 15 / 2;
/// Distance between two sides' lifelines, px.
const SPAN: u32 = 300;

/// How an event is drawn.
enum Row<'a> {
    /// A segment between two sides' lifelines.
    Segment {
        from: usize,
        to: usize,
        label: String,
        lost: Option<String>,
        event: &'a Event,
    },
    /// Text in a side's margin (or across, for the case as a whole).
    Text {
        column: Option<usize>,
        text: String,
        class: &'static str,
        event: &'a Event,
    },
}

/// Which steps' events a ladder highlights: the failed step's, and the
/// steps whose observations changed between two runs (a diff).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Marks<'a> {
    /// The failed step (`.failing`).
    pub(super) failed: Option<&'a StepRef>,
    /// What it expected and observed, written on two rows under its last
    /// event (`.verdict`): the reader sees why the step failed where it
    /// failed, not only in the box above the picture.
    pub(super) mismatch: Option<&'a Mismatch>,
    /// The steps an observation of changed at (`.changed`).
    pub(super) changed: &'a [(Side, StepId)],
}

/// The ladder of `timeline`, the events of the steps in `marks`
/// highlighted.
pub(super) fn ladder(timeline: &Timeline, marks: Marks<'_>) -> Markup {
    let failed = marks.failed;
    let columns: Vec<Side> = Side::ALL
        .into_iter()
        .filter(|side| {
            *side != Side::Proxy || timeline.events.iter().any(|e| e.side == Some(Side::Proxy))
        })
        .collect();
    let column_of = |side: Option<Side>| side.and_then(|s| columns.iter().position(|c| *c == s));
    // A segment whose one end the case does not tell (a client's SYN to a
    // port nobody listens on, and the RST the kernel answers it with) is
    // drawn to the column that end plays for the other: the side a client
    // connects to (the proxy when there is one, else the server), or the
    // side that connects to a server. The record keeps it untold.
    let peer = |column: usize| match columns.get(column) {
        Some(Side::Client) => column_of(Some(Side::Proxy)).or(column_of(Some(Side::Server))),
        Some(Side::Server) => column_of(Some(Side::Proxy)).or(column_of(Some(Side::Client))),
        _ => None,
    };
    let ends = |from: Option<usize>, to: Option<usize>| match (from, to) {
        (Some(from), None) => (Some(from), peer(from)),
        (None, Some(to)) => (peer(to), Some(to)),
        both => both,
    };
    let x_of = |column: usize| TIME + MARGIN + SPAN * column as u32;
    let width = x_of(columns.len() - 1) + MARGIN;
    let folded = fold_plain_segments(&timeline.events);

    // Lay the rows out first: each event one row (a folded segment shares
    // its run's summary row), a long gap one more.
    let mut rows: Vec<(u32, Row<'_>, bool)> = Vec::new();
    let mut gaps: Vec<(u32, Duration)> = Vec::new();
    let mut notes: Vec<(u32, String)> = Vec::new();
    // Each side's host, by the address its segments came from: named
    // under the side when the sides are on different hosts (a case with
    // a second host joined by a veth pair), so two hosts read as two.
    let hosts: Vec<Option<IpAddr>> = columns
        .iter()
        .map(|side| {
            timeline.events.iter().find_map(|e| match e.kind {
                EventKind::Packet { from, .. } if e.side == Some(*side) => Some(from.ip()),
                _ => None,
            })
        })
        .collect();
    let known: Vec<IpAddr> = hosts.iter().flatten().copied().collect();
    let two_hosts = known.windows(2).any(|w| w[0] != w[1]);
    // The header: the sides' names, and their hosts under them.
    let top = if two_hosts { ROW + 12 } else { ROW };
    let mut y = top + ROW;
    let mut last_at: Option<Duration> = None;
    let mut fold_row = 0;
    // The failed step's last event drawn: its expected and observed go
    // under it.
    let verdict_after = failed.and(marks.mismatch).and_then(|_| {
        let step = failed?;
        timeline.events.iter().rposition(|e| {
            e.side == Some(step.side)
                && e.kind.step() == Some(step.step)
                && !matches!(e.kind, EventKind::Packet { .. })
                && e.describe().is_some()
        })
    });
    for (i, event) in timeline.events.iter().enumerate() {
        let fold = if folded.is_empty() {
            None
        } else {
            folded.get(&i)
        };
        // A folded run's first hidden segment carries its summary: the
        // summary takes a row, the segments none (drawn hidden on it).
        let summary = matches!(fold, Some(Fold::Summary { .. }));
        let hidden = summary || matches!(fold, Some(Fold::Hidden));
        if !hidden || summary {
            if let Some(at) = last_at {
                if event.at.saturating_sub(at) > GAP {
                    y += ROW;
                    gaps.push((y, event.at - at));
                }
            }
            last_at = Some(event.at);
            y += ROW;
        }
        if let Some(Fold::Summary { segments, bytes }) = fold {
            fold_row = y;
            notes.push((
                y,
                format!("… {segments} more segments without SYN, FIN, RST or a zero window ({bytes} B of data), folded"),
            ));
        }
        let at_y = if hidden { fold_row } else { y };
        let Some(text) = event.describe() else {
            continue;
        };
        let row = match &event.kind {
            EventKind::Packet {
                to_side, lost_to, ..
            } => match ends(column_of(event.side), column_of(*to_side)) {
                (Some(from), Some(to)) if from != to => Row::Segment {
                    from,
                    to,
                    label: text,
                    lost: lost_to.as_ref().map(ToString::to_string),
                    event,
                },
                _ => Row::Text {
                    column: None,
                    text,
                    class: "segment-text",
                    event,
                },
            },
            kind => Row::Text {
                column: column_of(event.side),
                text,
                class: class_of(kind),
                event,
            },
        };
        rows.push((at_y, row, hidden));
        if let (Some(true), Some(m)) = (verdict_after.map(|v| v == i), marks.mismatch) {
            for said in [
                format!("expected {}", m.expected),
                format!("observed {}", m.observed),
            ] {
                y += ROW;
                rows.push((
                    y,
                    Row::Text {
                        column: column_of(event.side),
                        text: said,
                        class: "verdict",
                        event,
                    },
                    false,
                ));
            }
        }
    }
    let height = y + ROW * 2;
    let failing_step = failed.map(|s| (s.side, s.step));

    // Written as rows the page's script draws (see the module's doc);
    // `fmt::Write` into a `String` cannot fail.
    let mut out = String::with_capacity(96 * (rows.len() + columns.len() + 2));
    out.push_str("<div class=\"ladder-box rows\">");
    let _ = writeln!(
        out,
        "L {width} {height} {top} {TIME} {ROW} {} {TEXT_CHARS}",
        TIME + MARGIN + SPAN / 2
    );
    for (column, side) in columns.iter().enumerate() {
        let _ = writeln!(out, "C {} {}", x_of(column), side.name());
        if two_hosts {
            let _ = writeln!(out, "H {}", x_of(column));
            match hosts[column] {
                Some(ip) => line(&mut out, &format!("host {ip}")),
                None => line(&mut out, "host ?"),
            }
        }
    }
    for (gy, gap) in &gaps {
        let _ = writeln!(out, "G {gy}");
        line(
            &mut out,
            &format!("⋯ {} later ⋯", crate::verdict::millis(*gap)),
        );
    }
    for (ny, note) in &notes {
        let _ = writeln!(out, "N {ny}");
        line(&mut out, note);
    }
    for (ry, row, hidden) in &rows {
        match row {
            Row::Segment {
                from,
                to,
                label,
                lost,
                event,
            } => {
                let (x1, x2) = (x_of(*from), x_of(*to));
                let end = if lost.is_some() { (x1 + x2) / 2 } else { x2 };
                let kind = match (hidden, lost) {
                    (true, _) => 'F',
                    (false, Some(_)) => 'X',
                    (false, None) => 'S',
                };
                let _ = writeln!(out, "{kind} {ry} {x1} {end} {}", Ms(event.at));
                line(&mut out, label);
                if let (false, Some(fault)) = (hidden, lost) {
                    line(&mut out, fault);
                }
            }
            Row::Text {
                column,
                text,
                class,
                event,
            } => {
                let (x, anchor) = match column {
                    Some(0) => (x_of(0) - 8, "end"),
                    Some(c) => (x_of(*c) + 8, "start"),
                    None => (TIME + 4, "start"),
                };
                let errno = matches!(&event.kind, EventKind::Call { result, .. } if matches!(result.outcome, Outcome::Errno(_)))
                    || matches!(&event.kind, EventKind::Traced { call } if matches!(call.result.outcome, Outcome::Errno(_)));
                let step_failed = failing_step.is_some_and(|(side, step)| {
                    event.side == Some(side) && event.kind.step() == Some(step)
                });
                let step_changed = marks.changed.iter().any(|(side, step)| {
                    event.side == Some(*side) && event.kind.step() == Some(*step)
                });
                let _ = write!(out, "T {ry} {x} {anchor} event.{class}");
                for (on, name) in [
                    (errno, ".errno"),
                    (step_failed, ".failing"),
                    (step_changed, ".changed"),
                ] {
                    if on {
                        out.push_str(name);
                    }
                }
                let _ = writeln!(out, " {}", Ms(event.at));
                line(&mut out, text);
            }
        }
    }
    out.push_str("</div>");
    PreEscaped(out)
}

/// One text line of a ladder's rows: `|` and `text`, its controls
/// escaped by [`Escaped`] (so that it holds no line break), then for HTML.
fn line(out: &mut String, text: &str) {
    out.push('|');
    if text
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        // Nothing for `Escaped` to do (the common case): HTML's own
        // characters only, the plain runs between them copied whole.
        let mut plain = 0;
        for (at, b) in text.bytes().enumerate() {
            let escape = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => continue,
            };
            out.push_str(&text[plain..at]);
            out.push_str(escape);
            plain = at + 1;
        }
        out.push_str(&text[plain..]);
    } else {
        let _ = write!(Escaper::new(out), "{}", Escaped(text));
    }
    out.push('\n');
}

/// The class of an event drawn as text: what kind of fact it is.
fn class_of(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Call { .. } | EventKind::InFlight { .. } => "call",
        EventKind::State { .. } => "state",
        EventKind::Traced { .. } => "traced",
        EventKind::Output { .. } | EventKind::LeftOut { .. } => "output",
        EventKind::ProgramStarted { .. }
        | EventKind::ProgramReady { .. }
        | EventKind::ProgramExited { .. }
        | EventKind::Signal { .. } => "program",
        EventKind::FaultPut { .. } | EventKind::FaultLifted { .. } => "fault",
        _ => "note",
    }
}

/// Milliseconds, as the terminal's ladder writes them.
struct Ms(Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:.1}` of the float, from the whole nanoseconds (a float's
        // formatting was a good part of a ladder's time): the float is
        // off by far less than a nanosecond below 10^5 s, so it rounds
        // as the nanoseconds do, but at exactly half a tenth, where it
        // may round either way: that, and longer times, as the float.
        let nanos = self.0.as_nanos();
        let (tenths, rest) = (nanos / 100_000, nanos % 100_000);
        if rest != 50_000 && self.0.as_secs() < 100_000 {
            let tenths = tenths + u128::from(rest > 50_000);
            write!(f, "{}.{}", tenths / 10, tenths % 10)
        } else {
            write!(f, "{:.1}", self.0.as_secs_f64() * 1000.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_read_as_the_float_writes_them() {
        let float = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let mut nanos: Vec<u64> = Vec::new();
        for base in [
            0,
            1_000_000,
            7_300_000,
            999_950_000,
            12_345_678_900_000,
            99_999_999_950_000,
        ] {
            for near in [0u64, 1, 2, 49_999, 50_000, 50_001, 99_999, 100_000, 100_001] {
                nanos.push(base + near);
                nanos.push(base.saturating_sub(near));
            }
        }
        // A spread of others, deterministic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            nanos.push(x % 200_000_000_000_000);
        }
        for n in nanos {
            let d = Duration::from_nanos(n);
            assert_eq!(Ms(d).to_string(), float(d), "{n} ns");
        }
    }
}
