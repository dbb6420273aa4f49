//! Reading a `[program]` table (the suite's or a case's): what serde
//! cannot check of it (an empty command, a NUL byte in what reaches
//! `execve` or `chdir`, an `=` in a variable's name, port 0, a pattern
//! that does not compile, a signal, role and scope that are no such
//! thing), the masks its output is compared through, and the two
//! versions `compare` names, each run of which makes a case of its own.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::Reader;
use super::raw::{self, RawEnv, RawProgram};
use crate::model::Side;
use crate::suite::limits::{MAX_BASELINE_RUNS, MAX_MASKS};
use crate::suite::{
    Case, CaseVersion, DEFAULT_BASELINE_RUNS, DEFAULT_READY_WITHIN, DEFAULT_STOP_GRACE, Program,
    Scope, Version, VersionRun,
};

impl<'a> Reader<'a> {
    /// A `[program]` table: serde reads its shape, this checks the rest
    /// (an empty command, what `execve` cannot take, port 0, a pattern
    /// that does not compile, a signal that is not one).
    /// `suite_level`: the suite's own `[program]` (only it may serve the
    /// whole suite).
    pub(super) fn program(
        &mut self,
        value: &Spanned<DeValue<'a>>,
        suite_level: bool,
    ) -> Option<Program> {
        let raw = self.table_value::<RawProgram>(value, "in `[program]`")?;
        let before = self.count;
        let at = value.span();
        self.command(&raw.run, "`run`");
        self.environment(&raw.env);
        if let Some(cwd) = &raw.cwd {
            if cwd.get_ref().is_empty() {
                self.problem(
                    cwd.span(),
                    "expected `cwd` to name a folder, found an empty string",
                );
            }
            self.no_nul(cwd, "`cwd`");
        }
        for command in &raw.requires {
            self.no_nul(command, "`requires`'s commands");
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
        let baseline_runs = self.baseline_runs(raw.baseline_runs, !raw.compare.is_empty());
        let masks = self.masks(raw.mask);
        let versions = self.versions(raw.compare, scope, &at);
        (self.count == before).then(|| Program {
            versions,
            baseline_runs,
            masks,
            scope,
            argv: words(raw.run),
            env: variables(raw.env),
            cwd: raw.cwd.map(Spanned::into_inner),
            role,
            port: raw.port,
            ready,
            within: raw.within.map_or(DEFAULT_READY_WITHIN, |d| d.0),
            stop,
            grace: raw.grace.map_or(DEFAULT_STOP_GRACE, |d| d.0),
            requires: raw.requires.into_iter().map(Spanned::into_inner).collect(),
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
            if let Some(run) = &version.run {
                self.command(run, &format!("version `{}`'s `run`", version.name));
            }
            self.environment(&version.env);
        }
        // The same name twice is a version compared with itself: its runs
        // are numbered on (`<case>@<name>#<run>`).
        raw.into_iter()
            .map(|v| Version {
                name: v.name,
                argv: v.run.map(words),
                env: variables(v.env),
            })
            .collect()
    }

    /// `baseline_runs`: how many times the version compared against runs,
    /// from 1 (no noise leg) to [`MAX_BASELINE_RUNS`]; 2 by default.
    /// Only beside `compare`.
    fn baseline_runs(&mut self, raw: Option<Spanned<i64>>, compares: bool) -> usize {
        let Some(raw) = raw else {
            return DEFAULT_BASELINE_RUNS;
        };
        if !compares {
            self.problem(
                raw.span(),
                "expected `baseline_runs` only beside `compare`, which names the version it runs",
            );
        }
        match usize::try_from(*raw.get_ref()) {
            Ok(runs @ 1..=MAX_BASELINE_RUNS) => runs,
            _ => {
                self.problem(
                    raw.span(),
                    format!(
                        "expected `baseline_runs` from 1 to {MAX_BASELINE_RUNS}, found {}",
                        raw.get_ref()
                    ),
                );
                DEFAULT_BASELINE_RUNS
            }
        }
    }

    /// `mask`: regular expressions over the program's output lines, each
    /// one that compiles within the pattern limit, at most [`MAX_MASKS`];
    /// each refused where it is written.
    fn masks(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        if let Some(extra) = raw.get(MAX_MASKS) {
            self.problem(
                extra.span(),
                format!(
                    "expected at most {MAX_MASKS} masks in `mask`, found {}",
                    raw.len()
                ),
            );
        }
        let mut out = Vec::with_capacity(raw.len());
        for mask in raw {
            match crate::suite::limits::pattern(mask.get_ref()) {
                Ok(_) if mask.get_ref().is_empty() => self.problem(
                    mask.span(),
                    "expected a mask to be a regular expression that matches something, found an empty string",
                ),
                Ok(_) => out.push(mask.into_inner()),
                Err(e) => self.problem(
                    mask.span(),
                    format!(
                        "expected a mask to be a regular expression, found `{}`: {e}",
                        mask.get_ref()
                    ),
                ),
            }
        }
        out
    }

    /// A command as `execve` takes it: a first word that names a program,
    /// and no NUL byte in any word (a C string ends at the first, so the
    /// program would be given less than the suite says; Rust's `Command`
    /// refuses it only when it spawns). `what` names it in messages.
    fn command(&mut self, run: &Spanned<Vec<Spanned<String>>>, what: &str) {
        match run.get_ref().first() {
            None => self.problem(
                run.span(),
                format!(
                    "expected {what} to name a command and its arguments, like `run = [\"./server\", \"--port\", \"{{port}}\"]`, found none"
                ),
            ),
            Some(first) if first.get_ref().is_empty() => self.problem(
                first.span(),
                format!("expected {what} to start with a command, found an empty string"),
            ),
            Some(_) => {}
        }
        for word in run.get_ref() {
            self.no_nul(word, &format!("{what}'s words"));
        }
    }

    /// Variables as `execve`'s environment holds them, `NAME=value`: a
    /// name that is not empty and has no `=` (the first `=` ends it, so
    /// `A=B` would set `A` instead), and no NUL byte in either half.
    fn environment(&mut self, env: &RawEnv) {
        for (name, value) in env {
            let text = name.get_ref();
            if text.is_empty() {
                self.problem(
                    name.span(),
                    "expected an environment variable's name, found an empty one",
                );
            } else if text.contains('=') {
                self.problem(
                    name.span(),
                    "expected an environment variable's name without `=` (the first `=` in `NAME=value` ends the name), found one",
                );
            }
            self.no_nul(name, "an environment variable's name");
            self.no_nul(value, "an environment variable's value");
        }
    }

    /// A string that reaches the kernel as a C string: a NUL byte would
    /// silently end it there.
    fn no_nul(&mut self, text: &Spanned<String>, what: &str) {
        if text.get_ref().contains('\0') {
            self.problem(
                text.span(),
                format!(
                    "expected {what} without NUL bytes (the kernel reads C strings, which end at the first), found one"
                ),
            );
        }
    }
}

/// The words of a command as written, without their spans.
fn words(run: Spanned<Vec<Spanned<String>>>) -> Vec<String> {
    run.into_inner()
        .into_iter()
        .map(Spanned::into_inner)
        .collect()
}

/// An `env` table's variables, without their spans, in name order.
fn variables(env: RawEnv) -> Vec<(String, String)> {
    env.into_iter()
        .map(|(name, value)| (name.into_inner(), value.into_inner()))
        .collect()
}

/// A version's name: what may follow `@` in a test name.
fn valid_version_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The case itself, or, when its program names two versions to compare,
/// one case per run of a version: the version compared against
/// [`Program::baseline_runs`] times, then the new one, each named
/// `<case>@<version>` (`#<run>` after a name's first run, so a version
/// compared with itself runs on under its own name), its program with
/// that version's command and environment.
pub(super) fn versions_of(case: Case) -> Vec<Case> {
    let Some((versions, baseline_runs)) = case
        .program
        .as_ref()
        .map(|p| (p.versions.clone(), p.baseline_runs))
        .filter(|(v, _)| !v.is_empty())
    else {
        return vec![case];
    };
    let mut runs: Vec<(Version, bool, usize)> = Vec::new();
    for (i, version) in versions.into_iter().enumerate() {
        let times = if i == 0 { baseline_runs } else { 1 };
        let before = runs.iter().filter(|(v, ..)| v.name == version.name).count();
        for run in before + 1..=before + times {
            runs.push((version.clone(), i == 0, run));
        }
    }
    runs.into_iter()
        .map(|(version, base, run)| {
            let mut one = case.clone();
            let made = CaseVersion {
                case: case.name.clone(),
                of: VersionRun {
                    name: version.name,
                    base,
                    run,
                },
            };
            one.name = format!("{}{}", case.name, made.of.suffix());
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
            one.version = Some(made);
            one
        })
        .collect()
}
