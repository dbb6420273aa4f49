//! What an upgrade diff found, as data: which observation of which case
//! changed, and how. [`super::diff`] computes these from two runs; the
//! JSON report ([`super::format`]) carries them, and the terminal and
//! JUnit write them. An observation is keyed by what it is of (whose,
//! which step, which action or check), never by how a writer words it.

use std::fmt;
use std::time::Duration;

use crate::model::syscall::Which;
use crate::model::units::millis as ms;
use crate::model::{Errno, Escaped, FlagMatch, Link, Outcome, Side, Socket, TcpFlags};
use crate::record::StepId;
use crate::suite::Segments;
use crate::verdict::millis;

/// One observation that changed in one case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Difference {
    /// The case's test name.
    pub case: String,
    /// What changed.
    pub change: Change,
}

/// Which of two runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Run {
    /// The run compared against.
    Base,
    /// The new run.
    New,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Base => "base",
            Run::New => "new",
        }
    }
}

/// What changed in a case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// The case is in one run's report only.
    OnlyIn {
        /// Which.
        run: Run,
    },
    /// Its verdict changed.
    Verdict {
        /// `passed`, `ignored`, `failed (expectation)`, ...
        base: String,
        /// The same, in the new run.
        new: String,
    },
    /// What was observed changed, or was observed in one run only.
    Observed {
        /// Of what.
        observation: Observation,
        /// What the base run saw (none: it did not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        /// What the new run saw (none: it did not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new: Option<String>,
    },
    /// A call took longer, or shorter, beyond the timing tolerance.
    Took {
        /// Which call.
        observation: Observation,
        /// How long in the base run.
        #[serde(rename = "base_ms", with = "ms")]
        #[schemars(with = "f64")]
        base: Duration,
        /// How long in the new run.
        #[serde(rename = "new_ms", with = "ms")]
        #[schemars(with = "f64")]
        new: Duration,
    },
    /// More observations made in one run only, beyond the first few (a
    /// case that stopped early misses everything after).
    More {
        /// How many.
        count: usize,
        /// The run that did not make them.
        missing_in: Run,
    },
}

/// What an observation is of: whose, at which step, what. Two runs'
/// observations are compared when these are equal.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[non_exhaustive]
pub struct Observation {
    /// Whose (none: the case's, or the wire's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The step that made it, when a step did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepId>,
    /// What was observed.
    pub of: Observed,
}

/// What was observed.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Observed {
    /// A call: the action's keyword (`recv`), and for the proxy which
    /// connection.
    Call {
        /// The keyword.
        action: String,
        /// The proxy's connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<Link>,
    },
    /// A socket's state.
    State {
        /// Which socket.
        socket: Socket,
    },
    /// A `log` check's count.
    Log {
        /// Its pattern.
        pattern: String,
    },
    /// A `syscall` check's count.
    Syscall {
        /// The calls the check names.
        which: Which,
        /// The outcomes counted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        results: Vec<Outcome>,
    },
    /// A `taken` check's count.
    Taken {
        /// The fault's name.
        fault: String,
    },
    /// A `sent` check's count.
    Sent {
        /// The segments.
        segments: Segments,
    },
    /// Who sent the first segment with these flags (`first`).
    First {
        /// The flags.
        flags: FlagMatch,
    },
    /// A listener's accept queue (`accept_queue`).
    AcceptQueue {
        /// Whose.
        of: Side,
    },
    /// What the program held (`released`).
    Held,
    /// How the program under test ended.
    Exit,
    /// A line the program printed, its numbers masked.
    Printed {
        /// The line, with `#` for each run of digits (and long hex).
        line: String,
    },
    /// An errno the program's traced calls of one kind returned.
    TracedErrno {
        /// The kind of call (`write`, `read`, ...), or the syscall's name
        /// when it is of no class.
        call: String,
        /// The errno.
        errno: Errno,
    },
    /// That a side's calls were traced at all (whether or not one
    /// failed): so a run traced against one that was not is a difference.
    Traced,
    /// Whether a side sent a segment with this flag (FIN, RST).
    SentFlag {
        /// The flag.
        flag: TcpFlags,
    },
    /// Whose FIN came first.
    FirstFin,
}

/// How an observation reads in a difference: `client #3 recv`,
/// `server state (step 5)`, `client log "^app: sent"`.
impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = self.side.map_or("", Side::name);
        let step = self.step.map_or_else(String::new, |s| s.to_string());
        match &self.of {
            Observed::Call { action, on } => {
                let index = self.step.map_or(0, |s| s.index);
                write!(f, "{side} #{index}")?;
                if let Some(body) = self.step.and_then(|s| s.body) {
                    write!(f, ".{body}")?;
                }
                write!(f, " {action}")?;
                match on {
                    Some(Link::Accepted) => f.write_str(" (on client)")?,
                    Some(Link::Connected) => f.write_str(" (on server)")?,
                    None => {}
                }
                if let Some(round) = self.step.and_then(|s| s.round) {
                    write!(f, " [round {round}]")?;
                }
                Ok(())
            }
            Observed::State { socket } if side.is_empty() => {
                write!(f, "{socket} state (step {step})")
            }
            Observed::State { socket } => write!(f, "{socket} state ({side} step {step})"),
            Observed::Log { pattern } => write!(f, "{side} log {pattern:?} (step {step})"),
            Observed::Syscall { which, results } if results.is_empty() => {
                write!(f, "{side} syscall {which} (step {step})")
            }
            Observed::Syscall { which, results } => {
                let results: Vec<String> = results.iter().map(|o| o.word()).collect();
                write!(
                    f,
                    "{side} syscall {which} expect {} (step {step})",
                    results.join(" or ")
                )
            }
            Observed::Taken { fault } => write!(f, "{side} fault {fault:?} (step {step})"),
            Observed::Sent { segments } => write!(f, "{side} sent {segments} (step {step})"),
            Observed::First { flags } => write!(f, "{side} first {flags} (step {step})"),
            Observed::AcceptQueue { of } => {
                write!(f, "{side} accept queue of the {of} (step {step})")
            }
            Observed::Held => write!(f, "{side} released (step {step})"),
            Observed::Exit => write!(f, "{side} program"),
            Observed::Printed { line } => write!(f, "{side} printed {line:?}"),
            Observed::TracedErrno { call, errno } => {
                write!(f, "{side} traced {call} returned {}", errno.name())
            }
            Observed::Traced => write!(f, "{side} traced"),
            Observed::SentFlag { flag } => write!(f, "on the wire: {side} sent {flag}"),
            Observed::FirstFin => f.write_str("on the wire: first FIN"),
        }
    }
}

impl Difference {
    /// The difference in three parts, for a table: what changed, what the
    /// base run saw, what the new run saw. Not escaped: each writer
    /// escapes for where it writes.
    pub fn parts(&self) -> [String; 3] {
        let seen = |value: &Option<String>| value.as_deref().unwrap_or("(not seen)").to_string();
        match &self.change {
            Change::OnlyIn { run } => {
                let (ran, not) = ("ran".to_string(), "(not in this run)".to_string());
                match run {
                    Run::Base => ["the case".into(), ran, not],
                    Run::New => ["the case".into(), not, ran],
                }
            }
            Change::Verdict { base, new } => ["verdict".into(), base.clone(), new.clone()],
            Change::Observed {
                observation,
                base,
                new,
            } => [observation.to_string(), seen(base), seen(new)],
            Change::Took {
                observation,
                base,
                new,
            } => [format!("{observation}: took"), millis(*base), millis(*new)],
            Change::More { count, missing_in } => {
                let (made, not) = ("made".to_string(), "(not seen)".to_string());
                let what = format!("{count} more observations");
                match missing_in {
                    Run::Base => [what, not, made],
                    Run::New => [what, made, not],
                }
            }
        }
    }

    /// The side and step of what changed, when a step's observation did
    /// (a writer highlights that step's events).
    pub fn step(&self) -> Option<(Side, StepId)> {
        match &self.change {
            Change::Observed { observation, .. } | Change::Took { observation, .. } => {
                observation.side.zip(observation.step)
            }
            _ => None,
        }
    }
}

/// `case: what`, the form an accept file lists: one line, whatever the
/// strings it quotes hold (they may come from a report handed to `hangup
/// diff`), so it is written [`Escaped`]; an accept file lists a difference
/// as it is shown.
impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Escaped(Line(self)).fmt(f)
    }
}

/// A [`Difference`] as it reads before it is escaped.
struct Line<'a>(&'a Difference);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Line(difference) = self;
        write!(f, "{}: ", difference.case)?;
        let seen = |value: &Option<String>| value.as_deref().unwrap_or("(not seen)").to_string();
        match &difference.change {
            Change::OnlyIn { run } => write!(f, "only in {}", run.name()),
            Change::Verdict { base, new } => write!(f, "verdict: {base} -> {new}"),
            Change::Observed {
                observation,
                base,
                new,
            } => write!(f, "{observation}: {} -> {}", seen(base), seen(new)),
            Change::Took {
                observation,
                base,
                new,
            } => write!(
                f,
                "{observation}: took {} -> {}",
                millis(*base),
                millis(*new)
            ),
            Change::More { count, missing_in } => write!(
                f,
                "and {count} more observations not seen in {}",
                missing_in.name()
            ),
        }
    }
}

impl PartialOrd for Observation {
    fn partial_cmp(&self, other: &Observation) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// By what it reads as: a stable order for maps, the same in every run.
impl Ord for Observation {
    fn cmp(&self, other: &Observation) -> std::cmp::Ordering {
        (self.side, self.step, self.to_string()).cmp(&(other.side, other.step, other.to_string()))
    }
}
