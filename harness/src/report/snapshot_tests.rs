//! Whole outputs pinned: one hand-built case, with an event of every kind,
//! through every writer (the terminal's failure and timeline, JUnit, JSON).
//! A change to a report is then a reviewed change of a snapshot under
//! `snapshots/`, never a substring that still matches. After a deliberate
//! change: `cargo insta review` (or `INSTA_UPDATE=always cargo test` and
//! `git diff`).

use std::net::SocketAddr;
use std::time::Duration;

use super::diff::{Change, Difference, Observation, Observed};
use super::*;
use crate::fault::DelayTrouble;
use crate::model::{
    CallResult, Errno, Exit, Link, Outcome, Port, Reject, Side, Socket, TcpFlags, TcpState, Verdict,
};
use crate::record::{
    EventKind, FaultSpec, HeldBy, HeldSocket, OpenFd, OutputLine, QueuedAt, SegmentSeen, Shortfall,
    StateSource, StepId, StopReason, Stream, Timeline, TracedSyscall, Unsettled,
};
use crate::suite::{Fault, HostCut, LineCount, Outgoing, Payload, Segments, SocketCall};
use crate::verdict::{Mismatch, MismatchKind};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("an address")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn result(outcome: Outcome, bytes: u64) -> CallResult {
    CallResult {
        outcome,
        bytes,
        ready: None,
        short: None,
    }
}

fn errno(raw: i32) -> Outcome {
    Outcome::Errno(Errno::from_raw(raw))
}

/// S2 as hangup records it, with one of every other event besides: the
/// client times out mid-stream and closes; the server's next writes fail.
fn timeline() -> Timeline {
    use nix::libc::{EAGAIN, EPIPE};
    let client = Some(Side::Client);
    let server = Some(Side::Server);
    let (c, s) = (addr("127.0.0.1:41234"), addr("127.0.0.1:8080"));
    let drop_syn = Fault {
        outgoing: Outgoing {
            from: Side::Client,
            to: None,
            flags: Some(TcpFlags::SYN.into()),
            data: None,
        },
        probability: None,
        verdict: Verdict::Drop,
        name: Some("syn".into()),
    };
    let delay = Fault {
        verdict: Verdict::Delay {
            by: ms(300),
            jitter: ms(0),
        },
        outgoing: Outgoing {
            from: Side::Server,
            to: None,
            flags: None,
            data: Some(true),
        },
        name: None,
        ..drop_syn.clone()
    };
    let packet_taken = |flags: TcpFlags,
                        seq: u32,
                        len: u32,
                        from_client: bool,
                        lost_to: Option<FaultSpec>,
                        held: Option<HeldBy>| EventKind::Packet {
        from: if from_client { c } else { s },
        to: if from_client { s } else { c },
        to_side: Some(if from_client {
            Side::Server
        } else {
            Side::Client
        }),
        flags,
        seq,
        ack: 1,
        window: 64,
        len,
        lost_to,
        held,
    };
    let packet = |flags: TcpFlags, seq: u32, len: u32, from_client: bool| {
        packet_taken(flags, seq, len, from_client, None, None)
    };
    let step = StepId::at;
    let events: Vec<(u64, Option<Side>, EventKind)> = vec![
        (
            0,
            server,
            EventKind::ProgramStarted {
                argv: vec!["/bin/stream".into(), "--port".into(), "8080".into()],
                pid: 4242,
            },
        ),
        (
            0,
            server,
            EventKind::Output {
                stream: Stream::Out,
                line: "listening on 127.0.0.1:8080".into(),
                cut: 0,
            },
        ),
        (
            1,
            server,
            EventKind::ProgramReady {
                port: 8080,
                role: Side::Server,
                for_suite: false,
            },
        ),
        (
            1,
            client,
            EventKind::FaultPut {
                step: step(1),
                fault: FaultSpec::Packets(drop_syn.clone()),
                ports: vec![Port::Destination(8080)],
                rules: 1,
            },
        ),
        (
            2,
            client,
            EventKind::Call {
                step: step(2),
                call: SocketCall::Connect {
                    addr: s,
                    timeout: None,
                    from: None,
                    nonblocking: false,
                    again: false,
                },
                on: None,
                took: ms(1003),
                busy: Duration::ZERO,
                result: result(Outcome::Ok, 0),
            },
        ),
        (
            2,
            client,
            packet_taken(
                TcpFlags::SYN,
                0,
                0,
                true,
                Some(FaultSpec::Packets(drop_syn.clone())),
                None,
            ),
        ),
        (
            1004,
            client,
            EventKind::FaultLifted {
                step: step(3),
                fault: FaultSpec::Packets(drop_syn),
                took: Some(1),
            },
        ),
        (1005, client, packet(TcpFlags::SYN, 0, 0, true)),
        (1005, server, packet(TcpFlags(0x12), 0, 0, false)),
        (1006, client, packet(TcpFlags::ACK, 1, 0, true)),
        (
            1006,
            server,
            EventKind::Traced {
                call: TracedSyscall {
                    syscall: "accept4".into(),
                    tid: 2,
                    fd: 3,
                    accepted: Some(4),
                    result: result(Outcome::Ok, 0),
                    took: ms(1002),
                    local: Some(s),
                    peer: Some(c),
                },
            },
        ),
        (
            1007,
            client,
            EventKind::Mark {
                step: step(4),
                label: "connected".into(),
            },
        ),
        (
            1008,
            client,
            EventKind::Call {
                step: step(5),
                call: SocketCall::Send {
                    payload: Payload::Text {
                        text: "GET /stream\n".into(),
                        repeat: 1,
                    },
                    timeout: None,
                },
                on: None,
                took: ms(0),
                busy: Duration::ZERO,
                result: result(Outcome::Ok, 12),
            },
        ),
        (
            1010,
            server,
            packet_taken(
                TcpFlags(0x18),
                1,
                1000,
                false,
                None,
                Some(HeldBy {
                    fault: FaultSpec::Packets(delay.clone()),
                    held: ms(300),
                }),
            ),
        ),
        (
            1011,
            client,
            EventKind::Call {
                step: StepId {
                    index: 6,
                    body: Some(1),
                    round: Some(2),
                },
                call: SocketCall::Recv {
                    max: 65536,
                    timeout: Some(ms(200)),
                },
                on: None,
                took: ms(200),
                busy: Duration::ZERO,
                result: result(errno(EAGAIN), 0),
            },
        ),
        (
            1211,
            client,
            EventKind::LoopEnded {
                step: step(6),
                round: 2,
            },
        ),
        (
            1212,
            client,
            EventKind::Call {
                step: step(7),
                call: SocketCall::Close,
                on: None,
                took: ms(0),
                busy: Duration::ZERO,
                result: result(Outcome::Ok, 0),
            },
        ),
        (1212, client, packet(TcpFlags(0x11), 13, 0, true)),
        (
            1213,
            server,
            EventKind::State {
                socket: Socket::Server,
                state: TcpState::CloseWait,
                source: StateSource::SockDiag,
                step: Some(step(8)),
                by: Some(Side::Client),
                samples: 3,
                on_the_way: true,
            },
        ),
        (
            1214,
            server,
            EventKind::State {
                socket: Socket::Server,
                state: TcpState::Close,
                source: StateSource::TcpInfo,
                step: Some(step(8)),
                by: Some(Side::Client),
                samples: 4,
                on_the_way: false,
            },
        ),
        (
            1215,
            server,
            EventKind::Traced {
                call: TracedSyscall {
                    syscall: "writev".into(),
                    tid: 3,
                    fd: 4,
                    accepted: None,
                    result: result(errno(EPIPE), 0),
                    took: ms(0),
                    local: Some(s),
                    peer: None,
                },
            },
        ),
        (1215, server, packet(TcpFlags(0x14), 1001, 0, false)),
        (
            1216,
            server,
            EventKind::Output {
                stream: Stream::Err,
                line: "client gone: Broken pipe".into(),
                cut: 0,
            },
        ),
        (
            1217,
            client,
            EventKind::LogCount {
                step: step(9),
                pattern: "client gone".into(),
                count: 1,
                wanted: LineCount::AtLeastOne,
            },
        ),
        (
            1218,
            client,
            EventKind::SyscallCount {
                step: step(10),
                which: crate::model::syscall::Which::parse("write").expect("write"),
                results: vec![errno(EPIPE)],
                count: 1,
                wanted: LineCount::AtLeastOne,
            },
        ),
        (
            1219,
            client,
            EventKind::SentCount {
                step: step(11),
                segments: Segments {
                    outgoing: Outgoing {
                        from: Side::Server,
                        to: None,
                        flags: Some(TcpFlags::RST.into()),
                        data: None,
                    },
                    window: None,
                    since: None,
                },
                count: 1,
                wanted: LineCount::Exactly(1),
            },
        ),
        (
            1220,
            client,
            EventKind::FirstSegment {
                step: step(12),
                flags: TcpFlags::FIN.into(),
                first: Some(SegmentSeen {
                    at: ms(1212),
                    side: client,
                    from: c,
                    flags: TcpFlags(0x11),
                    len: 0,
                    window: 64,
                }),
            },
        ),
        (
            1221,
            client,
            EventKind::TakenCount {
                step: step(13),
                fault: "syn".into(),
                count: 1,
                wanted: LineCount::AtLeastOne,
            },
        ),
        (
            1222,
            client,
            EventKind::AcceptQueue {
                step: step(14),
                of: Side::Server,
                waiting: 0,
            },
        ),
        (
            1223,
            client,
            EventKind::Held {
                step: step(15),
                sockets: vec![
                    HeldSocket {
                        pid: None,
                        fd: 4,
                        state: TcpState::Close,
                        local: None,
                        remote: None,
                        was: Some((s, c)),
                        of_the_case: true,
                    },
                    HeldSocket {
                        pid: Some(4243),
                        fd: 9,
                        state: TcpState::Established,
                        local: Some(addr("127.0.0.1:50000")),
                        remote: Some(addr("127.0.0.1:5432")),
                        was: None,
                        of_the_case: false,
                    },
                ],
                queued: vec![QueuedAt {
                    fd: 3,
                    local: s,
                    waiting: 1,
                }],
                fds: 8,
                fds_at_ready: Some(6),
                new_fds: vec![
                    OpenFd {
                        pid: None,
                        fd: 4,
                        target: "socket TCP".into(),
                    },
                    OpenFd {
                        pid: Some(4243),
                        fd: 9,
                        target: "socket TCP".into(),
                    },
                ],
            },
        ),
        (
            1224,
            client,
            EventKind::FaultPut {
                step: step(16),
                fault: FaultSpec::Host(HostCut {
                    side: Side::Client,
                    how: crate::sandbox::topology::Cut::LinkDown,
                    name: Some("sleep".into()),
                }),
                ports: vec![],
                rules: 0,
            },
        ),
        (
            1225,
            client,
            EventKind::Signal {
                step: step(17),
                signal: "SIGSTOP".into(),
            },
        ),
        (
            1226,
            client,
            EventKind::ProgramPaused {
                step: step(17),
                waited: ms(1),
                stopped: true,
            },
        ),
        (
            1227,
            Some(Side::Proxy),
            EventKind::InFlight {
                step: step(3),
                call: SocketCall::Recv {
                    max: 65536,
                    timeout: None,
                },
                on: Some(Link::Connected),
                took: ms(1200),
            },
        ),
        (
            1227,
            Some(Side::Proxy),
            EventKind::Whereabouts {
                step: step(3),
                source: "{ recv = true, on = \"server\" }".into(),
                location: "s02.toml:40:3".into(),
                in_flight: Some(ms(1200)),
            },
        ),
        (
            1228,
            None,
            EventKind::FaultAtEnd {
                fault: FaultSpec::Packets(Fault {
                    verdict: Verdict::Reject {
                        with: Reject::TcpReset,
                    },
                    ..delay.clone()
                }),
                took: Some(2),
                error: None,
            },
        ),
        (
            1228,
            None,
            EventKind::Delays {
                trouble: DelayTrouble::KernelDropped,
            },
        ),
        (
            1229,
            None,
            EventKind::Stopped {
                why: StopReason::Deadline,
            },
        ),
        (
            1230,
            None,
            EventKind::PacketsCut {
                shown: 5000,
                captured: 7000,
            },
        ),
        (
            1230,
            None,
            EventKind::CaptureFull {
                kept: 100_000,
                dropped: 3,
            },
        ),
        (1230, None, EventKind::LossesUntold),
        (
            1230,
            None,
            EventKind::Shortfall {
                what: Shortfall::PcapNotWritten,
                error: "No space left on device (os error 28)".into(),
            },
        ),
        (
            1230,
            server,
            EventKind::ProgramSettle {
                waited: ms(12),
                gave_up_on: None,
            },
        ),
        (
            1230,
            server,
            EventKind::ProgramSettle {
                waited: ms(500),
                gave_up_on: Some(Unsettled::Thread {
                    tid: 4242,
                    state: "R".into(),
                }),
            },
        ),
        (
            1230,
            server,
            EventKind::ProgramSettle {
                waited: ms(500),
                gave_up_on: Some(Unsettled::Connection {
                    local: "127.0.0.1:8080".parse().expect("address"),
                    remote: "127.0.0.1:41234".parse().expect("address"),
                }),
            },
        ),
        (
            1231,
            server,
            EventKind::ProgramExited {
                exit: Exit::Signal(15),
            },
        ),
    ];
    let mut timeline = Timeline::default();
    for (at, side, kind) in events {
        timeline.push(ms(at), side, kind);
    }
    timeline
}

/// The case: failed at its `released`, the program's last words kept.
pub(super) fn case() -> CaseReport {
    let mut report = CaseReport::new(
        (
            "s02::client_times_out".into(),
            "s02".into(),
            "client_times_out".into(),
            "suites/s02.toml:12:1".into(),
        ),
        CaseStatus::Failed(Failure {
            step: Some(StepRef::new(
                Side::Client,
                StepId::at(15),
                "suites/s02.toml:30:3".into(),
                "{ released = true, within = \"1s\" }".into(),
            )),
            mismatch: Some(Mismatch {
                kind: MismatchKind::Held,
                expected: "the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted within 1000 ms".into(),
                observed: "it holds fd 4: CLOSE; 8 fds (6 at ready; opened since: fd 4: socket TCP)".into(),
            }),
            output: vec![
                OutputLine {
                    stream: Stream::Err,
                    line: "x".repeat(40),
                    cut: 70_000,
                },
                OutputLine {
                    stream: Stream::Err,
                    line: "client gone: Broken pipe".into(),
                    cut: 0,
                },
            ],
            ..Failure::new(
                FailureKind::Expectation,
                "client step 15 `{ released = true, within = \"1s\" }` at suites/s02.toml:30:3: expected the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE, and none waiting to be accepted within 1000 ms, observed it holds fd 4: CLOSE; 8 fds (6 at ready; opened since: fd 4: socket TCP)".into(),
                ms(2223),
            )
        }),
        ms(2300),
        timeline(),
        ms(3),
    );
    report.artifacts = Some("/tmp/hangup-s02-client_times_out-abc123".into());
    report
}

#[test]
fn the_terminal_failure_and_timeline() {
    insta::assert_snapshot!("terminal", case().render_failure());
}

#[test]
fn junit() {
    let differences = [Difference {
        case: "s02::client_times_out (1.0 -> 1.1)".into(),
        change: Change::Observed {
            observation: Observation {
                side: Some(Side::Client),
                step: Some(StepId::at(6)),
                of: Observed::Call {
                    action: "recv".into(),
                    on: None,
                },
            },
            base: Some("EAGAIN".into()),
            new: Some("eof".into()),
        },
    }];
    // Noise: the base's own runs differ in how long its connect took.
    let noise = vec![Difference {
        case: "s02::client_times_out (1.0 -> 1.1)".into(),
        change: Change::Took {
            observation: Observation {
                side: Some(Side::Client),
                step: Some(StepId::at(1)),
                of: Observed::Call {
                    action: "connect".into(),
                    on: None,
                },
            },
            base: Duration::from_millis(1),
            new: Duration::from_millis(240),
        },
    }];
    let pairs = ["s02::client_times_out (1.0 -> 1.1)".to_string()];
    let compared = junit::Compared {
        cases: &pairs,
        differences: &differences,
        noise: &noise,
        accepted: &Default::default(),
    };
    let xml = junit::junit_xml(&[case()], Some(compared), junit::Passing::Timeline).expect("xml");
    // The one attribute that changes from run to run.
    let stamp = regex::Regex::new(r#"timestamp="[^"]*""#).expect("regex");
    let xml = String::from_utf8(xml).expect("utf-8");
    insta::assert_snapshot!("junit", stamp.replace_all(&xml, r#"timestamp="(now)""#));
}

#[test]
fn json() {
    let rounds = [vec![case()]];
    let report = Report::new(&rounds, Vec::new(), Vec::new());
    let json = serde_json::to_string_pretty(&report).expect("json");
    let tool = format!("hangup {}", env!("CARGO_PKG_VERSION"));
    insta::assert_snapshot!("json", json.replace(&tool, "hangup (version)"));
    // And it reads back as it was.
    let back = Report::read(json.as_bytes()).expect("reads back");
    assert_eq!(back.last_round(), rounds[0].as_slice());
}

/// A report a later hangup of the same format wrote, with an event kind
/// and a field this one does not know, reads; the unknown event is
/// skipped by the timeline and the diff, as `format`'s promise says.
#[test]
fn a_later_report_of_the_same_format_reads_and_its_unknown_events_are_skipped() {
    let rounds = [vec![case()]];
    let report = Report::new(&rounds, Vec::new(), Vec::new());
    let mut json = serde_json::to_value(&report).expect("json");
    let events = json["rounds"][0]["cases"][0]["timeline"]["events"]
        .as_array_mut()
        .expect("events");
    events[0]["a_field_from_later"] = serde_json::json!({ "nested": [1, 2] });
    events.insert(
        1,
        serde_json::json!({ "at_ms": 1.5, "side": "client", "event": "a_kind_from_later", "what": 7 }),
    );
    let bytes = serde_json::to_vec(&json).expect("bytes");
    let later = Report::read(&bytes).expect("a later report of format 2 reads");
    let read = &later.last_round()[0];
    assert_eq!(
        read.timeline.events.len(),
        rounds[0][0].timeline.events.len() + 1
    );
    assert!(matches!(read.timeline.events[1].kind, EventKind::Unknown));
    assert_eq!(read.timeline.render(), rounds[0][0].timeline.render());
    let differences = crate::report::diff::diff(
        &rounds[0],
        later.last_round(),
        crate::suite::Tolerance::DEFAULT,
    )
    .expect("masks");
    assert!(differences.is_empty(), "{differences:#?}");
}

/// Newlines, carriage returns, ESC, BEL, a C1 control and a bidi override
/// in every place outside text reaches a failure: the suite's name (from
/// a file name), the step as written, what was expected and observed, the
/// program's command and output, a path.
const HOSTILE: &str = "\n1 passed, 0 failed\r\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}";

/// A failed case whose every outside string holds [`HOSTILE`].
fn hostile_case() -> CaseReport {
    let server = Some(Side::Server);
    let mut timeline = Timeline::default();
    timeline.push(
        ms(0),
        server,
        EventKind::ProgramStarted {
            argv: vec!["/bin/sh".into(), "-c".into(), format!("printf '{HOSTILE}'")],
            pid: 4242,
        },
    );
    timeline.push(
        ms(1),
        server,
        EventKind::Output {
            stream: Stream::Out,
            line: format!("ready{HOSTILE}"),
            cut: 0,
        },
    );
    timeline.push(
        ms(2),
        Some(Side::Client),
        EventKind::Whereabouts {
            step: StepId::at(1),
            source: format!("{{ send = \"\"\"{HOSTILE}\"\"\" }}"),
            location: format!("s{HOSTILE}.toml:3:1"),
            in_flight: None,
        },
    );
    let mut report = CaseReport::new(
        (
            format!("s{HOSTILE}::c"),
            format!("s{HOSTILE}"),
            "c".into(),
            format!("s{HOSTILE}.toml:2:1"),
        ),
        CaseStatus::Failed(Failure {
            step: Some(StepRef::new(
                Side::Client,
                StepId::at(1),
                format!("s{HOSTILE}.toml:3:1"),
                format!("{{ send = \"\"\"{HOSTILE}\"\"\" }}"),
            )),
            mismatch: Some(Mismatch {
                kind: MismatchKind::Outcome,
                expected: format!("ok{HOSTILE}"),
                observed: format!("EPIPE{HOSTILE}"),
            }),
            output: vec![OutputLine {
                stream: Stream::Err,
                line: format!("last words{HOSTILE}"),
                cut: 0,
            }],
            ..Failure::new(
                FailureKind::Expectation,
                format!("client step 1 at s{HOSTILE}.toml:3:1: expected ok"),
                ms(2),
            )
        }),
        ms(3),
        timeline,
        ms(0),
    );
    report.artifacts = Some(format!("/tmp/hangup-s{HOSTILE}-c-abc123").into());
    report
}

/// What a terminal obeys rather than shows: the controls but newline and
/// tab (C0, DEL, C1) and the bidi controls. Written out here, not taken
/// from `model::escaped`, so a gap there is caught.
fn obeyed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Outside text in a failure is shown escaped, on the lines the failure
/// has: none of it reaches the terminal raw or starts a line of its own.
#[test]
fn the_terminal_failure_shows_outside_text_escaped() {
    let text = hostile_case().render_failure();
    assert!(!text.chars().any(obeyed), "{text:?}");
    assert!(
        !text.lines().any(|line| line.starts_with("1 passed")),
        "{text}"
    );
    insta::assert_snapshot!("terminal_escaped", text);
}

/// A difference is one line, whatever the report it was read from holds;
/// an accept file lists it as it is shown.
#[test]
fn a_difference_is_one_line_whatever_its_strings_hold() {
    let difference = Difference {
        case: format!("s{HOSTILE}::c"),
        change: Change::Observed {
            observation: Observation {
                side: Some(Side::Server),
                step: None,
                of: Observed::Call {
                    action: format!("recv{HOSTILE}"),
                    on: None,
                },
            },
            base: Some(format!("EAGAIN{HOSTILE}")),
            new: None,
        },
    };
    let line = difference.to_string();
    assert!(!line.chars().any(obeyed), "{line:?}");
    assert_eq!(
        line,
        r"s\n1 passed, 0 failed\r\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}::c: server #0 recv\n1 passed, 0 failed\r\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e}: EAGAIN\n1 passed, 0 failed\r\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}1m\u{202e} -> (not seen)"
    );
    let accepted = super::diff::accepted(&format!("{line}\n"));
    assert!(accepted.contains(&line));
}
