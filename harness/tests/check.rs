//! `hangup check` through the real binary: a malformed suite is reported
//! with file:line:col for every error and exit code 2, valid suites are
//! counted, and `hangup run` refuses to start on an invalid suite. The
//! suites of `tests/invalid/` are each refused for one reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Three errors in two cases and three steps, written to a temp dir.
const MALFORMED: &str = r#"description = "broken on purpose"

[[case]]
name = "first"
client = [
  { conect = 8080 },
  { sleep = "fast" },
]

[[case]]
name = "second"
server = [
  { listen = 8080 },
  "accept",
  { recv = true, expect = "ECONRESET" },
]
"#;

/// `(line, column)` of each error in [`MALFORMED`], in file order.
const MALFORMED_AT: [(usize, usize); 3] = [(6, 5), (7, 13), (15, 27)];

fn hangup(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hangup"))
        .args(args)
        .output()
        .expect("run hangup")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn reference_suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites")
}

fn malformed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("malformed.toml");
    std::fs::write(&path, MALFORMED).expect("write suite");
    (dir, path)
}

#[test]
fn check_reports_every_error_with_file_line_col() {
    let (_dir, path) = malformed();
    let out = hangup(&["check".as_ref(), path.as_os_str()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let mut last = 0;
    for (line, column) in MALFORMED_AT {
        let at = format!("{}:{line}:{column}", path.display());
        let found = stderr
            .find(&at)
            .unwrap_or_else(|| panic!("expected {at} in stderr, found:\n{stderr}"));
        assert!(found > last, "{at} out of file order in:\n{stderr}");
        last = found;
    }
    for message in [
        "unknown field `conect`",
        "found \"fast\"",
        "found \"ECONRESET\"",
    ] {
        assert!(stderr.contains(message), "{message:?} missing:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        text(&out.stdout).contains("0 suite(s) valid with 0 case(s), 1 invalid"),
        "stdout:\n{}",
        text(&out.stdout)
    );
}

#[test]
fn check_counts_the_valid_reference_suites() {
    let dir = reference_suites();
    let files = hangup::suite::discover(std::slice::from_ref(&dir)).expect("suites");
    let cases: usize = files
        .iter()
        .map(|f| hangup::suite::load_named(f).expect("valid").cases.len())
        .sum();
    let out = hangup(&["check".as_ref(), dir.as_os_str()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    let summary = format!(
        "{} suite(s) valid with {cases} case(s), 0 invalid",
        files.len()
    );
    assert!(
        stdout.contains(&summary),
        "expected {summary:?}, found:\n{stdout}"
    );
}

#[test]
fn check_of_valid_and_invalid_together_exits_2_and_counts_both() {
    let (_dir, bad) = malformed();
    let good = reference_suites().join("s07_abortive_close.toml");
    let out = hangup(&["check".as_ref(), good.as_os_str(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("1 suite(s) valid with 3 case(s), 1 invalid"),
        "{stdout}"
    );
}

#[test]
fn run_refuses_an_invalid_suite_and_runs_nothing() {
    let (_dir, path) = malformed();
    let out = hangup(&["run".as_ref(), path.as_os_str()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let at = format!("{}:6:5", path.display());
    assert!(stderr.contains(&at), "expected {at} in:\n{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert!(!stdout.contains("running"), "something ran:\n{stdout}");
    assert!(!stdout.contains("case "), "something ran:\n{stdout}");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-suite.toml");
    for command in ["check", "run"] {
        let out = hangup(&[command.as_ref(), missing.as_os_str()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("failed to read suite {}", missing.display())),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("No such file or directory"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn check_reports_a_file_that_is_not_utf8() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"description = \"caf\xe9\"\n").expect("write");
    let out = hangup(&["check".as_ref(), path.as_os_str()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:1:19", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
}

/// Each suite in `tests/invalid/`, where `check` must find its one
/// problem (line, column) and what it says starts with.
const INVALID: &[(&str, (usize, usize), &str)] = &[
    (
        "program_empty_run.toml",
        (4, 7),
        "expected `run` to name a command and its arguments",
    ),
    (
        "program_empty_command.toml",
        (4, 8),
        "expected `run` to start with a command, found an empty string",
    ),
    (
        "program_nul_in_run.toml",
        (5, 40),
        "expected `run`'s words without NUL bytes",
    ),
    (
        "program_nul_in_env_name.toml",
        (6, 9),
        "expected an environment variable's name without NUL bytes",
    ),
    (
        "program_nul_in_env_value.toml",
        (6, 16),
        "expected an environment variable's value without NUL bytes",
    ),
    (
        "program_equals_in_env_name.toml",
        (7, 9),
        "expected an environment variable's name without `=`",
    ),
    (
        "program_empty_env_name.toml",
        (6, 9),
        "expected an environment variable's name, found an empty one",
    ),
    (
        "program_nul_in_cwd.toml",
        (6, 7),
        "expected `cwd` without NUL bytes",
    ),
    (
        "sweep_bad_keep_step.toml",
        (13, 37),
        "expected a duration like",
    ),
    (
        "sweep_body_bytes_count_zero.toml",
        (10, 50),
        "expected `count` of at least 1, found 0",
    ),
    (
        "sweep_chunks_past_the_limit.toml",
        (10, 36),
        "expected `chunks` of at most 10000 (the cases a file may make), found 10001",
    ),
    (
        "sweep_chunks_zero.toml",
        (10, 36),
        "expected `chunks` of at least 1 (a phase after each of the first N chunks), found 0",
    ),
    (
        "sweep_errnos_without_trace.toml",
        (14, 10),
        "expected `errnos` in a sweep whose program is traced, found `trace = false` (line 13, column 9)",
    ),
    (
        "sweep_kind_twice.toml",
        (11, 28),
        "expected each kind once, found \"close\" again",
    ),
    (
        "sweep_no_cell_applies.toml",
        (8, 1),
        "expected at least one cell in this sweep, found none",
    ),
    (
        "sweep_request_bytes_past_the_request.toml",
        (10, 33),
        "expected a byte count below the request's 6 bytes, found 6",
    ),
    (
        "sweep_unknown_phase.toml",
        (10, 24),
        "expected a phase: one of \"syn_sent\"",
    ),
    (
        "sweep_without_a_program.toml",
        (4, 1),
        "expected a `[program]` for this sweep, found none",
    ),
    (
        "set_congestion_with_nul.toml",
        (6, 34),
        "expected a congestion control algorithm's name like \"reno\" or \"cubic\": 1 to 15 ASCII letters, digits, `_` or `-` (the kernel reads 15 bytes at most), found \"re\\u{0}no\"",
    ),
    (
        "set_user_timeout_finer_than_a_millisecond.toml",
        (8, 28),
        "expected whole milliseconds like \"500ms\" or \"2s\" (TCP_USER_TIMEOUT counts milliseconds), found \"1.5ms\"",
    ),
    (
        "flags_ack_set_and_clear.toml",
        (8, 30),
        "expected ACK set or clear (`!ACK`), not both, found `RST|ACK|!ACK`",
    ),
];

fn invalid_suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

/// Every suite of `tests/invalid/` is refused by `check` and by `run`
/// with its one problem at its file:line:col, and nothing runs.
#[test]
fn each_invalid_suite_is_refused_where_its_problem_is() {
    let mut wrong = Vec::new();
    for (file, (line, column), message) in INVALID {
        let path = invalid_suites().join(file);
        for command in ["check", "run"] {
            let out = hangup(&[command.as_ref(), path.as_os_str()]);
            let stderr = text(&out.stderr);
            let at = format!("{}:{line}:{column}", path.display());
            let error = format!("error: {message}");
            if out.status.code() != Some(2)
                || !stderr.contains(&at)
                || !stderr.contains(&error)
                || stderr.matches("error: ").count() != 1
            {
                wrong.push(format!(
                    "{command} {file}: expected exit 2, one problem at {at}: {message:?}; found {:?}:\n{stderr}",
                    out.status.code()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A new file in `tests/invalid/` is not forgotten by the test above.
#[test]
fn every_invalid_suite_is_listed_with_its_problem() {
    let mut files: Vec<String> = std::fs::read_dir(invalid_suites())
        .expect("tests/invalid")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = INVALID.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

/// The README's annotated suite is a real one: it must parse, so the guide
/// cannot drift from the format.
#[test]
fn the_readme_suite_example_parses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("```toml\n[[case]]")
        .expect("a ```toml suite block in the README")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    let suite = hangup::suite::parse_suite(Path::new("README.md"), &readme.as_bytes()[start..end])
        .unwrap_or_else(|err| panic!("the README's suite does not parse:\n{err}"));
    assert_eq!(suite.cases.len(), 1);
}
