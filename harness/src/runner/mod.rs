//! Scheduling cases: one fresh OS thread per case, a deadline each, in
//! parallel; as libtest-mimic trials under `cargo test`, or for the CLI.
//!
//! # The threading invariant
//!
//! Network namespaces belong to threads. Every case runs on a thread made
//! for it alone ([`run_case`]), which unshares its own network namespace,
//! starts one thread per side (threads inherit the namespace of the thread
//! that creates them), and exits when the case ends, taking the namespace
//! (and any TIME_WAIT leftovers) with it. The thread a trial is called on (libtest-mimic's worker, or the
//! main thread with `--test-threads=1`) is never moved into a namespace.
//! When not root, the whole process entered a user namespace in `main`
//! before any thread existed (see [`crate::sandbox`]).

mod case;
mod interrupt;
mod reaper;
mod suite_program;
mod trials;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use trials::{test_main, test_main_with};

use crate::record::{Recorder, Timeline};
use crate::report::{CaseReport, CaseStatus, Failure, FailureKind};
use crate::suite::{Case, Suite};

/// Choices that apply to every case of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep every case's artifact folder, not only failing ones
    /// (`--keep-artifacts`, or `HANGUP_KEEP_ARTIFACTS=1`).
    pub keep_artifacts: bool,
    /// Where artifact folders go (`HANGUP_ARTIFACTS`); the system temp dir
    /// by default.
    pub artifact_root: Option<PathBuf>,
    /// The least timing tolerance floor for every case
    /// (`HANGUP_TOLERANCE_FLOOR`, e.g. `200ms`), for slow CI machines.
    pub tolerance_floor: Option<Duration>,
    /// The least timing tolerance percentage for every case
    /// (`HANGUP_TOLERANCE_PERCENT`).
    pub tolerance_percent: Option<u32>,
    /// How long a case runs before [`Progress::slow`] hears of it;
    /// [`SLOW_NOTICE`] when not set.
    pub slow_notice: Option<Duration>,
    /// Asks the run to stop (the CLI arms it for SIGINT and SIGTERM).
    pub stop: StopSignal,
    /// Capture no packets (`--no-capture`, `HANGUP_NO_CAPTURE=1`), except
    /// in cases that check them (`sent`, `first`).
    pub no_capture: bool,
}

/// A request to stop a run: once set, no case starts (each is reported as
/// not run), and a running case is stopped, torn down and reported as
/// interrupted. Unarmed (the default), it is never set and costs nothing;
/// armed, each running case looks at it every [`StopSignal::POLL`].
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Option<Arc<AtomicBool>>);

impl StopSignal {
    /// How often a running case looks: a signal handler can only set a
    /// flag, not wake a condition variable.
    pub const POLL: Duration = Duration::from_millis(100);

    /// An armed signal and the flag that sets it (for
    /// `signal_hook::flag::register`).
    pub fn armed() -> (StopSignal, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (StopSignal(Some(Arc::clone(&flag))), flag)
    }

    /// Whether the run was asked to stop.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Whether it can ever be set.
    pub fn is_armed(&self) -> bool {
        self.0.is_some()
    }
}

impl RunOptions {
    /// Options from the environment (the only way to reach every test
    /// binary under `cargo test`); a value that does not parse is an error
    /// naming the variable, not silently ignored.
    pub fn from_env() -> Result<RunOptions, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let tolerance_floor = match var("HANGUP_TOLERANCE_FLOOR") {
            Some(v) => Some(
                humantime::parse_duration(&v)
                    .ok()
                    // The suite limit: a floor near u64::MAX seconds would
                    // overflow the tolerance sums.
                    .filter(|floor| *floor <= crate::suite::limits::MAX_DURATION)
                    .ok_or_else(|| {
                        format!(
                            "HANGUP_TOLERANCE_FLOOR: expected a duration like \"200ms\" of at most \"{}\", found \"{v}\"",
                            crate::suite::limits::MAX_DURATION_WORDS
                        )
                    })?,
            ),
            None => None,
        };
        let tolerance_percent = match var("HANGUP_TOLERANCE_PERCENT") {
            Some(v) => Some(v.parse::<u32>().map_err(|_| {
                format!(
                    "HANGUP_TOLERANCE_PERCENT: expected a whole number of percent, found \"{v}\""
                )
            })?),
            None => None,
        };
        Ok(RunOptions {
            keep_artifacts: var("HANGUP_KEEP_ARTIFACTS").is_some_and(|v| v != "0"),
            artifact_root: std::env::var_os("HANGUP_ARTIFACTS").map(PathBuf::from),
            tolerance_floor,
            tolerance_percent,
            slow_notice: None,
            stop: StopSignal::default(),
            no_capture: var("HANGUP_NO_CAPTURE").is_some_and(|v| v != "0"),
        })
    }
}

/// Runs one case on a fresh thread in a fresh network namespace and reports
/// how it went. Never panics on what the suite or the kernel does; a case
/// thread that dies or hangs becomes a failed case.
///
/// The case's artifact folder is made on first use (see
/// [`Recorder::artifacts`]): by whatever streams into it during the case,
/// or here at the end to hold the case's log, timeline and JSON report when
/// the case failed or `keep_artifacts` asks for them. A passing case's
/// folder, if something made it, is removed.
pub fn run_case(suite: &Suite, case: &Case, options: &RunOptions) -> CaseReport {
    let started = Instant::now();
    let name = case.test_name(suite);
    // The case thread owns its copy; the tolerance is the suite's, widened
    // where the run asks (HANGUP_TOLERANCE_*).
    let mut owned = case.clone();
    owned.tolerance = owned
        .tolerance
        .widened(options.tolerance_floor, options.tolerance_percent);
    let root = options
        .artifact_root
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let prefix = format!(
        "hangup-{}-{}-",
        suite.name.replace("::", "-"),
        case.name.replace("::", "-")
    );
    let record = Recorder::new(root, prefix);
    // A case that shares its suite's program waits for its turn with it
    // (the program starts with the suite's first such case).
    let mut program = case
        .shares_program()
        .then(|| suite_program::for_suite(suite, options))
        .flatten();
    let owned_tolerance = owned.tolerance;
    let (status, timeline, lateness) = loop {
        let turn = program.as_ref().map(|p| p.turn());
        // A sweep's cell that finds the program ended (an earlier cell
        // crashed it) gets a fresh one, so the rest of the matrix still
        // runs; any other case runs against the ended one and fails
        // saying so. Checked holding the turn: no case runs in between.
        if let Some(ended) = program
            .as_ref()
            .filter(|p| case.cell.is_some() && p.has_exited())
        {
            let ended = std::sync::Arc::clone(ended);
            drop(turn);
            suite_program::restart(suite, options, &ended);
            program = suite_program::for_suite(suite, options);
            continue;
        }
        let ran = case::run(
            owned.clone(),
            record.clone(),
            options.stop.clone(),
            case::Artifacts {
                keep: options.keep_artifacts,
                capture: !options.no_capture || case.checks_packets(),
            },
            program.as_deref(),
        );
        drop(turn);
        break ran;
    };
    let mut report = CaseReport {
        name,
        suite: suite.name.clone(),
        case: case.name.clone(),
        location: case.location.to_string(),
        cell: case.cell.clone(),
        version: case.version.as_ref().map(|v| v.of.clone()),
        status,
        duration: started.elapsed(),
        timeline,
        lateness,
        tolerance: Some(owned_tolerance),
        masks: case
            .program
            .as_ref()
            .map(|p| p.masks.clone())
            .unwrap_or_default(),
        artifacts: None,
        artifacts_error: None,
    };
    match fill_artifacts(&record, &report, options) {
        Ok(kept) => report.artifacts = kept,
        Err(err) => report.artifacts_error = Some(err),
    }
    report
}

/// Writes the case's log, timeline and JSON report into its folder when it
/// failed or when asked, and returns the folder; removes a passing case's
/// folder otherwise.
fn fill_artifacts(
    record: &Recorder,
    report: &CaseReport,
    options: &RunOptions,
) -> Result<Option<PathBuf>, String> {
    let keep = options.keep_artifacts || !report.passed();
    if !keep {
        if let Some(dir) = record.artifacts_made() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("failed to remove {}: {e}", dir.display()))?;
        }
        return Ok(None);
    }
    let dir = record.artifacts()?;
    let write = |file: &str, bytes: &[u8]| {
        std::fs::write(dir.join(file), bytes)
            .map_err(|e| format!("failed to write {}: {e}", dir.join(file).display()))
    };
    write("timeline.txt", report.timeline.render().as_bytes())?;
    let log = match report.failure() {
        Some(_) => report.render_failure(),
        None => format!("{} passed\n", crate::model::Escaped(&report.name)),
    };
    write("case.log", log.as_bytes())?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| e.to_string())?;
    write("report.json", &json)?;
    crate::record::leftovers::unmark(dir);
    Ok(Some(dir.to_path_buf()))
}

/// What the caller of [`run_all`] hears while cases run. A closure over
/// `&CaseReport` is one (it hears only finished cases).
pub trait Progress: Sync {
    /// A case begins (or is about to be skipped).
    fn started(&self, _name: &str) {}
    /// A case finished (or was skipped).
    fn finished(&self, report: &CaseReport);
    /// A case has been running for `elapsed`: told once for every
    /// [`SLOW_NOTICE`] (or [`RunOptions::slow_notice`]) it runs, as
    /// nextest's slow-test notice does.
    fn slow(&self, _name: &str, _elapsed: Duration) {}
}

impl<F: Fn(&CaseReport) + Sync> Progress for F {
    fn finished(&self, report: &CaseReport) {
        self(report)
    }
}

/// How many cases run at once unless asked otherwise: twice the cores,
/// since cases spend most of their time waiting on timers.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// How long a case runs before [`Progress::slow`] hears of it (and again
/// after each further period).
pub const SLOW_NOTICE: Duration = Duration::from_secs(5);

/// Runs every case of `suites` on `jobs` worker threads (each case on its
/// own fresh thread); ignored cases are reported as skipped unless
/// `include_ignored`. `progress` hears of each report as it finishes and
/// of cases that run long.
pub fn run_all(
    suites: &[Suite],
    options: &RunOptions,
    jobs: usize,
    include_ignored: bool,
    progress: &dyn Progress,
) -> Vec<CaseReport> {
    let cases: Vec<(&Suite, &Case)> = suites
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| (s, c)))
        .collect();
    // A unit is what one worker runs in a row: a case, or every case that
    // shares its suite's program (they run one at a time anyway, and the
    // program stops after the last of them).
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut shared_unit: HashMap<*const Suite, usize> = HashMap::new();
    for (i, (suite, case)) in cases.iter().enumerate() {
        if case.shares_program() {
            let unit = *shared_unit
                .entry(*suite as *const Suite)
                .or_insert_with(|| {
                    units.push(Vec::new());
                    units.len() - 1
                });
            units[unit].push(i);
        } else {
            units.push(vec![i]);
        }
    }
    // Longest expected first, so the run's wall time approaches its longest
    // unit rather than ending on a long one started last; reports still
    // come back in file order.
    units.sort_by_key(|unit| {
        std::cmp::Reverse(
            unit.iter()
                .map(|&i| cases[i].1.expected_duration())
                .sum::<Duration>(),
        )
    });
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<CaseReport>>> = Mutex::new(vec![None; cases.len()]);
    let workers = jobs.max(1).min(units.len().max(1));
    // Per worker: the case it runs, since when, and how many notices it had.
    let running: Mutex<Vec<Option<(String, Instant, u32)>>> = Mutex::new(vec![None; workers]);
    // Set when every worker is done; wakes the watcher at once.
    let finished = (Mutex::new(false), std::sync::Condvar::new());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (units, cases, next, done, running) = (&units, &cases, &next, &done, &running);
                scope.spawn(move || {
                    while let Some(unit) = units.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let mut reports = Vec::with_capacity(unit.len());
                        for &i in unit {
                            let (suite, case) = cases[i];
                            let name = case.test_name(suite);
                            progress.started(&name);
                            if let Ok(mut running) = running.lock() {
                                running[worker] = Some((name, Instant::now(), 0));
                            }
                            let report = match (&case.ignore, include_ignored) {
                                _ if options.stop.is_set() => {
                                    ignored(suite, case, "not run: the run was interrupted")
                                }
                                (Some(reason), false) => ignored(suite, case, reason),
                                _ => guarded(suite, case, || run_case(suite, case, options)),
                            };
                            if let Ok(mut running) = running.lock() {
                                running[worker] = None;
                            }
                            // The last case of a shared program's unit is told
                            // once the program stopped: its stop may fail it.
                            if reports.len() + 1 < unit.len() || !case.shares_program() {
                                progress.finished(&report);
                            }
                            reports.push((i, report));
                        }
                        if let Some(&(i, _)) =
                            reports.last().filter(|_| cases[unit[0]].1.shares_program())
                        {
                            let keep =
                                options.keep_artifacts || reports.iter().any(|(_, r)| !r.passed());
                            let stopped = suite_program::stop(cases[i].0, keep);
                            if let Some((_, last)) = reports.last_mut() {
                                if let Some(stopped) = stopped.filter(|s| s.killed) {
                                    fail_for_stop(last, cases[i].1, stopped.tail);
                                }
                                progress.finished(last);
                            }
                        }
                        if let Ok(mut done) = done.lock() {
                            for (i, report) in reports {
                                done[i] = Some(report);
                            }
                        }
                    }
                })
            })
            .collect();
        let notice = options.slow_notice.unwrap_or(SLOW_NOTICE);
        let (finished, running) = (&finished, &running);
        scope.spawn(move || {
            let tick = (notice / 10).min(Duration::from_millis(100));
            let mut done = finished.0.lock().unwrap_or_else(|p| p.into_inner());
            while !*done {
                done = finished
                    .1
                    .wait_timeout(done, tick)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                let Ok(mut running) = running.lock() else {
                    return;
                };
                for (name, since, told) in running.iter_mut().flatten() {
                    let elapsed = since.elapsed();
                    if elapsed >= notice * (*told + 1) {
                        *told += 1;
                        progress.slow(name, elapsed);
                    }
                }
            }
        });
        for handle in handles {
            // Cases run guarded; a worker that panicked anyway (in
            // `progress`) lost only what it had not yet reported.
            let _ = handle.join();
        }
        *finished.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        finished.1.notify_all();
    });
    // Every folder of the run is kept or removed by now.
    crate::record::leftovers::release();
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// The suite's program ignored its stop signal after the suite's last case
/// (`last`): that case fails with it, unless it already failed.
fn fail_for_stop(last: &mut CaseReport, case: &Case, tail: Vec<crate::record::OutputLine>) {
    if !last.passed() {
        return;
    }
    let Some(spec) = &case.program else {
        return;
    };
    last.status = CaseStatus::Failed(Failure {
        kind: FailureKind::Program,
        summary: format!(
            "the suite's program ignored {} for {} after the suite's last case and was killed",
            spec.stop,
            crate::verdict::millis(spec.grace)
        ),
        step: None,
        mismatch: None,
        at: last.duration,
        output: tail,
    });
}

/// Stops every program still serving a whole suite (`scope = "suite"`)
/// that [`run_case`] started, and lets go of the run's hold on its artifact
/// folder (see `record::leftovers`); for callers that run cases one by one
/// ([`run_all`] and [`test_main`] do both themselves). Says which programs
/// had to be killed because they ignored their stop signal.
pub fn stop_suite_programs() -> Vec<String> {
    let killed = suite_program::stop_all(false);
    crate::record::leftovers::release();
    killed
}

/// Runs `run`, turning a panic in hangup's own code into the case's
/// failure: a bug in one case's bookkeeping must not take the worker, and
/// with it the cases it would have run next, out of the run's reports.
fn guarded(suite: &Suite, case: &Case, run: impl FnOnce() -> CaseReport) -> CaseReport {
    let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(report) => return report,
        Err(payload) => payload,
    };
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let mut report = ignored(suite, case, "");
    report.status = CaseStatus::Failed(Failure {
        kind: FailureKind::Harness,
        summary: format!("hangup panicked while running the case (a hangup bug): {what}"),
        step: None,
        mismatch: None,
        at: Duration::ZERO,
        output: Vec::new(),
    });
    report
}

fn ignored(suite: &Suite, case: &Case, reason: &str) -> CaseReport {
    CaseReport {
        name: case.test_name(suite),
        suite: suite.name.clone(),
        case: case.name.clone(),
        location: case.location.to_string(),
        cell: case.cell.clone(),
        version: case.version.as_ref().map(|v| v.of.clone()),
        status: CaseStatus::Ignored {
            reason: reason.to_string(),
        },
        duration: Duration::ZERO,
        timeline: Timeline::default(),
        lateness: Duration::ZERO,
        tolerance: None,
        masks: Vec::new(),
        artifacts: None,
        artifacts_error: None,
    }
}

/// File descriptors one running case may hold at once, generously: its
/// namespace, a sock_diag socket, each side's sockets, a program's pipes,
/// and the report pipe of a program being started.
const FDS_PER_CASE: u64 = 32;

/// File descriptors the run needs besides its cases (reports, suites,
/// stdio).
const FDS_BASE: u64 = 64;

/// Makes sure `jobs` cases can run at once without the harness running out
/// of file descriptors: raises the soft `RLIMIT_NOFILE` as far as needed
/// (never beyond the hard limit, and no further than needed, since
/// programs under test inherit it), or says what to change. Without this a
/// low limit shows as every case failing with EMFILE, which is not what
/// the suite tested.
pub fn ensure_file_descriptors(jobs: usize) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = FDS_BASE + FDS_PER_CASE * jobs as u64;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the file descriptor limit: {e}"))?;
    if soft >= need {
        return Ok(());
    }
    if hard >= need {
        return setrlimit(Resource::RLIMIT_NOFILE, need, hard)
            .map_err(|e| format!("cannot raise the file descriptor limit to {need}: {e}"));
    }
    let cases = if jobs == 1 {
        "1 case".to_owned()
    } else {
        format!("{jobs} cases")
    };
    Err(format!(
        "running {cases} at once needs about {need} file descriptors, and this process may \
         open only {hard} (RLIMIT_NOFILE): raise it (`ulimit -n {need}`) or run fewer at once \
         (`-j`)"
    ))
}

/// What a run does with a case whose program needs a command this machine
/// does not have (its `requires`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirements {
    /// Skip it, saying what is missing and how to install it: a newcomer
    /// runs the bundled suites on a bare machine and sees what runs.
    SkipMissing,
    /// Run it, so that it fails when its program cannot start: where a
    /// skipped case would pass a run that tested nothing (CI).
    Enforced,
}

impl Requirements {
    /// [`Requirements::Enforced`] when asked (`hangup run --require`), under
    /// `CI` (CI installs what the suites need), or with `HANGUP_REQUIRE=1`
    /// (the same for `cargo test`); else skipping.
    pub fn from_env(require: bool) -> Requirements {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        if require || set("CI") || set("HANGUP_REQUIRE") {
            Requirements::Enforced
        } else {
            Requirements::SkipMissing
        }
    }
}

/// Loads every suite under `paths`; returns the suites that are valid and
/// the errors of the rest, each already rendered with file:line:col.
pub fn load_suites(
    paths: &[PathBuf],
    requirements: Requirements,
) -> (Vec<Suite>, Vec<crate::suite::SuiteError>) {
    let files = match crate::suite::discover(paths) {
        Ok(files) => files,
        Err(err) => return (Vec::new(), vec![err]),
    };
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match crate::suite::load_named(&file) {
            Ok(mut suite) => {
                if requirements == Requirements::SkipMissing {
                    skip_what_cannot_run_here(&mut suite);
                }
                suites.push(suite)
            }
            Err(err) => errors.push(err),
        }
    }
    (suites, errors)
}

/// Marks ignored the cases whose program needs a command this machine does
/// not have, saying which and how to install it. (When
/// [`Requirements::Enforced`] nothing is skipped, and a missing command
/// fails the case when the program cannot start.)
fn skip_what_cannot_run_here(suite: &mut Suite) {
    for case in &mut suite.cases {
        let Some(program) = &case.program else {
            continue;
        };
        let Some(missing) = program.missing_requirement() else {
            continue;
        };
        if case.ignore.is_none() {
            let install = program
                .install
                .as_ref()
                .map(|how| format!("; install it with `{how}`"))
                .unwrap_or_default();
            case.ignore = Some(format!(
                "needs `{missing}`, which is not installed here{install}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::suite::parse_suite;

    const SUITE: &str = r#"
[[case]]
name = "passes"
client = [{ connect = 8080, expect = "ECONNREFUSED" }]

[[case]]
name = "fails"
client = [{ connect = 8080, expect = "ok" }]

[[case]]
name = "skipped"
ignore = "too slow for every run"
client = [{ connect = 8080, expect = "ECONNREFUSED" }]
"#;

    fn suite() -> Suite {
        parse_suite(Path::new("runner.toml"), SUITE.as_bytes()).expect("valid suite")
    }

    fn statuses(reports: &[CaseReport]) -> Vec<(String, &'static str)> {
        reports
            .iter()
            .map(|r| {
                let word = match r.status {
                    CaseStatus::Passed => "passed",
                    CaseStatus::Failed(_) => "failed",
                    CaseStatus::Ignored { .. } => "ignored",
                };
                (r.case.clone(), word)
            })
            .collect()
    }

    #[test]
    fn run_all_keeps_file_order_and_skips_ignored_cases_unless_asked() {
        let root = tempfile::tempdir().expect("temp dir");
        let options = RunOptions {
            artifact_root: Some(root.path().into()),
            ..RunOptions::default()
        };
        let seen = Mutex::new(0);
        let count = |_: &CaseReport| *seen.lock().expect("lock") += 1;
        let reports = run_all(&[suite()], &options, 2, false, &count);
        assert_eq!(
            statuses(&reports),
            [
                ("passes".into(), "passed"),
                ("fails".into(), "failed"),
                ("skipped".into(), "ignored")
            ]
        );
        assert_eq!(*seen.lock().expect("lock"), 3);
        let reports = run_all(&[suite()], &options, 2, true, &|_: &CaseReport| {});
        assert_eq!(statuses(&reports)[2], ("skipped".into(), "passed"));
    }

    #[test]
    fn a_panic_in_a_case_is_that_case_s_failure() {
        let suite = suite();
        let report = guarded(&suite, &suite.cases[0], || panic!("bookkeeping went wrong"));
        let failure = report.failure().expect("failed");
        assert_eq!(failure.kind, FailureKind::Harness);
        assert!(
            failure
                .summary
                .ends_with("(a hangup bug): bookkeeping went wrong"),
            "{}",
            failure.summary
        );
        assert_eq!(report.case, "passes");
    }

    /// Interrupted before they start, cases are reported as not run, not
    /// dropped from the report.
    #[test]
    fn cases_after_a_stop_are_reported_not_run() {
        let (stop, flag) = StopSignal::armed();
        flag.store(true, Ordering::SeqCst);
        let options = RunOptions {
            stop,
            ..RunOptions::default()
        };
        let reports = run_all(&[suite()], &options, 1, true, &|_: &CaseReport| {});
        assert_eq!(reports.len(), 3);
        for report in reports {
            match report.status {
                CaseStatus::Ignored { reason } => {
                    assert_eq!(reason, "not run: the run was interrupted")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn one_case(text: &str) -> CaseReport {
        let suite = parse_suite(Path::new("sides.toml"), text.as_bytes()).expect("valid suite");
        let root = tempfile::tempdir().expect("temp dir");
        let options = RunOptions {
            artifact_root: Some(root.path().into()),
            ..RunOptions::default()
        };
        run_case(&suite, &suite.cases[0], &options)
    }

    /// A `within` check that fails shows the way it went, not only where it
    /// ended: its first sample and every change go on the record, marked
    /// as on the way; the last reading is the evidence.
    #[test]
    fn a_failed_within_check_records_the_states_on_the_way() {
        let report = one_case(
            r#"
[[case]]
name = "never_gone"
server = [{ listen = 8080 }, { mark = "listening" }, "accept", { mark = "accepted" }, { recv = true, expect = "EOF" }]
client = [
  { wait = "listening" }, { connect = 8080 }, { wait = "accepted" },
  { state = { client = "gone" }, within = "200ms" },
]
"#,
        );
        assert!(report.failure().is_some(), "client was never gone");
        let readings: Vec<(bool, u32)> = report
            .timeline
            .events
            .iter()
            .filter_map(|e| match e.kind {
                crate::record::EventKind::State {
                    on_the_way,
                    samples,
                    ..
                } => Some((on_the_way, samples)),
                _ => None,
            })
            .collect();
        assert_eq!(readings.first(), Some(&(true, 1)), "{readings:?}");
        let (on_the_way, samples) = *readings.last().expect("a last reading");
        assert!(!on_the_way && samples > 1, "{readings:?}");
        assert!(
            report
                .timeline
                .render()
                .contains("[ESTABLISHED] (on the way)")
        );
    }

    /// A third side's synchronous work (building a 200 MB payload) once
    /// delayed the other sides' calls, which shared its thread. Each side
    /// now has its own: the server's byte at 10 ms reaches the client's
    /// 50 ms read in time.
    #[test]
    fn a_third_side_s_busy_work_does_not_change_another_side_s_outcome() {
        let report = one_case(
            r#"
[[case]]
name = "stall"
tolerance = { floor = "35ms", percent = 0 }
server = [
  { listen = 8080 },
  { mark = "listening" },
  "accept",
  { sleep = "10ms" },
  { send = "x" },
  { wait = "read" },
]
client = [
  { wait = "listening" },
  { connect = 8080 },
  { mark = "connected" },
  { recv = true, timeout = "50ms", expect = "ok", bytes = 1, after = "10ms" },
  { mark = "read" },
]
proxy = [
  { wait = "connected" },
  { listen = 9090 },
  { connect = 9090 },
  { send = 200_000_000, on = "server", timeout = "1ms", expect = ["ok", "EAGAIN"] },
]
"#,
        );
        assert!(report.passed(), "{}", report.render_failure());
    }

    /// When one side fails, a side blocked in a call nobody will answer is
    /// woken at once, not at the deadline.
    #[test]
    fn a_failure_ends_the_case_without_waiting_for_blocked_sides() {
        let report = one_case(
            r#"
[[case]]
name = "fails_fast"
deadline = "20s"
server = [{ listen = 8080 }, { mark = "listening" }, "accept", "recv"]
client = [
  { wait = "listening" },
  { connect = 8080 },
  { sleep = "20ms" },
  { connect = 9999, expect = "ok" },
]
"#,
        );
        let failure = report.failure().expect("the client's expectation fails");
        assert!(
            failure.summary.contains("ECONNREFUSED"),
            "{}",
            failure.summary
        );
        assert!(
            report.duration < Duration::from_secs(2),
            "{:?}",
            report.duration
        );
        let timeline = report.timeline.render();
        assert!(
            timeline.contains("#4 recv: still in flight when the case ended"),
            "{timeline}"
        );
        // What the other side was doing when the client's failure stopped
        // the case is part of the report.
        assert!(
            timeline.contains("server was at step 4 `\"recv\"` (sides.toml:5:")
                && timeline.contains("a call in flight for")
                && timeline.contains("when the case stopped"),
            "{timeline}"
        );
    }

    #[test]
    fn the_longest_expected_case_starts_first_and_reports_keep_file_order() {
        let suite = parse_suite(
            Path::new("order.toml"),
            br#"
[[case]]
name = "short"
client = [{ connect = 8080, expect = "ECONNREFUSED" }]

[[case]]
name = "long"
client = [{ sleep = "50ms" }, { connect = 8080, expect = "ECONNREFUSED" }]
"#,
        )
        .expect("valid suite");
        let root = tempfile::tempdir().expect("temp dir");
        let options = RunOptions {
            artifact_root: Some(root.path().into()),
            ..RunOptions::default()
        };
        let finished = Mutex::new(Vec::new());
        let reports = run_all(&[suite], &options, 1, false, &|r: &CaseReport| {
            finished.lock().expect("lock").push(r.case.clone())
        });
        assert_eq!(*finished.lock().expect("lock"), ["long", "short"]);
        let order: Vec<&str> = reports.iter().map(|r| r.case.as_str()).collect();
        assert_eq!(order, ["short", "long"]);
    }

    #[test]
    fn a_case_that_runs_long_is_noticed_while_it_runs() {
        struct Heard(Mutex<Vec<(String, Duration)>>);
        impl Progress for Heard {
            fn finished(&self, _: &CaseReport) {}
            fn slow(&self, name: &str, elapsed: Duration) {
                self.0.lock().expect("lock").push((name.into(), elapsed));
            }
        }
        let suite = parse_suite(
            Path::new("slow.toml"),
            br#"
[[case]]
name = "sleeps"
client = [{ sleep = "350ms" }]
"#,
        )
        .expect("valid suite");
        let root = tempfile::tempdir().expect("temp dir");
        let options = RunOptions {
            artifact_root: Some(root.path().into()),
            slow_notice: Some(Duration::from_millis(100)),
            ..RunOptions::default()
        };
        let heard = Heard(Mutex::default());
        run_all(&[suite], &options, 1, false, &heard);
        let heard = heard.0.into_inner().expect("lock");
        // At 100, 200 and 300 ms; each once.
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert!(heard.iter().all(|(name, _)| name == "slow::sleeps"));
        assert!(heard[2].1 >= Duration::from_millis(300), "{heard:?}");
    }

    #[test]
    fn a_case_whose_program_needs_a_missing_command_is_skipped_saying_how_to_install_it() {
        let mut suite = parse_suite(
            Path::new("needs.toml"),
            br#"
[program]
run = ["hangup-no-such-runtime", "app.js"]
port = 8080
requires = ["sh", "hangup-no-such-runtime"]
install = "apt-get install -y hangup-no-such-runtime"

[[case]]
name = "a"
client = [{ connect = 8080 }]
"#,
        )
        .expect("valid suite");
        skip_what_cannot_run_here(&mut suite);
        assert_eq!(
            suite.cases[0].ignore.as_deref(),
            Some(
                "needs `hangup-no-such-runtime`, which is not installed here; install it with `apt-get install -y hangup-no-such-runtime`"
            )
        );
    }

    #[test]
    fn artifacts_are_kept_for_failures_or_when_asked() {
        let root = tempfile::tempdir().expect("temp dir");
        let suite = suite();
        let quiet = RunOptions {
            artifact_root: Some(root.path().into()),
            ..RunOptions::default()
        };
        assert_eq!(run_case(&suite, &suite.cases[0], &quiet).artifacts, None);
        let failed = run_case(&suite, &suite.cases[1], &quiet);
        let dir = failed.artifacts.expect("a failing case keeps its folder");
        for file in [
            "case.log",
            "timeline.txt",
            "report.json",
            "kernel-counters.txt",
        ] {
            assert!(dir.join(file).is_file(), "{file}");
        }
        let log = std::fs::read_to_string(dir.join("case.log")).expect("log");
        assert!(log.contains("observed ECONNREFUSED"), "{log}");
        // The refusal is the namespace's one reset, and its counters say so.
        let counters = std::fs::read_to_string(dir.join("kernel-counters.txt")).expect("counters");
        assert!(counters.lines().any(|l| l == "Tcp OutRsts 1"), "{counters}");
        let keep = RunOptions {
            keep_artifacts: true,
            ..quiet
        };
        assert!(run_case(&suite, &suite.cases[0], &keep).artifacts.is_some());
    }
}
