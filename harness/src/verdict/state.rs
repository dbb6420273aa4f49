//! Judging what the kernel holds: the TCP state of each socket at a
//! point, and how many connections wait in a listener's accept queue.

use std::time::Duration;

use super::{Mismatch, MismatchKind, millis};
use crate::model::{Socket, TcpState};

/// Judges kernel states: every expected socket must be in its state.
pub fn judge_states(
    expected: &[(Socket, TcpState)],
    observed: &[(Socket, TcpState)],
) -> Result<(), Mismatch> {
    let holds = expected.iter().all(|want| observed.contains(want));
    if holds {
        return Ok(());
    }
    let words = |pairs: &[(Socket, TcpState)]| {
        pairs
            .iter()
            .map(|(socket, state)| format!("{socket} {}", state.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Mismatch {
        kind: MismatchKind::State,
        expected: words(expected),
        observed: words(observed),
    })
}

/// Judges an `accept_queue` check: per listening side, the count expected
/// and the count the kernel gave.
pub fn judge_accept_queue(
    counts: &[(crate::model::Side, u32, u32)],
    within: Option<Duration>,
) -> Result<(), Mismatch> {
    if counts.iter().all(|(_, expected, seen)| expected == seen) {
        return Ok(());
    }
    let when = within
        .map(|d| format!(" within {}", millis(d)))
        .unwrap_or_default();
    let each = |pick: fn(&(crate::model::Side, u32, u32)) -> u32| {
        counts
            .iter()
            .map(|c| format!("{} {}", c.0, waiting(pick(c))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Mismatch {
        kind: MismatchKind::AcceptQueue,
        expected: format!("in the accept queue: {}{when}", each(|c| c.1)),
        observed: each(|c| c.2),
    })
}

/// "1 connection waiting", "80 connections waiting".
pub fn waiting(n: u32) -> String {
    match n {
        1 => "1 connection waiting".to_string(),
        n => format!("{n} connections waiting"),
    }
}
