//! `hangup run --html`: the page a run writes, read back beside the JSON
//! report of the same run, and opened in a real headless Chromium when
//! the machine has one (`chromium`; CI installs it).

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

#[test]
fn the_page_draws_every_captured_segment_and_opens_a_failing_case_in_a_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("run.html");
    let json = dir.path().join("run.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .arg("run")
        .arg(repo("suites/s02_read_timeout_mid_stream.toml"))
        .arg(repo("harness/tests/broken/state_within.toml"))
        .arg(repo("fixtures/suites/sweep_slow.toml"))
        .arg("--html")
        .arg(&html)
        .arg("--json")
        .arg(&json)
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("run hangup");
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
        let drawn = section(&page, &id(&case.name))
            .matches("<g class=\"segment")
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

    // In a real browser: a link to the failing case opens it, its ladder
    // and failure in place, with no error on the console.
    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium for this test"
        );
        eprintln!("no chromium here: the browser half of this test did not run");
        return;
    };
    let profile = dir.path().join("profile");
    let url = format!(
        "file://{}#case-state_within::server_never_releases",
        html.display()
    );
    let shown = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&shown.stdout);
    let console = String::from_utf8_lossy(&shown.stderr);
    let opened = section(&dom, "case-state_within::server_never_releases");
    assert!(
        opened.contains(" open=\"\""),
        "the case did not open: {opened:.2000}"
    );
    assert!(
        opened.contains("<svg class=\"ladder\"") && !opened.contains("<template>"),
        "its ladder was not put in place: {opened:.2000}"
    );
    assert!(opened.contains("expected server gone within 300 ms"));
    // A passing case's ladder waits in its template.
    let closed = section(
        &dom,
        "case-s02_read_timeout_mid_stream::client_times_out_then_server_write_fails",
    );
    assert!(closed.contains("<template>"), "{closed:.500}");
    let errors: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
