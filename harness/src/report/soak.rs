//! Figures of a soak (`hangup run --repeat N --soak`): per case, how often
//! it ran and failed, the spread of every call duration it measured, and
//! how late hangup's own threads ran.
//!
//! A flake shows as a failure count, but what tells its cause is the
//! spread around it: a timing check that failed once in 500 runs next to a
//! p99 lateness of 80 ms is the machine, not the peer. The figures come
//! from the reports alone (each round's timelines), so a JSON report of a
//! soak holds everything they are made of.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::{CaseReport, describe_call};
use crate::model::{Escaped, Side};
use crate::record::{EventKind, StepId};
use crate::verdict::millis;

/// Minimum, median, 99th percentile and maximum of some durations
/// (nearest rank: with fewer than 100 samples the p99 is the maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// The shortest.
    pub min: Duration,
    /// The middle one (the lower of the two middle ones).
    pub median: Duration,
    /// The one 99 % of the samples do not exceed.
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
}

impl Spread {
    /// The spread of `samples`; none when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Spread> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).max(1) - 1];
        Some(Spread {
            min: samples[0],
            median: rank(50),
            p99: rank(99),
            max: samples[samples.len() - 1],
        })
    }
}

/// One step's calls over every run of a case.
#[derive(Debug, Clone)]
pub struct StepFigures {
    /// Whose step.
    pub side: Side,
    /// Which step: in a loop, the body's step, over all its rounds.
    pub step: StepId,
    /// The call as the first run described it (`recv (timeout 200 ms)`).
    pub action: String,
    /// How many calls were measured (a step in a loop is called again).
    pub calls: usize,
    /// How long they took.
    pub took: Spread,
}

/// One case over every round.
#[derive(Debug, Clone)]
pub struct CaseFigures {
    /// `<suite>::<case>`.
    pub name: String,
    /// Rounds it ran in (not skipped).
    pub runs: usize,
    /// Rounds it failed in.
    pub failures: usize,
    /// How late hangup's own threads ran, per run.
    pub lateness: Option<Spread>,
    /// Its steps' calls, by side and step.
    pub steps: Vec<StepFigures>,
}

/// The figures of every case that ran, in the order of the first round.
pub fn figures(rounds: &[Vec<CaseReport>]) -> Vec<CaseFigures> {
    let mut order: Vec<&str> = Vec::new();
    let mut runs: BTreeMap<&str, Vec<&CaseReport>> = BTreeMap::new();
    for report in rounds.iter().flatten() {
        if report.skipped() {
            continue;
        }
        let seen = runs.entry(&report.name).or_default();
        if seen.is_empty() {
            order.push(&report.name);
        }
        seen.push(report);
    }
    order
        .into_iter()
        .map(|name| case_figures(name, &runs[name]))
        .collect()
}

fn case_figures(name: &str, runs: &[&CaseReport]) -> CaseFigures {
    let mut calls: BTreeMap<(Side, StepId), (String, Vec<Duration>)> = BTreeMap::new();
    for report in runs {
        for event in &report.timeline.events {
            let (
                Some(side),
                EventKind::Call {
                    step,
                    call,
                    on,
                    took,
                    ..
                },
            ) = (event.side, &event.kind)
            else {
                continue;
            };
            // A loop's rounds are one step: each step of its body, keyed
            // and described without the round.
            let step = StepId {
                round: None,
                ..*step
            };
            calls
                .entry((side, step))
                .or_insert_with(|| (describe_call(call, *on, step), Vec::new()))
                .1
                .push(*took);
        }
    }
    let steps = calls
        .into_iter()
        .filter_map(|((side, step), (action, took))| {
            let calls = took.len();
            Some(StepFigures {
                side,
                step,
                action,
                calls,
                took: Spread::of(took)?,
            })
        })
        .collect();
    CaseFigures {
        name: name.to_owned(),
        runs: runs.len(),
        failures: runs.iter().filter(|r| r.failure().is_some()).count(),
        lateness: Spread::of(runs.iter().map(|r| r.lateness).collect()),
        steps,
    }
}

/// The figures as text: a line per case, a line per step under it (the
/// case's name [`Escaped`], so it cannot start a line of its own).
pub fn render(figures: &[CaseFigures]) -> String {
    let mut out = String::from("soak figures (min / median / p99 / max):\n");
    for case in figures {
        let _ = write!(
            out,
            "{}: {} runs, {} failed",
            Escaped(&case.name),
            case.runs,
            case.failures
        );
        if let Some(late) = case.lateness {
            let _ = write!(out, "; hangup's own lateness {}", spread(late));
        }
        out.push('\n');
        for step in &case.steps {
            let _ = writeln!(
                out,
                "    {} step {} `{}`: {} over {} calls",
                step.side,
                step.step,
                Escaped(&step.action),
                spread(step.took),
                step.calls
            );
        }
    }
    out
}

fn spread(s: Spread) -> String {
    format!(
        "{} / {} / {} / {}",
        millis(s.min),
        millis(s.median),
        millis(s.p99),
        millis(s.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    /// A loop's body steps are figures of their own, each over every
    /// round: a connect's times are not a recv's.
    #[test]
    fn each_step_of_a_loop_body_has_its_own_figures() {
        use crate::model::{CallResult, Outcome};
        use crate::record::Timeline;
        use crate::report::{CaseReport, CaseStatus};
        use crate::suite::SocketCall;
        let mut timeline = Timeline::default();
        for round in 1..=3 {
            for (body, call, took) in [
                (1, SocketCall::SoError, 1),
                (
                    2,
                    SocketCall::Recv {
                        max: 10,
                        timeout: None,
                    },
                    100,
                ),
            ] {
                timeline.push(
                    Duration::from_millis(1),
                    Some(Side::Client),
                    EventKind::Call {
                        step: StepId {
                            index: 2,
                            body: Some(body),
                            round: Some(round),
                        },
                        call,
                        on: None,
                        took: Duration::from_millis(took),
                        busy: Duration::ZERO,
                        result: CallResult {
                            outcome: Outcome::Ok,
                            bytes: 0,
                            ready: None,
                            short: None,
                        },
                    },
                );
            }
        }
        let report = CaseReport::new(
            ("s::c".into(), "s".into(), "c".into(), "s.toml:1:1".into()),
            CaseStatus::Passed,
            Duration::from_millis(5),
            timeline,
            Duration::ZERO,
        );
        let figures = case_figures("s::c", &[&report]);
        let steps: Vec<(String, usize, Duration)> = figures
            .steps
            .iter()
            .map(|s| (s.step.to_string(), s.calls, s.took.max))
            .collect();
        assert_eq!(
            steps,
            [
                ("2.1".to_string(), 3, Duration::from_millis(1)),
                ("2.2".to_string(), 3, Duration::from_millis(100)),
            ]
        );
    }

    #[test]
    fn spreads_by_nearest_rank() {
        assert_eq!(Spread::of(Vec::new()), None);
        let one = Spread::of(ms(&[7])).expect("one");
        assert_eq!(
            (one.min, one.median, one.p99, one.max),
            (ms(&[7])[0], ms(&[7])[0], ms(&[7])[0], ms(&[7])[0])
        );
        let hundred: Vec<u64> = (1..=100).rev().collect();
        let s = Spread::of(ms(&hundred)).expect("hundred");
        assert_eq!(
            (s.min, s.median, s.p99, s.max),
            (
                Duration::from_millis(1),
                Duration::from_millis(50),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
    }
}
