use std::time::Duration;

use super::*;
use crate::model::{CallResult, Errno, Exit, Outcome, Side, Socket};
use crate::record::{EventKind, StateSource, StepId, Stream, Timeline, TracedSyscall};
use crate::report::{CaseStatus, Failure, FailureKind};
use crate::suite::{LineCount, SocketCall};

/// A case named `s::c` with these events (each at 1 ms, on the client
/// unless it says).
fn case(status: CaseStatus, events: Vec<(Option<Side>, EventKind)>) -> CaseReport {
    let mut timeline = Timeline::default();
    for (side, kind) in events {
        timeline.push(Duration::from_millis(1), side, kind);
    }
    CaseReport::new(
        ("s::c".into(), "s".into(), "c".into(), "s.toml:1:1".into()),
        status,
        Duration::from_millis(5),
        timeline,
        Duration::ZERO,
    )
}

fn failed() -> CaseStatus {
    CaseStatus::Failed(Failure::new(
        FailureKind::Expectation,
        "x".into(),
        Duration::ZERO,
    ))
}

fn recv(step: usize, timeout_ms: u64, outcome: Outcome, took_ms: u64) -> (Option<Side>, EventKind) {
    (
        Some(Side::Client),
        EventKind::Call {
            step: StepId::at(step),
            call: SocketCall::Recv {
                max: 65536,
                timeout: Some(Duration::from_millis(timeout_ms)),
            },
            on: None,
            took: Duration::from_millis(took_ms),
            busy: Duration::ZERO,
            result: CallResult {
                outcome,
                bytes: 0,
                ready: None,
                short: None,
            },
        },
    )
}

fn state(step: usize, state: crate::model::TcpState) -> (Option<Side>, EventKind) {
    (
        Some(Side::Server),
        EventKind::State {
            socket: Socket::Server,
            state,
            source: StateSource::SockDiag,
            step: Some(StepId::at(step)),
            by: Some(Side::Client),
            samples: 3,
            on_the_way: false,
        },
    )
}

fn output(line: &str) -> (Option<Side>, EventKind) {
    (
        Some(Side::Server),
        EventKind::Output {
            stream: Stream::Err,
            line: line.into(),
            cut: 0,
        },
    )
}

fn packet(from: Side, to: Side, flags: &str) -> (Option<Side>, EventKind) {
    (
        Some(from),
        EventKind::Packet {
            from: "127.0.0.1:1".parse().expect("addr"),
            to: "127.0.0.1:2".parse().expect("addr"),
            to_side: Some(to),
            flags: serde_json::from_value(serde_json::json!(flags)).expect("flags"),
            seq: 0,
            ack: 0,
            window: 64,
            len: 0,
            lost_to: None,
            held: None,
        },
    )
}

fn eagain() -> Outcome {
    Outcome::Errno(Errno::from_raw(nix::libc::EAGAIN))
}

fn whats(differences: &[Difference]) -> Vec<String> {
    differences.iter().map(ToString::to_string).collect()
}

fn one(case: CaseReport) -> Vec<CaseReport> {
    vec![case]
}

/// [`super::diff`] of cases whose masks compile.
fn diff(base: &[CaseReport], new: &[CaseReport], tolerance: Tolerance) -> Vec<Difference> {
    super::diff(base, new, tolerance).expect("masks compile")
}

#[test]
fn the_same_observations_are_no_difference_whatever_the_pids_and_ports() {
    let run = |port: u16, pid: i32| {
        case(
            CaseStatus::Passed,
            vec![
                recv(3, 200, eagain(), 200),
                state(5, crate::model::TcpState::Gone),
                output(&format!("listening on 127.0.0.1:{port} as pid {pid}")),
                (
                    Some(Side::Server),
                    EventKind::ProgramStarted {
                        argv: vec!["./s".into(), port.to_string()],
                        pid,
                    },
                ),
            ],
        )
    };
    let found = diff(
        &one(run(41234, 77)),
        &one(run(50000, 99)),
        Tolerance::DEFAULT,
    );
    assert_eq!(whats(&found), Vec::<String>::new());
}

/// A call is keyed by its side, step and action: how the timeline words it
/// (here its arguments, which its text shows) is not what is compared, so
/// a writer's wording can change without changing any diff.
#[test]
fn a_call_is_keyed_by_side_step_and_action_never_by_its_words() {
    let base = case(CaseStatus::Passed, vec![recv(3, 200, eagain(), 200)]);
    let worded_otherwise = case(CaseStatus::Passed, vec![recv(3, 250, eagain(), 210)]);
    assert_ne!(
        base.timeline.events[0].describe().expect("known"),
        worded_otherwise.timeline.events[0]
            .describe()
            .expect("known")
    );
    let found = diff(
        &one(base.clone()),
        &one(worded_otherwise),
        Tolerance::DEFAULT,
    );
    assert_eq!(whats(&found), Vec::<String>::new());
    let changed = case(CaseStatus::Passed, vec![recv(3, 200, Outcome::Eof, 200)]);
    let found = diff(&one(base), &one(changed), Tolerance::DEFAULT);
    assert_eq!(whats(&found), ["s::c: client #3 recv: EAGAIN -> eof"]);
}

#[test]
fn a_close_that_became_a_reset_is_named_and_segment_counts_are_not() {
    let graceful = case(
        CaseStatus::Passed,
        vec![
            packet(Side::Client, Side::Server, "FIN|ACK"),
            packet(Side::Server, Side::Client, "ACK"),
            packet(Side::Server, Side::Client, "FIN|ACK"),
            packet(Side::Client, Side::Server, "ACK"),
        ],
    );
    // Another delayed ACK, and the same closes: no difference.
    let mut again = graceful.clone();
    let (side, ack) = packet(Side::Client, Side::Server, "ACK");
    again.timeline.push(Duration::from_millis(2), side, ack);
    let found = diff(&one(graceful.clone()), &one(again), Tolerance::DEFAULT);
    assert_eq!(whats(&found), Vec::<String>::new());

    let reset = case(
        CaseStatus::Passed,
        vec![
            packet(Side::Server, Side::Client, "RST|ACK"),
            packet(Side::Client, Side::Server, "FIN|ACK"),
        ],
    );
    let found = diff(
        &one(graceful.clone()),
        &one(reset.clone()),
        Tolerance::DEFAULT,
    );
    assert_eq!(
        whats(&found),
        [
            "s::c: on the wire: server sent FIN: yes -> no",
            "s::c: on the wire: server sent RST: no -> yes",
        ]
    );
    // A run whose timeline shows only its first packets cannot say no FIN
    // came: packets are not compared.
    let mut cut_short = reset;
    cut_short.timeline.push(
        Duration::from_millis(3),
        None,
        EventKind::PacketsCut {
            shown: 5000,
            captured: 9000,
        },
    );
    let found = diff(&one(graceful.clone()), &one(cut_short), Tolerance::DEFAULT);
    assert_eq!(whats(&found), Vec::<String>::new());
    // Nor when one run captured none.
    let none = case(CaseStatus::Passed, vec![]);
    let found = diff(&one(graceful), &one(none), Tolerance::DEFAULT);
    assert_eq!(whats(&found), Vec::<String>::new());
}

#[test]
fn a_changed_state_verdict_and_timing_are_each_named_and_the_unseen_folded() {
    let passed = case(
        CaseStatus::Passed,
        vec![
            recv(3, 200, eagain(), 200),
            state(5, crate::model::TcpState::Gone),
        ],
    );
    let worse = case(
        failed(),
        vec![
            recv(3, 200, eagain(), 900),
            state(5, crate::model::TcpState::CloseWait),
        ],
    );
    let found = diff(&one(passed.clone()), &one(worse), Tolerance::DEFAULT);
    assert_eq!(
        whats(&found),
        [
            "s::c: verdict: passed -> failed (expectation)",
            "s::c: client #3 recv: took 200 ms -> 900 ms",
            "s::c: server state (client step 5): gone -> CLOSE_WAIT",
        ]
    );
    // Within the tolerance: no difference.
    let close = case(
        CaseStatus::Passed,
        vec![
            recv(3, 200, eagain(), 240),
            state(5, crate::model::TcpState::Gone),
        ],
    );
    let found = diff(&one(passed.clone()), &one(close), Tolerance::DEFAULT);
    assert_eq!(whats(&found), Vec::<String>::new());
    // A case that stopped early misses what came after: folded.
    let mut many = passed;
    for step in 10..20 {
        let (side, call) = recv(step, 100, Outcome::Ok, 0);
        many.timeline.push(Duration::from_millis(9), side, call);
    }
    let short = case(failed(), vec![recv(3, 200, eagain(), 200)]);
    let found = diff(&one(many), &one(short), Tolerance::DEFAULT);
    assert_eq!(
        whats(&found),
        [
            "s::c: verdict: passed -> failed (expectation)",
            "s::c: server state (client step 5): gone -> (not seen)",
            "s::c: and 10 more observations not seen in new",
        ]
    );
}

#[test]
fn a_log_count_is_told_apart_by_its_whole_pattern() {
    let counts = |quiet: u64, raised: u64| {
        case(
            CaseStatus::Passed,
            vec![
                (
                    Some(Side::Client),
                    EventKind::LogCount {
                        step: StepId::at(4),
                        pattern: "^app: send returned".into(),
                        count: quiet,
                        wanted: LineCount::AtMost(1),
                    },
                ),
                (
                    Some(Side::Client),
                    EventKind::LogCount {
                        step: StepId::at(5),
                        pattern: "^app: send raised".into(),
                        count: raised,
                        wanted: LineCount::AtMost(1),
                    },
                ),
            ],
        )
    };
    let found = diff(&one(counts(1, 0)), &one(counts(0, 1)), Tolerance::DEFAULT);
    assert_eq!(
        whats(&found),
        [
            "s::c: client log \"^app: send returned\" (step 4): 1 matching -> 0 matching",
            "s::c: client log \"^app: send raised\" (step 5): 0 matching -> 1 matching",
        ]
    );
}

/// What no step asked about is compared too: a new error line and stack
/// trace in the program's output, a new errno of its traced calls, how it
/// ended, and what it held.
#[test]
fn what_no_step_asserted_is_compared_too() {
    let traced = |errno: i32| {
        (
            Some(Side::Server),
            EventKind::Traced {
                call: TracedSyscall {
                    syscall: "writev".into(),
                    tid: 9,
                    fd: 7,
                    accepted: None,
                    result: CallResult {
                        outcome: Outcome::Errno(Errno::from_raw(errno)),
                        bytes: 0,
                        ready: None,
                        short: None,
                    },
                    took: Duration::ZERO,
                    local: None,
                    peer: None,
                },
            },
        )
    };
    let exit = |code: i32| {
        (
            Some(Side::Server),
            EventKind::ProgramExited {
                exit: Exit::Code(code),
            },
        )
    };
    let quiet = case(
        CaseStatus::Passed,
        vec![
            output("GET /stream 200 in 12 ms"),
            traced(nix::libc::EPIPE),
            traced(nix::libc::EAGAIN),
            exit(0),
        ],
    );
    let mut loud_events = vec![
        output("GET /stream 200 in 15 ms"),
        output("ERROR: client gone (pid 4411)"),
    ];
    for frame in 0..6 {
        loud_events.push(output(&format!("  at frame{frame} (app.js:{frame}:1)")));
    }
    loud_events.extend([traced(nix::libc::ECONNRESET), exit(1)]);
    let loud = case(CaseStatus::Passed, loud_events);
    let found = diff(&one(quiet), &one(loud), Tolerance::DEFAULT);
    assert_eq!(
        whats(&found),
        [
            "s::c: server program: exited with status 0 -> exited with status 1",
            "s::c: server traced read or write returned EPIPE: yes -> (not seen)",
            "s::c: server traced read or write returned ECONNRESET: (not seen) -> yes",
            "s::c: server printed \"ERROR: client gone (pid #)\": (not seen) -> printed",
            "s::c: server printed \"  at frame# (app.js:#:#)\": (not seen) -> printed",
        ]
    );
}

#[test]
fn numbers_and_long_hex_ids_are_masked_words_are_not() {
    assert_eq!(
        masked("req 7f3a2b9c1d at 2026-12-07 03:50:48,123 from 127.0.0.1:41234"),
        "req # at # #:#:#,# from #.#.#.#:#"
    );
    assert_eq!(masked("deadbeef cafe"), "deadbeef cafe");
    // Ids and addresses whose letters fall differently in each run mask
    // the same.
    for (one, other) in [
        ("at 0x7f3a in", "at 0x7fa30c in"),
        ("Thread-4a1b2c ended", "Thread-a41bc9 ended"),
        (
            "id 123e4567-e89b-12d3-a456-426614174000.",
            "id a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11.",
        ),
        ("worker 3 of 12", "worker 11 of 12"),
    ] {
        assert_eq!(masked(one), masked(other), "{one:?} and {other:?}");
    }
    assert_eq!(masked("at 0x7f3a in"), "at 0x# in");
    // A word that is not an id keeps its letters.
    assert_eq!(masked("worker12 x86_64 sha256"), "worker# x#_# sha#");
}

#[test]
fn cases_only_in_one_report_are_said() {
    let mut other = case(CaseStatus::Passed, vec![]);
    other.name = "s::d".into();
    let found = diff(
        &one(case(CaseStatus::Passed, vec![])),
        &one(other),
        Tolerance::DEFAULT,
    );
    assert_eq!(whats(&found), ["s::c: only in base", "s::d: only in new"]);
}

#[test]
fn a_report_of_another_format_is_refused_naming_both() {
    let old = br#"{ "format": 1, "tool": "hangup 0.1.0", "rounds": [] }"#;
    let err = crate::report::Report::read(old).unwrap_err().to_string();
    assert_eq!(
        err,
        "it is a hangup JSON report of format 1, and this hangup reads format 2 (it was written by an older hangup: run the suites again with this one to compare)"
    );
    let err = crate::report::Report::read(b"{}").unwrap_err().to_string();
    assert!(err.contains("it has no `format`"), "{err}");
}

#[test]
fn a_difference_reads_back_as_written() {
    let base = case(CaseStatus::Passed, vec![recv(3, 200, eagain(), 200)]);
    let new = case(failed(), vec![recv(3, 200, Outcome::Eof, 900)]);
    let found = diff(&one(base), &one(new), Tolerance::DEFAULT);
    let json = serde_json::to_string(&found).expect("json");
    let back: Vec<Difference> = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, found);
}

#[test]
fn an_accept_file_lists_differences_one_a_line() {
    let accepted = accepted("# known\n\ns::c: only in base\n  s::d: x -> y  \n");
    assert!(accepted.contains("s::c: only in base"));
    assert!(accepted.contains("s::d: x -> y"));
    assert_eq!(accepted.len(), 2);
}

/// A check that asked for one or more stopped at the first (or at a burst
/// that came at once): 1 against 3 is timing, not a difference, while
/// none against one is. A check that counted over its window compares its
/// number.
#[test]
fn a_count_compares_as_its_check_asked() {
    let taken = |count: u64, wanted: LineCount| {
        case(
            CaseStatus::Passed,
            vec![(
                Some(Side::Client),
                EventKind::TakenCount {
                    step: StepId::at(3),
                    fault: "syn".into(),
                    count,
                    wanted,
                },
            )],
        )
    };
    let one_or_more = LineCount::AtLeastOne;
    assert_eq!(
        whats(&diff(
            &one(taken(1, one_or_more)),
            &one(taken(3, one_or_more)),
            Tolerance::DEFAULT
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        whats(&diff(
            &one(taken(1, one_or_more)),
            &one(taken(0, one_or_more)),
            Tolerance::DEFAULT
        )),
        ["s::c: client fault \"syn\" (step 3): 1 or more taken -> none taken"]
    );
    let exactly = LineCount::Exactly(1);
    assert_eq!(
        whats(&diff(
            &one(taken(1, exactly)),
            &one(taken(3, exactly)),
            Tolerance::DEFAULT
        )),
        ["s::c: client fault \"syn\" (step 3): 1 taken -> 3 taken"]
    );
}

/// Any side may check any socket's state: the server's socket checked by
/// the client's step 5 and by the server's step 5 are two observations.
#[test]
fn a_state_is_keyed_by_the_side_whose_step_checked_it() {
    let checked = |by: Side, state: crate::model::TcpState| {
        (
            Some(Side::Server),
            EventKind::State {
                socket: Socket::Server,
                state,
                source: StateSource::SockDiag,
                step: Some(StepId::at(5)),
                by: Some(by),
                samples: 1,
                on_the_way: false,
            },
        )
    };
    use crate::model::TcpState::{CloseWait, Established};
    let base = case(
        CaseStatus::Passed,
        vec![
            checked(Side::Client, Established),
            checked(Side::Server, CloseWait),
        ],
    );
    // The same readings, in the other order: no difference.
    let new = case(
        CaseStatus::Passed,
        vec![
            checked(Side::Server, CloseWait),
            checked(Side::Client, Established),
        ],
    );
    assert_eq!(
        whats(&diff(&one(base), &one(new), Tolerance::DEFAULT)),
        Vec::<String>::new()
    );
}

/// A loop's rounds fold into its body's steps: a run that looped three
/// times and one that looped five (an `until` met later) compare equal
/// when their rounds met the same outcomes, and differ by the set when
/// a new outcome appears.
#[test]
fn a_loop_compares_the_outcomes_its_rounds_met_not_round_by_round() {
    let rounds = |outcomes: &[Outcome]| {
        let events = outcomes
            .iter()
            .enumerate()
            .map(|(n, outcome)| {
                let (side, mut kind) = recv(1, 100, *outcome, 1);
                if let EventKind::Call { step, .. } = &mut kind {
                    step.body = Some(2);
                    step.round = Some(n as u32 + 1);
                }
                (side, kind)
            })
            .collect();
        case(CaseStatus::Passed, events)
    };
    let eagain = Outcome::Errno(Errno::from_raw(nix::libc::EAGAIN));
    let base = rounds(&[Outcome::Ok, Outcome::Ok, Outcome::Eof]);
    let longer = rounds(&[
        Outcome::Ok,
        Outcome::Eof,
        Outcome::Ok,
        Outcome::Ok,
        Outcome::Eof,
    ]);
    assert_eq!(
        whats(&diff(&one(base.clone()), &one(longer), Tolerance::DEFAULT)),
        Vec::<String>::new()
    );
    let new_outcome = rounds(&[Outcome::Ok, eagain, Outcome::Eof]);
    assert_eq!(
        whats(&diff(&one(base), &one(new_outcome), Tolerance::DEFAULT)),
        ["s::c: client #1.2 recv: eof; ok -> EAGAIN; eof; ok"]
    );
}

/// A loop of `recv` rounds on the client at step 1, its body's step 1,
/// each round's outcome as given; `until` ends it at its last round.
fn looped(outcomes: &[(Outcome, u64)], until: bool) -> CaseReport {
    let mut events: Vec<(Option<Side>, EventKind)> = outcomes
        .iter()
        .enumerate()
        .map(|(n, (outcome, bytes))| {
            let (side, mut kind) = recv(1, 50, *outcome, 50);
            if let EventKind::Call { step, result, .. } = &mut kind {
                step.body = Some(1);
                step.round = Some(n as u32 + 1);
                result.bytes = *bytes;
            }
            (side, kind)
        })
        .collect();
    if until {
        events.push((
            Some(Side::Client),
            EventKind::LoopEnded {
                step: StepId::at(1),
                round: outcomes.len() as u32,
            },
        ));
    }
    case(CaseStatus::Passed, events)
}

/// A loop that ended on its `until` is compared by the round that ended
/// it: a chunk a late thread found before its timeout, in the rounds
/// before, is timing. What ended it, changed, is a difference; and a
/// loop that ran all its rounds still compares them all.
#[test]
fn a_loop_that_met_its_until_is_compared_by_the_round_that_ended_it() {
    let quiet = looped(&[(eagain(), 0)], true);
    let late = looped(&[(Outcome::Ok, 1007), (eagain(), 0)], true);
    assert_eq!(
        whats(&diff(&one(quiet.clone()), &one(late), Tolerance::DEFAULT)),
        Vec::<String>::new()
    );
    let reset = looped(
        &[
            (Outcome::Ok, 1007),
            (Outcome::Errno(Errno::from_raw(nix::libc::ECONNRESET)), 0),
        ],
        true,
    );
    assert_eq!(
        whats(&diff(&one(quiet), &one(reset), Tolerance::DEFAULT)),
        ["s::c: client #1.1 recv: EAGAIN -> ECONNRESET"]
    );
    let all = looped(&[(Outcome::Ok, 10), (eagain(), 0)], false);
    let fewer = looped(&[(eagain(), 0)], false);
    assert_eq!(
        whats(&diff(&one(all), &one(fewer), Tolerance::DEFAULT)),
        ["s::c: client #1.1 recv: EAGAIN; ok, 10 B -> EAGAIN"]
    );
}

/// A `recv_until` read in pieces as they came: how far past its mark the
/// last piece went is timing, so a count shows only when it did not find
/// it; a plain `recv`'s count is compared.
#[test]
fn a_recv_until_that_found_its_mark_compares_no_count() {
    let until = |outcome: Outcome, bytes: u64| {
        let (side, mut kind) = recv(3, 1000, outcome, 5);
        if let EventKind::Call { call, result, .. } = &mut kind {
            *call = SocketCall::RecvUntil {
                until: crate::suite::Until::Pattern("\r\n\r\n".into()),
                timeout: Some(Duration::from_secs(1)),
            };
            result.bytes = bytes;
        }
        case(CaseStatus::Passed, vec![(side, kind)])
    };
    assert_eq!(
        whats(&diff(
            &one(until(Outcome::Ok, 84)),
            &one(until(Outcome::Ok, 1091)),
            Tolerance::DEFAULT
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        whats(&diff(
            &one(until(Outcome::Eof, 84)),
            &one(until(Outcome::Eof, 1091)),
            Tolerance::DEFAULT
        )),
        ["s::c: client #3 recv_until: eof, 84 B -> eof, 1091 B"]
    );
}

/// `recv` at step 3 that took `took_ms` while the case's threads
/// were busy `busy_ms` (on a CPU, or waiting for one), in a case whose
/// hangup ran `late_ms` late.
fn timed(took_ms: u64, busy_ms: u64, late_ms: u64) -> CaseReport {
    let (side, mut kind) = recv(3, 5000, Outcome::Ok, took_ms);
    if let EventKind::Call { busy, .. } = &mut kind {
        *busy = Duration::from_millis(busy_ms);
    }
    let mut case = case(CaseStatus::Passed, vec![(side, kind)]);
    case.lateness = Duration::from_millis(late_ms);
    case
}

/// A duration is judged against the case's own tolerance (as its report
/// records it, at least the one given), widened by the lateness either
/// run measured: hangup's timers, how long the scripts' threads were busy
/// (on a CPU, or waiting for one) during the call, and how long the
/// program's were while the scripts ran. Beyond all of that it is a
/// difference.
#[test]
fn a_duration_is_judged_against_the_suite_s_tolerance_and_the_measured_lateness() {
    let found = |a: CaseReport, b: CaseReport| whats(&diff(&one(a), &one(b), Tolerance::DEFAULT));
    // 200 -> 700 ms: far beyond 25 % of 700 ms.
    assert_eq!(
        found(timed(200, 0, 0), timed(700, 0, 0)),
        ["s::c: client #3 recv: took 200 ms -> 700 ms"]
    );
    // The slow run's threads were busy 400 ms: 175 + 400 allowed.
    assert_eq!(
        found(timed(200, 0, 0), timed(700, 400, 0)),
        Vec::<String>::new()
    );
    // The base ran 400 ms late somewhere.
    assert_eq!(
        found(timed(200, 0, 400), timed(700, 0, 0)),
        Vec::<String>::new()
    );
    // Not enough of either.
    assert_eq!(
        found(timed(200, 100, 100), timed(700, 0, 100)),
        ["s::c: client #3 recv: took 200 ms -> 700 ms"]
    );
    // The program was busy 400 ms while the scripts ran, in one run.
    let mut busy_program = timed(700, 0, 0);
    busy_program.timeline.push(
        Duration::from_millis(9),
        Some(Side::Server),
        EventKind::ProgramBusy {
            busy: Duration::from_millis(400),
        },
    );
    assert_eq!(found(timed(200, 0, 0), busy_program), Vec::<String>::new());
    // A suite that allows 100 %.
    let mut wide = timed(700, 0, 0);
    wide.tolerance = Some(Tolerance {
        floor: Duration::from_millis(50),
        percent: 100,
    });
    assert_eq!(found(timed(200, 0, 0), wide), Vec::<String>::new());
    // A suite that asks for less than the tolerance given gets the one
    // given: a comparison of two runs is no timing check.
    let mut narrow = timed(260, 0, 0);
    narrow.tolerance = Some(Tolerance {
        floor: Duration::from_millis(1),
        percent: 0,
    });
    assert_eq!(found(timed(200, 0, 0), narrow), Vec::<String>::new());
}

/// A suite's masks, recorded in the report, mask both runs' lines before
/// numbers are; a line one matches whole is not compared. Without the
/// masks the same runs differ.
#[test]
fn a_suite_s_masks_decide_what_of_a_line_is_compared() {
    let printed = |lines: &[&str], masks: &[&str]| {
        let mut case = case(
            CaseStatus::Passed,
            lines.iter().map(|l| output(l)).collect(),
        );
        case.masks = masks.iter().map(|m| m.to_string()).collect();
        case
    };
    let masks = [r"req-[a-z]+", r"^WARN .* took \d+ ms$"];
    let base = printed(&["served req-abc", "ERROR boom"], &masks);
    let new = printed(
        &["served req-xyz", "WARN random took 340 ms", "ERROR boom"],
        &masks,
    );
    assert_eq!(
        whats(&diff(&one(base), &one(new), Tolerance::DEFAULT)),
        Vec::<String>::new()
    );
    let unmasked = |lines: &[&str]| printed(lines, &[]);
    assert_eq!(
        whats(&diff(
            &one(unmasked(&["served req-abc"])),
            &one(unmasked(&["served req-xyz", "WARN random took 340 ms"])),
            Tolerance::DEFAULT
        )),
        [
            "s::c: server printed \"served req-abc\": printed -> (not seen)",
            "s::c: server printed \"served req-xyz\": (not seen) -> printed",
            "s::c: server printed \"WARN random took # ms\": (not seen) -> printed",
        ]
    );
    // A report from outside whose masks do not compile is refused.
    let bad = printed(&["x"], &["("]);
    assert!(matches!(
        super::diff(&one(bad.clone()), &one(bad), Tolerance::DEFAULT),
        Err(MaskError::Invalid { .. })
    ));
}

/// What `released` found, fds too: how many the program held once the
/// case's work was done (not compared with how many it had at ready, a
/// runtime's start-up); and not for a program that served the suite's
/// earlier cases too.
#[test]
fn released_compares_the_fds_held() {
    let held = |fds: usize, at_ready: usize, shared: bool| {
        let mut events = vec![(
            Some(Side::Client),
            EventKind::Held {
                step: StepId::at(7),
                sockets: Vec::new(),
                queued: Vec::new(),
                fds,
                fds_at_ready: Some(at_ready),
                new_fds: Vec::new(),
            },
        )];
        if shared {
            events.insert(
                0,
                (
                    Some(Side::Server),
                    EventKind::ProgramServes { pid: 1, port: 8080 },
                ),
            );
        }
        case(CaseStatus::Passed, events)
    };
    let found = |a, b| whats(&diff(&one(a), &one(b), Tolerance::DEFAULT));
    assert_eq!(
        found(held(9, 8, false), held(9, 9, false)),
        Vec::<String>::new()
    );
    assert_eq!(
        found(held(9, 9, false), held(10, 9, false)),
        ["s::c: client released (step 7): no connection; 9 fds -> no connection; 10 fds"]
    );
    assert_eq!(
        found(held(9, 9, true), held(10, 9, true)),
        Vec::<String>::new()
    );
}

/// The noise leg: with more runs of the base, a difference the base's own
/// runs show too (a duration, a line printed by timing), or one the new
/// run does not show against every run of the base, is set aside as
/// noise; what only the new version does stays a difference.
#[test]
fn what_the_base_s_own_runs_differ_in_is_noise() {
    let run = |took_ms: u64, outcome: Outcome, lines: &[&str]| {
        let mut events = vec![
            recv(3, 5000, outcome, 5),
            recv(4, 5000, Outcome::Ok, took_ms),
        ];
        events.extend(lines.iter().map(|l| output(l)));
        case(CaseStatus::Passed, events)
    };
    let base = run(100, Outcome::Eof, &["ready", "epoll_wait() failed"]);
    let again = run(900, Outcome::Eof, &["ready"]);
    let new = run(
        900,
        eagain(),
        &["ready", "ERROR java.io.IOException: Broken pipe"],
    );
    let read = |case: &CaseReport| LastRound::of(std::slice::from_ref(case)).expect("masks");
    let comparison = Comparison::with_noise(
        &read(&base),
        &[read(&again)],
        &read(&new),
        Tolerance::DEFAULT,
    );
    assert_eq!(
        whats(&comparison.differences),
        [
            "s::c: client #3 recv: eof -> EAGAIN",
            "s::c: server printed \"ERROR java.io.IOException: Broken pipe\": (not seen) -> printed",
        ]
    );
    assert_eq!(
        whats(&comparison.noise),
        [
            "s::c: client #4 recv: took 100 ms -> 900 ms",
            "s::c: server printed \"epoll_wait() failed\": printed -> (not seen)",
        ]
    );
    // Step 4 took as long in the new run as in the base's second: not a
    // change the new version made, though the first run was quicker.
    let rendered = comparison.render(&BTreeSet::new());
    assert!(
        rendered.ends_with("\n2 differences in 1 case of 1 case, 0 accepted, 2 set aside as noise"),
        "{rendered}"
    );
    assert!(
        rendered.contains("set aside as noise (the base's own runs differ there too):\n  s::c: client #4 recv: took 100 ms -> 900 ms\n  s::c: server printed \"epoll_wait() failed\""),
        "{rendered}"
    );
    // Without the second run of the base, all of it is a difference.
    let plain = Comparison::of(&read(&base), &read(&new), Tolerance::DEFAULT);
    assert_eq!(
        plain.differences.len(),
        4,
        "{:?}",
        whats(&plain.differences)
    );
    assert!(plain.noise.is_empty());
    // A verdict the base's runs disagree on is noise too.
    let failing = case(failed(), vec![recv(3, 5000, Outcome::Eof, 100)]);
    let passing = case(CaseStatus::Passed, vec![recv(3, 5000, Outcome::Eof, 100)]);
    let comparison = Comparison::with_noise(
        &read(&passing),
        &[read(&failing)],
        &read(&failing),
        Tolerance::DEFAULT,
    );
    assert!(comparison.differences.is_empty());
    assert_eq!(
        whats(&comparison.noise),
        ["s::c: verdict: passed -> failed (expectation)"]
    );
}

/// Which of a program's reads and writes first met a peer's reset is its
/// scheduling: a read's ECONNRESET and a write's are the same; a close's
/// is not.
#[test]
fn a_reset_met_by_a_read_or_by_a_write_is_the_same() {
    let met = |syscall: &str, errno: i32| {
        case(
            CaseStatus::Passed,
            vec![(
                Some(Side::Server),
                EventKind::Traced {
                    call: TracedSyscall {
                        syscall: syscall.into(),
                        tid: 9,
                        fd: 7,
                        accepted: None,
                        result: CallResult {
                            outcome: Outcome::Errno(Errno::from_raw(errno)),
                            bytes: 0,
                            ready: None,
                            short: None,
                        },
                        took: Duration::ZERO,
                        local: None,
                        peer: None,
                    },
                },
            )],
        )
    };
    let reset = nix::libc::ECONNRESET;
    let found = |a, b| whats(&diff(&one(a), &one(b), Tolerance::DEFAULT));
    assert_eq!(
        found(met("read", reset), met("sendto", reset)),
        Vec::<String>::new()
    );
    assert_eq!(
        found(met("read", reset), met("close", reset)),
        [
            "s::c: server traced read or write returned ECONNRESET: yes -> (not seen)",
            "s::c: server traced close returned ECONNRESET: (not seen) -> yes",
        ]
    );
}
