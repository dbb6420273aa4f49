//! The case's supervisor: the calling thread waits for a verdict, the
//! deadline or the run's interruption, then wakes the sides still blocked
//! in a call until they leave.

use std::time::{Duration, Instant};

use crate::model::Side;
use crate::record::{EventKind, StepId, StopReason};
use crate::report::{self, Failure, FailureKind};
use crate::suite::{Action, Control, Script, Step};
use crate::verdict::{self};

use super::{Coordination, Shared, add_saturating, later, wait};

/// How often the case thread repeats its wake-up signal to a side still
/// blocked after the case ended (a signal sent just before the side
/// entered its call is missed).
pub(super) const WAKE_INTERVAL: Duration = Duration::from_millis(5);

/// How long the sides get to leave their calls after the case ended. Only a
/// lingering close (`SO_LINGER` with seconds) can hold a side longer.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Waits until every side is done, a side failed, or the deadline passed;
/// then wakes the sides still blocked until they are done.
pub(super) fn supervise(shared: &Shared) {
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
            left.min(crate::runner::StopSignal::POLL)
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

/// Where each side still running is: its step (in a loop, the body's step
/// and round), and how long its call has been in flight if it is in one.
pub(super) fn whereabouts(
    shared: &Shared,
    control: &Coordination,
    now: Instant,
) -> Vec<(Side, EventKind)> {
    shared
        .case
        .scripts
        .iter()
        .filter(|script| control.sides[script.side as usize].running)
        .filter_map(|script| {
            let (step, call) = control.sides[script.side as usize].step?;
            let written = step_at(script, step)?;
            Some((
                script.side,
                EventKind::Whereabouts {
                    step,
                    source: written.source.clone(),
                    location: written.location.to_string(),
                    in_flight: call.map(|began| now.saturating_duration_since(began)),
                },
            ))
        })
        .collect()
}

/// The step of `script` that `step` names, in a loop's body if it is in
/// one.
fn step_at(script: &Script, step: StepId) -> Option<&Step> {
    let top = script.steps.get(step.index.checked_sub(1)?)?;
    match (step.body, &top.action) {
        (None, _) => Some(top),
        (Some(body), Action::Control(Control::Loop(looped))) => {
            looped.body.get(body.checked_sub(1)?)
        }
        (Some(_), _) => None,
    }
}

/// The deadline failure: what each side was doing when time ran out,
/// including the calls still in flight.
pub(super) fn overrun(shared: &Shared, control: &Coordination) -> Failure {
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
pub(super) fn interrupted(shared: &Shared, control: &Coordination) -> Failure {
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
pub(super) fn stopped_here(shared: &Shared, control: &Coordination, why: StopReason) -> Failure {
    let now = Instant::now();
    let at = whereabouts(shared, control, now);
    let mut waiting: Vec<String> = at
        .iter()
        .filter_map(|(side, kind)| report::whereabouts(Some(*side), kind))
        .collect();
    for script in &shared.case.scripts {
        if !control.sides[script.side as usize].running {
            waiting.push(format!("{} had finished its script", script.side));
        }
    }
    // Each side's whereabouts on the timeline, as data, beside the stop.
    shared.push(now, None, EventKind::Stopped { why });
    for (side, kind) in at {
        shared.push(now, Some(side), kind);
    }
    let at = shared.at(now);
    Failure::new(FailureKind::Deadline, waiting.join("; "), at)
}
