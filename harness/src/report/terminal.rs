//! A case's failure as people read it on a terminal (and in `case.log`
//! and JUnit's failure text), and the closing line of a run.
//!
//! Every string in a failure came from outside or quotes what did (the
//! case's name from a file name, the step as written, what the program
//! printed), so each is written [`Escaped`]: the failure's lines are the
//! ones written here, and none of its text can add one.

use super::{CaseReport, CaseStatus};
use crate::model::Escaped;
use crate::verdict::millis;

impl CaseReport {
    /// The failure in one line, for test runners that show one line per
    /// failing test (cargo-nextest's JUnit `message`): the case, its
    /// failed step and where it is written, expected and observed; the
    /// summary where no step or no comparison failed. `None` for a case
    /// that did not fail. Escaped, so it stays one line.
    pub fn headline(&self) -> Option<String> {
        let CaseStatus::Failed(failure) = &self.status else {
            return None;
        };
        let mut line = format!("{}: ", Escaped(&self.name));
        if let Some(step) = &failure.step {
            line.push_str(&format!(
                "{} step {} at {}: ",
                step.side,
                step.step.index,
                Escaped(&step.location)
            ));
        }
        match &failure.mismatch {
            Some(mismatch) => line.push_str(&format!(
                "expected {}, observed {}",
                Escaped(&mismatch.expected),
                Escaped(&mismatch.observed)
            )),
            None => line.push_str(&Escaped(&failure.summary).to_string()),
        }
        Some(line)
    }

    /// The failure as people read it: what, expected, observed, the
    /// program's last output, the timeline; empty for a case that did not
    /// fail.
    pub fn render_failure(&self) -> String {
        let CaseStatus::Failed(failure) = &self.status else {
            return String::new();
        };
        let mut out = format!(
            "{} failed: {}\n",
            Escaped(&self.name),
            Escaped(&failure.summary)
        );
        if let Some(step) = &failure.step {
            out.push_str(&format!(
                "  step:     {} step {} at {}: {}\n",
                step.side,
                step.step.index,
                Escaped(&step.location),
                Escaped(&step.source)
            ));
        }
        if let Some(mismatch) = &failure.mismatch {
            out.push_str(&format!(
                "  expected: {}\n  observed: {}\n",
                Escaped(&mismatch.expected),
                Escaped(&mismatch.observed)
            ));
        }
        out.push_str(&format!(
            "  at:       {} into the case\n",
            millis(failure.at)
        ));
        if !failure.output.is_empty() {
            out.push_str("\nthe program's last output:\n");
            for line in &failure.output {
                out.push_str(&format!("  {}\n", Escaped(line)));
            }
        }
        out.push_str("\ntimeline:\n");
        out.push_str(&self.timeline.render());
        if let Some(dir) = &self.artifacts {
            out.push_str(&format!("\nartifacts: {}\n", Escaped(shown(dir).display())));
        }
        out
    }
}

/// The closing line `cargo test`-style runners print: `N passed, N failed`,
/// with `, N skipped` when any were.
pub fn summary_line(reports: &[CaseReport]) -> String {
    let passed = reports.iter().filter(|r| r.passed()).count();
    let skipped = reports.iter().filter(|r| r.skipped()).count();
    let failed = reports.len() - passed - skipped;
    if skipped > 0 {
        format!("{passed} passed, {failed} failed, {skipped} skipped")
    } else {
        format!("{passed} passed, {failed} failed")
    }
}

/// A path as people are shown it: relative to the working directory when
/// it lies below it (`target/hangup/s02::c`, which a CI job's artifact
/// upload and a person in the checkout both find), else whole.
fn shown(path: &std::path::Path) -> std::path::PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(std::path::Path::to_path_buf)
        })
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
}

/// How many skipped cases [`skipped_lines`] names before it counts the
/// rest: a folder of examples skipped on a bare machine stays one screen.
const SKIPPED_NAMED: usize = 20;

/// The skipped cases, each named with why (a missing requirement says
/// what to install), so that a run ending in "0 failed" cannot hide that
/// its suites did not run; `None` when none was skipped.
pub fn skipped_lines(reports: &[CaseReport]) -> Option<String> {
    let skipped: Vec<(&CaseReport, &str)> = reports
        .iter()
        .filter_map(|r| match &r.status {
            CaseStatus::Ignored { reason } => Some((r, reason.as_str())),
            _ => None,
        })
        .collect();
    if skipped.is_empty() {
        return None;
    }
    let mut out = String::from("skipped (not run, so not tested):\n");
    for (report, reason) in skipped.iter().take(SKIPPED_NAMED) {
        out.push_str(&format!(
            "  {}: {}\n",
            Escaped(&report.name),
            Escaped(reason)
        ));
    }
    if skipped.len() > SKIPPED_NAMED {
        out.push_str(&format!("  and {} more\n", skipped.len() - SKIPPED_NAMED));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rstest::rstest;

    use super::*;
    use crate::model::{CallResult, Outcome, Side};
    use crate::record::{EventKind, StepId, Timeline};
    use crate::report::{Failure, FailureKind};
    use crate::suite::SocketCall;
    use crate::verdict::{Mismatch, MismatchKind};

    fn report(status: CaseStatus) -> CaseReport {
        CaseReport::new(
            ("s::c".into(), "s".into(), "c".into(), "s.toml:2:1".into()),
            status,
            Duration::from_millis(3),
            Timeline::default(),
            Duration::ZERO,
        )
    }

    fn failed() -> CaseStatus {
        CaseStatus::Failed(Failure {
            mismatch: Some(Mismatch {
                kind: MismatchKind::Outcome,
                expected: "EOF".into(),
                observed: "ok, 5 bytes".into(),
            }),
            ..Failure::new(
                FailureKind::Expectation,
                "client step 1: expected EOF".into(),
                Duration::from_millis(2),
            )
        })
    }

    #[rstest]
    #[case::all_passed(vec![CaseStatus::Passed, CaseStatus::Passed], "2 passed, 0 failed")]
    #[case::one_failed(vec![CaseStatus::Passed, failed()], "1 passed, 1 failed")]
    #[case::skipped(
        vec![failed(), CaseStatus::Ignored { reason: "slow".into() }],
        "0 passed, 1 failed, 1 skipped"
    )]
    fn the_summary_line_counts_like_cargo_test(
        #[case] statuses: Vec<CaseStatus>,
        #[case] line: &str,
    ) {
        let reports: Vec<CaseReport> = statuses.into_iter().map(report).collect();
        assert_eq!(summary_line(&reports), line);
    }

    #[test]
    fn a_failure_renders_expected_observed_and_timeline() {
        let mut case = report(failed());
        case.timeline.push(
            Duration::from_millis(1),
            Some(Side::Client),
            EventKind::Call {
                step: StepId::at(1),
                call: SocketCall::Recv {
                    max: 65536,
                    timeout: None,
                },
                on: None,
                took: Duration::ZERO,
                busy: Duration::ZERO,
                result: CallResult {
                    outcome: Outcome::Ok,
                    bytes: 5,
                    ready: None,
                    short: None,
                },
            },
        );
        let text = case.render_failure();
        for part in [
            "s::c failed: client step 1",
            "  expected: EOF",
            "  observed: ok, 5 bytes",
            "#1 recv -> 5 B",
        ] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
        assert_eq!(report(CaseStatus::Passed).render_failure(), "");
    }

    #[test]
    fn skipped_cases_are_named_with_why_up_to_a_bound() {
        assert_eq!(skipped_lines(&[report(CaseStatus::Passed)]), None);
        let one = skipped_lines(&[report(CaseStatus::Ignored {
            reason: "needs `uvicorn`\x1b[2J".into(),
        })]);
        assert_eq!(
            one.as_deref(),
            Some("skipped (not run, so not tested):\n  s::c: needs `uvicorn`\\u{1b}[2J\n")
        );
        let many: Vec<CaseReport> = (0..SKIPPED_NAMED + 3)
            .map(|_| {
                report(CaseStatus::Ignored {
                    reason: "slow".into(),
                })
            })
            .collect();
        let text = skipped_lines(&many).unwrap_or_default();
        assert_eq!(text.lines().count(), 1 + SKIPPED_NAMED + 1, "{text}");
        assert!(text.ends_with("  and 3 more\n"), "{text}");
    }

    #[test]
    fn a_failure_in_one_line_says_expected_and_observed() {
        assert_eq!(
            report(failed()).headline().as_deref(),
            Some("s::c: expected EOF, observed ok, 5 bytes")
        );
        let mut odd = report(failed());
        odd.name = "s::c\nforged".into();
        let line = odd.headline().unwrap_or_default();
        assert_eq!(line.lines().count(), 1, "{line:?}");
        assert_eq!(report(CaseStatus::Passed).headline(), None);
    }
}
