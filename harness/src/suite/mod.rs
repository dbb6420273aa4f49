//! The declarative model: suites of cases, cases of steps by side.
//!
//! A suite is one TOML file; its cases are `[[case]]` tables; each case has
//! a script per side (`client = [...]`, `server = [...]`, and for a middle
//! peer `proxy = [...]`), one step per line.
//! The two scripts run at the same time, each in order, which is how the
//! scenarios' timelines read (`docs/scenarios.md`): the server streams
//! chunks on its own clock while the client reads with its own timeout.
//! Expectations attach to the step whose result they judge
//! (`expect = "EPIPE"`); kernel states are steps of their own
//! (`{ state = { server = "CLOSE_WAIT" }, within = "1s" }`) that poll until
//! they hold or the deadline passes.
//!
//! [`load`] reads and validates a file and reports every error in it with
//! file:line:col, what was expected and what was found (the `parse` module). The model
//! below is what the rest of the crate sees: already validated, with each
//! step's place in the file kept for reports.

pub mod action;
pub mod limits;
mod parse;
pub mod schema;
pub mod sweep;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeSet;

use crate::model::{Link, Outcome, PollEvents, Port, Side};

pub use action::{
    Action, Check, Control, Fault, HostCut, How, Lift, LineCount, Loop, Outgoing, Pattern, Payload,
    Segments, SocketCall, SocketOptions, StepKind, Until,
};
pub use parse::{Diagnostic, SuiteError, parse_suite};

/// One suite file: a name (the file stem) and its cases.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file stem; test names are `<suite>::<case>`.
    pub name: String,
    /// Where the suite was read from, for reports.
    pub path: PathBuf,
    /// What the suite is about, if it says.
    pub description: Option<String>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One scenario: settings for its network namespace and a script per side.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique within the suite.
    pub name: String,
    /// What the case shows, if it says.
    pub description: Option<String>,
    /// Where the `[[case]]` header is, for reports.
    pub location: Location,
    /// Why the case is skipped unless `--ignored` asks for it.
    pub ignore: Option<String>,
    /// The whole case must finish within this; an overrun fails the case
    /// and says what each side was waiting for.
    pub deadline: Duration,
    /// Per-namespace sysctls (`net.*` only), applied before any socket exists.
    pub sysctls: Vec<(String, String)>,
    /// How far a measured duration may be from the expected one.
    pub tolerance: Tolerance,
    /// One script per side that has steps, client first.
    pub scripts: Vec<Script>,
    /// The program under test, when the case has one: it plays the server
    /// (a case with a program has no `server` script).
    pub program: Option<Program>,
    /// Which of its program's versions this case runs, when the program
    /// names two to compare (`compare`): the case is then one of a pair.
    pub version: Option<CaseVersion>,
    /// Where its sides run: one namespace's loopback, or two hosts.
    pub topology: Topology,
    /// Which cell of a sweep the case is, when a `[[sweep]]` made it.
    pub cell: Option<sweep::Cell>,
    /// Whether its program's socket calls are traced even when no
    /// `syscall` check asks: a sweep's cells are (unless it says `trace =
    /// false`), so each names the program's first call that failed.
    pub trace: bool,
}

/// Where a case's sides run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    /// All in one network namespace, over its loopback (the default).
    #[default]
    Loopback,
    /// The client on a host of its own, joined to the server's by a veth
    /// pair (198.18.0.1 and 198.18.0.2, see `sandbox::topology`): each
    /// side's packets leave one host and arrive at the other, and each
    /// side's states are read in its own namespace.
    TwoHosts,
}

/// One run of a case that runs the same script against two versions of
/// a program (`compare` in `[program]`), named `<case>@<version>`, and
/// `<case>@<version>#<run>` for the version's second run and on: the
/// version compared against runs [`Program::baseline_runs`] times (its
/// runs' own differences are noise), and a version compared with itself
/// runs once more as the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseVersion {
    /// The case's name as written, without `@<version>`.
    pub case: String,
    /// Which version, and which run of it.
    pub of: VersionRun,
}

/// One run of one version of a program, in a suite that compares two:
/// what every case of that run shares (a sweep's cells make one matrix per
/// run).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct VersionRun {
    /// The version's name.
    pub name: String,
    /// Whether it is the version compared against (the first listed).
    pub base: bool,
    /// Which run of this version's name it is, from 1.
    pub run: usize,
}

impl VersionRun {
    /// What follows `<case>` in the case's name: `@<version>`, or
    /// `@<version>#<run>` after the first run.
    pub fn suffix(&self) -> String {
        if self.run == 1 {
            format!("@{}", self.name)
        } else {
            format!("@{}#{}", self.name, self.run)
        }
    }
}

/// A version of a program to compare (`compare` in `[program]`): its own
/// command, or more environment, over the program's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Its name: the case's test name gets `@<name>`.
    pub name: String,
    /// Its command instead of the program's `run`, if it has one.
    pub argv: Option<Vec<String>>,
    /// Variables set over the program's `env`.
    pub env: Vec<(String, String)>,
}

/// A program under test: a user's server, started in the case's network
/// namespace before the scripts run and stopped when they are done.
///
/// Its argv, environment and working folder may hold substitutions, filled
/// in when it starts: `{port}`, `{host}` (the address to listen on),
/// `{artifacts}` (the case's artifact folder),
/// `{suite_dir}` (the folder of the suite file), `{bin:NAME}` (a binary
/// cargo built beside the running one: your package's, under `cargo test`),
/// `{fixture:NAME}` (one of the servers in `fixtures/`, found the same way)
/// and `{env:NAME}`.
#[derive(Debug, Clone)]
pub struct Program {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// Variables set for it, besides the environment it inherits.
    pub env: Vec<(String, String)>,
    /// Where it runs; the suite file's folder when not given.
    pub cwd: Option<String>,
    /// The side it plays: the server (the scripts connect to it) or the
    /// client (it connects to a script that listens on `port`). State
    /// checks of that side find its end of the scripts' connections.
    pub role: Side,
    /// As the server, the port it listens on, on 127.0.0.1; as the client,
    /// the port it connects to. Its `{port}`.
    pub port: u16,
    /// Ready when a line of its output matches this; without it, a server
    /// is ready when the kernel lists its listener on `port`, a client as
    /// soon as it runs.
    pub ready: Option<regex::Regex>,
    /// How long it may take to become ready.
    pub within: Duration,
    /// The signal that asks it to stop when the case ends.
    pub stop: nix::sys::signal::Signal,
    /// How long it may take to stop before it is killed (and the case fails).
    pub grace: Duration,
    /// What it needs: a command on `PATH` (a runtime like `node`), or, when
    /// an entry holds a space, a shell command line that must succeed (a
    /// library: `python3 -c 'import aiohttp'`). Where one is missing its
    /// cases are skipped, saying so and how to install it, unless `CI` is
    /// set: there it must be installed.
    pub requires: Vec<String>,
    /// How to install what `requires` names, for the skip message.
    pub install: Option<String>,
    /// Whether it starts for each case or once for the whole suite.
    pub scope: Scope,
    /// Two versions to run every case against (`compare`); empty once the
    /// parser made each case a pair.
    pub versions: Vec<Version>,
    /// How many times the version compared against runs (`baseline_runs`,
    /// 2 by default): what differs between its own runs is noise, set
    /// aside when the versions are compared.
    pub baseline_runs: usize,
    /// More of its output to mask before two runs' lines are compared
    /// (`mask`): regular expressions, each checked by the parser, whose
    /// matches read as `#`; a line one matches whole is not compared.
    pub masks: Vec<String>,
    /// Where the program table is written.
    pub location: Location,
}

/// How long one start of a program serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A fresh program, in a fresh namespace, for every case (the default).
    Case,
    /// One program for all the suite's cases that use the suite's
    /// `[program]`, for programs that take seconds to start (a JVM). Those
    /// cases share its namespace and run one at a time; each tells its own
    /// connections apart by 4-tuple and sees only the output and calls of
    /// its own time.
    Suite,
}

impl Scope {
    /// As a suite writes it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Case => "case",
            Scope::Suite => "suite",
        }
    }
}

impl Program {
    /// The first entry of `requires` that this machine lacks.
    pub fn missing_requirement(&self) -> Option<&str> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        self.requires
            .iter()
            .find(|command| {
                if command.contains(' ') {
                    // Run once per case while the suite is loaded, before
                    // any namespace exists; its output is not wanted.
                    return !std::process::Command::new("sh")
                        .args(["-c", command])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                }
                !std::env::split_paths(&path).any(|dir| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::metadata(dir.join(command))
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                })
            })
            .map(String::as_str)
    }
}

/// How long a program may take to become ready, unless the suite says.
pub const DEFAULT_READY_WITHIN: Duration = Duration::from_secs(10);
/// How long a program may take to stop, unless the suite says.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

/// How many times `compare` runs the version compared against, unless
/// `baseline_runs` says: twice, so that what differs between two runs of
/// one version (timing) is told from what the new version changed.
pub const DEFAULT_BASELINE_RUNS: usize = 2;

/// Every step of a script, a loop's body after the loop (loops do not
/// nest).
pub(crate) fn every_step(steps: &[Step]) -> impl Iterator<Item = &Step> {
    steps.iter().flat_map(|step| {
        let inner: &[Step] = match &step.action {
            Action::Control(Control::Loop(looped)) => &looped.body,
            _ => &[],
        };
        std::iter::once(step).chain(inner.iter())
    })
}

/// Every step of a script but the loops themselves (the steps in their
/// bodies are in), to change them.
pub(crate) fn every_step_mut(steps: &mut [Step]) -> Vec<&mut Step> {
    let mut all = Vec::new();
    for step in steps {
        if matches!(step.action, Action::Control(Control::Loop(_))) {
            // The loop's own step has no address to change.
            if let Action::Control(Control::Loop(looped)) = &mut step.action {
                all.extend(looped.body.iter_mut());
            }
        } else {
            all.push(step);
        }
    }
    all
}

impl Case {
    /// The ports `side` listens on and connects to: its script's `listen`
    /// and `connect` steps, and the program's port when it plays the side.
    fn ports_of(&self, side: Side) -> (BTreeSet<u16>, BTreeSet<u16>) {
        let (mut listens, mut connects) = (BTreeSet::new(), BTreeSet::new());
        for script in self.scripts.iter().filter(|s| s.side == side) {
            for step in every_step(&script.steps) {
                match &step.action {
                    Action::Socket(SocketCall::Listen { addr, .. }) => {
                        listens.insert(addr.port());
                    }
                    Action::Socket(SocketCall::Connect { addr, .. }) => {
                        connects.insert(addr.port());
                    }
                    _ => {}
                }
            }
        }
        match &self.program {
            Some(p) if p.role == side && side == Side::Server => {
                listens.insert(p.port);
            }
            Some(p) if p.role == side => {
                connects.insert(p.port);
            }
            _ => {}
        }
        listens.remove(&0);
        connects.remove(&0);
        (listens, connects)
    }

    /// Whether a step checks the case's packets (`sent`, `first`): it is
    /// then captured even when the run asks for no capture.
    pub fn checks_packets(&self) -> bool {
        self.scripts.iter().any(|script| {
            every_step(&script.steps).any(|step| {
                matches!(
                    step.action,
                    Action::Check(Check::Sent { .. } | Check::First { .. })
                )
            })
        })
    }

    /// The side that sends a TCP segment from port `from` to port `to`: the
    /// one that listens on `from`, or connects to `to` (see
    /// [`Case::fault_ports`]).
    pub fn side_sending(&self, from: u16, to: u16) -> Option<Side> {
        Side::ALL.into_iter().find(|&side| {
            let (listens, connects) = self.ports_of(side);
            listens.contains(&from) || connects.contains(&to)
        })
    }

    /// The packets `fault` takes, by port: on the case's loopback what a
    /// side sends is TCP from a port it listens on, or to a port it
    /// connects to; with `to`, only those the other side connects to or
    /// listens on. Empty when the case gives the side no such port.
    pub fn fault_ports(&self, fault: &Fault) -> Vec<Port> {
        self.ports_between(fault.outgoing.from, fault.outgoing.to)
    }

    /// What `from` sends (to `to`, when given), by port (see
    /// [`Case::fault_ports`]).
    pub fn ports_between(&self, from: Side, to: Option<Side>) -> Vec<Port> {
        let (listens, connects) = self.ports_of(from);
        let (sources, destinations): (Vec<u16>, Vec<u16>) = match to {
            None => (
                listens.into_iter().collect(),
                connects.into_iter().collect(),
            ),
            Some(to) => {
                let (their_listens, their_connects) = self.ports_of(to);
                (
                    listens.intersection(&their_connects).copied().collect(),
                    connects.intersection(&their_listens).copied().collect(),
                )
            }
        };
        sources
            .into_iter()
            .map(Port::Source)
            .chain(destinations.into_iter().map(Port::Destination))
            .collect()
    }

    /// The test name, `<suite>::<case>`, as `cargo test` lists it.
    pub fn test_name(&self, suite: &Suite) -> String {
        format!("{}::{}", suite.name, self.name)
    }

    /// Whether the case is served by its suite's one program (`scope =
    /// "suite"`) rather than a program of its own.
    pub fn shares_program(&self) -> bool {
        self.program
            .as_ref()
            .is_some_and(|p| p.scope == Scope::Suite)
    }

    /// Whether a step checks the program's socket calls, so that it must
    /// be traced.
    pub fn traces_program(&self) -> bool {
        fn any(steps: &[Step]) -> bool {
            steps.iter().any(|step| match &step.action {
                Action::Check(Check::Syscall { .. } | Check::Errnos { .. }) => true,
                Action::Control(Control::Loop(looped)) => any(&looped.body),
                _ => false,
            })
        }
        self.trace || self.scripts.iter().any(|script| any(&script.steps))
    }

    /// The patterns of every `log` check of `cases` (loops' bodies too),
    /// each once: what a program serving them counts on every line.
    pub fn log_patterns_of<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Vec<regex::Regex> {
        fn gather(steps: &[Step], into: &mut Vec<regex::Regex>) {
            for step in steps {
                match &step.action {
                    Action::Check(Check::Log { pattern, .. })
                        if !into.iter().any(|p| p.as_str() == pattern.0.as_str()) =>
                    {
                        into.push(pattern.0.clone());
                    }
                    Action::Control(Control::Loop(looped)) => gather(&looped.body, into),
                    _ => {}
                }
            }
        }
        let mut patterns = Vec::new();
        for case in cases {
            for script in &case.scripts {
                gather(&script.steps, &mut patterns);
            }
        }
        patterns
    }

    /// A rough guess at how long the case takes, for scheduling the
    /// longest first: per side, its sleeps, the `after` its calls expect
    /// and the `within` of its state checks (loops times their rounds);
    /// the longest side's sum, capped at the deadline.
    pub fn expected_duration(&self) -> Duration {
        fn total(steps: &[Step]) -> Duration {
            steps
                .iter()
                .map(|step| match &step.action {
                    Action::Control(Control::Sleep(d)) => *d,
                    Action::Control(Control::Loop(looped)) => {
                        total(&looped.body).saturating_mul(looped.times)
                    }
                    Action::Check(
                        Check::State { within, .. }
                        | Check::Log { within, .. }
                        | Check::Syscall { within, .. }
                        | Check::Taken { within, .. }
                        | Check::Sent { within, .. }
                        | Check::First { within, .. }
                        | Check::Released { within }
                        | Check::AcceptQueue { within, .. },
                    ) => within.unwrap_or_default(),
                    _ => step
                        .expect
                        .as_ref()
                        .and_then(|e| e.after.or(e.longer_than))
                        .unwrap_or_default(),
                })
                .fold(Duration::ZERO, Duration::saturating_add)
        }
        self.scripts
            .iter()
            .map(|script| total(&script.steps))
            .max()
            .unwrap_or_default()
            .min(self.deadline)
    }
}

/// The steps one side runs, in order.
#[derive(Debug, Clone)]
pub struct Script {
    /// Whose script this is.
    pub side: Side,
    /// The steps, in file order.
    pub steps: Vec<Step>,
}

/// A place in a suite file, 1-based, for "file:line:col" in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The suite file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text`.
    pub fn of_offset(path: &Path, text: &str, offset: usize) -> Location {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// One step of a side's script: what to do and what must come of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What the side does.
    pub action: Action,
    /// What its result must be; `None` takes the action's default (see
    /// [`Action::default_expectation`]).
    pub expect: Option<Expect>,
    /// Where the step is written.
    pub location: Location,
    /// The step's bytes in the suite file, for errors found across steps.
    pub span: std::ops::Range<usize>,
    /// The step as written, for reports.
    pub source: String,
    /// Which of the side's connections the step acts on: the client's is
    /// the one it made, the server's the one it accepted, and the proxy's
    /// the one its `on` names.
    pub link: Link,
}

/// What one call's result must be.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Any one of these outcomes passes.
    pub result: Vec<Outcome>,
    /// The bytes the call moved, when stated.
    pub bytes: Option<u64>,
    /// How long the call took, when stated, within the case's tolerance.
    pub after: Option<Duration>,
    /// A lower bound on how long the call took, when stated. No tolerance
    /// applies: a loaded machine only makes calls slower.
    pub longer_than: Option<Duration>,
    /// For `poll`: exactly the events that must be reported ready.
    pub revents: Option<PollEvents>,
    /// For reads: a pattern what was received must match (as text, invalid
    /// UTF-8 replaced), e.g. `^HTTP/1\.1 200`.
    pub matches: Option<Pattern>,
}

/// How far a measured duration may be from the expected one:
/// `max(floor, percent of the expected duration)`, either way. A case's
/// report records it (`{ "floor_ms", "percent" }`): `hangup diff` judges
/// the case's durations against it.
#[derive(
    Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Tolerance {
    /// The least slack, whatever the interval.
    #[serde(rename = "floor_ms", with = "crate::model::units::millis")]
    #[schemars(with = "f64")]
    pub floor: Duration,
    /// Slack as a share of the expected interval, in percent.
    pub percent: u32,
}

impl Tolerance {
    /// Sized for a loaded 2-core machine: a timer that should fire at 200 ms
    /// is seen anywhere from 150 to 250 ms when the other core compiles.
    pub const DEFAULT: Tolerance = Tolerance {
        floor: Duration::from_millis(50),
        percent: 25,
    };

    /// The slack allowed around `expected`.
    pub fn slack(&self, expected: Duration) -> Duration {
        // Saturating: `hangup diff` hands it durations read from reports,
        // which may be anything a Duration holds.
        let share =
            Duration::try_from_secs_f64(expected.as_secs_f64() * f64::from(self.percent) / 100.0)
                .unwrap_or(Duration::MAX);
        share.max(self.floor)
    }

    /// This tolerance widened to at least `floor` and `percent` where they
    /// are given (a slow CI machine asks for more), never narrowed.
    pub fn widened(self, floor: Option<Duration>, percent: Option<u32>) -> Tolerance {
        Tolerance {
            floor: floor.map_or(self.floor, |f| f.max(self.floor)),
            percent: percent.map_or(self.percent, |p| p.max(self.percent)),
        }
    }
}

/// The case deadline when a suite does not set one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Reads and validates one suite file, named as [`SuiteFile::name`] says.
pub fn load_named(file: &SuiteFile) -> Result<Suite, SuiteError> {
    let mut suite = load(&file.path)?;
    suite.name = file.name.clone();
    Ok(suite)
}

/// Reads and validates one suite file (named by its file stem).
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    use std::io::Read;
    regular_file(path)?;
    if !names_a_suite(path) {
        return Err(SuiteError::Unnamed {
            path: path.to_path_buf(),
        });
    }
    let failed = |source| SuiteError::Read {
        path: path.to_path_buf(),
        source,
    };
    // One byte past the limit is enough for the parser to refuse it; a
    // file that keeps growing is never read whole.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(limits::MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(failed)?;
    parse_suite(path, &bytes)
}

/// Whether `path`'s file name leaves a suite name once `.toml` (or, for a
/// file given by itself, its extension) is taken off: `.toml` leaves
/// nothing, and `...toml` leaves `..`, which a path's components drop, so
/// its tests would be `::case` (or take the folder's name); a name of
/// spaces reads as none.
fn names_a_suite(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return false;
    };
    let stem = match name.strip_suffix(".toml") {
        Some(stem) => stem.to_string(),
        None => Path::new(&*name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    !matches!(stem.trim(), "" | "." | "..")
}

/// Refuses `path` unless it is a regular file (or a symlink to one), before
/// it is opened: opening a FIFO blocks until a writer comes, and a device
/// such as `/dev/zero` never ends.
fn regular_file(path: &Path) -> Result<(), SuiteError> {
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)
        .map_err(|source| SuiteError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .file_type();
    let what = match () {
        _ if kind.is_file() => return Ok(()),
        _ if kind.is_dir() => "a folder",
        _ if kind.is_fifo() => "a FIFO",
        _ if kind.is_char_device() => "a character device",
        _ if kind.is_block_device() => "a block device",
        _ if kind.is_socket() => "a socket",
        _ => "neither a file nor a folder",
    };
    Err(SuiteError::NotAFile {
        path: path.to_path_buf(),
        kind: what,
    })
}

/// A suite file found by [`discover`], with the name its tests get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFile {
    /// Where it is.
    pub path: PathBuf,
    /// The suite's name in test names (`<name>::<case>`): the path below
    /// the folder it was found in, without `.toml`, folders joined by `::`
    /// (`http/s02.toml` is `http::s02`); the file stem for a file given by
    /// itself. Two files with one name are told apart by their paths as
    /// given.
    pub name: String,
}

/// The suite files under `paths`: files as given, folders searched
/// recursively for `*.toml`, each sorted so test order is stable; a file
/// reached twice is read once.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<SuiteFile>, SuiteError> {
    let mut found: Vec<SuiteFile> = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| SuiteError::Read {
            path: path.clone(),
            source,
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            collect_toml(path, &mut HashSet::new(), &mut files)?;
        } else {
            files.push(path.clone());
        }
        for file in files {
            if !seen.insert(std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone())) {
                continue;
            }
            let below = match meta.is_dir() {
                true => file.strip_prefix(path).unwrap_or(&file),
                false => Path::new(file.file_name().unwrap_or(file.as_os_str())),
            };
            found.push(SuiteFile {
                name: suite_name(below),
                path: file,
            });
        }
    }
    // Same name from two places: name both by their paths as given.
    let mut counts = std::collections::HashMap::new();
    for file in &found {
        *counts.entry(file.name.clone()).or_insert(0) += 1;
    }
    for file in &mut found {
        if counts[&file.name] > 1 {
            file.name = suite_name(&file.path);
        }
    }
    Ok(found)
}

/// `http/s02.toml` → `http::s02`: path components without the extension,
/// joined by `::`, leaving out `.`, `..` and the root.
fn suite_name(path: &Path) -> String {
    let path = path.with_extension("");
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("::")
}

/// The `*.toml` files below `dir`, recursively. Each folder is searched
/// once, by its canonical path (`visited`): a symlink back up the tree
/// (`again -> .`) is not followed round and round, which with two such
/// links would take exponential time.
fn collect_toml(
    dir: &Path,
    visited: &mut HashSet<PathBuf>,
    found: &mut Vec<PathBuf>,
) -> Result<(), SuiteError> {
    if let Ok(canonical) = std::fs::canonicalize(dir) {
        if !visited.insert(canonical) {
            return Ok(());
        }
    }
    let read = |source| SuiteError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_toml(&entry, visited, found)?;
        } else if entry.extension().is_some_and(|ext| ext == "toml") {
            found.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[SuiteFile]) -> Vec<&str> {
        files.iter().map(|f| f.name.as_str()).collect()
    }

    /// A duration read from a report may be as large as a Duration gets:
    /// its slack saturates rather than panics.
    #[test]
    fn slack_saturates() {
        let wide = Tolerance::DEFAULT.widened(None, Some(u32::MAX));
        assert_eq!(wide.slack(Duration::MAX), Duration::MAX);
        assert_eq!(
            Tolerance::DEFAULT.slack(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn same_file_names_in_different_folders_get_distinct_suite_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in ["a/s.toml", "b/s.toml", "c.toml", "b/notes.txt"] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "").expect("write");
        }
        let root = dir.path().to_path_buf();
        let found = discover(std::slice::from_ref(&root)).expect("discover");
        assert_eq!(names(&found), ["a::s", "b::s", "c"]);
        // Given by themselves, both would be `s`: their paths tell them apart.
        let a = root.join("a/s.toml");
        let b = root.join("b/s.toml");
        let found = discover(&[a.clone(), b]).expect("discover");
        assert_ne!(found[0].name, found[1].name);
        assert!(found[0].name.ends_with("a::s"), "{}", found[0].name);
        // A file reached twice is read once.
        let found = discover(&[root.clone(), a]).expect("discover");
        assert_eq!(names(&found), ["a::s", "b::s", "c"]);
    }

    /// A `*.toml` FIFO would block `check` forever on open; a device such
    /// as `/dev/zero` would be read without end.
    #[test]
    fn a_fifo_or_device_named_as_a_suite_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("f.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        std::fs::write(dir.path().join("a.toml"), "").expect("write");
        let found = discover(&[dir.path().to_path_buf()]).expect("discover");
        assert_eq!(names(&found), ["a", "f"]);
        let err = load(&fifo).expect_err("a FIFO is refused");
        let message = err.to_string();
        assert!(
            message.contains("expected a regular file, found a FIFO"),
            "{message}"
        );
        assert!(message.contains(&fifo.display().to_string()), "{message}");
        let err = load(Path::new("/dev/zero")).expect_err("a device is refused");
        assert!(
            err.to_string().contains("found a character device"),
            "{err}"
        );
    }

    /// Two links back up the tree would double the walk at every level.
    #[test]
    fn symlink_loops_in_a_suites_folder_are_walked_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.toml"), "").expect("write");
        std::os::unix::fs::symlink(".", dir.path().join("again")).expect("symlink");
        std::os::unix::fs::symlink(".", dir.path().join("more")).expect("symlink");
        let found = discover(&[dir.path().to_path_buf()]).expect("discover");
        assert_eq!(names(&found), ["a"]);
    }

    /// A file name with nothing before `.toml` names no suite: its tests
    /// would be `::case`. It is refused, naming the file, however it is
    /// reached; a name that is only odd is not.
    #[test]
    fn a_file_name_that_leaves_no_suite_name_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let suite = "[[case]]\nname = \"c\"\nclient = [\"close\"]\n";
        for file in [
            "...toml",
            "..toml",
            ".toml",
            " .toml",
            "in/...toml",
            "..txt",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, suite).expect("write");
            let err = load(&path).expect_err(file);
            assert!(matches!(err, SuiteError::Unnamed { .. }), "{file}: {err}");
            let message = err.to_string();
            assert!(
                message.contains(&path.display().to_string())
                    && message.contains("expected a file name with a name before `.toml`"),
                "{message}"
            );
        }
        // Found in a folder, `in/...toml` would have taken the name `in`.
        let found = discover(&[dir.path().to_path_buf()]).expect("discover");
        for file in &found {
            assert!(
                matches!(load_named(file), Err(SuiteError::Unnamed { .. })),
                "{file:?}"
            );
        }
        for file in ["....toml", ".a.toml", "a..toml"] {
            let path = dir.path().join(file);
            std::fs::write(&path, suite).expect("write");
            assert!(load(&path).is_ok(), "{file}");
        }
    }
}
