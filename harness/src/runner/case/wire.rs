//! The case's packets: captured from before its first step to its end,
//! put on the record as typed segments, and counted by `sent` and `first`.

use std::time::{Duration, Instant};

use super::hosts::in_host;
use super::{CheckEnd, POLL_INTERVAL, Shared, later};
use crate::model::Side;
use crate::observe::{self};
use crate::record::{EventKind, SegmentSeen, Shortfall, StepId};
use crate::report::FailureKind;
use crate::suite::{Case, LineCount, Outgoing, Segments};
use crate::verdict::{self, Mismatch};

/// Starts capturing the case's packets, on its thread (so in its
/// namespace). A capture the kernel refuses is noted; the case goes on
/// without its packets.
pub(super) fn start_capture(shared: &Shared) {
    if !shared.capture_packets {
        return;
    }
    let mut started = vec![observe::Capture::start()];
    if let Some(hosts) = shared.hosts.get() {
        started.push(
            in_host(&hosts.client, |_| observe::Capture::start()).unwrap_or_else(|e| {
                Err(observe::ObserveError::Capture {
                    doing: "starting a capture on the client's host",
                    source: std::io::Error::other(e.to_string()),
                })
            }),
        );
    }
    let mut captures = shared.capture.lock().unwrap_or_else(|p| p.into_inner());
    for capture in started {
        match capture {
            Ok(capture) => captures.push(capture),
            Err(err) => shared.push(
                Instant::now(),
                None,
                EventKind::Shortfall {
                    what: Shortfall::CaptureNotStarted,
                    error: err.to_string(),
                },
            ),
        }
    }
}

/// The most packets a case's timeline shows (a case streaming megabytes
/// sends thousands); the pcap keeps them all.
pub(super) const TIMELINE_PACKETS: usize = 5000;

/// Ends the capture: every TCP segment goes on the record, on the case's
/// clock, with its sender's side and its sequence numbers relative to
/// each direction's first; for a failed case (or with `--keep-artifacts`)
/// the frames go to `capture.pcap` in its artifact folder.
pub(super) fn end_capture(shared: &Shared) {
    let captures = std::mem::take(&mut *shared.capture.lock().unwrap_or_else(|p| p.into_inner()));
    if captures.is_empty() {
        return;
    }
    let bases = |frames: &[observe::Frame]| {
        let mut bases: std::collections::HashMap<
            (std::net::SocketAddr, std::net::SocketAddr),
            u32,
        > = std::collections::HashMap::new();
        for segment in frames.iter().filter_map(observe::Frame::segment) {
            let key = (segment.from, segment.to);
            if segment.flags.contains(crate::model::TcpFlags::SYN) {
                bases.insert(key, segment.seq);
            } else {
                bases.entry(key).or_insert(segment.seq);
            }
        }
        bases
    };
    // Every host's frames, in the order the kernels stamped them.
    let mut frames: Vec<(Instant, observe::Frame)> = Vec::new();
    let mut dropped = 0;
    for capture in captures {
        match capture.finish() {
            Ok((captured, socket)) => {
                crate::runner::reaper::drop_later(socket);
                dropped += captured.dropped;
                frames.extend(
                    captured
                        .frames
                        .iter()
                        .map(|f| (captured.instant(f.stamp), f.clone())),
                );
            }
            Err(err) => shared.push(
                Instant::now(),
                None,
                EventKind::Shortfall {
                    what: Shortfall::CaptureFailed,
                    error: err.to_string(),
                },
            ),
        }
    }
    frames.sort_by_key(|(_, f)| f.stamp);
    let (instants, frames): (Vec<Instant>, Vec<observe::Frame>) = frames.into_iter().unzip();
    let bases = bases(&frames);
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    let mut recorded = 0;
    for (frame, at) in frames.iter().zip(instants) {
        if recorded == TIMELINE_PACKETS {
            shared.push(
                Instant::now(),
                None,
                EventKind::PacketsCut {
                    shown: TIMELINE_PACKETS,
                    captured: frames.len(),
                },
            );
            break;
        }
        let Some(segment) = frame.segment() else {
            continue;
        };
        let lost_to = frame.data.get(14..).and_then(|ip| faults.took(ip));
        let held = frame.data.get(14..).and_then(|ip| faults.delayed(ip));
        let base = |key| bases.get(&key).copied().unwrap_or(0);
        let sender = shared
            .case
            .side_sending(segment.from.port(), segment.to.port());
        let receiver = shared
            .case
            .side_sending(segment.to.port(), segment.from.port());
        shared.push(
            at,
            sender,
            EventKind::Packet {
                from: segment.from,
                to: segment.to,
                to_side: receiver,
                flags: segment.flags,
                seq: segment.seq.wrapping_sub(base((segment.from, segment.to))),
                ack: segment.ack.wrapping_sub(base((segment.to, segment.from))),
                window: segment.window,
                len: segment.len,
                lost_to,
                held,
            },
        );
        recorded += 1;
    }
    if faults.untold {
        shared.push(Instant::now(), None, EventKind::LossesUntold);
    }

    drop(faults);
    if dropped > 0 {
        shared.push(
            Instant::now(),
            None,
            EventKind::CaptureFull {
                kept: frames.len(),
                dropped,
            },
        );
    }
    if shared.control().failure.is_none() && !shared.keep_artifacts {
        return;
    }
    if let Ok(dir) = shared.record.artifacts() {
        let written = std::fs::File::create(dir.join("capture.pcap"))
            .and_then(|file| observe::write_pcap(std::io::BufWriter::new(file), &frames));
        if let Err(err) = written {
            shared.push(
                Instant::now(),
                None,
                EventKind::Shortfall {
                    what: Shortfall::PcapNotWritten,
                    error: err.to_string(),
                },
            );
        }
    }
}

/// Every TCP segment the capture has seen so far, with when it arrived;
/// an error when the case has no capture.
pub(super) fn captured_segments(
    shared: &Shared,
) -> Result<Vec<(Instant, observe::Segment)>, String> {
    let captures = shared.capture.lock().unwrap_or_else(|p| p.into_inner());
    if captures.is_empty() {
        return Err("the case has no packet capture (see its timeline)".into());
    }
    let mut all: Vec<(Instant, observe::Segment)> = Vec::new();
    for capture in captures.iter() {
        let captured = capture.frames();
        all.extend(
            captured
                .frames
                .iter()
                .filter_map(|f| f.segment().map(|s| (captured.instant(f.stamp), s))),
        );
    }
    all.sort_by_key(|(at, _)| *at);
    Ok(all)
}

/// Whether `segment` is one `segments` names.
pub(super) fn is_one_of(case: &Case, segment: &observe::Segment, segments: &Segments) -> bool {
    sent_by(case, segment, &segments.outgoing)
        && segments.window.is_none_or(|w| {
            segment.window == w && !segment.flags.contains(crate::model::TcpFlags::RST)
        })
}

/// Whether `segment` is one of `outgoing`: sent by its side (to its `to`),
/// with its flags and data.
fn sent_by(case: &Case, segment: &observe::Segment, outgoing: &Outgoing) -> bool {
    let (from, to) = (segment.from.port(), segment.to.port());
    case.side_sending(from, to) == Some(outgoing.from)
        && outgoing
            .to
            .is_none_or(|side| case.side_sending(to, from) == Some(side))
        && outgoing.flags.is_none_or(|f| f.matches(segment.flags))
        && outgoing.data.is_none_or(|d| (segment.len > 0) == d)
}

/// `RST seq 5 win 0 at 12.3 ms`, for reports.
pub(super) fn segment_at(shared: &Shared, at: Instant, segment: &observe::Segment) -> String {
    format!(
        "{} ({} B, win {}) at {}",
        segment.flags,
        segment.len,
        segment.window,
        verdict::millis(shared.at(at))
    )
}

/// Counts the segments `segments` names until there is one or `within`
/// passes (with a count: until `within` passes); the count goes on the
/// record.
pub(super) fn check_sent(
    shared: &Shared,
    side: Side,
    step: StepId,
    segments: &Segments,
    packets: LineCount,
    within: Option<Duration>,
) -> Result<(), CheckEnd> {
    let until = later(within.unwrap_or_default());
    let since = match &segments.since {
        None => None,
        Some(label) => match shared.control().marks.get(label) {
            Some(at) => Some(*at),
            None => {
                return Err(Some((
                    FailureKind::Script,
                    None,
                    format!(
                        "no side had reached `mark = {label:?}` yet, so there is no \"since\" to count from"
                    ),
                )));
            }
        },
    };
    loop {
        let all =
            captured_segments(shared).map_err(|why| Some((FailureKind::Harness, None, why)))?;
        let matching: Vec<&(Instant, observe::Segment)> = all
            .iter()
            .filter(|(at, _)| since.is_none_or(|since| *at >= since))
            .filter(|(_, s)| is_one_of(&shared.case, s, segments))
            .collect();
        let now = Instant::now();
        if (packets == LineCount::AtLeastOne && !matching.is_empty()) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::SentCount {
                    step,
                    segments: segments.clone(),
                    count: matching.len() as u64,
                    wanted: packets,
                },
            );
            let examples: Vec<String> = matching
                .iter()
                .take(3)
                .map(|(at, s)| segment_at(shared, *at, s))
                .collect();
            // Whatever else the side sent there.
            let sender = Outgoing {
                flags: None,
                data: None,
                ..segments.outgoing
            };
            let instead: Vec<String> = all
                .iter()
                .filter(|(at, _)| since.is_none_or(|since| *at >= since))
                .filter(|(_, s)| sent_by(&shared.case, s, &sender))
                .map(|(_, s)| s.flags.to_string())
                .collect();
            let otherwise = match instead.len() {
                0 => format!("the {} sent no segment", segments.outgoing.from),
                n if n <= 12 => {
                    format!("the {} sent {}", segments.outgoing.from, instead.join(", "))
                }
                n => format!(
                    "the {} sent {}, ... ({n} in all)",
                    segments.outgoing.from,
                    instead[..12].join(", ")
                ),
            };
            return verdict::judge_sent(
                &segments.to_string(),
                packets,
                within,
                matching.len(),
                &examples,
                &otherwise,
            )
            .map_err(|m| {
                let what = m.to_string();
                Some((FailureKind::Expectation, Some(m), what))
            });
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}

/// Waits up to `within` for a segment with `flags`, and judges whether
/// the first was `from`'s.
pub(super) fn check_first(
    shared: &Shared,
    side: Side,
    step: StepId,
    from: Side,
    flags: crate::model::FlagMatch,
    within: Option<Duration>,
) -> Result<(), CheckEnd> {
    let until = later(within.unwrap_or_default());
    loop {
        let all =
            captured_segments(shared).map_err(|why| Some((FailureKind::Harness, None, why)))?;
        let first = all.iter().find(|(_, s)| flags.matches(s.flags));
        let now = Instant::now();
        if first.is_some() || now >= until {
            let sender =
                first.and_then(|(_, s)| shared.case.side_sending(s.from.port(), s.to.port()));
            let observed = match (first, sender) {
                (None, _) => format!("no {flags} segment"),
                (Some((at, s)), Some(sender)) => {
                    format!("the {sender}'s: {}", segment_at(shared, *at, s))
                }
                (Some((at, s)), None) => {
                    format!("one from {}: {}", s.from, segment_at(shared, *at, s))
                }
            };
            shared.push(
                now,
                Some(side),
                EventKind::FirstSegment {
                    step,
                    flags,
                    first: first.map(|(at, s)| SegmentSeen {
                        at: shared.at(*at),
                        side: sender,
                        from: s.from,
                        flags: s.flags,
                        len: s.len,
                        window: s.window,
                    }),
                },
            );
            if sender == Some(from) {
                return Ok(());
            }
            let when = within
                .map(|d| format!(" within {}", verdict::millis(d)))
                .unwrap_or_default();
            let mismatch = Mismatch {
                kind: verdict::MismatchKind::Packets,
                expected: format!("the first {flags} segment to be the {from}'s{when}"),
                observed,
            };
            let what = mismatch.to_string();
            return Err(Some((FailureKind::Expectation, Some(mismatch), what)));
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}
