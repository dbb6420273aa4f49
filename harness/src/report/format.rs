//! The JSON report's types: what `hangup run --json` writes, what `hangup
//! diff` reads back, and what the other writers (terminal, JUnit) render.
//!
//! Each type here is `Serialize`, `Deserialize` and `JsonSchema`; the
//! report's JSON Schema (`hangup schema --report`) is generated from them,
//! so it cannot drift from what is written. A case's events are
//! [`crate::record`]'s types, written as they are.
//!
//! # What `format` promises
//!
//! [`FORMAT`] is raised when a field changes meaning or goes away, an
//! enum's value is renamed, or an enum other than the event's kind gains
//! a value; a reader of one format refuses another (as `hangup diff` does,
//! naming both). New fields and new kinds of event may appear within a
//! format: a reader ignores fields it does not know and skips events it
//! does not know ([`crate::record::EventKind::Unknown`]), as this one
//! does (a test reads such a report). Keys and enum values are `snake_case`; the domain's own names
//! keep their spelling (`EPIPE`, `CLOSE_WAIT`, `SYN|ACK`, `SIGTERM`), and a
//! call's outcome is written as a suite's `expect` writes it (`ok`, `EOF`,
//! `EPIPE`). Durations are milliseconds, in fields whose names end in
//! `_ms`. `docs/report-format.md` describes every field.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Escaped;
use crate::model::units::millis;
use crate::record::{OutputLine, Timeline};
use crate::suite::sweep::Cell;
use crate::suite::{Tolerance, VersionRun};
use crate::verdict::Mismatch;

use super::difference::Difference;
use super::matrix::Matrix;
pub use super::step::StepRef;

/// The version of the JSON report's format (see the [module docs](self)).
/// Format 1 (hangup before the typed record) wrote calls as text.
pub const FORMAT: u32 = 2;

/// A whole run: every round of it, every case of each round.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Report<'a> {
    /// The report's format ([`FORMAT`]).
    pub format: u32,
    /// The hangup that wrote it: `hangup 0.1.0`.
    pub tool: String,
    /// Each round of the run (`--repeat`), in order.
    pub rounds: Vec<Round<'a>>,
    /// For suites whose program names two versions (`compare`): what
    /// changed between the versions in the last round, case by case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Difference>,
    /// For the same suites: the differences between the versions set
    /// aside as noise, because the runs of the version compared against
    /// (`baseline_runs`) differ there too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise: Vec<Difference>,
    /// Each sweep's matrix of the last round (phases x kinds), built from
    /// its cells' reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<Matrix>,
}

/// One round of a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Round<'a> {
    /// Its number, from 1.
    pub round: usize,
    /// Every case of the round, in file order.
    pub cases: Cow<'a, [CaseReport]>,
}

impl<'a> Report<'a> {
    /// The report of `rounds`, with the differences between versions and
    /// the noise set aside, as this hangup writes it.
    pub fn new(
        rounds: &'a [Vec<CaseReport>],
        versions: Vec<Difference>,
        noise: Vec<Difference>,
    ) -> Report<'a> {
        Report {
            format: FORMAT,
            tool: format!("hangup {}", env!("CARGO_PKG_VERSION")),
            rounds: rounds
                .iter()
                .enumerate()
                .map(|(i, cases)| Round {
                    round: i + 1,
                    cases: Cow::Borrowed(cases),
                })
                .collect(),
            versions,
            noise,
            sweeps: rounds
                .last()
                .map_or_else(Vec::new, |cases| Matrix::of(cases)),
        }
    }

    /// The cases of the last round.
    pub fn last_round(&self) -> &[CaseReport] {
        self.rounds.last().map_or(&[], |round| &round.cases)
    }
}

/// Why a file could not be read as a report.
///
/// Its text may quote what the report holds (a case's name, a value the
/// report's types do not know), shown [`Escaped`]: it stays one line, and
/// nothing in it reaches a terminal raw.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// It could not be opened or read.
    #[error("failed to read it: {0}")]
    Unreadable(#[source] std::io::Error),
    /// It is larger than a reader reads (`hangup diff`:
    /// [`MAX_REPORT_BYTES`](crate::report::diff::MAX_REPORT_BYTES)).
    #[error("{}", too_large(*.size, *.cap))]
    TooLarge {
        /// Its size, when its metadata told it before it was read; none
        /// when the reading passed the cap (a pipe, a file that grew).
        size: Option<u64>,
        /// The most a reader reads.
        cap: u64,
    },
    /// Not JSON, or not a report at all.
    #[error("it is not a hangup JSON report: {}", Escaped(.0))]
    NotAReport(String),
    /// A report of another format.
    #[error(
        "it is a hangup JSON report of format {found}, and this hangup reads format {FORMAT}{hint}"
    )]
    OtherFormat {
        /// Its format.
        found: u64,
        /// What to do.
        hint: &'static str,
    },
    /// A case's masks (`mask`) are more than a suite may list, or one
    /// does not compile within the pattern limit: a suite's parser would
    /// have refused them, so the report was not written by hangup.
    #[error("its case {} cannot be compared: {why}", Escaped(.case))]
    Masks {
        /// The case's test name.
        case: String,
        /// Why.
        why: crate::report::diff::MaskError,
    },
    /// A round holds two entries of one case: hangup runs each case once
    /// a round, so the report was not written by hangup, and which entry
    /// to compare cannot be told.
    #[error(
        "it holds case {} more than once in round {round}, and a round runs each case once",
        Escaped(.case)
    )]
    DuplicateCase {
        /// The case's test name.
        case: String,
        /// Which round, from 1.
        round: usize,
    },
}

impl ReadError {
    /// A report of format `found`, which is not this hangup's.
    pub(crate) fn other_format(found: u64) -> ReadError {
        ReadError::OtherFormat {
            found,
            hint: if found < u64::from(FORMAT) {
                " (it was written by an older hangup: run the suites again with this one to compare)"
            } else {
                " (it was written by a newer hangup)"
            },
        }
    }
}

/// `it is 300 MiB (314572800 bytes), larger than the 256 MiB (268435456
/// bytes) hangup diff reads of a report`.
fn too_large(size: Option<u64>, cap: u64) -> String {
    let bytes = |n: u64| {
        const MIB: u64 = 1 << 20;
        if n >= MIB && n % MIB == 0 {
            format!("{} MiB ({n} bytes)", n / MIB)
        } else if n >= MIB {
            format!("{:.1} MiB ({n} bytes)", n as f64 / MIB as f64)
        } else {
            format!("{n} bytes")
        }
    };
    let size = size.map_or_else(String::new, |size| format!(" {},", bytes(size)));
    format!(
        "it is{size} larger than the {} hangup diff reads of a report",
        bytes(cap)
    )
}

impl Report<'static> {
    /// Reads a report `hangup run --json` wrote, of this format, whose
    /// rounds each hold a case once.
    pub fn read(bytes: &[u8]) -> Result<Report<'static>, ReadError> {
        /// Only the format, first: a report of another one is named as
        /// such, not as a pile of missing fields.
        #[derive(serde::Deserialize)]
        struct Head {
            format: Option<u64>,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| ReadError::NotAReport(e.to_string()))?;
        match head.format {
            None => return Err(ReadError::NotAReport("it has no `format`".into())),
            Some(found) if found != u64::from(FORMAT) => {
                return Err(ReadError::other_format(found));
            }
            Some(_) => {}
        }
        let report: Report<'static> =
            serde_json::from_slice(bytes).map_err(|e| ReadError::NotAReport(e.to_string()))?;
        for (i, round) in report.rounds.iter().enumerate() {
            let mut names = std::collections::HashSet::new();
            if let Some(twice) = round.cases.iter().find(|case| !names.insert(&case.name)) {
                return Err(ReadError::DuplicateCase {
                    case: twice.name.clone(),
                    round: i + 1,
                });
            }
        }
        Ok(report)
    }
}

/// Everything known about one case after it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct CaseReport {
    /// `<suite>::<case>`.
    pub name: String,
    /// The suite (file stem).
    pub suite: String,
    /// The case name.
    pub case: String,
    /// Where the case is written (`file:line:col`).
    pub location: String,
    /// Which cell of a sweep the case is, when a `[[sweep]]` made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<Cell>,
    /// Which version of its program it ran, and which run of it, when
    /// its suite compares two (`compare`): what tells a sweep's matrix of
    /// one version from the other's, and a base run from the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionRun>,
    /// How it ended.
    #[serde(flatten)]
    pub status: CaseStatus,
    /// Wall time from setup to teardown.
    #[serde(rename = "duration_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    /// Everything that happened, in time order.
    pub timeline: Timeline,
    /// How late hangup's own threads ran in the case, at most: a timer
    /// waking late, or a side waiting for a CPU during a timed call (what
    /// timing checks allowed on top of their tolerance).
    #[serde(rename = "lateness_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub lateness: Duration,
    /// The case's timing tolerance, as its suite set it and the run
    /// widened it (`HANGUP_TOLERANCE_*`): what `hangup diff` judges its
    /// calls' durations against. Absent in a report of a case that did
    /// not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// The masks its program's output is compared through (the suite's
    /// `mask`), as written: what `hangup diff` masks in both runs' lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masks: Vec<String>,
    /// The case's artifact folder when it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<PathBuf>,
    /// Why the artifact folder could not be made or written, if it could
    /// not: reported, never silently dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_error: Option<String>,
}

impl CaseReport {
    /// A report of a case that has not yet kept its artifacts.
    pub fn new(
        (name, suite, case, location): (String, String, String, String),
        status: CaseStatus,
        duration: Duration,
        timeline: Timeline,
        lateness: Duration,
    ) -> CaseReport {
        CaseReport {
            name,
            suite,
            case,
            location,
            cell: None,
            version: None,
            status,
            duration,
            timeline,
            lateness,
            tolerance: None,
            masks: Vec::new(),
            artifacts: None,
            artifacts_error: None,
        }
    }

    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        matches!(self.status, CaseStatus::Passed)
    }

    /// Whether the case did not run (ignored, or not run).
    pub fn skipped(&self) -> bool {
        matches!(self.status, CaseStatus::Ignored { .. })
    }

    /// The failure, if the case failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.status {
            CaseStatus::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CaseStatus {
    /// Every expectation held.
    Passed,
    /// An expectation did not hold, the case overran its deadline, or the
    /// harness could not set the case up.
    Failed(Failure),
    /// Marked `ignore` in the suite and not asked for, or not run.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// Which kind of failure: an expectation that did not hold says something
/// about what was tested (JUnit `<failure>`); the others say the case could
/// not be judged (JUnit `<error>`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// An expectation did not hold.
    Expectation,
    /// The case overran its deadline.
    Deadline,
    /// A step could not run as written (no connection to act on).
    Script,
    /// The case's namespace, sysctls or threads could not be set up.
    Setup,
    /// hangup itself went wrong (a thread panicked or never finished).
    Harness,
    /// The program under test crashed, exited while the case ran, never
    /// became ready, or ignored its stop signal.
    Program,
    /// The run was interrupted (SIGINT, SIGTERM) while the case ran: it was
    /// stopped and torn down, not judged.
    Interrupted,
}

impl FailureKind {
    /// Whether JUnit calls it a failure (something about what was tested:
    /// an expectation, or the program under test) rather than an error.
    pub fn is_failure(self) -> bool {
        matches!(self, FailureKind::Expectation | FailureKind::Program)
    }

    /// Its name, as the JSON report writes it: `expectation`, `deadline`.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Expectation => "expectation",
            FailureKind::Deadline => "deadline",
            FailureKind::Script => "script",
            FailureKind::Setup => "setup",
            FailureKind::Harness => "harness",
            FailureKind::Program => "program",
            FailureKind::Interrupted => "interrupted",
        }
    }
}

/// Why a case failed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Failure {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// One line: where and what.
    pub summary: String,
    /// The step that failed, when a step did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRef>,
    /// Expected against observed, when an expectation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Mismatch>,
    /// When it was noticed, from the start of the case.
    #[serde(rename = "at_ms", with = "millis")]
    #[schemars(with = "f64")]
    pub at: Duration,
    /// The program under test's last output lines, when it is involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<OutputLine>,
}

impl Failure {
    /// A failure of `kind` noticed `at` into the case, of no step.
    pub fn new(kind: FailureKind, summary: String, at: Duration) -> Failure {
        Failure {
            kind,
            summary,
            step: None,
            mismatch: None,
            at,
            output: Vec::new(),
        }
    }
}

/// The report's JSON Schema, as `hangup schema --report` prints it.
pub fn json_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Report<'static>>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema is what this hangup writes: tools that
    /// validate reports read it from the repository.
    #[test]
    fn the_committed_report_schema_is_current() {
        let committed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/hangup-report.schema.json"
        ))
        .expect("schema/hangup-report.schema.json");
        assert!(
            committed == json_schema(),
            "schema/hangup-report.schema.json is out of date with report::format::json_schema(); \
             run `cargo run -p hangup -- schema --report > schema/hangup-report.schema.json` from the \
             repository's root"
        );
    }
}
