//! What changed between two runs: the upgrade diff.
//!
//! `hangup run ... --json base.json` against one version of a program,
//! again with `--json new.json` against the next, then `hangup diff
//! base.json new.json`: every observation that changed, per case, not just
//! pass or fail. Both reports are read as their types
//! ([`crate::report::format`]), at most [`MAX_REPORT_BYTES`] each and a
//! case at a time, each case kept only as what is compared of it
//! ([`LastRound`], [`ComparedCase`]); a round that holds a case twice is
//! refused. A case's observations come from its events, each keyed by
//! what it is an observation of ([`Observation`]: whose, which step, which
//! action or check), never by how a writer words it:
//!
//! - each call, by side, step and action: its outcome (ok, EOF, the
//!   errno), the bytes it moved (not for a `recv_until` that found its
//!   mark: how far past it the last read went is timing), the events a
//!   poll saw ready, and how long it took when that changed beyond what
//!   timing allows (see [Durations](#durations)); a call still in flight
//!   when the case ended;
//! - each state the kernel reported, by socket and the side and step that
//!   checked it;
//! - in a loop, each step of its body once: the set of what its rounds
//!   saw (how many rounds ran, and in which order they met an outcome, is
//!   timing); in a loop that ended on its `until`, what the round that
//!   ended it saw (the rounds before were its waiting);
//! - what each check counted (`log`, `syscall`, `taken`, `sent`), who sent
//!   the first segment (`first`), the accept queues, and what the program
//!   held at each `released` (the states of its connections, those
//!   waiting to be accepted, and how many fds it had);
//! - how the program under test ended;
//! - what the program printed that no step asked about: each line, masked
//!   by the suite's `mask` and then its numbers (ports, pids, times, ids),
//!   printed in one run and not the other (a new `ERROR` line, a stack
//!   trace, a `clientError`);
//! - the errnos the program's traced socket calls returned (EAGAIN and
//!   EINTR aside: a non-blocking runtime's routine);
//! - on the wire, when both runs captured packets: whether each side sent
//!   a FIN and whether it sent an RST, and whose FIN came first (a close
//!   that became a reset, or a server that now closes first); not how many
//!   segments, which delayed ACKs, coalescing and retransmission timers
//!   change from run to run;
//! - the case's verdict.
//!
//! What differs between any two runs by design is left out: pids, ports,
//! fd numbers, when things happened, and the command the program was
//! started with. An observation met again (a state checked twice by one
//! step) is told apart by its count.
//!
//! # Durations
//!
//! A call's duration changed when the two runs' differ by more than the
//! case's timing tolerance allows for the longer (its suite's, as its
//! report records it, and at least the one the diff is given), widened by
//! what each run measured of the machine: hangup's timers waking late
//! (`lateness_ms`), how long the scripts' threads were busy during the
//! call, on a CPU or waiting on a run queue for one (the call's
//! `busy_ms`), and how long the program's were while the scripts ran
//! (`program_busy`: read twice a case, not around each call, which under
//! load delayed the scripts). What is left is time everything waited for
//! something else (a peer, a timer): what a program decides. On a loaded
//! machine the rest is most of a duration; on an idle one, little.
//!
//! # Noise
//!
//! Given more runs of the base ([`Comparison::with_noise`], `hangup diff
//! --base-again`, and `compare`'s `baseline_runs`), a difference between
//! the base and the new run is set aside as noise when the base's own runs
//! differ in the same observation too, or when the new run does not
//! differ from every one of them (as Diffy does): what changes between
//! two runs of one version is no change the new version made. Noise is
//! kept, and counted, apart from the differences.
//!
//! A difference can be accepted: an accept file lists differences exactly
//! as [`Difference`]'s display writes them, one a line (`#` starts a
//! comment), and the diff then fails only on the others.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::report::CaseReport;
use crate::suite::Tolerance;

pub use super::difference::{Change, Difference, Observation, Observed, Run};
pub use input::{InputError, LastRound, MAX_REPORT_BYTES, read_and_compare};
pub use masks::{MaskError, Masks};
pub use versions::{Pair, Versions, between_versions, version_pairs};

use observations::observations;

mod input;
mod masks;
mod noise;
mod observations;
mod versions;

#[cfg(test)]
use masks::masked;

/// What `hangup diff` found between two reports' last rounds.
#[derive(Debug)]
#[non_exhaustive]
pub struct Comparison {
    /// Every difference, case by case in the order of their names.
    pub differences: Vec<Difference>,
    /// The differences set aside as noise: the base's own runs differ in
    /// them too (none without more runs of the base).
    pub noise: Vec<Difference>,
    /// How many more runs of the base were compared for noise.
    pub base_again: usize,
    /// The names of the cases compared: those in either report's last
    /// round, in order.
    pub cases: Vec<String>,
}

impl Comparison {
    /// Compares the last rounds of two reports (see [`diff`]).
    pub fn of(base: &LastRound, new: &LastRound, tolerance: Tolerance) -> Comparison {
        Comparison::with_noise(base, &[], new, tolerance)
    }

    /// Compares the last rounds of two reports, setting aside as noise
    /// what `again`, more runs of the base, show to differ between runs of
    /// the base too (see [Noise](self#noise)).
    pub fn with_noise(
        base: &LastRound,
        again: &[LastRound],
        new: &LastRound,
        tolerance: Tolerance,
    ) -> Comparison {
        let cases: BTreeSet<&str> = base.names().chain(new.names()).collect();
        let again: Vec<&[ComparedCase]> = again.iter().map(LastRound::cases).collect();
        let (differences, noise) = differences(base.cases(), &again, new.cases(), tolerance);
        Comparison {
            differences,
            noise,
            base_again: again.len(),
            cases: cases.into_iter().map(str::to_string).collect(),
        }
    }

    /// How many of the differences `accepted` does not list.
    pub fn open(&self, accepted: &BTreeSet<String>) -> usize {
        listed(&self.differences, accepted).1
    }

    /// What `hangup diff` prints: each difference on a line of its own as
    /// an accept file lists it (`  (accepted)` after one that `accepted`
    /// lists), a blank line, and the count, `6 differences in 1 case of 1
    /// case, 0 accepted`. With more runs of the base, the noise set aside
    /// comes before the count, each under a heading, indented, and the
    /// count ends `, 2 set aside as noise`. Every string a report gave is
    /// shown [`Escaped`](crate::model::Escaped), so each difference is one
    /// line and the count is the last, whatever the reports hold.
    pub fn render(&self, accepted: &BTreeSet<String>) -> String {
        let (lines, open) = listed(&self.differences, accepted);
        let changed: BTreeSet<&str> = self.differences.iter().map(|d| d.case.as_str()).collect();
        let mut out = String::new();
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&noise_listed(&self.noise));
        out.push_str(&format!(
            "\n{} differences in {} of {}, {} accepted",
            self.differences.len(),
            cases(changed.len()),
            cases(self.cases.len()),
            self.differences.len() - open
        ));
        if self.base_again > 0 {
            out.push_str(&format!(", {} set aside as noise", self.noise.len()));
        }
        out
    }
}

/// The noise set aside, for the terminal: a heading and each difference
/// indented (so no accept file takes it for a difference), or nothing.
pub fn noise_listed(noise: &[Difference]) -> String {
    if noise.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nset aside as noise (the base's own runs differ there too):\n");
    for difference in noise {
        out.push_str(&format!("  {difference}\n"));
    }
    out
}

/// `1 case`, `2 cases`.
fn cases(n: usize) -> String {
    if n == 1 {
        "1 case".into()
    } else {
        format!("{n} cases")
    }
}

/// Each difference as it is shown, one a line as an accept file lists it,
/// `  (accepted)` after those `accepted` lists; and how many it does not.
pub fn listed(differences: &[Difference], accepted: &BTreeSet<String>) -> (Vec<String>, usize) {
    let mut open = 0;
    let lines = differences
        .iter()
        .map(|difference| {
            let line = difference.to_string();
            if accepted.contains(&line) {
                format!("{line}  (accepted)")
            } else {
                open += 1;
                line
            }
        })
        .collect();
    (lines, open)
}

/// Compares the last round of two reports; a call's duration counts as
/// changed beyond what timing allows (see [Durations](self#durations);
/// `tolerance` is the least tolerance). Cases are paired by name: a
/// report holds each name once a round ([`LastRound::read`] refuses one
/// that does not; here the last of a name is the one compared). Refused
/// when a case's masks are not ones hangup compiles (a report from
/// outside).
pub fn diff(
    base: &[CaseReport],
    new: &[CaseReport],
    tolerance: Tolerance,
) -> Result<Vec<Difference>, MaskError> {
    let reduced = |cases: &[CaseReport]| {
        cases
            .iter()
            .map(ComparedCase::of)
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(differences(&reduced(base)?, &[], &reduced(new)?, tolerance).0)
}

/// The differences between two runs' cases, paired by name, and the noise
/// set aside as `again`, more runs of the base, show it.
fn differences(
    base: &[ComparedCase],
    again: &[&[ComparedCase]],
    new: &[ComparedCase],
    tolerance: Tolerance,
) -> (Vec<Difference>, Vec<Difference>) {
    let by_name = |cases: &[ComparedCase]| -> BTreeMap<String, usize> {
        cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect()
    };
    let (in_base, in_new) = (by_name(base), by_name(new));
    let in_again: Vec<BTreeMap<String, usize>> = again.iter().map(|cases| by_name(cases)).collect();
    let names: BTreeSet<&String> = in_base.keys().chain(in_new.keys()).collect();
    let (mut found, mut noise) = (Vec::new(), Vec::new());
    for name in names {
        let named = |changes: Vec<Change>| {
            changes.into_iter().map(|change| Difference {
                case: name.clone(),
                change,
            })
        };
        match (in_base.get(name), in_new.get(name)) {
            (Some(_), None) => found.extend(named(vec![Change::OnlyIn { run: Run::Base }])),
            (None, Some(_)) => found.extend(named(vec![Change::OnlyIn { run: Run::New }])),
            (Some(&a), Some(&b)) => {
                let others: Vec<&ComparedCase> = in_again
                    .iter()
                    .zip(again)
                    .filter_map(|(index, cases)| Some(&cases[*index.get(name)?]))
                    .collect();
                let judged = noise::judged(&base[a], &others, &new[b], tolerance);
                found.extend(named(judged.differences));
                noise.extend(named(judged.noise));
            }
            (None, None) => {}
        }
    }
    (found, noise)
}

/// The differences between two runs of one case (no noise leg).
pub fn compare(
    a: &CaseReport,
    b: &CaseReport,
    tolerance: Tolerance,
) -> Result<Vec<Change>, MaskError> {
    let (a, b) = (ComparedCase::of(a)?, ComparedCase::of(b)?);
    Ok(noise::judged(&a, &[], &b, tolerance).differences)
}

/// A case as the diff compares it: its name, its verdict, its
/// observations, and what its durations are judged against, and nothing
/// else. A report's reader keeps this of each case and drops the case's
/// events as soon as they are read ([`LastRound`]): what two runs'
/// differences are computed from.
#[derive(Debug)]
pub struct ComparedCase {
    name: String,
    verdict: String,
    observations: Vec<(Key, Seen)>,
    /// Its suite's tolerance, when its report records it.
    tolerance: Option<Tolerance>,
    /// How late hangup's timers ran in it, at most.
    lateness: Duration,
    /// How busy its program's threads were while the scripts ran.
    program_busy: Duration,
}

impl ComparedCase {
    /// What the diff compares of `case`, its output masked by its own
    /// masks; refused when they do not compile (a report from outside).
    pub fn of(case: &CaseReport) -> Result<ComparedCase, MaskError> {
        Ok(ComparedCase::masked_by(case, &Masks::compile(&case.masks)?))
    }

    /// What the diff compares of `case`, its output masked by `masks`
    /// (the case's own, compiled).
    pub fn masked_by(case: &CaseReport, masks: &Masks) -> ComparedCase {
        ComparedCase {
            name: case.name.clone(),
            verdict: verdict(case),
            observations: observations(&case.timeline.events, masks),
            tolerance: case.tolerance,
            lateness: case.lateness,
            program_busy: case
                .timeline
                .events
                .iter()
                .filter_map(|e| match e.kind {
                    crate::record::EventKind::ProgramBusy { busy } => Some(busy),
                    _ => None,
                })
                .max()
                .unwrap_or_default(),
        }
    }

    /// The case's test name (`<suite>::<case>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `passed`, `ignored`, or `failed (expectation)` and the like.
fn verdict(case: &CaseReport) -> String {
    match case.failure() {
        Some(failure) => format!("failed ({})", failure.kind.name()),
        None if case.skipped() => "ignored".into(),
        None => "passed".into(),
    }
}

/// An observation's key: what it is of, and the how-many-th such it is
/// in its run (an observation met again is told apart by its count).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key(Observation, usize);

/// One observation: what was seen, and for a call how long it took.
#[derive(Debug)]
struct Seen {
    value: String,
    took: Option<Took>,
}

impl Seen {
    fn value(value: String) -> Seen {
        Seen { value, took: None }
    }
}

/// How long a call took, and how long its case's threads were busy
/// meanwhile (on a CPU, or waiting for one).
#[derive(Debug, Clone, Copy)]
struct Took {
    took: Duration,
    busy: Duration,
}

/// The differences an accept file lists: one a line, exactly as
/// [`Difference`] displays them; blank lines and `#` comments are skipped.
pub fn accepted(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
