//! What a run tells people and machines. Everything here renders the typed
//! record ([`crate::record`]) and the case reports of [`format`](mod@format); nothing
//! here observes, and nothing reads a sentence back.
//!
//! - [`format`](mod@format): the JSON report's types (the record as it is written),
//!   and its JSON Schema;
//! - `timeline`: the terminal's ladder of calls, packets and states, two
//!   columns (client left, server right, a proxy between);
//! - `terminal`: a failure as people read it, and the closing line;
//! - `junit`: JUnit XML for CI servers;
//! - [`diff`]: what changed between two runs, or two versions, computed
//!   into `difference`'s types;
//! - [`soak`]: the figures of many rounds;
//! - [`html`]: one self-contained page per run, a ladder per case as SVG;
//! - `file`: every report file written whole or not at all.

mod cells;
pub mod diff;
mod difference;
mod file;
pub mod format;
pub mod html;
mod junit;
pub mod matrix;
pub mod soak;
mod step;
mod terminal;
mod timeline;

use std::path::Path;

pub use file::write_atomically;
pub use format::{CaseReport, CaseStatus, Failure, FailureKind, Report};
pub use junit::{Compared, Passing, junit_xml, write_diff_junit, write_junit};
pub use step::StepRef;
pub use terminal::{skipped_lines, summary_line};
pub use timeline::{describe_call, whereabouts};

#[cfg(test)]
mod snapshot_tests;

/// Writes every round's reports, and the differences between versions
/// (with the noise set aside), as one JSON document ([`Report`]),
/// atomically.
pub fn write_json(
    path: &Path,
    rounds: &[Vec<CaseReport>],
    versions: diff::Versions,
) -> std::io::Result<()> {
    let report = Report::new(rounds, versions.differences, versions.noise);
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    write_atomically(path, &json)
}
