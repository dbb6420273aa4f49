//! JUnit XML through `junit-report`, in the dialect the Jenkins xUnit
//! plugin's schema accepts (`schemas/junit-10.xsd`, checked in CI).
//!
//! One `<testsuite>` per suite file, one `<testcase>` per case (classname is
//! the suite, so CI servers group cases the way `cargo test` names them). A
//! failure carries the one-line summary as its message and expected,
//! observed and the timeline as its text; every case's timeline also goes to
//! its `system-out`, where for a passing case it is the evidence of what
//! Linux did.

use std::path::Path;

use junit_report::{Duration, Report, TestCase, TestCaseBuilder, TestSuite};

use super::{CaseReport, CaseStatus, write_atomically};

/// Writes `reports` as JUnit XML to `path`, atomically.
pub fn write_junit(path: &Path, reports: &[CaseReport]) -> std::io::Result<()> {
    let mut suites: Vec<TestSuite> = Vec::new();
    for case in reports {
        let index = match suites.iter().position(|s| s.name() == &case.suite) {
            Some(index) => index,
            None => {
                suites.push(TestSuite::new(&case.suite));
                suites.len() - 1
            }
        };
        suites[index].add_testcase(test_case(case));
    }
    let mut report = Report::new();
    report.add_testsuites(suites);
    let mut xml = Vec::new();
    report.write_xml(&mut xml).map_err(std::io::Error::other)?;
    write_atomically(path, &xml)
}

fn test_case(case: &CaseReport) -> TestCase {
    let time = Duration::try_from(case.duration).unwrap_or(Duration::MAX);
    let mut test = match &case.status {
        CaseStatus::Passed => TestCaseBuilder::success(&case.case, time),
        CaseStatus::Failed(failure) => {
            // An expectation that did not hold, or a program under test
            // that crashed, is a failure; a case that could not be judged
            // (deadline, setup, script, hangup itself) is an error, as JUnit
            // tells them apart.
            let kind = serde_json::to_value(failure.kind)
                .ok()
                .and_then(|v| v.as_str().map(|s| format!("hangup::{s}")))
                .unwrap_or_else(|| "hangup::failure".into());
            let mut test = if failure.kind.is_failure() {
                TestCaseBuilder::failure(&case.case, time, &kind, &failure.summary)
            } else {
                TestCaseBuilder::error(&case.case, time, &kind, &failure.summary)
            };
            // The failure's text: expected, observed, timeline, artifacts.
            test.set_trace(&case.render_failure());
            test
        }
        CaseStatus::Ignored { reason } => {
            TestCaseBuilder::skipped_with_cause(&case.case, "ignored", reason)
        }
    };
    test.set_classname(&case.suite);
    test.set_system_out(&case.timeline.render());
    test.build()
}

/// Writes an upgrade diff as JUnit XML: one `<testcase>` per case of either
/// report, failed when it has a difference not `accepted`, with the
/// differences as its text.
pub fn write_diff_junit(
    path: &Path,
    cases: &[String],
    differences: &[super::diff::Difference],
    accepted: &std::collections::BTreeSet<String>,
) -> std::io::Result<()> {
    let mut suite = TestSuite::new("hangup diff");
    for case in cases {
        let open: Vec<String> = differences
            .iter()
            .filter(|d| &d.case == case && !accepted.contains(&d.to_string()))
            .map(|d| d.what.clone())
            .collect();
        let mut test = if open.is_empty() {
            TestCaseBuilder::success(case, Duration::ZERO)
        } else {
            let mut test = TestCaseBuilder::failure(
                case,
                Duration::ZERO,
                "hangup::difference",
                &format!("{} changed", open.len()),
            );
            test.set_trace(&open.join("\n"));
            test
        };
        test.set_classname("hangup diff");
        suite.add_testcase(test.build());
    }
    let mut report = Report::new();
    report.add_testsuite(suite);
    let mut xml = Vec::new();
    report.write_xml(&mut xml).map_err(std::io::Error::other)?;
    write_atomically(path, &xml)
}
