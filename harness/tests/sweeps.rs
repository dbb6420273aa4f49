//! Sweeps against the fixtures and their broken twins: the bundled sweeps
//! (`fixtures/suites/sweep_*.toml`) pass every cell against the
//! well-behaved programs, and the same sweeps against each twin fail
//! exactly the cells where its bug shows, saying why, while the rest of
//! the matrix still runs.
//!
//! Each run goes through the real `hangup` binary and reads its typed
//! JSON report back: the matrix, its cells' verdicts and their evidence.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hangup::report::format::Report;
use hangup::report::matrix::{Matrix, Verdict};
use hangup::suite::sweep::{Kind, Phase};

fn fixture_suite(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/suites")
        .join(name)
}

/// Runs `suite`'s text (written into a temp folder as `<stem>.toml`, so
/// its test names start with `stem`) and returns the report's matrices
/// and the terminal's output.
fn sweep(stem: &str, text: &str) -> (Vec<Matrix>, String) {
    let (bytes, stdout) = run(stem, text);
    let report = Report::read(&bytes).expect("a report of this format");
    (report.sweeps, stdout)
}

/// Runs `suite`'s text as [`sweep`] does and returns its JSON report, as
/// bytes, and the terminal's output.
fn run(stem: &str, text: &str) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = dir.path().join(format!("{stem}.toml"));
    std::fs::write(&suite, text).expect("write suite");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(["run", "--json"])
        .arg(&json)
        .arg("--artifacts")
        .arg(dir.path())
        .arg(&suite)
        .env("COLUMNS", "120")
        .output()
        .expect("run hangup");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let bytes =
        std::fs::read(&json).unwrap_or_else(|e| panic!("no JSON report ({e}); stdout:\n{stdout}"));
    (bytes, stdout)
}

/// The bundled suite's text with its program swapped: `from` for `to` in
/// its `run`, and a program for each cell (`scope = "case"`), so a twin
/// that crashes takes no other cell with it and the cells run in parallel.
fn twin_of(file: &str, swaps: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(fixture_suite(file)).expect("read suite");
    for (from, to) in swaps {
        assert!(text.contains(from), "{file} has no `{from}`");
        text = text.replace(from, to);
    }
    text.replace("scope = \"suite\"", "scope = \"case\"")
}

/// `phase::kind` of each cell with `verdict`.
fn cells(matrices: &[Matrix], verdict: Verdict) -> BTreeSet<String> {
    matrices
        .iter()
        .flat_map(|m| &m.cells)
        .filter(|c| c.verdict == verdict)
        .map(|c| format!("{}::{}", c.phase.name(), c.kind.name()))
        .collect()
}

/// `phase::kind` of each cell where the program logged a failed write.
fn wrote_and_failed(matrices: &[Matrix]) -> BTreeSet<String> {
    matrices
        .iter()
        .flat_map(|m| &m.cells)
        .filter(|c| {
            c.evidence
                .log
                .iter()
                .any(|l| l.pattern == "write failed" && l.count > 0)
        })
        .map(|c| format!("{}::{}", c.phase.name(), c.kind.name()))
        .collect()
}

#[test]
fn the_stream_sweeps_pass_every_cell_and_say_what_the_program_did() {
    let text = std::fs::read_to_string(fixture_suite("sweep_stream.toml")).expect("read");
    let (matrices, stdout) = sweep("sweep_stream", &text);
    assert_eq!(matrices.len(), 2, "{stdout}");
    let before = &matrices[0];
    assert_eq!(before.sweep, "before_the_response");
    assert_eq!(
        before.phases,
        [
            Phase::SynSent,
            Phase::Queued,
            Phase::Connected,
            Phase::RequestBytes(4),
            Phase::RequestSent
        ]
    );
    // A connection in SYN_SENT can only be closed or reset: 2 + 4 x 5.
    assert_eq!(before.cells.len(), 22, "{stdout}");
    assert!(before.cell(&Phase::SynSent, Kind::Timeout).is_none());
    let during = &matrices[1];
    assert_eq!(during.kinds, Kind::ALL);
    assert_eq!(during.cells.len(), 24, "{stdout}");
    assert!(
        cells(&matrices, Verdict::Failed).is_empty(),
        "failed: {:?}\n{stdout}",
        cells(&matrices, Verdict::Failed)
    );
    // The evidence is the program's own: a client that resets mid-stream
    // makes its next write fail with ECONNRESET, which it logs once.
    let reset = during
        .cell(&Phase::FirstByte, Kind::Abort)
        .expect("first_byte::abort");
    let failed = reset
        .evidence
        .first_failed_call
        .as_ref()
        .expect("a failed call");
    assert_eq!(
        failed.outcome.to_string(),
        "ECONNRESET (Connection reset by peer)"
    );
    assert!(
        reset
            .evidence
            .log
            .iter()
            .any(|l| l.pattern == "write failed" && l.count == 1),
        "{reset:?}"
    );
    // The grid, on a terminal wide enough for it.
    assert!(
        stdout.contains("sweep sweep_stream::during_the_response: 24 cells, 24 passed, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  syn_sent         ok      ok      -"),
        "{stdout}"
    );
}

/// `leaky` forgets a connection once its response is out: every cell
/// where the response ends before the client leaves, and only those,
/// fails `released`, naming the socket it holds.
#[test]
fn the_stream_sweeps_against_leaky_fail_exactly_where_it_leaks() {
    let text = twin_of(
        "sweep_stream.toml",
        &[("{fixture:stream}", "{fixture:leaky}")],
    );
    let (matrices, stdout) = sweep("sweep_leaky", &text);
    let mut expected = BTreeSet::new();
    // A client that reads on (or lingers) until the response is out.
    for phase in ["request_sent", "first_byte", "response_bytes_2500"] {
        for kind in ["timeout", "half_close", "stop_reading"] {
            expected.insert(format!("{phase}::{kind}"));
        }
    }
    // One that vanishes: `leaky` writes the rest into its buffer, then
    // waits for a request that never comes.
    for phase in ["first_byte", "response_bytes_2500"] {
        for kind in ["vanish", "vanish_then_reset"] {
            expected.insert(format!("{phase}::{kind}"));
        }
    }
    // The whole response read: whatever the client does next.
    for kind in Kind::ALL {
        expected.insert(format!("response_bytes_5000::{}", kind.name()));
    }
    assert_eq!(cells(&matrices, Verdict::Failed), expected, "{stdout}");
    for cell in matrices.iter().flat_map(|m| &m.cells) {
        if cell.verdict != Verdict::Failed {
            continue;
        }
        let step = cell.failed_step.as_ref().expect("the failing step");
        assert!(step.source.contains("released"), "{cell:?}");
        let observed = &cell.mismatch.as_ref().expect("a mismatch").observed;
        assert!(observed.contains("it holds fd "), "{observed}");
    }
}

/// `crashy` exits when a write fails, `noisy` logs a stack trace: each
/// fails exactly the cells where `stream`, in the same sweep, logged a
/// failed write; the other cells of the matrix still run and pass.
#[test]
fn the_stream_sweeps_against_crashy_and_noisy_fail_where_a_write_fails() {
    let text = twin_of(
        "sweep_stream.toml",
        &[("{fixture:stream}", "{fixture:stream}")],
    );
    let (stream, stdout) = sweep("sweep_stream", &text);
    let wrote_and_failed = wrote_and_failed(&stream);
    assert!(
        wrote_and_failed.len() >= 10,
        "{wrote_and_failed:?}\n{stdout}"
    );
    assert!(cells(&stream, Verdict::Failed).is_empty(), "{stdout}");

    let text = twin_of(
        "sweep_stream.toml",
        &[("{fixture:stream}", "{fixture:crashy}")],
    );
    let (crashy, stdout) = sweep("sweep_crashy", &text);
    assert_eq!(
        cells(&crashy, Verdict::Failed),
        wrote_and_failed,
        "{stdout}"
    );
    assert_eq!(
        cells(&crashy, Verdict::Passed).len(),
        46 - wrote_and_failed.len(),
        "{stdout}"
    );
    assert!(
        stdout.contains("the program exited with status 3"),
        "{stdout}"
    );

    let text = twin_of(
        "sweep_stream.toml",
        &[("{fixture:stream}", "{fixture:noisy}")],
    );
    let (noisy, stdout) = sweep("sweep_noisy", &text);
    assert_eq!(cells(&noisy, Verdict::Failed), wrote_and_failed, "{stdout}");
    for cell in noisy.iter().flat_map(|m| &m.cells) {
        if cell.verdict == Verdict::Failed {
            let step = cell.failed_step.as_ref().expect("the failing step");
            assert!(step.source.contains(r#"\tat "#), "{cell:?}");
        }
    }
}

/// `deaf` works on for a client that left: the work-stops check fails in
/// every cell, naming the writes it made after the hang-up.
#[test]
fn the_slow_sweep_against_deaf_fails_its_work_stops_check_in_every_cell() {
    let text = std::fs::read_to_string(fixture_suite("sweep_slow.toml")).expect("read");
    let (slow, stdout) = sweep("sweep_slow", &text);
    assert_eq!(cells(&slow, Verdict::Passed).len(), 3, "{stdout}");

    let text = twin_of(
        "sweep_slow.toml",
        &[
            ("{fixture:slow}", "{fixture:deaf}"),
            (r#", "--watch""#, r#", "--seconds", "2""#),
        ],
    );
    let (deaf, stdout) = sweep("sweep_deaf", &text);
    assert_eq!(cells(&deaf, Verdict::Failed).len(), 3, "{stdout}");
    for cell in deaf.iter().flat_map(|m| &m.cells) {
        let step = cell.failed_step.as_ref().expect("the failing step");
        assert!(step.source.contains("syscall = \"write\""), "{cell:?}");
        let observed = &cell.mismatch.as_ref().expect("a mismatch").observed;
        assert!(observed.contains("write call"), "{observed}");
    }
}

/// With one program for the suite's cells, a cell that crashes it fails,
/// and the next cell gets a fresh program: the crash cells are the same
/// as with a program per cell, and no cell fails for an earlier one.
#[test]
fn a_suite_scoped_program_a_cell_crashed_is_started_again_for_the_next() {
    let text = std::fs::read_to_string(fixture_suite("sweep_stream.toml")).expect("read");
    let (stream, stdout) = sweep("sweep_stream", &text);
    assert!(cells(&stream, Verdict::Failed).is_empty(), "{stdout}");
    let wrote_and_failed = wrote_and_failed(&stream);
    let crashy = text.replace("{fixture:stream}", "{fixture:crashy}");
    let (crashy, stdout) = sweep("sweep_crashy", &crashy);
    assert_eq!(
        cells(&crashy, Verdict::Failed),
        wrote_and_failed,
        "{stdout}"
    );
    assert!(!stdout.contains("before this case began"), "{stdout}");
}

/// The shutdown phases: the program is told to stop (SIGTERM) with the
/// cell's connection idle or mid-response, and the client hangs up in
/// every way right after, racing the program's own exit as a real client
/// would (whose close or reset came first is the kernel's record, in the
/// evidence). `stream` logs the signal and exits in every cell, never with
/// a stack trace; no fresh request follows (it is gone).
#[test]
fn shutdown_phases_signal_the_program_with_the_connection_open() {
    let text = r#"
[program]
run = ["{fixture:stream}", "--port", "{port}", "--chunks", "5", "--size", "1000", "--gap", "50"]
port = 8080
ready = "^listening on"

[[sweep]]
name = "during_shutdown"
request = "GET /stream\n"
phases = ["shutdown_idle", "shutdown_streaming"]
kinds = "all"
hold = "1s"
keep = [
  { log = "SIGTERM", within = "2s" },
  { log = "\tat ", count = 0 },
]
serving = { until = 5000 }
"#;
    let (matrices, stdout) = sweep("shutdown", text);
    assert_eq!(matrices.len(), 1, "{stdout}");
    assert_eq!(matrices[0].cells.len(), 16, "{stdout}");
    assert!(cells(&matrices, Verdict::Failed).is_empty(), "{stdout}");
    // No fresh request after a cell whose program was told to stop: each
    // cell connects once, though the sweep asks for `serving`.
    let suite = hangup::suite::parse_suite(Path::new("shutdown.toml"), text.as_bytes())
        .expect("a valid suite");
    for case in &suite.cases {
        let connects = case.scripts[0]
            .steps
            .iter()
            .filter(|s| s.source.contains("connect"))
            .count();
        assert_eq!(connects, 1, "{}", case.name);
    }
}

/// The `queued` phase pauses a traced program whose acceptor thread
/// blocks in accept (as Java's do): every thread stops, so the connection
/// and the hang-up behind it wait in the accept queue. The SIGSTOP once
/// went to the program's process group, which holds its tracer too: the
/// stopped tracer never let the group stop begin, the acceptor thread
/// accepted the connection, and the cell failed its `accept_queue` check
/// (9 runs in 10).
#[test]
fn the_queued_phase_stops_every_thread_of_a_traced_program() {
    let text = r#"
[program]
run = ["{fixture:echo}", "--port", "{port}", "--acceptor-thread"]
port = 8080
ready = "^listening on"

[[sweep]]
name = "queued"
request = "hello\n"
phases = ["queued"]
kinds = ["close", "abort", "half_close"]
keep = [{ released = true, within = "2s" }]
serving = { until = "hello\n", within = "2s" }
"#;
    let (bytes, stdout) = run("acceptor_thread", text);
    let report: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    let matrices = Report::read(&bytes).expect("a report").sweeps;
    assert_eq!(cells(&matrices, Verdict::Passed).len(), 3, "{stdout}");
    // Each cell's timeline says every thread stopped.
    let cases = report["rounds"][0]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3, "{stdout}");
    for case in cases {
        let paused: Vec<&serde_json::Value> = case["timeline"]["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["event"] == "program_paused")
            .collect();
        assert_eq!(paused.len(), 1, "{case}");
        assert_eq!(paused[0]["stopped"], true, "{case}");
    }
}

/// A sweep whose program names two versions (`compare`): each version's
/// cells make a matrix of their own, and the run ends with the two
/// matrices cell by cell, naming the cell `leaky` broke.
#[test]
fn a_sweep_in_two_versions_is_two_matrices_and_their_changes() {
    let text = r#"
[program]
run = ["{fixture:stream}", "--port", "{port}", "--chunks", "5", "--size", "1000", "--gap", "50"]
port = 8080
ready = "^listening on"
compare = [
  { name = "stream" },
  { name = "leaky", run = ["{fixture:leaky}", "--port", "{port}", "--chunks", "5", "--size", "1000", "--gap", "50"] },
]
baseline_runs = 1

[[sweep]]
name = "s"
request = "GET /stream\n"
phases = ["connected", "first_byte"]
kinds = ["close", "timeout"]
hold = "1s"
keep = [{ released = true, within = "2s" }]
"#;
    let (matrices, stdout) = sweep("sweep_versions", text);
    let versions: Vec<(&str, bool)> = matrices
        .iter()
        .map(|m| {
            let v = m.version.as_ref().expect("each matrix names its version");
            (v.name.as_str(), v.base)
        })
        .collect();
    assert_eq!(versions, [("stream", true), ("leaky", false)], "{stdout}");
    assert!(
        cells(&matrices[..1], Verdict::Failed).is_empty(),
        "{stdout}"
    );
    assert_eq!(
        cells(&matrices[1..], Verdict::Failed),
        BTreeSet::from(["first_byte::timeout".to_string()]),
        "{stdout}"
    );
    assert!(
        stdout.contains("sweep sweep_versions::s@stream: 4 cells"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sweep sweep_versions::s@leaky: 4 cells"),
        "{stdout}"
    );
    let changes = stdout
        .split("sweeps in both versions:\n")
        .nth(1)
        .expect("the matrices' changes");
    assert!(
        changes.starts_with("sweep sweep_versions::s (stream -> leaky): 1 cell(s) changed verdict"),
        "{stdout}"
    );
    assert!(
        changes.contains("  first_byte::timeout: ok") && changes.contains("-> FAILED"),
        "{stdout}"
    );
}

/// The `errnos` invariant against `stream --http`, its chunks 300 ms
/// apart. A client that closes at the end of the first chunk has read
/// everything that came, so its close is a FIN: the program's next write
/// meets the client's reset in CLOSE_WAIT, and the one after fails with
/// EPIPE. One that closes after the first byte leaves the chunk's rest
/// unread, so its close is a reset, as an abort is: the next write fails
/// with ECONNRESET. (The 300 ms make the FIN certain on a loaded machine:
/// a close right after the request, `request_sent`, races the program's
/// first write and is a reset when it loses.) Allowing only ECONNRESET
/// fails exactly the cell where the kernel said EPIPE, naming the call;
/// allowing both passes every cell.
#[test]
fn errnos_fail_exactly_the_cells_whose_calls_failed_otherwise() {
    let suite = |errnos: &str| {
        format!(
            r#"
[program]
run = ["{{fixture:stream}}", "--port", "{{port}}", "--chunks", "3", "--size", "1000", "--gap", "300", "--http"]
port = 8080
ready = "^listening on"
scope = "suite"

[[sweep]]
name = "errnos"
request = "GET /stream HTTP/1.1\r\nHost: hangup\r\n\r\n"
phases = ["first_byte", {{ chunks = 1 }}]
kinds = ["close", "abort"]
keep = [{{ released = true, within = "2s" }}]
errnos = {errnos}
serving = {{ until = "\r\n0\r\n\r\n", within = "5s" }}
"#
        )
    };
    let (matrices, stdout) = sweep("errnos_reset", &suite(r#"["ECONNRESET"]"#));
    let failed = cells(&matrices, Verdict::Failed);
    assert_eq!(
        failed,
        BTreeSet::from(["chunk_1::close".to_string()]),
        "{stdout}"
    );
    let cell = matrices[0]
        .cell(&Phase::Chunk(1), Kind::Close)
        .expect("chunk_1::close");
    let step = cell.failed_step.as_ref().expect("the failing step");
    assert_eq!(step.source, r#"{ errnos = ["ECONNRESET"] }"#, "{cell:?}");
    let mismatch = cell.mismatch.as_ref().expect("a mismatch");
    assert!(
        mismatch.expected.contains(
            "to fail with only ECONNRESET (Connection reset by peer) (EAGAIN and EINTR aside)"
        ),
        "{mismatch:?}"
    );
    assert!(
        mismatch.observed.contains("failed otherwise: sendto(fd ")
            && mismatch.observed.contains(") = EPIPE (Broken pipe) at +"),
        "{mismatch:?}"
    );
    let outside: Vec<String> = cell
        .evidence
        .outside_errnos
        .iter()
        .map(|c| format!("{} {}", c.syscall, c.outcome))
        .collect();
    assert_eq!(outside, ["sendto EPIPE (Broken pipe)"], "{cell:?}");
    assert!(
        stdout.contains("failed outside `errnos`: sendto EPIPE (Broken pipe)"),
        "{stdout}"
    );
    // The other cells' failed calls were ECONNRESET: allowed, no evidence.
    for cell in matrices[0]
        .cells
        .iter()
        .filter(|c| c.verdict == Verdict::Passed)
    {
        assert!(cell.evidence.outside_errnos.is_empty(), "{cell:?}");
        let failed = cell
            .evidence
            .first_failed_call
            .as_ref()
            .expect("a failed call");
        assert_eq!(
            failed.outcome.to_string(),
            "ECONNRESET (Connection reset by peer)"
        );
    }

    let (matrices, stdout) = sweep("errnos_both", &suite(r#"["EPIPE", "ECONNRESET"]"#));
    assert_eq!(cells(&matrices, Verdict::Passed).len(), 4, "{stdout}");
}

/// The chunk and body-offset phases against `stream --http`, whose body
/// is 4 chunks of 1000 bytes (`3e8\r\n` + data + `\r\n` each) after 73
/// bytes of headers, 200 ms apart. Each phase reads exactly to its mark: through chunk
/// k is 73 + 1007 k bytes, so a close there leaves nothing unread and
/// sends a FIN (the program's write after the next meets the reset:
/// EPIPE), while a close 1000 bytes into the body leaves the rest of the
/// first chunk unread and resets (ECONNRESET). A 5th chunk never comes:
/// those cells fail, saying the body ended after 4.
#[test]
fn chunk_and_body_phases_read_exactly_to_their_mark() {
    let text = r#"
[program]
run = ["{fixture:stream}", "--port", "{port}", "--chunks", "4", "--size", "1000", "--gap", "200", "--http"]
port = 8080
ready = "^listening on"
scope = "suite"

[[sweep]]
name = "chunked"
request = "GET /stream HTTP/1.1\r\nHost: hangup\r\n\r\n"
phases = [{ chunks = 5 }, { body_bytes = { count = 2, of = 2000 } }]
kinds = ["close", "abort"]
keep = [{ released = true, within = "2s" }]
errnos = ["EPIPE", "ECONNRESET"]
serving = { until = "\r\n0\r\n\r\n", within = "5s" }
"#;
    let (bytes, stdout) = run("chunked", text);
    let matrices = Report::read(&bytes).expect("a report").sweeps;
    assert_eq!(
        matrices[0].phases,
        [
            Phase::Chunk(1),
            Phase::Chunk(2),
            Phase::Chunk(3),
            Phase::Chunk(4),
            Phase::Chunk(5),
            Phase::BodyBytes(1000),
            Phase::BodyBytes(2000),
        ],
        "{stdout}"
    );
    assert_eq!(
        cells(&matrices, Verdict::Failed),
        BTreeSet::from(["chunk_5::close".to_string(), "chunk_5::abort".to_string()]),
        "{stdout}"
    );
    for kind in [Kind::Close, Kind::Abort] {
        let cell = matrices[0].cell(&Phase::Chunk(5), kind).expect("chunk_5");
        let mismatch = cell.mismatch.as_ref().expect("a mismatch");
        assert!(
            mismatch.observed.ends_with(
                "short of its mark: the body ended (its last chunk, of size 0) after 4 chunks"
            ),
            "{mismatch:?}"
        );
    }
    // What each phase's read took, from the report's timeline.
    let report: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    let cases = report["rounds"][0]["cases"].as_array().expect("cases");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let read = case["timeline"]["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["event"] == "call" && e["call"]["action"] == "recv_until")
            .unwrap_or_else(|| panic!("{name} read nothing"));
        let want = match name.split("::").nth(2).expect("a phase") {
            "chunk_1" => 1080,
            "chunk_2" => 2087,
            "chunk_3" => 3094,
            "chunk_4" => 4101,
            // The 4 chunks and the last chunk's `0\r\n`.
            "chunk_5" => 4104,
            "body_bytes_1000" => 1073,
            "body_bytes_2000" => 2073,
            other => panic!("{other}"),
        };
        assert_eq!(read["result"]["bytes"], want, "{name}: {read}");
    }
    // A close at a chunk's end is a FIN: the program's next write but one
    // fails with EPIPE; one inside a chunk is a reset: ECONNRESET.
    let errno = |phase: Phase| {
        let cell = matrices[0].cell(&phase, Kind::Close).expect("a cell");
        let failed = cell
            .evidence
            .first_failed_call
            .as_ref()
            .expect("a failed call");
        failed.outcome.word()
    };
    for k in 1..=3 {
        assert_eq!(errno(Phase::Chunk(k)), "EPIPE", "{stdout}");
    }
    assert_eq!(errno(Phase::BodyBytes(1000)), "ECONNRESET", "{stdout}");
}
