//! JUnit XML through `junit-report`, in the dialect the Jenkins xUnit
//! plugin's schema accepts (`schemas/junit-10.xsd`, checked in CI).
//!
//! One `<testsuite>` per suite file, one `<testcase>` per case (classname is
//! the suite, so CI servers group cases the way `cargo test` names them). A
//! failure carries the one-line summary as its message and expected,
//! observed and the timeline as its text; every case's timeline also goes to
//! its `system-out`, where for a passing case it is the evidence of what
//! Linux did.

use std::collections::BTreeSet;
use std::path::Path;

use junit_report::{Duration, Report, TestCase, TestCaseBuilder, TestSuite};

use super::diff::Difference;
use super::{CaseReport, CaseStatus, write_atomically};
use crate::model::escaped::write_escape;

/// What a comparison of two runs found, for JUnit: the cases compared
/// (a run's version pairs, or `hangup diff`'s cases), the differences
/// found, the noise set aside, and the differences accepted.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    /// The names of the cases compared: one testcase each.
    pub cases: &'a [String],
    /// The differences, each named by its case.
    pub differences: &'a [Difference],
    /// The differences set aside as noise, each named by its case.
    pub noise: &'a [Difference],
    /// The differences that fail nothing.
    pub accepted: &'a BTreeSet<String>,
}

/// What a passing case's `<testcase>` carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Passing {
    /// Its timeline in `system-out`: the evidence of what Linux did.
    #[default]
    Timeline,
    /// Nothing but its name and time: 2 to 4 KB less a case, for CI views
    /// that store every report (`hangup run --junit-brief`,
    /// `HANGUP_JUNIT_BRIEF=1`). Failing and skipped cases are as always.
    Brief,
}

/// Writes `reports` as JUnit XML to `path`, atomically; with `compared`,
/// also a `<testsuite>` of the versions compared (see
/// [`write_diff_junit`]).
pub fn write_junit(
    path: &Path,
    reports: &[CaseReport],
    compared: Option<Compared<'_>>,
    passing: Passing,
) -> std::io::Result<()> {
    write_atomically(path, &junit_xml(reports, compared, passing)?)
}

/// The JUnit XML [`write_junit`] writes.
pub fn junit_xml(
    reports: &[CaseReport],
    compared: Option<Compared<'_>>,
    passing: Passing,
) -> std::io::Result<Vec<u8>> {
    let mut suites: Vec<TestSuite> = Vec::new();
    for case in reports {
        let suite = attribute(&case.suite);
        let index = match suites.iter().position(|s| s.name() == &suite) {
            Some(index) => index,
            None => {
                suites.push(TestSuite::new(&suite));
                suites.len() - 1
            }
        };
        suites[index].add_testcase(test_case(case, passing));
    }
    if let Some(compared) = compared {
        suites.push(differences_suite("hangup versions", compared));
    }
    let mut report = Report::new();
    report.add_testsuites(suites);
    let mut xml = Vec::new();
    report.write_xml(&mut xml).map_err(std::io::Error::other)?;
    Ok(xml)
}

fn test_case(case: &CaseReport, passing: Passing) -> TestCase {
    let time = Duration::try_from(case.duration).unwrap_or(Duration::MAX);
    let name = attribute(&case.case);
    let mut test = match &case.status {
        CaseStatus::Passed => TestCaseBuilder::success(&name, time),
        CaseStatus::Failed(failure) => {
            // An expectation that did not hold, or a program under test
            // that crashed, is a failure; a case that could not be judged
            // (deadline, setup, script, hangup itself) is an error, as JUnit
            // tells them apart.
            let kind = format!("hangup::{}", failure.kind.name());
            let summary = attribute(&failure.summary);
            let mut test = if failure.kind.is_failure() {
                TestCaseBuilder::failure(&name, time, &kind, &summary)
            } else {
                TestCaseBuilder::error(&name, time, &kind, &summary)
            };
            // The failure's text: expected, observed, timeline, artifacts.
            test.set_trace(&cdata(&case.render_failure()));
            test
        }
        CaseStatus::Ignored { reason } => {
            TestCaseBuilder::skipped_with_cause(&name, "ignored", &attribute(reason))
        }
    };
    test.set_classname(&attribute(&case.suite));
    if !(case.passed() && passing == Passing::Brief) {
        test.set_system_out(&cdata(&case.timeline.render()));
    }
    test.build()
}

/// Text for an attribute (or any XML text): the characters XML 1.0 cannot
/// hold at all (controls other than tab, newline and carriage return;
/// U+FFFE, U+FFFF) shown as escapes like `\u{7}`, as the terminal shows
/// them ([`write_escape`]). The XML writer escapes `<`, `&` and quotes.
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let allowed =
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}');
        if allowed {
            out.push(c);
        } else {
            // Writing to a String cannot fail.
            let _ = write_escape(&mut out, c);
        }
    }
    out
}

/// Text for a CDATA section (`junit-report` writes failure texts and
/// `system-out` as CDATA): [`attribute`]'s escapes, and every `]]>`, which
/// would end the section early and let what follows be read as elements,
/// split across two sections so it reads back as written.
fn cdata(text: &str) -> String {
    attribute(text).replace("]]>", "]]]]><![CDATA[>")
}

/// Writes an upgrade diff as JUnit XML: one `<testcase>` per case of either
/// report, failed when it has a difference not accepted, with the
/// differences as its text.
pub fn write_diff_junit(path: &Path, compared: Compared<'_>) -> std::io::Result<()> {
    let mut report = Report::new();
    report.add_testsuite(differences_suite("hangup diff", compared));
    let mut xml = Vec::new();
    report.write_xml(&mut xml).map_err(std::io::Error::other)?;
    write_atomically(path, &xml)
}

/// A `<testsuite>` named `title` of one `<testcase>` per compared case,
/// failed (`hangup::difference`) when it has a difference not accepted,
/// which its text lists; the noise set aside in it, if any, is its
/// `system-out`.
fn differences_suite(title: &str, compared: Compared<'_>) -> TestSuite {
    let mut suite = TestSuite::new(title);
    for case in compared.cases {
        let open: Vec<String> = compared
            .differences
            .iter()
            .filter(|d| &d.case == case)
            .map(ToString::to_string)
            .filter(|line| !compared.accepted.contains(line))
            .collect();
        let noise: Vec<String> = compared
            .noise
            .iter()
            .filter(|d| &d.case == case)
            .map(ToString::to_string)
            .collect();
        let name = attribute(case);
        let mut test = if open.is_empty() {
            TestCaseBuilder::success(&name, Duration::ZERO)
        } else {
            let mut test = TestCaseBuilder::failure(
                &name,
                Duration::ZERO,
                "hangup::difference",
                &format!("{} changed", open.len()),
            );
            test.set_trace(&cdata(&open.join("\n")));
            test
        };
        test.set_classname(title);
        if !noise.is_empty() {
            test.set_system_out(&cdata(&format!(
                "set aside as noise (the base's own runs differ there too):\n{}",
                noise.join("\n")
            )));
        }
        suite.add_testcase(test.build());
    }
    suite
}
