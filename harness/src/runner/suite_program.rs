//! A program that serves a whole suite (`scope = "suite"`): started once,
//! in a network namespace of its own, which the suite's cases then join one
//! at a time. For programs that take seconds to start (a JVM).
//!
//! Cases cannot disturb one another through it: they run one after the
//! other, each finds its own connections by 4-tuple, its `log` checks count
//! the lines printed since it began, its `syscall` checks the calls on its
//! own connections, and its `released` compares with what the program held
//! when it began. What would reach the program itself, a sysctl of the
//! case's own or a `signal`, `hangup check` refuses (see the parser).
//!
//! The program lives on a thread of its own (the host), which made the
//! namespace and started it, so `PR_SET_PDEATHSIG` ties the program to
//! that thread; the host stops it when the suite is done
//! ([`stop`]), or the program dies with hangup.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::model::Side;
use crate::observe::SockDiag;
use crate::record::{EventKind, OutputLine, Recorder, Route};
use crate::sandbox::CaseNamespace;
use crate::suite::{Program, Suite};
use crate::sut::{self, Exit, ProgramView, Stopped};

use super::RunOptions;

/// Told of the program's exit hangup did not ask for, with its last output.
type ExitHook = Box<dyn Fn(Exit, Vec<OutputLine>) + Send>;

/// The host thread: asked to stop the program, it hands back how that went.
type Host = (mpsc::Sender<()>, std::thread::JoinHandle<Option<Stopped>>);

/// A suite's program, once its first case started it (`None`: no case of
/// the suite shares one).
type Slot = Arc<OnceLock<Option<Arc<SuiteProgram>>>>;

/// One running suite-scoped program.
pub(crate) struct SuiteProgram {
    spec: Program,
    /// The program's own record: its start and whatever it prints between
    /// cases; its artifact folder holds `program.log` (and is its
    /// `{artifacts}`).
    record: Recorder,
    /// Where its events go: the case it serves now, or `record`.
    route: Route,
    /// Ready in its namespace, or why it never was (and its last output).
    ready: Result<(Arc<OwnedFd>, ProgramView), (String, Vec<OutputLine>)>,
    exits: Arc<Mutex<Exits>>,
    /// Held by the case it serves: one at a time.
    turn: Mutex<()>,
    /// Asks the host to stop the program; hands back how it went.
    host: Mutex<Option<Host>>,
}

/// Who hears of an unasked exit, and the exit once it happened.
#[derive(Default)]
struct Exits {
    /// The case it serves now.
    hook: Option<ExitHook>,
    /// How it ended, for the cases after.
    exited: Option<(Exit, Vec<OutputLine>)>,
}

/// What a case gets when it begins: the program's namespace and a view of
/// the program from now on.
pub(crate) struct Serving<'a> {
    pub(crate) namespace: Arc<OwnedFd>,
    pub(crate) view: ProgramView,
    program: &'a SuiteProgram,
    /// The case's test name, for `program.log`.
    case: String,
}

impl Drop for Serving<'_> {
    /// The case is over: the program's events go back to its own record,
    /// and its exit from now on fails no case that already ended.
    fn drop(&mut self) {
        lock(&self.program.exits).hook = None;
        self.program.route.switch(self.program.record.clone());
        self.view.log_marker(&format!(
            "{} ended: the lines below are stamped on the program's own clock",
            self.case
        ));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl SuiteProgram {
    /// Starts `suite`'s program on a host thread in a fresh namespace with
    /// the suite's sysctls, and waits until it is ready or cannot be.
    fn start(suite: &Suite, options: &RunOptions) -> Option<SuiteProgram> {
        let sharing: Vec<_> = suite.cases.iter().filter(|c| c.shares_program()).collect();
        let first = sharing.first()?;
        let spec = first.program.clone()?;
        // A case's own sysctls are refused beside a shared program, so the
        // first case's are the suite's.
        let sysctls = first.sysctls.clone();
        let watching = sut::Watching {
            calls: sharing.iter().any(|c| c.traces_program()),
            log: crate::suite::Case::log_patterns_of(sharing.iter().copied()),
        };
        let root = options
            .artifact_root
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let record = Recorder::new(
            root,
            format!("hangup-{}-program-", suite.name.replace("::", "-")),
        );
        let route = Route::new(record.clone());
        let exits = Arc::new(Mutex::new(Exits::default()));
        let places = sut::Places::for_suite(&suite.path);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let host = {
            let (spec, record, route, exits, watching) = (
                spec.clone(),
                record.clone(),
                route.clone(),
                Arc::clone(&exits),
                watching,
            );
            std::thread::Builder::new()
                .name(format!("program of {}", suite.name))
                .spawn(move || {
                    let started =
                        host_start(&spec, &places, &sysctls, &record, &route, watching, exits);
                    let running = match started {
                        Ok((handle, running)) => {
                            let _ = ready_tx.send(Ok((handle, running.view())));
                            running
                        }
                        Err(why) => {
                            let _ = ready_tx.send(Err(why));
                            return None;
                        }
                    };
                    // Until the suite is done (or every sender is gone).
                    let _ = stop_rx.recv();
                    Some(running.stop())
                })
        };
        let (ready, host) = match host {
            Ok(thread) => (
                ready_rx.recv().unwrap_or_else(|_| {
                    Err((
                        "the program's host thread ended before it was ready (a hangup bug)".into(),
                        Vec::new(),
                    ))
                }),
                Some((stop_tx, thread)),
            ),
            Err(err) => (
                Err((
                    format!("failed to start the program's thread: {err}"),
                    Vec::new(),
                )),
                None,
            ),
        };
        Some(SuiteProgram {
            spec,
            record,
            route,
            ready,
            exits,
            turn: Mutex::new(()),
            host: Mutex::new(host),
        })
    }

    /// Waits for the program's turn: cases that share it run one at a time.
    pub(crate) fn turn(&self) -> MutexGuard<'_, ()> {
        lock(&self.turn)
    }

    /// Begins serving a case: from now on its output, traced calls and exit
    /// go to `record`, and an exit hangup did not ask for calls `on_exit`.
    /// Why not, with the program's last output, when it never became ready
    /// or has ended since.
    pub(crate) fn serve(
        &self,
        case: &str,
        record: &Recorder,
        on_exit: ExitHook,
    ) -> Result<Serving<'_>, (String, Vec<OutputLine>)> {
        let (namespace, view) = self.ready.as_ref().map_err(Clone::clone)?;
        let mut exits = lock(&self.exits);
        if let Some((exit, tail)) = &exits.exited {
            return Err((
                format!("the suite's program (scope = \"suite\") {exit} before this case began"),
                tail.clone(),
            ));
        }
        view.log_marker(&format!(
            "{case} began: the lines below are stamped on its clock, as its timeline shows them"
        ));
        self.route.switch(record.clone());
        exits.hook = Some(on_exit);
        Ok(Serving {
            namespace: Arc::clone(namespace),
            view: view.from_now(),
            program: self,
            case: case.to_string(),
        })
    }

    /// Whether it became ready and has exited since without being asked
    /// (crashed, or ended). One that never became ready is not restarted
    /// for a sweep's next cell: it would fail the same way again.
    pub(crate) fn has_exited(&self) -> bool {
        self.ready.is_ok() && lock(&self.exits).exited.is_some()
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.spec.port
    }

    /// Stops it (its stop signal, its grace, then SIGKILL) and says how
    /// that went; `None` if it never ran or was stopped already. Its
    /// artifact folder is kept when `keep` (a case failed, or
    /// `--keep-artifacts`) or it had to be killed, with its own timeline,
    /// and removed otherwise.
    fn stop(&self, keep: bool) -> Option<Stopped> {
        let (stop, thread) = lock(&self.host).take()?;
        let _ = stop.send(());
        let stopped = thread.join().ok().flatten();
        // Killed, it failed the suite's last case: keep what it left.
        if keep || stopped.as_ref().is_some_and(|s| s.killed) {
            if let Ok(dir) = self.record.artifacts() {
                let timeline = self.record.finish().render();
                let _ = std::fs::write(dir.join("timeline.txt"), timeline);
                crate::record::leftovers::unmark(dir);
            }
        } else if let Some(dir) = self.record.artifacts_made() {
            let _ = std::fs::remove_dir_all(dir);
        }
        stopped
    }
}

/// On the host thread: the namespace, the suite's sysctls, the program,
/// its readiness.
fn host_start(
    spec: &Program,
    places: &sut::Places,
    sysctls: &[(String, String)],
    record: &Recorder,
    route: &Route,
    watching: sut::Watching,
    exits: Arc<Mutex<Exits>>,
) -> Result<(Arc<OwnedFd>, sut::Running), (String, Vec<OutputLine>)> {
    let setup = |e: crate::sandbox::SandboxError| {
        (
            format!("failed to set up the suite's program's namespace: {e}"),
            Vec::new(),
        )
    };
    let namespace = CaseNamespace::create().map_err(setup)?;
    for (key, value) in sysctls {
        namespace.set_sysctl(key, value).map_err(setup)?;
    }
    let handle = namespace.handle().map_err(setup)?;
    record.start_clock(Instant::now());
    let on_exit = move |exit: Exit, tail: Vec<OutputLine>| {
        let mut exits = lock(&exits);
        if let Some(hook) = &exits.hook {
            hook(exit, tail.clone());
        }
        exits.exited = Some((exit, tail));
    };
    let running = sut::start(spec, places, record, route, Side::Server, watching, on_exit)
        .map_err(|e| (e.to_string(), Vec::new()))?;
    let waited = SockDiag::open()
        .map_err(|e| format!("failed to open sock_diag: {e}"))
        .and_then(|mut diag| running.wait_ready(&mut diag).map_err(|e| e.to_string()));
    if let Err(why) = waited {
        let tail = running.tail();
        running.stop();
        return Err((why, tail));
    }
    route.push(
        Instant::now(),
        Some(Side::Server),
        EventKind::ProgramReady {
            port: spec.port,
            role: Side::Server,
            for_suite: true,
        },
    );
    Ok((Arc::new(handle), running))
}

/// The suite-scoped programs running in this process, by suite file. Each
/// starts when its suite's first case needs it.
fn programs() -> MutexGuard<'static, HashMap<PathBuf, Slot>> {
    static PROGRAMS: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    lock(PROGRAMS.get_or_init(Mutex::default))
}

/// `suite`'s program, started now if this is its first case; `None` when
/// no case of the suite shares one.
pub(crate) fn for_suite(suite: &Suite, options: &RunOptions) -> Option<Arc<SuiteProgram>> {
    let slot = Arc::clone(programs().entry(suite.path.clone()).or_default());
    // Started outside the map's lock: other suites' cases go on meanwhile.
    slot.get_or_init(|| SuiteProgram::start(suite, options).map(Arc::new))
        .clone()
}

/// Starts `suite`'s program again when `ended`, the one that exited, is
/// still the suite's: the next sweep cell then gets a fresh one (a cell
/// that crashed the program failed for it; the rest of the matrix still
/// runs). The ended one is collected, its artifact folder kept. Whoever
/// finds `ended` replaced already does nothing.
pub(crate) fn restart(suite: &Suite, options: &RunOptions, ended: &Arc<SuiteProgram>) {
    let old = {
        let mut programs = programs();
        let current = programs
            .get(&suite.path)
            .and_then(|slot| slot.get().cloned().flatten());
        if !current.is_some_and(|p| Arc::ptr_eq(&p, ended)) {
            return;
        }
        programs.remove(&suite.path)
    };
    if let Some(Some(program)) = old.as_ref().and_then(|slot| slot.get()) {
        program.stop(true);
    }
    // The next `for_suite` starts a fresh one in a fresh slot.
    let _ = for_suite(suite, options);
}

/// Stops `suite`'s program, if one runs, keeping its artifact folder when
/// `keep`; how its stop went.
pub(crate) fn stop(suite: &Suite, keep: bool) -> Option<Stopped> {
    let slot = programs().remove(&suite.path)?;
    slot.get()?.as_ref()?.stop(keep)
}

/// Stops every suite-scoped program still running (the end of a `cargo
/// test` run), keeping their artifact folders when `keep`; the suites
/// whose program ignored its stop signal, and for how long.
pub(crate) fn stop_all(keep: bool) -> Vec<String> {
    let all: Vec<_> = programs().drain().collect();
    let mut killed = Vec::new();
    for (path, slot) in all {
        let Some(Some(program)) = slot.get() else {
            continue;
        };
        if program.stop(keep).is_some_and(|s| s.killed) {
            killed.push(format!(
                "the program of {} ignored {} for {} and was killed",
                path.display(),
                program.spec.stop,
                crate::verdict::millis(program.spec.grace)
            ));
        }
    }
    killed
}
