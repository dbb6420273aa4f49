//! The declarative model: suites of cases, cases of steps by side.
//!
//! A suite is one TOML file; its cases are `[[case]]` tables; each case has
//! a script per side (`client = [...]`, `server = [...]`, and for a middle
//! peer `proxy = [...]`), one step per line.
//! The two scripts run at the same time, each in order, which is how the
//! seeds' timelines read: the server streams chunks on its own clock while
//! the client reads with its own timeout. Expectations attach to the step
//! whose result they judge (`expect = "EPIPE"`); kernel states are steps of
//! their own (`{ state = { server = "CLOSE_WAIT" }, within = "1s" }`) that
//! poll until they hold or the deadline passes.
//!
//! [`load`] reads and validates a file and reports every error in it with
//! file:line:col, what was expected and what was found ([`parse`]). The model
//! below is what the rest of the crate sees: already validated, with each
//! step's place in the file kept for reports.

mod parse;
pub mod schema;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{Link, Outcome, Side, Socket, TcpState};

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
}

impl Case {
    /// The test name, `<suite>::<case>`, as `cargo test` lists it.
    pub fn test_name(&self, suite: &Suite) -> String {
        format!("{}::{}", suite.name, self.name)
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
#[derive(Debug, Clone)]
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

/// What a side does in one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Bind and listen (server).
    Listen {
        /// A loopback address; a bare port means 127.0.0.1.
        addr: SocketAddr,
        /// The accept queue length.
        backlog: u32,
    },
    /// Accept one connection from the listener (server).
    Accept {
        /// Give up after this long, reported as EAGAIN (as `SO_RCVTIMEO` does).
        timeout: Option<Duration>,
    },
    /// Connect to an address (client).
    Connect {
        /// A loopback address; a bare port means 127.0.0.1.
        addr: SocketAddr,
        /// Give up after this long, reported as EINPROGRESS: the kernel's
        /// answer to a connect under `SO_SNDTIMEO`, whose SYN keeps going.
        timeout: Option<Duration>,
        /// Bind this local port first (to show a 4-tuple in TIME_WAIT
        /// cannot be reused); an ephemeral port otherwise.
        from: Option<u16>,
    },
    /// Write a payload in full.
    Send {
        /// What to write.
        payload: Payload,
        /// Give up after this long, reported as EAGAIN (as `SO_SNDTIMEO` does).
        timeout: Option<Duration>,
    },
    /// One read call.
    Recv {
        /// Read at most this many bytes.
        max: usize,
        /// Per-read idle timeout, reported as EAGAIN (as `SO_RCVTIMEO` does).
        timeout: Option<Duration>,
    },
    /// Read until a byte count or a pattern, with an idle timeout per read.
    RecvUntil {
        /// When to stop.
        until: Until,
        /// Per-read idle timeout, reported as EAGAIN (as `SO_RCVTIMEO` does).
        timeout: Option<Duration>,
    },
    /// `shutdown(2)` one or both directions.
    Shutdown(How),
    /// `close(2)`: FIN, or RST when unread data is pending.
    Close,
    /// Close with `SO_LINGER {on, 0}`: RST, no TIME_WAIT.
    Abort,
    /// Do nothing for a while.
    Sleep(Duration),
    /// Set socket options, on the current socket or the next one made.
    Set(SocketOptions),
    /// Let the other sides' `wait` for this label go on.
    Mark(String),
    /// Wait until another side reaches `mark` with this label.
    Wait {
        /// The label to wait for.
        label: String,
        /// How long to wait before failing the case.
        timeout: Option<Duration>,
    },
    /// Assert kernel states: now, or `within` a deadline (polling).
    State {
        /// The expected state per socket.
        expected: Vec<(Socket, TcpState)>,
        /// Poll until this passes; `None` samples once.
        within: Option<Duration>,
    },
}

impl Action {
    /// The name the step is written with, e.g. `recv_until`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Listen { .. } => "listen",
            Action::Accept { .. } => "accept",
            Action::Connect { .. } => "connect",
            Action::Send { .. } => "send",
            Action::Recv { .. } => "recv",
            Action::RecvUntil { .. } => "recv_until",
            Action::Shutdown(_) => "shutdown",
            Action::Close => "close",
            Action::Abort => "abort",
            Action::Sleep(_) => "sleep",
            Action::Set(_) => "set",
            Action::Mark(_) => "mark",
            Action::Wait { .. } => "wait",
            Action::State { .. } => "state",
        }
    }

    /// Whether the step has a result to judge (`expect`, `bytes`, `after`,
    /// `longer_than`): every socket call and `wait`, not `sleep`, `set`,
    /// `mark` or `state`, which is judged by its own states.
    pub fn is_judged(&self) -> bool {
        !matches!(
            self,
            Action::Sleep(_) | Action::Set(_) | Action::Mark(_) | Action::State { .. }
        )
    }

    /// What an unstated expectation means: no errno (EOF is fine), and for
    /// `recv_until`, that the target was reached.
    pub fn default_expectation(&self) -> Expect {
        let result = match self {
            Action::RecvUntil { .. } => vec![Outcome::Ok],
            _ => vec![Outcome::Ok, Outcome::Eof],
        };
        Expect {
            result,
            bytes: None,
            after: None,
            longer_than: None,
        }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// These bytes, `repeat` times.
    Text {
        /// The literal text.
        text: String,
        /// How many copies, 1 by default.
        repeat: usize,
    },
    /// This many filler bytes (a repeating alphabet, so captures are legible).
    Size(usize),
}

impl Payload {
    /// The total number of bytes the payload writes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text { text, repeat } => text.len() * repeat,
            Payload::Size(n) => *n,
        }
    }

    /// Whether the payload writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When `recv_until` stops.
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// Once this many bytes have arrived in total.
    Bytes(u64),
    /// Once this text has arrived.
    Pattern(String),
}

/// Which direction `shutdown` closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`: sends FIN, keeps reading.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

/// Socket options a `set` step names; unnamed ones are left alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SocketOptions {
    /// `SO_LINGER`: `Some(None)` turns it off, `Some(Some(d))` on with `d`,
    /// a whole number of seconds (the parser refuses any other: `l_linger`
    /// counts seconds).
    pub linger: Option<Option<Duration>>,
    /// `TCP_NODELAY`.
    pub nodelay: Option<bool>,
    /// `SO_KEEPALIVE`.
    pub keepalive: Option<bool>,
    /// `SO_RCVBUF`, in bytes (the kernel doubles it).
    pub rcvbuf: Option<usize>,
    /// `SO_SNDBUF`, in bytes (the kernel doubles it).
    pub sndbuf: Option<usize>,
}

/// `linger=0s nodelay=true`: only what the step sets.
impl fmt::Display for SocketOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.linger {
            Some(None) => parts.push("linger=off".to_string()),
            // Whole seconds, as the parser allows and the kernel counts.
            Some(Some(d)) => parts.push(format!("linger={}s", d.as_secs())),
            None => {}
        }
        if let Some(on) = self.nodelay {
            parts.push(format!("nodelay={on}"));
        }
        if let Some(on) = self.keepalive {
            parts.push(format!("keepalive={on}"));
        }
        if let Some(n) = self.rcvbuf {
            parts.push(format!("rcvbuf={n}"));
        }
        if let Some(n) = self.sndbuf {
            parts.push(format!("sndbuf={n}"));
        }
        f.write_str(&parts.join(" "))
    }
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
}

/// How far a measured duration may be from the expected one:
/// `max(floor, percent of the expected duration)`, either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// The least slack, whatever the interval.
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
        let share = expected.mul_f64(f64::from(self.percent) / 100.0);
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

/// Reads and validates one suite file.
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    let bytes = std::fs::read(path).map_err(|source| SuiteError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_suite(path, &bytes)
}

/// The suite files under `paths`: files as given, folders searched
/// recursively for `*.toml`, each sorted so test order is stable.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| SuiteError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            collect_toml(path, &mut found)?;
        } else {
            found.push(path.clone());
        }
    }
    Ok(found)
}

fn collect_toml(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), SuiteError> {
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
            collect_toml(&entry, found)?;
        } else if entry.extension().is_some_and(|ext| ext == "toml") {
            found.push(entry);
        }
    }
    Ok(())
}

/// The action as the timeline shows it, e.g. `recv_until 5000000 B (idle 25 ms)`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| format!("{} ms", d.as_millis());
        let timeout = |t: &Option<Duration>| {
            t.as_ref()
                .map(|d| format!(" (timeout {})", ms(d)))
                .unwrap_or_default()
        };
        match self {
            Action::Listen { addr, .. } => write!(f, "listen {addr}"),
            Action::Accept { timeout: t } => write!(f, "accept{}", timeout(t)),
            Action::Connect {
                addr,
                timeout: t,
                from: Some(port),
            } => write!(f, "connect {addr} from port {port}{}", timeout(t)),
            Action::Connect {
                addr,
                timeout: t,
                from: None,
            } => write!(f, "connect {addr}{}", timeout(t)),
            Action::Send {
                payload: Payload::Text { text, repeat: 1 },
                timeout: t,
            } if text.len() <= 24 => {
                write!(f, "send {text:?}{}", timeout(t))
            }
            Action::Send {
                payload,
                timeout: t,
            } => write!(f, "send {} B{}", payload.len(), timeout(t)),
            Action::Recv { timeout: t, .. } => write!(f, "recv{}", timeout(t)),
            Action::RecvUntil {
                until: Until::Bytes(n),
                timeout: t,
            } => write!(f, "recv_until {n} B{}", timeout(t)),
            Action::RecvUntil {
                until: Until::Pattern(p),
                timeout: t,
            } => write!(f, "recv_until {p:?}{}", timeout(t)),
            Action::Shutdown(how) => write!(f, "shutdown {}", format!("{how:?}").to_lowercase()),
            Action::Close => f.write_str("close"),
            Action::Abort => f.write_str("abort (SO_LINGER 0)"),
            Action::Sleep(d) => write!(f, "sleep {}", ms(d)),
            Action::Set(options) => write!(f, "set {options}"),
            Action::Mark(label) => write!(f, "mark {label:?}"),
            Action::Wait { label, .. } => write!(f, "wait {label:?}"),
            Action::State { expected, within } => {
                let states: Vec<String> = expected
                    .iter()
                    .map(|(socket, state)| format!("{socket} {}", state.name()))
                    .collect();
                write!(f, "state {}", states.join(", "))?;
                match within {
                    Some(d) => write!(f, " within {}", ms(d)),
                    None => Ok(()),
                }
            }
        }
    }
}
