//! Control steps: pacing and coordination (`sleep`, `mark`, `wait`), a
//! signal to the program, and faults put in place or lifted.

use std::time::{Duration, Instant};

use crate::record::EventKind;
use crate::report::{Failure, FailureKind};
use crate::suite::{Control, Step};
use crate::verdict::Mismatch;

use super::faults::{lift_faults, put_cut, put_fault};
use super::step::{At, Flow, failure};
use super::{Shared, later, wait};

/// Runs a control step.
pub(super) fn run(
    shared: &Shared,
    at: At<'_>,
    step: &Step,
    control: &Control,
) -> Result<Flow, Box<Failure>> {
    let side = at.side();
    let id = at.step();
    let fail = |kind: FailureKind, mismatch: Option<Mismatch>, what: String| {
        failure(shared, at, step, kind, mismatch, what)
    };
    match control {
        Control::Sleep(d) => {
            if !shared.sleep_until(later(*d)) {
                return Ok(Flow::CaseEnded);
            }
        }
        Control::Mark(label) => {
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
        Control::Wait { label, timeout } => match wait_for_mark(shared, label, *timeout) {
            Ok(true) => {}
            Ok(false) => {
                return Err(fail(
                    FailureKind::Expectation,
                    None,
                    format!("no other side reached `mark = {label:?}` in time"),
                ));
            }
            Err(Stopped) => return Ok(Flow::CaseEnded),
        },
        Control::Signal(signal) => {
            let Some((view, _)) = shared.program(side) else {
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
        Control::Fault(fault) => {
            put_fault(shared, side, id, fault).map_err(|why| {
                fail(
                    FailureKind::Setup,
                    None,
                    format!("the fault could not be put in place: {why}"),
                )
            })?;
        }
        Control::Cut(cut) => {
            put_cut(shared, side, id, cut).map_err(|why| {
                fail(
                    FailureKind::Setup,
                    None,
                    format!("the host could not be cut off: {why}"),
                )
            })?;
        }
        Control::Lift(which) => {
            lift_faults(shared, side, id, which).map_err(|(kind, why)| fail(kind, None, why))?;
        }
        Control::Loop(_) => {
            unreachable!("loops do not nest (the parser refuses them) and run_script runs loops")
        }
    }
    Ok(Flow::Next)
}

/// How long a `signal = "SIGSTOP"` step waits for the program to be
/// stopped (it is within a millisecond or two when idle).
pub(super) const STOP_TAKES_EFFECT: Duration = Duration::from_secs(2);

/// The case ended while a side waited.
pub(super) struct Stopped;

/// Waits for another side's `mark`; `Ok(false)` when `timeout` passed
/// first.
pub(super) fn wait_for_mark(
    shared: &Shared,
    label: &str,
    timeout: Option<Duration>,
) -> Result<bool, Stopped> {
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
