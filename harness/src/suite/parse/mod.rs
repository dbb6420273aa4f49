//! Reading a suite file: TOML in, a validated [`Suite`] or every error out.
//!
//! The file is parsed with `toml`'s span-keeping document parser, then
//! walked by hand one case and one step at a time, each step deserialized on
//! its own through serde. That split is what lets one run report every
//! error in the file (a typo in step 3 does not hide a bad duration in step
//! 9), each with its own span: the first serde error would otherwise end the
//! whole document. Raw step types below avoid `serde(untagged)` and
//! `serde(flatten)`, which would turn precise messages into "data did not
//! match any variant".

#[cfg(test)]
mod definition_tests;
mod raw;
mod step;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::de;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::action::values::DurationValue;
use super::limits::{MAX_CASES_PER_FILE, MAX_FILE_BYTES, MAX_PROBLEMS_SHOWN, bytes_in_words};
use super::{
    Action, Case, CaseVersion, Check, Control, DEFAULT_DEADLINE, DEFAULT_READY_WITHIN,
    DEFAULT_STOP_GRACE, Location, Program, Scope, Script, Suite, Tolerance, Version,
};
use crate::model::Side;
use raw::{RawProgram, RawTolerance, SysctlValue};

/// What went wrong reading a suite.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file or folder could not be read at all.
    #[error("failed to read suite {}: {source}", path.display())]
    Read {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The path is a FIFO, a device or a socket: reading one could block
    /// forever or never end, so it is refused before it is opened.
    #[error("failed to read suite {}: expected a regular file, found {kind}", path.display())]
    NotAFile {
        /// What was given or found.
        path: PathBuf,
        /// What it is instead ("a FIFO", "a character device", ...).
        kind: &'static str,
    },
    /// The file was read but is not a valid suite; every problem is listed.
    #[error("{rendered}")]
    Invalid {
        /// The suite file.
        path: PathBuf,
        /// One entry per problem, in file order.
        diagnostics: Vec<Diagnostic>,
        /// The problems rendered with source excerpts, file:line:col first.
        rendered: String,
    },
}

/// One problem in a suite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub location: Location,
    /// What was expected and what was found.
    pub message: String,
    span: Range<usize>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Parses and validates suite `bytes` read from `path`.
///
/// Bytes that are not UTF-8 are each reported where they are, and the rest
/// of the file is still checked: it is read as if each bad sequence were
/// U+FFFD, which also keeps line:col right (one column per bad sequence)
/// and lets the report show the line.
pub fn parse_suite(path: &Path, bytes: &[u8]) -> Result<Suite, SuiteError> {
    if bytes.len() > MAX_FILE_BYTES {
        let mut reader = Reader::new(path, "");
        reader.problem(
            0..0,
            format!(
                "expected a suite file of at most {}, found one of {} bytes or more",
                bytes_in_words(MAX_FILE_BYTES),
                bytes.len()
            ),
        );
        return Err(reader.into_error());
    }
    let mut problems = Vec::new();
    let lossy;
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => {
            let mut text = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                let bad = chunk.invalid();
                if bad.is_empty() {
                    continue;
                }
                let at = text.len();
                text.push(char::REPLACEMENT_CHARACTER);
                let shown: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
                let (noun, verb) = if bad.len() == 1 {
                    ("byte", "is")
                } else {
                    ("bytes", "are")
                };
                problems.push((
                    at..text.len(),
                    format!(
                        "expected UTF-8 text, found the {noun} {} that {verb} not valid UTF-8",
                        shown.join(" ")
                    ),
                ));
            }
            lossy = text;
            &lossy
        }
    };
    let mut reader = Reader::new(path, text);
    for (span, message) in problems {
        reader.problem(span, message);
    }
    let suite = reader.suite();
    if reader.count == 0 {
        Ok(suite)
    } else {
        Err(reader.into_error())
    }
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    /// The byte offset each line starts at, so a location costs a binary
    /// search, not a scan from the top: loading stays linear in the size of
    /// the file however many steps it has.
    line_starts: Vec<usize>,
    /// The first problems found ([`KEPT_PROBLEMS`] at most), to be sorted
    /// into file order and shown.
    problems: Vec<(Range<usize>, String)>,
    /// Every problem found, kept or not: "did this step add a problem" is
    /// a comparison of counts.
    count: usize,
    /// The steps of the case being read so far, loops' steps included,
    /// against [`MAX_STEPS_PER_CASE`].
    case_steps: usize,
}

/// How many problems are kept to be sorted before the first
/// [`MAX_PROBLEMS_SHOWN`] are shown: they are found nearly in file order,
/// so the first ones found include the first ones in the file.
const KEPT_PROBLEMS: usize = 20 * MAX_PROBLEMS_SHOWN;

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, text: &'a str) -> Reader<'a> {
        Reader {
            path,
            text,
            line_starts: line_starts(text),
            problems: Vec::new(),
            count: 0,
            case_steps: 0,
        }
    }

    /// file:line:col of a byte offset (see [`Location::of_offset`], which
    /// this computes without scanning the file).
    fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|start| *start <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        Location {
            path: self.path.to_path_buf(),
            line,
            column: self.text[start..offset].chars().count() + 1,
        }
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.count += 1;
        if self.problems.len() < KEPT_PROBLEMS {
            self.problems.push((span, message.into()));
        }
    }

    fn toml_problem(&mut self, err: toml::de::Error, fallback: Range<usize>) {
        let span = err.span().unwrap_or(fallback);
        self.problem(span, expected_first(err.message().trim_end()));
    }

    /// Deserializes one value on its own, so its error does not stop the rest.
    fn value<T: de::DeserializeOwned>(&mut self, value: &Spanned<DeValue<'a>>) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(err) => {
                self.toml_problem(err, value.span());
                None
            }
        }
    }

    fn suite(&mut self) -> Suite {
        let name = self
            .path
            .file_stem()
            .map_or_else(|| "suite".to_string(), |s| s.to_string_lossy().into_owned());
        let mut suite = Suite {
            name,
            path: self.path.to_path_buf(),
            description: None,
            cases: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            for err in errors {
                self.toml_problem(err, 0..0);
            }
            return suite;
        }
        let mut defaults = Defaults {
            deadline: DEFAULT_DEADLINE,
            tolerance: Tolerance::DEFAULT,
            sysctls: Vec::new(),
            program: None,
        };
        let mut cases = None;
        for (key, value) in root.get_ref() {
            match key.get_ref().as_ref() {
                "description" => suite.description = self.value(value),
                "deadline" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        defaults.deadline = d.0;
                    }
                }
                "tolerance" => {
                    if let Some(t) = self.value::<RawTolerance>(value) {
                        defaults.tolerance = t.apply(Tolerance::DEFAULT);
                    }
                }
                "case" => cases = Some(value),
                "program" => defaults.program = self.program(value, true),
                "sysctl" => defaults.sysctls = self.sysctls(value),
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` at the top of a suite, expected one of `description`, `deadline`, `tolerance`, `sysctl`, `program`, `case`"),
                ),
            }
        }
        let Some(cases) = cases else {
            self.problem(0..0, "expected at least one `[[case]]` table, found none");
            return suite;
        };
        let Some(array) = cases.get_ref().as_array() else {
            self.problem(
                cases.span(),
                format!(
                    "expected `case` to be an array of tables (`[[case]]`), found {}",
                    cases.get_ref().type_str()
                ),
            );
            return suite;
        };
        if array.is_empty() {
            self.problem(
                cases.span(),
                "expected at least one `[[case]]` table, found none",
            );
            return suite;
        }
        if array.len() > MAX_CASES_PER_FILE {
            self.problem(
                cases.span(),
                format!(
                    "expected at most {MAX_CASES_PER_FILE} cases in a suite file, found {}: split it into several files",
                    array.len()
                ),
            );
            return suite;
        }
        let mut names = BTreeMap::new();
        for item in array.iter() {
            if let Some(case) = self.case(item, defaults.clone(), &mut names) {
                suite.cases.extend(versions_of(case));
            }
        }
        suite
    }

    /// `names` maps the case names seen so far to where each was written,
    /// so a duplicate is found even when either case has other errors.
    fn case(
        &mut self,
        item: &Spanned<DeValue<'a>>,
        defaults: Defaults,
        names: &mut BTreeMap<String, Location>,
    ) -> Option<Case> {
        let Some(table) = item.get_ref().as_table() else {
            self.problem(
                item.span(),
                format!("expected a case table, found {}", item.get_ref().type_str()),
            );
            return None;
        };
        let before = self.count;
        self.case_steps = 0;
        let location = self.location(item.span().start);
        let mut case = Case {
            name: String::new(),
            description: None,
            location,
            ignore: None,
            deadline: defaults.deadline,
            sysctls: defaults.sysctls.clone(),
            tolerance: defaults.tolerance,
            scripts: Vec::new(),
            program: defaults.program.clone(),
            version: None,
            topology: super::Topology::Loopback,
        };
        let mut topology_key = None;
        // Where the `client` and `server` scripts are, for a program that
        // plays one of them.
        let mut side_keys = [None, None];
        // Where the case sets sysctls of its own, if it does.
        let mut own_sysctl = None;
        // `Some(None)`: a `name` is there but is not a string (already reported).
        let mut name = None;
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "name" => name = Some(self.value::<Spanned<String>>(value)),
                "description" => case.description = self.value(value),
                "ignore" => case.ignore = self.value(value),
                "deadline" => {
                    if let Some(d) = self.value::<DurationValue>(value) {
                        case.deadline = d.0;
                    }
                }
                "tolerance" => {
                    if let Some(t) = self.value::<RawTolerance>(value) {
                        case.tolerance = t.apply(defaults.tolerance);
                    }
                }
                "sysctl" => {
                    own_sysctl = Some(key.span());
                    // The case's own values win over the suite's, key by key.
                    for (key, value) in self.sysctls(value) {
                        case.sysctls.retain(|(k, _)| *k != key);
                        case.sysctls.push((key, value));
                    }
                }
                "client" => {
                    side_keys[0] = Some(key.span());
                    case.scripts.push(Script { side: Side::Client, steps: self.steps(Side::Client, value, false) })
                }
                "server" => {
                    side_keys[1] = Some(key.span());
                    case.scripts.push(Script { side: Side::Server, steps: self.steps(Side::Server, value, false) })
                }
                "program" => case.program = self.program(value, false),
                "topology" => {
                    topology_key = Some(value.span());
                    match value.get_ref().as_str() {
                        Some("loopback") => case.topology = super::Topology::Loopback,
                        Some("two_hosts") => case.topology = super::Topology::TwoHosts,
                        _ => self.problem(
                            value.span(),
                            "expected `topology` to be \"loopback\" (the default) or \"two_hosts\"",
                        ),
                    }
                }
                "proxy" => case.scripts.push(Script { side: Side::Proxy, steps: self.steps(Side::Proxy, value, false) }),
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` in a case, expected one of `name`, `description`, `ignore`, `deadline`, `tolerance`, `sysctl`, `topology`, `program`, `client`, `server`, `proxy`"),
                ),
            }
        }
        case.scripts.sort_by_key(|s| s.side);
        if let (super::Topology::TwoHosts, Some(at)) = (case.topology, topology_key) {
            self.two_hosts(&mut case, at);
        }
        match name {
            Some(Some(name)) if valid_case_name(name.get_ref()) => {
                let at = self.location(name.span().start);
                if let Some(first) = names.get(name.get_ref()) {
                    self.problem(
                        name.span(),
                        format!(
                            "expected a case name unique in this suite, found `{}` again (first at line {}, column {}): test names must be unique",
                            name.get_ref(),
                            first.line,
                            first.column
                        ),
                    );
                } else {
                    names.insert(name.get_ref().clone(), at);
                }
                case.name = name.into_inner();
            }
            Some(None) => {}
            Some(Some(name)) => self.problem(
                name.span(),
                format!(
                    "expected a case name of letters, digits, `_` and `-`, found `{}`",
                    name.get_ref()
                ),
            ),
            None => self.problem(
                item.span().start..item.span().start,
                "expected a `name` for this case, found none",
            ),
        }
        if case.scripts.is_empty() {
            self.problem(
                item.span().start..item.span().start,
                "expected a `client`, `server` or `proxy` script in this case, found none",
            );
        }
        let role = case.program.as_ref().map(|p| p.role);
        let played = match role {
            Some(Side::Client) => side_keys[0].clone(),
            Some(_) => side_keys[1].clone(),
            None => None,
        };
        if let (Some(program), Some(at)) = (&case.program, played) {
            self.problem(
                at,
                format!(
                    "expected no `{0}` script in a case with a program (the program at line {1} plays the {0}), found one",
                    program.role, program.location.line
                ),
            );
        }
        if let (Some(program), Some(at)) = (case.program.as_ref(), own_sysctl) {
            if program.scope == Scope::Suite {
                self.problem(
                    at,
                    format!(
                        "expected no `sysctl` of its own in a case that shares the suite's program (`scope = \"suite\"` at line {}), found one: a sysctl applies to the whole namespace that program serves every case in; set it in the suite's `sysctl` table, or give this case a `program` of its own",
                        program.location.line
                    ),
                );
            }
        }
        self.across_scripts(&case.scripts, role);
        self.faults(&case);
        if case.shares_program() {
            self.shared_program_steps(&case.scripts);
        }
        (self.count == before).then_some(case)
    }

    /// Steps a case that shares the suite's program cannot have: a
    /// `signal` would stop (or change) the program for every later case.
    fn shared_program_steps(&mut self, scripts: &[Script]) {
        for script in scripts {
            for step in super::every_step(&script.steps) {
                if let Action::Control(Control::Signal(_)) = &step.action {
                    self.problem(
                        step.span.clone(),
                        "expected no `signal` in a case that shares the suite's program (`scope = \"suite\"`), found one: the signal would reach the program every later case uses; give this case a `program` of its own",
                    );
                }
                if let Action::Control(Control::Fault(_)) = &step.action {
                    self.problem(
                        step.span.clone(),
                        "expected no fault in a case that shares the suite's program (`scope = \"suite\"`), found one: a fault is a rule of the namespace that program serves every case in; give this case a `program` of its own",
                    );
                }
            }
        }
    }

    /// A two-host case: only a client and a server (a script, or the case's
    /// own program, which must listen on `{host}` or a wildcard address),
    /// and IPv4 loopback addresses, which mean the server's host there
    /// (`connect = 8080` reaches the server across the link).
    fn two_hosts(&mut self, case: &mut Case, at: Range<usize>) {
        match &case.program {
            Some(program) if program.role != Side::Server => self.problem(
                at.clone(),
                "expected the program under test to play the server in a `two_hosts` case, found it playing the client: the client's host has only the client script",
            ),
            Some(_) if case.shares_program() => self.problem(
                at.clone(),
                "expected a case's own program in a `two_hosts` case, found the suite's: the suite's program runs in a namespace of its own, with no second host (give the case a `program`)",
            ),
            _ => {}
        }
        if case.scripts.iter().any(|s| s.side == Side::Proxy) {
            self.problem(
                at.clone(),
                "expected a `client` and a `server` in a `two_hosts` case, found a `proxy`: two hosts have no third",
            );
        }
        let server = std::net::IpAddr::V4(crate::sandbox::topology::HOST_ADDRESS);
        let mut problems = Vec::new();
        for script in &mut case.scripts {
            for step in super::every_step_mut(&mut script.steps) {
                let addr = match &mut step.action {
                    Action::Socket(
                        super::SocketCall::Listen { addr, .. }
                        | super::SocketCall::Connect { addr, .. },
                    ) => addr,
                    _ => continue,
                };
                if addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
                    addr.set_ip(server);
                } else {
                    problems.push((step.span.clone(), *addr));
                }
            }
        }
        for (span, addr) in problems {
            self.problem(
                span,
                format!(
                    "expected a bare port (the server's host, {server}) in a `two_hosts` case, found {addr}"
                ),
            );
        }
    }

    /// Faults no step alone can judge: one whose side has no port in the
    /// case (nothing it sends could be told apart), two of one name, and
    /// a `lift` of a name no fault has, or of `all` with no fault at all.
    fn faults(&mut self, case: &Case) {
        let steps = || {
            case.scripts
                .iter()
                .flat_map(|script| super::every_step(&script.steps))
        };
        let mut names: Vec<&str> = Vec::new();
        // Cuts first: their names are the faults' too.
        let mut cuts: Vec<&str> = Vec::new();
        for step in steps() {
            let Action::Control(Control::Cut(cut)) = &step.action else {
                continue;
            };
            if case.topology != super::Topology::TwoHosts {
                self.problem(
                    step.span.clone(),
                    "expected `cut` in a case with `topology = \"two_hosts\"`, found it on one loopback: there is no other host to cut a side off from",
                );
            }
            if let Some(name) = &cut.name {
                if cuts.contains(&name.as_str()) {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected each fault's `name` once in a case, found {name:?} again"
                        ),
                    );
                }
                cuts.push(name);
            }
        }
        for step in steps() {
            let (from, to, what) = match &step.action {
                Action::Control(Control::Fault(fault)) => (fault.from, fault.to, "a fault on"),
                Action::Check(Check::Sent { segments, .. }) => {
                    (segments.from, segments.to, "a count of")
                }
                _ => continue,
            };
            if case.ports_between(from, to).is_empty() {
                let to_text = to.map(|to| format!(" to the {to}")).unwrap_or_default();
                self.problem(
                    step.span.clone(),
                    format!(
                        "expected {what} what a side sends through a port this case names, found none for what the {from}{to_text} sends: the {from} neither listens on nor connects to a port{}",
                        if to.is_none() { "" } else { " the other side connects to or listens on" }
                    ),
                );
            }
            let Action::Control(Control::Fault(fault)) = &step.action else {
                continue;
            };
            if let Some(name) = &fault.name {
                if names.contains(&name.as_str()) || cuts.contains(&name.as_str()) {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected each fault's `name` once in a case, found {name:?} again"
                        ),
                    );
                }
                names.push(name);
            }
        }
        let any = steps().any(|s| {
            matches!(
                s.action,
                Action::Control(Control::Fault(_) | Control::Cut(_))
            )
        });
        let taken_names = names.clone();
        names.extend(cuts.iter().copied());
        for step in steps() {
            match &step.action {
                Action::Check(Check::Taken { name, .. }) if cuts.contains(&name.as_str()) => {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `taken` of a `drop`, `reject` or `delay`, found {name:?}, a `cut`: a cut host's packets are not counted by a rule"
                        ),
                    );
                }
                Action::Control(Control::Lift(super::Lift::Named(name)))
                    if !names.contains(&name.as_str()) =>
                {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `lift` of a fault this case names, found {name:?}; its faults are named {}",
                            if names.is_empty() {
                                "nothing (give one a `name`, or `lift = \"all\"`)".to_string()
                            } else {
                                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                }
                Action::Check(Check::Taken { name, .. })
                    if !taken_names.contains(&name.as_str()) =>
                {
                    self.problem(
                        step.span.clone(),
                        format!(
                            "expected `taken` of a fault this case names, found {name:?}; its faults are named {}",
                            if names.is_empty() {
                                "nothing (give one a `name`)".to_string()
                            } else {
                                names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                }
                Action::Control(Control::Lift(super::Lift::All)) if !any => {
                    self.problem(
                        step.span.clone(),
                        "expected `lift = \"all\"` in a case with a fault, found no `drop` or `reject`: it would lift nothing",
                    );
                }
                _ => {}
            }
        }
    }

    /// What no single step shows: a state check of a side that has no
    /// script (it can never hold a socket, so "gone" would pass without
    /// meaning anything), and a `wait` for a label no other side marks
    /// (it could only ever time out).
    fn across_scripts(&mut self, scripts: &[Script], role: Option<Side>) {
        // A program plays its side: its sockets can be checked.
        let program = role.is_some();
        let has = |side: Side| scripts.iter().any(|s| s.side == side) || role == Some(side);
        let marks = |side: Side, label: &str| {
            scripts.iter().filter(|s| s.side != side).any(|s| {
                super::every_step(&s.steps)
                    .any(|m| matches!(&m.action, Action::Control(Control::Mark(l)) if l == label))
            })
        };
        for script in scripts {
            for step in super::every_step(&script.steps) {
                match &step.action {
                    Action::Check(Check::State { expected, .. }) => {
                        for (socket, _) in expected {
                            if !has(socket.side()) {
                                self.problem(
                                    step.span.clone(),
                                    format!(
                                        "expected a state check of a socket some side holds, found `{socket}`, which is the {}'s, and this case has no `{}` script",
                                        socket.side(),
                                        socket.side()
                                    ),
                                );
                            }
                        }
                    }
                    Action::Check(Check::AcceptQueue { expected, .. }) => {
                        for (listening, _) in expected {
                            if !has(*listening) {
                                self.problem(
                                    step.span.clone(),
                                    format!(
                                        "expected the accept queue of a side that listens, found `{listening}`, and this case has no `{listening}` script or program playing it"
                                    ),
                                );
                            }
                        }
                    }
                    Action::Check(Check::Log { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `log` to read, found none: `log` checks a program's output",
                        );
                    }
                    Action::Check(Check::Syscall { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `syscall` to trace, found none: `syscall` counts a program's own socket calls",
                        );
                    }
                    Action::Control(Control::Signal(_)) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `signal` to go to, found none",
                        );
                    }
                    Action::Check(Check::Released { .. }) if !program => {
                        self.problem(
                            step.span.clone(),
                            "expected a program under test for `released` to look into, found none: `released` reads a program's fd table",
                        );
                    }
                    Action::Check(Check::Sent { segments, .. })
                        if segments.since.as_ref().is_some_and(|label| {
                            !scripts.iter().any(|s| {
                                super::every_step(&s.steps).any(|m| {
                                matches!(&m.action, Action::Control(Control::Mark(l)) if l == label)
                            })
                            })
                        }) =>
                    {
                        self.problem(
                        step.span.clone(),
                        format!(
                            "expected `since` to name a label some side marks, found {:?} and no `mark` of it",
                            segments.since.as_deref().unwrap_or_default()
                        ),
                    );
                    }
                    Action::Control(Control::Wait { label, .. }) if !marks(script.side, label) => {
                        self.problem(
                            step.span.clone(),
                            format!(
                                "expected a `wait` for a label another side marks, found `wait = {label:?}` and no `mark = {label:?}` in another script: it could only time out"
                            ),
                        );
                    }
                    _ => {}
                }
            }
        }
    }

    /// A `[program]` table: serde reads its shape, this checks the rest
    /// (an empty command, port 0, a pattern that does not compile, a
    /// signal that is not one).
    /// `suite_level`: the suite's own `[program]` (only it may serve the
    /// whole suite).
    fn program(&mut self, value: &Spanned<DeValue<'a>>, suite_level: bool) -> Option<Program> {
        let raw = self.value::<RawProgram>(value)?;
        let before = self.count;
        let at = value.span();
        if raw.run.is_empty() || raw.run[0].is_empty() {
            self.problem(
                at.clone(),
                "expected `run` to name a command and its arguments, like `run = [\"./server\", \"--port\", \"{port}\"]`, found none",
            );
        }
        if raw.port == 0 {
            self.problem(at.clone(), "expected a `port` from 1 to 65535, found 0");
        }
        let ready = raw.ready.as_deref().and_then(|pattern| {
            crate::suite::limits::pattern(pattern)
                .map_err(|e| {
                    self.problem(
                        at.clone(),
                        format!(
                            "expected `ready` to be a regular expression, found `{pattern}`: {e}"
                        ),
                    )
                })
                .ok()
        });
        let role = match raw.role.as_deref() {
            None | Some("server") => Side::Server,
            Some("client") => Side::Client,
            Some(other) => {
                self.problem(
                    at.clone(),
                    format!("expected `role` to be \"server\" or \"client\", found \"{other}\""),
                );
                Side::Server
            }
        };
        let stop = match raw.stop.as_deref() {
            None => nix::sys::signal::Signal::SIGTERM,
            Some(name) => match name.parse::<nix::sys::signal::Signal>() {
                Ok(signal) => signal,
                Err(_) => {
                    self.problem(
                        at.clone(),
                        format!("expected `stop` to be a signal name like \"SIGTERM\" or \"SIGINT\", found \"{name}\""),
                    );
                    nix::sys::signal::Signal::SIGTERM
                }
            },
        };
        let scope = match raw.scope.as_deref() {
            None | Some("case") => Scope::Case,
            Some("suite") if !suite_level => {
                self.problem(
                    at.clone(),
                    "expected `scope = \"suite\"` only in the suite's `[program]`, found it in a case's: a case's own program serves that case alone",
                );
                Scope::Case
            }
            Some("suite") if role == Side::Client => {
                self.problem(
                    at.clone(),
                    "expected `scope = \"suite\"` only for a program that plays the server, found `role = \"client\"`: a client program starts once a case's script listens, so it runs per case",
                );
                Scope::Case
            }
            Some("suite") => Scope::Suite,
            Some(other) => {
                self.problem(
                    at.clone(),
                    format!("expected `scope` to be \"case\" or \"suite\", found \"{other}\""),
                );
                Scope::Case
            }
        };
        let versions = self.versions(raw.compare, scope, &at);
        (self.count == before).then(|| Program {
            versions,
            scope,
            argv: raw.run,
            env: raw.env.into_iter().collect(),
            cwd: raw.cwd,
            role,
            port: raw.port,
            ready,
            within: raw.within.map_or(DEFAULT_READY_WITHIN, |d| d.0),
            stop,
            grace: raw.grace.map_or(DEFAULT_STOP_GRACE, |d| d.0),
            requires: raw.requires,
            install: raw.install,
            location: self.location(at.start),
        })
    }

    /// `compare`: two versions, named, each with its own command or more
    /// environment; not beside a program that serves the whole suite.
    fn versions(
        &mut self,
        raw: Vec<raw::RawVersion>,
        scope: Scope,
        at: &Range<usize>,
    ) -> Vec<Version> {
        if raw.is_empty() {
            return Vec::new();
        }
        if raw.len() != 2 {
            self.problem(
                at.clone(),
                format!(
                    "expected `compare` to name two versions (the one compared against first), found {}",
                    raw.len()
                ),
            );
            return Vec::new();
        }
        if scope == Scope::Suite {
            self.problem(
                at.clone(),
                "expected `compare` only for a program started per case, found `scope = \"suite\"` beside it",
            );
        }
        for version in &raw {
            if !valid_version_name(&version.name) {
                self.problem(
                    at.clone(),
                    format!(
                        "expected a version name of letters, digits, `.`, `_` and `-`, found `{}`",
                        version.name
                    ),
                );
            }
            if version
                .run
                .as_ref()
                .is_some_and(|run| run.first().is_none_or(String::is_empty))
            {
                self.problem(
                    at.clone(),
                    format!(
                        "expected version `{}`'s `run` to name a command, found none",
                        version.name
                    ),
                );
            }
        }
        if raw[0].name == raw[1].name {
            self.problem(
                at.clone(),
                format!(
                    "expected two different version names, found `{}` twice",
                    raw[0].name
                ),
            );
        }
        raw.into_iter()
            .map(|v| Version {
                name: v.name,
                argv: v.run,
                env: v.env.into_iter().collect(),
            })
            .collect()
    }

    fn sysctls(&mut self, value: &Spanned<DeValue<'a>>) -> Vec<(String, String)> {
        let Some(table) = value.get_ref().as_table() else {
            self.problem(value.span(), format!("expected a table of sysctls like `{{ \"net.ipv4.tcp_fin_timeout\" = 5 }}`, found {}", value.get_ref().type_str()));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, v) in table {
            let name = key.get_ref().to_string();
            if let Err(why) = crate::sandbox::validate_sysctl_key(&name) {
                self.problem(key.span(), why);
                continue;
            }
            if let Some(SysctlValue(text)) = self.value(v) {
                match crate::sandbox::validate_sysctl_value(&text) {
                    Ok(()) => out.push((name, text)),
                    Err(why) => self.problem(v.span(), why),
                }
            }
        }
        out
    }

    fn into_error(mut self) -> SuiteError {
        let mut problems = std::mem::take(&mut self.problems);
        let kept = problems.len();
        problems.sort_by_key(|(span, _)| span.start);
        problems.dedup();
        // Duplicates (one problem found twice) are not counted as unshown.
        let distinct = self.count - (kept - problems.len());
        problems.truncate(MAX_PROBLEMS_SHOWN);
        let unshown = distinct - problems.len();
        let renderer = Renderer::plain();
        let path = self.path.display().to_string();
        let mut rendered = String::new();
        let mut diagnostics = Vec::new();
        for (span, message) in problems {
            let location = self.location(span.start);
            let report = &[Level::ERROR.primary_title(&message).element(
                Snippet::source(self.text)
                    .path(&path)
                    .annotation(AnnotationKind::Primary.span(span.clone())),
            )];
            rendered.push_str(&renderer.render(report));
            rendered.push('\n');
            diagnostics.push(Diagnostic {
                location,
                message,
                span,
            });
        }
        if unshown > 0 {
            rendered.push_str(&format!(
                "error: {unshown} more problem(s) in {path} not shown: hangup shows the first {MAX_PROBLEMS_SHOWN} of a file\n"
            ));
        }
        SuiteError::Invalid {
            path: self.path.to_path_buf(),
            diagnostics,
            rendered,
        }
    }
}

/// A version's name: what may follow `@` in a test name.
fn valid_version_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The case itself, or, when its program names two versions to compare,
/// one case per version: `<case>@<version>`, its program with that
/// version's command and environment.
fn versions_of(case: Case) -> Vec<Case> {
    let Some(versions) = case
        .program
        .as_ref()
        .map(|p| p.versions.clone())
        .filter(|v| !v.is_empty())
    else {
        return vec![case];
    };
    versions
        .into_iter()
        .enumerate()
        .map(|(i, version)| {
            let mut one = case.clone();
            one.name = format!("{}@{}", case.name, version.name);
            if let Some(program) = &mut one.program {
                if let Some(argv) = version.argv {
                    program.argv = argv;
                }
                for (key, value) in version.env {
                    program.env.retain(|(k, _)| *k != key);
                    program.env.push((key, value));
                }
                program.versions = Vec::new();
            }
            one.version = Some(CaseVersion {
                case: case.name.clone(),
                name: version.name,
                base: i == 0,
            });
            one
        })
        .collect()
}

#[derive(Clone)]
struct Defaults {
    deadline: Duration,
    tolerance: Tolerance,
    /// The suite's `sysctl` table, every case's unless it sets a key itself.
    sysctls: Vec<(String, String)>,
    /// The suite's `[program]`, every case's unless it names its own.
    program: Option<Program>,
}

/// serde words a type mismatch "invalid type: integer `5`, expected a
/// string"; every other message here reads "expected ..., found ...", so
/// turn serde's around to match.
fn expected_first(message: &str) -> String {
    let found = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix));
    // The expected half is ours (a visitor's `expecting`), so split at the
    // last ", expected ": the found half may quote the user's text.
    match found.and_then(|rest| rest.rsplit_once(", expected ")) {
        Some((found, expected)) => format!("expected {expected}, found {found}"),
        None => message.to_string(),
    }
}

fn valid_case_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
