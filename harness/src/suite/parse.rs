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

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{
    Action, Case, DEFAULT_DEADLINE, Expect, How, Location, Outcome, Payload, Script, SocketOptions,
    Step, Suite, Tolerance, Until,
};
use crate::model::Errno;
use crate::model::TcpState;
use crate::model::{Link, Side, Socket};

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
    let mut reader = Reader {
        path,
        text,
        problems,
    };
    let suite = reader.suite();
    if reader.problems.is_empty() {
        Ok(suite)
    } else {
        Err(reader.into_error())
    }
}

struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
    problems: Vec<(Range<usize>, String)>,
}

impl<'a> Reader<'a> {
    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push((span, message.into()));
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
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` at the top of a suite, expected one of `description`, `deadline`, `tolerance`, `case`"),
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
        let mut names = BTreeMap::new();
        for item in array.iter() {
            if let Some(case) = self.case(item, defaults, &mut names) {
                suite.cases.push(case);
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
        let before = self.problems.len();
        let location = Location::of_offset(self.path, self.text, item.span().start);
        let mut case = Case {
            name: String::new(),
            description: None,
            location,
            ignore: None,
            deadline: defaults.deadline,
            sysctls: Vec::new(),
            tolerance: defaults.tolerance,
            scripts: Vec::new(),
        };
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
                "sysctl" => case.sysctls = self.sysctls(value),
                "client" => case.scripts.push(Script { side: Side::Client, steps: self.steps(Side::Client, value) }),
                "server" => case.scripts.push(Script { side: Side::Server, steps: self.steps(Side::Server, value) }),
                "proxy" => case.scripts.push(Script { side: Side::Proxy, steps: self.steps(Side::Proxy, value) }),
                other => self.problem(
                    key.span(),
                    format!("unknown key `{other}` in a case, expected one of `name`, `description`, `ignore`, `deadline`, `tolerance`, `sysctl`, `client`, `server`, `proxy`"),
                ),
            }
        }
        case.scripts.sort_by_key(|s| s.side);
        match name {
            Some(Some(name)) if valid_case_name(name.get_ref()) => {
                let at = Location::of_offset(self.path, self.text, name.span().start);
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
        self.across_scripts(&case.scripts);
        (self.problems.len() == before).then_some(case)
    }

    /// What no single step shows: a state check of a side that has no
    /// script (it can never hold a socket, so "gone" would pass without
    /// meaning anything), and a `wait` for a label no other side marks
    /// (it could only ever time out).
    fn across_scripts(&mut self, scripts: &[Script]) {
        let has = |side: Side| scripts.iter().any(|s| s.side == side);
        for script in scripts {
            for step in &script.steps {
                match &step.action {
                    Action::State { expected, .. } => {
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
                    Action::Wait { label, .. } => {
                        let marked = scripts.iter().filter(|s| s.side != script.side).any(|s| {
                            s.steps
                                .iter()
                                .any(|m| matches!(&m.action, Action::Mark(l) if l == label))
                        });
                        if !marked {
                            self.problem(
                                step.span.clone(),
                                format!(
                                    "expected a `wait` for a label another side marks, found `wait = {label:?}` and no `mark = {label:?}` in another script: it could only time out"
                                ),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
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
            if let Some(SysctlValue(v)) = self.value(v) {
                out.push((name, v));
            }
        }
        out
    }

    fn steps(&mut self, side: Side, value: &Spanned<DeValue<'a>>) -> Vec<Step> {
        let Some(array) = value.get_ref().as_array() else {
            self.problem(
                value.span(),
                format!(
                    "expected `{side}` to be an array of steps, found {}",
                    value.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        // An empty script would pass the "a client or a server" check of
        // `Reader::case` while doing nothing.
        if array.is_empty() {
            self.problem(
                value.span(),
                format!("expected at least one step in `{side}`, found none"),
            );
        }
        let mut steps = Vec::new();
        for item in array.iter() {
            let Some(raw) = self.raw_step(item) else {
                continue;
            };
            if let Some(action_step) = self.step(side, raw, item) {
                steps.push(action_step);
            }
        }
        steps
    }

    /// Deserializes a step table one key at a time, so that a typo in one
    /// key does not hide a bad value in the next (serde stops a table at
    /// its first error). When some keys fail but the action parsed, the
    /// keys that did parse are still returned to be checked against it;
    /// without the action there is nothing to check them against.
    fn raw_step(&mut self, item: &Spanned<DeValue<'a>>) -> Option<RawStepTable> {
        let Some(table) = item.get_ref().as_table() else {
            return self.value::<RawStep>(item).map(|step| step.0);
        };
        let before = self.problems.len();
        let mut step = RawStepTable::default();
        let mut has_action = false;
        for (key, value) in table {
            let mut one = DeTable::new();
            one.insert(key.clone(), value.clone());
            let one = Spanned::new(item.span(), DeValue::Table(one));
            if let Some(RawStep(part)) = self.value::<RawStep>(&one) {
                has_action |= ACTIONS.contains(&key.get_ref().as_ref());
                step.merge(part);
            }
        }
        (self.problems.len() == before || has_action).then_some(step)
    }

    fn step(&mut self, side: Side, raw: RawStepTable, item: &Spanned<DeValue<'a>>) -> Option<Step> {
        let span = item.span();
        let before = self.problems.len();
        let mut chosen: Vec<(&'static str, Range<usize>)> = Vec::new();
        let mut action = None;
        macro_rules! take {
            ($field:ident, $name:literal, |$v:ident| $make:expr) => {
                if let Some(spanned) = raw.$field {
                    // A bare step ("accept") has no span of its own: use the step's.
                    let at = Some(spanned.span()).filter(|s| !s.is_empty());
                    chosen.push(($name, at.unwrap_or_else(|| span.clone())));
                    let $v = spanned.into_inner();
                    action = Some($make);
                }
            };
        }
        take!(listen, "listen", |v| Action::Listen {
            addr: v.0,
            backlog: 128
        });
        take!(accept, "accept", |_v| Action::Accept { timeout: None });
        take!(connect, "connect", |v| Action::Connect {
            addr: v.0,
            timeout: None,
            from: None
        });
        take!(send, "send", |v| match v {
            RawPayload::Text(text) => Action::Send {
                payload: Payload::Text { text, repeat: 1 },
                timeout: None
            },
            RawPayload::Size(n) => Action::Send {
                payload: Payload::Size(n),
                timeout: None
            },
        });
        take!(recv, "recv", |_v| Action::Recv {
            max: 65536,
            timeout: None
        });
        take!(recv_until, "recv_until", |v| Action::RecvUntil {
            until: v,
            timeout: None
        });
        take!(shutdown, "shutdown", |v| Action::Shutdown(v.0));
        take!(close, "close", |_v| Action::Close);
        take!(abort, "abort", |_v| Action::Abort);
        take!(sleep, "sleep", |v| Action::Sleep(v.0));
        take!(set, "set", |v| Action::Set(v.into_options()));
        take!(mark, "mark", |v| Action::Mark(v));
        take!(wait, "wait", |v| Action::Wait {
            label: v,
            timeout: None
        });
        take!(state, "state", |v| Action::State {
            expected: v.into_expected(),
            within: None
        });
        let mut action = match (action, chosen.len()) {
            (Some(action), 1) => action,
            (_, 0) => {
                self.problem(
                    span,
                    format!(
                        "expected one action in this step, found none; actions are {}",
                        ACTIONS.join(", ")
                    ),
                );
                return None;
            }
            (_, _) => {
                // Only a table holds two actions: name them in file order
                // and point at the key of the second, the one to remove.
                let table = item.get_ref().as_table();
                let mut keys: Vec<(&str, Range<usize>)> = chosen
                    .iter()
                    .map(|(name, at)| {
                        let key = table.and_then(|t| t.get_key_value(*name));
                        (*name, key.map_or_else(|| at.clone(), |(k, _)| k.span()))
                    })
                    .collect();
                keys.sort_by_key(|(_, at)| at.start);
                let names: Vec<_> = keys.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.problem(
                    keys[1].1.clone(),
                    format!(
                        "expected one action per step, found {}",
                        names.join(" and ")
                    ),
                );
                return None;
            }
        };
        let keyword = action.keyword();
        let takes: Vec<String> = modifiers(&action)
            .iter()
            .map(|m| format!("`{m}`"))
            .collect();
        let hint = if takes.is_empty() {
            ", which takes no other key".to_string()
        } else {
            format!(", expected one of {}", takes.join(", "))
        };
        let misplaced =
            |name: &str, at: Range<usize>, problems: &mut Vec<(Range<usize>, String)>| {
                problems.push((at, format!("`{name}` does not apply to `{keyword}`{hint}")));
            };
        // Modifiers: each applies to some actions only.
        if let Some(timeout) = raw.timeout {
            match &mut action {
                Action::Accept { timeout: t }
                | Action::Connect { timeout: t, .. }
                | Action::Send { timeout: t, .. }
                | Action::Recv { timeout: t, .. }
                | Action::RecvUntil { timeout: t, .. }
                | Action::Wait { timeout: t, .. } => *t = Some(timeout.get_ref().0),
                _ => misplaced("timeout", timeout.span(), &mut self.problems),
            }
        }
        if let Some(within) = raw.within {
            match &mut action {
                Action::State { within: w, .. } => *w = Some(within.get_ref().0),
                _ => misplaced("within", within.span(), &mut self.problems),
            }
        }
        if let Some(repeat) = raw.repeat {
            match &mut action {
                // Like `send = 0`: a step that sends nothing is a mistake.
                Action::Send {
                    payload: Payload::Text { repeat: r, .. },
                    ..
                } if *repeat.get_ref() > 0 => *r = *repeat.get_ref(),
                Action::Send {
                    payload: Payload::Text { .. },
                    ..
                } => self.problem(
                    repeat.span(),
                    "expected `repeat` of at least 1 copy, found 0",
                ),
                _ => misplaced("repeat", repeat.span(), &mut self.problems),
            }
        }
        if let Some(max) = raw.max {
            match &mut action {
                Action::Recv { max: m, .. } if *max.get_ref() > 0 => *m = *max.get_ref(),
                Action::Recv { .. } => {
                    self.problem(max.span(), "expected `max` of at least 1 byte, found 0")
                }
                _ => misplaced("max", max.span(), &mut self.problems),
            }
        }
        if let Some(from) = raw.from {
            match &mut action {
                Action::Connect { from: f, .. } if *from.get_ref() > 0 => {
                    *f = Some(*from.get_ref())
                }
                Action::Connect { .. } => self.problem(
                    from.span(),
                    "expected a local port from 1 to 65535, found 0",
                ),
                _ => misplaced("from", from.span(), &mut self.problems),
            }
        }
        if let Some(backlog) = raw.backlog {
            match &mut action {
                Action::Listen { backlog: b, .. } => *b = *backlog.get_ref(),
                _ => misplaced("backlog", backlog.span(), &mut self.problems),
            }
        }
        let link = self.link(side, &action, raw.on, &chosen[0].1);
        // Where a side may do a thing: the server listens, the client
        // connects, the proxy does both.
        match (&action, side) {
            (Action::Listen { .. } | Action::Accept { .. }, Side::Client) => {
                self.problem(
                    chosen[0].1.clone(),
                    format!(
                        "`{keyword}` is for the server or proxy side, found it in the client script"
                    ),
                );
            }
            (Action::Connect { .. }, Side::Server) => {
                self.problem(
                    chosen[0].1.clone(),
                    "`connect` is for the client or proxy side, found it in the server script",
                );
            }
            (Action::State { expected, .. }, _) if expected.is_empty() => {
                self.problem(
                    chosen[0].1.clone(),
                    "expected a state for `client`, `server`, `proxy_client` or `proxy_server`, found none",
                );
            }
            _ => {}
        }
        let expect = self.expectation(&action, raw.expect, raw.bytes, raw.after, raw.longer_than);
        (self.problems.len() == before).then(|| Step {
            action,
            expect,
            location: Location::of_offset(self.path, self.text, span.start),
            source: self.text[span.clone()].to_string(),
            span,
            link,
        })
    }

    /// Which connection a step acts on. The client and server have one
    /// each; the proxy has two, so its steps on a connection must say which
    /// with `on = "client"` (the one it accepted) or `on = "server"`.
    fn link(
        &mut self,
        side: Side,
        action: &Action,
        on: Option<Spanned<OnValue>>,
        at: &Range<usize>,
    ) -> Link {
        let on_connection = matches!(
            action,
            Action::Send { .. }
                | Action::Recv { .. }
                | Action::RecvUntil { .. }
                | Action::Shutdown(_)
                | Action::Close
                | Action::Abort
                | Action::Set(_)
        );
        let keyword = action.keyword();
        match (side, on) {
            (Side::Client, None) => Link::Connected,
            (Side::Server, None) => Link::Accepted,
            (Side::Client | Side::Server, Some(on)) => {
                self.problem(
                    on.span(),
                    format!("`on` is for the proxy's steps: the {side} has one connection"),
                );
                if side == Side::Client {
                    Link::Connected
                } else {
                    Link::Accepted
                }
            }
            (Side::Proxy, Some(on)) if on_connection => on.into_inner().0,
            (Side::Proxy, Some(on)) => {
                self.problem(
                    on.span(),
                    format!("`on` does not apply to `{keyword}`: it acts on no connection"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) if on_connection => {
                self.problem(
                    at.clone(),
                    format!("expected `on = \"client\"` or `on = \"server\"` with `{keyword}`: the proxy holds two connections"),
                );
                Link::Accepted
            }
            (Side::Proxy, None) => match action {
                Action::Connect { .. } => Link::Connected,
                _ => Link::Accepted,
            },
        }
    }

    fn expectation(
        &mut self,
        action: &Action,
        expect: Option<Spanned<RawExpect>>,
        bytes: Option<Spanned<u64>>,
        after: Option<Spanned<DurationValue>>,
        longer_than: Option<Spanned<DurationValue>>,
    ) -> Option<Expect> {
        let judged = action.is_judged();
        let keyword = action.keyword();
        if !judged {
            for (name, span) in [
                ("expect", expect.as_ref().map(Spanned::span)),
                ("bytes", bytes.as_ref().map(Spanned::span)),
                ("after", after.as_ref().map(Spanned::span)),
                ("longer_than", longer_than.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.problem(
                        span,
                        format!(
                            "`{name}` does not apply to `{keyword}`: it has no result to judge"
                        ),
                    );
                }
            }
            return None;
        }
        if expect.is_none() && bytes.is_none() && after.is_none() && longer_than.is_none() {
            return None;
        }
        let mut out = action.default_expectation();
        if let Some(expect) = expect {
            out.result = self.outcomes(expect);
        }
        out.bytes = bytes.map(Spanned::into_inner);
        out.after = after.map(|a| a.into_inner().0);
        out.longer_than = longer_than.map(|a| a.into_inner().0);
        Some(out)
    }

    /// The outcomes an `expect` names, each unknown name reported at itself.
    fn outcomes(&mut self, expect: Spanned<RawExpect>) -> Vec<Outcome> {
        let span = expect.span();
        let names = match expect.into_inner() {
            RawExpect::One(name) => vec![Spanned::new(span, name)],
            RawExpect::Any(names) => names,
        };
        let mut out = Vec::new();
        for name in names {
            match parse_outcome(name.get_ref()) {
                Ok(outcome) => out.push(outcome),
                Err(why) => self.problem(name.span(), why),
            }
        }
        out
    }

    fn into_error(self) -> SuiteError {
        let mut problems = self.problems;
        problems.sort_by_key(|(span, _)| span.start);
        problems.dedup();
        let renderer = Renderer::plain();
        let path = self.path.display().to_string();
        let mut rendered = String::new();
        let mut diagnostics = Vec::new();
        for (span, message) in problems {
            let location = Location::of_offset(self.path, self.text, span.start);
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
        SuiteError::Invalid {
            path: self.path.to_path_buf(),
            diagnostics,
            rendered,
        }
    }
}

#[derive(Clone, Copy)]
struct Defaults {
    deadline: Duration,
    tolerance: Tolerance,
}

const ACTIONS: &[&str] = &[
    "listen",
    "accept",
    "connect",
    "send",
    "recv",
    "recv_until",
    "shutdown",
    "close",
    "abort",
    "sleep",
    "set",
    "mark",
    "wait",
    "state",
];

/// The keys a step with this action takes besides the action itself, for
/// "expected one of" when a modifier does not apply.
fn modifiers(action: &Action) -> Vec<&'static str> {
    let own: &[&str] = match action {
        Action::Listen { .. } => &["backlog"],
        Action::Accept { .. } | Action::RecvUntil { .. } | Action::Wait { .. } => &["timeout"],
        Action::Connect { .. } => &["timeout", "from"],
        Action::Send {
            payload: Payload::Text { .. },
            ..
        } => &["timeout", "repeat"],
        Action::Send { .. } => &["timeout"],
        Action::Recv { .. } => &["timeout", "max"],
        Action::State { .. } => &["within"],
        Action::Shutdown(_) | Action::Close | Action::Abort => &[],
        Action::Sleep(_) | Action::Set(_) | Action::Mark(_) => &[],
    };
    // What `Reader::expectation` accepts: every action with a result.
    let judged = action.is_judged();
    let judge: &[&str] = if judged {
        &["expect", "bytes", "after", "longer_than"]
    } else {
        &[]
    };
    own.iter().chain(judge).copied().collect()
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

/// A step as written: one action key plus modifiers. A bare string
/// (`"close"`) is an action without arguments.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStepTable {
    listen: Option<Spanned<Endpoint>>,
    accept: Option<Spanned<Flag>>,
    connect: Option<Spanned<Endpoint>>,
    send: Option<Spanned<RawPayload>>,
    recv: Option<Spanned<Flag>>,
    recv_until: Option<Spanned<Until>>,
    shutdown: Option<Spanned<HowValue>>,
    close: Option<Spanned<Flag>>,
    abort: Option<Spanned<Flag>>,
    sleep: Option<Spanned<DurationValue>>,
    set: Option<Spanned<RawOptions>>,
    mark: Option<Spanned<String>>,
    wait: Option<Spanned<String>>,
    state: Option<Spanned<RawStates>>,
    timeout: Option<Spanned<DurationValue>>,
    within: Option<Spanned<DurationValue>>,
    repeat: Option<Spanned<usize>>,
    max: Option<Spanned<usize>>,
    backlog: Option<Spanned<u32>>,
    from: Option<Spanned<u16>>,
    expect: Option<Spanned<RawExpect>>,
    bytes: Option<Spanned<u64>>,
    after: Option<Spanned<DurationValue>>,
    longer_than: Option<Spanned<DurationValue>>,
    on: Option<Spanned<OnValue>>,
}

impl RawStepTable {
    /// Takes every key `part` has (the parts of a step have one key each).
    fn merge(&mut self, part: RawStepTable) {
        macro_rules! merge {
            ($($field:ident),*) => {
                // No `..`: a new field that is not merged does not compile.
                let RawStepTable { $($field),* } = part;
                $(if $field.is_some() {
                    self.$field = $field;
                })*
            };
        }
        merge!(
            listen,
            accept,
            connect,
            send,
            recv,
            recv_until,
            shutdown,
            close,
            abort,
            sleep,
            set,
            mark,
            wait,
            state,
            timeout,
            within,
            repeat,
            max,
            backlog,
            from,
            expect,
            bytes,
            after,
            longer_than,
            on
        );
    }
}

/// Accepts `"close"` as well as `{ close = true }`.
struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = RawStepTable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a step: a table like `{ connect = 8080 }`, or the name of an action without arguments (\"accept\", \"recv\", \"close\", \"abort\")")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // An empty span: `Reader::step` reports against the whole step.
        let flag = || Some(Spanned::new(0..0, Flag));
        let mut step = RawStepTable::default();
        match v {
            "accept" => step.accept = flag(),
            "recv" => step.recv = flag(),
            "close" => step.close = flag(),
            "abort" => step.abort = flag(),
            other => {
                return Err(E::custom(format!(
                    "expected \"accept\", \"recv\", \"close\" or \"abort\" as a bare step, found \"{other}\"{}",
                    if ACTIONS.contains(&other) {
                        " (it takes an argument: write it as a table)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(step)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        RawStepTable::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// A step, deserialized through [`StepVisitor`] so a bare string works too.
struct RawStep(RawStepTable);

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StepVisitor).map(RawStep)
    }
}

/// `true`, for actions that take no argument.
struct Flag;

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            true => Ok(Flag),
            false => Err(de::Error::custom(
                "expected `true` (or drop the step), found `false`",
            )),
        }
    }
}

/// A loopback address: a bare port means 127.0.0.1.
struct Endpoint(SocketAddr);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Endpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a port number or a loopback address like \"127.0.0.1:8080\" or \"[::1]:8080\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Endpoint, E> {
                match u16::try_from(v) {
                    Ok(port) if port > 0 => Ok(Endpoint(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::LOCALHOST),
                        port,
                    ))),
                    _ => Err(E::custom(format!(
                        "expected a port from 1 to 65535, found {v}"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Endpoint, E> {
                let addr: SocketAddr = v.parse().map_err(|_| {
                    E::custom(format!(
                        "expected a port or an address like \"127.0.0.1:8080\", found \"{v}\""
                    ))
                })?;
                // The network rule: traffic stays on loopback inside the case's namespace.
                if !addr.ip().is_loopback() {
                    return Err(E::custom(format!(
                        "expected a loopback address (127.0.0.0/8 or ::1), found \"{v}\": hangup sends traffic only inside its own namespaces"
                    )));
                }
                // As for a bare port: 0 would listen on, or dial, whatever
                // port the kernel picks, which the other side cannot know.
                if addr.port() == 0 {
                    return Err(E::custom(format!(
                        "expected a port from 1 to 65535, found 0 in \"{v}\""
                    )));
                }
                Ok(Endpoint(addr))
            }
        }
        d.deserialize_any(V)
    }
}

enum RawPayload {
    Text(String),
    Size(usize),
}

impl<'de> Deserialize<'de> for RawPayload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawPayload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text to send, or a number of filler bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPayload, E> {
                usize::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(RawPayload::Size)
                    .ok_or_else(|| {
                        E::custom(format!("expected a positive number of bytes, found {v}"))
                    })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPayload, E> {
                Ok(RawPayload::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Until {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Until;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count to read, or text to read up to")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Until, E> {
                u64::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Until::Bytes)
                    .ok_or_else(|| E::custom(format!("expected a positive byte count, found {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Until, E> {
                if v.is_empty() {
                    return Err(E::custom(
                        "expected text to read up to, found an empty string",
                    ));
                }
                Ok(Until::Pattern(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

struct HowValue(How);

impl<'de> Deserialize<'de> for HowValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "read" => Ok(HowValue(How::Read)),
            "write" => Ok(HowValue(How::Write)),
            "both" => Ok(HowValue(How::Both)),
            other => Err(de::Error::custom(format!(
                "expected \"read\", \"write\" or \"both\", found \"{other}\""
            ))),
        }
    }
}

/// A duration written like "200ms", "1.5s" or "2m".
struct DurationValue(Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"200ms\", \"1.5s\" or \"2m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                parse_duration(v).map(DurationValue).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// "200ms", "1.5s", "1.5ms", "1s 500ms", "2m": humantime's grammar, which
/// takes a fraction on any unit (when it is a whole number of nanoseconds).
///
/// Spaces around the whole value are refused: humantime skips them around
/// a span ("1s ") but not around a bare "0" (" 0"), so refusing them is
/// the one rule that reads the same for every value.
fn parse_duration(v: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration like \"200ms\", \"1.5s\" or \"2m\"";
    if v.trim() != v {
        return Err(format!(
            "{EXPECTED} without spaces around it, found \"{v}\""
        ));
    }
    humantime::parse_duration(v).map_err(|_| format!("{EXPECTED}, found \"{v}\""))
}

struct SysctlValue(String);

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SysctlValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sysctl value: a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SysctlValue, E> {
                Ok(SysctlValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTolerance {
    floor: Option<DurationValue>,
    percent: Option<u32>,
}

impl RawTolerance {
    fn apply(self, base: Tolerance) -> Tolerance {
        Tolerance {
            floor: self.floor.map_or(base.floor, |f| f.0),
            percent: self.percent.unwrap_or(base.percent),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    linger: Option<LingerValue>,
    nodelay: Option<bool>,
    keepalive: Option<bool>,
    rcvbuf: Option<usize>,
    sndbuf: Option<usize>,
}

impl RawOptions {
    fn into_options(self) -> SocketOptions {
        SocketOptions {
            linger: self.linger.map(|l| l.0),
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            rcvbuf: self.rcvbuf,
            sndbuf: self.sndbuf,
        }
    }
}

/// `"off"`, or how long a close may linger ("0s" for an abortive close), in
/// whole seconds: SO_LINGER's `l_linger` counts seconds, so "500ms" could
/// only be rounded to a linger the suite did not ask for.
struct LingerValue(Option<Duration>);

impl<'de> Deserialize<'de> for LingerValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "off" {
            return Ok(LingerValue(None));
        }
        match parse_duration(&s) {
            Ok(d) if d.subsec_nanos() == 0 => Ok(LingerValue(Some(d))),
            _ => Err(de::Error::custom(format!(
                "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"{s}\""
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStates {
    client: Option<StateName>,
    server: Option<StateName>,
    proxy_client: Option<StateName>,
    proxy_server: Option<StateName>,
}

impl RawStates {
    fn into_expected(self) -> Vec<(Socket, TcpState)> {
        [
            (Socket::Client, self.client),
            (Socket::ProxyClient, self.proxy_client),
            (Socket::ProxyServer, self.proxy_server),
            (Socket::Server, self.server),
        ]
        .into_iter()
        .filter_map(|(socket, state)| state.map(|s| (socket, s.0)))
        .collect()
    }
}

/// `on = "client"` or `on = "server"`: which of the proxy's connections.
struct OnValue(Link);

impl<'de> Deserialize<'de> for OnValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "client" => Ok(OnValue(Link::Accepted)),
            "server" => Ok(OnValue(Link::Connected)),
            other => Err(de::Error::custom(format!(
                "expected \"client\" (the connection the proxy accepted) or \"server\" (the one it made), found \"{other}\""
            ))),
        }
    }
}

struct StateName(TcpState);

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(StateName).map_err(de::Error::custom)
    }
}

/// `"EPIPE"`, `"ok"`, `"EOF"`, or a list of them (any one passes). The
/// names are checked by [`Reader::outcomes`], not here, so that an unknown
/// name in a list is reported at the name rather than at the whole list.
enum RawExpect {
    One(String),
    Any(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"ok\", \"EOF\", an errno name like \"EPIPE\", or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawExpect, E> {
                Ok(RawExpect::One(v.to_string()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawExpect, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element()? {
                    out.push(name);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "expected at least one outcome, found an empty list",
                    ));
                }
                Ok(RawExpect::Any(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_outcome(name: &str) -> Result<Outcome, String> {
    match name.to_ascii_lowercase().as_str() {
        "ok" => Ok(Outcome::Ok),
        "eof" => Ok(Outcome::Eof),
        _ => name.parse::<Errno>().map(Outcome::Errno).map_err(|e| {
            format!("expected \"ok\", \"EOF\" or an errno name, found \"{name}\" ({e})")
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rstest::rstest;

    use super::*;

    const PATH: &str = "suites/t.toml";

    /// Each problem as `(line, column, message)`, in the order reported.
    fn problems(bytes: &[u8]) -> Vec<(usize, usize, String)> {
        match parse_suite(Path::new(PATH), bytes) {
            Ok(_) => panic!("expected the suite to be invalid, it parsed"),
            Err(SuiteError::Invalid { diagnostics, .. }) => diagnostics
                .into_iter()
                .map(|d| (d.location.line, d.location.column, d.message))
                .collect(),
            Err(other) => panic!("expected SuiteError::Invalid, found {other:?}"),
        }
    }

    /// The one problem of a suite that has exactly one.
    fn problem(text: &str) -> (usize, usize, String) {
        problem_in(text.as_bytes())
    }

    fn problem_in(bytes: &[u8]) -> (usize, usize, String) {
        let mut all = problems(bytes);
        assert_eq!(all.len(), 1, "expected one problem, found {all:#?}");
        all.remove(0)
    }

    fn rendered(text: &[u8]) -> String {
        match parse_suite(Path::new(PATH), text) {
            Err(SuiteError::Invalid { rendered, .. }) => rendered,
            other => panic!("expected SuiteError::Invalid, found {other:?}"),
        }
    }

    /// A case named `a` with this client script.
    fn client(steps: &str) -> String {
        format!("[[case]]\nname = \"a\"\nclient = [\n{steps}\n]\n")
    }

    #[rstest]
    #[case::unknown_action(
        client("  { conect = 8080 },"),
        4,
        5,
        "unknown field `conect`, expected one of `listen`, `accept`, `connect`,"
    )]
    #[case::unknown_bare_action(
        client("  \"closee\","),
        4,
        3,
        "expected \"accept\", \"recv\", \"close\" or \"abort\" as a bare step, found \"closee\""
    )]
    #[case::bare_action_needing_an_argument(
        client("  \"connect\","),
        4,
        3,
        "expected \"accept\", \"recv\", \"close\" or \"abort\" as a bare step, found \"connect\" (it takes an argument: write it as a table)"
    )]
    #[case::unknown_errno(
        client("  { connect = 8080, expect = \"ECONRESET\" },"),
        4,
        30,
        "expected \"ok\", \"EOF\" or an errno name, found \"ECONRESET\" (unknown errno `ECONRESET`, expected one of EPIPE, ECONNRESET,"
    )]
    #[case::unknown_errno_in_a_list(
        client("  { connect = 8080, expect = [\"EPIPE\", \"EFOO\"] },"),
        4,
        40,
        "expected \"ok\", \"EOF\" or an errno name, found \"EFOO\" (unknown errno `EFOO`, expected one of EPIPE,"
    )]
    #[case::empty_expect_list(
        client("  { connect = 8080, expect = [] },"),
        4,
        30,
        "expected at least one outcome, found an empty list"
    )]
    #[case::number_in_expect_list(
        client("  { connect = 8080, expect = [\"EPIPE\", 5] },"),
        4,
        40,
        "expected a string, found integer `5`"
    )]
    #[case::unknown_state(
        client("  { state = { client = \"ESTABLISHD\" } },"),
        4,
        24,
        "unknown TCP state `ESTABLISHD`, expected one of ESTABLISHED, SYN_SENT,"
    )]
    #[case::unknown_state_side(
        client("  { state = { client = \"CLOSE\", serve = \"CLOSE\" } },"),
        4,
        33,
        "unknown field `serve`, expected one of `client`, `server`, `proxy_client`, `proxy_server`"
    )]
    #[case::state_of_a_side_with_no_script(
        client("  { state = { server = \"CLOSE_WAIT\" } },"),
        4,
        3,
        "expected a state check of a socket some side holds, found `server`, which is the server's, and this case has no `server` script"
    )]
    #[case::wait_for_a_label_nobody_marks(
        client("  { wait = \"ready\", timeout = \"1s\" },"),
        4,
        3,
        "expected a `wait` for a label another side marks, found `wait = \"ready\"` and no `mark = \"ready\"` in another script"
    )]
    #[case::bad_duration(
        client("  { sleep = \"fast\" },"),
        4,
        13,
        "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"fast\""
    )]
    #[case::bad_timeout(
        client("  { connect = 8080, timeout = \"1 fortnight\" },"),
        4,
        31,
        "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"1 fortnight\""
    )]
    #[case::send_a_bool(
        client("  { send = true },"),
        4,
        12,
        "expected text to send, or a number of filler bytes, found boolean `true`"
    )]
    #[case::listen_a_bool("[[case]]\nname = \"a\"\nserver = [{ listen = true }]\n".into(), 3, 22, "expected a port number or a loopback address like \"127.0.0.1:8080\" or \"[::1]:8080\", found boolean `true`")]
    #[case::listen_not_an_address("[[case]]\nname = \"a\"\nserver = [{ listen = \"x\" }]\n".into(), 3, 22, "expected a port or an address like \"127.0.0.1:8080\", found \"x\"")]
    #[case::sleep_a_number(
        client("  { sleep = 200 },"),
        4,
        13,
        "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found integer `200`"
    )]
    #[case::close_a_string(
        client("  { close = \"yes\" },"),
        4,
        13,
        "expected a boolean, found string \"yes\""
    )]
    #[case::port_out_of_range(
        client("  { connect = 8080, from = 70000 },"),
        4,
        28,
        "expected u16, found integer `70000`"
    )]
    #[case::step_a_number(
        client("  5,"),
        4,
        3,
        "expected a step: a table like `{ connect = 8080 }`, or the name of an action without arguments"
    )]
    #[case::expect_a_number(
        client("  { connect = 8080, expect = 5 },"),
        4,
        30,
        "expected \"ok\", \"EOF\", an errno name like \"EPIPE\", or a list of them, found integer `5`"
    )]
    #[case::bad_address(
        client("  { connect = \"x\" },"),
        4,
        15,
        "expected a port or an address like \"127.0.0.1:8080\", found \"x\""
    )]
    #[case::port_zero(
        client("  { connect = 0 },"),
        4,
        15,
        "expected a port from 1 to 65535, found 0"
    )]
    #[case::port_zero_in_an_address(
        client("  { connect = \"127.0.0.1:0\" },"),
        4,
        15,
        "expected a port from 1 to 65535, found 0 in \"127.0.0.1:0\""
    )]
    #[case::port_zero_in_a_v6_address(
        client("  { connect = \"[::1]:00\" },"),
        4,
        15,
        "expected a port from 1 to 65535, found 0 in \"[::1]:00\""
    )]
    #[case::listen_port_zero_in_an_address("[[case]]\nname = \"a\"\nserver = [{ listen = \"127.0.0.1:0\" }]\n".into(), 3, 22, "expected a port from 1 to 65535, found 0 in \"127.0.0.1:0\"")]
    #[case::non_loopback(
        client("  { connect = \"10.0.0.1:80\" },"),
        4,
        15,
        "expected a loopback address (127.0.0.0/8 or ::1), found \"10.0.0.1:80\": hangup sends traffic only inside its own namespaces"
    )]
    #[case::flag_false(
        client("  { close = false },"),
        4,
        13,
        "expected `true` (or drop the step), found `false`"
    )]
    #[case::two_actions(
        client("  { connect = 8080, close = true },"),
        4,
        21,
        "expected one action per step, found `connect` and `close`"
    )]
    #[case::two_actions_in_file_order(
        client("  { close = true, connect = 8080 },"),
        4,
        19,
        "expected one action per step, found `close` and `connect`"
    )]
    #[case::two_actions_with_a_dotted_key(
        client("  { connect = 8080, state.client = \"CLOSE\" },"),
        4,
        21,
        "expected one action per step, found `connect` and `state`"
    )]
    #[case::no_action(
        client("  { timeout = \"1s\" },"),
        4,
        3,
        "expected one action in this step, found none; actions are listen, accept,"
    )]
    #[case::within_on_recv(
        client("  { recv = true, within = \"1s\" },"),
        4,
        27,
        "`within` does not apply to `recv`, expected one of `timeout`, `max`, `expect`, `bytes`, `after`, `longer_than`"
    )]
    #[case::timeout_on_close(
        client("  { close = true, timeout = \"1s\" },"),
        4,
        29,
        "`timeout` does not apply to `close`, expected one of `expect`, `bytes`, `after`, `longer_than`"
    )]
    #[case::timeout_on_sleep(
        client("  { sleep = \"1s\", timeout = \"1s\" },"),
        4,
        29,
        "`timeout` does not apply to `sleep`, which takes no other key"
    )]
    #[case::timeout_on_state(
        client("  { state = { client = \"CLOSE\" }, timeout = \"1s\" },"),
        4,
        45,
        "`timeout` does not apply to `state`, expected one of `within`"
    )]
    #[case::expect_on_sleep(
        client("  { sleep = \"1s\", expect = \"EPIPE\" },"),
        4,
        28,
        "`expect` does not apply to `sleep`: it has no result to judge"
    )]
    #[case::bare_accept_in_client(
        client("  \"accept\","),
        4,
        3,
        "`accept` is for the server or proxy side, found it in the client script"
    )]
    #[case::listen_in_client(
        client("  { listen = 8080 },"),
        4,
        14,
        "`listen` is for the server or proxy side, found it in the client script"
    )]
    #[case::max_zero(
        client("  { recv = true, max = 0 },"),
        4,
        24,
        "expected `max` of at least 1 byte, found 0"
    )]
    #[case::repeat_zero(
        client("  { send = \"hi\", repeat = 0 },"),
        4,
        27,
        "expected `repeat` of at least 1 copy, found 0"
    )]
    #[case::send_zero(
        client("  { send = 0 },"),
        4,
        12,
        "expected a positive number of bytes, found 0"
    )]
    #[case::bad_linger(
        client("  { set = { linger = \"x\" } },"),
        4,
        22,
        "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"x\""
    )]
    #[case::linger_not_whole_seconds(
        client("  { set = { linger = \"500ms\" } },"),
        4,
        22,
        "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"500ms\""
    )]
    #[case::linger_a_fraction_of_a_second_over(
        client("  { set = { linger = \"1.5s\" } },"),
        4,
        22,
        "expected \"off\" or whole seconds like \"0s\" or \"5s\" (SO_LINGER counts seconds), found \"1.5s\""
    )]
    #[case::unknown_option(
        client("  { set = { lingr = \"0s\" } },"),
        4,
        13,
        "unknown field `lingr`, expected one of `linger`, `nodelay`, `keepalive`, `rcvbuf`, `sndbuf`"
    )]
    #[case::empty_state(
        client("  { state = {} },"),
        4,
        13,
        "expected a state for `client`, `server`, `proxy_client` or `proxy_server`, found none"
    )]
    #[case::missing_name("[[case]]\nclient = [\"close\"]\n".into(), 1, 1, "expected a `name` for this case, found none")]
    #[case::name_not_a_string("[[case]]\nname = 5\nclient = [\"close\"]\n".into(), 2, 8, "expected a string, found integer `5`")]
    #[case::duplicate_name("[[case]]\nname = \"a\"\nclient = [\"close\"]\n\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 6, 8, "expected a case name unique in this suite, found `a` again (first at line 2, column 8): test names must be unique")]
    #[case::bad_name("[[case]]\nname = \"a b\"\nclient = [\"close\"]\n".into(), 2, 8, "expected a case name of letters, digits, `_` and `-`, found `a b`")]
    #[case::no_script("[[case]]\nname = \"a\"\n".into(), 1, 1, "expected a `client`, `server` or `proxy` script in this case, found none")]
    #[case::script_not_an_array("[[case]]\nname = \"a\"\nclient = \"close\"\n".into(), 3, 10, "expected `client` to be an array of steps, found string")]
    #[case::unknown_case_key("[[case]]\nname = \"a\"\nclient = [\"close\"]\nsevrer = []\n".into(), 4, 1, "unknown key `sevrer` in a case, expected one of `name`, `description`,")]
    #[case::unknown_top_key("descripton = \"x\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "unknown key `descripton` at the top of a suite, expected one of `description`,")]
    #[case::sysctl_outside_net("[[case]]\nname = \"a\"\nsysctl = { \"kernel.pid_max\" = 5 }\nclient = [\"close\"]\n".into(), 3, 12, "only per-network-namespace sysctls (under `net.`) may be set, and `kernel.pid_max` is host-wide")]
    #[case::sysctls_not_a_table("[[case]]\nname = \"a\"\nsysctl = 5\nclient = [\"close\"]\n".into(), 3, 10, "expected a table of sysctls like")]
    #[case::bad_top_deadline("deadline = \"soon\"\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 12, "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"soon\"")]
    #[case::bad_tolerance_floor("[[case]]\nname = \"a\"\ntolerance = { floor = \"x\" }\nclient = [\"close\"]\n".into(), 3, 23, "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"x\"")]
    #[case::toml_syntax("[[case]]\nname = \"a\nclient = [\"close\"]\n".into(), 2, 10, "invalid basic string, expected `\"`")]
    #[case::empty_file(
        String::new(),
        1,
        1,
        "expected at least one `[[case]]` table, found none"
    )]
    #[case::case_not_an_array("case = 5\n".into(), 1, 8, "expected `case` to be an array of tables (`[[case]]`), found integer")]
    #[case::case_a_single_table("[case]\nname = \"a\"\nclient = [\"close\"]\n".into(), 1, 1, "expected `case` to be an array of tables (`[[case]]`), found table")]
    #[case::no_cases("case = []\n".into(), 1, 8, "expected at least one `[[case]]` table, found none")]
    #[case::empty_client("[[case]]\nname = \"a\"\nclient = []\n".into(), 3, 10, "expected at least one step in `client`, found none")]
    #[case::empty_server_beside_a_client("[[case]]\nname = \"a\"\nclient = [\"close\"]\nserver = []\n".into(), 4, 10, "expected at least one step in `server`, found none")]
    #[case::case_not_tables("case = [1]\n".into(), 1, 9, "expected a case table, found integer")]
    fn one_problem(
        #[case] text: String,
        #[case] line: usize,
        #[case] column: usize,
        #[case] message: &str,
    ) {
        let (l, c, m) = problem(&text);
        assert!(
            m.starts_with(message),
            "expected a message starting with {message:?}, found {m:?}"
        );
        assert_eq!((l, c), (line, column), "for {m:?}");
    }

    #[rstest]
    #[case(
        "invalid type: integer `5`, expected a string",
        "expected a string, found integer `5`"
    )]
    #[case(
        "invalid value: string \"a, expected b\", expected u16",
        "expected u16, found string \"a, expected b\""
    )]
    #[case("unknown field `x`, expected `y`", "unknown field `x`, expected `y`")]
    fn serde_wording_is_turned_around(#[case] serde: &str, #[case] ours: &str) {
        assert_eq!(expected_first(serde), ours);
    }

    #[test]
    fn unknown_action_lists_every_action_and_modifier() {
        let (_, _, message) = problem(&client("  { conect = 8080 },"));
        for name in ACTIONS
            .iter()
            .chain(&["timeout", "within", "expect", "longer_than"])
        {
            assert!(
                message.contains(&format!("`{name}`")),
                "{name} missing from {message:?}"
            );
        }
    }

    #[test]
    fn every_unknown_errno_in_a_list_is_reported_at_itself() {
        let text = client("  { connect = 8080, expect = [\"EFOO\", \"ok\", \"EBAR\"] },");
        let all = problems(text.as_bytes());
        let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(4, 31), (4, 45)], "{all:#?}");
    }

    #[test]
    fn expect_lists_parse() {
        let text = client("  { connect = 8080, expect = [\"ECONNREFUSED\", \"ok\"] },");
        let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
        let expect = suite.cases[0].scripts[0].steps[0].expect.clone().unwrap();
        assert_eq!(
            expect.result,
            [Outcome::Errno("ECONNREFUSED".parse().unwrap()), Outcome::Ok]
        );
    }

    #[test]
    fn unknown_errno_lists_the_known_names() {
        let (_, _, message) = problem(&client("  { connect = 8080, expect = \"ECONRESET\" },"));
        for name in crate::model::Errno::known_names() {
            assert!(message.contains(name), "{name} missing from {message:?}");
        }
    }

    #[rstest]
    #[case("0", 0)]
    #[case("200ms", 200_000)]
    #[case("200 ms", 200_000)]
    #[case("1.5s", 1_500_000)]
    #[case("0.5s", 500_000)]
    #[case("1.5 s", 1_500_000)]
    #[case("1s 500ms", 1_500_000)]
    #[case("2m", 120_000_000)]
    // Fractions on any unit, not only on a trailing `s`.
    #[case("1.5ms", 1_500)]
    #[case("1.5secs", 1_500_000)]
    #[case("1.5m", 90_000_000)]
    #[case("1s 0.5ms", 1_000_500)]
    #[case("1.5s 200ms", 1_700_000)]
    fn durations(#[case] written: &str, #[case] micros: u64) {
        let text = client(&format!("  {{ sleep = \"{written}\" }},"));
        let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
        let action = &suite.cases[0].scripts[0].steps[0].action;
        assert_eq!(action, &Action::Sleep(Duration::from_micros(micros)));
    }

    #[rstest]
    // humantime wants a digit before and after the point.
    #[case(".5s", "")]
    #[case("1.s", "")]
    #[case("1.5e3s", "")]
    #[case("+1.5s", "")]
    // Finer than a nanosecond.
    #[case("1.5ns", "")]
    // Spaces around the value, with or without a unit.
    #[case(" 1s", " without spaces around it")]
    #[case("1s ", " without spaces around it")]
    #[case("0.5ms ", " without spaces around it")]
    #[case(" 0", " without spaces around it")]
    #[case("0 ", " without spaces around it")]
    fn rejected_durations(#[case] written: &str, #[case] hint: &str) {
        let (_, _, message) = problem(&client(&format!("  {{ sleep = \"{written}\" }},")));
        assert_eq!(
            message,
            format!(
                "expected a duration like \"200ms\", \"1.5s\" or \"2m\"{hint}, found \"{written}\""
            )
        );
    }

    #[rstest]
    #[case("off", None)]
    #[case("0s", Some(0))]
    #[case("0", Some(0))]
    #[case("5s", Some(5))]
    // Whole seconds however written.
    #[case("1000ms", Some(1))]
    #[case("1.5m", Some(90))]
    fn lingers(#[case] written: &str, #[case] secs: Option<u64>) {
        let text = client(&format!("  {{ set = {{ linger = \"{written}\" }} }},"));
        let suite = parse_suite(Path::new(PATH), text.as_bytes()).unwrap();
        let Action::Set(options) = &suite.cases[0].scripts[0].steps[0].action else {
            panic!("expected a `set` step");
        };
        assert_eq!(options.linger, Some(secs.map(Duration::from_secs)));
        // What reports show is what the kernel is given.
        let shown = secs.map_or("linger=off".to_string(), |s| format!("linger={s}s"));
        assert_eq!(options.to_string(), shown);
    }

    #[test]
    fn not_utf8_points_at_the_bad_byte() {
        let text = b"# caf\xe9\n[[case]]\nname = \"a\"\nclient = [\"close\"]\n";
        let (line, column, message) = problem_in(text);
        assert_eq!((line, column), (1, 6));
        assert_eq!(
            message,
            "expected UTF-8 text, found the byte 0xe9 that is not valid UTF-8"
        );
    }

    #[test]
    fn not_utf8_reports_every_bad_sequence_and_the_rest_of_the_file() {
        // A lone byte, a truncated 3-byte sequence, and an ordinary error after them.
        let text = b"# \xff caf\xe2\x82\n[[case]]\nname = \"a\"\nclient = [{ sleep = \"fast\" }]\n";
        let all = problems(text);
        let found: Vec<_> = all.iter().map(|(l, c, m)| (*l, *c, m.as_str())).collect();
        assert_eq!(
            found,
            [
                (
                    1,
                    3,
                    "expected UTF-8 text, found the byte 0xff that is not valid UTF-8"
                ),
                (
                    1,
                    8,
                    "expected UTF-8 text, found the bytes 0xe2 0x82 that are not valid UTF-8"
                ),
                (
                    4,
                    21,
                    "expected a duration like \"200ms\", \"1.5s\" or \"2m\", found \"fast\""
                ),
            ]
        );
        let rendered = rendered(text);
        assert!(rendered.contains("suites/t.toml:1:3"), "{rendered}");
        assert!(
            rendered.contains("1 | # \u{fffd} caf\u{fffd}"),
            "{rendered}"
        );
    }

    #[test]
    fn every_error_in_the_file_is_reported_in_file_order() {
        let text = r#"deadline = "soon"

[[case]]
name = "one"
client = [
  { conect = 8080 },
  "closee",
  { sleep = "fast" },
]
server = [
  { listen = "10.0.0.1:80" },
  { recv = true, within = "1s" },
]

[[case]]
sysctl = { "kernel.pid_max" = 5 }
client = [
  { connect = 8080, expect = "ECONRESET" },
  { state = { client = "ESTABLISHD" } },
  { send = true },
  { listen = 8080 },
]

[[case]]
name = "one"
server = [{ connect = 8080, close = true }]
"#;
        let all = problems(text.as_bytes());
        let found: Vec<_> = all
            .iter()
            .map(|(l, c, m)| (*l, *c, m.split([',', '(']).next().unwrap().trim_end()))
            .collect();
        assert_eq!(
            found,
            [
                (1, 12, "expected a duration like \"200ms\""),
                (6, 5, "unknown field `conect`"),
                (7, 3, "expected \"accept\""),
                (8, 13, "expected a duration like \"200ms\""),
                (11, 14, "expected a loopback address"),
                (12, 27, "`within` does not apply to `recv`"),
                (15, 1, "expected a `name` for this case"),
                (16, 12, "only per-network-namespace sysctls"),
                (18, 30, "expected \"ok\""),
                (19, 24, "unknown TCP state `ESTABLISHD`"),
                (20, 12, "expected text to send"),
                (21, 14, "`listen` is for the server or proxy side"),
                (25, 8, "expected a case name unique in this suite"),
                (26, 29, "expected one action per step"),
            ],
            "{all:#?}"
        );
    }

    #[test]
    fn a_case_with_errors_does_not_stop_later_cases_being_checked() {
        let text = "\
[[case]]
name = \"first\"
client = [{ conect = 1 }]

[[case]]
name = \"second\"
client = [{ sleep = \"fast\" }]
";
        let all = problems(text.as_bytes());
        let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(3, 13), (7, 21)], "{all:#?}");
    }

    #[test]
    fn a_duplicate_name_is_found_even_when_both_cases_have_other_errors() {
        let text = "\
[[case]]
name = \"a\"
client = [{ conect = 1 }]

[[case]]
name = \"a\"
client = [{ sleep = \"fast\" }]
";
        let all = problems(text.as_bytes());
        let at: Vec<_> = all.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, [(3, 13), (6, 8), (7, 21)], "{all:#?}");
        assert!(all[1].2.contains("found `a` again"), "{all:#?}");
    }

    #[test]
    fn rendered_has_path_line_col_and_the_source_line() {
        let text = client("  { sleep = \"fast\" },");
        let rendered = rendered(text.as_bytes());
        assert!(rendered.contains("suites/t.toml:4:13"), "{rendered}");
        assert!(
            rendered.contains("4 |   { sleep = \"fast\" },"),
            "{rendered}"
        );
        assert!(
            rendered.contains("error: expected a duration like"),
            "{rendered}"
        );
    }

    #[test]
    fn every_reference_suite_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let files = crate::suite::discover(&[dir]).unwrap();
        assert!(!files.is_empty());
        for file in files {
            let suite = crate::suite::load(&file).unwrap_or_else(|err| panic!("{err}"));
            assert!(!suite.cases.is_empty(), "{} has no cases", file.display());
        }
    }

    #[test]
    fn never_panics_on_truncated_or_corrupted_input() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
        let text = std::fs::read(dir.join("s07_abortive_close.toml")).unwrap();
        for end in 0..text.len() {
            let _ = parse_suite(Path::new(PATH), &text[..end]);
        }
        // Every other byte replaced in turn by bytes that break strings,
        // arrays and UTF-8 (the lead byte of a 2-byte sequence).
        for at in (0..text.len()).step_by(2) {
            for byte in [b'"', b']', 0xc3] {
                let mut broken = text.clone();
                broken[at] = byte;
                let _ = parse_suite(Path::new(PATH), &broken);
            }
        }
    }
}
