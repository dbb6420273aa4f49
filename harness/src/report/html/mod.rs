//! One self-contained HTML page per run (`hangup run --html FILE`): the
//! run's summary, its cases in a table (filtered, sorted, failing first),
//! each sweep's matrix, and per case its failure and its ladder as SVG.
//!
//! Built from the case reports only (the typed record), like every other
//! writer. Nothing is fetched: the CSS and the script are inline, and the
//! only links are anchors in the page and the cases' artifact folders.
//! Every string from outside (names, steps, a program's lines, paths) goes
//! through maud's escaping, so none can change the page's structure.
//!
//! A page for many cases stays light: each case's ladder is inside a
//! `<template>`, which the browser parses but does not lay out, and the
//! script puts it in place when the case is opened (a click, or a link to
//! `#case-...`). The ladder is laid out here but written as rows, one
//! line each (see `ladder`), that the script draws as SVG then: for a
//! tiny case a fifth of the SVG's bytes, and the page writer's time
//! halved (bench/html-cost).

mod diff;
mod ladder;
mod legend;

pub use diff::{ChangedCase, DiffView, diff_page};

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::format::{CaseReport, CaseStatus, Failure};
use super::matrix::{Matrix, Verdict};
use crate::model::Escaped;
use crate::verdict::millis;

/// The page's style: inline, no fonts or images fetched.
const STYLE: &str = include_str!("page.css");
/// The page's script: filters, sorting, and ladders put in place when a
/// case opens. Plain JavaScript, no library.
const SCRIPT: &str = include_str!("page.js");

/// What the page says about the run itself, beside its cases.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunInfo {
    /// The command line, as run.
    pub command: Vec<String>,
    /// The run's wall time.
    pub took: Duration,
    /// Which round the cases are of, and how many there were (`--repeat`).
    pub round: (usize, usize),
    /// The kernel's release (`/proc/sys/kernel/osrelease`).
    pub kernel: Option<String>,
    /// The machine's load averages when the run ended (`/proc/loadavg`).
    pub load: Option<String>,
}

impl RunInfo {
    /// The run's facts this machine tells: the kernel's release and its
    /// load, read now.
    pub fn of_this_machine(command: Vec<String>, took: Duration, round: (usize, usize)) -> RunInfo {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        };
        RunInfo {
            command,
            took,
            round,
            kernel: read("/proc/sys/kernel/osrelease"),
            load: read("/proc/loadavg"),
        }
    }
}

/// The page for `cases` (one round's), their sweeps' `matrices`, and
/// the differences between a program's two versions when the run
/// compared them (`versions`); the artifact links are written relative to `page`'s folder when the
/// artifacts sit below it.
pub fn page(
    cases: &[CaseReport],
    matrices: &[Matrix],
    versions: Option<&DiffView<'_>>,
    run: &RunInfo,
    page: &Path,
) -> String {
    // Canonical once for the page, for the artifact links (None where it
    // cannot be: then they are `file:` URLs).
    let here = page.parent().and_then(|dir| dir.canonicalize().ok());
    let count = |f: fn(&CaseReport) -> bool| cases.iter().filter(|c| f(c)).count();
    let passed = count(CaseReport::passed);
    let skipped = count(CaseReport::skipped);
    let errors = count(|c| c.failure().is_some_and(|f| !f.kind.is_failure()));
    let failed = count(|c| c.failure().is_some_and(|f| f.kind.is_failure()));
    // Failing first, then file order.
    let mut order: Vec<&CaseReport> = cases.iter().collect();
    order.sort_by_key(|c| (c.failure().is_none(), c.skipped()));
    let mut suites: Vec<&str> = cases.iter().map(|c| c.suite.as_str()).collect();
    suites.dedup();
    suites.sort_unstable();
    suites.dedup();
    let title = format!("hangup: {passed} passed, {failed} failed, {errors} errors");
    let content = html! {
                header {
                    h1 { "hangup run" }
                    p.summary {
                        span.count.passed { (passed) " passed" } ", "
                        span.count.failed { (failed) " failed" } ", "
                        span.count.error { (errors) " errors" } ", "
                        span.count.skipped { (skipped) " skipped" }
                    }
                    dl.run {
                        dt { "took" } dd { (millis(run.took)) }
                        dt { "hangup" } dd { (env!("CARGO_PKG_VERSION")) }
                        @if let Some(kernel) = &run.kernel { dt { "kernel" } dd { (Escaped(kernel)) } }
                        @if let Some(load) = &run.load { dt { "load average" } dd { (Escaped(load)) } }
                        @if run.round.1 > 1 { dt { "round" } dd { (run.round.0) " of " (run.round.1) " (the last one's cases)" } }
                        dt { "command" } dd { code { (Escaped(&run.command.join(" "))) } }
                    }
                }
                main {
                    @if !matrices.is_empty() {
                        section #sweeps {
                            h2 { "Sweeps" }
                            @for matrix in matrices { (matrix_table(matrix)) }
                        }
                    }
                    @if let Some(view) = versions {
                        section #versions {
                            h2 { "Versions compared" }
                            (diff::summary(view))
                            (diff::sections(view, here.as_deref()))
                        }
                    }
                    section #cases {
                        h2 { "Cases" }
                        div.filters role="search" {
                            label { "Status " select #filter-status {
                                option value="" { "all" }
                                option value="failed" { "failed" }
                                option value="error" { "error" }
                                option value="passed" { "passed" }
                                option value="skipped" { "skipped" }
                            } }
                            label { "Suite " select #filter-suite {
                                option value="" { "all" }
                                @for suite in &suites { option value=(Escaped(suite)) { (Escaped(suite)) } }
                            } }
                            label { "Text " input #filter-text type="search" placeholder="part of a name"; }
                            span #shown aria-live="polite" {}
                        }
                        table #case-table {
                            thead { tr {
                                th { button type="button" data-sort="name" { "case" } }
                                th { "status" }
                                th { button type="button" data-sort="duration" { "duration" } }
                                th { "what failed" }
                            } }
                            tbody {
                                @for case in &order {
                                    tr data-status=(status_word(case)) data-suite=(Escaped(&case.suite)) data-name=(Escaped(&case.name))
                                        data-duration=(case.duration.as_secs_f64() * 1000.0) {
                                        td { a href={"#" (anchor(&case.name))} { (Escaped(&case.name)) } }
                                        td.status.(status_word(case)) { (status_word(case)) }
                                        td.num { (millis(case.duration)) }
                                        td { @if let Some(f) = case.failure() { (Escaped(&short_line(&f.summary))) } }
                                    }
                                }
                            }
                        }
                    }
                    section #details {
                        h2 { "Each case" }
                        (legend::legend())
                        @for case in &order { (case_details(case, here.as_deref())) }
                    }
                }
    };
    document(&title, content)
}

/// A whole page: `title`, the style, the arrowhead every ladder uses,
/// `content` (its header and main), the script.
fn document(title: &str, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                // The arrowhead every ladder's segments end with, defined
                // once for the page.
                svg.defs width="0" height="0" aria-hidden="true" {
                    defs {
                        marker #arrowhead viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                            path d="M 0 0 L 10 5 L 0 10 z" {}
                        }
                    }
                }
                (content)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// A case's `status` word: `passed`, `failed` (an expectation did not
/// hold), `error` (it could not be judged) or `skipped`.
fn status_word(case: &CaseReport) -> &'static str {
    match &case.status {
        CaseStatus::Passed => "passed",
        CaseStatus::Failed(f) if f.kind.is_failure() => "failed",
        CaseStatus::Failed(_) => "error",
        _ => "skipped",
    }
}

/// The id of a case's section: `case-` and its test name, each character
/// but letters, digits, `_`, `:`, `.` and `-` written as its code between
/// tildes (`~20~` for a space), so that distinct names keep distinct ids
/// and an id is one a URL carries as it is.
fn anchor(name: &str) -> String {
    let mut out = String::from("case-");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-') {
            out.push(c);
        } else {
            out.push_str(&format!("~{:x}~", u32::from(c)));
        }
    }
    out
}

/// A failure's summary's first line, cut to 160 characters.
fn short_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 160 {
        let mut cut: String = line.chars().take(159).collect();
        cut.push('…');
        cut
    } else {
        line.to_string()
    }
}

/// One case: a `<details>` whose summary is its name and verdict, its
/// failure, links to its artifacts, and its ladder (in a template until
/// the case opens).
fn case_details(case: &CaseReport, here: Option<&Path>) -> Markup {
    let failure = case.failure();
    html! {
        details.case id=(anchor(&case.name)) data-status=(status_word(case)) {
            summary {
                span.status.(status_word(case)) { (status_word(case)) } " "
                (Escaped(&case.name)) " "
                span.muted { "(" (millis(case.duration)) ", " (Escaped(&case.location)) ")" }
            }
            template {
                @if let Some(failure) = failure { (failure_box(failure)) }
                @if let CaseStatus::Ignored { reason } = &case.status { p { "Skipped: " (Escaped(reason)) } }
                (artifacts(case, here))
                (ladder::ladder(&case.timeline, ladder::Marks { failed: failure.and_then(|f| f.step.as_ref()), mismatch: failure.and_then(|f| f.mismatch.as_ref()), changed: &[] }))
            }
        }
    }
}

/// Links to a case's artifacts, when it kept them.
fn artifacts(case: &CaseReport, here: Option<&Path>) -> Markup {
    html! {
        @if let Some(dir) = &case.artifacts {
            // The folder made canonical once, its files named in it.
            @let canonical = here.and_then(|_| dir.canonicalize().ok());
            @let canonical = canonical.as_deref();
            p.artifacts {
                "Artifacts: "
                @for file in ["capture.pcap", "program.log", "timeline.txt", "case.log"] {
                    a href=(link(&dir.join(file), canonical.map(|d| d.join(file)).as_deref(), here)) { (file) } " "
                }
                a href=(link(dir, canonical, here)) { "folder" }
            }
        }
    }
}

/// A failure: what failed, where, expected against observed, and the
/// program's last lines.
fn failure_box(failure: &Failure) -> Markup {
    html! {
        div.failure role="note" {
            p { strong { (failure.kind.name()) ": " } (Escaped(&failure.summary)) }
            @if let Some(step) = &failure.step {
                p { "Step: " code { (Escaped(&step.source)) } " at " (Escaped(&step.location)) }
            }
            @if let Some(m) = &failure.mismatch {
                dl.mismatch {
                    dt { "expected" } dd { (Escaped(&m.expected)) }
                    dt { "observed" } dd { (Escaped(&m.observed)) }
                }
            }
            @if !failure.output.is_empty() {
                pre.output { @for line in &failure.output { (Escaped(&line.line)) "\n" } }
            }
        }
    }
}

/// A sweep's matrix: a row per phase, a column per kind, each cell its
/// verdict as a word (coloured too), its evidence on hover, a link to its
/// case.
fn matrix_table(matrix: &Matrix) -> Markup {
    let failed = matrix
        .cells
        .iter()
        .filter(|c| c.verdict == Verdict::Failed)
        .count();
    html! {
        table.matrix {
            caption { "sweep " (matrix.title()) ": " (matrix.cells.len()) " cells, " (failed) " failed" }
            thead { tr { th { "phase" } @for kind in &matrix.kinds { th scope="col" { (kind.name()) } } } }
            tbody {
                @for phase in &matrix.phases {
                    tr {
                        th scope="row" { (phase.name()) }
                        @for kind in &matrix.kinds {
                            @if let Some(cell) = matrix.cell(phase, *kind) {
                                @let evidence = cell.evidence.line();
                                td.cell.(cell.verdict.word()) {
                                    a href={"#" (anchor(&cell.case))} title=(evidence) { (cell.verdict.word()) }
                                }
                            } @else {
                                td.cell.none title="does not apply" { "-" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `path` as a link from the page's folder `here` (canonical): relative
/// when its `canonical` form is below it, else a `file:` URL of `path`.
fn link(path: &Path, canonical: Option<&Path>, here: Option<&Path>) -> String {
    let relative = here.and_then(|here| canonical.unwrap_or(path).strip_prefix(here).ok());
    let text = match relative {
        Some(rel) => rel.to_string_lossy(),
        None => format!("file://{}", path.to_string_lossy()).into(),
    };
    // Characters a URL must not hold raw.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            '%' => out.push_str("%25"),
            c if c.is_control() => {
                let _ = write!(out, "%{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
