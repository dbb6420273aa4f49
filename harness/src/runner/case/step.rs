//! A step as the parts that run it see it: where it is ([`At`]), how it
//! ended when it did not fail ([`Flow`]), and its failure, worded the same
//! whichever part failed it.

use std::time::Instant;

use super::Shared;
use crate::model::Side;
use crate::record::StepId;
use crate::report::{Failure, FailureKind, StepRef};
use crate::suite::{Script, Step};
use crate::verdict::Mismatch;

/// How a step ended, when it did not fail.
pub(super) enum Flow {
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
pub(super) struct At<'s> {
    pub(super) script: &'s Script,
    /// 0-based position in the script (of the loop, for a step in one).
    pub(super) index: usize,
    /// For a step in a loop's body: its 0-based position in the body, and
    /// the round (1-based).
    pub(super) in_loop: Option<(usize, u32)>,
}

impl At<'_> {
    /// The step as the record names it.
    pub(super) fn step(&self) -> StepId {
        StepId {
            index: self.index + 1,
            body: self.in_loop.map(|(body, _)| body + 1),
            round: self.in_loop.map(|(_, round)| round),
        }
    }

    /// Whose script it is in.
    pub(super) fn side(&self) -> Side {
        self.script.side
    }
}

/// The failure of the step at `at`.
pub(super) fn failure(
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
