//! Running one case on its own thread: namespace, scripts, verdicts.
//!
//! Everything here runs on the case's fresh OS thread, inside the network
//! namespace that thread created, on a current-thread tokio runtime: both
//! sides' scripts are futures on that one runtime, so they share state
//! through `RefCell`s without locks, and every socket they make is in the
//! case's namespace. A script stops at its first failed expectation, which
//! stops the case.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::observe::{self, SockDiag};
use crate::peer::{CallResult, Peer};
use crate::report::{CaseStatus, EventKind, Failure, StateSource, StepRef, Timeline};
use crate::sandbox::CaseNamespace;
use crate::side::{Link, Side, Socket};
use crate::suite::{Action, Case, Script, Step};
use crate::tcp_state::TcpState;
use crate::verdict::{self, Mismatch};

/// How often a `within` state check samples the kernel. Short enough to
/// catch a 1 ms FIN_WAIT1, cheap because a sock_diag dump of a fresh
/// namespace costs microseconds.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// What one side has made public for the other side's state checks.
#[derive(Debug, Clone, Copy, Default)]
struct Published {
    tuple: Option<(SocketAddr, SocketAddr)>,
    /// The connection's fd while the side holds it, for `TCP_INFO`.
    fd: Option<RawFd>,
}

struct Ctx<'a> {
    case: &'a Case,
    start: Instant,
    timeline: RefCell<Timeline>,
    diag: RefCell<SockDiag>,
    /// Per socket, indexed by [`Socket::index`].
    published: RefCell<[Published; 4]>,
    marks: RefCell<HashSet<String>>,
    marked: Notify,
    /// The step each side is on, for the deadline message.
    progress: [Cell<Option<usize>>; 3],
}

fn slot(side: Side) -> usize {
    side as usize
}

/// Runs the case to its end or its deadline; returns how it ended and the
/// timeline. Call on the case's own fresh thread, inside a current-thread
/// runtime.
pub(crate) async fn execute(case: &Case) -> (CaseStatus, Timeline) {
    let start = Instant::now();
    let setup = async {
        let namespace = CaseNamespace::create().await.map_err(|e| e.to_string())?;
        for (key, value) in &case.sysctls {
            namespace
                .set_sysctl(key, value)
                .map_err(|e| e.to_string())?;
        }
        let diag = SockDiag::open().map_err(|e| e.to_string())?;
        Ok::<_, String>((namespace, diag))
    };
    let (_namespace, diag) = match setup.await {
        Ok(parts) => parts,
        Err(why) => {
            let failure = Failure {
                summary: format!("failed to set up the case: {why}"),
                step: None,
                mismatch: None,
                at: start.elapsed(),
            };
            return (CaseStatus::Failed(failure), Timeline::default());
        }
    };
    let ctx = Ctx {
        case,
        start: Instant::now(),
        timeline: RefCell::new(Timeline::default()),
        diag: RefCell::new(diag),
        published: RefCell::new([Published::default(); 4]),
        marks: RefCell::new(HashSet::new()),
        marked: Notify::new(),
        progress: [Cell::new(None), Cell::new(None), Cell::new(None)],
    };
    // Peers live until the case ends, not until their own script does: a
    // side that finished its steps still holds its sockets (a server that
    // never closes stays in CLOSE_WAIT) while the other side goes on.
    let mut peers = [
        Peer::new(Side::Client),
        Peer::new(Side::Proxy),
        Peer::new(Side::Server),
    ];
    let scripts = async {
        let mut free: Vec<Option<&mut Peer>> = peers.iter_mut().map(Some).collect();
        // The parser allows one script per side, so each peer is taken once.
        let runs: Vec<_> = case
            .scripts
            .iter()
            .filter_map(|script| {
                let peer = free[slot(script.side)].take()?;
                Some(run_script(&ctx, script, peer))
            })
            .collect();
        let mut runs = runs.into_iter();
        match (runs.next(), runs.next(), runs.next()) {
            (Some(a), Some(b), Some(c)) => tokio::try_join!(a, b, c).map(|_| ()),
            (Some(a), Some(b), None) => tokio::try_join!(a, b).map(|_| ()),
            (Some(one), None, None) => one.await,
            _ => Ok(()),
        }
    };
    let status = match tokio::time::timeout(case.deadline, scripts).await {
        Ok(Ok(())) => CaseStatus::Passed,
        Ok(Err(failure)) => CaseStatus::Failed(failure),
        Err(_) => CaseStatus::Failed(overrun(&ctx)),
    };
    let mut timeline = ctx.timeline.into_inner();
    // Calls are recorded when they end but stamped when they began.
    timeline.events.sort_by_key(|e| e.at);
    (status, timeline)
}

/// The deadline failure: what each side was doing when time ran out.
fn overrun(ctx: &Ctx<'_>) -> Failure {
    let mut waiting = Vec::new();
    for script in &ctx.case.scripts {
        match ctx.progress[slot(script.side)].get() {
            Some(i) => waiting.push(format!(
                "{} was at step {} `{}` ({})",
                script.side,
                i + 1,
                script.steps[i].source,
                script.steps[i].location
            )),
            None => waiting.push(format!("{} had finished its script", script.side)),
        }
    }
    let at = ctx.start.elapsed();
    ctx.timeline.borrow_mut().push(
        at,
        None,
        EventKind::Note {
            text: "case deadline passed".into(),
        },
    );
    Failure {
        summary: format!(
            "the case overran its deadline of {}: {}",
            verdict::millis(ctx.case.deadline),
            waiting.join("; ")
        ),
        step: None,
        mismatch: None,
        at,
    }
}

async fn run_script(ctx: &Ctx<'_>, script: &Script, peer: &mut Peer) -> Result<(), Failure> {
    let side = script.side;
    for (index, step) in script.steps.iter().enumerate() {
        ctx.progress[slot(side)].set(Some(index));
        let fail = |mismatch: Option<Mismatch>, what: String| {
            let at = ctx.start.elapsed();
            let summary = format!(
                "{side} step {} `{}` at {}: {what}",
                index + 1,
                step.source,
                step.location
            );
            let step = StepRef {
                side,
                index: index + 1,
                location: step.location.to_string(),
                source: step.source.clone(),
            };
            Failure {
                summary,
                step: Some(step),
                mismatch,
                at,
            }
        };
        match &step.action {
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::Mark(label) => {
                ctx.marks.borrow_mut().insert(label.clone());
                ctx.marked.notify_waiters();
                note(ctx, side, format!("mark {label:?}"));
            }
            Action::Wait { label, timeout } => {
                if !wait_for_mark(ctx, label, *timeout).await {
                    return Err(fail(
                        None,
                        format!("no other side reached `mark = {label:?}` in time"),
                    ));
                }
            }
            Action::State { expected, within } => {
                check_states(ctx, expected, *within).await.map_err(|m| {
                    let what = m.to_string();
                    fail(Some(m), what)
                })?;
            }
            action => {
                if matches!(action, Action::Close | Action::Abort) {
                    // The fd is about to go: no state check may borrow it now.
                    if let Some(socket) = Socket::of(side, step.link) {
                        ctx.published.borrow_mut()[socket.index()].fd = None;
                    }
                }
                let began = ctx.start.elapsed();
                let result = peer.perform(action, step.link).await;
                let took = ctx.start.elapsed() - began;
                publish(ctx, peer);
                ctx.timeline.borrow_mut().push(
                    began,
                    Some(side),
                    EventKind::Call {
                        step: index + 1,
                        action: describe_call(side, step),
                        took,
                        result,
                    },
                );
                judge(step, &result, took, ctx).map_err(|m| {
                    let what = m.to_string();
                    fail(Some(m), what)
                })?;
            }
        }
    }
    ctx.progress[slot(side)].set(None);
    Ok(())
}

/// The call as the timeline shows it; the proxy's say which connection.
fn describe_call(side: Side, step: &Step) -> String {
    let action = &step.action;
    let own_connection = matches!(
        action,
        Action::Listen { .. } | Action::Accept { .. } | Action::Connect { .. }
    );
    match (side, step.link) {
        (Side::Proxy, _) if own_connection => action.to_string(),
        (Side::Proxy, Link::Accepted) => format!("{action} (on client)"),
        (Side::Proxy, Link::Connected) => format!("{action} (on server)"),
        _ => action.to_string(),
    }
}

fn judge(step: &Step, result: &CallResult, took: Duration, ctx: &Ctx<'_>) -> Result<(), Mismatch> {
    let expect = step
        .expect
        .clone()
        .unwrap_or_else(|| step.action.default_expectation());
    verdict::judge_call(&expect, result, took, ctx.case.tolerance)
}

fn publish(ctx: &Ctx<'_>, peer: &Peer) {
    for link in [Link::Accepted, Link::Connected] {
        if let Some(socket) = Socket::of(peer.side(), link) {
            ctx.published.borrow_mut()[socket.index()] = Published {
                tuple: peer.tuple(link),
                fd: peer.conn_fd(link).map(|fd| fd.as_raw_fd()),
            };
        }
    }
}

fn note(ctx: &Ctx<'_>, side: Side, text: String) {
    ctx.timeline
        .borrow_mut()
        .push(ctx.start.elapsed(), Some(side), EventKind::Note { text });
}

async fn wait_for_mark(ctx: &Ctx<'_>, label: &str, timeout: Option<Duration>) -> bool {
    let wait = async {
        loop {
            // Register before checking, so a mark set in between still wakes us.
            let notified = ctx.marked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ctx.marks.borrow().contains(label) {
                return;
            }
            notified.await;
        }
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, wait).await.is_ok(),
        None => {
            wait.await;
            true
        }
    }
}

/// Samples the kernel until every expected state holds, or `within` passes
/// (one sample when `within` is not given). The last sample goes on the
/// timeline either way: it is the evidence.
async fn check_states(
    ctx: &Ctx<'_>,
    expected: &[(Socket, TcpState)],
    within: Option<Duration>,
) -> Result<(), Mismatch> {
    let deadline = Instant::now() + within.unwrap_or_default();
    loop {
        let observed: Vec<(Socket, TcpState, StateSource)> = expected
            .iter()
            .map(|(socket, _)| observe_socket(ctx, *socket))
            .collect::<Result<_, _>>()?;
        let states: Vec<(Socket, TcpState)> = observed
            .iter()
            .map(|(socket, state, _)| (*socket, *state))
            .collect();
        let verdict = verdict::judge_states(expected, &states);
        if verdict.is_ok() || Instant::now() >= deadline {
            let at = ctx.start.elapsed();
            for (socket, state, source) in observed {
                ctx.timeline.borrow_mut().push(
                    at,
                    Some(socket.side()),
                    EventKind::State {
                        socket,
                        state,
                        source,
                    },
                );
            }
            return verdict.map_err(|m| match within {
                Some(d) => Mismatch {
                    expected: format!("{} within {}", m.expected, verdict::millis(d)),
                    observed: m.observed,
                },
                None => m,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The kernel's state of one socket: sock_diag by 4-tuple, else
/// `TCP_INFO` on the fd its side still holds (a socket reset into CLOSE is
/// no longer listed), else gone.
fn observe_socket(
    ctx: &Ctx<'_>,
    socket: Socket,
) -> Result<(Socket, TcpState, StateSource), Mismatch> {
    let published = ctx.published.borrow()[socket.index()];
    let Some((local, remote)) = published.tuple else {
        return Ok((socket, TcpState::Gone, StateSource::NoConnectionYet));
    };
    let listed = ctx
        .diag
        .borrow_mut()
        .lookup(local, remote)
        .map_err(|e| Mismatch {
            expected: "a sock_diag answer".into(),
            observed: e.to_string(),
        })?;
    if listed != TcpState::Gone {
        return Ok((socket, listed, StateSource::SockDiag));
    }
    match published.fd {
        Some(raw) => {
            // SAFETY: `raw` is the connection fd the side's Peer still owns:
            // sides run on this one thread, and a side withdraws its fd from
            // `published` before any call that closes it, so the fd is open
            // and not reused for the length of this synchronous call.
            let fd = unsafe { BorrowedFd::borrow_raw(raw) };
            match observe::tcp_info_state(fd) {
                Ok(state) => Ok((socket, state, StateSource::TcpInfo)),
                Err(_) => Ok((socket, TcpState::Gone, StateSource::SockDiag)),
            }
        }
        None => Ok((socket, TcpState::Gone, StateSource::SockDiag)),
    }
}
