//! `hangup run --html`: the page a run writes, read back beside the JSON
//! report of the same run, then clicked through in a real headless
//! Chromium over WebDriver when the machine has one (`chromium` and
//! `chromedriver`; CI installs both, and a run under `CI` requires them).

#[path = "html/browser.rs"]
mod browser;

use std::path::Path;
use std::process::Command;

use hangup::record::EventKind;
use hangup::report::format::Report;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

/// The section of `page` for the case whose id is `id`: from its
/// `<details>` to the next one's.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<details class=\"case\" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &page[start..];
    let end = rest[1..]
        .find("<details class=\"case\"")
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// A case's id on the page, as the page writes it for names of letters,
/// digits, `_` and `:`.
fn id(name: &str) -> String {
    format!("case-{name}")
}

/// A run of `suites` (paths from the repository's root) with its page
/// and its JSON report, and its artifacts, in a temp folder: the folder,
/// the page's path, the JSON's and the run's output.
fn run_with_page(
    suites: &[&str],
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::process::Output,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("run.html");
    let json = dir.path().join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .args(suites.iter().map(|s| repo(s)))
        .arg("--html")
        .arg(&html)
        .arg("--json")
        .arg(&json)
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("run hangup");
    (dir, html, json, out)
}

#[test]
fn the_page_draws_every_captured_segment_and_opens_a_failing_case_in_a_browser() {
    // Every reference suite, one failing broken suite and a sweep: the
    // page the docs show (docs/images), and every ladder of suites/ held
    // to the JSON report's segments.
    let (dir, html, json, out) = run_with_page(&[
        "suites",
        "harness/tests/broken/state_within.toml",
        "fixtures/suites/sweep_slow.toml",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one broken case: {stdout}");
    let page = std::fs::read_to_string(&html).expect("the page");
    let bytes = std::fs::read(&json).expect("the JSON report");
    let report = Report::read(&bytes).expect("a report");

    // Every segment the JSON report holds is an arrow on its case's ladder.
    for case in report.last_round() {
        let segments = case
            .timeline
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Packet { .. }))
            .count();
        // Written as rows the page's script draws (report/html/ladder.rs):
        // a segment's row starts with `S`, `X` (lost) or `F` (folded).
        let drawn = section(&page, &id(&case.name))
            .lines()
            .filter(|line| {
                let mut row = line.split(' ');
                matches!(row.next(), Some("S" | "X" | "F"))
                    && row.next().is_some_and(|y| y.parse::<u32>().is_ok())
            })
            .count();
        assert_eq!(drawn, segments, "{}", case.name);
    }
    // The sweep's matrix links each cell to its case.
    assert!(
        page.contains("sweep sweep_slow::while_it_works"),
        "no matrix"
    );
    assert!(page.contains("href=\"#case-sweep_slow::while_it_works::request_sent::abort\""));
    // The failing case comes first in the table, with what failed.
    let failing = page
        .find("<td><a href=\"#case-state_within::server_never_releases\"")
        .expect("the failing case's row");
    let passing = page
        .find("<td><a href=\"#case-s02_read_timeout_mid_stream::")
        .expect("a passing case's row");
    assert!(failing < passing);
    assert!(page.len() < 2 << 20, "{} bytes", page.len());

    // In a real browser, driven as a person would: see `browser`.
    browser::check_the_page(&html, browser::Page::Run(&report), dir.path());
}

/// A sweep against two versions of its program (`compare`): the run's
/// page shows the two matrices cell by cell, and the cell that changed
/// opens to its differences and its two ladders side by side.
#[test]
fn the_page_of_two_versions_shows_the_changed_cell_side_by_side() {
    let (dir, html, json, out) =
        run_with_page(&["harness/tests/versions/sweep_stream_or_leaky.toml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "leaky fails a cell: {stdout}");
    let bytes = std::fs::read(&json).expect("the JSON report");
    let report = Report::read(&bytes).expect("a report");
    let differences = report.versions.len();
    assert!(differences > 0, "{stdout}");
    let page = std::fs::read_to_string(&html).expect("the page");
    assert!(
        page.contains("<section id=\"versions\">"),
        "no versions' section"
    );
    browser::check_the_page(&html, browser::Page::Versions { differences }, dir.path());
}
