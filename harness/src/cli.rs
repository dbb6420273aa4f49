//! The `hangup` command: `run`, `check`, `schema`, `bench`.
//!
//! Flags are parsed by clap into [`Cli`], then each command turns them into
//! the library's own types; `main.rs` only calls [`main`]. Exit codes: 0 when
//! every case passed (or every suite is valid), 1 when a case failed, 2 when
//! a suite is invalid or the harness could not run at all.
//!
//! Every name, path and message that holds text from outside (a file name,
//! a case name, a string read from a report) is printed [`Escaped`], so no
//! line this command prints can be forged, a summary line least of all.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hangup::model::Escaped;
use hangup::report::{self, CaseReport, CaseStatus};
use hangup::runner::{self, RunOptions};

/// Integration tests for what a server does when a client hangs up.
#[derive(Debug, Parser)]
#[command(name = "hangup", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run suites (files, or folders searched for *.toml).
    Run {
        /// Suite files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write JUnit XML here (atomically).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// In the JUnit XML, passing cases without their timeline (2 to 4
        /// KB each); failing ones keep theirs. Also `HANGUP_JUNIT_BRIEF=1`.
        #[arg(long, requires = "junit")]
        junit_brief: bool,
        /// Write every case's report as JSON here (atomically).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write one self-contained HTML page here (atomically): the run's
        /// summary, its cases (filtered, sorted, failing first), each
        /// sweep's matrix, and each case's ladder as SVG.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Run only cases whose `<suite>::<case>` name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Cases run at once (each on its own thread and namespace).
        #[arg(long, short = 'j', default_value_t = runner::default_jobs(), value_parser = at_least_one)]
        jobs: usize,
        /// Keep every case's artifact folder, not only failing ones.
        #[arg(long)]
        keep_artifacts: bool,
        /// Capture no packets, except in cases that check them (`sent`,
        /// `first`): no ladder in the timeline, no capture.pcap.
        #[arg(long)]
        no_capture: bool,
        /// Where artifact folders go (default: the system temp dir).
        #[arg(long, value_name = "DIR")]
        artifacts: Option<PathBuf>,
        /// Also run cases marked `ignore`.
        #[arg(long)]
        include_ignored: bool,
        /// Run everything this many times, stopping at the first round with
        /// a failure: the soak test for flakiness. The summary counts every
        /// round; the JSON report keeps every round; JUnit has the last.
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = at_least_one)]
        repeat: usize,
        /// With --repeat: run every round even after a failure, and end
        /// with each case's figures (runs, failures, the spread of every
        /// call's duration, hangup's own lateness).
        #[arg(long, requires = "repeat")]
        soak: bool,
        /// Succeed when no case is selected (an empty folder, a filter that
        /// matches nothing); by default that is an error.
        #[arg(long)]
        allow_empty: bool,
        /// For suites whose program names two versions (`compare`): the
        /// differences between them to accept, one a line as the run
        /// prints them; any other fails the run.
        #[arg(long, value_name = "FILE")]
        accept: Option<PathBuf>,
        /// Run the cases whose program needs a command this machine does
        /// not have (its `requires`), so that they fail, instead of
        /// skipping them; also under `CI` or with `HANGUP_REQUIRE=1`.
        #[arg(long)]
        require: bool,
    },
    /// Validate suites without running them.
    Check {
        /// Suite files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Compare two JSON reports (`run --json`) of the same suites, say
    /// against two versions of a program: every observation that changed,
    /// per case. With --base-again, another report of the base version:
    /// what differs between the two base reports too is set aside as noise
    /// (listed apart and counted, never failing). A call's duration is
    /// judged against its suite's tolerance, widened by what each run
    /// measured of the machine's load (hangup's lateness, and how busy the
    /// scripts' and the program's threads were). Lines the program printed
    /// are compared masked: numbers and ids, and the suite's `mask`s.
    /// Exits 1 on a difference the accept file does not
    /// list, 2 when a report cannot be read: one over 256 MiB, or whose
    /// round holds a case twice, is refused.
    Diff {
        /// The report of the version compared against.
        base: PathBuf,
        /// The report of the new version.
        new: PathBuf,
        /// Another report of the version compared against (repeat for
        /// more): a difference the base's reports show between themselves
        /// too, or one the new report does not show against each of them,
        /// is noise.
        #[arg(long, value_name = "FILE")]
        base_again: Vec<PathBuf>,
        /// Differences to accept: one a line, as this command prints them.
        #[arg(long, value_name = "FILE")]
        accept: Option<PathBuf>,
        /// Also write the comparison as JUnit XML: one testcase per case,
        /// failed (hangup::difference) by a difference not accepted, the
        /// noise set aside in its system-out.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write the comparison as one self-contained HTML page: each
        /// sweep cell by cell, each changed case's differences and its two
        /// runs' ladders side by side, the noise apart.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Print the JSON Schema of the suite format (or, with --report, of
    /// the JSON report `run --json` writes).
    Schema {
        /// The JSON report's schema instead of the suite format's.
        #[arg(long)]
        report: bool,
    },
    /// Measure the harness's overhead against a bare namespace, sock_diag
    /// against `ss`, and cases per second (a benchmark, run by hand).
    Bench {
        /// How many no-wait cases the throughput run takes.
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Only the cost of tracing a program's socket calls: the echo
        /// loop untraced, under hangup's tracer and under the ptrace floor.
        #[arg(long)]
        tracing: bool,
    },
}

/// `-j 0` or `--repeat 0` would run nothing and say it passed.
fn at_least_one(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err("expected at least 1, found 0".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "expected a whole number, found \"{}\"",
            Escaped(value)
        )),
    }
}

/// Runs the command line; the whole of `hangup`'s `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            paths,
            junit,
            json,
            html,
            filter,
            jobs,
            keep_artifacts,
            no_capture,
            artifacts,
            include_ignored,
            repeat,
            soak,
            allow_empty,
            accept,
            require,
            junit_brief,
        } => {
            let accepted = match accept.as_deref() {
                None => Default::default(),
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => hangup::report::diff::accepted(&text),
                    Err(err) => {
                        err!("hangup: failed to read {}: {err}", Escaped(path.display()));
                        return ExitCode::from(2);
                    }
                },
            };
            let from_env = match RunOptions::from_env() {
                Ok(options) => options,
                Err(err) => {
                    // It quotes what the environment holds.
                    err!("hangup: {}", Escaped(err));
                    return ExitCode::from(2);
                }
            };
            let options = RunOptions {
                keep_artifacts: keep_artifacts || from_env.keep_artifacts,
                no_capture: no_capture || from_env.no_capture,
                artifact_root: artifacts.or(from_env.artifact_root),
                ..from_env
            };
            let plan = Plan {
                filter: filter.as_deref(),
                jobs,
                include_ignored,
                repeat,
                soak,
                allow_empty,
                accepted,
            };
            // Suites are read first (no threads needed), so an invalid one is
            // reported as such even where namespaces cannot be had.
            let suites = match load_valid(&paths, runner::Requirements::from_env(require)) {
                Ok(suites) => suites,
                Err(code) => return code,
            };
            if let Err(code) = enter_user_namespace() {
                return code;
            }
            // One namespace before any case: where the machine cannot make
            // them, say why once and exit 2, rather than fail every case.
            if let Err(err) = hangup::sandbox::in_case_namespace(|_| ()) {
                err!("hangup: cannot run cases on this machine: {err}");
                return ExitCode::from(2);
            }
            let options = match arm_interrupts() {
                Ok(stop) => RunOptions { stop, ..options },
                Err(err) => {
                    err!("hangup: cannot handle SIGINT and SIGTERM: {err}");
                    return ExitCode::from(2);
                }
            };
            let brief = junit_brief
                || std::env::var_os("HANGUP_JUNIT_BRIEF")
                    .is_some_and(|v| !v.is_empty() && v != "0");
            let passing = if brief {
                report::Passing::Brief
            } else {
                report::Passing::Timeline
            };
            let outputs = Outputs {
                junit,
                passing,
                json,
                html,
            };
            run(suites, outputs, &plan, &options)
        }
        Command::Check { paths } => check(&paths),
        Command::Diff {
            base,
            new,
            base_again,
            accept,
            junit,
            html,
        } => diff(
            &base,
            &base_again,
            &new,
            accept.as_deref(),
            Written {
                junit: junit.as_deref(),
                html: html.as_deref(),
            },
        ),
        Command::Schema { report } => {
            if report {
                out!("{}", hangup::report::format::json_schema().trim_end());
            } else {
                out!("{}", hangup::suite::schema::json_schema());
            }
            ExitCode::SUCCESS
        }
        Command::Bench { cases, tracing } => match enter_user_namespace() {
            Ok(privileges) => crate::bench::run(cases, tracing, privileges),
            Err(code) => code,
        },
    }
}

/// Exit code of a run that was interrupted, as a shell reports SIGINT.
const INTERRUPTED: u8 = 130;

/// Makes SIGINT and SIGTERM stop the run: no case starts after the first
/// one, running cases are stopped and torn down, and the reports are
/// written with the cases that did not run marked so. A second signal
/// exits at once, reports unwritten (hangup's namespaces go with the
/// process; programs under test get SIGKILL through `PR_SET_PDEATHSIG`).
fn arm_interrupts() -> std::io::Result<runner::StopSignal> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let (stop, flag) = runner::StopSignal::armed();
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it runs first: exits only when the flag is
        // already set, i.e. on the second signal.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            i32::from(INTERRUPTED),
            std::sync::Arc::clone(&flag),
        )?;
        signal_hook::flag::register(signal, std::sync::Arc::clone(&flag))?;
    }
    Ok(stop)
}

/// Enters a user namespace when not root; must run before any thread
/// exists (the runner starts threads later).
fn enter_user_namespace() -> Result<hangup::sandbox::Privileges, ExitCode> {
    hangup::sandbox::enter_user_namespace().map_err(|err| {
        err!("hangup: {err}");
        ExitCode::from(2)
    })
}

/// Every suite under `paths`, or exit code 2 after printing every error.
fn load_valid(
    paths: &[PathBuf],
    requirements: runner::Requirements,
) -> Result<Vec<hangup::suite::Suite>, ExitCode> {
    let (suites, errors) = runner::load_suites(paths, requirements);
    if errors.is_empty() {
        return Ok(suites);
    }
    for err in &errors {
        err!("{err}");
    }
    err!("hangup: {} suite(s) invalid; nothing was run", errors.len());
    Err(ExitCode::from(2))
}

/// Which cases `run` runs, how many at once, and how often.
struct Plan<'a> {
    filter: Option<&'a str>,
    jobs: usize,
    include_ignored: bool,
    repeat: usize,
    soak: bool,
    allow_empty: bool,
    /// Differences between a program's two versions that do not fail the
    /// run.
    accepted: std::collections::BTreeSet<String>,
}

/// "1 case", "2 cases".
fn cases(n: usize) -> String {
    if n == 1 {
        "1 case".into()
    } else {
        format!("{n} cases")
    }
}

/// The report files a run writes, besides the terminal's.
struct Outputs {
    junit: Option<PathBuf>,
    /// What a passing case's `<testcase>` carries.
    passing: report::Passing,
    json: Option<PathBuf>,
    html: Option<PathBuf>,
}

fn run(
    mut suites: Vec<hangup::suite::Suite>,
    outputs: Outputs,
    plan: &Plan<'_>,
    options: &RunOptions,
) -> ExitCode {
    let started = std::time::Instant::now();
    let Outputs {
        junit,
        passing,
        json,
        html,
    } = outputs;
    if let Some(filter) = plan.filter {
        for suite in &mut suites {
            let name = suite.name.clone();
            suite
                .cases
                .retain(|case| format!("{name}::{}", case.name).contains(filter));
        }
    }
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    if total == 0 && !plan.allow_empty {
        err!(
            "hangup: no case selected{}; pass --allow-empty if that is expected",
            plan.filter
                .map(|f| format!(" (no case name contains \"{}\")", Escaped(f)))
                .unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    // Never more at once than there are cases.
    if let Err(err) = runner::ensure_file_descriptors(plan.jobs.min(total.max(1))) {
        err!("hangup: cannot run cases on this machine: {err}");
        return ExitCode::from(2);
    }
    out!("running {}", cases(total));
    let paint = Paint::for_stdout();
    let progress = Console::new(paint, total * plan.repeat);
    let mut rounds: Vec<Vec<CaseReport>> = Vec::new();
    for round in 1..=plan.repeat {
        if plan.repeat > 1 {
            out!("round {round} of {}", plan.repeat);
        }
        let reports = runner::run_all(&suites, options, plan.jobs, plan.include_ignored, &progress);
        let failed = reports.iter().any(|r| r.failure().is_some());
        rounds.push(reports);
        if (failed && !plan.soak) || options.stop.is_set() {
            break;
        }
    }
    progress.clear();
    let last = rounds.last().map(Vec::as_slice).unwrap_or_default();
    // A soak's failures may be in any round; otherwise only the last round
    // can have failed.
    let failed: Vec<&CaseReport> = if plan.soak {
        rounds
            .iter()
            .flatten()
            .filter(|r| r.failure().is_some())
            .collect()
    } else {
        last.iter().filter(|r| r.failure().is_some()).collect()
    };
    if !failed.is_empty() {
        out!("\nfailures:\n");
        for report in &failed {
            out!("{}", report.render_failure());
        }
    }
    let mut code = if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let versions = match compare_versions(&suites, last, options) {
        Ok(versions) => versions,
        Err(err) => {
            err!("hangup: cannot compare the versions: {err}");
            code = ExitCode::from(2);
            None
        }
    };
    if let Some(path) = junit {
        let compared = versions.as_ref().map(|v| report::Compared {
            cases: &v.pairs,
            differences: &v.differences,
            noise: &v.noise,
            accepted: &plan.accepted,
        });
        if let Err(err) = report::write_junit(&path, last, compared, passing) {
            err!("hangup: failed to write {}: {err}", Escaped(path.display()));
            code = ExitCode::from(2);
        }
    }
    if let Some(path) = json {
        if let Err(err) = report::write_json(&path, &rounds, versions.clone().unwrap_or_default()) {
            err!("hangup: failed to write {}: {err}", Escaped(path.display()));
            code = ExitCode::from(2);
        }
    }
    let matrices = report::matrix::Matrix::of(last);
    if let Some(path) = html {
        let built = std::time::Instant::now();
        let run = report::html::RunInfo::of_this_machine(
            std::env::args().collect(),
            started.elapsed(),
            (rounds.len(), plan.repeat),
        );
        let pairs = hangup::report::diff::version_pairs(&suites);
        let view = versions.as_ref().map(|v| {
            let find = |name: &str| last.iter().find(|c| c.name == name);
            let cases = pairs
                .iter()
                .filter(|p| v.differences.iter().any(|d| d.case == p.label))
                .map(|p| report::html::ChangedCase {
                    name: &p.label,
                    base: p.base.first().and_then(|n| find(n)),
                    new: find(&p.new),
                })
                .collect();
            report::html::DiffView::of_versions(
                &v.differences,
                &v.noise,
                &plan.accepted,
                cases,
                report::matrix::version_sweep_changes(&matrices),
            )
        });
        let page = report::html::page(last, &matrices, view.as_ref(), &run, &path);
        let build = built.elapsed();
        if let Err(err) = report::write_atomically(&path, page.as_bytes()) {
            err!("hangup: failed to write {}: {err}", Escaped(path.display()));
            code = ExitCode::from(2);
        }
        // What the page cost this run (bench/html-cost/run.sh reads it).
        if std::env::var_os("HANGUP_HTML_TIMING").is_some_and(|v| v == "1") {
            let all = built.elapsed();
            err!(
                "html page: built in {:.1} ms, written in {:.1} ms, {:.1} ms in all ({} bytes, {} cases)",
                build.as_secs_f64() * 1000.0,
                (all - build).as_secs_f64() * 1000.0,
                all.as_secs_f64() * 1000.0,
                page.len(),
                last.len()
            );
        }
    }
    for matrix in &matrices {
        out!("\n{}", matrix.render(terminal_width()).trim_end());
    }
    if !failed.is_empty() {
        out!("\nfailing tests:");
        let mut named = std::collections::HashSet::new();
        for report in failed.iter().filter(|r| named.insert(&r.name)) {
            out!("    {}", Escaped(&report.name));
        }
    }
    if let Some(versions) = &versions {
        let sweeps = report::matrix::render_version_changes(&matrices);
        if !sweeps.is_empty() {
            out!("\nsweeps in both versions:\n{}", sweeps.trim_end());
        }
        out!("\nversions compared:");
        let open = print_differences(&versions.differences, &plan.accepted);
        let noise = hangup::report::diff::noise_listed(&versions.noise);
        if !noise.is_empty() {
            out!("{}", noise.trim_matches('\n'));
        }
        out!(
            "{} differences, {} accepted, {} set aside as noise",
            versions.differences.len(),
            versions.differences.len() - open,
            versions.noise.len()
        );
        if open > 0 {
            code = ExitCode::from(1);
        }
    }
    if options.stop.is_set() {
        out!("\ninterrupted: cases that had not started were not run");
        code = ExitCode::from(INTERRUPTED);
    }
    if plan.soak {
        out!(
            "\n{}",
            report::soak::render(&report::soak::figures(&rounds))
        );
    }
    if let Some(skipped) = report::skipped_lines(last) {
        out!("\n{}", skipped.trim_end());
    }
    let all: Vec<CaseReport> = rounds.into_iter().flatten().collect();
    if plan.repeat > 1 {
        let ran = all.len() / total.max(1);
        out!("\n{} over {ran} of {} rounds", cases(total), plan.repeat);
        out!("{}", report::summary_line(&all));
    } else {
        out!("\n{}", report::summary_line(&all));
    }
    code
}

/// How wide the terminal is, as the shell says (`COLUMNS`), for a sweep's
/// grid; 100 when it does not say (a pipe, CI's log).
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c >= 20)
        .unwrap_or(100)
}

/// For suites that run each case against two versions of their program
/// (`compare`): what changed between the versions, case by case, as
/// `hangup diff` would find between two runs, the noise the runs of the
/// version compared against show set aside; none when no suite compares
/// versions.
fn compare_versions(
    suites: &[hangup::suite::Suite],
    reports: &[CaseReport],
    options: &RunOptions,
) -> Result<Option<hangup::report::diff::Versions>, hangup::report::diff::MaskError> {
    if hangup::report::diff::version_pairs(suites).is_empty() {
        return Ok(None);
    }
    let tolerance = hangup::suite::Tolerance::DEFAULT
        .widened(options.tolerance_floor, options.tolerance_percent);
    hangup::report::diff::between_versions(suites, reports, tolerance).map(Some)
}

/// Prints each difference, one a line as an accept file lists it, accepted
/// ones marked so; how many are not accepted.
fn print_differences(
    differences: &[hangup::report::diff::Difference],
    accepted: &std::collections::BTreeSet<String>,
) -> usize {
    let (lines, open) = hangup::report::diff::listed(differences, accepted);
    for line in lines {
        out!("{line}");
    }
    open
}

/// Colour for the console's status words: on a terminal, unless `NO_COLOR`
/// is set (to anything but the empty string).
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn for_stdout() -> Paint {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint(std::io::stdout().is_terminal() && !no_color)
    }

    fn word(self, word: &str, colour: u8) -> String {
        if self.0 {
            format!("\x1b[{colour}m{word}\x1b[0m")
        } else {
            word.to_string()
        }
    }
}

/// One line per finished case, and a notice for each case that runs long;
/// on a terminal, a status line below them as nextest shows: cases done of
/// all, how many run, how many failed so far.
struct Console {
    paint: Paint,
    /// The status line's counts, when there is one.
    counts: Option<Counts>,
}

/// What the status line counts.
struct Counts {
    total: usize,
    done: std::sync::atomic::AtomicUsize,
    running: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
}

impl Console {
    /// A console for `total` case runs: a status line only on a terminal,
    /// never into a pipe, nor with `NO_COLOR` set or `TERM=dumb`.
    fn new(paint: Paint, total: usize) -> Console {
        use std::io::IsTerminal;
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        let counts = (paint.0 && !dumb && std::io::stdout().is_terminal()).then(|| Counts {
            total,
            done: Default::default(),
            running: Default::default(),
            failed: Default::default(),
        });
        Console { paint, counts }
    }

    /// Redraws the status line from the counts.
    fn draw(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(c) = &self.counts {
            crate::out::status(Some(format!(
                "[{}/{}] {} running, {} failed",
                c.done.load(Relaxed),
                c.total,
                c.running.load(Relaxed),
                c.failed.load(Relaxed)
            )));
        }
    }

    /// Takes the status line away, before the run's summary.
    fn clear(&self) {
        if self.counts.is_some() {
            crate::out::status(None);
        }
    }
}

impl runner::Progress for Console {
    fn started(&self, _name: &str) {
        if let Some(c) = &self.counts {
            c.running.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.draw();
        }
    }

    fn finished(&self, report: &CaseReport) {
        if let Some(c) = &self.counts {
            use std::sync::atomic::Ordering::Relaxed;
            // A suite's last case is told after its program stopped, once
            // the next case may have started: never below zero.
            let _ = c
                .running
                .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
            c.done.fetch_add(1, Relaxed);
            if report.failure().is_some() {
                c.failed.fetch_add(1, Relaxed);
            }
        }
        let took = hangup::verdict::millis(report.duration);
        match &report.status {
            CaseStatus::Passed => {
                out!(
                    "case {} ... {} ({took})",
                    Escaped(&report.name),
                    self.paint.word("ok", 32)
                )
            }
            CaseStatus::Failed(_) => out!(
                "case {} ... {} ({took})",
                Escaped(&report.name),
                self.paint.word("FAILED", 31)
            ),
            CaseStatus::Ignored { reason } => out!(
                "case {} ... {}, {}",
                Escaped(&report.name),
                self.paint.word("ignored", 33),
                Escaped(reason)
            ),
            _ => out!("case {} ... ?", Escaped(&report.name)),
        }
        if let Some(err) = &report.artifacts_error {
            err!(
                "hangup: the artifacts of {} were not written: {}",
                Escaped(&report.name),
                Escaped(err)
            );
        }
        self.draw();
    }

    fn slow(&self, name: &str, elapsed: std::time::Duration) {
        out!(
            "case {} ... {} (running for over {} s)",
            Escaped(name),
            self.paint.word("SLOW", 33),
            elapsed.as_secs()
        );
    }
}

/// `hangup diff`: prints every difference (accepted ones marked so) and a
/// count; exit 0 when every one is accepted, 1 when one is not, 2 when the
/// reports cannot be read or compared. Each report is read bounded and
/// streamed ([`hangup::report::diff::LastRound::open`]).
/// The reports `hangup diff` writes besides what it prints.
struct Written<'a> {
    junit: Option<&'a std::path::Path>,
    html: Option<&'a std::path::Path>,
}

fn diff(
    base_path: &std::path::Path,
    again_paths: &[PathBuf],
    new_path: &std::path::Path,
    accept: Option<&std::path::Path>,
    Written { junit, html }: Written<'_>,
) -> ExitCode {
    use hangup::report::diff::{self, Comparison, LastRound};
    let compared = (|| -> Result<_, String> {
        let base = LastRound::open(base_path).map_err(|e| e.to_string())?;
        let again = again_paths
            .iter()
            .map(|path| LastRound::open(path).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let new = LastRound::open(new_path).map_err(|e| e.to_string())?;
        let accepted = match accept {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| diff::accepted(&text))
                .map_err(|e| format!("failed to read {}: {e}", path.display()))?,
            None => Default::default(),
        };
        let tolerance = RunOptions::from_env().map(|o| {
            hangup::suite::Tolerance::DEFAULT.widened(o.tolerance_floor, o.tolerance_percent)
        })?;
        let sweeps = hangup::report::matrix::render_changes(base.sweeps(), new.sweeps());
        let comparison = Comparison::with_noise(&base, &again, &new, tolerance);
        // The page's ladders: the changed cases whole, read again (the
        // first reading kept only what is compared of each case).
        let page = match html {
            None => None,
            Some(_) => {
                let changed: std::collections::BTreeSet<String> = comparison
                    .differences
                    .iter()
                    .map(|d| d.case.clone())
                    .collect();
                let reread = |path: &std::path::Path| {
                    LastRound::open_keeping(path, &changed).map_err(|e| e.to_string())
                };
                Some((reread(base_path)?, reread(new_path)?))
            }
        };
        Ok((comparison, accepted, sweeps, page))
    })();
    let (comparison, accepted, sweeps, page) = match compared {
        Ok(parts) => parts,
        Err(why) => {
            // It names paths, and may quote what a report holds.
            err!("hangup: {}", Escaped(why));
            return ExitCode::from(2);
        }
    };
    let mut code = if comparison.open(&accepted) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if let Some(path) = junit {
        if let Err(err) = hangup::report::write_diff_junit(
            path,
            report::Compared {
                cases: &comparison.cases,
                differences: &comparison.differences,
                noise: &comparison.noise,
                accepted: &accepted,
            },
        ) {
            err!("hangup: failed to write {}: {err}", Escaped(path.display()));
            code = ExitCode::from(2);
        }
    }
    if let (Some(path), Some((base, new))) = (html, &page) {
        let shown = |p: &std::path::Path| p.display().to_string();
        let view = report::html::DiffView::of_two_runs(
            (shown(base_path), shown(new_path)),
            again_paths.iter().map(|p| shown(p)).collect(),
            &comparison.differences,
            &comparison.noise,
            &accepted,
            (base.kept(), new.kept()),
            hangup::report::matrix::sweep_changes(base.sweeps(), new.sweeps()),
        );
        let text = report::html::diff_page(&view, &std::env::args().collect::<Vec<_>>(), path);
        if let Err(err) = report::write_atomically(path, text.as_bytes()) {
            err!("hangup: failed to write {}: {err}", Escaped(path.display()));
            code = ExitCode::from(2);
        }
    }
    if !sweeps.is_empty() {
        out!("{sweeps}");
    }
    out!("{}", comparison.render(&accepted));
    code
}

fn check(paths: &[PathBuf]) -> ExitCode {
    // Validation only: nothing is run, so nothing is skipped either.
    let (suites, errors) = runner::load_suites(paths, runner::Requirements::Enforced);
    for err in &errors {
        err!("{err}");
    }
    let cases: usize = suites.iter().map(|s| s.cases.len()).sum();
    out!(
        "{} suite(s) valid with {cases} case(s), {} invalid",
        suites.len(),
        errors.len()
    );
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
