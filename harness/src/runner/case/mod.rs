//! Running one case: its namespace, one thread per side, verdicts.
//!
//! # Who runs where, who wakes whom
//!
//! ```text
//!  run() on the calling thread (a test trial's, or a run_all worker's;
//!  it never enters a namespace)
//!    |  spawns, in a fresh network namespace (or the suite program's)
//!    v
//!  the case's thread ............................ setup::prepare_and_run
//!    sysctls, a second host (hosts), the capture (wire),
//!    the program if it plays the server (program),
//!    then the sides (sides::run_sides):
//!      +-- side thread: client ---+  one OS thread per side; the first
//!      +-- side thread: proxy ----+  side runs on the case's thread itself
//!      +-- side thread: server ---+  (on two hosts, each joins its host)
//!    each runs its script: sides::run_step hands a step to
//!      calls (a socket call) | control (sleep, mark, wait, signal,
//!      faults) | checks (states, queues, fd table, output, traced calls)
//!    when every side is done: the faults' end (faults), every socket
//!    closed together, the program left to settle (settle) and then
//!    stopped, the capture's end
//!
//!  meanwhile the calling thread supervises .......... deadline::supervise
//!    it sleeps on `Shared::supervisor` until a verdict, the deadline or
//!    the run's interruption; then it wakes each side still blocked in a
//!    call (`interrupt`: a signal that makes the call return EINTR), and
//!    waits for the teardown.
//! ```
//!
//! Threads inherit the namespace of the thread that creates them, so every
//! socket the sides make is in the case's namespace, and each side makes
//! its blocking calls on its own clock, as a separate program would: a side
//! that is busy or stalled never delays another side's call or decides its
//! outcome.
//!
//! The sides share only what real peers share through the kernel, plus the
//! case's coordination ([`Shared`]): `mark`/`wait` labels, the table of
//! sockets a state check reads, the event record, and whether the case is
//! stopping. `Shared::changed` wakes the sides (a mark, a listener, the
//! program ready, the case stopping); `Shared::supervisor` wakes the
//! supervisor only for what it must act on (a failure, a side leaving a
//! stopping case, the end of teardown): on a loaded machine every needless
//! wake-up costs a scheduling round. A side stops at its first failed
//! expectation, which stops the case. Sockets live until the case ends,
//! not until their side's script does.

mod calls;
mod checks;
mod control;
mod deadline;
mod faults;
mod hosts;
mod program;
mod settle;
mod setup;
mod sides;
mod step;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::interrupt::Waker;
use super::suite_program::SuiteProgram;
use crate::model::Side;
use crate::observe;
use crate::observe::queued;
use crate::peer::Sockets;
use crate::record::{EventKind, OpenFd, OutputLine, Recorder, StepId, Timeline};
use crate::report::{CaseStatus, Failure, FailureKind};
use crate::suite::{Case, Topology};
use crate::sut;
use crate::verdict::{self, Mismatch};

use self::deadline::{STOP_GRACE, supervise};
use self::faults::FaultsInPlace;
use self::hosts::Hosts;
use self::program::serve;
use self::setup::prepare_and_run;

/// How often a `within` state check samples the kernel. Short enough to
/// catch a 1 ms FIN_WAIT1, cheap because one sock_diag lookup costs
/// microseconds.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// How long a failure waits to learn whether the program under test has
/// just ended (and so likely caused it): only on the way to a failure. Its
/// end reaches hangup through init and the relay (see `sut::spawn`), three
/// processes that each need a CPU: 100 ms was too short on a loaded
/// machine.
const PROGRAM_EXIT_GRACE: Duration = Duration::from_secs(1);

/// How long the case's thread then gets to close every socket.
const TEARDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the program under test held once it was ready: what a `released`
/// check tells the fds it has since opened by.
#[derive(Debug, Clone)]
struct Baseline {
    /// Its fds (`None` when /proc could not say).
    fds: Option<Vec<OpenFd>>,
}

/// What the sides of one case share.
struct Shared {
    case: Case,
    /// Whether a passing case's artifacts are kept too (`--keep-artifacts`).
    keep_artifacts: bool,
    /// Whether its packets are captured.
    capture_packets: bool,
    sockets: Arc<Sockets>,
    /// The case's record; its clock starts when the namespace is ready.
    record: Recorder,
    /// The program under test, once it is running and ready: its output,
    /// its fd table, and what it held when it became ready.
    program: std::sync::OnceLock<(sut::ProgramView, Baseline)>,
    /// The ids of the threads that run the sides, whose waits for a CPU
    /// are the machine's share of a timed call (see `queued`).
    threads: Mutex<Vec<i32>>,
    /// The times of the program's threads when it became ready, until the
    /// scripts are done (see [`EventKind::ProgramBusy`]).
    program_busy_from: Mutex<Option<Vec<(i32, queued::Times)>>>,
    control: Mutex<Coordination>,
    /// Signalled on every change of `control`, for the sides.
    changed: Condvar,
    /// The run's request to stop, which the supervisor looks at.
    stop: super::StopSignal,
    /// The case's faults on the network, once a step put one in place.
    faults: Mutex<FaultsInPlace>,
    /// Every packet of the case, from before its first step to its end:
    /// one capture per host (on two hosts, each sees what arrives there).
    capture: Mutex<Vec<observe::Capture>>,
    /// In a two-host case, once made: each host's namespace.
    hosts: std::sync::OnceLock<Hosts>,
    /// Signalled only when the supervisor has something to do: a verdict
    /// (a failure), a side leaving a stopping case, the end of teardown.
    /// Marks, sleeps and waits never wake it: on a loaded machine every
    /// needless wake-up costs a scheduling round.
    supervisor: Condvar,
}

/// What a case keeps and records beyond its verdict.
pub(super) struct Artifacts {
    /// Its artifact folder even when it passes (`--keep-artifacts`).
    pub keep: bool,
    /// A capture of its packets.
    pub capture: bool,
}

/// The coordination state, behind one lock.
#[derive(Default)]
struct Coordination {
    /// Each label marked, with when it first was.
    marks: HashMap<String, Instant>,
    /// The first failure; the case stops at it.
    failure: Option<Failure>,
    /// Set once the case has a verdict (a failure or the deadline): sides
    /// leave their scripts at the next step, or when their call is
    /// interrupted.
    stopping: bool,
    /// Per side, indexed by [`Side`].
    sides: [SideProgress; 3],
    /// How late the harness's own timers (sleeps, polls) woke, or a side
    /// waited for a CPU during a timed call, at most.
    lateness: Duration,
    /// Set by the case's thread once every side is done and every socket
    /// closed.
    torn_down: bool,
    /// The ports the scripts listen on: a program that plays the client
    /// starts once its port is among them.
    listening: Vec<u16>,
}

#[derive(Default, Clone, Copy)]
struct SideProgress {
    /// Whether the side has a script and is still running it.
    running: bool,
    waker: Option<Waker>,
    /// The step it is on (in a loop: the body's step and round) and, for
    /// a call, when the call began.
    step: Option<(StepId, Option<Instant>)>,
    /// Whether it waits for the program under test to be ready (see
    /// [`Shared::program`]): a program that plays the client waits in
    /// turn for a script to listen, and a case where every running side
    /// waits for it would wait for its deadline.
    waiting_for_program: bool,
}

/// Waits on `condvar` for at most `for_at_most`, handing the guard back
/// (woken early or not: the caller looks at the state again).
fn wait<'a>(
    condvar: &Condvar,
    guard: MutexGuard<'a, Coordination>,
    for_at_most: Duration,
) -> MutexGuard<'a, Coordination> {
    condvar
        .wait_timeout(guard, for_at_most)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

impl Shared {
    /// The address the server's side is reached at: 127.0.0.1, or on two
    /// hosts the server's host's.
    fn host_address(&self) -> std::net::IpAddr {
        match self.case.topology {
            Topology::TwoHosts => crate::sandbox::topology::HOST_ADDRESS.into(),
            Topology::Loopback => std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    fn control(&self) -> MutexGuard<'_, Coordination> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, when: Instant, side: Option<Side>, kind: EventKind) {
        self.record.push(when, side, kind);
    }

    fn at(&self, instant: Instant) -> Duration {
        self.record.at(instant)
    }

    /// The run-queue waits so far of every thread of the case: the sides'
    /// and the program's.
    fn sides_snapshot(&self) -> Vec<(i32, queued::Times)> {
        let tids = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        queued::snapshot(&tids)
    }

    /// Counts the program's busy time from now (see
    /// [`EventKind::ProgramBusy`]), unless it already counts: from its
    /// start, for a client, which the scripts wait for.
    fn program_busy_from_now(&self, view: &sut::ProgramView) {
        let mut from = self
            .program_busy_from
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if from.is_none() {
            *from = Some(queued::snapshot(&view.threads()));
        }
    }

    /// The times so far of every thread of the program's PID namespace,
    /// once it is ready; none before.
    fn program_snapshot(&self) -> Option<Vec<(i32, queued::Times)>> {
        let (view, _) = self.program.get()?;
        Some(queued::snapshot(&view.threads()))
    }

    /// Records how busy the program's threads were since they were read
    /// when it became ready ([`Shared::set_program`]; a client's, when it
    /// started): once the scripts are done, before it is stopped.
    fn record_program_busy(&self) {
        let before = self
            .program_busy_from
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some(before), Some(now)) = (before, self.program_snapshot()) {
            let side = self.case.program.as_ref().map(|p| p.role);
            self.push(
                Instant::now(),
                side,
                EventKind::ProgramBusy {
                    busy: queued::since(&before, &now).busy(),
                },
            );
        }
    }

    fn queue_snapshot(&self) -> Vec<(i32, queued::Times)> {
        let mut tids = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((view, _)) = self.program.get() {
            tids.extend(view.threads());
        }
        queued::snapshot(&tids)
    }

    fn stopping(&self) -> bool {
        self.control().stopping
    }

    /// The program under test, once it runs and is ready, for a step that
    /// needs it (`log`, `released`, `syscall`, `signal`). A program that
    /// plays the client is started by the case's thread while the scripts
    /// run, and under load a script's step can come to it first (the
    /// program connected, the server's script accepted and went on): such
    /// a step waits until the program is there, or could not be started
    /// (then the case is stopping). `None` when the case has no program.
    fn program(&self, side: Side) -> Option<&(sut::ProgramView, Baseline)> {
        self.case.program.as_ref()?;
        let mut control = self.control();
        let found = loop {
            if let Some(program) = self.program.get() {
                break Some(program);
            }
            if control.stopping {
                break None;
            }
            if !control.sides[side as usize].waiting_for_program {
                // A program waiting for a listener looks at this.
                control.sides[side as usize].waiting_for_program = true;
                self.changed.notify_all();
            }
            control = wait(&self.changed, control, Duration::from_millis(50));
        };
        control.sides[side as usize].waiting_for_program = false;
        found
    }

    /// Makes the program under test known to the steps, once it is ready.
    fn set_program(&self, view: sut::ProgramView, baseline: Baseline) {
        self.program_busy_from_now(&view);
        let _ = self.program.set((view, baseline));
        let _control = self.control();
        self.changed.notify_all();
    }

    /// Records the case's first failure and stops it. A failure while the
    /// program under test had already ended on its own says so: its exit
    /// is likely the cause (a refused connect, a reset).
    ///
    /// A failure while the program runs, none of its processes ending, is
    /// not its exit's doing: it does not wait to learn of an exit. Waiting
    /// let an exit the failure itself provoked take its place: a script
    /// stuck on a failing check kept a client program waiting for its
    /// answer, the client gave up and exited 1 during the wait, and the
    /// case was reported as the program's exit, its cause unsaid.
    fn fail(&self, mut failure: Failure) {
        let ended = match (self.program.get().map(|(view, _)| view), failure.kind) {
            (Some(program), kind)
                if kind != FailureKind::Program && !self.stopping() && !program.running() =>
            {
                program.exit_within(PROGRAM_EXIT_GRACE)
            }
            _ => None,
        };
        if let Some(exit) = ended {
            failure
                .summary
                .push_str(&format!(" (the program {exit} before this)"));
        }
        let mut control = self.control();
        if control.failure.is_none() {
            control.failure = Some(failure);
        }
        control.stopping = true;
        self.changed.notify_all();
        self.supervisor.notify_all();
    }

    /// Sleeps until `until`, or less if the case stops; returns whether it
    /// slept the whole time. Measures how late it woke.
    fn sleep_until(&self, until: Instant) -> bool {
        let mut control = self.control();
        loop {
            if control.stopping {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                let late = now - until;
                control.lateness = control.lateness.max(late);
                return true;
            }
            control = wait(&self.changed, control, until - now);
        }
    }

    /// Waits up to `limit` for the case's thread to close every socket;
    /// whether it did.
    fn wait_torn_down(&self, limit: Duration) -> bool {
        let until = later(limit);
        let mut control = self.control();
        while !control.torn_down {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            control = wait(&self.supervisor, control, until - now);
        }
        true
    }

    fn set_step(&self, side: Side, step: Option<(StepId, Option<Instant>)>) {
        self.control().sides[side as usize].step = step;
    }
}

/// Runs the case to its end or its deadline; returns how it ended, the
/// timeline, and how late hangup's own threads ran (see [`Coordination::lateness`]).
///
/// The case's own fresh thread makes the namespace, sets the sysctls,
/// starts a thread for each other side and runs the first side's script
/// itself; the calling thread, which never enters the namespace, supervises:
/// it watches the deadline and wakes sides blocked in calls once the case
/// has a verdict. The case's clock starts once the namespace is ready.
///
/// With `serving`, the suite's program (`scope = "suite"`) serves the case:
/// the case's thread joins that program's namespace instead of making one,
/// and the program is neither started nor stopped here. The caller holds
/// its turn.
pub(crate) fn run(
    case: Case,
    record: Recorder,
    stop: super::StopSignal,
    artifacts: Artifacts,
    serving: Option<&SuiteProgram>,
) -> (CaseStatus, Timeline, Duration) {
    let shared = Arc::new(Shared {
        case,
        stop,
        keep_artifacts: artifacts.keep,
        capture_packets: artifacts.capture,
        sockets: Arc::default(),
        record,
        program: std::sync::OnceLock::new(),
        threads: Mutex::default(),
        program_busy_from: Mutex::default(),
        control: Mutex::default(),
        faults: Mutex::default(),
        capture: Mutex::default(),
        hosts: std::sync::OnceLock::new(),
        changed: Condvar::new(),
        supervisor: Condvar::new(),
    });
    let name = format!("case {}", shared.case.name);
    let for_thread = Arc::clone(&shared);
    let run_here = move |namespace| prepare_and_run(&for_thread, namespace);
    // Held until the case is over: the program's events come here.
    let mut served = None;
    let spawned = match serving {
        None => crate::sandbox::spawn_in_case_namespace(name, run_here),
        Some(program) => match serve(&shared, program) {
            Ok(serving) => {
                let namespace = Arc::clone(&serving.namespace);
                served = Some(serving);
                crate::sandbox::spawn_in_namespace(name, namespace, run_here)
            }
            Err(failure) => {
                return (
                    CaseStatus::Failed(*failure),
                    shared.record.finish(),
                    Duration::ZERO,
                );
            }
        },
    };
    let thread = match spawned {
        Ok(thread) => thread,
        Err(err) => {
            return (
                unjudged(FailureKind::Setup, err.to_string()),
                Timeline::default(),
                Duration::ZERO,
            );
        }
    };
    supervise(&shared);
    // The case thread closes every side's sockets once all are done.
    // A program's grace period comes on top.
    let grace = TEARDOWN_GRACE
        + shared
            .case
            .program
            .as_ref()
            .map_or(Duration::ZERO, |p| p.grace);
    let torn_down = shared.wait_torn_down(grace);
    let panicked = torn_down && thread.join().is_err();
    let mut control = shared.control();
    let broken = match (torn_down, panicked) {
        (false, _) => Some(format!(
            "a side did not leave its call within {} of the case's end (a lingering close?)",
            verdict::millis(STOP_GRACE + TEARDOWN_GRACE)
        )),
        (true, true) => Some("the case thread panicked; this is a hangup bug".into()),
        (true, false) => None,
    };
    if let Some(summary) = broken {
        control.failure.get_or_insert_with(|| {
            Failure::new(FailureKind::Harness, summary, shared.at(Instant::now()))
        });
    }
    let status = match control.failure.take() {
        None => CaseStatus::Passed,
        Some(failure) => CaseStatus::Failed(failure),
    };
    let lateness = control.lateness;
    drop(control);
    drop(served);
    (status, shared.record.finish(), lateness)
}

/// A case that ended without a verdict on what it tested.
fn unjudged(kind: FailureKind, summary: String) -> CaseStatus {
    CaseStatus::Failed(Failure::new(kind, summary, Duration::ZERO))
}

/// A check's failure: its kind, the mismatch if it judged one, and the
/// summary; `None` when the case ended first.
type CheckEnd = Option<(FailureKind, Option<Mismatch>, String)>;

fn harness_failure(shared: &Shared, kind: FailureKind, summary: String) -> Failure {
    Failure::new(kind, summary, shared.at(Instant::now()))
}

/// A failure of the program under test, with its last output.
fn program_failure(shared: &Shared, summary: String, output: Vec<OutputLine>) -> Failure {
    Failure {
        output,
        ..harness_failure(shared, FailureKind::Program, summary)
    }
}

/// `Instant::now() + d` that cannot panic; see [`add_saturating`].
fn later(d: Duration) -> Instant {
    add_saturating(Instant::now(), d)
}

/// `from + d`, or the latest instant a sum can reach when that overflows.
/// Suite durations are limited at parse time (`suite::limits`), so this
/// only keeps a value that slipped past from panicking mid-case.
fn add_saturating(from: Instant, d: Duration) -> Instant {
    from.checked_add(d)
        .or_else(|| from.checked_add(crate::suite::limits::MAX_DURATION))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration that slipped past the parse-time limit must not panic
    /// the case's supervisor with an overflowing `Instant` sum.
    #[test]
    fn instant_sums_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert!(add_saturating(now, Duration::MAX) >= now);
        assert_eq!(
            add_saturating(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        assert!(later(Duration::MAX) >= now);
    }
}
