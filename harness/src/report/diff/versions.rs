//! Two versions of a program in one run (`compare` in `[program]`): each
//! case ran against the version compared against, [`baseline_runs`] times,
//! and against the new one; each pair is compared as `hangup diff`
//! compares two runs, with the base's other runs as its noise leg.
//!
//! [`baseline_runs`]: crate::suite::Program::baseline_runs

use super::{ComparedCase, Difference, MaskError, noise};
use crate::report::CaseReport;
use crate::suite::{Suite, Tolerance};

/// One case a suite runs against two versions of its program.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pair {
    /// `<suite>::<case> (<base> -> <new>)`: how its differences and its
    /// JUnit testcase are named.
    pub label: String,
    /// The test names of the base version's runs, the one compared
    /// against first (`<suite>::<case>@<base>`, then `...#2`, ...).
    pub base: Vec<String>,
    /// The test name of the new version's run.
    pub new: String,
}

/// The cases that `suites` run against two versions of their program,
/// in suite and file order.
pub fn version_pairs(suites: &[Suite]) -> Vec<Pair> {
    let mut out = Vec::new();
    for suite in suites {
        for case in &suite.cases {
            let Some(first) = case.version.as_ref().filter(|v| v.of.base && v.of.run == 1) else {
                continue;
            };
            let of_this = |base: bool| {
                suite.cases.iter().filter(move |other| {
                    other
                        .version
                        .as_ref()
                        .is_some_and(|v| v.of.base == base && v.case == first.case)
                })
            };
            let Some(new) = of_this(false).next() else {
                continue;
            };
            let new_name = new.version.as_ref().map_or("", |v| v.of.name.as_str());
            out.push(Pair {
                label: format!(
                    "{}::{} ({} -> {new_name})",
                    suite.name, first.case, first.of.name
                ),
                base: of_this(true).map(|c| c.test_name(suite)).collect(),
                new: new.test_name(suite),
            });
        }
    }
    out
}

/// What one run found between the versions its suites compare.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Versions {
    /// The labels of the pairs compared, in order.
    pub pairs: Vec<String>,
    /// Every difference, named by its pair's label.
    pub differences: Vec<Difference>,
    /// The differences set aside as noise: the base version's own runs
    /// differ there too.
    pub noise: Vec<Difference>,
}

/// The differences between the two versions of each case that `suites`
/// run against two versions of their program, from one run's `reports`:
/// each pair whose base and new runs both reported, compared as `hangup
/// diff` compares two runs, with the base's other runs that reported as
/// its noise leg. Refused when a case's masks do not compile (they were
/// checked when the suite was read).
pub fn between_versions(
    suites: &[Suite],
    reports: &[CaseReport],
    tolerance: Tolerance,
) -> Result<Versions, MaskError> {
    let mut out = Versions::default();
    for pair in version_pairs(suites) {
        let found = |name: &String| reports.iter().find(|r| &r.name == name);
        let base: Vec<&CaseReport> = pair.base.iter().filter_map(found).collect();
        let (Some(first), Some(new)) = (pair.base.first().and_then(found), found(&pair.new)) else {
            continue;
        };
        let again = base
            .iter()
            .filter(|r| r.name != first.name)
            .map(|r| ComparedCase::of(r))
            .collect::<Result<Vec<_>, _>>()?;
        let judged = noise::judged(
            &ComparedCase::of(first)?,
            &again.iter().collect::<Vec<_>>(),
            &ComparedCase::of(new)?,
            tolerance,
        );
        let named = |changes: Vec<_>| {
            changes.into_iter().map(|change| Difference {
                case: pair.label.clone(),
                change,
            })
        };
        out.differences.extend(named(judged.differences));
        out.noise.extend(named(judged.noise));
        out.pairs.push(pair.label);
    }
    Ok(out)
}
