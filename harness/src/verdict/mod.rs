//! Expectations against observations.
//!
//! Each function compares one expectation with what was seen and, on a
//! mismatch, says both in words a person reads without the suite open:
//! "expected EAGAIN (Resource temporarily unavailable) after 200 ms ±50 ms,
//! observed ok, 1000 bytes after 3 ms". The runner decides when to judge;
//! this module only judges.
//!
//! One file per kind of judgement, each standing on the [`Mismatch`] and
//! the words ([`millis`]) defined here:
//!
//! - `call.rs`: one socket call's result, bytes, readiness, what it
//!   received and how long it took, allowing for the harness's own
//!   [`Lateness`];
//! - `state.rs`: what the kernel holds: TCP states per socket, connections
//!   waiting in an accept queue;
//! - `counts.rs`: things counted over a window: a program's output lines,
//!   packets a fault took, segments a side sent, a program's own socket
//!   calls, and the errnos those calls may fail with;
//! - `released.rs`: what a program still holds once it should have let go.

mod call;
mod counts;
mod released;
mod state;

pub use call::{Lateness, describe_expect, describe_result, excerpt, judge_call};
pub use counts::{SyscallAsk, judge_errnos, judge_log, judge_sent, judge_syscall, judge_taken};
pub use released::{fds_in_words, judge_released};
pub use state::{judge_accept_queue, judge_states, waiting};

use std::fmt;
use std::time::Duration;

/// Which part of an expectation did not hold (the first, in this order,
/// when several did not).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MismatchKind {
    /// The outcome: ok, EOF or the errno.
    Outcome,
    /// The bytes the call moved.
    Bytes,
    /// The events a poll reported ready.
    Ready,
    /// What a read received (`matches`).
    Content,
    /// How long the call took (`after`, `longer_than`).
    Timing,
    /// A kernel TCP state.
    State,
    /// Lines of a program's output.
    Log,
    /// What a program holds in its fd table.
    Held,
    /// A program's own socket calls.
    Syscall,
    /// Connections waiting in a listener's accept queue.
    AcceptQueue,
    /// Packets a fault took.
    Taken,
    /// Segments a side sent, as the capture saw them.
    Packets,
}

/// What was expected and what was seen instead, in words (the events of
/// the case's timeline hold what was seen as data).
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Mismatch {
    /// Which part did not hold.
    pub kind: MismatchKind,
    /// The expectation, in words.
    pub expected: String,
    /// The observation, in words.
    pub observed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, observed {}", self.expected, self.observed)
    }
}

/// A duration as people read timelines: "200 ms", "1.5 s".
pub fn millis(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
