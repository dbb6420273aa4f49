//! The diff view: two runs of the same cases (`hangup diff --html`), or a
//! program's two versions in one run (`compare`). Each case that changed
//! lists its differences (what, the base's, the new's; accepted ones
//! marked) above its two ladders side by side, the steps whose
//! observations changed highlighted in both (`.changed`); each sweep is a
//! matrix cell by cell (`ok->FAILED`), each changed cell a link to its
//! case. The noise set aside is listed apart.
//!
//! Built from the typed comparison ([`Difference`], [`SweepChange`]) and
//! the two runs' case reports, like the run page.

use std::collections::BTreeSet;
use std::path::Path;

use maud::{Markup, html};

use super::{anchor, artifacts, document, ladder, status_word};
use crate::model::{Escaped, Side};
use crate::record::StepId;
use crate::report::CaseReport;
use crate::report::diff::Difference;
use crate::report::matrix::{CellChange, SweepChange, cell_said};

/// What a diff page shows.
#[derive(Debug)]
#[non_exhaustive]
pub struct DiffView<'a> {
    /// What the base is: a report's path, or a version's name.
    pub base: String,
    /// The same for the new run.
    pub new: String,
    /// The base's other runs, compared for noise.
    pub again: Vec<String>,
    /// Every difference found.
    pub differences: &'a [Difference],
    /// The differences set aside as noise.
    pub noise: &'a [Difference],
    /// The differences to accept, as an accept file lists them.
    pub accepted: &'a BTreeSet<String>,
    /// Each compared case with its report in each run, in order.
    pub cases: Vec<ChangedCase<'a>>,
    /// Each sweep in the two runs.
    pub sweeps: Vec<SweepChange<'a>>,
}

/// One compared case: the name its differences carry, and its report in
/// each run (none: not in that run, or not kept).
#[derive(Debug, Clone, Copy)]
pub struct ChangedCase<'a> {
    /// `<suite>::<case>`, or for two versions the pair's label.
    pub name: &'a str,
    /// Its report in the base run.
    pub base: Option<&'a CaseReport>,
    /// Its report in the new run.
    pub new: Option<&'a CaseReport>,
}

impl<'a> DiffView<'a> {
    /// The view of `differences` (and `noise`) between `base` and `new`,
    /// each case's two reports found by name among `base_cases` and
    /// `new_cases` (as `hangup diff` pairs two runs).
    #[allow(clippy::too_many_arguments)]
    pub fn of_two_runs(
        (base, new): (String, String),
        again: Vec<String>,
        differences: &'a [Difference],
        noise: &'a [Difference],
        accepted: &'a BTreeSet<String>,
        (base_cases, new_cases): (&'a [CaseReport], &'a [CaseReport]),
        sweeps: Vec<SweepChange<'a>>,
    ) -> DiffView<'a> {
        let mut names: Vec<&str> = Vec::new();
        for d in differences {
            if !names.contains(&d.case.as_str()) {
                names.push(&d.case);
            }
        }
        let cases = names
            .into_iter()
            .map(|name| ChangedCase {
                name,
                base: base_cases.iter().find(|c| c.name == name),
                new: new_cases.iter().find(|c| c.name == name),
            })
            .collect();
        DiffView {
            base,
            new,
            again,
            differences,
            noise,
            accepted,
            cases,
            sweeps,
        }
    }

    /// The view of a program's two versions in one run: `cases` are
    /// named by their pairs' labels, and hold the reports of the base's
    /// first run and the new version's.
    pub fn of_versions(
        differences: &'a [Difference],
        noise: &'a [Difference],
        accepted: &'a BTreeSet<String>,
        cases: Vec<ChangedCase<'a>>,
        sweeps: Vec<SweepChange<'a>>,
    ) -> DiffView<'a> {
        DiffView {
            base: "the version compared against".into(),
            new: "the new version".into(),
            again: Vec::new(),
            differences,
            noise,
            accepted,
            cases,
            sweeps,
        }
    }

    /// How many differences the accept list does not hold.
    fn open(&self) -> usize {
        self.differences
            .iter()
            .filter(|d| !self.accepted.contains(&d.to_string()))
            .count()
    }
}

/// The page of `view` (`hangup diff --html`); artifact links relative to
/// `page`'s folder when they sit below it.
pub fn diff_page(view: &DiffView<'_>, command: &[String], page: &Path) -> String {
    // Canonical once for the page, for the artifact links (None where it
    // cannot be: then they are `file:` URLs).
    let here = page.parent().and_then(|dir| dir.canonicalize().ok());
    let open = view.open();
    let title = format!(
        "hangup diff: {} differences, {} not accepted",
        view.differences.len(),
        open
    );
    let content = html! {
        header {
            h1 { "hangup diff" }
            (summary(view))
            dl.run {
                dt { "base" } dd { code { (Escaped(&view.base)) } }
                @for again in &view.again { dt { "base again" } dd { code { (Escaped(again)) } } }
                dt { "new" } dd { code { (Escaped(&view.new)) } }
                dt { "hangup" } dd { (env!("CARGO_PKG_VERSION")) }
                dt { "command" } dd { code { (Escaped(&command.join(" "))) } }
            }
        }
        main { (sections(view, here.as_deref())) }
    };
    document(&title, content)
}

/// `N differences in K cases, A accepted, S set aside as noise`.
pub(super) fn summary(view: &DiffView<'_>) -> Markup {
    let open = view.open();
    let changed = view.cases.len();
    html! {
        p.summary {
            span.count.failed[open > 0] { (view.differences.len()) " differences" }
            " in " (changed) " cases, "
            (view.differences.len() - open) " accepted, "
            (view.noise.len()) " set aside as noise"
        }
    }
}

/// The sweeps cell by cell, each changed case side by side, the noise:
/// the diff page's body, and the versions' section of a run page.
pub(super) fn sections(view: &DiffView<'_>, here: Option<&Path>) -> Markup {
    html! {
        @if !view.sweeps.is_empty() {
            section #sweep-changes {
                h2 { "Sweeps, cell by cell" }
                @for sweep in &view.sweeps { (sweep_table(sweep, view)) }
            }
        }
        section #changed {
            h2 { "Changed cases" }
            @if view.cases.is_empty() { p { "No case changed." } }
            @for case in &view.cases { (changed_case(case, view, here)) }
        }
        @if !view.noise.is_empty() {
            section #noise {
                h2 { "Set aside as noise" }
                p.muted { "The base's own runs differ there too, or the new run matches one of them." }
                (differences_table(view.noise, view.accepted))
            }
        }
    }
}

/// One sweep in the two runs: each cell's word (`ok`, `ok->FAILED`,
/// `ok*`), the changed ones marked in words and colour, what each run's
/// program did on hover, and a link to the case where it changed.
fn sweep_table(sweep: &SweepChange<'_>, view: &DiffView<'_>) -> Markup {
    let changed = sweep.changed();
    let verdicts = changed
        .iter()
        .filter(|(_, _, c)| *c == CellChange::Verdict)
        .count();
    // A cell's case as the diff names it: by its new report's name, or
    // (two versions) the pair whose new case it is.
    let link = |cell: &str| {
        view.cases
            .iter()
            .find(|c| c.name == cell || c.new.is_some_and(|n| n.name == cell))
            .map(|c| anchor(c.name))
    };
    html! {
        table.matrix.changes {
            caption {
                "sweep " (sweep.title()) ": " (verdicts) " cell(s) changed verdict, "
                (changed.len() - verdicts) " only what the program did (*)"
            }
            thead { tr { th { "phase" } @for kind in &sweep.kinds { th scope="col" { (kind.name()) } } } }
            tbody {
                @for phase in &sweep.phases {
                    tr {
                        th scope="row" { (phase.name()) }
                        @for kind in &sweep.kinds {
                            @let (word, change) = sweep.cell(phase, *kind);
                            @let (before, after) = sweep.cells(phase, *kind);
                            @let class = match change {
                                CellChange::None => "same",
                                CellChange::Evidence => "evidence",
                                CellChange::Verdict => "verdict",
                            };
                            @let verdict = after.or(before).map_or("none", |c| c.verdict.word());
                            @let tip = format!("base: {}\nnew: {}", cell_said(before), cell_said(after));
                            @let target = after.or(before).and_then(|c| link(&c.case));
                            td.cell.(verdict).(class) title=(tip) {
                                @match target {
                                    Some(id) if change != CellChange::None => a href={"#" (id)} { (word) },
                                    _ => (word),
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A changed case: its differences, then its two ladders side by side
/// (in a template until it opens, as on the run page).
fn changed_case(case: &ChangedCase<'_>, view: &DiffView<'_>, here: Option<&Path>) -> Markup {
    let differences: Vec<Difference> = view
        .differences
        .iter()
        .filter(|d| d.case == case.name)
        .cloned()
        .collect();
    let steps: Vec<(Side, StepId)> = differences.iter().filter_map(Difference::step).collect();
    html! {
        details.case id=(anchor(case.name)) data-status="changed" {
            summary {
                span.status.changed { "changed" } " "
                (Escaped(case.name)) " "
                span.muted { "(" (differences.len()) " differences)" }
            }
            template {
                (differences_table(&differences, view.accepted))
                div.versions {
                    (one_side("base", &view.base, case.base, &steps, here))
                    (one_side("new", &view.new, case.new, &steps, here))
                }
            }
        }
    }
}

/// One run's ladder of a changed case, its changed steps highlighted.
fn one_side(
    which: &str,
    what: &str,
    case: Option<&CaseReport>,
    steps: &[(Side, StepId)],
    here: Option<&Path>,
) -> Markup {
    html! {
        div.version {
            h3 { (which) ": " span.muted { (Escaped(what)) } }
            @match case {
                Some(case) => {
                    p { span.status.(status_word(case)) { (status_word(case)) } " " (Escaped(&case.name)) }
                    (artifacts(case, here))
                    (ladder::ladder(&case.timeline, ladder::Marks {
                        failed: case.failure().and_then(|f| f.step.as_ref()),
                        mismatch: case.failure().and_then(|f| f.mismatch.as_ref()),
                        changed: steps,
                    }))
                }
                None => p.muted { "Not in this run's report." },
            }
        }
    }
}

/// Differences as a table: what, the base's, the new's, and whether the
/// accept list holds it.
fn differences_table(differences: &[Difference], accepted: &BTreeSet<String>) -> Markup {
    html! {
        table.differences {
            thead { tr { th { "what" } th { "base" } th { "new" } th { "accepted" } } }
            tbody {
                @for d in differences {
                    @let [what, base, new] = d.parts();
                    @let ok = accepted.contains(&d.to_string());
                    tr.accepted[ok] {
                        td { (Escaped(&what)) }
                        td { code { (Escaped(&base)) } }
                        td { code { (Escaped(&new)) } }
                        td { @if ok { "accepted" } @else { "no" } }
                    }
                }
            }
        }
    }
}
