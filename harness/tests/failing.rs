//! Every kind of assertion, shown failing on a case built to fail, with a
//! readable report: expected, observed, the step, and the timeline.
//!
//! Each broken suite in `tests/broken/` runs through the real `hangup`
//! binary (so this also works unprivileged: the binary enters its own user
//! namespace), which must exit 1 and write a JSON report whose failure says
//! what was expected and what was seen.

use std::path::{Path, PathBuf};
use std::process::Command;

use rstest::rstest;

fn hangup() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
}

/// A program's output line as the JSON report writes it, as the terminal
/// shows it: `err| the line`.
fn output_line(line: &serde_json::Value) -> String {
    format!(
        "{}| {}",
        line["stream"].as_str().unwrap_or("?"),
        line["line"].as_str().unwrap_or("?")
    )
}

/// Runs one broken suite and returns (exit code, stdout, parsed JSON report,
/// the temp dir holding artifacts, which lives as long as the caller keeps it).
fn run_broken(file: &str) -> (Option<i32>, String, serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/broken")
        .join(file);
    let out = hangup()
        .arg("run")
        .arg(&suite)
        .arg("--json")
        .arg(&json)
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("run hangup");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report =
        std::fs::read(&json).unwrap_or_else(|e| panic!("no JSON report ({e}); stdout:\n{stdout}"));
    let report: serde_json::Value = serde_json::from_slice(&report).expect("valid JSON");
    assert_eq!(report["format"], hangup::report::format::FORMAT, "{report}");
    // The cases of the (only) round.
    let cases = report["rounds"][0]["cases"].clone();
    (out.status.code(), stdout, cases, dir)
}

#[rstest]
#[case::errno(
    "errno.toml",
    "expected EPIPE (Broken pipe)",
    "observed ECONNRESET (Connection reset by peer)",
    "outcome"
)]
#[case::state_now(
    "state_now.toml",
    "expected client TIME_WAIT",
    "observed client gone",
    "state"
)]
#[case::state_within(
    "state_within.toml",
    "expected server gone within 300 ms",
    "observed server CLOSE_WAIT",
    "state"
)]
#[case::timing(
    "timing.toml",
    "EAGAIN (Resource temporarily unavailable) after 50 ms ±50 ms",
    "observed EAGAIN",
    "timing"
)]
#[case::eof(
    "eof.toml",
    "expected EOF (read returned 0)",
    "observed ok, 5 bytes",
    "outcome"
)]
#[case::bytes(
    "bytes.toml",
    "expected ok, 999 bytes",
    "observed ok, 1000 bytes",
    "bytes"
)]
#[case::longer_than(
    "longer_than.toml",
    "taking longer than 1000 ms",
    "observed ok, 5 bytes",
    "timing"
)]
#[case::default_expectation(
    "default_expectation.toml",
    "expected ok, observed",
    "observed EPIPE",
    "outcome"
)]
#[case::poll_revents(
    "poll_revents.toml",
    "expected ok, ready: in",
    "observed ok, ready: nothing",
    "ready"
)]
#[case::so_error(
    "so_error.toml",
    "expected ok, observed ECONNREFUSED",
    "observed ECONNREFUSED (Connection refused)",
    "outcome"
)]
#[case::log(
    "log.toml",
    "expected a line of the program's output matching `client left` within 200 ms",
    "observed 0 lines matching",
    "log"
)]
#[case::syscall(
    "syscall.toml",
    "expected 0 write calls by the program on its connection 127.0.0.1:8080 <- 127.0.0.1:",
    " matching (of these: sendto(fd 4) = 40 B at +",
    "syscall"
)]
#[case::matches(
    "matches.toml",
    "expected ok, received matching `^HTTP/1\\.1 200 `",
    r#"received "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n""#,
    "content"
)]
#[case::released(
    "released.toml",
    "expected the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE",
    "observed it holds fd",
    "held"
)]
#[case::accept_queue(
    "accept_queue.toml",
    "expected in the accept queue: server 3 connections waiting within 300 ms",
    "observed server 2 connections waiting",
    "accept_queue"
)]
#[case::fault_drop(
    "fault_drop.toml",
    "expected ok",
    "observed EINPROGRESS (Operation now in progress)",
    "outcome"
)]
#[case::fault_delay(
    "fault_delay.toml",
    "expected ok",
    "observed EAGAIN (Resource temporarily unavailable)",
    "outcome"
)]
#[case::fault_reject(
    "fault_reject.toml",
    "expected ok",
    "observed ECONNREFUSED (Connection refused)",
    "outcome"
)]
#[case::cut(
    "cut.toml",
    "expected ok",
    "observed ENETUNREACH (Network is unreachable)",
    "outcome"
)]
#[case::taken(
    "taken.toml",
    "expected the fault \"never\" to take a packet within 300 ms",
    "observed it took 0 packets",
    "taken"
)]
#[case::sent(
    "sent.toml",
    "expected one or more RST segments the client sent within 200 ms",
    "observed 0 (the client sent SYN, ACK, FIN|ACK)",
    "packets"
)]
#[case::sent_bare_reset(
    "bare_reset.toml",
    "expected one or more RST|!ACK segments the client sent within 200 ms",
    "observed 0 (the client sent SYN, ACK, RST|ACK)",
    "packets"
)]
#[case::first_bare_reset(
    "first_bare_reset.toml",
    "expected the first RST|!ACK segment to be the client's within 200 ms",
    "observed no RST|!ACK segment",
    "packets"
)]
#[case::taken_bare_reset(
    "bare_reset_fault.toml",
    "expected the fault \"bare\" to take a packet within 200 ms",
    "observed it took 0 packets",
    "taken"
)]
#[case::set_refused(
    "set_refused.toml",
    "expected ENOENT (No such file or directory), observed ok",
    "observed ok, 0 bytes after ",
    "outcome"
)]
#[case::user_timeout(
    "user_timeout.toml",
    "expected ETIMEDOUT (Connection timed out), taking longer than 2000 ms",
    "observed ETIMEDOUT (Connection timed out), 0 bytes after ",
    "timing"
)]
#[case::first(
    "first.toml",
    "expected the first FIN segment to be the client's within 1000 ms",
    "observed the server's: FIN|ACK (0 B, win ",
    "packets"
)]
#[case::released_traced(
    "released_traced.toml",
    "expected the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE",
    "observed it holds fd 4: CLOSE (was 127.0.0.1:9000 <- 127.0.0.1:",
    "held"
)]
#[case::released_by_a_worker(
    "released_by_a_worker.toml",
    "expected the program to hold none of the case's connections, none in CLOSE_WAIT or CLOSE",
    "observed it holds pid ",
    "held"
)]
#[case::connect_again(
    "connect_again.toml",
    "expected EALREADY (Operation already in progress)",
    "observed ok, 0 bytes",
    "outcome"
)]
fn an_assertion_that_does_not_hold_fails_readably(
    #[case] file: &str,
    #[case] expected: &str,
    #[case] observed: &str,
    #[case] kind: &str,
) {
    let (code, stdout, report, _dir) = run_broken(file);
    assert_eq!(code, Some(1), "a failing case exits 1; stdout:\n{stdout}");
    assert!(
        stdout.contains(expected),
        "stdout lacks {expected:?}:\n{stdout}"
    );
    assert!(
        stdout.contains(observed),
        "stdout lacks {observed:?}:\n{stdout}"
    );
    for part in [
        "  step:     ",
        "  expected: ",
        "  observed: ",
        "timeline:",
        "0 passed, 1 failed",
    ] {
        assert!(stdout.contains(part), "stdout lacks {part:?}:\n{stdout}");
    }
    let case = &report[0];
    assert_eq!(case["status"], "failed");
    assert!(
        case["summary"]
            .as_str()
            .is_some_and(|s| s.contains(expected)),
        "{case}"
    );
    assert!(
        case["timeline"]["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{case}"
    );
    // Structured, not only rendered: the failure and the mismatch say
    // what kind they are.
    assert_eq!(case["kind"], "expectation", "{case}");
    assert_eq!(case["mismatch"]["kind"], kind, "{case}");
    let artifacts = PathBuf::from(
        case["artifacts"]
            .as_str()
            .expect("failing cases keep artifacts"),
    );
    let log = std::fs::read_to_string(artifacts.join("case.log")).expect("case.log");
    assert!(log.contains(observed), "{log}");
}

#[test]
fn a_state_check_within_a_deadline_records_its_step_and_samples() {
    let (_, stdout, report, _dir) = run_broken("state_within.toml");
    let events = report[0]["timeline"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events:\n{stdout}"));
    // The evidence is the last reading (earlier ones are on the way).
    let state = events
        .iter()
        .rfind(|e| e["event"] == "state")
        .unwrap_or_else(|| panic!("no state event: {events:?}"));
    assert_eq!(state.get("on_the_way"), None, "{state}");
    assert_eq!(state["step"]["index"], 5, "{state}");
    // Polled every 2 ms for 300 ms: many samples, not one.
    assert!(state["samples"].as_u64().is_some_and(|n| n > 10), "{state}");
}

#[test]
fn an_overrun_says_what_each_side_was_waiting_for() {
    let (code, stdout, cases, _dir) = run_broken("deadline.toml");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("overran its deadline of 300 ms"),
        "{stdout}"
    );
    assert!(
        stdout.contains("client was at step 3 `\"recv\"` ("),
        "{stdout}"
    );
    // The blocked read is shown as a call in flight, in the summary and on
    // the timeline, not as an errno the kernel never returned.
    assert!(stdout.contains(", a call in flight for "), "{stdout}");
    assert!(
        stdout.contains("#3 recv: still in flight when the case ended"),
        "{stdout}"
    );
    assert!(!stdout.contains("EINTR"), "{stdout}");
    assert!(
        stdout.contains("server was at step 4 `{ wait = \"client_read\" }`"),
        "{stdout}"
    );
    // In a loop: the body's step and the round, in words and as data.
    let looped = &cases[1];
    let summary = looped["summary"].as_str().expect("a summary");
    assert!(
        summary.contains("client was at step 2.2, round 1 `\"recv\"` ("),
        "{summary}"
    );
    let events = looped["timeline"]["events"].as_array().expect("events");
    let client_at = events
        .iter()
        .find(|e| e["event"] == "whereabouts" && e["side"] == "client")
        .unwrap_or_else(|| panic!("no client whereabouts in {looped}"));
    assert_eq!(
        client_at["step"],
        serde_json::json!({ "index": 2, "body": 2, "round": 1 }),
        "{client_at}"
    );
    assert!(client_at["in_flight_ms"].is_number(), "{client_at}");
}

#[test]
fn the_reference_suites_pass_through_the_cli_with_junit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let junit = dir.path().join("junit.xml");
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites");
    let out = hangup()
        .arg("run")
        .arg(&suites)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run hangup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains(" name=\"s02_read_timeout_mid_stream\""),
        "{xml}"
    );
    assert!(xml.contains("classname=\"s07_abortive_close\""), "{xml}");
    validate_junit(&junit);
}

#[test]
fn failing_cases_write_junit_that_validates_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let junit = dir.path().join("junit.xml");
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let out = hangup()
        .arg("run")
        .arg(&broken)
        .arg("--junit")
        .arg(&junit)
        .arg("--artifacts")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<failure type=\"hangup::expectation\""),
        "{xml}"
    );
    assert!(xml.contains("expected EPIPE (Broken pipe)"), "{xml}");
    validate_junit(&junit);
    // tests/broken/junit_forgery.toml: its text did not add a testcase.
    if let Some(forged) = xpath_count(&junit, "//testcase[@name='forged']") {
        assert_eq!(forged, 0, "{xml}");
        let ours = xpath_count(&junit, "//testcase[@classname='junit_forgery']");
        assert_eq!(ours, Some(2), "{xml}");
    }
    assert!(xml.contains("a bell \\u{7}, an escape \\u{1b}"), "{xml}");
}

/// `count(expression)` over the XML file, through xmllint; none where
/// there is no xmllint (CI installs it).
fn xpath_count(path: &Path, expression: &str) -> Option<u64> {
    let out = Command::new("xmllint")
        .arg("--xpath")
        .arg(format!("count({expression})"))
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Validates against the Jenkins xUnit schema with xmllint; CI installs it
/// (and sets CI=true, which makes a missing xmllint an error here).
fn validate_junit(path: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/junit-10.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("xmllint not found: JUnit schema check skipped")
        }
        Err(err) => panic!("xmllint is needed in CI: {err}"),
    }
}

#[test]
fn a_loop_that_never_reaches_until_fails_and_says_so() {
    let (code, stdout, report, _dir) = run_broken("loop_until.toml");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("the loop ran its 5 rounds and no call ended with EPIPE (Broken pipe)"),
        "{stdout}"
    );
    assert!(stdout.contains("loop_until.toml:15:3"), "{stdout}");
    assert!(stdout.contains("[round 5]"), "{stdout}");
    assert_eq!(report[0]["status"], "failed");
}

#[test]
fn a_wait_nobody_answers_fails_at_its_timeout() {
    let (code, stdout, report, _dir) = run_broken("wait_timeout.toml");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("no other side reached `mark = \"ready\"` in time"),
        "{stdout}"
    );
    assert!(stdout.contains("wait_timeout.toml:8:3"), "{stdout}");
    assert_eq!(report[0]["status"], "failed");
}

#[test]
fn hangup_tolerance_floor_widens_every_timing_check() {
    // timing.toml expects 50 ms where the read takes 200 ms: it fails at
    // the default floor of 50 ms and passes with a 500 ms floor.
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/timing.toml");
    let artifacts = tempfile::tempdir().expect("temp dir");
    let run = |floor: &str| {
        hangup()
            .arg("run")
            .arg(&suite)
            .env("HANGUP_ARTIFACTS", artifacts.path())
            .env("HANGUP_TOLERANCE_FLOOR", floor)
            .output()
            .expect("run hangup")
    };
    assert_eq!(run("50ms").status.code(), Some(1));
    let widened = run("500ms");
    assert_eq!(
        widened.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&widened.stdout)
    );
    let bad = run("soon");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("HANGUP_TOLERANCE_FLOOR: expected a duration"),
        "{stderr}"
    );
    // Near u64::MAX seconds it would overflow the tolerance sums: the
    // suites' own limit applies.
    let huge = run("584542046090y");
    assert_eq!(huge.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&huge.stderr);
    assert!(stderr.contains("of at most \"24h\""), "{stderr}");
}

/// A program under test that crashes, never becomes ready, or ignores its
/// stop signal fails its case with the reason and its last output.
#[rstest]
#[case::crash(
    "program_crash.toml",
    "the program exited with status 3 while the case ran",
    Some("err| boom: giving up on the first client")
)]
#[case::never_ready(
    "program_never_ready.toml",
    "the program did not listen on port 9000 within 300 ms (nothing in its namespace listens on a TCP port)",
    None
)]
#[case::listens_elsewhere(
    "program_listens_elsewhere.toml",
    "the program did not listen on port 9000 within 3000 ms (its namespace listens on 127.0.0.1:9001)",
    None
)]
#[case::ignores_stop(
    "program_ignores_stop.toml",
    "the program ignored SIGTERM for 200 ms and was killed",
    Some("out| listening")
)]
fn a_program_that_misbehaves_fails_its_case_with_the_reason(
    #[case] file: &str,
    #[case] summary: &str,
    #[case] output: Option<&str>,
) {
    let (code, stdout, report, dir) = run_broken(file);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(summary), "{stdout}");
    let case = &report[0];
    assert_eq!(case["kind"], "program", "{case}");
    // Under load a stop's grace grows by what the program's threads waited
    // for a CPU, and the summary says by how much: that clause, and no
    // other, may follow.
    let said = case["summary"].as_str().unwrap_or_default();
    let rest = said.strip_prefix(summary);
    assert!(
        rest.is_some_and(|rest| rest.is_empty()
            || (rest.starts_with(" (and ")
                && rest.ends_with(" more, as long as its threads waited for a CPU)"))),
        "{case}"
    );
    if let Some(line) = output {
        assert!(stdout.contains("the program's last output:"), "{stdout}");
        assert!(stdout.contains(line), "{stdout}");
        assert!(
            case["output"]
                .as_array()
                .is_some_and(|lines| lines.iter().any(|l| output_line(l) == line)),
            "{case}"
        );
        // Captured line by line, stamped on the case's clock.
        let artifacts = PathBuf::from(case["artifacts"].as_str().expect("kept"));
        let log = std::fs::read_to_string(artifacts.join("program.log")).expect("program.log");
        assert!(log.contains(line), "{log}");
    }
    drop(dir);
}

/// A program that exits at once, before hangup could have found it in
/// `/proc`, fails each case with its exit status and its last line.
#[test]
fn a_program_that_exits_at_once_fails_with_its_status_and_output() {
    let (code, stdout, cases, dir) = run_broken("program_exits_at_once.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let cases = cases.as_array().expect("cases");
    assert_eq!(cases.len(), 10, "{stdout}");
    for case in cases {
        assert_eq!(
            case["summary"], "the program exited with status 3 before it was ready",
            "{stdout}"
        );
        assert!(
            case["output"]
                .as_array()
                .is_some_and(|lines| lines.iter().any(|l| output_line(l) == "err| boom")),
            "{case}"
        );
    }
    drop(dir);
}

/// A program that serves the whole suite (`scope = "suite"`) and dies fails
/// the case it served and every case after it, each with the reason and the
/// program's last output; one that ignores its stop signal fails the
/// suite's last case, which had passed.
#[test]
fn a_suite_program_that_misbehaves_fails_the_cases_it_serves() {
    let (code, stdout, cases, dir) = run_broken("suite_program_crash.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summaries = [
        "the program exited with status 3 while the case ran",
        "the suite's program (scope = \"suite\") exited with status 3 before this case began",
    ];
    for (case, summary) in cases.as_array().expect("cases").iter().zip(summaries) {
        assert_eq!(case["kind"], "program", "{case}");
        assert_eq!(case["summary"], summary, "{case}");
        let output = case["output"].as_array().expect("output");
        assert!(
            output
                .iter()
                .any(|l| output_line(l) == "err| boom: giving up on the first client"),
            "{case}"
        );
    }
    drop(dir);

    let (code, stdout, cases, dir) = run_broken("suite_program_ignores_stop.toml");
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(cases[0]["status"], "passed", "{}", cases[0]);
    assert_eq!(cases[1]["kind"], "program", "{}", cases[1]);
    assert_eq!(
        cases[1]["summary"],
        "the suite's program ignored SIGTERM for 200 ms after the suite's last case and was killed",
        "{}",
        cases[1]
    );
    drop(dir);
}

/// The accept-queue leak soak against `leaky`: the 20 clients whose request
/// and FIN were queued before it accepted them leak, and the failure names
/// each socket the program still holds (reset into CLOSE: the kernel no
/// longer knows their addresses, the program's fd table still has them).
#[test]
fn a_leak_soak_names_every_socket_the_program_leaked() {
    let (code, stdout, cases, dir) = run_broken("twin_leaky_aborts.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = cases[0]["summary"].as_str().expect("a summary");
    assert!(
        summary.contains("expected the program to hold none of the case's connections"),
        "{summary}"
    );
    // `fd 7: CLOSE` or `fd 7: CLOSE_WAIT ...`, one per socket.
    let held = summary.matches(": CLOSE").count();
    assert_eq!(held, 20, "{summary}");
    drop(dir);
}

/// A traced program that keeps sockets reset before it accepted them: the
/// failure names each leaked connection, from the cookie hangup noted when
/// that connection was made (not only the latest connection's).
#[test]
fn a_traced_leak_names_each_leaked_connection() {
    let (code, stdout, cases, dir) = run_broken("released_traced_many.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = cases[0]["summary"].as_str().expect("a summary");
    let named: std::collections::BTreeSet<&str> = summary
        .split("(was 127.0.0.1:9000 <- ")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .collect();
    assert_eq!(named.len(), 3, "{summary}");
    drop(dir);
}

/// Faults are put in place and lifted as the scripts run: a `lift` that
/// comes before its fault (in another side's script) fails the case there,
/// saying so, rather than lifting nothing.
#[test]
fn a_lift_of_a_fault_not_in_place_fails_saying_so() {
    let (code, stdout, cases, dir) = run_broken("lift_early.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = cases[0]["summary"].as_str().expect("a summary");
    assert!(
        summary.contains("no fault named \"late\" was in place to lift"),
        "{summary}"
    );
    assert_eq!(cases[0]["kind"], "script", "{}", cases[0]);
    drop(dir);
}

/// A program that plays the client starts once a script listens; a step
/// that needs the program before the script's `listen` would have each
/// wait for the other until the deadline. The case fails as a script
/// error naming the side, not as an overrun.
#[test]
fn a_step_that_needs_the_program_before_it_can_start_fails_saying_why() {
    let (code, stdout, cases, dir) = run_broken("program_waits_for_itself.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = cases[0]["summary"].as_str().expect("a summary");
    assert!(
        summary.contains("no script listened on port 9000, where the program connects: the server script's step needs the program first"),
        "{summary}"
    );
    assert_eq!(cases[0]["kind"], "script", "{}", cases[0]);
    drop(dir);
}

/// A packet a fault took is in the timeline as lost, to that fault, as the
/// kernel logged it: in the JSON, and drawn in the ladder as an arrow that
/// stops at an `X`.
#[test]
fn a_packet_a_fault_took_is_drawn_as_lost() {
    let (code, stdout, cases, dir) = run_broken("fault_drop.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let events = cases[0]["timeline"]["events"].as_array().expect("events");
    let syns: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "packet" && e["flags"] == "SYN")
        .collect();
    assert!(!syns.is_empty(), "{stdout}");
    for syn in syns {
        let fault = &syn["lost_to"];
        assert_eq!(fault["target"], "packets", "{syn}");
        assert_eq!(fault["from"], "client", "{syn}");
        assert_eq!(fault["flags"], "SYN", "{syn}");
        assert_eq!(fault["verdict"]["kind"], "drop", "{syn}");
    }
    assert!(
        stdout.contains("SYN seq 0 win 65495 -----------X  lost: drop what client sends"),
        "{stdout}"
    );
    drop(dir);
}

/// A packet a delay held is in the timeline with the delay and how long
/// it was held, as hangup let the kernel release it.
#[test]
fn a_packet_a_delay_held_says_so() {
    let (code, stdout, cases, dir) = run_broken("fault_delay.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let events = cases[0]["timeline"]["events"].as_array().expect("events");
    let data: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "packet" && e["len"] == 100)
        .collect();
    // The first is held; a teardown slower than the server's first RTO
    // (~200 ms, under load) adds its retransmission, which the rule, gone
    // with the case's end by then, did not hold.
    assert!(!data.is_empty(), "{stdout}");
    assert!(
        data[1..].iter().all(|d| d.get("held").is_none()),
        "{stdout}"
    );
    let held = &data[0]["held"];
    assert_eq!(held["fault"]["from"], "server", "{}", data[0]);
    assert_eq!(held["fault"]["verdict"]["kind"], "delay", "{}", data[0]);
    assert_eq!(held["fault"]["verdict"]["by_ms"], 300.0, "{}", data[0]);
    assert_eq!(held["for_ms"], 300.0, "{}", data[0]);
    assert!(data[0].get("lost_to").is_none(), "{}", data[0]);
    assert!(
        stdout.contains("(100 B)  held 300.0 ms: delay by 300ms what server sends (with data)"),
        "{stdout}"
    );
    drop(dir);
}

/// Each deliberately broken fixture makes the suite its correct twin passes
/// (`fixtures/suites/`) fail, and the report names the cause.
#[rstest]
#[case::leaky(
    "twin_leaky.toml",
    "expected server TIME_WAIT within 1000 ms, observed server CLOSE_WAIT"
)]
#[case::deaf(
    "twin_deaf.toml",
    "expected a line of the program's output matching `client left` within 500 ms, observed 0 lines matching"
)]
// Its exit fails the case, or the next connect does, naming the exit: which
// comes first is the race between hangup's watcher and the client.
#[case::crashy("twin_crashy.toml", "the program exited with status 3")]
#[case::noisy(
    "twin_noisy.toml",
    // Sampled once, while noisy may still be printing its trace: as many
    // of its 10 lines as had arrived.
    "expected 0 lines of the program's output matching `\tat `, observed "
)]
fn a_broken_twin_fails_the_suite_its_fixture_passes(#[case] file: &str, #[case] cause: &str) {
    let (code, stdout, report, _dir) = run_broken(file);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(cause), "{stdout}");
    assert_eq!(report[0]["status"], "failed");
}

/// A congestion control the kernel has not loaded: as root of the machine
/// hangup does not ask for it (the kernel would run modprobe on the host)
/// and the step fails saying so; rootless, the kernel's ENOENT.
#[test]
fn a_congestion_control_the_kernel_lacks_is_never_loaded_for_it() {
    let (code, stdout, cases, dir) = run_broken("set_congestion_not_loaded.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let case = &cases[0];
    let summary = case["summary"].as_str().expect("summary");
    if hangup::sandbox::root_in_initial_user_namespace() {
        assert_eq!(case["kind"], "script", "{case}");
        assert!(
            summary.contains("hangup loads no kernel module"),
            "{summary}"
        );
    } else {
        assert!(summary.contains("observed ENOENT"), "{summary}");
    }
    drop(dir);
}

/// `released` after the program exited (a shutdown) cannot judge an fd
/// table that went with it: it fails saying so, never passes on nothing.
#[test]
fn a_program_that_gives_up_after_a_failed_step_does_not_take_its_place() {
    let (code, stdout, cases, dir) = run_broken("program_gives_up_after_a_failed_step.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let case = &cases[0];
    assert_eq!(case["kind"], "expectation", "{case}");
    let summary = case["summary"].as_str().expect("summary");
    assert!(
        summary.contains("expected server CLOSE_WAIT, observed server ESTABLISHED"),
        "{summary}"
    );
    // It was running when the check failed: nothing says its exit came first.
    assert!(!summary.contains("before this"), "{summary}");
    drop(dir);
}

#[test]
fn released_after_the_program_exited_says_it_cannot_judge() {
    let (code, stdout, cases, dir) = run_broken("released_after_exit.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = cases[0]["summary"].as_str().expect("summary");
    assert!(
        summary.contains("the program exited with status 0 before this check: `released` judges a running program's fd table"),
        "{summary}"
    );
    drop(dir);
}

/// A command the kernel cannot find fails its case saying where it was
/// looked for, and how hangup names a binary cargo built.
#[test]
fn a_program_that_is_not_there_says_where_it_was_looked_for() {
    let (code, stdout, cases, _dir) = run_broken("program_not_found.toml");
    assert_eq!(code, Some(1), "{stdout}");
    let summary = |name: &str| {
        cases
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .and_then(|c| c["summary"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let bare = summary("program_not_found::not_on_path");
    assert!(
        bare.starts_with(
            "failed to start the program: `hangup-no-such-server` is not a command on PATH ("
        ) && bare.ends_with(
            "); a binary of the package under test is written `{bin:hangup-no-such-server}` (cargo builds it), one of hangup's own fixtures `{fixture:hangup-no-such-server}`"
        ),
        "{bare}"
    );
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    assert_eq!(
        summary("program_not_found::no_such_file"),
        format!(
            "failed to start the program: `./no-such-dir/server` names no file: there is no {}/./no-such-dir/server",
            folder.display()
        )
    );
}
