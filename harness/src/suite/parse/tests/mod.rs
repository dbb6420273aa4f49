//! The parser's tests, a file per what they read: `steps.rs` one step
//! (actions, modifiers, expectations), `values.rs` durations, lingers
//! and the limits on sizes and times, `programs.rs` a `[program]` table
//! and the cases it makes, `network.rs` faults, cuts and two hosts, and
//! `whole_file.rs` what is reported of a file as a whole (its order,
//! encoding, rendering, size and cases), and `definitions.rs` every
//! action's definition read back through what is derived from it. Each problem is asserted where
//! it is, as `(line, column, message)`.

mod definitions;
mod network;
mod programs;
mod steps;
mod values;
mod whole_file;

use std::path::Path;
use std::time::Duration;

use rstest::rstest;

use super::*;
use crate::model::{Outcome, Side};
use crate::suite::action::catalog;
use crate::suite::{Action, Check, Control, SocketCall};

const PATH: &str = "suites/t.toml";

/// Each problem as `(line, column, message)`, in the order reported.
fn problems(bytes: &[u8]) -> Vec<(usize, usize, String)> {
    match parse_suite(Path::new(PATH), bytes) {
        Ok(_) => panic!("expected the suite to be invalid, it parsed"),
        Err(SuiteError::Invalid { diagnostics, .. }) => diagnostics
            .into_iter()
            .map(|d| (d.location.line, d.location.column, d.message))
            .collect(),
        Err(other) => panic!("expected SuiteError::Invalid, found {other:?}"),
    }
}

/// The one problem of a suite that has exactly one.
fn problem(text: &str) -> (usize, usize, String) {
    problem_in(text.as_bytes())
}

fn problem_in(bytes: &[u8]) -> (usize, usize, String) {
    let mut all = problems(bytes);
    assert_eq!(all.len(), 1, "expected one problem, found {all:#?}");
    all.remove(0)
}

fn rendered(text: &[u8]) -> String {
    match parse_suite(Path::new(PATH), text) {
        Err(SuiteError::Invalid { rendered, .. }) => rendered,
        other => panic!("expected SuiteError::Invalid, found {other:?}"),
    }
}

/// Asserts that `text` has exactly one problem, at `line`:`column`, and
/// that its message starts with `message`.
#[track_caller]
fn assert_one_problem(text: &str, line: usize, column: usize, message: &str) {
    let (l, c, m) = problem(text);
    assert!(
        m.starts_with(message),
        "expected a message starting with {message:?}, found {m:?}"
    );
    assert_eq!((l, c), (line, column), "for {m:?}");
}

/// A case named `a` with this client script.
fn client(steps: &str) -> String {
    format!("[[case]]\nname = \"a\"\nclient = [\n{steps}\n]\n")
}
