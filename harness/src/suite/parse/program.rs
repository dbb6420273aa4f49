//! Reading a `[program]` table (the suite's or a case's): what serde
//! cannot check of it (an empty command, port 0, a pattern that does not
//! compile, a signal, role and scope that are no such thing), and the two
//! versions `compare` names, each of which makes a case of its own.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::Reader;
use super::raw::{self, RawProgram};
use crate::model::Side;
use crate::suite::{
    Case, CaseVersion, DEFAULT_READY_WITHIN, DEFAULT_STOP_GRACE, Program, Scope, Version,
};

impl<'a> Reader<'a> {
    /// A `[program]` table: serde reads its shape, this checks the rest
    /// (an empty command, port 0, a pattern that does not compile, a
    /// signal that is not one).
    /// `suite_level`: the suite's own `[program]` (only it may serve the
    /// whole suite).
    pub(super) fn program(
        &mut self,
        value: &Spanned<DeValue<'a>>,
        suite_level: bool,
    ) -> Option<Program> {
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
pub(super) fn versions_of(case: Case) -> Vec<Case> {
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
