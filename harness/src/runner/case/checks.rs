//! Checks of what the kernel and the program hold: states, accept queues,
//! the program's fd table, its output and its traced calls. Each samples
//! until it holds or its `within` passes, and its last reading goes on the
//! record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::syscall::Which;
use crate::model::{Errno, Outcome, TcpState};
use crate::model::{Side, Socket};
use crate::observe::{self, SockDiag};
use crate::peer::Peer;
use crate::record::{EventKind, FailedSyscall, HeldSocket, OpenFd, QueuedAt, StateSource, StepId};
use crate::report::{Failure, FailureKind};
use crate::suite::{Check, LineCount, Pattern, Step};
use crate::sut;
use crate::verdict::{self, Mismatch};

use super::faults::check_taken;
use super::hosts::in_host;
use super::step::{At, Flow, failure};
use super::wire::{check_first, check_sent};
use super::{Baseline, POLL_INTERVAL, Shared, later};

/// Runs a check.
pub(super) fn run(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    check: &Check,
    peer: &Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    let side = at.side();
    let id = at.step();
    let fail = |kind: FailureKind, mismatch: Option<Mismatch>, what: String| {
        failure(shared, at, step, kind, mismatch, what)
    };
    match check {
        Check::State { expected, within } => {
            let diag = opened(shared, diag).map_err(|why| fail(FailureKind::Harness, None, why))?;
            let checked = check_states(shared, diag, (side, id), expected, *within);
            return settle(checked, FailureKind::Harness, fail);
        }
        Check::AcceptQueue { expected, within } => {
            let diag = opened(shared, diag).map_err(|why| fail(FailureKind::Harness, None, why))?;
            let checked = check_accept_queues(shared, (side, id), diag, expected, *within);
            return settle(checked, FailureKind::Script, fail);
        }
        Check::Released { within } => {
            let Some((view, baseline)) = shared.program(side) else {
                if shared.stopping() {
                    return Ok(Flow::CaseEnded);
                }
                return Err(fail(
                    FailureKind::Script,
                    None,
                    "there is no program under test whose fd table `released` could read".into(),
                ));
            };
            let diag = opened(shared, diag).map_err(|why| fail(FailureKind::Harness, None, why))?;
            let checked = check_released(shared, (side, id), diag, view, baseline, *within);
            return settle(checked, FailureKind::Program, fail);
        }
        Check::Log {
            pattern,
            lines,
            within,
        } => {
            let Some(reader) = shared.program(side).map(|(view, _)| view) else {
                if shared.stopping() {
                    return Ok(Flow::CaseEnded);
                }
                return Err(fail(
                    FailureKind::Script,
                    None,
                    "there is no program under test whose output `log` could read".into(),
                ));
            };
            let Some(counter) = reader.counter(&pattern.0) else {
                return Err(fail(
                    FailureKind::Harness,
                    None,
                    format!(
                        "the program was started without counting `{}`: hangup gathers the patterns of every `log` check before it starts a program",
                        pattern.0.as_str()
                    ),
                ));
            };
            match check_log(shared, (side, id), &counter, pattern, *lines, *within) {
                Ok(()) => {}
                Err(Some(m)) => {
                    let what = m.to_string();
                    return Err(fail(FailureKind::Expectation, Some(m), what));
                }
                Err(None) => return Ok(Flow::CaseEnded),
            }
        }
        Check::Taken {
            name,
            packets,
            within,
        } => match check_taken(shared, side, id, name, *packets, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Check::Sent {
            segments,
            packets,
            within,
        } => match check_sent(shared, side, id, segments, *packets, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Check::First {
            from,
            flags,
            within,
        } => match check_first(shared, side, id, *from, *flags, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Check::Syscall {
            which,
            results,
            calls,
            within,
        } => {
            let (traced, socket) =
                match traced_program(shared, side, "`syscall` could count", &fail) {
                    Ok(found) => found,
                    Err(flow) => return flow,
                };
            let ask = verdict::SyscallAsk {
                which: &which.to_string(),
                results,
                wanted: *calls,
                within: *within,
            };
            return judged(
                check_syscall(
                    shared,
                    (side, id),
                    socket,
                    traced,
                    *which,
                    &ask,
                    peer.last_call(),
                ),
                fail,
            );
        }
        Check::Errnos { allowed, within } => {
            let (traced, socket) = match traced_program(shared, side, "`errnos` could judge", &fail)
            {
                Ok(found) => found,
                Err(flow) => return flow,
            };
            return judged(
                check_errnos(shared, (side, id), socket, traced, allowed, *within),
                fail,
            );
        }
    }
    Ok(Flow::Next)
}

/// Judges the program's traced calls on its end of the connection, all
/// of them since its accept, against the errnos `allowed` (EAGAIN and
/// EINTR always are): at once, or watching until `within` passes, failing
/// at the first call outside the set. The reading goes on the record.
pub(super) fn check_errnos(
    shared: &Shared,
    (side, step): (Side, StepId),
    socket: Socket,
    traced: &sut::Calls,
    allowed: &[Errno],
    within: Option<Duration>,
) -> Result<(), Option<Mismatch>> {
    let until = later(within.unwrap_or_default());
    loop {
        let tuple = shared.sockets.locate(socket);
        let cookie = shared.sockets.cookie(socket);
        let on = tuple.map_or_else(Vec::new, |(local, peer)| traced.on(local, peer, cookie));
        let mut returned: Vec<&sut::TracedCall> = on.iter().filter(|c| c.ended.is_some()).collect();
        returned.sort_by_key(|c| c.ended.map(|(end, _)| end));
        let outside: Vec<&sut::TracedCall> = returned
            .iter()
            .copied()
            .filter(|c| {
                c.result().is_some_and(|r| match r.outcome {
                    Outcome::Errno(errno) => !errno.is_routine() && !allowed.contains(&errno),
                    _ => false,
                })
            })
            .collect();
        let now = Instant::now();
        if !outside.is_empty() || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::Errnos {
                    step,
                    allowed: allowed.to_vec(),
                    calls: returned.len() as u64,
                    outside: outside
                        .iter()
                        .filter_map(|c| {
                            Some(FailedSyscall {
                                syscall: c.call.name.to_string(),
                                fd: c.fd,
                                outcome: c.result()?.outcome,
                            })
                        })
                        .collect(),
                },
            );
            let connection = connection_words(tuple);
            let first = returned.first().map(|c| c.began);
            let seen = described_at(&outside, first, " from its first call");
            return verdict::judge_errnos(allowed, within, &connection, returned.len(), &seen)
                .map_err(Some);
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}

/// A traced program's calls, and the socket of its end.
type Traced<'s> = (&'s Arc<sut::Calls>, Socket);

/// The traced program's calls and the socket of its end, for a check that
/// judges them (`what`: `\`syscall\` could count`); else the step's flow:
/// the case ended, or a script error (no traced program).
fn traced_program<'s>(
    shared: &'s Shared,
    side: Side,
    what: &str,
    fail: &impl Fn(FailureKind, Option<Mismatch>, String) -> Box<Failure>,
) -> Result<Traced<'s>, Result<Flow, Box<Failure>>> {
    let traced = shared.program(side).and_then(|(view, _)| view.calls());
    let (Some(traced), Some(spec)) = (traced, shared.case.program.as_ref()) else {
        if shared.stopping() {
            return Err(Ok(Flow::CaseEnded));
        }
        return Err(Err(fail(
            FailureKind::Script,
            None,
            format!("there is no traced program under test whose calls {what}"),
        )));
    };
    let socket = match spec.role {
        Side::Client => Socket::Client,
        _ => Socket::Server,
    };
    Ok((traced, socket))
}

/// The step's flow after a check of traced calls: on, a failed
/// expectation, or the case ended (`Err(None)`).
fn judged(
    checked: Result<(), Option<Mismatch>>,
    fail: impl Fn(FailureKind, Option<Mismatch>, String) -> Box<Failure>,
) -> Result<Flow, Box<Failure>> {
    match checked {
        Ok(()) => Ok(Flow::Next),
        Err(Some(m)) => {
            let what = m.to_string();
            Err(fail(FailureKind::Expectation, Some(m), what))
        }
        Err(None) => Ok(Flow::CaseEnded),
    }
}

/// The connection a traced-call check judged, in its failure's words.
fn connection_words(tuple: Option<(std::net::SocketAddr, std::net::SocketAddr)>) -> String {
    match tuple {
        Some((local, peer)) => format!("its connection {local} <- {peer}"),
        None => "its connection (which hangup never saw made)".to_string(),
    }
}

/// Each call as a failure names it, with when it returned (or, in
/// flight, began) after `from`: `writev(fd 7) = EPIPE at +12 ms<from_words>`.
fn described_at(
    calls: &[&sut::TracedCall],
    from: Option<Instant>,
    from_words: &str,
) -> Vec<String> {
    calls
        .iter()
        .map(|c| {
            let when = c.ended.map_or(c.began, |(end, _)| end);
            let at = from.map_or(String::new(), |f| {
                format!(
                    " at +{}{from_words}",
                    verdict::millis(when.saturating_duration_since(f))
                )
            });
            format!("{}{at}", c.describe())
        })
        .collect()
}

/// Counts the program's output lines that match `pattern`: for one or
/// more, until one comes or `within` passes; for a count, once `within` has
/// passed (a line logged late still counts). The count goes on the record.
/// `Err(None)`: the case ended while it watched.
pub(super) fn check_log(
    shared: &Shared,
    (side, step): (Side, StepId),
    counter: &sut::LineCounter<'_>,
    pattern: &Pattern,
    lines: LineCount,
    within: Option<Duration>,
) -> Result<(), Option<Mismatch>> {
    let until = later(within.unwrap_or_default());
    loop {
        let seen = counter.count();
        let now = Instant::now();
        if (lines == LineCount::AtLeastOne && seen > 0) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::LogCount {
                    step,
                    pattern: pattern.0.as_str().to_string(),
                    count: seen,
                    wanted: lines,
                },
            );
            return verdict::judge_log(pattern.0.as_str(), lines, within, seen).map_err(Some);
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}

/// Counts the program's traced calls on its end of the connection that
/// had not returned when `since` (this side's latest socket call) began,
/// so a read blocked until the FIN counts, until one matches or
/// `within` passes (with a count: until `within` passes); the count goes
/// on the record.
pub(super) fn check_syscall(
    shared: &Shared,
    (side, step): (Side, StepId),
    socket: Socket,
    traced: &sut::Calls,
    which: Which,
    ask: &verdict::SyscallAsk<'_>,
    since: Option<Instant>,
) -> Result<(), Option<Mismatch>> {
    let until = later(ask.within.unwrap_or_default());
    loop {
        let tuple = shared.sockets.locate(socket);
        let cookie = shared.sockets.cookie(socket);
        let on = tuple.map_or_else(Vec::new, |(local, peer)| traced.on(local, peer, cookie));
        let named: Vec<&sut::TracedCall> = on
            .iter()
            .filter(|c| since.is_none_or(|s| c.ended.is_none_or(|(end, _)| end >= s)))
            .filter(|c| which.covers(c.call, c.fd_arg))
            .collect();
        let counted = named
            .iter()
            .filter(|c| {
                ask.results.is_empty()
                    || c.result().is_some_and(|r| ask.results.contains(&r.outcome))
            })
            .count();
        let now = Instant::now();
        if (ask.wanted == LineCount::AtLeastOne && counted > 0) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::SyscallCount {
                    step,
                    which,
                    results: ask.results.to_vec(),
                    count: counted as u64,
                    wanted: ask.wanted,
                },
            );
            let connection = connection_words(tuple);
            let seen = described_at(&named, since, "");
            return verdict::judge_syscall(ask, &connection, counted, &seen).map_err(Some);
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}

/// Reads the program's fd table until it holds no connection (none in its
/// fd table, none waiting in a listener's accept queue) and no more fds
/// than when it was ready, or `within` passes; what it held last goes on
/// the record.
pub(super) fn check_released(
    shared: &Shared,
    (side, step): (Side, StepId),
    diag: &mut SockDiag,
    view: &sut::ProgramView,
    baseline: &Baseline,
    within: Option<Duration>,
) -> Result<(), Unsettled> {
    let until = later(within.unwrap_or_default());
    loop {
        let unreadable = |e: std::io::Error| match view.exit() {
            // Its fds went with it: there is no table to judge, and a
            // pass would be a check of nothing.
            Some(exit) => Unsettled::Unobservable(format!(
                "the program {exit} before this check: `released` judges a running program's fd table (after a shutdown, check its end's `state` instead)"
            )),
            None => Unsettled::Unobservable(format!("failed to read the program's fd table: {e}")),
        };
        let held_sockets = view.held_sockets(diag).map_err(unreadable)?;
        let mut queued: Vec<QueuedAt> = Vec::new();
        // A connection still waiting in a listener's accept queue is the
        // program's too: the kernel holds it until the program accepts it.
        for listener in held_sockets.iter().filter(|h| h.state == TcpState::Listen) {
            let Some(local) = listener.local else {
                continue;
            };
            let any = match local {
                std::net::SocketAddr::V4(_) => std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                std::net::SocketAddr::V6(_) => std::net::SocketAddr::from(([0u16; 8], 0)),
            };
            let waiting = diag
                .find(local, any)
                .ok()
                .flatten()
                .map_or(0, |snapshot| snapshot.recv_q);
            if waiting > 0 {
                queued.push(QueuedAt {
                    fd: listener.fd,
                    local,
                    waiting,
                });
            }
        }
        // A socket reset into CLOSE has no addresses left in the kernel:
        // name the connection it was from the program's traced calls on it,
        // or from its cookie, which hangup noted when the connection was
        // made.
        let was = |inode: u64| {
            let calls = view.calls()?;
            calls.addresses_of(inode).or_else(|| {
                let cookie = calls.cookie_of(inode)?;
                shared.sockets.connection_with_cookie(cookie)
            })
        };
        let sockets: Vec<HeldSocket> = held_sockets
            .iter()
            .filter(|h| h.state != TcpState::Listen)
            .map(|h| {
                let was = h.remote.map_or_else(|| was(h.inode), |_| None);
                let peer = h.remote.or(was.map(|(_, peer)| peer));
                HeldSocket {
                    pid: h.process.map(nix::unistd::Pid::as_raw),
                    fd: h.fd,
                    state: h.state,
                    local: h.local,
                    remote: h.remote,
                    was,
                    of_the_case: peer.is_some_and(|peer| shared.sockets.is_the_case_s(peer)),
                }
            })
            .collect();
        let fds = view.open_fds().map_err(unreadable)?;
        // The TCP sockets among them are named above, each with its
        // state: the others are what grew besides.
        let new_fds: Vec<OpenFd> = match &baseline.fds {
            Some(before) => fds
                .iter()
                .filter(|fd| !before.contains(fd))
                .filter(|fd| !matches!(fd.target.as_str(), "socket TCP" | "socket TCPv6"))
                .take(NEW_FDS_SHOWN)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let fds_at_ready = baseline.fds.as_ref().map(Vec::len);
        let verdict = verdict::judge_released(
            &sockets,
            &queued,
            (fds.len(), fds_at_ready, &new_fds),
            within,
        );
        let now = Instant::now();
        if verdict.is_ok() || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::Held {
                    step,
                    sockets,
                    queued,
                    fds: fds.len(),
                    fds_at_ready,
                    new_fds,
                },
            );
            return verdict.map_err(Unsettled::Mismatch);
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(Unsettled::CaseEnded);
        }
    }
}

/// The most fds opened since ready that a `released` check names.
pub(super) const NEW_FDS_SHOWN: usize = 16;

/// The step's flow after a check: on, a failed expectation, the kernel
/// (or the program) unreadable as `unreadable`, or the case ended.
pub(super) fn settle(
    checked: Result<(), Unsettled>,
    unreadable: FailureKind,
    fail: impl Fn(FailureKind, Option<Mismatch>, String) -> Box<Failure>,
) -> Result<Flow, Box<Failure>> {
    match checked {
        Ok(()) => Ok(Flow::Next),
        Err(Unsettled::Mismatch(m)) => {
            let what = m.to_string();
            Err(fail(FailureKind::Expectation, Some(m), what))
        }
        Err(Unsettled::Unobservable(why)) => Err(fail(unreadable, None, why)),
        Err(Unsettled::CaseEnded) => Ok(Flow::CaseEnded),
    }
}

/// The side's sock_diag socket, opened on first use (on the side's thread,
/// so in the case's namespace; only sides that check states need one).
pub(super) fn opened<'d>(
    shared: &Shared,
    diag: &'d mut Option<SockDiag>,
) -> Result<&'d mut SockDiag, String> {
    if let Some(diag) = diag {
        return Ok(diag);
    }
    let why = |err: &dyn std::fmt::Display| format!("failed to open sock_diag: {err}");
    let opened = match shared.hosts.get() {
        // Each host's, opened there: a connection's ends are on both.
        Some(hosts) => {
            let on = |host| -> Result<SockDiag, String> {
                in_host(host, |_| SockDiag::open().map_err(|e| e.to_string()))
                    .map_err(|e| why(&e))?
                    .map_err(|e| why(&e))
            };
            on(&hosts.server)?.with_other(on(&hosts.client)?)
        }
        None => SockDiag::open().map_err(|e| why(&e))?,
    };
    Ok(diag.insert(opened))
}

/// Why a state check did not pass.
pub(super) enum Unsettled {
    /// The states did not hold (within the deadline).
    Mismatch(Mismatch),
    /// The kernel could not be asked (a sock_diag error): not the suite's.
    Unobservable(String),
    /// The case ended while polling.
    CaseEnded,
}

/// Samples the accept queue of each listed side's listener until every
/// count holds, or `within` passes (one sample without it); the last
/// sample goes on the record. A side that does not listen is the script's
/// error: its queue cannot be asked about.
pub(super) fn check_accept_queues(
    shared: &Shared,
    (side, step): (Side, StepId),
    diag: &mut SockDiag,
    expected: &[(Side, u32)],
    within: Option<Duration>,
) -> Result<(), Unsettled> {
    let deadline = later(within.unwrap_or_default());
    loop {
        let mut counts = Vec::with_capacity(expected.len());
        for (listening, want) in expected {
            let Some(local) = shared.sockets.listener(*listening) else {
                return Err(Unsettled::Unobservable(format!(
                    "the {listening} does not listen (yet): there is no accept queue to count"
                )));
            };
            let any = std::net::SocketAddr::new(
                match local {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
                },
                0,
            );
            let found = diag
                .find(local, any)
                .map_err(|err| Unsettled::Unobservable(format!("sock_diag failed: {err}")))?;
            let Some(listener) = found.filter(|s| s.state == TcpState::Listen) else {
                return Err(Unsettled::Unobservable(format!(
                    "the kernel lists no listener of the {listening} on {local}"
                )));
            };
            counts.push((*listening, *want, listener.recv_q));
        }
        let verdict = verdict::judge_accept_queue(&counts, within);
        if verdict.is_ok() || Instant::now() >= deadline {
            for (listening, _, seen) in &counts {
                shared.push(
                    Instant::now(),
                    Some(side),
                    EventKind::AcceptQueue {
                        step,
                        of: *listening,
                        waiting: *seen,
                    },
                );
            }
            return verdict.map_err(Unsettled::Mismatch);
        }
        let next = later(POLL_INTERVAL).min(deadline);
        if !shared.sleep_until(next) {
            return Err(Unsettled::CaseEnded);
        }
    }
}

/// Samples the kernel until every expected state holds, or `within` passes
/// (one sample when `within` is not given). The last sample goes on the
/// record either way, with the step and how many samples it took: it is
/// the evidence.
pub(super) fn check_states(
    shared: &Shared,
    diag: &mut SockDiag,
    (by, step): (Side, StepId),
    expected: &[(Socket, TcpState)],
    within: Option<Duration>,
) -> Result<(), Unsettled> {
    let deadline = later(within.unwrap_or_default());
    let mut samples = 0u32;
    // The states of the previous sample: a change between samples goes on
    // the record as it happens, so a check that fails shows the way there
    // (FIN_WAIT2, then gone), not only where it ended.
    let mut previous: Vec<Option<TcpState>> = vec![None; expected.len()];
    loop {
        samples += 1;
        let observed: Vec<(Socket, TcpState, StateSource)> = expected
            .iter()
            .map(|(socket, _)| observe_socket(shared, diag, *socket))
            .collect::<Result<_, _>>()
            .map_err(Unsettled::Unobservable)?;
        let states: Vec<(Socket, TcpState)> = observed
            .iter()
            .map(|(socket, state, _)| (*socket, *state))
            .collect();
        let verdict = verdict::judge_states(expected, &states);
        let last = verdict.is_ok() || Instant::now() >= deadline;
        let now = Instant::now();
        for (i, (socket, state, source)) in observed.into_iter().enumerate() {
            let changed = previous[i].is_some_and(|before| before != state);
            if last || changed || (samples == 1 && within.is_some()) {
                shared.push(
                    now,
                    Some(socket.side()),
                    EventKind::State {
                        socket,
                        state,
                        source,
                        step: Some(step),
                        by: Some(by),
                        samples,
                        on_the_way: !last,
                    },
                );
            }
            previous[i] = Some(state);
        }
        if last {
            return verdict.map_err(|m| {
                Unsettled::Mismatch(match within {
                    Some(d) => Mismatch {
                        expected: format!("{} within {}", m.expected, verdict::millis(d)),
                        ..m
                    },
                    None => m,
                })
            });
        }
        let next = later(POLL_INTERVAL).min(deadline);
        if !shared.sleep_until(next) {
            return Err(Unsettled::CaseEnded);
        }
    }
}

/// The kernel's state of one socket: sock_diag by 4-tuple, else `TCP_INFO`
/// on the fd its side still holds (a socket reset into CLOSE, or a connect
/// that failed, is no longer listed), else gone.
pub(super) fn observe_socket(
    shared: &Shared,
    diag: &mut SockDiag,
    socket: Socket,
) -> Result<(Socket, TcpState, StateSource), String> {
    let Some((local, remote)) = shared.sockets.locate(socket) else {
        return Ok((socket, TcpState::Gone, StateSource::NoConnectionYet));
    };
    let listed = diag
        .lookup(local, remote)
        .map_err(|e| format!("failed to read {socket}'s state through sock_diag: {e}"))?;
    if listed != TcpState::Gone {
        return Ok((socket, listed, StateSource::SockDiag));
    }
    match shared
        .sockets
        .with_fd(socket, |fd| observe::tcp_info_state(fd).ok())
        .flatten()
    {
        Some(state) => Ok((socket, state, StateSource::TcpInfo)),
        None => Ok((socket, TcpState::Gone, StateSource::SockDiag)),
    }
}
