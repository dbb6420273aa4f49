//! The program under test in a case: started by the case's thread (a
//! server before the scripts, a client once a script listens where it
//! connects), or joined when it serves the whole suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Baseline, Shared, harness_failure, program_failure, wait};
use crate::model::Side;
use crate::observe::SockDiag;
use crate::record::{EventKind, OutputLine};
use crate::report::{Failure, FailureKind};
use crate::runner::suite_program::{Serving, SuiteProgram};
use crate::suite::Program;
use crate::sut;

/// Has the suite's program serve this case: its output, calls and exit
/// come to this case from now on, its listener is the case's server, and
/// `released` compares with what it holds now.
pub(super) fn serve<'a>(
    shared: &Arc<Shared>,
    program: &'a SuiteProgram,
) -> Result<Serving<'a>, Box<Failure>> {
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

/// Starts the program under test from this (the case's) thread, waits until
/// it is ready, and makes its listener known, so state checks of `server`
/// find its end of the scripts' connections. An exit once it was ready
/// fails the case at once.
pub(super) fn start_program(
    shared: &Arc<Shared>,
    spec: &Program,
) -> Result<sut::Running, Box<Failure>> {
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
    let watching = sut::Watching {
        calls: shared.case.traces_program(),
        log: crate::suite::Case::log_patterns_of([&shared.case]),
    };
    let route = crate::record::Route::new(shared.record.clone());
    let running = sut::start(
        spec,
        &places,
        &shared.record,
        &route,
        spec.role,
        watching,
        on_exit,
    )
    .map_err(|err| Box::new(program_failure(shared, err.to_string(), Vec::new())))?;
    // A client starts while the scripts wait for it (a server's `accept`):
    // its busy time counts from its start, not from its being ready.
    if spec.role == Side::Client {
        shared.program_busy_from_now(&running.view());
    }
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

/// Waits until a script listens on `port`; false when the case stopped,
/// or every side finished or waits for the program itself first (then a
/// failure says so).
pub(super) fn wait_for_listener(shared: &Shared, port: u16) -> bool {
    let mut control = shared.control();
    loop {
        if control.listening.contains(&port) {
            return true;
        }
        if control.stopping {
            return false;
        }
        if control
            .sides
            .iter()
            .all(|s| !s.running || s.waiting_for_program)
        {
            let waiting: Vec<&str> = Side::ALL
                .iter()
                .filter(|side| {
                    let progress = &control.sides[**side as usize];
                    progress.running && progress.waiting_for_program
                })
                .map(|side| side.name())
                .collect();
            drop(control);
            let why = if waiting.is_empty() {
                String::new()
            } else {
                format!(
                    ": the {} script's step needs the program first, which starts only once a script listens (put that step after the `listen`)",
                    waiting.join(" and ")
                )
            };
            shared.fail(harness_failure(
                shared,
                FailureKind::Script,
                format!("no script listened on port {port}, where the program connects{why}"),
            ));
            return false;
        }
        control = wait(&shared.changed, control, Duration::from_secs(1));
    }
}
