//! `cargo test` integration through libtest-mimic: one trial per case.
//!
//! A downstream repository adds to its `Cargo.toml`
//!
//! ```toml
//! [[test]]
//! name = "hangup"
//! harness = false
//! ```
//!
//! and `tests/hangup.rs`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     hangup::runner::test_main("suites")
//! }
//! ```
//!
//! Then `cargo test` lists every case as `<suite>::<case>`, and filters,
//! `--list`, `--exact`, `--ignored` and cargo-nextest (which runs one process
//! per test) work as for any test. The folder is resolved against the
//! working directory at run time (cargo runs tests from the package root);
//! `HANGUP_SUITES` overrides it. `HANGUP_JUNIT=path` also writes JUnit XML,
//! and `HANGUP_HTML=path` the run's page (as `hangup run --html`).
//!
//! Under cargo-nextest a failing case also writes its [headline] to
//! stderr as `Error: <headline>`: nextest fills a JUnit `<failure>`'s
//! `message` only from a line it recognises on stderr (a panic's
//! `thread '...' panicked at`, or a line starting `Error: `, as a test
//! returning `Err` prints), and libtest-mimic writes a failure to stdout.
//! Under plain `cargo test` nothing more is written: the failure is
//! already shown whole.
//!
//! [headline]: crate::report::CaseReport::headline
//!
//! A trial's name is the case's test name [`Escaped`] (a suite's name is
//! its file's, which may hold a newline or ESC): libtest-mimic prints it
//! as it is, and `--list` must print one name a line for nextest. A filter
//! matches the name as listed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};

use super::{Requirements, RunOptions, load_suites, run_case};
use crate::model::Escaped;
use crate::report::{CaseReport, Passing, write_junit};

/// The whole `main` of a suites test binary: runs the suites in `folder`.
pub fn test_main(folder: &str) -> ExitCode {
    let folder =
        std::env::var_os("HANGUP_SUITES").map_or_else(|| PathBuf::from(folder), PathBuf::from);
    match RunOptions::from_env() {
        Ok(options) => test_main_with(&[folder], options),
        Err(err) => {
            eprintln!("hangup: {}", Escaped(err));
            ExitCode::from(2)
        }
    }
}

/// Why this run would select no case, when it is a mistake: the suites
/// folder holds none, or the filter names one of the suites (`s02_...` or
/// `s02_...::client_tim`) and matches none of its cases. A filter that names
/// no suite is someone else's (`cargo test` hands every test binary the same
/// filter), so selecting nothing is then right.
fn selects_nothing(
    args: &Arguments,
    suites: &[crate::suite::Suite],
    valid: bool,
) -> Option<String> {
    if args.list {
        return None;
    }
    let names: Vec<String> = suites
        .iter()
        .flat_map(|s| s.cases.iter().map(move |c| trial_name(s, c)))
        .collect();
    if names.is_empty() {
        return valid.then(|| "the suites folder holds no case".to_string());
    }
    let filter = args.filter.as_deref()?;
    let matches = |name: &str| {
        if args.exact {
            name == filter
        } else {
            name.contains(filter)
        }
    };
    if names.iter().any(|name| matches(name)) {
        return None;
    }
    let names_a_suite = suites.iter().any(|suite| {
        let name = Escaped(&suite.name).to_string();
        filter == name || filter.starts_with(&format!("{name}::"))
    });
    names_a_suite.then(|| format!("no case matches `{}`", Escaped(filter)))
}

/// The name a case's trial is listed, filtered and reported by: its test
/// name, [`Escaped`].
fn trial_name(suite: &crate::suite::Suite, case: &crate::suite::Case) -> String {
    Escaped(case.test_name(suite)).to_string()
}

/// Like [`test_main`], with explicit suite paths and options.
pub fn test_main_with(paths: &[PathBuf], options: RunOptions) -> ExitCode {
    let args = Arguments::from_args();
    // Before any thread exists: libtest-mimic starts its workers in `run`.
    if !args.list {
        if let Err(err) = crate::sandbox::enter_user_namespace() {
            eprintln!("hangup: {err}");
            return ExitCode::from(2);
        }
    }
    let (suites, errors) = load_suites(paths, Requirements::from_env(false));
    if let Some(why) = selects_nothing(&args, &suites, errors.is_empty()) {
        if std::env::var_os("HANGUP_ALLOW_EMPTY").is_none_or(|v| v.is_empty() || v == "0") {
            // Its filter is escaped where it is made.
            eprintln!("hangup: {why}; set HANGUP_ALLOW_EMPTY=1 if that is expected");
            return ExitCode::from(2);
        }
    }
    let started = std::time::Instant::now();
    let collected: Arc<Mutex<Vec<CaseReport>>> = Arc::default();
    let mut trials = Vec::new();
    for err in errors {
        // An invalid suite is a failing test, so `cargo test` shows its errors.
        let name = match &err {
            crate::suite::SuiteError::Invalid { path, .. }
            | crate::suite::SuiteError::Read { path, .. }
            | crate::suite::SuiteError::NotAFile { path, .. }
            | crate::suite::SuiteError::Unnamed { path } => {
                format!(
                    "{}::invalid_suite",
                    Escaped(path.file_stem().unwrap_or_default().to_string_lossy())
                )
            }
        };
        let message = err.to_string();
        trials.push(Trial::test(name, move || Err(Failed::from(message))));
    }
    let options = Arc::new(options);
    for suite in suites.into_iter().map(Arc::new) {
        for index in 0..suite.cases.len() {
            let case = &suite.cases[index];
            let name = case.test_name(&suite);
            let ignored = case.ignore.is_some();
            let (suite, options, collected) = (
                Arc::clone(&suite),
                Arc::clone(&options),
                Arc::clone(&collected),
            );
            let trial = Trial::test(name, move || {
                let report = run_case(&suite, &suite.cases[index], &options);
                let outcome = if report.passed() {
                    Ok(())
                } else {
                    tell_nextest(&report);
                    Err(Failed::from(report.render_failure()))
                };
                if let Ok(mut all) = collected.lock() {
                    all.push(report);
                }
                outcome
            });
            trials.push(trial.with_ignored_flag(ignored));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    // Programs that served a whole suite stop now: under nextest (a process
    // per test) that is after each test.
    let failed = collected
        .lock()
        .map(|r| r.iter().any(|r| !r.passed()))
        .unwrap_or(true);
    let killed = super::suite_program::stop_all(options.keep_artifacts || failed);
    crate::record::leftovers::release();
    for why in &killed {
        // It names the suite's path.
        eprintln!("hangup: {}", Escaped(why));
    }
    if let Some(path) = std::env::var_os("HANGUP_JUNIT").filter(|_| !args.list) {
        let reports = collected.lock().map(|r| r.clone()).unwrap_or_default();
        let brief =
            std::env::var_os("HANGUP_JUNIT_BRIEF").is_some_and(|v| !v.is_empty() && v != "0");
        let passing = if brief {
            Passing::Brief
        } else {
            Passing::Timeline
        };
        if let Err(err) = write_junit(PathBuf::from(&path).as_path(), &reports, None, passing) {
            eprintln!(
                "hangup: failed to write JUnit to {}: {err}",
                PathBuf::from(path).display()
            );
            return ExitCode::from(2);
        }
    }
    if let Some(path) = std::env::var_os("HANGUP_HTML").filter(|_| !args.list) {
        let path = PathBuf::from(path);
        let reports = collected.lock().map(|r| r.clone()).unwrap_or_default();
        let run = crate::report::html::RunInfo::of_this_machine(
            std::env::args().collect(),
            started.elapsed(),
            (1, 1),
        );
        let matrices = crate::report::matrix::Matrix::of(&reports);
        let page = crate::report::html::page(&reports, &matrices, None, &run, &path);
        if let Err(err) = crate::report::write_atomically(&path, page.as_bytes()) {
            eprintln!(
                "hangup: failed to write the HTML page to {}: {err}",
                Escaped(path.display())
            );
            return ExitCode::from(2);
        }
    }
    if killed.is_empty() {
        conclusion.exit_code()
    } else {
        ExitCode::from(101)
    }
}

/// Writes a failed case's one line for cargo-nextest (see the module's
/// docs), when nextest runs this process: it sets `NEXTEST=1` in every test
/// process it starts.
fn tell_nextest(report: &crate::report::CaseReport) {
    if std::env::var_os("NEXTEST").is_some_and(|v| v == "1") {
        if let Some(line) = report.headline() {
            eprintln!("Error: {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::suite::parse_suite;

    fn suite() -> crate::suite::Suite {
        parse_suite(
            Path::new("s02_mid_stream.toml"),
            b"[[case]]\nname = \"times_out\"\nclient = [{ connect = 8080, expect = \"ECONNREFUSED\" }]\n",
        )
        .expect("valid suite")
    }

    fn filtered(filter: Option<&str>, exact: bool) -> Arguments {
        Arguments {
            filter: filter.map(str::to_string),
            exact,
            ..Arguments::default()
        }
    }

    #[test]
    fn an_empty_folder_or_a_mistyped_case_selects_nothing_by_mistake() {
        let suites = [suite()];
        assert_eq!(
            selects_nothing(&filtered(None, false), &[], true).as_deref(),
            Some("the suites folder holds no case")
        );
        // Invalid suites become failing trials of their own: not empty.
        assert_eq!(selects_nothing(&filtered(None, false), &[], false), None);
        assert_eq!(
            selects_nothing(
                &filtered(Some("s02_mid_stream::time_out"), false),
                &suites,
                true
            )
            .as_deref(),
            Some("no case matches `s02_mid_stream::time_out`")
        );
        assert_eq!(
            selects_nothing(
                &filtered(Some("s02_mid_stream::times"), true),
                &suites,
                true
            )
            .as_deref(),
            Some("no case matches `s02_mid_stream::times`")
        );
    }

    #[test]
    fn a_filter_for_other_tests_or_a_match_is_no_mistake() {
        let suites = [suite()];
        assert_eq!(selects_nothing(&filtered(None, false), &suites, true), None);
        assert_eq!(
            selects_nothing(&filtered(Some("times_out"), false), &suites, true),
            None
        );
        // `cargo test parses_durations` hands this filter to every binary.
        assert_eq!(
            selects_nothing(&filtered(Some("parses_durations"), false), &suites, true),
            None
        );
        let listing = Arguments {
            list: true,
            ..Arguments::default()
        };
        assert_eq!(selects_nothing(&listing, &[], true), None);
    }

    /// A suite named by a file whose name holds a newline and ESC: its
    /// trial is listed on one line, escaped, and is selected by that name.
    #[test]
    fn a_trial_is_named_escaped_and_selected_by_that_name() {
        let suite = parse_suite(
            Path::new("s\n1 passed\u{1b}[2J.toml"),
            b"[[case]]\nname = \"c\"\nclient = [\"close\"]\n",
        )
        .expect("valid suite");
        let name = trial_name(&suite, &suite.cases[0]);
        assert_eq!(name, r"s\n1 passed\u{1b}[2J::c");
        let suites = [suite];
        assert_eq!(
            selects_nothing(&filtered(Some(&name), true), &suites, true),
            None
        );
        assert_eq!(
            selects_nothing(
                &filtered(Some(r"s\n1 passed\u{1b}[2J::d"), false),
                &suites,
                true
            )
            .as_deref(),
            Some(r"no case matches `s\n1 passed\u{1b}[2J::d`")
        );
    }
}
