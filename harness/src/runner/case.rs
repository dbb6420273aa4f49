//! Running one case: its namespace, one thread per side, verdicts.
//!
//! The case's own fresh OS thread creates the network namespace, then
//! starts one OS thread per side. Threads inherit the namespace of the
//! thread that creates them, so every socket the sides make is in the
//! case's namespace, and each side makes its blocking calls on its own
//! clock, as a separate program would: a side that is busy or stalled never
//! delays another side's call or decides its outcome.
//!
//! The sides share only what real peers share through the kernel, plus the
//! case's coordination ([`Shared`]): `mark`/`wait` labels, the table of
//! sockets a state check reads, the event record, and whether the case is
//! stopping. A side stops at its first failed expectation, which stops the
//! case: the case thread then wakes every side still blocked in a call
//! ([`interrupt`](super::interrupt)) and records that call as in flight.
//! The case's deadline does the same. Sockets live until the case ends, not
//! until their side's script does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::interrupt::{self, Waker};
use super::queued;
use super::suite_program::{Serving, SuiteProgram};
use crate::fault::{Faults, Filter};
use crate::model::Outcome;
use crate::model::TcpState;
use crate::model::syscall::Which;
use crate::model::{Side, Socket};
use crate::observe::{self, SockDiag};
use crate::peer::{Call, Peer, Sockets};
use crate::record::{
    EventKind, FaultSpec, HeldBy, HeldSocket, OpenFd, OutputLine, QueuedAt, Recorder, SegmentSeen,
    Shortfall, StateSource, StepId, StopReason, Timeline,
};
use crate::report::{CaseStatus, Failure, FailureKind, StepRef};
use crate::sandbox::{CaseNamespace, SandboxError};
use crate::suite::{
    Action, Case, Check, Control, Fault, Lift, LineCount, Loop, Pattern, Program, Script, Segments,
    Step, Topology,
};
use crate::sut;
use crate::verdict::{self, Mismatch};

/// How often a `within` state check samples the kernel. Short enough to
/// catch a 1 ms FIN_WAIT1, cheap because one sock_diag lookup costs
/// microseconds.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// How often the case thread repeats its wake-up signal to a side still
/// blocked after the case ended (a signal sent just before the side
/// entered its call is missed).
const WAKE_INTERVAL: Duration = Duration::from_millis(5);

/// How long the sides get to leave their calls after the case ended. Only a
/// lingering close (`SO_LINGER` with seconds) can hold a side longer.
const STOP_GRACE: Duration = Duration::from_secs(5);

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

/// How long a `signal = "SIGSTOP"` step waits for the program to be
/// stopped (it is within a millisecond or two when idle).
const STOP_TAKES_EFFECT: Duration = Duration::from_secs(2);

/// The nf_tables sockets of the case (a table goes when its socket
/// closes) and the faults in place, oldest first.
#[derive(Default)]
struct FaultsInPlace {
    /// Per host a fault's packets arrive at ([`FaultsInPlace::host`]):
    /// the case's namespace, and in a two-host case the client's.
    kernels: [Option<Faults>; 2],
    active: Vec<ActiveFault>,
    /// Each fault put in place, indexed by its rules' [`Filter::tag`].
    described: Vec<FaultSpec>,
    /// The packets the faults took, as the kernel logged them.
    taken: Vec<crate::fault::Taken>,
    /// The packets the delays held, as the kernel queued them (at most
    /// [`MAX_HELD_NOTED`]: the timeline shows fewer packets than that).
    held: Vec<crate::fault::Held>,
    /// What went wrong with holding them, each once.
    delay_trouble: Vec<crate::fault::DelayTrouble>,
    /// Whether the kernel dropped some of those logs (its buffer was full).
    untold: bool,
    /// Each named fault lifted, with the packets it took.
    lifted: Vec<(String, u64)>,
}

impl FaultsInPlace {
    /// Moves the packets the kernel logged as taken since the last call
    /// into `taken` (its socket holds a few hundred: called at each lift,
    /// each `taken` check and the end).
    fn collect_taken(&mut self) {
        for kernel in self.kernels.iter_mut().flatten() {
            // Bounded: a socket that keeps failing is not read forever.
            for _ in 0..1024 {
                match kernel.taken() {
                    Ok(taken) if taken.is_empty() => break,
                    Ok(taken) => self.taken.extend(taken),
                    Err(_) => self.untold = true,
                }
            }
            let (held, trouble) = kernel.held();
            let room = MAX_HELD_NOTED.saturating_sub(self.held.len());
            self.held.extend(held.into_iter().take(room));
            for what in trouble {
                if !self.delay_trouble.contains(&what) {
                    self.delay_trouble.push(what);
                }
            }
        }
    }

    /// Which of [`FaultsInPlace::kernels`] holds the rules on what `from`
    /// sends: they act on the input hook, so on the host the packets
    /// arrive at (on one loopback, the case's).
    fn host(two_hosts: bool, from: Side) -> usize {
        usize::from(two_hosts && from == Side::Server)
    }

    /// The fault that took the packet whose IP header starts `ip`, if one
    /// did; each logged packet answers once.
    fn took(&mut self, ip: &[u8]) -> Option<FaultSpec> {
        let at = self.taken.iter().position(|taken| {
            let n = taken.packet.len().min(ip.len());
            n >= 20 && taken.packet[..n] == ip[..n]
        })?;
        let taken = self.taken.remove(at);
        self.described.get(taken.tag as usize).cloned()
    }

    /// The delay that held the packet whose IP header starts `ip`, and
    /// how long, if one did; each held packet answers once.
    fn delayed(&mut self, ip: &[u8]) -> Option<HeldBy> {
        let at = self.held.iter().position(|held| {
            let n = held.packet.len().min(ip.len());
            n >= 20 && held.packet[..n] == ip[..n]
        })?;
        let held = self.held.remove(at);
        let fault = self.described.get(held.tag as usize).cloned()?;
        Some(HeldBy {
            fault,
            held: held.held,
        })
    }
}

/// The most held packets kept to mark in the timeline.
const MAX_HELD_NOTED: usize = 100_000;

/// A fault a step put in place and no `lift` took away yet.
struct ActiveFault {
    name: Option<String>,
    /// Its host, in [`FaultsInPlace::kernels`].
    host: usize,
    /// For a cut host rather than rules: whose host, and how.
    cut: Option<(Side, crate::sandbox::topology::Cut)>,
    /// The fault, as the suite put it.
    spec: FaultSpec,
    /// Its rules in the kernel.
    handles: Vec<u64>,
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
    /// The step it is on (0-based) and, for a call, when the call began.
    step: Option<(usize, Option<Instant>)>,
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
    fn queue_snapshot(&self) -> Vec<(i32, Duration)> {
        let mut tids = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((view, _)) = self.program.get() {
            tids.extend(queued::threads_of(view.pid().as_raw()));
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
    fn program(&self) -> Option<&(sut::ProgramView, Baseline)> {
        self.case.program.as_ref()?;
        let mut control = self.control();
        loop {
            if let Some(program) = self.program.get() {
                return Some(program);
            }
            if control.stopping {
                return None;
            }
            control = wait(&self.changed, control, Duration::from_millis(50));
        }
    }

    /// Makes the program under test known to the steps, once it is ready.
    fn set_program(&self, view: sut::ProgramView, baseline: Baseline) {
        let _ = self.program.set((view, baseline));
        let _control = self.control();
        self.changed.notify_all();
    }

    /// Records the case's first failure and stops it. A failure while the
    /// program under test had already ended on its own says so: its exit
    /// is likely the cause (a refused connect, a reset).
    fn fail(&self, mut failure: Failure) {
        let ended = match (self.program.get().map(|(view, _)| view), failure.kind) {
            (Some(program), kind) if kind != FailureKind::Program && !self.stopping() => {
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

    fn set_step(&self, side: Side, step: Option<(usize, Option<Instant>)>) {
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

/// Has the suite's program serve this case: its output, calls and exit
/// come to this case from now on, its listener is the case's server, and
/// `released` compares with what it holds now.
fn serve<'a>(shared: &Arc<Shared>, program: &'a SuiteProgram) -> Result<Serving<'a>, Box<Failure>> {
    let on_exit = {
        let shared = Arc::clone(shared);
        Box::new(move |exit: sut::Exit, tail: Vec<OutputLine>| {
            shared.fail(program_failure(
                &shared,
                format!("the program {exit} while the case ran"),
                tail,
            ));
        })
    };
    let serving = program
        .serve(&shared.case.name, &shared.record, on_exit)
        .map_err(|(why, tail)| Box::new(program_failure(shared, why, tail)))?;
    shared.sockets.program_listens(
        Side::Server,
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, program.port())),
    );
    let baseline = Baseline {
        fds: serving.view.open_fds().ok(),
    };
    shared.set_program(serving.view.clone(), baseline);
    shared.push(
        Instant::now(),
        Some(Side::Server),
        EventKind::ProgramServes {
            pid: serving.view.pid().as_raw(),
            port: program.port(),
        },
    );
    Ok(serving)
}

/// The namespaces of a two-host case: the case's own (the server's host)
/// and the client's, joined by a veth pair.
struct Hosts {
    /// The case's namespace.
    server: Arc<std::os::fd::OwnedFd>,
    /// The client's host's.
    client: Arc<std::os::fd::OwnedFd>,
}

impl Hosts {
    /// The namespace of the host `side`'s host is not.
    fn other(&self, side: Side) -> &Arc<std::os::fd::OwnedFd> {
        match side {
            Side::Client => &self.server,
            Side::Proxy | Side::Server => &self.client,
        }
    }

    /// The namespace of `side`'s host.
    fn of(&self, side: Side) -> &Arc<std::os::fd::OwnedFd> {
        match side {
            Side::Client => &self.client,
            Side::Proxy | Side::Server => &self.server,
        }
    }
}

/// On the case's thread: the second host, with the case's sysctls too
/// (its timers are the client's).
fn make_hosts(
    namespace: &CaseNamespace,
    sysctls: &[(String, String)],
) -> Result<Hosts, SandboxError> {
    let server = Arc::new(namespace.handle()?);
    let peer = crate::sandbox::topology::two_hosts()?;
    let client = Arc::new(peer.namespace);
    let sysctls = sysctls.to_vec();
    in_host(&client, move |host| {
        for (key, value) in &sysctls {
            host.set_sysctl(key, value)?;
        }
        Ok(())
    })??;
    Ok(Hosts { server, client })
}

/// Runs `f` on a thread in the namespace `host` names, and waits for it.
fn in_host<T: Send + 'static>(
    host: &Arc<std::os::fd::OwnedFd>,
    f: impl FnOnce(&CaseNamespace) -> T + Send + 'static,
) -> Result<T, SandboxError> {
    let thread = crate::sandbox::spawn_in_namespace(
        "hangup host".into(),
        Arc::clone(host),
        move |joined| joined.map(|namespace| f(&namespace)),
    )?;
    thread.join().unwrap_or_else(|_| {
        Err(SandboxError::Io {
            action: "run on a host's thread".into(),
            source: std::io::Error::other("the thread panicked"),
        })
    })
}

/// A case that ended without a verdict on what it tested.
fn unjudged(kind: FailureKind, summary: String) -> CaseStatus {
    CaseStatus::Failed(Failure::new(kind, summary, Duration::ZERO))
}

/// The case's thread, in its namespace: sysctls, then the sides (the first
/// on this thread), then closing every socket once all sides are done. A
/// namespace or sysctl the kernel refused is the case's setup failure.
fn prepare_and_run(shared: &Arc<Shared>, namespace: Result<CaseNamespace, SandboxError>) {
    let setup = namespace
        .map_err(|err| format!("failed to set up the case: {err}"))
        .and_then(|namespace| {
            // The suite's program's namespace has the suite's sysctls.
            let sysctls = match shared.case.shares_program() {
                true => &[][..],
                false => &shared.case.sysctls[..],
            };
            for (key, value) in sysctls {
                namespace
                    .set_sysctl(key, value)
                    .map_err(|err| format!("failed to set up the case: {err}"))?;
            }
            if shared.case.topology == Topology::TwoHosts {
                let hosts = make_hosts(&namespace, sysctls)
                    .map_err(|err| format!("failed to set up the case's two hosts: {err}"))?;
                let _ = shared.hosts.set(hosts);
            }
            Ok(())
        });
    if let Err(summary) = setup {
        shared.fail(harness_failure(shared, FailureKind::Setup, summary));
    } else {
        interrupt::install();
        start_capture(shared);
        shared.record.start_clock(Instant::now());
        // A server starts before the scripts; a client once a script
        // listens where it connects (in `run_sides`).
        let mut program = match &shared.case.program {
            Some(spec) if spec.role == Side::Server && !shared.case.shares_program() => {
                match start_program(shared, spec) {
                    Ok(running) => Some(running),
                    Err(failure) => {
                        shared.fail(*failure);
                        None
                    }
                }
            }
            _ => None,
        };
        if !shared.stopping() {
            {
                let mut control = shared.control();
                for script in &shared.case.scripts {
                    control.sides[script.side as usize].running = true;
                }
            }
            let peers = run_sides(shared, &mut program);
            keep_kernel_counters(shared);
            end_faults(shared);
            // Sockets live until the case ends: every peer came back from
            // its thread, and all are closed together now that every side
            // is done, before the program is asked to stop (a server that
            // drains its connections on SIGTERM finds none left).
            drop(peers);
        }
        if let Some((running, spec)) = program.zip(shared.case.program.as_ref()) {
            let stopped = running.stop();
            if stopped.killed {
                let tail = stopped.tail.clone();
                shared.fail(program_failure(
                    shared,
                    format!(
                        "the program ignored {} for {} and was killed",
                        spec.stop,
                        verdict::millis(spec.grace)
                    ),
                    tail,
                ));
            }
        }
    }
    end_capture(shared);
    let mut control = shared.control();
    control.torn_down = true;
    shared.supervisor.notify_all();
}

/// Starts capturing the case's packets, on its thread (so in its
/// namespace). A capture the kernel refuses is noted; the case goes on
/// without its packets.
fn start_capture(shared: &Shared) {
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
const TIMELINE_PACKETS: usize = 5000;

/// Ends the capture: every TCP segment goes on the record, on the case's
/// clock, with its sender's side and its sequence numbers relative to
/// each direction's first; for a failed case (or with `--keep-artifacts`)
/// the frames go to `capture.pcap` in its artifact folder.
fn end_capture(shared: &Shared) {
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
                super::reaper::drop_later(socket);
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

/// For a failed case (or any, with `--keep-artifacts`), writes the
/// namespace's kernel counters that are not zero to `kernel-counters.txt`
/// in its artifact folder: what the kernel
/// did on its own (a TIME_WAIT killed, a reset sent, an overflow) often
/// explains an outcome no call reported. Read on the case's thread, inside
/// the namespace, before its sockets close.
fn keep_kernel_counters(shared: &Shared) {
    if shared.control().failure.is_none() && !shared.keep_artifacts {
        return;
    }
    let Ok(dir) = shared.record.artifacts() else {
        return;
    };
    let text = match crate::observe::kernel_counters() {
        Ok(lines) => lines.join("\n") + "\n",
        Err(err) => format!("the kernel's counters could not be read: {err}\n"),
    };
    let _ = std::fs::write(dir.join("kernel-counters.txt"), text);
}

/// Notes what each fault still in place took, and takes them all away
/// (closing the socket that owns the case's table), so that the sockets
/// close and the program stops on a network that works.
fn end_faults(shared: &Shared) {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    for trouble in std::mem::take(&mut faults.delay_trouble) {
        shared.push(Instant::now(), None, EventKind::Delays { trouble });
    }
    let FaultsInPlace {
        kernels, active, ..
    } = &mut *faults;
    let mut cuts_left = active.iter().filter(|f| f.cut.is_some()).count();
    for fault in active.drain(..) {
        if let Some((side, how)) = fault.cut {
            // Restored, so the sides close on a network that works.
            cuts_left -= 1;
            let error = restore_cut(shared, side, how, cuts_left == 0).err();
            shared.push(
                Instant::now(),
                None,
                EventKind::FaultAtEnd {
                    fault: fault.spec,
                    took: None,
                    error,
                },
            );
            continue;
        }
        let Some(kernel) = kernels[fault.host].as_mut() else {
            continue;
        };
        let (took, error) = match kernel.packets(&fault.handles) {
            Ok(took) => (Some(took), None),
            Err(e) => (None, Some(e.to_string())),
        };
        shared.push(
            Instant::now(),
            None,
            EventKind::FaultAtEnd {
                fault: fault.spec,
                took,
                error,
            },
        );
    }
    for kernel in kernels.iter_mut().filter_map(Option::take) {
        // Closing it removes the table: an RCU grace period (see reaper).
        super::reaper::drop_later(kernel);
    }
}

/// Puts `fault` in place: its rules, one per port it matches (see
/// [`Case::fault_ports`]), in the case's table, made at the first fault.
fn put_fault(shared: &Shared, side: Side, step: StepId, fault: &Fault) -> Result<(), String> {
    let ports = shared.case.fault_ports(fault);
    let filters: Vec<Filter> = ports
        .iter()
        .map(|&port| Filter {
            port,
            flags: fault.flags,
            data: fault.data,
            probability: fault.probability,
            verdict: fault.verdict,
            tag: 0,
        })
        .collect();
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    let tag = faults.described.len() as u32;
    let filters: Vec<Filter> = filters.into_iter().map(|f| Filter { tag, ..f }).collect();
    let hosts = shared.hosts.get();
    let host = FaultsInPlace::host(hosts.is_some(), fault.from);
    let kernel = match &mut faults.kernels[host] {
        Some(kernel) => kernel,
        empty => {
            // Opened on its host: a netlink socket acts on the namespace it
            // was made in.
            let opened = match hosts {
                Some(hosts) => {
                    let on = if host == 0 {
                        &hosts.server
                    } else {
                        &hosts.client
                    };
                    in_host(on, |_| Faults::open())
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?
                }
                None => Faults::open().map_err(|e| e.to_string())?,
            };
            empty.insert(opened)
        }
    };
    let handles = kernel.install(&filters).map_err(|e| e.to_string())?;
    let spec = FaultSpec::Packets(fault.clone());
    faults.described.push(spec.clone());
    shared.push(
        Instant::now(),
        Some(side),
        EventKind::FaultPut {
            step,
            fault: spec.clone(),
            ports,
            rules: handles.len(),
        },
    );
    faults.active.push(ActiveFault {
        host,
        cut: None,
        name: fault.name.clone(),
        spec,
        handles,
    });
    Ok(())
}

/// Cuts `cut.side`'s host off from the other, on a thread in that host.
fn put_cut(
    shared: &Shared,
    side: Side,
    step: StepId,
    cut: &crate::suite::HostCut,
) -> Result<(), String> {
    let Some(hosts) = shared.hosts.get() else {
        return Err("there is no other host to cut this one off from".into());
    };
    let how = cut.how;
    in_host(hosts.of(cut.side), move |_| {
        crate::sandbox::topology::cut_off(how)
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let spec = FaultSpec::Host(cut.clone());
    shared.push(
        Instant::now(),
        Some(side),
        EventKind::FaultPut {
            step,
            fault: spec.clone(),
            ports: Vec::new(),
            rules: 0,
        },
    );
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.active.push(ActiveFault {
        name: cut.name.clone(),
        host: 0,
        cut: Some((cut.side, cut.how)),
        spec,
        handles: Vec::new(),
    });
    Ok(())
}

/// Undoes a cut of `side`'s host.
/// With `probe`, returns once the link carries both ways again (give it
/// only when no other cut remains, or it cannot).
fn restore_cut(
    shared: &Shared,
    side: Side,
    how: crate::sandbox::topology::Cut,
    probe: bool,
) -> Result<(), String> {
    let hosts = shared
        .hosts
        .get()
        .ok_or("there is no other host to restore")?;
    let other = Arc::clone(hosts.other(side));
    in_host(hosts.of(side), move |_| {
        let other = probe.then(|| std::os::fd::AsFd::as_fd(&*other));
        crate::sandbox::topology::restore(how, other)
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Takes away the faults `which` names, noting what each took; an error
/// when none of them is in place (the suite's), or when the kernel refused
/// (hangup's: the faults not taken away stay in place, for the case's end
/// to take away and note).
fn lift_faults(
    shared: &Shared,
    side: Side,
    step: StepId,
    which: &Lift,
) -> Result<(), (FailureKind, String)> {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    let FaultsInPlace {
        kernels,
        active,
        lifted,
        ..
    } = &mut *faults;
    let chosen: Vec<ActiveFault> = match which {
        Lift::All => std::mem::take(active),
        Lift::Named(name) => {
            let at = active.iter().position(|f| f.name.as_ref() == Some(name));
            at.map(|i| active.remove(i)).into_iter().collect()
        }
    };
    if chosen.is_empty() {
        return Err((
            FailureKind::Script,
            match which {
                Lift::All => "no fault was in place to lift".to_string(),
                Lift::Named(name) => format!("no fault named {name:?} was in place to lift"),
            },
        ));
    }
    let mut chosen = chosen.into_iter();
    while let Some(fault) = chosen.next() {
        let cuts_left = active
            .iter()
            .chain(chosen.as_slice())
            .any(|f| f.cut.is_some());
        let lifted_one = (|| -> Result<Option<u64>, String> {
            if let Some((side, how)) = fault.cut {
                restore_cut(shared, side, how, !cuts_left)?;
                return Ok(None);
            }
            let Some(kernel) = kernels[fault.host].as_mut() else {
                return Ok(None);
            };
            let took = kernel.packets(&fault.handles).map_err(|e| e.to_string())?;
            kernel.remove(&fault.handles).map_err(|e| e.to_string())?;
            Ok(Some(took))
        })();
        let took = match lifted_one {
            Ok(took) => took,
            Err(why) => {
                let why = format!("{} could not be lifted: {why}", fault.spec);
                active.push(fault);
                active.extend(chosen);
                return Err((FailureKind::Harness, why));
            }
        };
        if let (Some(name), Some(took)) = (&fault.name, took) {
            lifted.push((name.clone(), took));
        }
        if took.is_some() || fault.cut.is_some() {
            shared.push(
                Instant::now(),
                Some(side),
                EventKind::FaultLifted {
                    step,
                    fault: fault.spec,
                    took,
                },
            );
        }
    }
    Ok(())
}

/// The packets the fault `name` took so far (or in all, once lifted);
/// an error when it was never put in place.
fn packets_taken(shared: &Shared, name: &str) -> Result<u64, String> {
    let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
    faults.collect_taken();
    let FaultsInPlace {
        kernels,
        active,
        lifted,
        ..
    } = &mut *faults;
    if let Some((_, took)) = lifted.iter().find(|(n, _)| n == name) {
        return Ok(*took);
    }
    let fault = active.iter().find(|f| f.name.as_deref() == Some(name));
    match fault.and_then(|f| kernels[f.host].as_mut().map(|k| (f, k))) {
        Some((fault, kernel)) => kernel.packets(&fault.handles).map_err(|e| e.to_string()),
        None => Err(format!("no fault named {name:?} was in place yet")),
    }
}

/// Counts the packets the fault `name` took until there is one or
/// `within` passes (with a count: until `within` passes); the count goes
/// on the record. `Err(None)`: the case ended meanwhile.
fn check_taken(
    shared: &Shared,
    side: Side,
    step: StepId,
    name: &str,
    packets: LineCount,
    within: Option<Duration>,
) -> Result<(), Option<(FailureKind, Option<Mismatch>, String)>> {
    let until = later(within.unwrap_or_default());
    loop {
        let seen =
            packets_taken(shared, name).map_err(|why| Some((FailureKind::Script, None, why)))?;
        let now = Instant::now();
        if (packets == LineCount::AtLeastOne && seen > 0) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::TakenCount {
                    step,
                    fault: name.to_string(),
                    count: seen,
                },
            );
            return verdict::judge_taken(name, packets, within, seen).map_err(|m| {
                let what = m.to_string();
                Some((FailureKind::Expectation, Some(m), what))
            });
        }
        if !shared.sleep_until((now + POLL_INTERVAL).min(until)) {
            return Err(None);
        }
    }
}

/// A check's failure: its kind, the mismatch if it judged one, and the
/// summary; `None` when the case ended first.
type CheckEnd = Option<(FailureKind, Option<Mismatch>, String)>;

/// Every TCP segment the capture has seen so far, with when it arrived;
/// an error when the case has no capture.
fn captured_segments(shared: &Shared) -> Result<Vec<(Instant, observe::Segment)>, String> {
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
fn is_one_of(case: &Case, segment: &observe::Segment, segments: &Segments) -> bool {
    let (from, to) = (segment.from.port(), segment.to.port());
    case.side_sending(from, to) == Some(segments.from)
        && segments
            .to
            .is_none_or(|side| case.side_sending(to, from) == Some(side))
        && segments.flags.is_none_or(|f| f.matches(segment.flags))
        && segments.data.is_none_or(|d| (segment.len > 0) == d)
        && segments.window.is_none_or(|w| {
            segment.window == w && !segment.flags.contains(crate::model::TcpFlags::RST)
        })
}

/// `RST seq 5 win 0 at 12.3 ms`, for reports.
fn segment_at(shared: &Shared, at: Instant, segment: &observe::Segment) -> String {
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
fn check_sent(
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
                },
            );
            let examples: Vec<String> = matching
                .iter()
                .take(3)
                .map(|(at, s)| segment_at(shared, *at, s))
                .collect();
            let sender = Segments {
                from: segments.from,
                to: segments.to,
                flags: None,
                data: None,
                window: None,
                since: None,
            };
            let instead: Vec<String> = all
                .iter()
                .filter(|(at, _)| since.is_none_or(|since| *at >= since))
                .filter(|(_, s)| is_one_of(&shared.case, s, &sender))
                .map(|(_, s)| s.flags.to_string())
                .collect();
            let otherwise = match instead.len() {
                0 => format!("the {} sent no segment", segments.from),
                n if n <= 12 => format!("the {} sent {}", segments.from, instead.join(", ")),
                n => format!(
                    "the {} sent {}, ... ({n} in all)",
                    segments.from,
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
fn check_first(
    shared: &Shared,
    side: Side,
    step: StepId,
    from: Side,
    flags: crate::model::TcpFlags,
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

/// Starts the program under test from this (the case's) thread, waits until
/// it is ready, and makes its listener known, so state checks of `server`
/// find its end of the scripts' connections. An exit once it was ready
/// fails the case at once.
fn start_program(shared: &Arc<Shared>, spec: &Program) -> Result<sut::Running, Box<Failure>> {
    let mut places = sut::Places::for_suite(&shared.case.location.path);
    places.host = shared.host_address();
    let ready = Arc::new(AtomicBool::new(false));
    let on_exit = {
        let (shared, ready) = (Arc::clone(shared), Arc::clone(&ready));
        let role = spec.role;
        move |exit: sut::Exit, tail: Vec<OutputLine>| {
            // Before it was ready, `wait_ready` says so itself. A client
            // that did its work and exited 0 is done, not crashed.
            let finished = role == Side::Client && exit == sut::Exit::Code(0);
            if ready.load(Ordering::SeqCst) && !finished {
                shared.fail(program_failure(
                    &shared,
                    format!("the program {exit} while the case ran"),
                    tail,
                ));
            }
        }
    };
    // Known before it starts: a program runs ahead of hangup's own thread
    // (under load a client connected, met the server's FIN and reconnected
    // before its start returned), and its end of a connection must be
    // found from the first moment.
    if spec.role == Side::Server {
        shared.sockets.program_listens(
            Side::Server,
            std::net::SocketAddr::from((places.host, spec.port)),
        );
    } else {
        shared.sockets.program_connects(spec.role, spec.port);
    }
    let trace = shared.case.traces_program();
    let route = crate::record::Route::new(shared.record.clone());
    let running = sut::start(
        spec,
        &places,
        &shared.record,
        &route,
        spec.role,
        trace,
        on_exit,
    )
    .map_err(|err| Box::new(program_failure(shared, err.to_string(), Vec::new())))?;
    let waited = SockDiag::open()
        .map_err(|err| format!("failed to open sock_diag: {err}"))
        .and_then(|mut diag| running.wait_ready(&mut diag).map_err(|err| err.to_string()));
    if let Err(why) = waited {
        let tail = running.tail();
        running.stop();
        return Err(Box::new(program_failure(shared, why, tail)));
    }
    ready.store(true, Ordering::SeqCst);
    let view = running.view();
    let baseline = Baseline {
        fds: view.open_fds().ok(),
    };
    shared.set_program(view, baseline);
    shared.push(
        Instant::now(),
        Some(spec.role),
        EventKind::ProgramReady {
            port: spec.port,
            role: spec.role,
            for_suite: false,
        },
    );
    Ok(running)
}

/// Starts a thread for each side but the first, runs the first here, and
/// hands back every side's peer once all are done. With a program that
/// plays the client, every side gets a thread and this one (whose end
/// `PR_SET_PDEATHSIG` ties the program to) starts the program once a
/// script listens on its port.
fn run_sides(shared: &Arc<Shared>, program: &mut Option<sut::Running>) -> Vec<Peer> {
    let client = shared
        .case
        .program
        .as_ref()
        .filter(|spec| spec.role == Side::Client);
    // On two hosts every side has a thread that joins its host; otherwise
    // the first side runs on this, the case's, thread.
    let two_hosts = shared.hosts.get().is_some();
    let here = usize::from(client.is_none() && !two_hosts);
    let mut threads = Vec::new();
    for (index, script) in shared.case.scripts.iter().enumerate().skip(here) {
        let shared_for_side = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{} {}", shared.case.name, script.side))
            .spawn(move || run_side(&shared_for_side, index));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(err) => {
                shared.control().sides[script.side as usize].running = false;
                shared.fail(harness_failure(
                    shared,
                    FailureKind::Setup,
                    format!("failed to start the {} thread: {err}", script.side),
                ));
            }
        }
    }
    let mut peers = Vec::new();
    if let Some(spec) = client {
        if wait_for_listener(shared, spec.port) {
            match start_program(shared, spec) {
                Ok(running) => *program = Some(running),
                Err(failure) => shared.fail(*failure),
            }
        }
    } else if !shared.case.scripts.is_empty() && !two_hosts {
        peers.push(run_side(shared, 0));
    }
    for thread in threads {
        match thread.join() {
            Ok(peer) => peers.push(peer),
            Err(_) => shared.fail(harness_failure(
                shared,
                FailureKind::Harness,
                "a side's thread panicked; this is a hangup bug".into(),
            )),
        }
    }
    peers
}

/// Waits until a script listens on `port`; false when the case stopped or
/// every side finished first (then a failure says so).
fn wait_for_listener(shared: &Shared, port: u16) -> bool {
    let mut control = shared.control();
    loop {
        if control.listening.contains(&port) {
            return true;
        }
        if control.stopping {
            return false;
        }
        if control.sides.iter().all(|s| !s.running) {
            drop(control);
            shared.fail(harness_failure(
                shared,
                FailureKind::Script,
                format!("no script listened on port {port}, where the program connects"),
            ));
            return false;
        }
        control = wait(&shared.changed, control, Duration::from_secs(1));
    }
}

/// Waits until every side is done, a side failed, or the deadline passed;
/// then wakes the sides still blocked until they are done.
fn supervise(shared: &Shared) {
    let mut control = shared.control();
    while !control.stopping && !control.torn_down {
        let now = Instant::now();
        // Before the clock starts the case cannot have overrun: wait a
        // whole deadline, then look again.
        let left = match shared.record.start() {
            Some(start) if now >= add_saturating(start, shared.case.deadline) => {
                let failure = overrun(shared, &control);
                control.failure.get_or_insert(failure);
                control.stopping = true;
                shared.changed.notify_all();
                break;
            }
            Some(start) => {
                add_saturating(start, shared.case.deadline).saturating_duration_since(now)
            }
            None => shared.case.deadline,
        };
        if shared.stop.is_set() {
            let failure = interrupted(shared, &control);
            control.failure.get_or_insert(failure);
            control.stopping = true;
            shared.changed.notify_all();
            break;
        }
        let left = if shared.stop.is_armed() {
            left.min(super::StopSignal::POLL)
        } else {
            left
        };
        control = wait(&shared.supervisor, control, left);
    }
    let told_whereabouts =
        |f: &Failure| matches!(f.kind, FailureKind::Deadline | FailureKind::Interrupted);
    if control.stopping && !control.failure.as_ref().is_some_and(told_whereabouts) {
        // Stopped by one side's failure: the others' whereabouts are
        // context for the report.
        let now = Instant::now();
        let failed = control
            .failure
            .as_ref()
            .and_then(|f| f.step.as_ref())
            .map(|step| step.side);
        for (side, at) in whereabouts(shared, &control, now)
            .into_iter()
            .filter(|(side, _)| Some(*side) != failed)
        {
            shared.push(now, Some(side), at);
        }
    }
    let give_up = later(STOP_GRACE);
    while control.sides.iter().any(|s| s.running) && Instant::now() < give_up {
        for side in control.sides.iter().filter(|s| s.running) {
            if let Some(waker) = side.waker {
                waker.wake();
            }
        }
        control = wait(&shared.supervisor, control, WAKE_INTERVAL);
    }
}

/// Where each side still running is: its step, and how long its call has
/// been in flight if it is in one.
fn whereabouts(shared: &Shared, control: &Coordination, now: Instant) -> Vec<(Side, EventKind)> {
    shared
        .case
        .scripts
        .iter()
        .filter(|script| control.sides[script.side as usize].running)
        .filter_map(|script| {
            let (i, call) = control.sides[script.side as usize].step?;
            Some((
                script.side,
                EventKind::Whereabouts {
                    step: StepId::at(i + 1),
                    source: script.steps[i].source.clone(),
                    location: script.steps[i].location.to_string(),
                    in_flight: call.map(|began| now.saturating_duration_since(began)),
                },
            ))
        })
        .collect()
}

/// "client was at step 3 `recv` (file:3:4), a call in flight for 120 ms",
/// for a deadline's summary.
fn whereabouts_in_words(side: Side, at: &EventKind) -> String {
    let EventKind::Whereabouts {
        step,
        source,
        location,
        in_flight,
    } = at
    else {
        return String::new();
    };
    let in_flight = in_flight
        .map(|d| format!(", a call in flight for {}", verdict::millis(d)))
        .unwrap_or_default();
    format!(
        "{side} was at step {} `{source}` ({location}){in_flight}",
        step.index
    )
}

/// The deadline failure: what each side was doing when time ran out,
/// including the calls still in flight.
fn overrun(shared: &Shared, control: &Coordination) -> Failure {
    let mut failure = stopped_here(shared, control, StopReason::Deadline);
    failure.kind = FailureKind::Deadline;
    failure.summary = format!(
        "the case overran its deadline of {}: {}",
        verdict::millis(shared.case.deadline),
        failure.summary
    );
    failure
}

/// The run was interrupted while the case ran: what each side was doing.
fn interrupted(shared: &Shared, control: &Coordination) -> Failure {
    let mut failure = stopped_here(shared, control, StopReason::Interrupted);
    failure.kind = FailureKind::Interrupted;
    failure.summary = format!(
        "the run was interrupted; the case was stopped, not judged: {}",
        failure.summary
    );
    failure
}

/// A case stopped from outside its scripts: the stop on the timeline, and
/// a summary of what each side was doing (to be worded by the caller).
fn stopped_here(shared: &Shared, control: &Coordination, why: StopReason) -> Failure {
    let now = Instant::now();
    let mut waiting: Vec<String> = whereabouts(shared, control, now)
        .iter()
        .map(|(side, at)| whereabouts_in_words(*side, at))
        .collect();
    for script in &shared.case.scripts {
        if !control.sides[script.side as usize].running {
            waiting.push(format!("{} had finished its script", script.side));
        }
    }
    let at = shared.at(now);
    shared.push(now, None, EventKind::Stopped { why });
    Failure::new(FailureKind::Deadline, waiting.join("; "), at)
}

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

/// One side's thread: runs its script and hands its peer back, so its
/// sockets outlive the script.
fn run_side(shared: &Arc<Shared>, index: usize) -> Peer {
    let script = &shared.case.scripts[index];
    let side = script.side;
    let mut peer = Peer::new(side, Arc::clone(&shared.sockets));
    if let Some(hosts) = shared.hosts.get() {
        if side == Side::Client {
            peer.connect_from(std::net::IpAddr::V4(crate::sandbox::topology::PEER_ADDRESS));
        }
        // A fresh thread: it joins its side's host.
        if let Err(err) = CaseNamespace::join(std::os::fd::AsFd::as_fd(&**hosts.of(side))) {
            shared.fail(harness_failure(
                shared,
                FailureKind::Setup,
                format!("the {side} could not join its host: {err}"),
            ));
            shared.control().sides[side as usize].running = false;
            return peer;
        }
    }
    shared
        .threads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(queued::this_thread());
    shared.control().sides[side as usize].waker = Some(Waker::current());
    if let Err(failure) = run_script(shared, script, &mut peer) {
        shared.fail(*failure);
    }
    let mut control = shared.control();
    control.sides[side as usize].running = false;
    control.sides[side as usize].step = None;
    shared.changed.notify_all();
    if control.stopping {
        shared.supervisor.notify_all();
    }
    drop(control);
    peer
}

/// How a step ended, when it did not fail.
enum Flow {
    /// Go on with the next step.
    Next,
    /// The case is ending for another reason (another side's failure, the
    /// deadline): leave the script, adding nothing.
    CaseEnded,
    /// Inside a loop: a call's outcome was one of the loop's `until`.
    UntilReached,
}

/// Where a step is, for reports: its script and position, and the round
/// when it is inside a loop.
#[derive(Clone, Copy)]
struct At<'s> {
    script: &'s Script,
    /// 0-based position in the script (of the loop, for a step in one).
    index: usize,
    /// For a step in a loop's body: its 0-based position in the body, and
    /// the round (1-based).
    in_loop: Option<(usize, u32)>,
}

impl At<'_> {
    /// The step as the record names it.
    fn step(&self) -> StepId {
        StepId {
            index: self.index + 1,
            body: self.in_loop.map(|(body, _)| body + 1),
            round: self.in_loop.map(|(_, round)| round),
        }
    }

    fn side(&self) -> Side {
        self.script.side
    }
}

/// Runs one side's script. Each step runs as [`run_step`] does; a loop
/// runs its body's steps the same way, round after round.
fn run_script(shared: &Shared, script: &Script, peer: &mut Peer) -> Result<(), Box<Failure>> {
    // Opened on this side's thread, so in the case's namespace; only sides
    // that check states need one.
    let mut diag = None;
    for (index, step) in script.steps.iter().enumerate() {
        if shared.stopping() {
            return Ok(());
        }
        shared.set_step(script.side, Some((index, None)));
        let at = At {
            script,
            index,
            in_loop: None,
        };
        let flow = match &step.action {
            Action::Control(Control::Loop(looped)) => {
                run_loop(shared, at, step, looped, peer, &mut diag)?
            }
            _ => run_step(shared, at, step, None, peer, &mut diag)?,
        };
        if matches!(flow, Flow::CaseEnded) {
            return Ok(());
        }
    }
    Ok(())
}

fn run_loop(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    looped: &Loop,
    peer: &mut Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    for round in 1..=looped.times {
        for (body, inner) in looped.body.iter().enumerate() {
            if shared.stopping() {
                return Ok(Flow::CaseEnded);
            }
            let inner_at = At {
                in_loop: Some((body, round)),
                ..at
            };
            match run_step(shared, inner_at, inner, Some(&looped.until), peer, diag)? {
                Flow::Next => {}
                Flow::CaseEnded => return Ok(Flow::CaseEnded),
                Flow::UntilReached => {
                    shared.push(
                        Instant::now(),
                        Some(at.side()),
                        EventKind::LoopEnded {
                            step: at.step(),
                            round,
                        },
                    );
                    return Ok(Flow::Next);
                }
            }
        }
    }
    if looped.until.is_empty() {
        return Ok(Flow::Next);
    }
    let wanted: Vec<String> = looped.until.iter().map(ToString::to_string).collect();
    Err(failure(
        shared,
        at,
        step,
        FailureKind::Expectation,
        None,
        format!(
            "the loop ran its {} rounds and no call ended with {}",
            looped.times,
            wanted.join(" or ")
        ),
    ))
}

/// The failure of the step at `at`.
fn failure(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    kind: FailureKind,
    mismatch: Option<Mismatch>,
    what: String,
) -> Box<Failure> {
    let side = at.side();
    let round = at
        .in_loop
        .map(|(_, r)| format!(" (in round {r} of the loop at step {})", at.index + 1))
        .unwrap_or_default();
    let number = at.index + 1;
    let summary = format!(
        "{side} step {number}{round} `{}` at {}: {what}",
        step.source, step.location
    );
    Box::new(Failure {
        step: Some(StepRef::new(
            side,
            at.step(),
            step.location.to_string(),
            step.source.clone(),
        )),
        mismatch,
        ..Failure::new(kind, summary, shared.at(Instant::now()))
    })
}

/// Runs one step. `until`: in a loop, the outcomes that end it (a call
/// ending with one is expected, and ends the loop).
fn run_step(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    until: Option<&[Outcome]>,
    peer: &mut Peer,
    diag: &mut Option<SockDiag>,
) -> Result<Flow, Box<Failure>> {
    let side = at.side();
    let id = at.step();
    let fail = |kind: FailureKind, mismatch: Option<Mismatch>, what: String| {
        failure(shared, at, step, kind, mismatch, what)
    };
    match &step.action {
        Action::Control(Control::Sleep(d)) => {
            if !shared.sleep_until(later(*d)) {
                return Ok(Flow::CaseEnded);
            }
        }
        Action::Control(Control::Mark(label)) => {
            // Stamped before the other sides are woken, so the timeline
            // never shows a waiter going on before the mark it waited for.
            shared.push(
                Instant::now(),
                Some(side),
                EventKind::Mark {
                    step: id,
                    label: label.clone(),
                },
            );
            let mut control = shared.control();
            control
                .marks
                .entry(label.clone())
                .or_insert_with(Instant::now);
            shared.changed.notify_all();
        }
        Action::Control(Control::Wait { label, timeout }) => {
            match wait_for_mark(shared, label, *timeout) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(fail(
                        FailureKind::Expectation,
                        None,
                        format!("no other side reached `mark = {label:?}` in time"),
                    ));
                }
                Err(Stopped) => return Ok(Flow::CaseEnded),
            }
        }
        Action::Control(Control::Signal(signal)) => {
            let Some((view, _)) = shared.program() else {
                if shared.stopping() {
                    return Ok(Flow::CaseEnded);
                }
                return Err(fail(
                    FailureKind::Script,
                    None,
                    "there is no program under test to send a signal to".into(),
                ));
            };
            shared.push(
                Instant::now(),
                Some(side),
                EventKind::Signal {
                    step: id,
                    signal: signal.as_str().to_string(),
                },
            );
            if let Err(errno) = view.signal(*signal) {
                return Err(fail(
                    FailureKind::Program,
                    None,
                    format!("failed to send the program {signal}: {errno}"),
                ));
            }
            if *signal == nix::sys::signal::Signal::SIGSTOP {
                // The next step may count on it being stopped (its accept
                // queue filling): wait until the kernel says every thread
                // is, for a while at most.
                let sent = Instant::now();
                let until = later(STOP_TAKES_EFFECT);
                while !view.stopped() && Instant::now() < until {
                    if !shared.sleep_until(Instant::now() + Duration::from_millis(1)) {
                        return Ok(Flow::CaseEnded);
                    }
                }
                shared.push(
                    Instant::now(),
                    Some(side),
                    EventKind::ProgramPaused {
                        step: id,
                        waited: sent.elapsed(),
                        stopped: view.stopped(),
                    },
                );
            }
        }
        Action::Control(Control::Fault(fault)) => {
            put_fault(shared, side, id, fault).map_err(|why| {
                fail(
                    FailureKind::Setup,
                    None,
                    format!("the fault could not be put in place: {why}"),
                )
            })?;
        }
        Action::Control(Control::Cut(cut)) => {
            put_cut(shared, side, id, cut).map_err(|why| {
                fail(
                    FailureKind::Setup,
                    None,
                    format!("the host could not be cut off: {why}"),
                )
            })?;
        }
        Action::Control(Control::Lift(which)) => {
            lift_faults(shared, side, id, which).map_err(|(kind, why)| fail(kind, None, why))?;
        }
        Action::Control(Control::Loop(_)) => {
            unreachable!("loops do not nest (the parser refuses them) and run_script runs loops")
        }
        Action::Check(Check::State { expected, within }) => {
            let diag = opened(shared, diag).map_err(|why| fail(FailureKind::Harness, None, why))?;
            let checked = check_states(shared, diag, id, expected, *within);
            return settle(checked, FailureKind::Harness, fail);
        }
        Action::Check(Check::AcceptQueue { expected, within }) => {
            let diag = opened(shared, diag).map_err(|why| fail(FailureKind::Harness, None, why))?;
            let checked = check_accept_queues(shared, (side, id), diag, expected, *within);
            return settle(checked, FailureKind::Script, fail);
        }
        Action::Check(Check::Released { within }) => {
            let Some((view, baseline)) = shared.program() else {
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
        Action::Check(Check::Log {
            pattern,
            lines,
            within,
        }) => {
            let Some(reader) = shared.program().map(|(view, _)| view) else {
                if shared.stopping() {
                    return Ok(Flow::CaseEnded);
                }
                return Err(fail(
                    FailureKind::Script,
                    None,
                    "there is no program under test whose output `log` could read".into(),
                ));
            };
            match check_log(shared, (side, id), reader, pattern, *lines, *within) {
                Ok(()) => {}
                Err(Some(m)) => {
                    let what = m.to_string();
                    return Err(fail(FailureKind::Expectation, Some(m), what));
                }
                Err(None) => return Ok(Flow::CaseEnded),
            }
        }
        Action::Check(Check::Taken {
            name,
            packets,
            within,
        }) => match check_taken(shared, side, id, name, *packets, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Action::Check(Check::Sent {
            segments,
            packets,
            within,
        }) => match check_sent(shared, side, id, segments, *packets, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Action::Check(Check::First {
            from,
            flags,
            within,
        }) => match check_first(shared, side, id, *from, *flags, *within) {
            Ok(()) => {}
            Err(Some((kind, mismatch, what))) => return Err(fail(kind, mismatch, what)),
            Err(None) => return Ok(Flow::CaseEnded),
        },
        Action::Check(Check::Syscall {
            which,
            results,
            calls,
            within,
        }) => {
            let traced = shared.program().and_then(|(view, _)| view.calls());
            let (Some(traced), Some(spec)) = (traced, shared.case.program.as_ref()) else {
                if shared.stopping() {
                    return Ok(Flow::CaseEnded);
                }
                return Err(fail(
                    FailureKind::Script,
                    None,
                    "there is no traced program under test whose calls `syscall` could count"
                        .into(),
                ));
            };
            let ask = verdict::SyscallAsk {
                which: &which.to_string(),
                results,
                wanted: *calls,
                within: *within,
            };
            let socket = match spec.role {
                Side::Client => Socket::Client,
                _ => Socket::Server,
            };
            match check_syscall(
                shared,
                (side, id),
                socket,
                traced,
                *which,
                &ask,
                peer.last_call(),
            ) {
                Ok(()) => {}
                Err(Some(m)) => {
                    let what = m.to_string();
                    return Err(fail(FailureKind::Expectation, Some(m), what));
                }
                Err(None) => return Ok(Flow::CaseEnded),
            }
        }
        Action::Socket(socket_call) => {
            // The call's start is public before the call, so a deadline
            // that passes during it can say it is in flight.
            shared.set_step(side, Some((at.index, Some(Instant::now()))));
            // Read only for a timing check: it costs a file read.
            let timing = step.expect.as_ref().is_some_and(|e| e.after.is_some());
            let queued_before = if timing {
                shared.queue_snapshot()
            } else {
                Vec::new()
            };
            let call = match peer.perform(socket_call, step.link) {
                Ok(call) => call,
                Err(no_socket) => {
                    return Err(fail(FailureKind::Script, None, no_socket.to_string()));
                }
            };
            let queued = queued::since(&queued_before);
            {
                let mut control = shared.control();
                control.lateness = control.lateness.max(queued);
            }
            // The proxy's calls on a connection say which one.
            let on = (side == Side::Proxy && step.action.definition().on_connection)
                .then_some(step.link);
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
        }
    }
    Ok(Flow::Next)
}

/// Judges a call; `queued` is how long its side waited for a CPU during
/// it, which counts as the harness's lateness as a late timer does.
fn judge(shared: &Shared, step: &Step, call: &Call, queued: Duration) -> Result<(), Mismatch> {
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

/// The case ended while a side waited.
struct Stopped;

/// Waits for another side's `mark`; `Ok(false)` when `timeout` passed
/// first.
fn wait_for_mark(shared: &Shared, label: &str, timeout: Option<Duration>) -> Result<bool, Stopped> {
    let until = timeout.map(later);
    let mut control = shared.control();
    loop {
        if control.marks.contains_key(label) {
            return Ok(true);
        }
        if control.stopping {
            return Err(Stopped);
        }
        control = match until {
            Some(until) => {
                let now = Instant::now();
                if now >= until {
                    return Ok(false);
                }
                wait(&shared.changed, control, until - now)
            }
            None => shared
                .changed
                .wait(control)
                .unwrap_or_else(|p| p.into_inner()),
        };
    }
}

/// Counts the program's output lines that match `pattern`: for one or
/// more, until one comes or `within` passes; for a count, once `within` has
/// passed (a line logged late still counts). The count goes on the record.
/// `Err(None)`: the case ended while it watched.
fn check_log(
    shared: &Shared,
    (side, step): (Side, StepId),
    reader: &sut::ProgramView,
    pattern: &Pattern,
    lines: LineCount,
    within: Option<Duration>,
) -> Result<(), Option<Mismatch>> {
    let until = later(within.unwrap_or_default());
    loop {
        let seen = reader.count(&pattern.0);
        let now = Instant::now();
        if (lines == LineCount::AtLeastOne && seen > 0) || now >= until {
            shared.push(
                now,
                Some(side),
                EventKind::LogCount {
                    step,
                    pattern: pattern.0.as_str().to_string(),
                    count: seen as u64,
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
fn check_syscall(
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
                },
            );
            let connection = match tuple {
                Some((local, peer)) => format!("its connection {local} <- {peer}"),
                None => "its connection (which hangup never saw made)".to_string(),
            };
            let seen: Vec<String> = named
                .iter()
                .map(|c| {
                    // When it returned (or, in flight, began), from the
                    // window's start.
                    let when = c.ended.map_or(c.began, |(end, _)| end);
                    let at = since.map_or(String::new(), |s| {
                        format!(
                            " at +{}",
                            verdict::millis(when.saturating_duration_since(s))
                        )
                    });
                    format!("{}{at}", c.describe())
                })
                .collect();
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
fn check_released(
    shared: &Shared,
    (side, step): (Side, StepId),
    diag: &mut SockDiag,
    view: &sut::ProgramView,
    baseline: &Baseline,
    within: Option<Duration>,
) -> Result<(), Unsettled> {
    let until = later(within.unwrap_or_default());
    loop {
        let unreadable = |e: std::io::Error| {
            Unsettled::Unobservable(format!("failed to read the program's fd table: {e}"))
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
const NEW_FDS_SHOWN: usize = 16;

/// The step's flow after a check: on, a failed expectation, the kernel
/// (or the program) unreadable as `unreadable`, or the case ended.
fn settle(
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
fn opened<'d>(shared: &Shared, diag: &'d mut Option<SockDiag>) -> Result<&'d mut SockDiag, String> {
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
enum Unsettled {
    /// The states did not hold (within the deadline).
    Mismatch(Mismatch),
    /// The kernel could not be asked (a sock_diag error): not the suite's.
    Unobservable(String),
    /// The case ended while polling.
    CaseEnded,
}

/// After a script's connect, when the case traces a program that plays the
/// server: looks up the program's end of the new connection (it is in the
/// kernel's table from the handshake on, before the program accepts it) and
/// notes its cookie. The program's traced calls carry the same cookie, so
/// they are tied to the connection even when the client reset it before
/// the program's first call, which then finds no peer address to report.
fn remember_program_end(shared: &Shared, diag: &mut Option<SockDiag>) {
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

/// Samples the accept queue of each listed side's listener until every
/// count holds, or `within` passes (one sample without it); the last
/// sample goes on the record. A side that does not listen is the script's
/// error: its queue cannot be asked about.
fn check_accept_queues(
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
fn check_states(
    shared: &Shared,
    diag: &mut SockDiag,
    step: StepId,
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
fn observe_socket(
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
