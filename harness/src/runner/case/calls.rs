//! Socket calls: made by the side's peer, recorded with the kernel's
//! result, and judged against the step's expectation.

use std::time::{Duration, Instant};

use super::checks::opened;
use crate::model::Outcome;
use crate::model::{Side, Socket};
use crate::observe::SockDiag;
use crate::observe::queued;
use crate::peer::{Call, Peer};
use crate::record::EventKind;
use crate::report::{Failure, FailureKind};
use crate::suite::SocketCall;
use crate::suite::Step;
use crate::verdict::{self, Mismatch};

use super::Shared;
use super::step::{At, Flow, failure};

/// Makes a socket call, records it with the kernel's result, and judges
/// it.
pub(super) fn run(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    socket_call: &SocketCall,
    until: Option<&[Outcome]>,
    peer: &mut Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    let side = at.side();
    let id = at.step();
    let fail = |kind: FailureKind, mismatch: Option<Mismatch>, what: String| {
        failure(shared, at, step, kind, mismatch, what)
    };
    // The call's start is public before the call, so a deadline
    // that passes during it can say it is in flight.
    shared.set_step(side, Some((id, Some(Instant::now()))));
    // Read for a timing check, and for a call outside a loop, whose
    // duration a diff compares (it costs a file read a thread; a loop's
    // calls are many, and their durations are not compared).
    // A timing check's reads the program's threads too, as its lateness
    // always did; another's only the sides' (a few files: the program's
    // busy time is read twice a case, see `program_busy`).
    let timing = step.expect.as_ref().is_some_and(|e| e.after.is_some());
    let snapshot = || {
        if timing {
            shared.queue_snapshot()
        } else {
            shared.sides_snapshot()
        }
    };
    let queued_before = if timing || id.round.is_none() {
        snapshot()
    } else {
        Vec::new()
    };
    let softirq_before = timing.then(|| queued::snapshot(queued::softirq_threads()));
    let call = match peer.perform(socket_call, step.link) {
        Ok(call) => call,
        Err(no_socket) => {
            return Err(fail(FailureKind::Script, None, no_socket.to_string()));
        }
    };
    let spent = if queued_before.is_empty() {
        queued::Times::default()
    } else {
        queued::since(&queued_before, &snapshot())
    };
    // A timer the deferred softirqs ran late is the machine's too (see
    // `observe::queued`); it is lateness, not the case's busy time.
    let softirq = softirq_before.map_or(Duration::ZERO, |before| {
        queued::longest_wait(&before, &queued::snapshot(queued::softirq_threads()))
    });
    let (queued, busy) = (spent.waited.saturating_add(softirq), spent.busy());
    // Only a timing check's wait is the case's lateness, which every later
    // timing check allows: others are recorded with their call.
    if timing {
        let mut control = shared.control();
        control.lateness = control.lateness.max(queued);
    }
    // The proxy's calls on a connection say which one.
    let on = (side == Side::Proxy && step.action.definition().on_connection).then_some(step.link);
    if call.result.interrupted() && shared.stopping() {
        shared.push(
            call.began,
            Some(side),
            EventKind::InFlight {
                step: id,
                call: socket_call.clone(),
                on,
                took: call.took,
            },
        );
        return Ok(Flow::CaseEnded);
    }
    shared.push(
        call.began,
        Some(side),
        EventKind::Call {
            step: id,
            call: socket_call.clone(),
            on,
            took: call.took,
            busy,
            result: call.result,
        },
    );
    if let crate::suite::SocketCall::Listen { addr, .. } = socket_call {
        if call.result.outcome == Outcome::Ok {
            shared.control().listening.push(addr.port());
            shared.changed.notify_all();
        }
    }
    if matches!(socket_call, crate::suite::SocketCall::Connect { .. })
        && call.result.outcome == Outcome::Ok
    {
        remember_program_end(shared, diag);
    }
    if until.is_some_and(|until| until.contains(&call.result.outcome)) {
        return Ok(Flow::UntilReached);
    }
    judge(shared, step, &call, queued).map_err(|m| {
        let what = m.to_string();
        fail(FailureKind::Expectation, Some(m), what)
    })?;
    Ok(Flow::Next)
}

/// Judges a call; `queued` is how long its side (and the kernel's softirq
/// threads, which run its timers) waited for a CPU during it, which counts
/// as the harness's lateness as a late timer does.
pub(super) fn judge(
    shared: &Shared,
    step: &Step,
    call: &Call,
    queued: Duration,
) -> Result<(), Mismatch> {
    let expect = step
        .expect
        .clone()
        .unwrap_or_else(|| step.action.default_expectation());
    let lateness = shared.control().lateness.max(queued);
    verdict::judge_call(
        &expect,
        &call.result,
        &call.received,
        call.took,
        shared.case.tolerance,
        lateness,
    )
}

/// After a script's connect, when the case traces a program that plays the
/// server: looks up the program's end of the new connection (it is in the
/// kernel's table from the handshake on, before the program accepts it) and
/// notes its cookie. The program's traced calls carry the same cookie, so
/// they are tied to the connection even when the client reset it before
/// the program's first call, which then finds no peer address to report.
pub(super) fn remember_program_end(shared: &Shared, diag: &mut Option<SockDiag>) {
    let serves = shared
        .case
        .program
        .as_ref()
        .is_some_and(|p| p.role == Side::Server);
    if !serves || !shared.case.traces_program() {
        return;
    }
    let end = Socket::Server;
    let tuple = shared.sockets.locate(end);
    let cookie = tuple.and_then(|(local, remote)| {
        let diag = opened(shared, diag).ok()?;
        diag.find(local, remote).ok().flatten().map(|s| s.cookie)
    });
    shared
        .sockets
        .set_cookie(end, cookie.filter(|&c| c != 0), tuple);
}
