//! The case's supervisor: the calling thread waits for a verdict, the
//! deadline or the run's interruption, then wakes the sides still blocked
//! in a call until they leave.

use std::time::{Duration, Instant};

use crate::model::Side;
use crate::record::{EventKind, StepId, StopReason};
use crate::report::{Failure, FailureKind};
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

/// Where each side still running is: its step, and how long its call has
/// been in flight if it is in one.
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
pub(super) fn whereabouts_in_words(side: Side, at: &EventKind) -> String {
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
