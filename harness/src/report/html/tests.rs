//! The page's structure, from a case report: what a browser is given.
//! (tests/html.rs opens pages in a real browser.)

use std::path::Path;

use super::*;
use crate::record::EventKind;
use crate::report::snapshot_tests::case;

fn page_of(cases: &[CaseReport]) -> String {
    page(
        cases,
        &[],
        None,
        &RunInfo::default(),
        Path::new("/tmp/page.html"),
    )
}

/// The rows of each ladder on `html` (see `ladder.rs`): per ladder, each
/// row's line and its texts.
fn ladders(html: &str) -> Vec<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<div class=\"ladder-box rows\">") {
        let body = &rest[start..];
        let body = &body[body.find('>').expect("tag") + 1..];
        let end = body.find("</div>").expect("the ladder's end");
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        for line in body[..end].lines() {
            match line.strip_prefix('|') {
                Some(text) => rows.last_mut().expect("a row").1.push(text.into()),
                None => rows.push((line.into(), Vec::new())),
            }
        }
        out.push(rows);
        rest = &body[end..];
    }
    out
}

/// The rows of `html`'s ladders whose line starts with one of `kinds`.
fn rows_of(html: &str, kinds: &[char]) -> Vec<(String, Vec<String>)> {
    ladders(html)
        .into_iter()
        .flatten()
        .filter(|(row, _)| row.starts_with(kinds))
        .collect()
}

#[test]
fn every_captured_segment_is_an_arrow_in_its_case_ladder() {
    let case = case();
    let segments = case
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Packet { .. }))
        .count();
    assert!(segments > 0);
    let html = page_of(std::slice::from_ref(&case));
    assert_eq!(rows_of(&html, &['S', 'X', 'F']).len(), segments, "{html}");
    // A lost one ends at an X naming its fault.
    let lost = rows_of(&html, &['X']);
    assert!(!lost.is_empty(), "{html}");
    assert!(lost.iter().all(|(_, texts)| texts.len() == 2), "{lost:?}");
}

#[test]
fn a_ladder_s_texts_are_escaped_and_never_read_as_rows() {
    let mut case = case();
    let mut changed = false;
    for event in &mut case.timeline.events {
        if let EventKind::Output { line, .. } = &mut event.kind {
            *line = "</div><b>x</b>\nT 1 2 end event.call 3 &amp;".into();
            changed = true;
        }
    }
    assert!(changed, "the case has a program line to change");
    let html = page_of(&[case]);
    assert!(!html.contains("<b>x"), "{html}");
    let texts: Vec<String> = rows_of(&html, &['T'])
        .into_iter()
        .flat_map(|(_, texts)| texts)
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t
                .contains(r"&lt;/div&gt;&lt;b&gt;x&lt;/b&gt;\nT 1 2 end event.call 3 &amp;amp;")),
        "{texts:?}"
    );
    for ladder in ladders(&html) {
        assert!(ladder[0].0.starts_with("L "), "{ladder:?}");
        for (row, _) in &ladder {
            assert!(
                row.starts_with(['L', 'C', 'H', 'G', 'N', 'S', 'X', 'F', 'T']),
                "{row}"
            );
        }
    }
}

#[test]
fn text_from_outside_never_changes_the_page() {
    let mut case = case();
    case.name = "s</script><b>x</b>\n\u{1b}[2J::c\"'".into();
    case.suite = "s</script>".into();
    let html = page_of(&[case]);
    assert!(!html.contains("<b>x"), "{html}");
    assert!(!html.contains("</script><b>"), "{html}");
    assert!(!html.contains('\u{1b}'), "an ESC reached the page");
    // One script element, the page's own.
    assert_eq!(html.matches("<script").count(), 1);
    assert_eq!(html.matches("</script>").count(), 1);
}

#[test]
fn distinct_names_keep_distinct_ids() {
    let names = ["a b", "a~20~b", "a_b", "a.b", "a::b", "a/b", "ü"];
    let ids: std::collections::BTreeSet<String> = names.iter().map(|n| anchor(n)).collect();
    assert_eq!(ids.len(), names.len(), "{ids:?}");
    for id in &ids {
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:.-~".contains(c)),
            "{id}"
        );
    }
}

#[test]
fn failing_cases_come_first_and_the_failure_is_shown() {
    let failed = case();
    let mut passed = case();
    passed.name = "s02::passes".into();
    passed.status = CaseStatus::Passed;
    let html = page_of(&[passed, failed]);
    let first = html
        .find("s02::client_times_out")
        .expect("the failing case");
    let second = html.find("s02::passes").expect("the passing case");
    assert!(first < second);
    assert!(html.contains("<dt>expected</dt>"), "{html}");
    assert!(html.contains("1 failed"), "{html}");
    // The failing step's calls are marked in the ladder.
    assert!(
        rows_of(&html, &['T'])
            .iter()
            .any(|(row, _)| row.contains(".failing")),
        "{html}"
    );
}

#[test]
fn a_diff_page_shows_each_changed_case_s_differences_and_both_ladders() {
    let base = case();
    let mut new = case();
    new.status = CaseStatus::Passed;
    let differences = crate::report::diff::diff(
        std::slice::from_ref(&base),
        std::slice::from_ref(&new),
        crate::suite::Tolerance::DEFAULT,
    )
    .expect("compared");
    assert!(!differences.is_empty());
    let accepted = std::collections::BTreeSet::from([differences[0].to_string()]);
    let (bases, news) = (vec![base], vec![new]);
    let view = DiffView::of_two_runs(
        ("base</b>.json".into(), "new.json".into()),
        Vec::new(),
        &differences,
        &[],
        &accepted,
        (&bases, &news),
        Vec::new(),
    );
    let html = diff_page(
        &view,
        &["hangup".into(), "diff".into()],
        Path::new("/tmp/d.html"),
    );
    // The case once, with a row per difference, the accepted one said so.
    assert_eq!(html.matches("<details class=\"case\"").count(), 1, "{html}");
    assert!(html.contains(&format!("id=\"{}\"", anchor(&bases[0].name))));
    assert_eq!(html.matches("<tr class=\"accepted\"").count(), 1, "{html}");
    assert_eq!(
        html.matches("<tbody>").count(),
        1,
        "one table of differences: {html}"
    );
    // Both runs' ladders, side by side.
    assert_eq!(html.matches("<div class=\"version\"").count(), 2);
    assert_eq!(ladders(&html).len(), 2);
    assert!(!html.contains("base</b>"), "a path changed the page");
    assert!(html.contains(&format!("{} differences", differences.len())));
}

#[test]
fn sides_on_two_hosts_are_named_by_their_hosts() {
    let one = page_of(&[case()]);
    assert!(rows_of(&one, &['H']).is_empty(), "one host named as two");
    let mut two = case();
    for event in &mut two.timeline.events {
        if let EventKind::Packet { from, to, .. } = &mut event.kind {
            let client = event.side == Some(crate::model::Side::Client);
            let (a, b): (std::net::IpAddr, std::net::IpAddr) = (
                "198.18.0.1".parse().expect("ip"),
                "198.18.0.2".parse().expect("ip"),
            );
            from.set_ip(if client { a } else { b });
            to.set_ip(if client { b } else { a });
        }
    }
    let html = page_of(&[two]);
    let hosts: Vec<String> = rows_of(&html, &['H'])
        .into_iter()
        .flat_map(|(_, t)| t)
        .collect();
    assert!(hosts.iter().any(|h| h == "host 198.18.0.1"), "{hosts:?}");
    assert!(hosts.iter().any(|h| h == "host 198.18.0.2"), "{hosts:?}");
}

/// How long the page of 1,000 cases takes to write, and its parts
/// (`cargo test --release -p hangup --lib html::tests::time_ -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, run by hand"]
fn time_the_page_of_1000_cases() {
    let mut cases = Vec::new();
    for i in 0..1000 {
        let mut c = case();
        c.name = format!("s::case_{i}");
        c.status = CaseStatus::Passed;
        cases.push(c);
    }
    let events: usize = cases.iter().map(|c| c.timeline.events.len()).sum();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let html = page_of(&cases);
        let all = t.elapsed();
        let t = std::time::Instant::now();
        let mut n = 0;
        for c in &cases {
            for e in &c.timeline.events {
                n += e.describe().map_or(0, |d| d.len());
            }
        }
        let describe = t.elapsed();
        let t = std::time::Instant::now();
        let mut m = 0;
        for c in &cases {
            m += ladder::ladder(&c.timeline, ladder::Marks::default())
                .0
                .len();
        }
        let ladders = t.elapsed();
        eprintln!(
            "page {all:?} ({} bytes, {events} events); describe alone {describe:?} ({n}); ladders alone {ladders:?} ({m})",
            html.len()
        );
    }
}

#[test]
fn artifact_links_are_relative_below_the_page_and_file_urls_elsewhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kept = dir.path().join("kept one");
    std::fs::create_dir(&kept).expect("the artifacts' folder");
    std::fs::write(kept.join("capture.pcap"), b"").expect("a file");
    let mut case = case();
    case.artifacts = Some(kept.clone());
    let below = page(
        std::slice::from_ref(&case),
        &[],
        None,
        &RunInfo::default(),
        &dir.path().join("page.html"),
    );
    assert!(
        below.contains("href=\"kept%20one/capture.pcap\""),
        "{below}"
    );
    assert!(below.contains("href=\"kept%20one/case.log\""), "{below}");
    assert!(below.contains("href=\"kept%20one\""), "{below}");
    let other = tempfile::tempdir().expect("another temp dir");
    let elsewhere = page(
        &[case],
        &[],
        None,
        &RunInfo::default(),
        &other.path().join("page.html"),
    );
    let url = format!("href=\"file://{}/capture.pcap\"", kept.display()).replace(' ', "%20");
    assert!(elsewhere.contains(&url), "{elsewhere}");
}
