//! JUnit XML through `quick-junit`, the writer nextest uses.
//!
//! One `<testsuite>` per suite file, one `<testcase>` per case (classname is
//! the suite, so CI servers group cases the way `cargo test` names them). A
//! failure carries the one-line summary as its message and expected,
//! observed and the timeline as its text; the timeline also goes to the
//! case's `system-out` for passing cases, where it is the evidence of what
//! Linux did. Only attributes the Jenkins xUnit JUnit schema allows are set.

use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{CaseReport, CaseStatus, write_atomically};

/// Writes `reports` as JUnit XML to `path`, atomically.
pub fn write_junit(path: &Path, reports: &[CaseReport]) -> std::io::Result<()> {
    let mut report = Report::new("hangup");
    let mut suites: Vec<TestSuite> = Vec::new();
    for case in reports {
        let index = match suites.iter().position(|s| s.name.as_str() == case.suite) {
            Some(index) => index,
            None => {
                suites.push(TestSuite::new(case.suite.as_str()));
                suites.len() - 1
            }
        };
        let suite = &mut suites[index];
        suite.set_time(suite.time.unwrap_or_default() + case.duration);
        suite.add_test_case(test_case(case));
    }
    let total = suites.iter().filter_map(|s| s.time).sum();
    report.set_time(total);
    report.add_test_suites(suites);
    let xml = report.to_string().map_err(std::io::Error::other)?;
    write_atomically(path, xml.as_bytes())
}

fn test_case(case: &CaseReport) -> TestCase {
    let status = match &case.status {
        CaseStatus::Passed => TestCaseStatus::success(),
        CaseStatus::Failed(failure) => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(failure.summary.as_str());
            status.set_type("hangup::expectation");
            status.set_description(case.render_failure());
            status
        }
        CaseStatus::Ignored { reason } => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(reason.as_str());
            status
        }
    };
    let mut test = TestCase::new(case.case.as_str(), status);
    test.set_classname(case.suite.as_str());
    test.set_time(case.duration);
    test.set_system_out(case.timeline.render());
    test
}
