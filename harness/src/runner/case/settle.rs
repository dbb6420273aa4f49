//! Before the case stops its program: letting the program settle, so that
//! what it does about the scripts' hang-ups is on the record, not left to
//! a race with its stop signal.
//!
//! When the scripts are done, the program is asked to stop. A program
//! that logs a connection's end (Node's `req aborted`, `res close`) does
//! so a moment
//! after the kernel handed it the FIN or RST: it closes its socket first,
//! and only then runs the callbacks that print. Stopped at once, it printed
//! those lines in one run and not the next, and `hangup diff` of a version
//! against itself found differences that were hangup's timing, not the
//! program's. Waiting for the kernel to show the socket released is not
//! enough: the socket is closed before the lines are printed.
//!
//! So the case waits, bounded by [`SETTLE_LIMIT`], for two things in turn:
//! the kernel shows the program's end of every connection the scripts
//! closed past ESTABLISHED (the FIN or RST processed, so the program was
//! woken; one whose script end is gone, its RST taken by a fault, is never
//! told, and one a script left open is closed only once the case is over:
//! neither is waited for), then every thread of the program asleep, and
//! what it wrote read, in two samples [`ASLEEP_GAP`] apart: it has nothing
//! left to run, so its callbacks have run and printed. The wait is on the
//! timeline as a typed event ([`EventKind::ProgramSettle`]); it never
//! changes a verdict.
//!
//! A program that plays the client settles the same way: it too may log
//! the end of its connection (a script server's close) a moment after the
//! kernel saw it, and the wait costs nothing when it exited already.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Shared;
use super::checks::opened;
use crate::model::TcpState;
use crate::observe::{SockDiag, SocketSnapshot};
use crate::record::{EventKind, Unsettled};
use crate::report::FailureKind;
use crate::sut::ProgramView;

/// The most a case waits for its program to settle, both waits together
/// (one [`ASLEEP_GAP`] more when the last sample found it settled).
/// A FIN reaches a loopback peer in microseconds and a runtime's callbacks
/// run in a few milliseconds (Node printed its four lines 80 ms after the
/// close on a loaded 2-core machine); a FIN retransmitted after a fault
/// was lifted takes a 200 ms RTO. Past this the program is busy with
/// something else (a thread that spins, a timer loop), and the case goes
/// on rather than pay for it in every case.
pub(super) const SETTLE_LIMIT: Duration = Duration::from_millis(500);

/// How often the kernel's socket table is read while a connection is
/// still ESTABLISHED on the program's side: one dump costs microseconds.
const CONNECTION_POLL: Duration = Duration::from_millis(2);

/// How far apart the two samples are that must both find every thread
/// asleep: a thread woken by a FIN runs its callbacks within this, and a
/// runtime's periodic timer (a JVM's, a poller's) rarely wakes in both.
const ASLEEP_GAP: Duration = Duration::from_millis(5);

/// Lets the case's program settle before it is stopped (see the module
/// docs), and records how that went. Skipped when there is no program,
/// when it ended already, and when the case was stopped by its deadline
/// or the run's interruption (Ctrl-C stays fast).
pub(super) fn settle(shared: &Shared) {
    let Some((view, _)) = shared.program.get() else {
        return;
    };
    if skipped(shared, view) {
        return;
    }
    let began = Instant::now();
    let until = began + SETTLE_LIMIT;
    let mut diag = None;
    let waited = match opened(shared, &mut diag) {
        Ok(diag) => connections_released(shared, diag, until),
        // Without the socket table only the threads can be waited for.
        Err(_) => Ok(()),
    }
    .and_then(|()| asleep(shared, view, until));
    let gave_up_on = match waited {
        Ok(()) => None,
        Err(Stop::Interrupted) => return,
        Err(Stop::Unsettled(on)) => Some(on),
    };
    let now = Instant::now();
    shared.push(
        now,
        Some(program_side(shared)),
        EventKind::ProgramSettle {
            waited: now - began,
            gave_up_on,
        },
    );
}

/// Why a settle ended before the program settled.
enum Stop {
    /// Its limit passed first, with this still undone.
    Unsettled(Unsettled),
    /// The run was interrupted meanwhile: no wait, no record.
    Interrupted,
}

/// Whether the settle is left out: the program ended (nothing more will
/// be printed), or the case was stopped from outside its scripts.
fn skipped(shared: &Shared, view: &ProgramView) -> bool {
    if shared.stop.is_set() || view.exit().is_some() || !view.running() {
        return true;
    }
    shared
        .control()
        .failure
        .as_ref()
        .is_some_and(|f| matches!(f.kind, FailureKind::Deadline | FailureKind::Interrupted))
}

/// The side the program plays, for its events.
fn program_side(shared: &Shared) -> crate::model::Side {
    shared
        .case
        .program
        .as_ref()
        .map_or(crate::model::Side::Server, |p| p.role)
}

/// Waits until the kernel lists no socket of the case's namespace in
/// ESTABLISHED whose peer is a script's end that the script closed: the
/// program's end of a connection whose FIN the kernel has not yet
/// processed.
fn connections_released(shared: &Shared, diag: &mut SockDiag, until: Instant) -> Result<(), Stop> {
    loop {
        if shared.stop.is_set() {
            return Err(Stop::Interrupted);
        }
        // A table that cannot be read is no reason to wait.
        let Ok(table) = diag.tcp_sockets() else {
            return Ok(());
        };
        let open = table.iter().find(|s| {
            s.state == TcpState::Established
                && is_script_end(shared, s.remote)
                && closed_by_the_script(&table, s)
        });
        let Some(open) = open else {
            return Ok(());
        };
        if Instant::now() >= until {
            return Err(Stop::Unsettled(Unsettled::Connection {
                local: open.local,
                remote: open.remote,
            }));
        }
        std::thread::sleep(CONNECTION_POLL);
    }
}

/// Whether the script's end of the program's `end` is closed and still in
/// the kernel (FIN_WAIT1, LAST_ACK, ...): its FIN is on its way,
/// retransmitted if it was lost. One whose script end is gone (its RST
/// taken by a fault before the fault was lifted) will never be told, and
/// one whose script end is still open (a connection the script left open,
/// closed only once the case is over) is not closed yet: no use waiting
/// for either.
fn closed_by_the_script(table: &[SocketSnapshot], end: &SocketSnapshot) -> bool {
    let same = |a: SocketAddr, b: SocketAddr| {
        a.port() == b.port() && a.ip().to_canonical() == b.ip().to_canonical()
    };
    table.iter().any(|other| {
        same(other.local, end.remote)
            && same(other.remote, end.local)
            && other.state != TcpState::Established
    })
}

/// Whether `peer` is an address a script's socket had, as the kernel gives
/// it or as its IPv4 form (a dual-stack listener's peer is IPv4-mapped).
fn is_script_end(shared: &Shared, peer: SocketAddr) -> bool {
    let canonical = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    shared.sockets.is_the_case_s(peer) || shared.sockets.is_the_case_s(canonical)
}

/// Waits until two samples [`ASLEEP_GAP`] apart both find every thread of
/// the program asleep and its output read.
fn asleep(shared: &Shared, view: &ProgramView, until: Instant) -> Result<(), Stop> {
    let mut settled_once = false;
    loop {
        if shared.stop.is_set() {
            return Err(Stop::Interrupted);
        }
        let unsettled = match view.awake_thread() {
            Some((tid, state)) => Some(Unsettled::Thread { tid, state }),
            None if !view.output_drained() => Some(Unsettled::Output),
            None => None,
        };
        match unsettled {
            None if settled_once => return Ok(()),
            None => settled_once = true,
            Some(_) if view.exit().is_some() => return Ok(()),
            Some(on) if Instant::now() >= until => return Err(Stop::Unsettled(on)),
            Some(_) => settled_once = false,
        }
        // Past the limit by one gap at most: a first sample that found it
        // settled gets its second.
        std::thread::sleep(ASLEEP_GAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(local: &str, remote: &str, state: TcpState) -> SocketSnapshot {
        SocketSnapshot {
            local: local.parse().expect("address"),
            remote: remote.parse().expect("address"),
            state,
            inode: 0,
            recv_q: 0,
            send_q: 0,
            cookie: 0,
        }
    }

    /// A program's end whose script end is in FIN_WAIT1 (its FIN lost, to
    /// be retransmitted) is waited for, a dual-stack listener's
    /// IPv4-mapped addresses matching; one whose script end is gone (its
    /// RST taken by a fault) is not, nor one the script left open.
    #[test]
    fn only_a_connection_the_script_closed_and_still_holds_is_waited_for() {
        let program = socket(
            "[::ffff:127.0.0.1]:8080",
            "[::ffff:127.0.0.1]:41234",
            TcpState::Established,
        );
        let script = socket("127.0.0.1:41234", "127.0.0.1:8080", TcpState::FinWait1);
        assert!(closed_by_the_script(&[program.clone(), script], &program));
        let other = socket("127.0.0.1:41235", "127.0.0.1:8080", TcpState::FinWait1);
        assert!(!closed_by_the_script(&[program.clone(), other], &program));
        assert!(!closed_by_the_script(
            std::slice::from_ref(&program),
            &program
        ));
        let open = socket("127.0.0.1:41234", "127.0.0.1:8080", TcpState::Established);
        assert!(!closed_by_the_script(&[program.clone(), open], &program));
    }
}
