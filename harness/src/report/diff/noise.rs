//! Judging two runs of a case: what changed between them, and, given more
//! runs of the base, what of that is noise.
//!
//! [`judged`] lists every change from the base run to the new one, each
//! with what it is a change of ([`Changed`]: the verdict, an observation's
//! value, or a call's duration). With more runs of the base, a change is
//! noise when the base's runs differ there too, or when the new run does
//! not differ there from every run of the base: Diffy's rule, which tells
//! what a version changed from what changes from run to run of any
//! version. Noise is set aside, not dropped: the report lists it apart,
//! and counts it. Observations one run made and the other did not are
//! folded last, in each list, so a case that stopped early is a line and
//! a count.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{ComparedCase, Key, Seen, Took};
use crate::report::difference::{Change, Observed, Run};
use crate::suite::Tolerance;

/// What changed in one case, and what of it was set aside as noise.
#[derive(Debug, Default)]
pub(super) struct Judged {
    /// The changes the new run made.
    pub(super) differences: Vec<Change>,
    /// The changes the base's own runs make too.
    pub(super) noise: Vec<Change>,
}

/// What a change is a change of: two runs' changes are the same change
/// when these are equal, whatever the values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Changed {
    /// The case's verdict.
    Verdict,
    /// An observation's value, or whether it was made at all.
    Value(Key),
    /// A call's duration.
    Duration(Key),
}

/// The changes from `base` to `new`, with noise set aside as `again`,
/// more runs of the base, show it (none: nothing is noise).
pub(super) fn judged(
    base: &ComparedCase,
    again: &[&ComparedCase],
    new: &ComparedCase,
    tolerance: Tolerance,
) -> Judged {
    let found = changes(base, new, tolerance);
    if again.is_empty() {
        return Judged {
            differences: folded(found.into_iter().map(|(_, c)| c).collect()),
            noise: Vec::new(),
        };
    }
    let of = |a: &ComparedCase, b: &ComparedCase| -> BTreeSet<Changed> {
        changes(a, b, tolerance)
            .into_iter()
            .map(|(what, _)| what)
            .collect()
    };
    let within_base: BTreeSet<Changed> = again.iter().flat_map(|other| of(base, other)).collect();
    let from_each: Vec<BTreeSet<Changed>> = again.iter().map(|other| of(other, new)).collect();
    let (noise, differences): (Vec<_>, Vec<_>) = found.into_iter().partition(|(what, _)| {
        within_base.contains(what) || from_each.iter().any(|changes| !changes.contains(what))
    });
    let changes = |list: Vec<(Changed, Change)>| folded(list.into_iter().map(|(_, c)| c).collect());
    Judged {
        differences: changes(differences),
        noise: changes(noise),
    }
}

/// Every change from `a` to `b`, unfolded, each with what it is of.
fn changes(a: &ComparedCase, b: &ComparedCase, tolerance: Tolerance) -> Vec<(Changed, Change)> {
    let mut out = Vec::new();
    if a.verdict != b.verdict {
        out.push((
            Changed::Verdict,
            Change::Verdict {
                base: a.verdict.clone(),
                new: b.verdict.clone(),
            },
        ));
    }
    // What both runs could see, only: packets when both captured (and
    // showed all), traced calls when both traced.
    let both = |only_if_both: fn(&Observed) -> bool| {
        let has =
            |case: &ComparedCase| case.observations.iter().any(|(k, _)| only_if_both(&k.0.of));
        has(a) && has(b)
    };
    let (wire_in_both, traced_in_both) = (both(is_wire), both(is_traced));
    let compared = |(key, _): &&(Key, Seen)| {
        (wire_in_both || !is_wire(&key.0.of)) && (traced_in_both || !is_traced(&key.0.of))
    };
    let obs_a: Vec<&(Key, Seen)> = a.observations.iter().filter(compared).collect();
    let obs_b: Vec<&(Key, Seen)> = b.observations.iter().filter(compared).collect();
    let in_b: BTreeMap<&Key, &Seen> = obs_b.iter().map(|(k, v)| (k, v)).collect();
    let in_a: BTreeMap<&Key, &Seen> = obs_a.iter().map(|(k, v)| (k, v)).collect();
    let allowed = Allowance::of(a, b, tolerance);
    for (key, x) in obs_a.iter().copied() {
        match in_b.get(key) {
            Some(y) if x.value != y.value => out.push((
                Changed::Value(key.clone()),
                Change::Observed {
                    observation: key.0.clone(),
                    base: Some(x.value.clone()),
                    new: Some(y.value.clone()),
                },
            )),
            Some(y) => {
                if let (Some(ta), Some(tb)) = (x.took, y.took) {
                    if allowed.exceeded_by(ta, tb) {
                        out.push((
                            Changed::Duration(key.clone()),
                            Change::Took {
                                observation: key.0.clone(),
                                base: ta.took,
                                new: tb.took,
                            },
                        ));
                    }
                }
            }
            None => out.push((
                Changed::Value(key.clone()),
                Change::Observed {
                    observation: key.0.clone(),
                    base: Some(x.value.clone()),
                    new: None,
                },
            )),
        }
    }
    for (key, y) in obs_b.iter().copied() {
        if !in_a.contains_key(key) {
            out.push((
                Changed::Value(key.clone()),
                Change::Observed {
                    observation: key.0.clone(),
                    base: None,
                    new: Some(y.value.clone()),
                },
            ));
        }
    }
    out
}

/// What two runs of a case allow a call's duration to move: the case's
/// tolerance (the larger of the two runs' records, at least the one the
/// diff is given) for the longer duration, and on top what each run
/// measured of the machine: hangup's lateness, and how busy the program
/// was while the scripts ran.
struct Allowance {
    tolerance: Tolerance,
    lateness: Duration,
}

impl Allowance {
    fn of(a: &ComparedCase, b: &ComparedCase, at_least: Tolerance) -> Allowance {
        let tolerance = [a.tolerance, b.tolerance]
            .into_iter()
            .flatten()
            .fold(at_least, |t, recorded| {
                t.widened(Some(recorded.floor), Some(recorded.percent))
            });
        Allowance {
            tolerance,
            lateness: a
                .lateness
                .max(b.lateness)
                .saturating_add(a.program_busy.max(b.program_busy)),
        }
    }

    /// Whether `a` and `b` differ by more than this allows: the slack for
    /// the longer, the case-wide allowance, and the more the scripts'
    /// threads were busy during either call (either run may have been the
    /// slow one).
    fn exceeded_by(&self, a: Took, b: Took) -> bool {
        let allowed = self
            .tolerance
            .slack(a.took.max(b.took))
            .saturating_add(self.lateness)
            .saturating_add(a.busy.max(b.busy));
        a.took.abs_diff(b.took) > allowed
    }
}

/// How many observations seen in one run only are listed one by one: a
/// case that stopped early misses everything after, which is one line
/// and a count.
const FOLD_AFTER: usize = 3;

/// How many lines printed in one run only are listed one by one: a new
/// error and its stack trace, named line by line as printed.
const FOLD_PRINTED_AFTER: usize = 20;

/// `changes` with the observations one run made and the other did not
/// named one by one when few, else the first and a count, after the
/// others. What a program printed is folded apart from the rest, and
/// later, so a new stack trace does not hide a call that went missing,
/// and is named frame by frame.
fn folded(changes: Vec<Change>) -> Vec<Change> {
    let unseen = |c: &Change, missing_in: Run| {
        matches!(
            (c, missing_in),
            (Change::Observed { new: None, .. }, Run::New)
                | (Change::Observed { base: None, .. }, Run::Base)
        )
    };
    let (mut out, mut rest): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| !unseen(c, Run::New) && !unseen(c, Run::Base));
    for missing_in in [Run::New, Run::Base] {
        let group: Vec<Change>;
        (group, rest) = rest.into_iter().partition(|c| unseen(c, missing_in));
        let (printed, others): (Vec<Change>, Vec<Change>) = group.into_iter().partition(|c| {
            matches!(c, Change::Observed { observation, .. } if matches!(observation.of, Observed::Printed { .. }))
        });
        for (group, fold_after) in [(others, FOLD_AFTER), (printed, FOLD_PRINTED_AFTER)] {
            if group.len() <= fold_after {
                out.extend(group);
            } else {
                let count = group.len() - 1;
                out.extend(group.into_iter().next());
                out.push(Change::More { count, missing_in });
            }
        }
    }
    out
}

fn is_wire(of: &Observed) -> bool {
    matches!(of, Observed::SentFlag { .. } | Observed::FirstFin)
}

fn is_traced(of: &Observed) -> bool {
    matches!(of, Observed::TracedErrno { .. } | Observed::Traced)
}
