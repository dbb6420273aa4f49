//! What a run tells people and machines: per-case reports, the timeline of
//! both sides, JUnit XML and JSON.
//!
//! A [`CaseReport`] is built by the runner once a case ends and is never
//! changed after; the writers here only render it. A failing case renders as
//! the step that failed, what was expected, what was observed, and the
//! timeline of calls and states on both sides as two columns, client left
//! and server right, like the packet listings in the seeds.

mod junit;
mod timeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use junit::write_junit;
pub use timeline::{Event, EventKind, StateSource, Timeline};

use crate::model::Side;
use crate::verdict::{Mismatch, millis};

/// How one case ended.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum CaseStatus {
    /// Every expectation held.
    Passed,
    /// An expectation did not hold, the case overran its deadline, or the
    /// harness could not set the case up.
    Failed(Failure),
    /// Marked `ignore` in the suite and not asked for.
    Ignored {
        /// The suite's reason.
        reason: String,
    },
}

/// Why a case failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// One line: where and what.
    pub summary: String,
    /// The step that failed, when a step did.
    pub step: Option<StepRef>,
    /// Expected against observed, when an expectation failed.
    pub mismatch: Option<Mismatch>,
    /// When it was noticed, from the start of the case.
    pub at: Duration,
}

/// A step of a script, as reports name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRef {
    /// Whose script.
    pub side: Side,
    /// 1-based position in the script.
    pub index: usize,
    /// file:line:col.
    pub location: String,
    /// The step as written.
    pub source: String,
}

/// Everything known about one case after it ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseReport {
    /// `<suite>::<case>`.
    pub name: String,
    /// The suite (file stem).
    pub suite: String,
    /// The case name.
    pub case: String,
    /// Where the case is written.
    pub location: String,
    /// How it ended.
    #[serde(flatten)]
    pub status: CaseStatus,
    /// Wall time from setup to teardown.
    pub duration: Duration,
    /// Calls and states on both sides, in time order.
    pub timeline: Timeline,
    /// The case's artifact folder when it was kept.
    pub artifacts: Option<PathBuf>,
}

impl CaseReport {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        matches!(self.status, CaseStatus::Passed)
    }

    /// The failure, if the case failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.status {
            CaseStatus::Failed(failure) => Some(failure),
            _ => None,
        }
    }

    /// The failure as people read it: what, expected, observed, timeline.
    pub fn render_failure(&self) -> String {
        let Some(failure) = self.failure() else {
            return String::new();
        };
        let mut out = format!("{} failed: {}\n", self.name, failure.summary);
        if let Some(step) = &failure.step {
            out.push_str(&format!(
                "  step:     {} step {} at {}: {}\n",
                step.side, step.index, step.location, step.source
            ));
        }
        if let Some(mismatch) = &failure.mismatch {
            out.push_str(&format!(
                "  expected: {}\n  observed: {}\n",
                mismatch.expected, mismatch.observed
            ));
        }
        out.push_str(&format!(
            "  at:       {} into the case\n",
            millis(failure.at)
        ));
        out.push_str("\ntimeline:\n");
        out.push_str(&self.timeline.render());
        if let Some(dir) = &self.artifacts {
            out.push_str(&format!("\nartifacts: {}\n", dir.display()));
        }
        out
    }
}

/// The closing line `cargo test`-style runners print: `N passed, N failed`,
/// with `, N skipped` when any were.
pub fn summary_line(reports: &[CaseReport]) -> String {
    let passed = reports.iter().filter(|r| r.passed()).count();
    let skipped = reports
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Ignored { .. }))
        .count();
    let failed = reports.len() - passed - skipped;
    if skipped > 0 {
        format!("{passed} passed, {failed} failed, {skipped} skipped")
    } else {
        format!("{passed} passed, {failed} failed")
    }
}

/// Writes every report as one JSON document, atomically.
pub fn write_json(path: &Path, reports: &[CaseReport]) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(reports).map_err(std::io::Error::other)?;
    write_atomically(path, &json)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: an interrupted run never leaves a half-written report.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::model::CallResult;
    use crate::model::Outcome;
    use crate::model::Socket;
    use crate::model::TcpState;

    fn report(status: CaseStatus) -> CaseReport {
        CaseReport {
            name: "s::c".into(),
            suite: "s".into(),
            case: "c".into(),
            location: "s.toml:2:1".into(),
            status,
            duration: Duration::from_millis(3),
            timeline: Timeline::default(),
            artifacts: None,
        }
    }

    fn failed() -> CaseStatus {
        CaseStatus::Failed(Failure {
            summary: "client step 1: expected EOF".into(),
            step: None,
            mismatch: Some(Mismatch {
                expected: "EOF".into(),
                observed: "ok, 5 bytes".into(),
            }),
            at: Duration::from_millis(2),
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
                step: 1,
                action: "recv".into(),
                took: Duration::ZERO,
                result: CallResult {
                    outcome: Outcome::Ok,
                    bytes: 5,
                    ready: None,
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
    fn the_proxy_gets_a_middle_column_only_when_it_has_events() {
        let mut timeline = Timeline::default();
        let state = |socket: Socket| EventKind::State {
            socket,
            state: TcpState::Established,
            source: StateSource::SockDiag,
        };
        timeline.push(Duration::ZERO, Some(Side::Server), state(Socket::Server));
        assert!(
            !timeline
                .render()
                .lines()
                .next()
                .unwrap_or_default()
                .contains("proxy")
        );
        timeline.push(
            Duration::ZERO,
            Some(Side::Proxy),
            state(Socket::ProxyServer),
        );
        let text = timeline.render();
        let header = text.lines().next().unwrap_or_default();
        assert!(
            header.contains("client") && header.contains("proxy") && header.contains("server"),
            "{header}"
        );
        let proxy_line = text
            .lines()
            .find(|l| l.contains("to server"))
            .unwrap_or_default();
        let server_line = text
            .lines()
            .find(|l| l.contains("[ESTABLISHED]"))
            .unwrap_or_default();
        // Server events sit right of the proxy's.
        assert!(server_line.find('[') > proxy_line.find('['), "{text}");
    }

    #[test]
    fn reports_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out/report.json");
        write_json(&path, &[report(CaseStatus::Passed)]).expect("first write");
        write_json(&path, &[report(failed())]).expect("second write replaces");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("valid JSON");
        assert_eq!(json[0]["status"], "failed");
        // Only the report itself is left: no temporary files beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }
}
