//! A program under test: a user's server, run inside the case's network
//! namespace and observed as closely as the scripted peers are.
//!
//! [`start`] spawns the program from the case's thread, so it inherits the
//! case's namespace and talks only to the case's scripted peers. It runs in
//! a session and a PID namespace of its own, and holds no copy of any other
//! case's sockets (`spawn`): its process group is the unit that is
//! signalled, and everything it starts, even in a session of its own, ends
//! with it, also when hangup is killed.
//!
//! Its stdout and stderr are read line by line on threads of their own,
//! each line stamped on the case's clock: recorded as an event (so it shows
//! in the timeline), appended to `program.log` in the case's artifact
//! folder, and kept as a tail for failure reports. A watcher thread reaps
//! it and reports how it ended, so an exit while the case runs is noticed
//! at once.
//!
//! # Where things are
//!
//! This file holds the program's lifecycle: [`start`], readiness, the
//! watcher that reaps it, and [`Running::stop`]. `places.rs` fills in
//! the substitutions of its command ([`Places`]); `output.rs` reads its
//! streams into `program.log`, the record and the lines `log` checks
//! count; `view.rs` is what checks see of it while it runs
//! ([`ProgramView`]: its output, its processes, their fds and the TCP
//! sockets they hold); `spawn.rs`, `raw.rs` and `trace.rs` start it in
//! its namespaces and trace its socket calls.

mod output;
mod places;
mod raw;
mod spawn;
mod trace;
mod view;

pub use output::{LINE_CAP, PROGRAM_LOG_CAP, next_line};
pub use places::Places;
pub use trace::{Calls, TracedCall};
pub use view::{Held, LineCounter, ProgramView};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::model::{Side, TcpState};
use crate::observe::{SockDiag, queued};
use crate::record::{EventKind, OutputLine, Recorder, Route, Stream};
use crate::suite::Program;
use output::{Output, read_lines};
use places::substitute;

/// How many of the program's last output lines a failure report shows.
pub const TAIL_LINES: usize = 20;

/// How often readiness through the listener is sampled.
const READY_POLL: Duration = Duration::from_millis(2);

/// How long, once a program ended, its output readers get to take what is
/// left in its pipes.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// How long a program killed with SIGKILL may take to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The most a stopping program is given past its grace for the time its
/// threads waited for a CPU: a bound on a run whatever the load.
pub const STARVED_CAP: Duration = Duration::from_secs(10);

pub use crate::model::Exit;

/// What went wrong with a program.
#[derive(Debug, thiserror::Error)]
pub enum SutError {
    /// A substitution in its command could not be filled in.
    #[error("failed to start the program: {0}")]
    Substitution(String),
    /// The kernel would not start it.
    #[error("failed to start the program `{command}`: {source}")]
    Spawn {
        /// The command as resolved.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// It did not become ready in time, or ended first.
    #[error("the program {0}")]
    NotReady(String),
    /// The kernel found no file to run (ENOENT from `execve`, or no file
    /// of that name on `PATH`).
    #[error("failed to start the program: {0}")]
    NotFound(NotFound),
}

/// A command the kernel could not find, said with where it was looked
/// for: "No such file or directory (os error 2)" alone does not say
/// whether `PATH` or the folder was wrong, nor how hangup names a binary
/// cargo built.
#[derive(Debug)]
pub struct NotFound {
    /// The command's first word, as resolved.
    pub program: String,
    /// The folder it runs in.
    pub cwd: PathBuf,
    /// The `PATH` it was looked for on.
    pub path: String,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let program = crate::model::Escaped(&self.program);
        if self.program.contains('/') {
            let file = self.cwd.join(&self.program);
            let shown = crate::model::Escaped(file.display());
            if file.exists() {
                return write!(
                    f,
                    "`{program}` is at {shown}, but the kernel found no interpreter for it (is its `#!` line right?)"
                );
            }
            return write!(f, "`{program}` names no file: there is no {shown}");
        }
        write!(
            f,
            "`{program}` is not a command on PATH ({}); a binary of the package under test is written `{{bin:{program}}}` (cargo builds it), one of hangup's own fixtures `{{fixture:{program}}}`",
            crate::model::Escaped(&self.path)
        )
    }
}

/// A running program.
pub struct Running {
    /// The program's own pid, as the host sees it.
    pid: Pid,
    /// Its process group: the relay's pid (see [`init`]), which hangup
    /// spawned and reaps.
    group: Pid,
    spec: Program,
    /// Where it is told to listen ([`Places::host`]).
    host: IpAddr,
    output: Arc<Output>,
    /// Set before hangup asks it to stop, so its exit is not a crash.
    stopping: Arc<AtomicBool>,
    /// Its socket calls, when they are traced.
    calls: Option<Arc<Calls>>,
}

/// How a program's stop went.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// How it ended.
    pub exit: Exit,
    /// Whether it had to be killed because it ignored the stop signal for
    /// its whole grace period.
    pub killed: bool,
    /// How long its threads waited for a CPU after the signal, at most
    /// (given on top of the grace, up to [`STARVED_CAP`]).
    pub starved: Duration,
    /// Its last output lines.
    pub tail: Vec<OutputLine>,
}

/// What the cases a program serves read of it beyond its output lines and
/// its exit, known before it starts.
#[derive(Debug, Clone, Default)]
pub struct Watching {
    /// Trace its socket calls (see the `trace` module): a `syscall` check
    /// reads them.
    pub calls: bool,
    /// The patterns its `log` checks count: each line is counted against
    /// them as it passes, so no line needs keeping for them.
    pub log: Vec<regex::Regex>,
}

/// Whether programs whose calls no check reads are traced all the same by
/// the floor tracer (0: no; 1: entry and exit stops; 2: entry stops
/// only); see [`trace_as_floor`].
static FLOOR_TRACER: AtomicU8 = AtomicU8::new(0);

/// Which stops the floor tracer of [`trace_as_floor`] makes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// Each filtered call's seccomp stop and its exit stop: what hangup's
    /// tracer makes of a socket call, and the least a ptrace tracer needs
    /// to learn a call's result.
    EntryAndExit,
    /// The seccomp stop alone: one stop per call, as a mechanism that sees
    /// calls but not their results makes (`SECCOMP_RET_USER_NOTIF`).
    EntryOnly,
}

/// For `hangup bench` only: while `Some`, every program started for a
/// case with no `syscall` check is traced all the same, under the seccomp
/// filter hangup's tracer installs, by a tracer that does nothing at its
/// stops. With [`Floor::EntryAndExit`] (hangup's stops) that is the least
/// that tracing a program's call results through ptrace can cost,
/// measured on the very workload hangup's tracer is measured on.
#[doc(hidden)]
pub fn trace_as_floor(floor: Option<Floor>) {
    let value = match floor {
        None => 0,
        Some(Floor::EntryAndExit) => 1,
        Some(Floor::EntryOnly) => 2,
    };
    FLOOR_TRACER.store(value, Ordering::Relaxed);
}

/// Starts `spec` from the calling thread, which must be in the case's
/// namespace and live until the program is stopped (`PR_SET_PDEATHSIG` is
/// tied to it). `on_exit` hears of an exit hangup did not ask for (a crash,
/// or an exit while the case runs) with the program's last output.
pub fn start(
    spec: &Program,
    places: &Places,
    record: &Recorder,
    route: &Route,
    side: Side,
    watching: Watching,
    on_exit: impl FnOnce(Exit, Vec<OutputLine>) + Send + 'static,
) -> Result<Running, SutError> {
    let argv: Vec<String> = spec
        .argv
        .iter()
        .map(|arg| substitute(arg, spec.port, places, record))
        .collect::<Result<_, _>>()?;
    let cwd = match &spec.cwd {
        Some(cwd) => PathBuf::from(substitute(cwd, spec.port, places, record)?),
        None => places.suite_dir.clone(),
    };
    let env = spec
        .env
        .iter()
        .map(|(key, value)| Ok((key.clone(), substitute(value, spec.port, places, record)?)))
        .collect::<Result<Vec<_>, SutError>>()?;
    let tracer = if watching.calls {
        Some(spawn::Tracer::Calls)
    } else {
        match FLOOR_TRACER.load(Ordering::Relaxed) {
            1 => Some(spawn::Tracer::Floor { exits: true }),
            2 => Some(spawn::Tracer::Floor { exits: false }),
            _ => None,
        }
    };
    let spawned = spawn::spawn(&argv, &env, &cwd, tracer).map_err(|source| {
        if source.raw_os_error() == Some(nix::libc::ENOENT) {
            let path = env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var("PATH").ok())
                .unwrap_or_default();
            return SutError::NotFound(NotFound {
                program: argv.first().cloned().unwrap_or_default(),
                cwd: cwd.clone(),
                path,
            });
        }
        SutError::Spawn {
            command: argv.join(" "),
            source,
        }
    })?;
    // What it prints comes after this: its start is stamped here.
    let started = Instant::now();
    let (group, pid) = (spawned.relay, spawned.program);
    let file = record.artifacts().ok().and_then(|dir| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("program.log"))
            .ok()
    });
    let streams = if spawned.trace.is_some() { 3 } else { 2 };
    let output = Arc::new(Output::new(file, streams, watching.log));
    read_lines(
        spawned.stdout,
        Stream::Out,
        side,
        spec.ready.clone(),
        route,
        &output,
    );
    read_lines(
        spawned.stderr,
        Stream::Err,
        side,
        spec.ready.clone(),
        route,
        &output,
    );
    let calls = spawned.trace.map(|(doorbell, ring)| {
        let calls = Arc::new(Calls::default());
        let drained = Arc::clone(&output);
        trace::read_records(doorbell, ring, side, route, &calls, move || {
            drained.stream_ended()
        });
        calls
    });
    let stopping = Arc::new(AtomicBool::new(false));
    watch(group, side, route, &output, &stopping, on_exit);
    route.push(
        started,
        Some(side),
        EventKind::ProgramStarted {
            argv: argv.iter().map(|arg| bounded(arg)).collect(),
            pid: pid.as_raw(),
        },
    );
    Ok(Running {
        pid,
        group,
        spec: spec.clone(),
        host: places.host,
        output,
        stopping,
        calls,
    })
}

/// An argument as the record keeps it: its first KiB (a suite may pass a
/// whole script as one argument).
fn bounded(arg: &str) -> String {
    const KEPT: usize = 1024;
    match arg.char_indices().nth(KEPT) {
        Some((cut, _)) => format!("{}...", &arg[..cut]),
        None => arg.to_string(),
    }
}

/// A thread that reaps the program and reports how it ended.
fn watch(
    relay: Pid,
    side: Side,
    route: &Route,
    output: &Arc<Output>,
    stopping: &Arc<AtomicBool>,
    on_exit: impl FnOnce(Exit, Vec<OutputLine>) + Send + 'static,
) {
    let (route, output, stopping) = (route.clone(), Arc::clone(output), Arc::clone(stopping));
    let _ = std::thread::Builder::new()
        .name("program watcher".into())
        .spawn(move || {
            // The relay ends as the program did (see `spawn`).
            let exit = loop {
                match nix::sys::wait::waitpid(relay, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => break Exit::Code(code),
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => {
                        break Exit::Signal(signal as i32);
                    }
                    Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                    Err(_) => break Exit::Code(-1),
                }
            };
            route.push(
                Instant::now(),
                Some(side),
                EventKind::ProgramExited { exit },
            );
            {
                let mut state = output.lock();
                state.exit = Some(exit);
                output.changed.notify_all();
            }
            // Its last words may still be in the pipes: the readers take
            // them before the tail is.
            output.wait_drained(DRAIN_WAIT);
            let tail = output.lock().tail();
            if !stopping.load(Ordering::SeqCst) {
                on_exit(exit, tail);
            }
        });
}

impl Running {
    /// The program's process id, as the host sees it.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its last output lines, oldest first.
    pub fn tail(&self) -> Vec<OutputLine> {
        self.output.lock().tail()
    }

    /// A view of it for `log` and `released` checks.
    pub fn view(&self) -> ProgramView {
        ProgramView {
            output: Arc::clone(&self.output),
            pid: self.pid,
            group: self.group,
            stopping: Arc::clone(&self.stopping),
            calls: self.calls.clone(),
            from: Vec::new(),
        }
    }

    /// Waits until the program is ready: its `ready` line printed, or else
    /// the kernel lists a listener on its port (a sock_diag lookup, which
    /// no connection of hangup's disturbs).
    pub fn wait_ready(&self, diag: &mut SockDiag) -> Result<(), SutError> {
        let until = Instant::now() + self.spec.within;
        let within = crate::verdict::millis(self.spec.within);
        let mut state = self.output.lock();
        loop {
            if let Some(exit) = state.exit {
                // Its last words may still be in the pipes: the readers
                // take them before the caller takes its tail.
                drop(state);
                self.output.wait_drained(DRAIN_WAIT);
                return Err(SutError::NotReady(format!("{exit} before it was ready")));
            }
            let ready = match &self.spec.ready {
                Some(_) => state.ready,
                // A client has nothing to listen on: it runs, so it is ready.
                None if self.spec.role == Side::Client => true,
                None => self.listening(diag),
            };
            if ready {
                return Ok(());
            }
            let now = Instant::now();
            if now >= until {
                let what = match &self.spec.ready {
                    Some(pattern) => {
                        format!("printed no line matching `{pattern}` within {within}")
                    }
                    None => format!(
                        "did not listen on port {} within {within} ({})",
                        self.spec.port,
                        listeners_said(diag)
                    ),
                };
                return Err(SutError::NotReady(what));
            }
            let wait = match &self.spec.ready {
                Some(_) => until - now,
                None => READY_POLL.min(until - now),
            };
            state = self
                .output
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Whether the kernel lists a listener on the program's port, on its
    /// host's address (`{host}`) or a wildcard address.
    fn listening(&self, diag: &mut SockDiag) -> bool {
        let port = self.spec.port;
        let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
        [
            (SocketAddr::from((self.host, port)), any4),
            (SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), any4),
            (SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), any6),
        ]
        .into_iter()
        .any(|(local, remote)| diag.lookup(local, remote).ok() == Some(TcpState::Listen))
    }

    /// Asks the program to stop with its stop signal, gives it its grace
    /// period, then kills its process group. Either way every process it
    /// started ends with its PID namespace.
    ///
    /// The grace is the program's own time: what its threads spent waiting
    /// for a CPU meanwhile (a machine loaded beyond its cores) is given on
    /// top, up to [`STARVED_CAP`] more, so that a program busy shutting
    /// down is not killed for the machine's load. A program that ignores
    /// the signal sleeps, and gets nothing more.
    pub fn stop(self) -> Stopped {
        self.stopping.store(true, Ordering::SeqCst);
        let group = self.group;
        let threads = || queued::snapshot(&self.view().threads());
        let before = threads();
        let asked = Instant::now();
        let _ = killpg(group, self.spec.stop);
        let mut exit = self.wait_exit(self.spec.grace);
        let mut starved = Duration::ZERO;
        while exit.is_none() {
            starved = queued::longest_wait(&before, &threads()).min(STARVED_CAP);
            let owed = self.spec.grace + starved;
            let waited = asked.elapsed();
            if owed <= waited {
                break;
            }
            exit = self.wait_exit(owed - waited);
        }
        let killed = exit.is_none();
        // The relay ends only after init, whose end kills everything left
        // in the namespace; so only a program still running needs the
        // SIGKILL (which kills init too). Once the relay is reaped its pid
        // may name a stranger's group: no signal goes to it then.
        if killed {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let exit = exit
            .or_else(|| self.wait_exit(KILL_WAIT))
            .unwrap_or(Exit::Signal(Signal::SIGKILL as i32));
        self.output.wait_drained(DRAIN_WAIT);
        Stopped {
            exit,
            killed,
            starved,
            tail: self.tail(),
        }
    }

    fn wait_exit(&self, limit: Duration) -> Option<Exit> {
        self.output.wait_exit(limit)
    }
}

/// Where the namespace's listeners are, for a program that did not listen
/// on its port: "it listens on 127.0.0.1:8081" says a wrong port at once,
/// where "did not listen" alone sends a user looking at timeouts. What the
/// kernel lists, as the kernel lists it.
fn listeners_said(diag: &mut SockDiag) -> String {
    let Ok(sockets) = diag.tcp_sockets() else {
        return "the kernel's list of listeners could not be read".to_string();
    };
    let mut listening: Vec<String> = sockets
        .iter()
        .filter(|s| s.state == TcpState::Listen)
        .map(|s| s.local.to_string())
        .collect();
    listening.sort();
    listening.dedup();
    if listening.is_empty() {
        "nothing in its namespace listens on a TCP port".to_string()
    } else {
        format!("its namespace listens on {}", listening.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_argument_is_kept_to_its_first_kib() {
        assert_eq!(bounded("python3"), "python3");
        let long = format!("import os\n{}", "é".repeat(2000));
        let kept = bounded(&long);
        assert_eq!(kept.chars().count(), 1024 + 3, "{kept}");
        assert!(kept.starts_with("import os\n") && kept.ends_with("..."));
    }
}
