//! What a run tells people and machines: per-case reports, the timeline of
//! both sides, JUnit XML and JSON.
//!
//! A [`CaseReport`] is built by the runner once a case ends and is never
//! changed after; the writers here only render it. A failing case renders as
//! the step that failed, what was expected, what was observed, and the
//! timeline of calls and states on both sides as two columns, client left
//! and server right, like a packet listing.

pub mod diff;
mod junit;
pub mod soak;
mod timeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use junit::{write_diff_junit, write_junit};

use crate::model::Side;
use crate::record::{Timeline, millis as ms};
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

/// Which kind of failure: an expectation that did not hold says something
/// about what was tested (JUnit `<failure>`); the others say the case could
/// not be judged (JUnit `<error>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
}

/// Why a case failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// One line: where and what.
    pub summary: String,
    /// The step that failed, when a step did.
    pub step: Option<StepRef>,
    /// Expected against observed, when an expectation failed.
    pub mismatch: Option<Mismatch>,
    /// When it was noticed, from the start of the case.
    #[serde(rename = "at_ms", serialize_with = "ms::serialize")]
    pub at: Duration,
    /// The program under test's last output lines, when it is involved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
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
    #[serde(rename = "duration_ms", serialize_with = "ms::serialize")]
    pub duration: Duration,
    /// Calls and states on both sides, in time order.
    pub timeline: Timeline,
    /// How late hangup's own threads ran in the case, at most: a timer
    /// waking late, or a side waiting for a CPU during a timed call (what
    /// timing checks allowed on top of their tolerance).
    #[serde(rename = "lateness_ms", serialize_with = "ms::serialize")]
    pub lateness: Duration,
    /// The case's artifact folder when it was kept.
    pub artifacts: Option<PathBuf>,
    /// Why the artifact folder could not be made or written, if it could
    /// not: reported, never silently dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts_error: Option<String>,
}

impl CaseReport {
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
        if !failure.output.is_empty() {
            out.push_str("\nthe program's last output:\n");
            for line in &failure.output {
                out.push_str(&format!("  {line}\n"));
            }
        }
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
    let skipped = reports.iter().filter(|r| r.skipped()).count();
    let failed = reports.len() - passed - skipped;
    if skipped > 0 {
        format!("{passed} passed, {failed} failed, {skipped} skipped")
    } else {
        format!("{passed} passed, {failed} failed")
    }
}

/// The version of the JSON report's format; raised when a field changes
/// meaning or goes away (new fields may appear without it).
pub const JSON_FORMAT: u32 = 1;

/// The JSON report: every round of a run, every case of each round.
#[derive(Debug, serde::Serialize)]
struct JsonReport<'a> {
    format: u32,
    tool: String,
    rounds: Vec<JsonRound<'a>>,
}

#[derive(Debug, serde::Serialize)]
struct JsonRound<'a> {
    round: usize,
    cases: &'a [CaseReport],
}

/// Writes every round's reports as one JSON document, atomically.
pub fn write_json(path: &Path, rounds: &[Vec<CaseReport>]) -> std::io::Result<()> {
    let report = JsonReport {
        format: JSON_FORMAT,
        tool: format!("hangup {}", env!("CARGO_PKG_VERSION")),
        rounds: rounds
            .iter()
            .enumerate()
            .map(|(i, cases)| JsonRound {
                round: i + 1,
                cases,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    write_atomically(path, &json)
}

/// Where a report being written is named before it is renamed over the
/// report (see [`write_atomically`]).
const TEMP_PREFIX: &str = ".hangup-report-";

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: an interrupted run never leaves a half-written report. The file
/// gets the permissions any new file would (0666 less the umask), and its
/// folder must exist: a report path with a typo is an error, not a new
/// folder.
///
/// Nothing is left beside the report when the process is killed while
/// writing: the file is written unnamed (`O_TMPFILE`), locked, and only
/// then linked under a temporary name and renamed. A temporary name that
/// nobody holds locked is a leftover of a run killed in the instant
/// between the two, and is removed here. (Where the filesystem has no
/// `O_TMPFILE`, the temporary file is named from the start, locked too.)
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the folder {} does not exist", dir.display()),
        ));
    }
    remove_leftovers(dir);
    let (mut file, named) = match unnamed_file(dir) {
        Ok(file) => (file, None),
        Err(_) => {
            use std::os::unix::fs::PermissionsExt;
            let named = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)?;
            let (file, named) = named.into_parts();
            file.set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))?;
            (file, Some(named))
        }
    };
    lock(&file, false)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    let temp = match named {
        Some(named) => named.keep().map_err(|e| e.error)?,
        None => link_under_temp_name(&file, dir)?,
    };
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// An unnamed file in `dir`, mode 0666 less the umask (which `open`
/// applies), or an error where the filesystem does not support it.
fn unnamed_file(dir: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o666),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Gives the unnamed `file` a temporary name in `dir` (a link through
/// `/proc/self/fd`, which needs no privilege, unlike `AT_EMPTY_PATH`;
/// tempfile picks the random name and retries on a collision).
fn link_under_temp_name(file: &std::fs::File, dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    let source = format!("/proc/self/fd/{}", file.as_raw_fd());
    let named = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .make_in(dir, |temp| {
            nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                source.as_str(),
                nix::fcntl::AT_FDCWD,
                temp,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)
        })?;
    let ((), temp) = named.keep().map_err(|e| e.error)?;
    Ok(temp)
}

/// Locks `file` exclusively (`flock`), waiting or not; whether it got the
/// lock. The lock lasts while the file is open and dies with the process,
/// which is what tells a leftover from a report being written.
fn lock(file: &std::fs::File, nonblocking: bool) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let op = nix::libc::LOCK_EX | if nonblocking { nix::libc::LOCK_NB } else { 0 };
    // SAFETY: flock on a file descriptor this function borrows for the
    // call; it touches no memory.
    let rc = unsafe { nix::libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Removes the temporary reports in `dir` that no running writer holds.
/// Best effort: a leftover that cannot be removed is no reason to lose
/// this run's report.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        if lock(&file, true).unwrap_or(false) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The process's umask, as `/proc/self/status` reports it (reading it
/// with umask(2) would have to change it, racing other threads).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::model::CallResult;
    use crate::model::Outcome;
    use crate::model::Socket;
    use crate::model::TcpState;
    use crate::record::{EventKind, StateSource};
    use crate::verdict::MismatchKind;

    fn report(status: CaseStatus) -> CaseReport {
        CaseReport {
            name: "s::c".into(),
            suite: "s".into(),
            case: "c".into(),
            location: "s.toml:2:1".into(),
            status,
            duration: Duration::from_millis(3),
            timeline: Timeline::default(),
            lateness: Duration::ZERO,
            artifacts: None,
            artifacts_error: None,
        }
    }

    fn failed() -> CaseStatus {
        CaseStatus::Failed(Failure {
            kind: FailureKind::Expectation,
            summary: "client step 1: expected EOF".into(),
            step: None,
            mismatch: Some(Mismatch {
                kind: MismatchKind::Outcome,
                expected: "EOF".into(),
                observed: "ok, 5 bytes".into(),
            }),
            at: Duration::from_millis(2),
            output: Vec::new(),
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
            step: None,
            samples: 1,
            on_the_way: false,
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
    fn a_killed_writer_s_leftover_is_removed_and_a_live_one_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        // What a run killed between linking and renaming leaves: a
        // temporary name nobody holds.
        let leftover = dir.path().join(format!("{TEMP_PREFIX}killed"));
        std::fs::write(&leftover, "half a report").expect("leftover");
        // A writer still at work holds its file locked.
        let live = dir.path().join(format!("{TEMP_PREFIX}live"));
        std::fs::write(&live, "being written").expect("live");
        let held = std::fs::File::open(&live).expect("open");
        assert!(lock(&held, true).expect("flock"));
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "not ours").expect("other");
        write_atomically(&dir.path().join("report.xml"), b"<testsuites/>").expect("write");
        assert!(!leftover.exists(), "the leftover stayed");
        assert!(live.exists(), "a live writer's file was removed");
        assert!(other.exists());
        drop(held);
    }

    #[rstest]
    fn the_report_is_unnamed_until_it_is_whole() {
        // Where the filesystem has O_TMPFILE (ext4, tmpfs, xfs, btrfs), the
        // file being written has no name a kill could leave behind.
        let dir = tempfile::tempdir().expect("temp dir");
        let file = unnamed_file(dir.path()).expect("O_TMPFILE in the temp folder");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        let temp = link_under_temp_name(&file, dir.path()).expect("link");
        assert!(
            temp.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(TEMP_PREFIX)
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[rstest]
    fn reports_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out/report.json");
        // A missing folder is an error, not created behind the user's back.
        let err = write_json(&path, &[vec![report(CaseStatus::Passed)]]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        write_json(&path, &[vec![report(CaseStatus::Passed)]]).expect("first write");
        write_json(
            &path,
            &[vec![report(failed())], vec![report(CaseStatus::Passed)]],
        )
        .expect("second write replaces");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("valid JSON");
        assert_eq!(json["format"], JSON_FORMAT);
        assert_eq!(json["rounds"][0]["cases"][0]["status"], "failed");
        assert_eq!(json["rounds"][0]["cases"][0]["kind"], "expectation");
        assert_eq!(json["rounds"][0]["cases"][0]["duration_ms"], 3.0);
        assert_eq!(json["rounds"][1]["round"], 2);
        // The umask decides the permissions, as for any new file.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask(), "{mode:o}");
        // Only the report itself is left: no temporary files beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }
}
